package mediator_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// waitForNotes polls the webhook until it has received want, or fails after a bound only a
// broken watcher reaches.
func waitForNotes(t *testing.T, w *webhookRecorder, want func([]exchange.Notification) bool) []exchange.Notification {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got := w.received(); want(got) {
			return got
		}
	}
	t.Fatalf("notifications received: %+v", w.received())
	return nil
}

func events(ns []exchange.Notification, event string) []exchange.Notification {
	var out []exchange.Notification
	for _, n := range ns {
		if n.Event == event {
			out = append(out, n)
		}
	}
	return out
}

// Dead letters piling up for a target and from a push source are told on the notify
// channels once when they pass notify.dead_letters.above (with the transactions and a link to
// the console) and once when they are gone, however many checks run in between.
func TestDeadLettersAboveTheThresholdAreToldOncePerIncident(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	hook := newWebhookRecorder(t)
	dir := t.TempDir()
	h := startYAML(t, configYAML(emu.URL, dir, "")+fmt.Sprintf(`notify:
  webhooks: [{name: ops, url: %s}]
  dead_letters: {above: 1}
  console_url: https://tally.example.org
  check_interval: 20ms
`, hook.srv.URL), dir, false)

	var ids []string
	for month := 1; month <= 2; month++ {
		body := fmt.Sprintf(`{"dataValues":[{"dataElement":"EPI_BCG","period":"2024%02d","orgUnit":"KL_NOWHERE","categoryOptionCombo":"F_LT1","value":"1"}]}`, month)
		code, res := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, []byte(body))
		if code != http.StatusAccepted {
			t.Fatalf("ingest: HTTP %d %v", code, res)
		}
		ids = append(ids, res["transaction"].(string))
	}
	for _, id := range ids {
		h.waitStatus(id, txlog.TxFailed)
	}
	got := waitForNotes(t, hook, func(ns []exchange.Notification) bool { return len(events(ns, exchange.EventDeadLettersAbove)) == 2 })
	for _, n := range events(got, exchange.EventDeadLettersAbove) {
		if n.DeadLetters != 2 || len(n.Transactions) != 2 || !slices.Contains(n.Transactions, ids[0]) ||
			!strings.HasPrefix(n.Link, "https://tally.example.org/console/dlq?") {
			t.Errorf("incident message = %+v", n)
		}
		if (n.Target == "hmis") == (n.Source == "cht") {
			t.Errorf("a message is about one target or one source: %+v", n)
		}
	}
	code, res := h.post("/admin/v1/dlq/discard", "application/json", "Bearer "+adminToken, []byte(`{"all": true}`))
	if code != http.StatusOK {
		t.Fatalf("discard: HTTP %d %v", code, res)
	}
	got = waitForNotes(t, hook, func(ns []exchange.Notification) bool { return len(events(ns, exchange.EventDeadLettersResolved)) == 2 })
	if n := len(events(got, exchange.EventDeadLettersAbove)); n != 2 {
		t.Errorf("%d incident messages after many checks, want 2 (once per incident)", n)
	}
}

// A target unreachable longer than notify.targets.unreachable_after is told once, and its
// recovery once.
func TestUnreachableTargetIsToldOnceAndItsRecovery(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	g := &gate{next: emu.Handler()}
	front := httptest.NewServer(g)
	defer front.Close()
	hook := newWebhookRecorder(t)
	dir := t.TempDir()
	h := startYAML(t, configYAML(front.URL+emu.BasePath(), dir, "")+fmt.Sprintf(`notify:
  webhooks: [{name: ops, url: %s}]
  targets: {unreachable_after: 50ms}
  check_interval: 20ms
  console_url: https://tally.example.org/
`, hook.srv.URL), dir, false)
	code, res := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, payload(t, "epi-2024-01.json"))
	if code != http.StatusAccepted {
		t.Fatalf("ingest: HTTP %d %v", code, res)
	}
	got := waitForNotes(t, hook, func(ns []exchange.Notification) bool { return len(events(ns, exchange.EventTargetUnreachable)) > 0 })
	// The link opens the console's overview at the target's row (id="target-hmis").
	if n := events(got, exchange.EventTargetUnreachable)[0]; n.Target != "hmis" || n.Since.IsZero() || n.Link != "https://tally.example.org/console/#target-hmis" {
		t.Errorf("unreachable message = %+v", n)
	}
	g.open.Store(true)
	h.waitStatus(res["transaction"].(string), txlog.TxDelivered)
	got = waitForNotes(t, hook, func(ns []exchange.Notification) bool { return len(events(ns, exchange.EventTargetRecovered)) == 1 })
	if n := len(events(got, exchange.EventTargetUnreachable)); n != 1 {
		t.Errorf("%d unreachable messages, want 1 per incident", n)
	}
}
