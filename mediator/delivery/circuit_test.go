package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/pipeline"
)

func TestBreakerOpensAfterThresholdAndProbesOnce(t *testing.T) {
	var changes []string
	b := newBreaker(3, func(opens int) time.Duration { return time.Duration(opens) * 20 * time.Millisecond },
		func(from, to circuitState) { changes = append(changes, from.String()+">"+to.String()) })
	ctx := context.Background()

	p, err := b.acquire(ctx)
	if err != nil || p.Probe {
		t.Fatalf("closed circuit: %+v, %v", p, err)
	}
	for i := range 2 {
		if !b.failure(p, 0) {
			t.Fatalf("failure %d while closed not counted", i+1)
		}
	}
	if b.State() != circuitClosed {
		t.Fatal("opened before the threshold")
	}
	b.failure(p, 0)
	if b.State() != circuitOpen {
		t.Fatal("not open after the threshold")
	}

	// While open, acquire waits out the cool-down; then exactly one probe is admitted.
	began := time.Now()
	probe, err := b.acquire(ctx)
	if err != nil || !probe.Probe {
		t.Fatalf("after the cool-down: %+v, %v", probe, err)
	}
	if d := time.Since(began); d < 15*time.Millisecond {
		t.Errorf("admitted after %s, before the cool-down", d)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	if _, err := b.acquire(short); err == nil {
		t.Error("a second worker was admitted while the probe is out")
	}
	cancel()

	// A failed probe does not count and opens the circuit for longer.
	if b.failure(probe, 0) {
		t.Error("a failed probe counted as an attempt")
	}
	if r := b.remaining(); r < 30*time.Millisecond {
		t.Errorf("second cool-down %s, want about 40ms", r)
	}
	probe, _ = b.acquire(ctx)
	b.success(probe)
	if b.State() != circuitClosed {
		t.Fatal("a successful probe did not close the circuit")
	}
	want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"}
	if len(changes) != len(want) {
		t.Fatalf("changes = %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Errorf("changes = %v, want %v", changes, want)
			break
		}
	}
}

func TestBreakerTripHonoursRetryAfterAndReleasedProbesPassOn(t *testing.T) {
	b := newBreaker(5, func(int) time.Duration { return time.Millisecond }, nil)
	p, _ := b.acquire(context.Background())
	b.trip(p, 60*time.Millisecond)
	if b.State() != circuitOpen {
		t.Fatal("trip did not open the circuit")
	}
	if r := b.remaining(); r < 50*time.Millisecond {
		t.Errorf("open for %s, want Retry-After's 60ms", r)
	}
	probe, _ := b.acquire(context.Background())
	if !probe.Probe {
		t.Fatal("want a probe")
	}
	b.release(probe) // nothing to fetch
	again, err := b.acquire(context.Background())
	if err != nil || !again.Probe {
		t.Fatalf("a released probe did not pass on: %+v, %v", again, err)
	}
	// A success while open (a request admitted before it opened) closes it too.
	b.success(pipeline.Permit{})
	if b.State() != circuitClosed {
		t.Error("not closed")
	}
}

func TestBackoffIsBoundedWithJitter(t *testing.T) {
	for attempt := 1; attempt < 40; attempt++ {
		d := pipeline.Backoff(attempt, 100*time.Millisecond, 5*time.Second)
		ceil := min(100*time.Millisecond<<min(attempt-1, 20), 5*time.Second)
		if d < ceil/2 || d > ceil {
			t.Errorf("pipeline.Backoff(%d) = %s, want between %s and %s", attempt, d, ceil/2, ceil)
		}
	}
}
