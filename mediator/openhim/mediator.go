package openhim

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// Registration retry: exponential from registerBackoffMin, capped at registerBackoffMax.
const (
	registerBackoffMin = time.Second
	registerBackoffMax = time.Minute
)

// Clock is the time source of a Mediator; tests inject a fake (see openhimtest.Clock).
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once after d, and a stop function.
	NewTimer(d time.Duration) (c <-chan time.Time, stop func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// ErrAlreadyRunning is returned by a second call to Mediator.Run.
var ErrAlreadyRunning = errors.New("openhim: mediator already running")

// Mediator keeps Tally registered with the core: it registers in the background (retrying
// with bounded exponential backoff), heartbeats, polls for console config and hands changes
// to the caller. An unreachable core never blocks Tally; do not tie readiness to it.
type Mediator struct {
	client   *Client
	reg      *Registration
	interval time.Duration
	poll     time.Duration
	log      *slog.Logger
	clock    Clock
	started  time.Time

	mu      sync.Mutex
	running bool
	done    chan struct{}
	state   State
	config  map[string]any
}

// State is a snapshot of the mediator's link with the core, for status pages and metrics.
type State struct {
	// Registered is true once the core accepted the registration, until a heartbeat finds the
	// mediator gone (removed in the console), which triggers a new registration.
	Registered bool
	// LastError is the most recent failure; nil after a successful call.
	LastError error
	// RegisterAttempts counts registration calls, successful or not.
	RegisterAttempts int
	// HeartbeatFailures counts failed heartbeats.
	HeartbeatFailures int
	// RegisteredAt and LastHeartbeat are zero until they first happen.
	RegisteredAt  time.Time
	LastHeartbeat time.Time
	// ConfigChanges counts calls to the onConfig callback.
	ConfigChanges int
}

// New validates cfg, builds the registration for version and sources, and returns a Mediator
// ready to Run. It makes no request.
func New(cfg Config, version string, sources []Source, opts ...Option) (*Mediator, error) {
	cfg.Enabled = true
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	reg, err := BuildRegistration(cfg, version, sources)
	if err != nil {
		return nil, err
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	client, err := NewClient(cfg, opts...)
	if err != nil {
		return nil, err
	}
	return &Mediator{
		client:   client,
		reg:      reg,
		interval: cfg.HeartbeatInterval,
		poll:     cfg.ConfigPollInterval,
		log:      o.logger.With("component", "openhim", "urn", cfg.URN),
		clock:    o.clock,
		started:  o.clock.Now(),
		done:     make(chan struct{}),
	}, nil
}

// Client is the API client the mediator uses, e.g. for ReportOutcome.
func (m *Mediator) Client() *Client { return m.client }

// Registration is the body the mediator registers with.
func (m *Mediator) Registration() *Registration { return m.reg }

// Run starts registering and heartbeating in a background goroutine and returns at once.
// The work stops when ctx is cancelled; Done is closed then.
//
// onConfig (may be nil) is called from that goroutine with a copy of the console config the
// first time the core sends it and whenever it changes. Keys are those of ConfigDefs; use
// ParseOverrides to decode them. It should return quickly.
func (m *Mediator) Run(ctx context.Context, onConfig func(map[string]any)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		return ErrAlreadyRunning
	}
	m.running = true
	go m.loop(ctx, onConfig)
	return nil
}

// Done is closed when the goroutine started by Run has stopped.
func (m *Mediator) Done() <-chan struct{} { return m.done }

// Registered reports whether the core has accepted the registration.
func (m *Mediator) Registered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.Registered
}

// LastError is the most recent failure talking to the core, or nil.
func (m *Mediator) LastError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.LastError
}

// State returns a snapshot of the link with the core.
func (m *Mediator) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Config returns a copy of the last console config received, or nil.
func (m *Mediator) Config() map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneConfig(m.config)
}

func (m *Mediator) loop(ctx context.Context, onConfig func(map[string]any)) {
	defer close(m.done)
	ls := &loopState{backoff: registerBackoffMin, forceConfig: true}
	for {
		if !m.Registered() {
			registered, alive := m.register(ctx, ls)
			if !alive {
				return
			}
			if !registered {
				continue
			}
		}
		if !m.heartbeat(ctx, ls, onConfig) || !m.sleep(ctx, m.interval) {
			return
		}
	}
}

