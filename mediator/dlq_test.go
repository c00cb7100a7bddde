package mediator_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/transform"
)

// renameMapper maps data element codes through a table that a test can swap, standing in for
// mapping rules an implementer fixes after seeing dead letters.
type renameMapper struct {
	rules atomic.Pointer[map[string]string]
}

func (m *renameMapper) set(rules map[string]string) { m.rules.Store(&rules) }

func (m *renameMapper) Map(_ context.Context, in *transform.Batch, _ *config.Source, t *config.Target) (*transform.Mapped, error) {
	rules := *m.rules.Load()
	out := *in
	out.Target = t.Name
	out.Values = make([]transform.DataValue, len(in.Values))
	for i, v := range in.Values {
		if to, ok := rules[v.DataElement]; ok {
			v.DataElement = to
		}
		out.Values[i] = v
	}
	return &transform.Mapped{Batch: &out}, nil
}

var _ mediator.Mapper = (*renameMapper)(nil)

func TestDeadLetterReplayKeepsHistoryAndRemapsWithCurrentRules(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	mapper := &renameMapper{}
	mapper.set(map[string]string{"BCG": "EPI_BCGX"}) // a typo in the rules
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}},
		mediator.Options{Mapper: mapper})

	values := epiValues("202401", 0)[:32] // EPI_BCG and EPI_PENTA1
	for i := range 16 {
		values[i].de = "BCG" // the source's own code for BCG
	}
	id := h.ingest(dvsBody(values))
	h.waitStatus(id, mediator.TxPartiallyDelivered)
	dls := h.deadLetters("code=E7610")
	if len(dls) != 1 || num(dls[0]["values"]) != 16 {
		t.Fatalf("dead letters = %v, want the 16 BCG values", dls)
	}
	seq := num(dls[0]["seq"])
	_, full := h.admin("GET", fmt.Sprintf("/admin/v1/dlq/%d", seq), nil)
	src, _ := full["sourceBatch"].(map[string]any)
	if src == nil || src["dataValues"].([]any)[0].(map[string]any)["dataElement"] != "BCG" {
		t.Fatalf("dead letter does not keep the source values: %v", full["sourceBatch"])
	}

	// Replayed as it is, the batch fails again: the new dead letter keeps the first failure.
	code, res := h.admin("POST", fmt.Sprintf("/admin/v1/dlq/%d/replay", seq), nil)
	if code != http.StatusOK {
		t.Fatalf("replay: HTTP %d %v", code, res)
	}
	var again []map[string]any
	waitUntil(t, 10*time.Second, "the replay to fail again", func() bool {
		again = h.deadLetters("tx=" + id)
		return len(again) == 1 && num(again[0]["seq"]) != seq
	})
	if num(again[0]["replays"]) != 1 {
		t.Errorf("replays = %v, want 1", again[0]["replays"])
	}
	_, full = h.admin("GET", fmt.Sprintf("/admin/v1/dlq/%d", num(again[0]["seq"])), nil)
	hist, _ := full["history"].([]any)
	if len(hist) != 1 || hist[0].(map[string]any)["reason"] != mediator.ReasonRejected || num(hist[0].(map[string]any)["replay"]) != 0 {
		t.Errorf("history = %v, want the original failure", full["history"])
	}

	// The rules are fixed; replay with remap maps the source values again.
	mapper.set(map[string]string{"BCG": "EPI_BCG"})
	code, res = h.admin("POST", "/admin/v1/dlq/replay", map[string]any{"all": true, "filter": map[string]any{"tx": id}, "remap": true})
	if code != http.StatusOK || num(res["replayed"]) != 1 {
		t.Fatalf("bulk replay: HTTP %d %v", code, res)
	}
	tx := h.waitStatus(id, mediator.TxDelivered)
	assertStoredOnce(t, emu, 32)
	if v, ok := emu.Lookup("EPI_BCG", "202401", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "1" {
		t.Errorf("EPI_BCG/KL_N_F1/F_LT1 = %+v, %v", v, ok)
	}
	events, _ := tx["events"].([]any)
	if len(events) != 2 || events[1].(map[string]any)["remapped"] != true {
		t.Errorf("events = %v, want two replays, the second re-mapped", events)
	}
	replays := 0
	for _, x := range tx["deliveries"].([]any) {
		if d := x.(map[string]any); d["seq"] == float64(0) {
			replays = max(replays, num(d["replay"]))
		}
	}
	if replays != 2 {
		t.Errorf("the batch's delivery records go to replay %d, want 2 (history kept)", replays)
	}
	if n := h.metricValue(t, "tally_dlq_replayed_total", "hmis"); n != 2 {
		t.Errorf("tally_dlq_replayed_total = %v, want 2", n)
	}
}

