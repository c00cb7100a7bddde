package mediator_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestAdaptiveConcurrencyShrinksOn503AndGrowsWhenHealthy runs a target with
// adaptive_concurrency through the real service. The target is the emulator in capacity
// mode (four imports at once, 50 ms each: a servlet pool, adapters/dhis2/dhis2test/capacity.go),
// so that its answers take a steady time and more requests in flight are worth it. Healthy,
// it lets the limit (tally_delivery_concurrency_limit) grow from one; answering 503 to every
// import — what a DHIS2 behind an overloaded proxy or a full Tomcat queue returns, the
// classifying client's transient class (adapters/dhis2/classify.go) — makes it shrink to one;
// healthy again, it grows again, and every value is stored once.
func TestAdaptiveConcurrencyShrinksOn503AndGrowsWhenHealthy(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"), dhis2test.WithCapacity(dhis2test.Capacity{
		PerRequest: 50 * time.Millisecond, PerValue: -1, MaxConcurrent: 4, MaxQueue: 8, QueueTimeout: 5 * time.Second}))
	defer emu.Close()
	cnt := newCounter(emu.Handler())
	front := httptest.NewServer(cnt)
	defer front.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 2, targets: []testTarget{{
		name: "hmis", url: front.URL + emu.BasePath(), concurrency: 8, adaptive: true,
		retry: "{initial_delay: 20ms, max_delay: 100ms, max_attempts: 1000}",
	}}}, mediator.Options{})
	limit := func() float64 { return h.metricValue(t, "tally_delivery_concurrency_limit", "hmis") }
	if got := limit(); got != 1 {
		t.Fatalf("adaptive limit %v at start, want 1", got)
	}

	// Healthy: 72 batches of two values.
	var ids []string
	for _, pe := range []string{"202401", "202402", "202403"} {
		ids = append(ids, h.ingest(dvsBody(epiValues(pe, 0))))
	}
	waitUntil(t, 30*time.Second, "the limit to grow past 2", func() bool { return limit() > 2 })
	for _, id := range ids {
		h.waitStatus(id, txlog.TxDelivered)
	}

	// Every import answered 503: the limit comes down to one.
	cnt.setPoison(func([]byte) int { return http.StatusServiceUnavailable })
	id := h.ingest(dvsBody(epiValues("202404", 0)))
	waitUntil(t, 30*time.Second, "the limit to shrink to 1", func() bool { return limit() == 1 })

	// Healthy again: the waiting batches go out and the limit grows from one.
	cnt.setPoison(nil)
	ids = []string{id}
	for _, pe := range []string{"202405", "202406"} {
		ids = append(ids, h.ingest(dvsBody(epiValues(pe, 0))))
	}
	waitUntil(t, 30*time.Second, "the limit to grow again", func() bool { return limit() > 1 })
	for _, id := range ids {
		h.waitStatus(id, txlog.TxDelivered)
	}
	assertStoredOnce(t, emu, 6*48)
	if n := len(h.deadLetters("")); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	if st := emu.CapacityStats(); st.Rejected+st.TimedOut != 0 {
		t.Errorf("the emulator refused %d imports for a full queue and timed out %d: the limit overran it", st.Rejected, st.TimedOut)
	}
}
