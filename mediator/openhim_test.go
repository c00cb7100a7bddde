package mediator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// openhimYAML is the openhim: section for a fake core at coreURL; report_interval is short
// so that the outbox's backoff starts small.
func openhimYAML(coreURL string) string {
	return fmt.Sprintf(`openhim:
  enabled: true
  url: %s
  username: %s
  password: %s
  heartbeat_interval: 1s
  report_interval: 20ms
  report_attempts: 5
  route: {host: 127.0.0.1, port: 8080}
`, coreURL, openhimtest.RootEmail, openhimtest.RootPassword)
}

// TestOpenHIMOutcomeSurvivesTheCoresLateWrite: the core writes Tally's envelope into its
// transaction when it has finished routing, after a delay (0.3–0.5 s was seen with a real
// core) and replacing whatever is there (spec openhim.md §8.3; CORE
// src/middleware/messageStore.js storeResponse), so an update that arrives first is lost.
// Whatever the delay, the record ends with Tally's final status and DHIS2 orchestration,
// beside the core's own route orchestration, with the client's 202 as the response.
//
// Delivery is held until the client has Tally's answer, so the envelope always says
// Processing and only the outbox can make the record right.
func TestOpenHIMOutcomeSurvivesTheCoresLateWrite(t *testing.T) {
	_, held, targetURL := heldEmulator(t)
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: targetURL})

	for i, delay := range []time.Duration{0, 500 * time.Millisecond, 2 * time.Second} {
		t.Run(delay.String(), func(t *testing.T) {
			held.hold()
			core.SetStoreDelay(delay)
			answer := b.post("/ingest/him", chwValues(fmt.Sprintf("2024%02d", i+1), "KL_N_F1", 10*i),
				http.Header{"X-Request-Id": {fmt.Sprintf("req-%d", i)}})
			if answer.status != http.StatusAccepted || answer.body["status"] != "accepted" {
				t.Fatalf("client answer: HTTP %d %v", answer.status, answer.body)
			}
			held.open()
			rec := b.waitConfirmed(i+1, answer.txID)
			assertFinalRecord(t, rec, "Tally him", http.StatusAccepted, targetURL)
			byName, _ := orchestrations(rec)
			if got := jsonAt(byName["DHIS2 import: hmis"], "request.headers.X-Request-Id"); got != fmt.Sprintf("req-%d", i) {
				t.Errorf("X-Request-ID in the DHIS2 orchestration = %v, want req-%d", got, i)
			}
			if jsonAt(rec, "properties.tally_transaction") != answer.body["transaction"] {
				t.Errorf("properties = %v", rec["properties"])
			}
		})
	}
	if n := b.outcomes("abandoned"); n != 0 {
		t.Errorf("%d outcomes abandoned", n)
	}
}

// TestOpenHIMOutcomeWaitsForTheCore: the core refuses connections (its process is down)
// when the last delivery is recorded; the outcome waits on the outbox and is recorded once
// the core is back.
func TestOpenHIMOutcomeWaitsForTheCore(t *testing.T) {
	_, held, targetURL := heldEmulator(t)
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: targetURL})

	answer := b.post("/ingest/him", chwValues("202401", "KL_N_F1", 1), nil)
	held.waitArrived(t)
	b.stored(answer.txID) // the core's own write is done: the record says Processing
	if err := core.SetDown(openhimtest.Refused); err != nil {
		t.Fatal(err)
	}
	held.open()
	b.h.waitStatus(answer.body["transaction"].(string), txlog.TxDelivered)
	waitUntil(t, 10*time.Second, "a failed attempt to reach the core", func() bool { return b.outcomes("retried") > 0 })
	if rec, _ := core.Transaction(answer.txID); rec["status"] != "Processing" {
		t.Fatalf("the core, down, changed status to %v", rec["status"])
	}
	if err := core.SetDown(openhimtest.Up); err != nil {
		t.Fatal(err)
	}
	rec := b.waitConfirmed(1, answer.txID)
	assertFinalRecord(t, rec, "Tally him", http.StatusAccepted, targetURL)
}

