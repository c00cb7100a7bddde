package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// Sinks are the DHIS2 instances the bench delivers to. Both serve the universe's metadata
// and count every value they receive by its key; they differ in what an import costs:
//
//   - counting: a DHIS2-compatible import endpoint that decodes every value in full (Tally's
//     own JSON decoder, adapters/dvs), resolves its key against the universe, counts its
//     receipts and answers with the import summary DHIS2 2.40 would give. Everything else
//     (metadata, system info, ping, authentication) is the emulator's.
//   - emulator: the emulator's validating import engine and store (adapters/dhis2/dhis2test,
//     configured as dhis2-sim runs it, with the universe as its metadata), optionally in
//     capacity mode: a DHIS2 behind a servlet pool, where each import costs time.
//
// Besides the DHIS2 API, a sink serves its control API under /__bench/ (reset, progress,
// state; see sinkServer.control), which is all the harness needs from either kind.

// Sink kinds.
const (
	SinkCounting = "counting"
	SinkEmulator = "emulator"
)

// SinkKinds lists the sink kinds, in the order the end-to-end figures are reported.
var SinkKinds = []string{SinkCounting, SinkEmulator}

// SinkSpec says which sink to run and where.
type SinkSpec struct {
	Kind string `json:"kind"`
	// Addr is the listen address; empty picks a free loopback port.
	Addr string `json:"addr,omitempty"`
	// Capacity, for the emulator, turns on its capacity mode (dhis2test.WithCapacity).
	Capacity *dhis2test.Capacity `json:"capacity,omitempty"`
	// ImportTime, for the counting sink, is how long each import takes at least, one import
	// at a time (after its body was read, before it is counted and answered): a target that
	// is the bottleneck, as DHIS2 is, while the sink itself stays cheap. 0: none.
	ImportTime time.Duration `json:"importTime,omitempty"`
}

// SinkInstance is a running sink.
type SinkInstance struct {
	URL string
	// PID is the sink's own process, whose CPU time the harness reports; 0 when the sink
	// runs inside the harness (then its CPU time is not reported).
	PID  int
	Stop func() error
}

// SinkStarter starts a sink.
type SinkStarter func(ctx context.Context, spec SinkSpec) (*SinkInstance, error)

// sinkBackend is one kind of sink behind the control API.
type sinkBackend interface {
	http.Handler
	// receipts is the number of values received since the last reset.
	receipts() int64
	reset()
	state(start, n int) *SinkState
	close()
}

// sinkServer is a sink: a backend and its control API.
type sinkServer struct {
	kind string
	b    sinkBackend
	ctl  control
}

// newSinkServer builds the sink spec describes.
func newSinkServer(spec SinkSpec) (*sinkServer, error) {
	opts := []dhis2test.Option{dhis2test.WithVersion(sinkVersion), dhis2test.WithBasePath(""), dhis2test.WithMetadata(UniverseMetadata())}
	var b sinkBackend
	switch spec.Kind {
	case SinkCounting:
		if spec.Capacity != nil {
			return nil, errors.New("bench: capacity mode is the emulator's; the counting sink has none")
		}
		sim, err := dhis2test.New(opts...)
		if err != nil {
			return nil, err
		}
		cs := newCountingSink(sim)
		cs.importTime = spec.ImportTime
		b = cs
	case SinkEmulator:
		if spec.ImportTime != 0 {
			return nil, errors.New("bench: an import time is the counting sink's; the emulator has capacity mode")
		}
		if spec.Capacity != nil {
			opts = append(opts, dhis2test.WithCapacity(*spec.Capacity))
		}
		sim, err := dhis2test.New(opts...)
		if err != nil {
			return nil, err
		}
		b = &emulatorSink{sim: sim, res: newResolver()}
	default:
		return nil, fmt.Errorf("bench: unknown sink kind %q; want %s", spec.Kind, strings.Join(SinkKinds, " or "))
	}
	s := &sinkServer{kind: spec.Kind, b: b}
	s.ctl.reset(0)
	return s, nil
}

// sinkVersion is the DHIS2 release both sinks present (system/info, response shapes).
const sinkVersion = "2.40"

func (s *sinkServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/__bench/"); ok {
		s.control(w, r, rest)
		return
	}
	s.b.ServeHTTP(w, r)
	if r.Method == http.MethodPost && isImportPath(r.URL.Path) {
		s.ctl.observe(s.b.receipts())
	}
}

// isImportPath reports whether path is /api/dataValueSets or /api/NN/dataValueSets.
func isImportPath(path string) bool {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(path, "/"), "/api/")
	if !ok {
		return false
	}
	if v, after, found := strings.Cut(rest, "/"); found {
		if _, err := strconv.Atoi(v); err == nil {
			rest = after
		}
	}
	return rest == "dataValueSets"
}