// loopState is what the loop remembers between rounds.
type loopState struct {
	backoff     time.Duration // before the next registration attempt
	lastErrText string
	forceConfig bool // ask for the config with the next heartbeat
	lastPoll    time.Time
	haveConfig  bool
}

// report logs each distinct failure once at Warn, repeats at Debug, to keep logs readable
// while a core is down for hours.
func (m *Mediator) report(ls *loopState, what string, err error) {
	switch {
	case err.Error() == ls.lastErrText:
		m.log.Debug("openhim: "+what+" failed again", "err", err)
	case errors.Is(err, ErrInvalid):
		// Retrying cannot fix a body the core refuses; it still retries at the capped
		// backoff so a corrected core (or a new Tally) recovers without a restart.
		m.log.Error("openhim: "+what+" refused by the core", "err", err)
	default:
		m.log.Warn("openhim: "+what+" failed", "err", err)
	}
	ls.lastErrText = err.Error()
}

// register registers the mediator with the core, waiting the backoff after a failure; alive
// is false once ctx ended.
func (m *Mediator) register(ctx context.Context, ls *loopState) (registered, alive bool) {
	err := m.client.Register(ctx, m.reg)
	if ctx.Err() != nil {
		return false, false
	}
	m.mu.Lock()
	m.state.RegisterAttempts++
	if err != nil {
		m.state.LastError = err
	}
	m.mu.Unlock()
	if err != nil {
		m.report(ls, "registration", err)
		if !m.sleep(ctx, ls.backoff) {
			return false, false
		}
		ls.backoff = min(ls.backoff*2, registerBackoffMax)
		return false, true
	}
	m.mu.Lock()
	m.state.Registered, m.state.LastError, m.state.RegisteredAt = true, nil, m.clock.Now()
	m.mu.Unlock()
	m.log.Info("openhim: registered with the core", "version", m.reg.Version)
	ls.lastErrText, ls.backoff, ls.forceConfig = "", registerBackoffMin, true
	return true, true
}

// heartbeat sends one heartbeat, asking for the console config when due, and hands a
// changed config to onConfig; false once ctx ended.
func (m *Mediator) heartbeat(ctx context.Context, ls *loopState, onConfig func(map[string]any)) bool {
	now := m.clock.Now()
	want := ls.forceConfig || now.Sub(ls.lastPoll) >= m.poll
	cfg, err := m.client.Heartbeat(ctx, now.Sub(m.started), want)
	if ctx.Err() != nil {
		return false
	}
	m.mu.Lock()
	if err != nil {
		m.state.LastError = err
		m.state.HeartbeatFailures++
		if errors.Is(err, ErrNotFound) {
			m.state.Registered = false
		}
	} else {
		m.state.LastError = nil
		m.state.LastHeartbeat = now
	}
	m.mu.Unlock()
	switch {
	case errors.Is(err, ErrNotFound):
		m.log.Warn("openhim: the core no longer knows this mediator; registering again")
	case err != nil:
		m.report(ls, "heartbeat", err)
		// The answer may have carried a pushed config; ask for it explicitly next time.
		ls.forceConfig = true
	default:
		ls.lastErrText = ""
		ls.forceConfig = false
		if want {
			ls.lastPoll = now
		}
		if cfg != nil && (!ls.haveConfig || !reflect.DeepEqual(cfg, m.Config())) {
			ls.haveConfig = true
			m.takeConfig(cfg, onConfig)
		}
	}
	return true
}

// takeConfig keeps a changed console config and hands a copy to onConfig.
func (m *Mediator) takeConfig(cfg map[string]any, onConfig func(map[string]any)) {
	m.mu.Lock()
	m.config = cfg
	m.state.ConfigChanges++
	m.mu.Unlock()
	m.log.Info("openhim: console config received", "keys", len(cfg))
	if onConfig != nil {
		onConfig(cloneConfig(cfg))
	}
}

// sleep waits d on the mediator's clock; false when ctx ended first.
func (m *Mediator) sleep(ctx context.Context, d time.Duration) bool {
	c, stop := m.clock.NewTimer(d)
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-c:
		return true
	}
}

// cloneConfig copies a decoded JSON object deeply enough that callers cannot alter ours.
func cloneConfig(in map[string]any) map[string]any {
	if in == nil {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneConfig(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}
