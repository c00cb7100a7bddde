package openhim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

// routed is a fake core whose router sends /ingest/cht to a mediator answering like Tally
// does while delivery is pending: 202, status Processing, one orchestration and a property.
type routed struct {
	core   *openhimtest.Server
	client *openhim.Client
	clock  *openhimtest.Clock
}

func newRouted(t *testing.T, attempts int) *routed {
	t.Helper()
	core := newCore(t, openhimtest.WithClient("cht-app", "app-pw", openhim.DefaultAllowRole))
	cfg := coreConfig(core)
	med := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
		resp := openhim.NewResponse(http.StatusAccepted, http.Header{"Content-Type": {"application/json"}},
			[]byte(`{"status":"OK","description":"stored"}`), at)
		env := openhim.NewEnvelope(cfg.URN, openhim.StatusProcessing, resp).
			AddOrchestration(openhim.NewOrchestration("Tally ingest", openhim.RequestFromHTTP(r, nil, at), &resp, nil)).
			SetProperty("tally_transaction", "tx-1")
		if err := env.Write(w); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(med.Close)
	_, port, _ := net.SplitHostPort(med.Listener.Addr().String())
	cfg.Route.Host = "127.0.0.1"
	cfg.Route.Port, _ = strconv.Atoi(port)
	cfg.ReportAttempts = attempts
	clock := openhimtest.NewClock(time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC))
	c, err := openhim.NewClient(cfg, openhim.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := openhim.BuildRegistration(cfg, "1.0.0", openhim.Sources("cht"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Register(testContext(t), reg); err != nil {
		t.Fatal(err)
	}
	if err := core.InstallChannels(cfg.URN, "Tally - cht"); err != nil {
		t.Fatal(err)
	}
	return &routed{core: core, client: c, clock: clock}
}

// post sends a client's request through the core's router and returns the transaction id.
func (r *routed) post(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, r.core.RouterURL+"/ingest/cht",
		strings.NewReader(`{"targets":[]}`))
	req.SetBasicAuth("cht-app", "app-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get(openhim.HeaderTransactionID)
	if resp.StatusCode != http.StatusAccepted || id == "" {
		t.Fatalf("routed answer: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	return id
}

type reported struct {
	rec *openhim.TransactionRecord
	err error
}

// report runs ReportOutcome in the background; the test moves the clock.
func (r *routed) report(t *testing.T, id string, out openhim.Outcome) <-chan reported {
	t.Helper()
	ch := make(chan reported, 1)
	go func() {
		rec, err := r.client.ReportOutcome(testContext(t), id, out)
		ch <- reported{rec, err}
	}()
	return ch
}

// waiting blocks until ReportOutcome waits on the clock.
func (r *routed) waiting(t *testing.T) {
	t.Helper()
	if err := r.clock.BlockUntil(testContext(t), 1); err != nil {
		t.Fatal("ReportOutcome did not wait:", err)
	}
}

// step lets one wait of ReportOutcome end.
func (r *routed) step(t *testing.T) {
	t.Helper()
	r.waiting(t)
	r.clock.AdvanceToNext()
}

// releaseCoreWrite lets the core write the envelope it holds, and waits for it.
func (r *routed) releaseCoreWrite(t *testing.T, id string) {
	t.Helper()
	r.core.ReleaseStores()
	if err := r.core.WaitStored(testContext(t), id); err != nil {
		t.Fatal(err)
	}
}

func dhis2Outcome(t *testing.T) openhim.Outcome {
	t.Helper()
	at := time.Date(2025, 3, 1, 9, 30, 1, 0, time.UTC)
	req, err := openhim.NewRequest(http.MethodPost, "https://hmis.example.org/api/dataValueSets", nil, []byte(`{}`), at)
	if err != nil {
		t.Fatal(err)
	}
	resp := openhim.NewResponse(http.StatusOK, nil, []byte(`{"status":"OK"}`), at)
	return openhim.Outcome{Status: openhim.StatusSuccessful,
		Orchestrations: []openhim.Orchestration{openhim.NewOrchestration("DHIS2 import: hmis", req, &resp, nil)},
		Properties:     map[string]any{"imported": 12}}
}

// wantFinal checks a record that shows the whole outcome beside what the core stored.
func wantFinal(t *testing.T, rec *openhim.TransactionRecord) {
	t.Helper()
	if rec.Status != openhim.StatusSuccessful || rec.ResponseStatus != http.StatusAccepted ||
		fmt.Sprint(rec.OrchestrationNames()) != "[Tally ingest Tally cht DHIS2 import: hmis]" ||
		rec.Properties["imported"] != float64(12) || rec.Properties["tally_transaction"] != "tx-1" {
		t.Errorf("record: %+v", rec)
	}
}

// updatesKeepResponse checks that no PUT replaced the response the core gave its client.
func updatesKeepResponse(t *testing.T, core *openhimtest.Server) {
	t.Helper()
	for _, u := range core.TransactionUpdates() {
		if _, ok := u.Body["response"]; ok {
			t.Errorf("an update replaced the client's response: %s", u.Raw)
		}
	}
}

// TestGetTransaction reads back a routed transaction as the core's API returns it
// (CORE src/api/transactions.js getTransactionById).
func TestGetTransaction(t *testing.T) {
	r := newRouted(t, 3)
	id := r.post(t)
	rec, err := r.client.GetTransaction(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != id || rec.Status != openhim.StatusProcessing || !rec.Settled() || rec.ResponseStatus != http.StatusAccepted ||
		fmt.Sprint(rec.OrchestrationNames()) != "[Tally ingest Tally cht]" || rec.Properties["tally_transaction"] != "tx-1" ||
		rec.Orchestrations[1].ResponseStatus != http.StatusAccepted || rec.AutoRetry {
		t.Errorf("record: %+v", rec)
	}
	if _, err := r.client.GetTransaction(testContext(t), "65f0000000000000000000ff"); !errors.Is(err, openhim.ErrNotFound) {
		t.Errorf("unknown transaction: %v", err)
	}
}

// TestReportOutcomeWaitsForTheCoresWrite: the core writes the envelope after answering its
// client (CORE src/middleware/messageStore.js koaMiddleware: storeResponse after next()),
// unconditionally; ReportOutcome reads until that write shows, then writes once.
func TestReportOutcomeWaitsForTheCoresWrite(t *testing.T) {
	r := newRouted(t, 10)
	r.core.HoldStores()
	id := r.post(t)
	done := r.report(t, id, dhis2Outcome(t))

	r.waiting(t) // read: not stored yet
	if n := len(r.core.TransactionUpdates()); n != 0 {
		t.Fatalf("%d updates before the core's write", n)
	}
	r.releaseCoreWrite(t, id)
	r.step(t) // read: stored; write; wait
	r.step(t) // read back: confirmed
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	wantFinal(t, got.rec)
	if n := len(r.core.TransactionUpdates()); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
	updatesKeepResponse(t, r.core)
	if fmt.Sprint(r.clock.Requested()) != "[1s 1s]" {
		t.Errorf("waits %v, want ReportInterval each", r.clock.Requested())
	}
	// The record as the API returns it agrees.
	rec, err := r.client.GetTransaction(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	wantFinal(t, rec)
}

// TestReportOutcomeReappliesWhatTheCoreOverwrote: when the core's write lands after
// Tally's update, as a real core's did with 0.3-0.5 s of latency, the read-back shows the
// status and orchestrations gone and ReportOutcome writes them again.
func TestReportOutcomeReappliesWhatTheCoreOverwrote(t *testing.T) {
	r := newRouted(t, 2)
	r.core.HoldStores()
	id := r.post(t)
	done := r.report(t, id, dhis2Outcome(t))

	r.step(t)    // second read: still not stored, so write anyway
	r.waiting(t) // written; waiting to read back
	if ups := r.core.TransactionUpdates(); len(ups) != 1 {
		t.Fatalf("updates: %+v", ups)
	}
	r.releaseCoreWrite(t, id) // the core's late write replaces the update
	if rec, _ := r.core.Transaction(id); rec["status"] != "Processing" {
		t.Fatalf("the core's write did not replace the status: %v", rec)
	}
	r.clock.AdvanceToNext() // read back: status and orchestration missing; write again
	r.step(t)               // read back: confirmed
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	wantFinal(t, got.rec)
	ups := r.core.TransactionUpdates()
	if len(ups) != 2 || ups[1].Body["status"] != "Successful" || ups[1].Body["$push"] == nil {
		t.Errorf("updates: %+v", ups)
	}
	updatesKeepResponse(t, r.core)
}

// TestReportOutcomeNotConfirmed: with no attempt left after the core's late write, the
// outcome is reported as not confirmed, with the record as read.
func TestReportOutcomeNotConfirmed(t *testing.T) {
	r := newRouted(t, 1)
	r.core.HoldStores()
	id := r.post(t)
	done := r.report(t, id, dhis2Outcome(t))
	r.waiting(t)
	r.releaseCoreWrite(t, id)
	r.clock.AdvanceToNext()
	got := <-done
	if !errors.Is(got.err, openhim.ErrNotConfirmed) || got.rec == nil || got.rec.Status != openhim.StatusProcessing ||
		!strings.Contains(got.err.Error(), id) {
		t.Errorf("got %+v, %v", got.rec, got.err)
	}
}

// TestReportOutcomeIsIdempotent: an outcome already on the record is not written again, so
// a retry or a second replica adds no orchestration twice.
func TestReportOutcomeIsIdempotent(t *testing.T) {
	r := newRouted(t, 3)
	id := r.post(t)
	out := dhis2Outcome(t)
	done := r.report(t, id, out)
	r.step(t)
	if got := <-done; got.err != nil {
		t.Fatal(got.err)
	}
	again, err := r.client.ReportOutcome(testContext(t), id, out) // no wait: nothing to write
	if err != nil {
		t.Fatal(err)
	}
	wantFinal(t, again)
	if n := len(r.core.TransactionUpdates()); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
}

// TestReportOutcomeWithoutTheCoresWrite: a record the core never completes (e.g. it
// restarted mid-request) still gets the outcome once the waiting reads run out.
func TestReportOutcomeWithoutTheCoresWrite(t *testing.T) {
	r := newRouted(t, 2)
	id := r.core.NewTransaction(nil)
	done := r.report(t, id, openhim.Outcome{Status: openhim.StatusFailed,
		Error: &openhim.ErrorDetails{Message: "hmis: 409 conflicts"}, Properties: map[string]any{"rejected": 3}})
	r.step(t) // second read: not stored; write
	r.step(t) // read back: confirmed
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.rec.Status != openhim.StatusFailed || got.rec.Error == nil || !got.rec.AutoRetry || got.rec.Properties["rejected"] != float64(3) {
		t.Errorf("record: %+v", got.rec)
	}
}

func TestReportOutcomeErrors(t *testing.T) {
	r := newRouted(t, 2)
	ctx := testContext(t)
	if _, err := r.client.ReportOutcome(ctx, "65f0000000000000000000ff", dhis2Outcome(t)); !errors.Is(err, openhim.ErrNotFound) {
		t.Errorf("unknown transaction: %v", err)
	}
	if _, err := r.client.ReportOutcome(ctx, "", dhis2Outcome(t)); err == nil {
		t.Error("empty id accepted")
	}
	if _, err := r.client.ReportOutcome(ctx, "65f0000000000000000000ff", openhim.Outcome{}); err == nil ||
		!strings.Contains(err.Error(), "status") {
		t.Errorf("outcome without status: %v", err)
	}
	if n := len(r.core.TransactionUpdates()); n != 0 {
		t.Errorf("%d updates sent for refused outcomes", n)
	}

	// A core that answers 503 throughout: every read is retried, then the error says so.
	id := r.post(t)
	if err := r.core.SetDown(openhimtest.Unavailable); err != nil {
		t.Fatal(err)
	}
	done := r.report(t, id, dhis2Outcome(t))
	r.step(t)
	got := <-done
	if !errors.Is(got.err, openhim.ErrUnavailable) || !strings.Contains(got.err.Error(), "unreachable") {
		t.Errorf("core down: %v", got.err)
	}
	// Cancelling ends the wait.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.client.ReportOutcome(cctx, id, dhis2Outcome(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
