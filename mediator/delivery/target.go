package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
)

// Settings are the delivery settings an operator may change while Tally runs (the OpenHIM
// console's): whether a target's deliveries are dry runs, and how many requests it may
// have in flight.
type Settings interface {
	DryRun(target string) bool
	Concurrency(t *config.Target) int
}

// Targets are the configured targets, by name.
type Targets struct {
	byName map[string]*Target
	names  []string // sorted
	log    *slog.Logger
}

// TargetsConfig is what NewTargets needs besides the configuration.
type TargetsConfig struct {
	// HTTPClient is used for every target; nil builds one per target.
	HTTPClient *http.Client
	// Version is Tally's, sent in the User-Agent.
	Version  string
	Settings Settings
	Metrics  *Metrics
	// ConcurrencyLimit is tally_delivery_concurrency_limit (NewConcurrencyGauge).
	ConcurrencyLimit *prometheus.GaugeVec
	Log              *slog.Logger
}

// NewTargets builds every configured target with its DHIS2 client and its controls. It
// does no I/O.
func NewTargets(cfg *config.Config, c TargetsConfig) (*Targets, error) {
	ts := &Targets{byName: map[string]*Target{}, log: c.Log}
	for i := range cfg.Targets {
		tc := &cfg.Targets[i]
		client, err := dhis2.New(dhis2.Config{
			BaseURL: tc.URL, Username: tc.Username, Password: tc.Password, Token: tc.Token,
			Timeout: tc.Timeout.D(), APIVersion: tc.APIVersion, HTTPClient: c.HTTPClient,
			UserAgent: "tally/" + c.Version,
			// The most requests the target can have in flight: its concurrency, which the
			// OpenHIM console may raise up to this while Tally runs.
			MaxConcurrent: config.MaxTargetConcurrency,
		})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", tc.Name, err)
		}
		t := &Target{cfg: tc, client: client, settings: c.Settings}
		t.control(c.Metrics, c.ConcurrencyLimit, c.Log)
		ts.byName[tc.Name] = t
		ts.names = append(ts.names, tc.Name)
	}
	slices.Sort(ts.names)
	return ts, nil
}

// ErrNoTarget means no target has the name.
var ErrNoTarget = errors.New("no such target")

// Get returns the target called name.
func (ts *Targets) Get(name string) (*Target, bool) {
	t, ok := ts.byName[name]
	return t, ok
}

// Names lists the targets, sorted.
func (ts *Targets) Names() []string { return ts.names }

// Clients are the targets' DHIS2 clients, by name.
func (ts *Targets) Clients() map[string]*dhis2.Client {
	out := make(map[string]*dhis2.Client, len(ts.byName))
	for name, t := range ts.byName {
		out[name] = t.client
	}
	return out
}

// Resize applies the concurrency limits in force now (the OpenHIM console changed them).
func (ts *Targets) Resize() {
	for _, t := range ts.byName {
		t.slots.resize(t.settings.Concurrency(t.cfg))
	}
}

// CircuitRemaining is how long the named target's circuit stays open; 0 when it is not
// open (or there is no such target).
func (ts *Targets) CircuitRemaining(name string) time.Duration {
	if t, ok := ts.byName[name]; ok {
		return t.breaker.remaining()
	}
	return 0
}

// Circuit is the named target's circuit status; false when there is no such target.
func (ts *Targets) Circuit(name string) (CircuitStatus, bool) {
	t, ok := ts.byName[name]
	if !ok {
		return CircuitStatus{}, false
	}
	return t.breaker.status(), true
}

// Unreachable reports whether the named target's circuit is not closed: deliveries to it
// have stopped after repeated failures and only probes go out.
func (ts *Targets) Unreachable(name string) bool {
	t, ok := ts.byName[name]
	return ok && t.breaker.State() != circuitClosed
}

// Name is the target's configured name.
func (t *Target) Name() string { return t.cfg.Name }

// Config is the target's configuration.
func (t *Target) Config() *config.Target { return t.cfg }

// Client is the target's DHIS2 client.
func (t *Target) Client() *dhis2.Client { return t.client }

// dryRun reports whether deliveries to the target are dry runs, by configuration or
// console.
func (t *Target) dryRun() bool { return t.settings.DryRun(t.cfg.Name) }

var _ pipeline.Gate = (*Target)(nil)

// Target is a configured DHIS2 target with its client and the controls delivery applies to
// it: a bound on requests in flight, a circuit breaker, an optional rate limit and the
// request size learned from a 413.
type Target struct {
	cfg      *config.Target
	client   *dhis2.Client
	settings Settings
	slots    *slots
	breaker  *breaker
	limiter  *rate.Limiter // nil: no limit
	// size is the largest request the target took after answering 413; 0 means
	// max_values_per_request. It lasts until restart.
	size atomic.Int64
}

// control gives a target its bound on requests in flight, its breaker and its rate limit.
func (t *Target) control(m *Metrics, limit *prometheus.GaugeVec, log *slog.Logger) {
	name := t.cfg.Name
	t.slots = newSlots(t.settings.Concurrency(t.cfg), limit.WithLabelValues(name))
	if t.cfg.AdaptiveConcurrency {
		t.slots.adaptive()
	}
	retry := t.cfg.Retry
	gauge := m.CircuitState.WithLabelValues(name)
	gauge.Set(float64(circuitClosed))
	t.breaker = newBreaker(circuitThreshold,
		func(opens int) time.Duration {
			return pipeline.Backoff(opens+2, retry.InitialDelay.D(), retry.MaxDelay.D())
		},
		func(from, to circuitState) {
			gauge.Set(float64(to))
			log.Warn("target circuit changed", "target", name, "from", from.String(), "to", to.String())
		})
	if rl := t.cfg.RateLimit; rl.PerSecond > 0 {
		t.limiter = rate.NewLimiter(rate.Limit(rl.PerSecond), max(rl.Burst, 1))
	}
}

