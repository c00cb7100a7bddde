package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// The capacity scenario delivers into a DHIS2 that is the bottleneck, as real instances are:
// the emulator in capacity mode serves a fixed number of imports at once, each costing time
// per request and per value, queues a few more and answers 503 beyond that or when a queued
// import waited too long. It measures, for Tally at each configured target concurrency, for
// Tally with adaptive concurrency under each configured ceiling, and for the sequential
// script: values/s as a share of what the sink can serve, the sink's
// 503s and queue timeouts, and Tally's retries and dead letters. When Tally exports
// tally_delivery_concurrency_limit, its value is sampled over each run (with adaptive
// concurrency, the limit it found).

// requestSize is the values per import request of Tally (max_values_per_request, default
// 1000, with batches of 1000) and of the peer (its 1000-value chunks).
const requestSize = 1000

// CapacityRate is the most values per second a sink in capacity mode c can serve in
// requests of size values: every slot busy all the time.
func CapacityRate(c dhis2test.Capacity, size int) float64 {
	per := c.PerRequest + time.Duration(size)*c.PerValue
	if per <= 0 {
		return 0
	}
	return float64(c.MaxConcurrent) * float64(size) / per.Seconds()
}

// capRun is what one run against capacity mode measured.
type capRun struct {
	flow
	rejected, timedOut        int64
	retries, dead, transients float64
	limit                     []Point // tally_delivery_concurrency_limit over the run, when exported
}

func (h *harness) capacity(ctx context.Context) error {
	c := h.o.Capacity
	s, err := h.startSink(ctx, SinkSpec{Kind: SinkEmulator, Capacity: &c})
	if err != nil {
		return err
	}
	defer s.Stop()
	capRate := CapacityRate(c, requestSize)
	h.r.Settings.CapacityRate = capRate
	type subject struct {
		name string
		t    *tallyProc
		runs []capRun
	}
	var subjects []*subject
	type setting struct {
		n        int
		adaptive bool
	}
	var settings []setting
	for _, n := range h.o.Concurrencies {
		settings = append(settings, setting{n: n})
	}
	for _, n := range h.o.Adaptive {
		settings = append(settings, setting{n: n, adaptive: true})
	}
	for _, st := range settings {
		t, err := h.startTallyWith(ctx, s.URL, st.n, st.adaptive)
		if err != nil {
			return err
		}
		defer t.Stop()
		name := fmt.Sprintf("tally, concurrency %d", st.n)
		if st.adaptive {
			name = fmt.Sprintf("tally, adaptive concurrency, at most %d", st.n)
		}
		if err := h.warmUp(ctx, t, s, "capacity "+name); err != nil {
			return err
		}
		subjects = append(subjects, &subject{name: name, t: t})
	}
	if h.o.PeerScript != "" {
		subjects = append(subjects, &subject{name: "peer script (sequential)"})
	}
	for r := range h.o.Runs {
		for _, sub := range subjects {
			label := fmt.Sprintf("capacity: %s, run %d/%d", sub.name, r+1, h.o.Runs)
			h.logf("%s: %d values into %d slots", label, h.o.CapacityValues, c.MaxConcurrent)
			run, err := h.capacityRun(ctx, sub.t, s, label)
			if err != nil {
				return err
			}
			if run.ok {
				sub.runs = append(sub.runs, run)
			}
			if len(run.limit) > 0 {
				h.r.Series = append(h.r.Series, Series{Run: label, Metric: metricConcurrency, Points: run.limit})
			}
		}
	}
	for _, sub := range subjects {
		h.capacityFigures(sub.name, sub.t != nil, sub.runs, capRate)
	}
	return nil
}

// capacityRun measures one run of Tally (t) or, with t nil, of the peer.
func (h *harness) capacityRun(ctx context.Context, t *tallyProc, s *sinkProc, label string) (capRun, error) {
	var run capRun
	c0, err := s.c.capacity(ctx)
	if err != nil {
		return run, err
	}
	if t == nil {
		if run.flow, err = h.peerFlow(ctx, s, label, h.o.CapacityValues); err != nil {
			return run, err
		}
	} else {
		m0, err := scrape(ctx, t.URL)
		if err != nil {
			return run, err
		}
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { run.limit = sampleLimit(sctx, t.URL) })
		run.flow, err = h.tallyFlow(ctx, t, s, label, h.o.CapacityValues)
		stop()
		wg.Wait()
		if err != nil {
			return run, err
		}
		m1, err := scrape(ctx, t.URL)
		if err != nil {
			return run, err
		}
		delta := func(name string, match ...string) float64 {
			a, _ := m0.sum(name, match...)
			b, _ := m1.sum(name, match...)
			return b - a
		}
		run.retries = delta(metricRetries, "target", targetName)
		run.dead = delta(metricDeadLetters, "target", targetName)
		run.transients = delta(metricAttempts, "target", targetName, "result", "transient")
	}
	c1, err := s.c.capacity(ctx)
	if err != nil {
		return run, err
	}
	run.rejected, run.timedOut = c1.Rejected-c0.Rejected, c1.TimedOut-c0.TimedOut
	return run, nil
}

// sampleLimit reads tally_delivery_concurrency_limit{target="sink"} every 250 ms until ctx
// ends; nothing when Tally does not export it.
func sampleLimit(ctx context.Context, base string) []Point {
	var pts []Point
	began := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		m, err := scrape(ctx, base)
		if err == nil {
			v, ok := m.sum(metricConcurrency, "target", targetName)
			if !ok {
				return nil
			}
			pts = append(pts, Point{Seconds: time.Since(began).Seconds(), Value: v})
		}
		select {
		case <-ctx.Done():
			return pts
		case <-tick.C:
		}
	}
}

func (h *harness) capacityFigures(subject string, tally bool, runs []capRun, capRate float64) {
	pick := func(f func(capRun) float64) []float64 {
		var xs []float64
		for _, r := range runs {
			xs = append(xs, f(r))
		}
		return xs
	}
	fig := func(measure, unit string, f func(capRun) float64) {
		h.r.add(Figure{Scenario: ScenarioCapacity, Sink: SinkEmulator + " (capacity mode)", Subject: subject, Measure: measure, Unit: unit}, pick(f))
	}
	fig("end to end", UnitRate, func(r capRun) float64 { return r.rate })
	fig("share of the sink's capacity", UnitPercent, func(r capRun) float64 { return 100 * r.rate / capRate })
	fig("sink answered 503, queue full", UnitCount, func(r capRun) float64 { return float64(r.rejected) })
	fig("sink answered 503, queue timeout", UnitCount, func(r capRun) float64 { return float64(r.timedOut) })
	if !tally {
		return
	}
	fig("retries (tally_delivery_retries_total)", UnitCount, func(r capRun) float64 { return r.retries })
	fig("transient failures (tally_delivery_attempts_total{result=\"transient\"})", UnitCount, func(r capRun) float64 { return r.transients })
	fig("dead letters (tally_dlq_messages_total)", UnitCount, func(r capRun) float64 { return r.dead })
	var limits []float64
	for _, r := range runs {
		for _, p := range r.limit {
			limits = append(limits, p.Value)
		}
	}
	if len(limits) > 0 {
		h.r.add(Figure{Scenario: ScenarioCapacity, Sink: SinkEmulator + " (capacity mode)", Subject: subject,
			Measure: "concurrency limit, every 250 ms (" + metricConcurrency + ")", Unit: UnitCount}, limits)
	}
}
