package dhis2test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// capacityPost sends an import of MAL_TREATED for period in the background;
// the returned channel gets the HTTP status (0 when the request failed, e.g.
// because ctx was cancelled).
func capacityPost(ctx context.Context, srv *Server, period string) <-chan int {
	out := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/dataValueSets?idScheme=CODE",
			bytes.NewReader([]byte(treated(period, "1"))))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(SampleUser, SamplePassword)
		res, err := srv.Client().Do(req)
		if err != nil {
			out <- 0
			return
		}
		res.Body.Close()
		out <- res.StatusCode
	}()
	return out
}

// waitStats polls CapacityStats until ok holds (no sleeps in assertions:
// the state is reached through real HTTP requests in flight).
func waitStats(t *testing.T, srv *Server, what string, ok func(CapacityStats) bool) CapacityStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := srv.CapacityStats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("capacity never reached %s: %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// Two slots, a queue of one: the fourth import gets 503 with Retry-After; a
// slot freed lets the queued import in. Imports commit before their cost is
// spent, so a client that gives up still leaves its values stored.
func TestCapacitySaturation(t *testing.T) {
	srv := newTestServer(t, WithCapacity(Capacity{PerRequest: time.Hour, PerValue: -1, MaxConcurrent: 2, MaxQueue: 1}))
	ctxs := make([]context.CancelFunc, 3)
	results := make([]<-chan int, 3)
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		results[i] = capacityPost(ctx, srv, fmt.Sprintf("20240%d", i+1))
		waitStats(t, srv, fmt.Sprintf("%d requests admitted", i+1), func(s CapacityStats) bool { return s.InFlight+s.Queued == i+1 })
	}
	for _, cancel := range ctxs {
		defer cancel()
	}
	if st := srv.CapacityStats(); st.InFlight != 2 || st.Queued != 1 {
		t.Fatalf("stats %+v, want 2 in flight and 1 queued", st)
	}
	r := postJSON(t, srv, "?idScheme=CODE", treated("202404", "1"))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" || r.body["httpStatusCode"] != float64(503) {
		t.Fatalf("overflow: %d %v %s", r.status, r.header, r.raw)
	}
	if st := srv.CapacityStats(); st.Rejected != 1 || srv.Store().Len() != 2 {
		t.Fatalf("stats %+v, stored %d (the two in-flight imports are committed)", st, srv.Store().Len())
	}
	ctxs[0]() // the first client gives up: its slot frees, the queued import runs
	if code := <-results[0]; code != 0 {
		t.Errorf("cancelled client got HTTP %d", code)
	}
	waitStats(t, srv, "the queued import in flight", func(s CapacityStats) bool { return s.Queued == 0 && s.InFlight == 2 && s.Served == 1 })
	if srv.Store().Len() != 3 {
		t.Errorf("%d values stored, want 3", srv.Store().Len())
	}
	ctxs[1]()
	ctxs[2]()
	st := waitStats(t, srv, "all released", func(s CapacityStats) bool { return s.InFlight == 0 && s.Served == 3 })
	if st.Values != 3 || st.TimedOut != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A request that waits longer than QueueTimeout for a slot gets 503.
func TestCapacityQueueTimeout(t *testing.T) {
	srv := newTestServer(t, WithCapacity(Capacity{PerRequest: time.Hour, MaxConcurrent: 1, MaxQueue: 5, QueueTimeout: 20 * time.Millisecond}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held := capacityPost(ctx, srv, "202401")
	waitStats(t, srv, "one in flight", func(s CapacityStats) bool { return s.InFlight == 1 })
	r := postJSON(t, srv, "?idScheme=CODE", treated("202402", "1"))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("queued request: %d %s", r.status, r.raw)
	}
	if st := srv.CapacityStats(); st.TimedOut != 1 || st.Rejected != 0 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, ok := srv.Lookup("MAL_TREATED", "202402", "KL_N_F1", "", "GOV"); ok {
		t.Error("a timed-out request was imported")
	}
	cancel()
	<-held
}

// Under load within capacity every import is served and the totals add up;
// the admin API reports the same.
func TestCapacityServesAll(t *testing.T) {
	srv := newTestServer(t, WithCapacity(Capacity{PerRequest: time.Millisecond, PerValue: time.Microsecond, MaxConcurrent: 3}))
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = <-capacityPost(context.Background(), srv, fmt.Sprintf("2023%02d", i+1))
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("import %d: HTTP %d", i, c)
		}
	}
	st := srv.CapacityStats()
	if !st.Enabled || st.Served != 12 || st.Values != 12 || st.Rejected != 0 || st.InFlight != 0 || st.Config.MaxQueue != DefaultCapacityMaxQueue {
		t.Errorf("stats %+v", st)
	}
	res, err := srv.Client().Get(srv.httpSrv.URL + "/__sim/capacity")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got CapacityStats
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || got.Served != 12 || !got.Enabled {
		t.Errorf("admin: %+v %v", got, err)
	}
	if off := newTestServer(t).CapacityStats(); off.Enabled {
		t.Error("capacity mode on without WithCapacity")
	}
}