// control serves the sink's control API:
//
//	POST /__bench/reset?expect=N   forget every receipt (and the emulator's store); the next
//	                               run is complete once N values have been received
//	GET  /__bench/progress?wait=D  receipts so far; waits up to D for the run to complete
//	GET  /__bench/state?start=S&n=N  the SinkState of the values [S, S+N)
//	GET  /__bench/health           "ok"
func (s *sinkServer) control(w http.ResponseWriter, r *http.Request, op string) {
	q := r.URL.Query()
	num := func(name string) (int, bool) {
		v, err := strconv.Atoi(q.Get(name))
		if err != nil || v < 0 {
			http.Error(w, fmt.Sprintf("%s=%q: want a whole number", name, q.Get(name)), http.StatusBadRequest)
			return 0, false
		}
		return v, true
	}
	switch {
	case op == "health":
		fmt.Fprintln(w, "ok")
	case op == "reset" && r.Method == http.MethodPost:
		n, ok := num("expect")
		if !ok {
			return
		}
		s.b.reset()
		s.ctl.reset(int64(n))
		w.WriteHeader(http.StatusNoContent)
	case op == "progress":
		wait, err := time.ParseDuration(q.Get("wait"))
		if q.Get("wait") == "" {
			wait, err = 0, nil
		}
		if err != nil || wait < 0 || wait > time.Minute {
			http.Error(w, fmt.Sprintf("wait=%q: want a duration up to 1m", q.Get("wait")), http.StatusBadRequest)
			return
		}
		writeJSON(w, s.ctl.wait(r.Context(), wait))
	case op == "state":
		start, ok1 := num("start")
		n, ok2 := num("n")
		if !ok1 || !ok2 {
			return
		}
		if start+n > UniverseSize {
			http.Error(w, fmt.Sprintf("start+n = %d is beyond the universe (%d values)", start+n, UniverseSize), http.StatusBadRequest)
			return
		}
		st := s.b.state(start, n)
		st.Sink = s.kind
		writeJSON(w, st)
	default:
		http.Error(w, "no such bench control endpoint: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Progress is a sink's view of the current run.
type Progress struct {
	Receipts int64 `json:"receipts"`
	Expect   int64 `json:"expect"`
	Imports  int64 `json:"imports"`
	// Reached is set once Receipts ≥ Expect; ReachedAt is when the import that completed
	// the run had been answered (Unix nanoseconds, the host's wall clock, which the harness
	// shares). LastArrival is when the latest import was answered.
	Reached     bool  `json:"reached"`
	ReachedAt   int64 `json:"reachedAt"`
	LastArrival int64 `json:"lastArrival"`
}

// control tracks one run: how many receipts complete it and when they were reached.
type control struct {
	mu      sync.Mutex
	p       Progress
	reached chan struct{} // closed once p.Reached
}

func (c *control) reset(expect int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p = Progress{Expect: expect}
	c.reached = make(chan struct{})
}

// observe records an answered import and the receipts it brought the total to.
func (c *control) observe(receipts int64) {
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p.Receipts, c.p.LastArrival = receipts, now
	c.p.Imports++
	if !c.p.Reached && c.p.Expect > 0 && receipts >= c.p.Expect {
		c.p.Reached, c.p.ReachedAt = true, now
		close(c.reached)
	}
}

// wait returns the progress once the run is complete, or after d.
func (c *control) wait(ctx context.Context, d time.Duration) Progress {
	c.mu.Lock()
	ch := c.reached
	c.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p
}

// ServeSink runs a sink until ctx ends; ready receives its base URL once it accepts
// connections. `tally bench sink` runs it as a process of its own.
func ServeSink(ctx context.Context, spec SinkSpec, ready func(url string)) error {
	s, err := newSinkServer(spec)
	if err != nil {
		return err
	}
	defer s.b.close()
	addr := spec.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: %s sink: listen on %s: %w", spec.Kind, addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready("http://" + ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("bench: %s sink: %w", spec.Kind, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.b.close() // release imports held by capacity mode
	return srv.Shutdown(sctx)
}

// InProcessSink starts a sink inside the harness's own process (tests, Go benchmarks); its
// CPU time is not reported.
func InProcessSink(ctx context.Context, spec SinkSpec) (*SinkInstance, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- ServeSink(ctx, spec, func(u string) { urls <- u }) }()
	select {
	case u := <-urls:
		return &SinkInstance{URL: u, Stop: func() error { cancel(); return <-done }}, nil
	case err := <-done:
		cancel()
		return nil, err
	}
}