// TestOpenHIMOutcomeSurvivesATallyRestart: Tally stops after the delivery and before the core
// has stored its answer (the core holds its writes), so no outcome can be confirmed; the
// core then writes Processing over anything Tally sent. Started again on the same store,
// Tally records the outcome. The claim keys an older Tally left in tally_state are gone.
func TestOpenHIMOutcomeSurvivesATallyRestart(t *testing.T) {
	_, held, targetURL := heldEmulator(t)
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	defer core.ReleaseStores()
	dir := t.TempDir()
	legacy := "openhim.0123456789abcdef0123456789abcdef"
	withStore(t, dir, func(c *stream.Conn) {
		if _, err := c.State.Put(context.Background(), legacy, []byte("delivered")); err != nil {
			t.Fatal(err)
		}
	})
	b := startBehindHIM(t, core, himConfig{dir: dir, targetURL: targetURL})

	core.HoldStores()
	answer := b.post("/ingest/him", chwValues("202402", "KL_N_F2", 5), nil)
	held.open() // after the answer, which therefore says Processing
	b.h.waitStatus(answer.body["transaction"].(string), txlog.TxDelivered)
	waitUntil(t, 10*time.Second, "an attempt while the core's write is held", func() bool { return b.outcomes("retried") > 0 })
	b.restart(func() {
		withStore(t, dir, func(c *stream.Conn) {
			if _, err := c.State.Get(context.Background(), legacy); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Errorf("the old claim key is still there: %v", err)
			}
		})
		core.ReleaseStores()
		rec := b.stored(answer.txID)
		if _, names := orchestrations(rec); rec["status"] != "Processing" || count(names, "DHIS2 import: hmis") != 0 {
			t.Fatalf("before the restart the core's write left %v %q; the test needs the outcome pending", rec["status"], names)
		}
	})
	rec := b.waitConfirmed(1, answer.txID)
	assertFinalRecord(t, rec, "Tally him", http.StatusAccepted, targetURL)
}

// TestOpenHIMOutcomeRetriesAreBounded: an outcome is retried for a day, then given up (and
// counted); a record the core never completes with its own answer (a core that crashed while
// routing never writes it, and from 8.2.0 marks the transaction Failed at its next start,
// spec openhim.md §10.4) is accepted as confirmed after ten minutes rather than rewritten for
// a day.
func TestOpenHIMOutcomeRetriesAreBounded(t *testing.T) {
	t.Run("core down for a day", func(t *testing.T) {
		_, held, targetURL := heldEmulator(t)
		core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
		defer core.Close()
		b := startBehindHIM(t, core, himConfig{targetURL: targetURL})
		answer := b.post("/ingest/him", chwValues("202403", "KL_S_F2", 1), nil)
		if err := core.SetDown(openhimtest.Refused); err != nil {
			t.Fatal(err)
		}
		held.open()
		b.h.waitStatus(answer.body["transaction"].(string), txlog.TxDelivered)
		waitUntil(t, 10*time.Second, "a failed attempt", func() bool { return b.outcomes("retried") > 0 })
		b.clock.move(25 * time.Hour)
		waitUntil(t, 10*time.Second, "the outcome to be given up", func() bool { return b.outcomes("abandoned") == 1 })
		if err := core.SetDown(openhimtest.Up); err != nil {
			t.Fatal(err)
		}
		if rec, _ := core.Transaction(answer.txID); rec["status"] != "Processing" || b.outcomes("confirmed") != 0 {
			t.Errorf("a given-up outcome was recorded: %v, %d confirmed", rec["status"], b.outcomes("confirmed"))
		}
	})
	t.Run("core never writes its answer", func(t *testing.T) {
		_, held, targetURL := heldEmulator(t)
		core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
		defer core.Close()
		defer core.ReleaseStores()
		b := startBehindHIM(t, core, himConfig{targetURL: targetURL})
		core.HoldStores()
		answer := b.post("/ingest/him", chwValues("202404", "KL_S_F2", 1), nil)
		held.open()
		b.h.waitStatus(answer.body["transaction"].(string), txlog.TxDelivered)
		waitUntil(t, 10*time.Second, "an attempt on the unwritten record", func() bool { return b.outcomes("retried") > 0 })
		if b.outcomes("confirmed") != 0 {
			t.Fatal("confirmed before the core wrote its answer")
		}
		b.clock.move(11 * time.Minute)
		waitUntil(t, 10*time.Second, "the outcome to be accepted", func() bool { return b.outcomes("confirmed") == 1 })
		rec, _ := core.Transaction(answer.txID)
		if _, names := orchestrations(rec); rec["status"] != "Successful" || count(names, "DHIS2 import: hmis") != 1 {
			t.Errorf("record %v %q", rec["status"], names)
		}
	})
}

