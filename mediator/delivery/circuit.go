package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/tally-hmis/tally/mediator/pipeline"
)

// Each target has a circuit breaker, so that an outage does not burn the retry budget of
// every message waiting for it.
//
//   - Closed: workers fetch and deliver. circuitThreshold transient failures in a row (a
//     connection error, a timeout, a 5xx or 429) open it; so does one ErrUnauthorized, since
//     refused credentials hold for every message until an operator acts.
//   - Open: the target's workers stop pulling from TALLY_DELIVER, so the waiting messages
//     stay in the stream untouched: no delivery, no NumDelivered, no attempt. The circuit
//     stays open for a cool-down that grows with each failed probe (retry.initial_delay ×
//     2^(n+2), capped at retry.max_delay, with jitter) and is never shorter than a
//     Retry-After the target sent.
//   - Half-open: one worker fetches one message and sends it as a probe; the others wait. An
//     answer from the target (success, partial success or a permanent refusal: it is up)
//     closes the circuit; a transient failure opens it again.
//
// Attempts are not counted by JetStream's NumDelivered but by the transaction log's delivery
// record, which counts the tries that reached the target while its circuit was closed: a
// failed probe, a message fetched just as the circuit opened (returned with NakWithDelay)
// and one interrupted by shutdown do not count. retry.max_age still bounds every message,
// probe or not, so a target that never recovers dead-letters its messages after max_age.

type circuitState int

// Circuit states, as tally_delivery_circuit_state reports them.
const (
	circuitClosed   circuitState = 0
	circuitHalfOpen circuitState = 1
	circuitOpen     circuitState = 2
)

func (s circuitState) String() string {
	switch s {
	case circuitClosed:
		return "closed"
	case circuitHalfOpen:
		return "half-open"
	case circuitOpen:
		return "open"
	}
	return "unknown"
}

// circuitThreshold is how many transient failures in a row open a target's circuit.
const circuitThreshold = 5

// breaker is one target's circuit. It is safe for concurrent use.
type breaker struct {
	threshold int
	cooldown  func(opens int) time.Duration
	now       func() time.Time
	onChange  func(from, to circuitState)

	mu       sync.Mutex
	state    circuitState
	failures int // transient failures in a row while closed
	opens    int // times opened since the circuit was last closed
	until    time.Time
	probing  bool
	probeGen uint64        // the current or last probe's pipeline.Permit generation
	changed  chan struct{} // closed and replaced on every state change
	// lastSuccess and lastFailure are when a request last reached the target and was
	// answered, and when one last failed transiently (the console shows them).
	lastSuccess, lastFailure time.Time
}

func newBreaker(threshold int, cooldown func(opens int) time.Duration, onChange func(from, to circuitState)) *breaker {
	if onChange == nil {
		onChange = func(circuitState, circuitState) {}
	}
	return &breaker{threshold: max(threshold, 1), cooldown: cooldown, now: time.Now, onChange: onChange,
		changed: make(chan struct{})}
}

// State returns the current state, moving an open circuit whose cool-down is over to
// half-open.
func (b *breaker) State() circuitState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	return b.state
}

// status is the circuit as the console shows it.
func (b *breaker) status() CircuitStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	st := CircuitStatus{State: b.state.String(), LastSuccess: b.lastSuccess, LastFailure: b.lastFailure}
	if b.state == circuitOpen {
		st.OpenFor = b.until.Sub(b.now())
	}
	return st
}

// CircuitStatus is a target's circuit as this replica sees it: its state, how long it
// stays open, and when a request last succeeded or failed transiently (zero: not since
// start).
type CircuitStatus struct {
	State       string        `json:"state"`
	OpenFor     time.Duration `json:"openFor,omitempty"`
	LastSuccess time.Time     `json:"lastSuccess,omitzero"`
	LastFailure time.Time     `json:"lastFailure,omitzero"`
}

