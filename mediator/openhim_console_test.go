package mediator_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// setConsole edits Tally's config in the console, as an operator does; Tally gets it with a
// heartbeat (the core pushes an edit once, spec openhim.md §6).
func (b *behindHIM) setConsole(cfg map[string]any) {
	b.t.Helper()
	full := map[string]any{"log_level": "default", "dry_run_targets": []any{}, "delivery_concurrency": 0, "batch_size": 0}
	for k, v := range cfg {
		full[k] = v
	}
	if err := b.core.SetConfig(himURN, full); err != nil {
		b.t.Fatal(err)
	}
}

// TestOpenHIMConsoleLogLevelDefaultRestoresTheConfiguredLevel: an operator silences Tally to
// "error" from the console, then sets "default" again: the level of the configuration file
// (warn) is back without a restart.
func TestOpenHIMConsoleLogLevelDefaultRestoresTheConfiguredLevel(t *testing.T) {
	emu := emulator(t)
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: emu.URL})
	b.level.Set(slog.LevelDebug) // whatever it was; the file says warn

	b.setConsole(map[string]any{"log_level": "error"})
	waitUntil(t, 10*time.Second, "level error", func() bool { return b.level.Level() == slog.LevelError })
	b.setConsole(map[string]any{"log_level": "default"})
	waitUntil(t, 10*time.Second, "the configured level", func() bool { return b.level.Level() == slog.LevelWarn })
}

// inFlight counts the import requests a target is serving at once and remembers the most.
// The first hold requests wait (up to wait) until hold of them are in flight together, so
// that a limit that admits them is reached deterministically, and one that does not shows.
type inFlight struct {
	next    http.Handler
	now     atomic.Int64
	most    atomic.Int64
	mu      sync.Mutex
	hold    int
	wait    time.Duration
	waiting int
	full    chan struct{}
}

func (f *inFlight) arm(hold int, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold, f.wait, f.waiting, f.full = hold, wait, 0, make(chan struct{})
	f.most.Store(0)
}

func (f *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/dataValueSets") {
		f.next.ServeHTTP(w, r)
		return
	}
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
	f.mu.Lock()
	var full chan struct{}
	if f.waiting < f.hold {
		f.waiting++
		full = f.full
		if f.waiting == f.hold {
			close(full)
		}
	}
	wait := f.wait
	f.mu.Unlock()
	if full != nil {
		select {
		case <-full:
		case <-time.After(wait):
		}
	}
	f.next.ServeHTTP(w, r)
}

// TestOpenHIMConsoleDeliveryConcurrencyAppliesLive: the configuration allows one request in
// flight to the target; the console raises it to 4 and the next transaction's imports run
// 4 at a time, never more; the console's 0 restores the configured 1. The limit is counted at
// the target, and tally_delivery_concurrency_limit shows it.
func TestOpenHIMConsoleDeliveryConcurrencyAppliesLive(t *testing.T) {
	emu := emulator(t)
	count := &inFlight{next: emu.Handler()}
	front := httptest.NewServer(count)
	defer front.Close()
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: front.URL + emu.BasePath(), concurrency: 1, batchSize: 4})
	limit := func() float64 { return b.h.metricValue(t, "tally_delivery_concurrency_limit", "hmis") }
	if got := limit(); got != 1 {
		t.Fatalf("limit %v at start, want the configured 1", got)
	}

	b.setConsole(map[string]any{"delivery_concurrency": 4})
	waitUntil(t, 10*time.Second, "the console's limit", func() bool { return limit() == 4 })
	count.arm(4, 5*time.Second)
	id := b.post("/ingest/him", dvsBody(epiValues("202401", 0)), nil).body["transaction"].(string) // 48 values, 12 batches
	b.h.waitStatus(id, txlog.TxDelivered)
	if got := count.most.Load(); got != 4 {
		t.Errorf("at most %d imports in flight with the console's limit 4, want 4", got)
	}

	b.setConsole(map[string]any{"delivery_concurrency": 0})
	waitUntil(t, 10*time.Second, "the configured limit", func() bool { return limit() == 1 })
	count.arm(2, 200*time.Millisecond)
	id = b.post("/ingest/him", dvsBody(epiValues("202402", 0)), nil).body["transaction"].(string)
	b.h.waitStatus(id, txlog.TxDelivered)
	if got := count.most.Load(); got != 1 {
		t.Errorf("at most %d imports in flight after the console's 0, want the configured 1", got)
	}
}
