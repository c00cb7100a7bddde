package mediator

import (
	"math/rand/v2"
	"time"

	"github.com/tally-hmis/tally/config"
)

// retryPolicy is the one rule, shared by the mapper and delivery, for a failure that may pass
// (the target down, its metadata unreadable, a timeout): retry with exponential backoff and
// jitter while the attempts and the batch's age allow, then dead-letter. A Retry-After the
// target sent is honoured up to retry.max_delay. Attempts count only tries made while the
// target's circuit was closed (circuit.go), so an outage does not use them up; age bounds
// every batch regardless.
type retryPolicy struct {
	cfg config.Retry
}

func policyOf(t *config.Target) retryPolicy { return retryPolicy{cfg: t.Retry} }

// next says whether a batch received at received, which has now failed attempts times, is
// tried again and after how long.
func (p retryPolicy) next(attempts int, received, now time.Time, retryAfter time.Duration) (time.Duration, bool) {
	if attempts >= p.cfg.MaxAttempts || now.Sub(received) >= p.cfg.MaxAge.D() {
		return 0, false
	}
	if retryAfter > 0 {
		return min(retryAfter, p.cfg.MaxDelay.D()), true
	}
	return backoff(max(attempts, 1), p.cfg.InitialDelay.D(), p.cfg.MaxDelay.D()), true
}

// circuitWait is how long a message that met an open circuit outside the delivery workers
// (the mapper, which no circuit gates) waits before it is tried again: the rest of the
// cool-down plus a little jitter, so the waiting messages do not all come back at once.
func (p retryPolicy) circuitWait(remaining time.Duration) time.Duration {
	return remaining + jitter(p.cfg.InitialDelay.D())
}

// deferred is the delay of a message a delivery worker returns unsent because the circuit
// opened. It is short on purpose: the circuit, not the message's delay, keeps the workers
// from fetching while the target is away, and a short delay lets the message go out as
// soon as the circuit closes (a probe noticed the target answering again).
func (p retryPolicy) deferred() time.Duration {
	return backoff(1, p.cfg.InitialDelay.D(), p.cfg.MaxDelay.D())
}

// retryDelay is the delay of a retry that no target's policy governs (storing a dead letter
// or publishing failed): a minute at most.
func (s *Service) retryDelay(attempt int, floor time.Duration) time.Duration {
	return max(floor, backoff(attempt, time.Second, time.Minute))
}

// backoff is initial·2^(attempt-1), capped, with "equal jitter": half fixed, half random, so
// that a burst of failures does not come back as a burst.
func backoff(attempt int, initial, maxDelay time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	return half + rand.N(half+1)
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}
