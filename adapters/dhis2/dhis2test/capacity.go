package dhis2test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Capacity mode: a DHIS2 behind a servlet thread pool, for benchmarks and
// overload tests. Each import (POST /api/dataValueSets) holds one of
// MaxConcurrent slots for PerRequest + PerValue × values; requests beyond
// that wait in a queue of at most MaxQueue; a request that finds the queue
// full, or waits longer than QueueTimeout, is answered 503 with
// Retry-After: 1, as a proxy or Tomcat's refused connection would surface.
//
// Where the defaults come from:
//   - MaxConcurrent 200 and MaxQueue 100 are Tomcat's HTTP connector
//     defaults (maxThreads, acceptCount; tomcat.apache.org
//     tomcat-8.0-doc/config/http.html), which DHIS2's Tomcat deployments
//     keep unless tuned. Tomcat's acceptCount is a TCP backlog: there the
//     overflow is a refused connection, here a 503, so clients see a
//     classifiable answer.
//   - PerRequest 50ms and PerValue 1ms (about 1,000 values per second per
//     busy import) are assumptions: no published throughput figure for
//     /api/dataValueSets is known (spec dhis2.md §12 "Performance"). Measure
//     the target and set them.
//
// The import itself runs (and commits) first, inside the slot; the slot is
// then held until PerRequest + PerValue × values after it was taken, before
// the answer is written. The emulator's own work is part of that cost, not
// added to it: the parameters stand for what a whole import costs the real
// server, and the sink must be able to serve what they promise (MaxConcurrent
// / cost), or "share of capacity" would be measured against a figure no client
// can reach. A client that gives up early still leaves its values stored, as
// with a real server whose transaction outlives the connection. The wait ends
// early when the client disconnects or the server closes.

// Capacity defaults applied by WithCapacity to zero fields.
const (
	DefaultCapacityPerRequest    = 50 * time.Millisecond
	DefaultCapacityPerValue      = time.Millisecond
	DefaultCapacityMaxConcurrent = 200
	DefaultCapacityMaxQueue      = 100
)

// Capacity configures capacity mode (see WithCapacity).
type Capacity struct {
	// PerRequest and PerValue are the time an import holds its slot.
	// Negative means zero (no cost).
	PerRequest time.Duration `json:"perRequest"`
	PerValue   time.Duration `json:"perValue"`
	// MaxConcurrent imports run at once; MaxQueue more may wait. A negative
	// MaxQueue means no queue (every request beyond MaxConcurrent is a 503).
	MaxConcurrent int `json:"maxConcurrent"`
	MaxQueue      int `json:"maxQueue"`
	// QueueTimeout bounds the wait for a slot (0: as long as the client waits).
	QueueTimeout time.Duration `json:"queueTimeout"`
}

// CapacityStats is the state of capacity mode.
type CapacityStats struct {
	Enabled  bool     `json:"enabled"`
	Config   Capacity `json:"config"`
	InFlight int      `json:"inFlight"` // imports holding a slot
	Queued   int      `json:"queued"`   // imports waiting for one
	Served   int64    `json:"served"`   // imports that held a slot and finished
	Rejected int64    `json:"rejected"` // 503: queue full
	TimedOut int64    `json:"timedOut"` // 503: waited longer than QueueTimeout
	Values   int64    `json:"values"`   // values the served imports carried
}

// WithCapacity turns capacity mode on; zero fields take the Default*
// values.
func WithCapacity(c Capacity) Option {
	return func(cfg *config) error {
		if c.PerRequest == 0 {
			c.PerRequest = DefaultCapacityPerRequest
		}
		if c.PerValue == 0 {
			c.PerValue = DefaultCapacityPerValue
		}
		if c.MaxConcurrent == 0 {
			c.MaxConcurrent = DefaultCapacityMaxConcurrent
		}
		if c.MaxQueue == 0 {
			c.MaxQueue = DefaultCapacityMaxQueue
		}
		if c.MaxConcurrent < 0 || c.QueueTimeout < 0 {
			return errors.New("dhis2test: WithCapacity: MaxConcurrent and QueueTimeout must not be negative")
		}
		c.PerRequest, c.PerValue, c.MaxQueue = max(c.PerRequest, 0), max(c.PerValue, 0), max(c.MaxQueue, 0)
		cfg.capacity = &c
		return nil
	}
}