// remaining is how long an open circuit stays open; 0 when it is not open.
func (b *breaker) remaining() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	if b.state != circuitOpen {
		return 0
	}
	return b.until.Sub(b.now())
}

// acquire blocks until the worker may fetch a message: at once while closed, as the probe
// when half-open and no probe is out, otherwise when the state changes or ctx ends.
func (b *breaker) acquire(ctx context.Context) (pipeline.Permit, error) {
	for {
		b.mu.Lock()
		b.tick()
		var wait <-chan time.Time
		var timer *time.Timer
		switch {
		case b.state == circuitClosed:
			b.mu.Unlock()
			return pipeline.Permit{}, nil
		case b.state == circuitHalfOpen && !b.probing:
			b.probing = true
			b.probeGen++
			gen := b.probeGen
			b.mu.Unlock()
			return pipeline.Permit{Probe: true, Gen: gen}, nil
		case b.state == circuitOpen:
			timer = time.NewTimer(b.until.Sub(b.now()))
			wait = timer.C
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return pipeline.Permit{}, ctx.Err()
		case <-changed:
		case <-wait:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// release returns a permit that led to no verdict (nothing to fetch, shutdown, a message
// that could not be read). Releasing a permit that success or failure already settled does
// nothing.
func (b *breaker) release(p pipeline.Permit) {
	if !p.Probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.probing || p.Gen != b.probeGen {
		return
	}
	b.probing = false
	b.notify() // let another worker probe
}

// halfOpen ends an open circuit's cool-down now, because the target answered a probe
// outside the delivery path (probe.go): the next worker to ask sends one message as the
// trial. It reports whether the circuit was open.
func (b *breaker) halfOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	if b.state != circuitOpen {
		return false
	}
	b.until = b.now()
	b.set(circuitHalfOpen)
	return true
}

// success records that the target answered: the circuit closes.
func (b *breaker) success(p pipeline.Permit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Probe && p.Gen == b.probeGen {
		b.probing = false
	}
	b.failures, b.opens = 0, 0
	b.lastSuccess = b.now()
	b.set(circuitClosed)
}

// failure records a transient failure and reports whether it counts as an attempt of the
// message: a failed probe does not.
func (b *breaker) failure(p pipeline.Permit, retryAfter time.Duration) (counted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	b.lastFailure = b.now()
	if p.Probe && p.Gen == b.probeGen {
		b.probing = false
		if b.state == circuitHalfOpen {
			b.opens++
			b.open(retryAfter)
			return false
		}
	}
	switch b.state {
	case circuitClosed:
		b.failures++
		if b.failures >= b.threshold {
			b.opens = 1
			b.open(retryAfter)
		}
	case circuitOpen:
		// A request admitted before the circuit opened: respect a later Retry-After.
		if t := b.now().Add(retryAfter); t.After(b.until) {
			b.until = t
		}
	}
	return true
}

// trip opens the circuit at once (the target refused the credentials). The failure does not
// count as an attempt of the message.
func (b *breaker) trip(p pipeline.Permit, retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	if p.Probe && p.Gen == b.probeGen {
		b.probing = false
	}
	b.failures = b.threshold
	b.opens++
	b.open(retryAfter)
}

// open must be called with mu held.
func (b *breaker) open(retryAfter time.Duration) {
	d := max(b.cooldown(b.opens), retryAfter)
	b.until = b.now().Add(d)
	if b.state == circuitOpen {
		b.notify() // waiters recompute their timer
		return
	}
	b.set(circuitOpen)
}

// tick moves an open circuit whose cool-down is over to half-open; mu held.
func (b *breaker) tick() {
	if b.state == circuitOpen && !b.now().Before(b.until) {
		b.set(circuitHalfOpen)
	}
}

// set changes the state and wakes every waiter; mu held.
func (b *breaker) set(to circuitState) {
	if b.state == to {
		return
	}
	from := b.state
	b.state = to
	b.notify()
	b.onChange(from, to)
}

func (b *breaker) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}
