package delivery

import (
	"testing"
	"time"
)

// The controller is fed latencies, never reads a clock: these tests drive its decisions
// with made-up answers.

const ms = time.Millisecond

// feed gives the controller n answers of the same latency with the limit in use, and
// returns the limit after them.
func feed(a *aimd, n int, latency time.Duration) int {
	for range n {
		a.observe(sample{latency: latency, full: true})
	}
	return a.current()
}

// step feeds n answers of one latency (feed) and fails unless the limit is then want.
func step(t *testing.T, a *aimd, n int, latency time.Duration, want int, what string) {
	t.Helper()
	if got := feed(a, n, latency); got != want {
		t.Fatalf("%s: the limit is %d, want %d", what, got, want)
	}
}

func TestAIMDSlowStartGrowsWhileAnswersStayFast(t *testing.T) {
	a := newAIMD(16)
	if got := a.current(); got != 1 {
		t.Fatalf("starts at %d, want 1", got)
	}
	// Slow start: half as many again per window of fast answers (at least one more), so the
	// limit goes 1, 2, 3, 4, 6, 10, 15, 16: 41 answers, seven round trips.
	step(t, a, 6, 100*ms, 4, "6 fast answers from 1")
	step(t, a, 34, 100*ms, 15, "40 fast answers from 1")
	step(t, a, 1, 100*ms, 16, "41 fast answers from 1 reach the ceiling")
	step(t, a, 50, 100*ms, 16, "more fast answers keep it at the ceiling")
}

func TestAIMDDoesNotGrowALimitNotInUse(t *testing.T) {
	a := newAIMD(16)
	feed(a, 6, 100*ms) // 4
	for range 100 {
		a.observe(sample{latency: 100 * ms, full: false}) // the stream feeds one at a time
	}
	if got := a.current(); got != 4 {
		t.Fatalf("a limit never used grew to %d, want 4", got)
	}
}

func TestAIMDOverloadHalvesOncePerWindow(t *testing.T) {
	a := newAIMD(16)
	feed(a, 41, 100*ms) // 16
	// Sixteen requests were in flight when the target started refusing: every one of them
	// may come back 503, but they were sent under the old limit, so the limit halves once.
	for range 8 {
		a.observe(sample{overload: true, full: true})
	}
	if got := a.current(); got != 8 {
		t.Fatalf("after a window of overload answers the limit is %d, want 16/2 = 8", got)
	}
	// The next window of refusals halves it again.
	a.observe(sample{overload: true, full: true})
	if got := a.current(); got != 4 {
		t.Fatalf("a refusal in the next window left the limit at %d, want 4", got)
	}
	// The rest of the window in which it halved is answers to requests sent before: they
	// judge nothing. Then, out of slow start, growth is one per window of fast answers.
	step(t, a, 3, 100*ms, 4, "the rest of the halving's window judges nothing")
	step(t, a, 4, 100*ms, 5, "a fast window")
	step(t, a, 5, 100*ms, 6, "another fast window")
}

func TestAIMDOverloadNeverGoesBelowOne(t *testing.T) {
	a := newAIMD(4)
	for range 20 {
		a.observe(sample{overload: true, full: true})
	}
	if got := a.current(); got != 1 {
		t.Fatalf("limit %d after overloads, want 1", got)
	}
}

func TestAIMDSlowAnswersShrinkTheLimit(t *testing.T) {
	a := newAIMD(8)
	feed(a, 16, 100*ms) // 8
	// The target queues: answers twice as slow as the fastest seen. The first one ends slow
	// start a step back; then the limit comes down one per window.
	step(t, a, 1, 200*ms, 7, "the first answer at twice the baseline")
	step(t, a, 7, 200*ms, 6, "a slow window")
	// Within the tolerance it grows again, one per window.
	step(t, a, 6, 120*ms, 7, "a window within the tolerance")
}

func TestAIMDCeilingFollowsTheConsole(t *testing.T) {
	a := newAIMD(16)
	feed(a, 15, 100*ms)
	a.setCeiling(3)
	if got := a.current(); got != 3 {
		t.Fatalf("the console lowered the ceiling to 3, the limit is %d", got)
	}
	a.setCeiling(10)
	if got := a.current(); got != 3 {
		t.Fatalf("raising the ceiling raised the limit itself to %d; it should grow from what it learnt", got)
	}
	step(t, a, 50, 100*ms, 10, "fast answers under a ceiling of 10")
}

// TestAIMDRelearnsATargetThatSlowedForGood: the fastest answer was 100 ms; the target
// becomes three times slower for good. The limit comes down to one, where the window sets the
// new baseline, and grows again from there instead of staying at one.
func TestAIMDRelearnsATargetThatSlowedForGood(t *testing.T) {
	a := newAIMD(8)
	feed(a, 16, 100*ms) // 8
	for range 100 {
		if a.current() == 1 {
			break
		}
		feed(a, 1, 300*ms)
	}
	if got := a.current(); got != 1 {
		t.Fatalf("answers three times slower left the limit at %d, want 1", got)
	}
	feed(a, 1, 300*ms) // a window at one: the new baseline
	if got := feed(a, 2, 300*ms); got < 3 {
		t.Fatalf("at the new baseline the limit stays at %d; want it growing", got)
	}
}