// TestOpenHIMCoreDownDoesNotStopTally starts Tally while the core refuses everything: Tally is
// ready and delivers, and registers once the core comes back.
func TestOpenHIMCoreDownDoesNotStopTally(t *testing.T) {
	core := openhimtest.NewServer()
	defer core.Close()
	core.SetDown(openhimtest.Unavailable)
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyWith(t, emu.URL, t.TempDir(), openhimYAML(core.URL))

	resp, err := http.Get(h.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d while the core is down", resp.StatusCode)
	}
	_, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, payload(t, "chw-2024-01.json"))
	h.waitStatus(body["transaction"].(string), "delivered")

	core.SetDown(openhimtest.Up)
	waitFor(t, "registration after the core came back", func() bool { return len(core.Registrations()) > 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	waitUntil(t, 20*time.Second, what, ok)
}

// TestOpenHIMConsoleConfigIsAppliedLive: an operator makes a target dry-run from the OpenHIM
// console; the next heartbeat brings the change, the next delivery is a dry run, and the
// core's record says so.
func TestOpenHIMConsoleConfigIsAppliedLive(t *testing.T) {
	emu := emulator(t)
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: emu.URL})

	if err := core.SetConfig(himURN, map[string]any{"dry_run_targets": []any{"hmis"}}); err != nil {
		t.Fatal(err)
	}
	// The config reaches Tally with a heartbeat (every second here): wait until a heartbeat
	// has been answered after the change, then post.
	beats := len(core.Heartbeats(himURN))
	waitFor(t, "a heartbeat after the change", func() bool { return len(core.Heartbeats(himURN)) > beats+1 })

	answer := b.post("/ingest/him", chwValues("202401", "KL_N_F1", 1), nil)
	b.h.waitStatus(answer.body["transaction"].(string), txlog.TxDelivered)
	if n := emu.Store().Len(); n != 0 {
		t.Errorf("a dry-run target stored %d values", n)
	}
	var dry bool
	for _, r := range emu.Requests() {
		if r.Method == "POST" && r.Query.Get("dryRun") == "true" {
			dry = true
		}
	}
	if !dry {
		t.Error("no dry-run import reached the emulator")
	}
	rec := b.waitConfirmed(1, answer.txID)
	byName, names := orchestrations(rec)
	o, ok := byName["DHIS2 import (dry run): hmis"]
	if !ok || count(names, "DHIS2 import: hmis") != 0 {
		t.Fatalf("orchestrations %q, want the import named a dry run", names)
	}
	if jsonAt(o, "request.querystring") != "dryRun=true" || jsonAt(rec, "properties.tally_dry_run") != "hmis" ||
		!strings.HasPrefix(jsonAt(rec, "properties.hmis: outcome").(string), "dry run, delivered") {
		t.Errorf("dry run not visible: request %v, properties %v", o["request"], rec["properties"])
	}
}

// withStore opens Tally's JetStream store while Tally is not running.
func withStore(t *testing.T, dir string, fn func(*stream.Conn)) {
	t.Helper()
	ctx := context.Background()
	c, err := stream.Open(ctx, stream.Config{StoreDir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	fn(c)
}
