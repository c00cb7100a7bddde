package delivery

import (
	"math"
	"time"
)

// Adaptive concurrency (targets[].adaptive_concurrency): a DHIS2 serves a fixed number of
// imports at once and queues the rest, so past its capacity more requests in flight only
// lengthen every answer and, once its queue is full, turn into 503s and timeouts. The
// controller below finds the limit from what the target's answers say, AIMD style:
//
//   - slow start: from one request in flight the limit grows by half (at least one) per
//     window of answers as fast as the fastest seen, so the target's capacity is reached in
//     a few round trips without outrunning its queue (slowStartFactor); the first slow
//     answer takes one step back and ends it;
//   - then one step per window of `limit` answers: +1 when the window was as fast as the
//     baseline (within latencyTolerance) and the limit was in use; −1 when its mean latency
//     grew past the tolerance, which is the target queueing requests it cannot serve yet;
//   - an overload answer (429, 5xx, DHIS2 "busy", timeout, connection failure) halves the
//     limit at once, and only once per window, since the requests already in flight when it
//     came were sent under the old limit and may fail too.
//
// The baseline is the fastest answer seen. It is not allowed to drift up by itself: a target
// held at its capacity answers every request equally late (a closed loop of n requests at a
// server of c slots waits n/c of a service time, each of them), so no faster answer would
// ever pull a drifting baseline back, and it would creep up until the queue overflowed.
// Instead, a window at a limit of one — where Tally queues nothing — sets it: a target that
// became slower for good (larger data sets, a busier server) pushes the limit down to one,
// which re-learns its speed, and the limit grows again from there. The limit stays within 1
// and the ceiling (targets[].concurrency or the OpenHIM console's delivery_concurrency). The
// controller reads no clock: it is fed latencies, so its decisions are tested without time.
const (
	// latencyTolerance is how much slower than the baseline a window's mean may be before
	// the target is taken to be queueing. With n requests in flight at a target serving c
	// at once every answer takes about n/c service times, so 1.3 holds the limit near
	// 1.3 × c: every slot kept busy with a request waiting for it, well below a queue of the
	// target's own size (Tomcat's acceptCount is half its maxThreads by default; the
	// bench's capacity mode queues as many as it serves), while a window's mean smooths the
	// noise of single imports.
	latencyTolerance = 1.3
	// overloadFactor multiplies the limit on an overload answer.
	overloadFactor = 0.5
	// slowStartFactor is slow start's growth per window (a round trip) whose answers all
	// came back fast with the limit in use. A window of fast answers says only that the
	// target served that many at once without queueing; the next window may hold more than
	// it serves, and those come back slow a round trip later. So the limit may outgrow the
	// target's slots by this factor at most: 1.5 stays within a queue of half its slots
	// (Tomcat's default acceptCount to maxThreads). Growing by one per fast answer, as slow
	// start did, doubled per round trip and went on growing on the fast answers of a round
	// whose queued requests had not come back yet, past twice the slots
	// (TestAIMDSlowStartDoesNotOverflowAQueueOfTheServersSize).
	slowStartFactor = 1.5
)

// aimd is the adaptive limit of one target. It is not safe for concurrent use: slots calls
// it under its lock.
type aimd struct {
	limit    float64 // in [1, ceiling]
	ceiling  int
	slow     bool          // in slow start
	baseline time.Duration // fastest answer seen (see above); 0 until one came
	// the window in progress
	n        int           // answers
	ok, full int           // answers that were not overload answers, and those with the limit in use
	sum      time.Duration // latency of the ok answers
	overload bool          // an overload answer already acted on in this window
}

// sample is one answer of the target: how long the request took, whether it was an
// overload answer, and whether the limit was in use when it was sent (as many requests in
// flight as the limit then allowed). It is judged at sending, not at answering: requests
// sent together come back together, and the first answer's worker has not yet sent the
// next request when the second answer arrives, so counting at answering saw the limit
// unused half the time and slow start grew by one per round trip instead of doubling.
type sample struct {
	latency  time.Duration
	overload bool
	full     bool
}

func newAIMD(ceiling int) *aimd {
	a := &aimd{limit: 1, slow: true}
	a.setCeiling(ceiling)
	return a
}

// setCeiling bounds the limit by the configured or console's maximum.
func (a *aimd) setCeiling(c int) {
	a.ceiling = max(c, 1)
	a.limit = min(a.limit, float64(a.ceiling))
}

// current is the limit in force: a whole number of requests, at least 1.
func (a *aimd) current() int { return max(1, min(int(math.Floor(a.limit)), a.ceiling)) }

// observe takes one answer into account and returns the limit in force after it.
func (a *aimd) observe(s sample) int {
	if s.overload {
		a.overloaded()
		a.count()
		return a.current()
	}
	if a.baseline == 0 || s.latency < a.baseline {
		a.baseline = s.latency
	}
	slowAnswer := float64(s.latency) > latencyTolerance*float64(a.baseline)
	inUse := s.full
	if a.slow {
		switch {
		case slowAnswer:
			// The target started queueing: back to the last limit it answered fast at, and
			// from here on one step per window.
			a.slow = false
			a.limit = max(1, a.limit-1)
			a.resetWindow()
			return a.current()
		}
	}
	a.ok++
	a.sum += s.latency
	if inUse {
		a.full++
	}
	a.count()
	return a.current()
}

// count counts an answer in the window, and ends the window once it holds as many answers
// as the limit: about one round trip's worth.
func (a *aimd) count() {
	a.n++
	if a.n >= a.current() {
		a.endWindow()
	}
}

// overloaded halves the limit, once per window, and ends slow start.
func (a *aimd) overloaded() {
	a.slow = false
	if a.overload {
		return
	}
	a.limit = max(1, math.Floor(a.limit*overloadFactor))
	a.resetWindow()
	a.overload = true
}

// endWindow takes the window's step: down when its mean was slow, up (outside slow start)
// when it was fast and the limit in use.
func (a *aimd) endWindow() {
	var mean time.Duration
	if a.ok > 0 {
		mean = a.sum / time.Duration(a.ok)
	}
	switch {
	case a.ok == 0 || a.overload:
		// nothing to judge the latency by, or the limit was just halved
	case a.current() == 1:
		a.baseline = mean // one request at a time queues nothing of ours: this is the target's speed
		if a.full*2 >= a.ok {
			a.grow(1)
		}
	case float64(mean) > latencyTolerance*float64(a.baseline):
		a.slow = false
		a.limit = max(1, a.limit-1)
	case a.slow && a.full*2 >= a.ok:
		a.grow(max(1, a.limit*(slowStartFactor-1)))
	case !a.slow && a.full*2 >= a.ok:
		a.grow(1)
	}
	a.resetWindow()
}

func (a *aimd) grow(by float64) { a.limit = min(a.limit+by, float64(a.ceiling)) }

func (a *aimd) resetWindow() {
	a.n, a.ok, a.full, a.sum, a.overload = 0, 0, 0, 0, false
}