// capacityTarget models a server of c slots with a queue of q (dhis2test's capacity mode):
// a closed loop of n requests answers each in max(1, n/c) service times (Little's law), and
// more than c+q in flight are refused.
type capacityTarget struct {
	c, q    int
	service time.Duration
}

func (s capacityTarget) answer(n int) sample {
	if n > s.c+s.q {
		return sample{overload: true, full: true}
	}
	lat := s.service * time.Duration(max(n, s.c)) / time.Duration(s.c)
	return sample{latency: lat, full: true}
}

// TestAIMDHoldsACapacityTargetBusyWithoutOverflowingItsQueue: against a server of 4 slots
// and 4 queue places, the limit reaches 4 (every slot busy) and stays between 4 and 8 from
// then on, so the server is kept at its capacity and never refuses a request.
func TestAIMDHoldsACapacityTargetBusyWithoutOverflowingItsQueue(t *testing.T) {
	srv := capacityTarget{c: 4, q: 4, service: 120 * ms}
	a := newAIMD(16)
	reached := false
	for round := range 500 {
		n := a.current()
		s := srv.answer(n)
		if s.overload {
			t.Fatalf("round %d: %d requests in flight overflowed the queue", round, n)
		}
		for range n {
			a.observe(s)
		}
		if reached && (n < srv.c || n > srv.c+srv.q) {
			t.Fatalf("round %d: limit %d left [%d, %d]", round, n, srv.c, srv.c+srv.q)
		}
		reached = reached || n >= srv.c
	}
	if !reached {
		t.Fatalf("the limit never reached the server's %d slots", srv.c)
	}
}

// queueingServer is a server of c slots and a FIFO queue of q, in virtual time: each
// request holds a slot for service once it has one; one that finds every slot and queue
// place taken is refused at once (dhis2test's capacity mode, without its queue timeout).
// Unlike capacityTarget, answers come back one by one, as they do from a real server: the
// first answers of a round arrive while the rest of it is still in the queue.
type queueingServer struct {
	c, q    int
	service time.Duration
}

// simulate runs the controller against s for answers answers, a worker sending a request
// whenever fewer are in flight than the limit (as delivery's workers do), and returns the
// requests refused and the least and largest number in flight once every slot was first busy.
func (s queueingServer) simulate(a *aimd, answers int) (refused, low, high int) {
	type req struct {
		sent, done time.Duration
		full       bool
	}
	var now time.Duration
	var inFlight []*req // sent and not answered, in the order they will be answered
	slotFree := make([]time.Duration, s.c)
	low, high = -1, 0
	send := func() {
		for len(inFlight) < a.current() {
			r := &req{sent: now, full: len(inFlight)+1 >= a.current()}
			// The earliest free slot serves it; it waits in the queue until then.
			i := 0
			for j := range slotFree {
				if slotFree[j] < slotFree[i] {
					i = j
				}
			}
			start := max(now, slotFree[i])
			waiting := 0
			for _, o := range inFlight {
				if o.done-s.service > now {
					waiting++ // not started yet: in the queue
				}
			}
			if start > now && waiting >= s.q {
				refused++
				a.observe(sample{overload: true, full: r.full})
				continue
			}
			slotFree[i] = start + s.service
			r.done = slotFree[i]
			inFlight = append(inFlight, r)
		}
	}
	send()
	for range answers {
		// The next answer: the request that finishes first.
		k := 0
		for j, r := range inFlight {
			if r.done < inFlight[k].done {
				k = j
			}
		}
		r := inFlight[k]
		inFlight = append(inFlight[:k], inFlight[k+1:]...)
		now = r.done
		a.observe(sample{latency: r.done - r.sent, full: r.full})
		send()
		if n := len(inFlight); low >= 0 || n >= s.c {
			if low < 0 || n < low {
				low = n
			}
			high = max(high, n)
		}
	}
	return refused, low, high
}

// TestAIMDSlowStartDoesNotOverflowAQueueOfTheServersSize: the bench's capacity mode (4
// slots, 4 queue places) answering one request at a time. Slow start must find the
// capacity without sending more than slots + queue at once: the requests it adds while the
// first answers of a round come back fast must not outrun the slow answers still queued.
func TestAIMDSlowStartDoesNotOverflowAQueueOfTheServersSize(t *testing.T) {
	for _, srv := range []queueingServer{{c: 4, q: 4, service: 120 * ms}, {c: 8, q: 4, service: 120 * ms}, {c: 40, q: 20, service: 120 * ms}} {
		a := newAIMD(MaxConcurrency)
		refused, low, high := srv.simulate(a, 20*srv.c)
		if refused > 0 {
			t.Errorf("%d slots, %d queued: %d requests refused; in flight %d to %d", srv.c, srv.q, refused, low, high)
		}
		if low < srv.c {
			t.Errorf("%d slots, %d queued: in flight fell to %d once every slot was busy", srv.c, srv.q, low)
		}
		t.Logf("%d slots, %d queued: in flight %d to %d once every slot was busy", srv.c, srv.q, low, high)
	}
}