func TestDeadLetterListFiltersShowAndDiscard(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{})

	// Three transactions, each with one kind of rejected value.
	bad := func(period, de, ou string) []byte {
		vs := epiValues(period, 0)[:4]
		vs = append(vs, dv{de, period, ou, "F_LT1", "", "1"})
		return dvsBody(vs)
	}
	unknownOU := h.ingest(bad("202401", "EPI_BCG", "KL_NOWHERE"))
	unknownDE := h.ingest(bad("202402", "EPI_NOTHING", "KL_N_F1"))
	third := h.ingest(bad("202403", "EPI_BCG", "KL_NOWHERE"))
	for _, id := range []string{unknownOU, unknownDE, third} {
		h.waitStatus(id, mediator.TxPartiallyDelivered)
	}
	if n := len(h.deadLetters("")); n != 3 {
		t.Fatalf("%d dead letters, want 3", n)
	}
	for q, want := range map[string]int{
		"target=hmis": 3, "target=other": 0, "source=cht": 3, "reason=rejected": 3, "reason=exhausted": 0,
		"code=E7610": 1, "code=e7612": 2, "tx=" + unknownDE: 1, "since=1h": 3, "until=1h": 0,
		"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)): 0,
	} {
		if got := len(h.deadLetters(q)); got != want {
			t.Errorf("?%s: %d entries, want %d", q, got, want)
		}
	}
	code, page := h.admin("GET", "/admin/v1/dlq?limit=2", nil)
	if code != http.StatusOK || num(page["total"]) != 3 || len(page["deadLetters"].([]any)) != 2 || page["next"] == nil {
		t.Fatalf("page 1 = %v", page)
	}
	_, page2 := h.admin("GET", fmt.Sprintf("/admin/v1/dlq?limit=2&after=%d", num(page["next"])), nil)
	if l := page2["deadLetters"].([]any); len(l) != 1 || page2["next"] != nil {
		t.Errorf("page 2 = %v", page2)
	}

	byID := h.deadLetters("tx=" + unknownDE)[0]
	if code, body := h.admin("GET", "/admin/v1/dlq/"+url.PathEscape(byID["id"].(string)), nil); code != http.StatusOK || body["seq"] != byID["seq"] {
		t.Errorf("show by id: HTTP %d %v", code, body)
	}
	for path, want := range map[string]int{"/admin/v1/dlq/999": 404, "/admin/v1/dlq/x": 404, "/admin/v1/dlq?since=soon": 400,
		"/admin/v1/dlq?limit=0": 400} {
		if code, body := h.admin("GET", path, nil); code != want {
			t.Errorf("GET %s: HTTP %d, want %d: %v", path, code, want, body)
		}
	}
	if code, body := h.admin("POST", "/admin/v1/dlq/replay", map[string]any{}); code != http.StatusBadRequest {
		t.Errorf("replay without a selection: HTTP %d %v", code, body)
	}

	one := h.deadLetters("code=E7610")[0]
	code, res := h.admin("DELETE", fmt.Sprintf("/admin/v1/dlq/%d", num(one["seq"])), nil)
	if code != http.StatusOK || res["status"] != "discarded" {
		t.Fatalf("discard: HTTP %d %v", code, res)
	}
	if code, _ := h.admin("DELETE", fmt.Sprintf("/admin/v1/dlq/%d", num(one["seq"])), nil); code != http.StatusNotFound {
		t.Errorf("discarding twice: HTTP %d, want 404", code)
	}
	tx := h.tx(unknownDE)
	if ev, _ := tx["events"].([]any); len(ev) != 1 || ev[0].(map[string]any)["kind"] != mediator.EventDiscarded {
		t.Errorf("events = %v, want the discard", tx["events"])
	}
	if tx["status"] != mediator.TxPartiallyDelivered {
		t.Errorf("a discard changed the status to %v", tx["status"])
	}
	code, res = h.admin("POST", "/admin/v1/dlq/discard", map[string]any{"all": true, "filter": map[string]any{"code": "E7612"}})
	if code != http.StatusOK || num(res["discarded"]) != 2 {
		t.Fatalf("bulk discard: HTTP %d %v", code, res)
	}
	if n := len(h.deadLetters("")); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	if n := h.metricValue(t, "tally_dlq_discarded_total", "hmis"); n != 3 {
		t.Errorf("tally_dlq_discarded_total = %v, want 3", n)
	}
}

func TestTransactionListFilters(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{})
	good := h.ingest(dvsBody(epiValues("202401", 0)))
	partial := h.ingest(dvsBody(append(epiValues("202402", 0), dv{"EPI_BCG", "202402", "KL_NOWHERE", "F_LT1", "", "1"})))
	h.waitStatus(good, mediator.TxDelivered)
	h.waitStatus(partial, mediator.TxPartiallyDelivered)

	list := func(q string) []string {
		t.Helper()
		code, body := h.admin("GET", "/admin/v1/transactions?"+q, nil)
		if code != http.StatusOK {
			t.Fatalf("?%s: HTTP %d %v", q, code, body)
		}
		var ids []string
		for _, x := range body["transactions"].([]any) {
			ids = append(ids, x.(map[string]any)["id"].(string))
		}
		return ids
	}
	for q, want := range map[string][]string{
		"":                 {partial, good},
		"status=delivered": {good},
		"status=" + url.QueryEscape("partially delivered"): {partial},
		"status=failed":             nil,
		"source=cht&limit=1":        {partial},
		"source=exchange":           nil,
		"since=1h":                  {partial, good},
		"until=1h":                  nil,
		"since=1h&status=delivered": {good},
	} {
		if got := list(q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("?%s = %v, want %v", q, got, want)
		}
	}
	if code, _ := h.admin("GET", "/admin/v1/transactions?status=lost", nil); code != http.StatusBadRequest {
		t.Errorf("unknown status: HTTP %d, want 400", code)
	}
}