// Acquire admits one worker to fetch and deliver: a free slot of the concurrency limit
// first, so that at most the limit of workers even wait for the circuit and the rate limit.
// Every acquire that succeeds is paired with one release.
func (t *Target) Acquire(ctx context.Context) (pipeline.Permit, error) {
	if err := t.slots.acquire(ctx); err != nil {
		return pipeline.Permit{}, err
	}
	p, err := t.breaker.acquire(ctx)
	if err != nil {
		t.slots.release()
		return p, err
	}
	if err := t.wait(ctx); err != nil {
		t.breaker.release(p)
		t.slots.release()
		return pipeline.Permit{}, err
	}
	return p, nil
}

func (t *Target) Release(p pipeline.Permit) {
	t.breaker.release(p)
	t.slots.release()
}

// MaxConcurrency is the most requests in flight a target may be given, in the
// configuration (targets[].concurrency) or from the OpenHIM console; each delivery consumer
// runs this many workers, and its slots admit as many as the limit in force.
const MaxConcurrency = 64

// slots bounds the deliveries in flight to one target. Its size changes at run time (the
// OpenHIM console's delivery_concurrency, and the adaptive limit when the target has one); a
// smaller size takes effect as requests finish, since a request in flight is never cut short.
//
// A freed slot is handed to the worker that has waited longest, and only to it: all of a
// consumer's MaxConcurrency workers wait here while the target works, and waking every one
// of them for each freed slot, to find one taker, cost more CPU than the hand-over
// (BenchmarkSlotsContended).
type slots struct {
	mu       sync.Mutex
	size     int   // the ceiling: targets[].concurrency or the console's
	adapt    *aimd // nil: the ceiling is the limit
	used     int
	requests int // requests in flight to the target
	// waiting are the workers waiting for a slot, longest first. Whenever used is below
	// the limit, none waits (grantLocked keeps it so).
	waiting []chan struct{}
	gauge   prometheus.Gauge
}

func newSlots(size int, gauge prometheus.Gauge) *slots {
	s := &slots{gauge: gauge}
	s.resize(size)
	return s
}

// adaptive makes the limit adapt to the target's answers (adaptive.go), below the size.
func (s *slots) adaptive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adapt = newAIMD(s.size)
	s.setLocked()
}

// limitLocked is the limit in force.
func (s *slots) limitLocked() int {
	if s.adapt != nil {
		return s.adapt.current()
	}
	return s.size
}

// acquire waits for a free slot until ctx ends.
func (s *slots) acquire(ctx context.Context) error {
	s.mu.Lock()
	if s.used < s.limitLocked() {
		s.used++
		s.mu.Unlock()
		return nil
	}
	granted := make(chan struct{}, 1)
	s.waiting = append(s.waiting, granted)
	s.mu.Unlock()
	select {
	case <-granted:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.waiting, granted); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
		return ctx.Err()
	}
	// The slot was handed over as ctx ended: it goes to the next worker.
	s.used--
	s.grantLocked()
	return ctx.Err()
}

// grantLocked hands the slots the limit allows to the workers waiting longest, one each.
func (s *slots) grantLocked() {
	for len(s.waiting) > 0 && s.used < s.limitLocked() {
		s.used++
		s.waiting[0] <- struct{}{} // buffered: the worker takes it when it runs
		s.waiting = slices.Delete(s.waiting, 0, 1)
	}
}

// over reports whether more slots are held than the size allows: the operator lowered it
// while workers held them. The adaptive limit is left out: it moves by one a round trip,
// and a worker that fetched a message under the limit before delivers it (the smaller
// limit takes effect as requests finish), rather than returning it to the stream with a
// retry's delay, which held a batch back for a second each time the limit stepped down.
func (s *slots) over() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used > s.size
}

func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used > 0 {
		s.used--
	}
	s.grantLocked()
}

// resize sets the size, within 1 and MaxConcurrency.
func (s *slots) resize(size int) {
	size = min(max(size, 1), MaxConcurrency)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = size
	if s.adapt != nil {
		s.adapt.setCeiling(size)
	}
	s.setLocked()
}

// begin counts a request to the target going out and reports whether it fills the limit
// in force (the adaptive limit's "in use").
func (s *slots) begin() (full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	return s.requests >= s.limitLocked()
}

// answer is what a request's outcome says about the target's capacity.
type answer int

const (
	answerNone       answer = iota // nothing: a refusal, a cancellation
	answerServed                   // the import ran: its latency counts
	answerOverloaded               // 429, 5xx, busy, timeout, no connection
)

// end counts a request's answer. The adaptive limit, if any, learns from it.
func (s *slots) end(latency time.Duration, a answer, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = max(s.requests-1, 0)
	if s.adapt == nil || a == answerNone {
		return
	}
	before := s.adapt.current()
	if s.adapt.observe(sample{latency: latency, overload: a == answerOverloaded, full: full}) != before {
		s.setLocked()
	}
}

// setLocked publishes the limit in force and hands out the slots a higher one frees.
func (s *slots) setLocked() {
	s.gauge.Set(float64(s.limitLocked()))
	s.grantLocked()
}

// wait takes a token from the rate limit, if there is one.
func (t *Target) wait(ctx context.Context) error {
	if t.limiter == nil {
		return nil
	}
	return t.limiter.Wait(ctx)
}

func (t *Target) requestSize() int {
	if n := int(t.size.Load()); n > 0 && n < t.cfg.MaxValuesPerRequest {
		return n
	}
	return t.cfg.MaxValuesPerRequest
}
