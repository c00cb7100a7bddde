package mediator_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// stopDuring starts Stop while a delivery is in flight and checks that readiness has gone
// false by the time Stop returns; it returns how long Stop took.
func stopDuring(t *testing.T, h *tally, cnt *counter) time.Duration {
	t.Helper()
	waitUntil(t, 5*time.Second, "a delivery in flight", func() bool { return cnt.inFlight.Load() > 0 })
	svc := h.svc
	began := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- svc.Stop(ctx)
	}()
	// Readiness goes false at once, before the work in flight is finished.
	waitUntil(t, 2*time.Second, "readiness to go false", func() bool {
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code == http.StatusServiceUnavailable
	})
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
	h.svc = nil
	return time.Since(began)
}

func TestShutdownFinishesTheDeliveryInFlight(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: importPath, Delay: dhis2test.Duration(500 * time.Millisecond)})
	cnt := newCounter(emu.Handler())
	front := httptest.NewServer(cnt)
	defer front.Close()
	c := testConfig{dir: t.TempDir(), shutdown: "5s", targets: []testTarget{{name: "hmis", url: front.URL + emu.BasePath()}}}
	h := startConfigured(t, c, mediator.Options{})
	id := h.ingest(dvsBody(epiValues("202401", 0)))

	stopDuring(t, h, cnt)
	// The request in flight was allowed to finish, and was acknowledged: a restart finds
	// the transaction delivered and sends nothing again.
	if n := emu.Store().Len(); n != 48 {
		t.Fatalf("emulator holds %d values after a graceful stop, want 48", n)
	}
	imports := emu.ImportRequests()
	h = startConfigured(t, c, mediator.Options{})
	h.waitStatus(id, txlog.TxDelivered)
	if n := emu.ImportRequests(); n != imports {
		t.Errorf("the restart sent %d more import requests, want none", n-imports)
	}
}

func TestShutdownReturnsAnUnfinishedDeliveryToTheStream(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	hang := emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultHang, Path: importPath})
	cnt := newCounter(emu.Handler())
	front := httptest.NewServer(cnt)
	defer front.Close()
	defer emu.Close() // first: releases a hanging request that front.Close would wait for
	// ack_wait + timeout is 35s: a message merely abandoned would not come back for that
	// long. One returned with a nak is delivered as soon as Tally is back.
	c := testConfig{dir: t.TempDir(), shutdown: "300ms", ackWait: "30s",
		targets: []testTarget{{name: "hmis", url: front.URL + emu.BasePath(), timeout: "5s"}}}
	h := startConfigured(t, c, mediator.Options{})
	id := h.ingest(dvsBody(epiValues("202401", 0)))

	if d := stopDuring(t, h, cnt); d > 3*time.Second {
		t.Errorf("stop took %s with a 300ms grace", d)
	}
	emu.Faults().Remove(hang)
	began := time.Now()
	h = startConfigured(t, c, mediator.Options{})
	tx := h.waitStatus(id, txlog.TxDelivered)
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("redelivery took %s: the message was not returned to the stream", d)
	}
	assertStoredOnce(t, emu, 48)
	// The interrupted try was Tally's doing, not the target's: it is not an attempt.
	assertAttemptsBounded(t, tx, 1)
}

func TestDeliveryMetrics(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	g := &gate{next: emu.Handler()}
	front := httptest.NewServer(g)
	defer front.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 24, targets: []testTarget{{
		name: "hmis", url: front.URL + emu.BasePath(), retry: "{initial_delay: 20ms, max_delay: 100ms, max_attempts: 100}",
	}}}, mediator.Options{})
	id := h.ingest(dvsBody(append(epiValues("202401", 0), dv{"EPI_BCG", "202401", "KL_NOWHERE", "F_LT1", "", "1"})))

	// While the target is down, the backlog shows.
	waitUntil(t, 5*time.Second, "the circuit to open", func() bool {
		return h.metricValue(t, "tally_delivery_circuit_state", "hmis") == 2
	})
	waitUntil(t, 5*time.Second, "the backlog to age", func() bool {
		return h.metricValue(t, "tally_delivery_oldest_undelivered_seconds", "hmis") > 0.2
	})
	if n := h.metricValue(t, "tally_consumer_pending_messages", "tally-deliver-hmis"); n != 3 {
		t.Errorf("tally_consumer_pending_messages{consumer=tally-deliver-hmis} = %v, want 3", n)
	}
	if n := h.metricValue(t, "tally_delivery_retries_total", "hmis"); n < 1 {
		t.Errorf("tally_delivery_retries_total = %v", n)
	}
	g.open.Store(true)
	h.waitStatus(id, txlog.TxPartiallyDelivered)
	for name, want := range map[string]float64{
		"tally_delivery_oldest_undelivered_seconds": 0, "tally_delivery_circuit_state": 0,
	} {
		if v := h.metricValue(t, name, "hmis"); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := h.metricValue(t, "tally_consumer_pending_messages", "tally-deliver-hmis"); v != 0 {
		t.Errorf("pending = %v after delivery", v)
	}

	problems, err := testutil.GatherAndLint(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"tally_delivery_retries_total", `tally_dlq_messages_total{reason="rejected",target="hmis"} 1`,
		"tally_delivery_oldest_undelivered_seconds", "tally_consumer_pending_messages", "tally_delivery_circuit_state",
		"tally_dlq_replayed_total", "tally_dlq_discarded_total", "tally_delivery_deferred_total", "tally_delivery_request_splits_total"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}
