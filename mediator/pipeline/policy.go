package pipeline

import (
	"math/rand/v2"
	"time"

	"github.com/tally-hmis/tally/config"
)

// RetryPolicy is the one rule, shared by the mapper and delivery, for a failure that may pass
// (the target down, its metadata unreadable, a timeout): retry with exponential backoff and
// jitter while the attempts and the batch's age allow, then dead-letter. A Retry-After the
// target sent is honoured up to retry.max_delay. Attempts count only tries made while the
// target's circuit was closed (mediator/delivery), so an outage does not use them up; age
// bounds every batch regardless.
type RetryPolicy struct {
	cfg config.Retry
}

// PolicyOf is a target's retry policy (targets[].retry).
func PolicyOf(t *config.Target) RetryPolicy { return RetryPolicy{cfg: t.Retry} }

// Next says whether a batch received at received, which has now failed attempts times, is
// tried again and after how long.
func (p RetryPolicy) Next(attempts int, received, now time.Time, retryAfter time.Duration) (time.Duration, bool) {
	if attempts >= p.cfg.MaxAttempts || now.Sub(received) >= p.cfg.MaxAge.D() {
		return 0, false
	}
	if retryAfter > 0 {
		return min(retryAfter, p.cfg.MaxDelay.D()), true
	}
	return Backoff(max(attempts, 1), p.cfg.InitialDelay.D(), p.cfg.MaxDelay.D()), true
}

// CircuitWait is how long a message that met an open circuit outside the delivery workers
// (the mapper, which no circuit gates) waits before it is tried again: the rest of the
// cool-down plus a little jitter, so the waiting messages do not all come back at once.
func (p RetryPolicy) CircuitWait(remaining time.Duration) time.Duration {
	return remaining + Jitter(p.cfg.InitialDelay.D())
}

// Deferred is the delay of a message a delivery worker returns unsent because the circuit
// opened. It is short on purpose: the circuit, not the message's delay, keeps the workers
// from fetching while the target is away, and a short delay lets the message go out as
// soon as the circuit closes (a probe noticed the target answering again).
func (p RetryPolicy) Deferred() time.Duration {
	return Backoff(1, p.cfg.InitialDelay.D(), p.cfg.MaxDelay.D())
}

// RetryDelay is the delay of a retry that no target's policy governs (storing a dead letter
// or publishing failed): a minute at most.
func RetryDelay(attempt int, floor time.Duration) time.Duration {
	return max(floor, Backoff(attempt, time.Second, time.Minute))
}

// Backoff is initial·2^(attempt-1), capped, with "equal jitter": half fixed, half random, so
// that a burst of failures does not come back as a burst.
func Backoff(attempt int, initial, maxDelay time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	return half + rand.N(half+1)
}

// Jitter is a random delay up to d.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}