// gate is the slot pool and queue of capacity mode.
type gate struct {
	cfg   Capacity
	slots chan struct{}

	mu     sync.Mutex
	queued int

	inFlight atomic.Int64
	served   atomic.Int64
	rejected atomic.Int64
	timedOut atomic.Int64
	values   atomic.Int64
}

func newGate(c *Capacity) *gate {
	if c == nil {
		return nil
	}
	return &gate{cfg: *c, slots: make(chan struct{}, c.MaxConcurrent)}
}

var (
	errQueueFull    = errors.New("import queue is full")
	errQueueTimeout = errors.New("no import slot within the queue timeout")
)

// acquire takes a slot, waiting in the queue if there is room. It returns
// errQueueFull, errQueueTimeout, or the context's error.
func (g *gate) acquire(ctx context.Context, closing <-chan struct{}) error {
	select {
	case g.slots <- struct{}{}:
		g.inFlight.Add(1)
		return nil
	default:
	}
	g.mu.Lock()
	if g.queued >= g.cfg.MaxQueue {
		g.mu.Unlock()
		g.rejected.Add(1)
		return errQueueFull
	}
	g.queued++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.queued--
		g.mu.Unlock()
	}()
	var timeout <-chan time.Time
	if g.cfg.QueueTimeout > 0 {
		t := time.NewTimer(g.cfg.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case g.slots <- struct{}{}:
		g.inFlight.Add(1)
		return nil
	case <-timeout:
		g.timedOut.Add(1)
		return errQueueTimeout
	case <-ctx.Done():
		return ctx.Err()
	case <-closing:
		return errors.New("server closing")
	}
}

// hold keeps the slot taken at start until the import's cost has passed, and releases it.
func (g *gate) hold(ctx context.Context, closing <-chan struct{}, start time.Time, values int) {
	defer func() {
		g.inFlight.Add(-1)
		g.served.Add(1)
		g.values.Add(int64(values))
		<-g.slots
	}()
	left := time.Until(start.Add(g.cfg.PerRequest + time.Duration(values)*g.cfg.PerValue))
	if left <= 0 {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-closing:
	}
}

// CapacityStats reports capacity mode's state (Enabled false when off).
func (s *Server) CapacityStats() CapacityStats {
	g := s.gate
	if g == nil {
		return CapacityStats{}
	}
	g.mu.Lock()
	queued := g.queued
	g.mu.Unlock()
	return CapacityStats{Enabled: true, Config: g.cfg, InFlight: int(g.inFlight.Load()), Queued: queued,
		Served: g.served.Load(), Rejected: g.rejected.Load(), TimedOut: g.timedOut.Load(), Values: g.values.Load()}
}

// admit runs an import under capacity mode: it answers 503 itself when no
// slot can be had (and returns false); otherwise it returns a function to
// call with the import's value count once the import ran, which spends the
// cost and frees the slot.
// The function may be called more than once; only the first call counts.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (func(values int), bool) {
	if s.gate == nil {
		return func(int) {}, true
	}
	if err := s.gate.acquire(r.Context(), s.closing); err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("Service unavailable: %v", err))
		return nil, false
	}
	start := time.Now()
	var once sync.Once
	return func(values int) { once.Do(func() { s.gate.hold(r.Context(), s.closing, start, values) }) }, true
}

// valuesOf is the number of values an import summary accounted for.
func valuesOf(sum *summary) int {
	c := sum.count
	return c.imported + c.updated + c.deleted + c.ignored
}
