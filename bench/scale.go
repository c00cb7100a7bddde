package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The scale scenarios build a month-end backlog while the target is down and then let it
// drain. Tally first delivers a small payload (so that it holds the target's metadata, as
// a running Tally does), then the counting sink stops; ScaleValues values are posted, as one
// payload (scale-one) or as ScalePayloads payloads posted at once (scale-many), each
// generated as it is sent so the harness never holds one whole. Once the mapper has moved
// every value to the delivery stream, the store's size per value and Tally's peak RSS are
// read; then the sink comes back on the same address, Tally is told to probe it (as an
// operator would; otherwise the circuit's next probe resumes delivery within
// delivery.probe_interval), and the time until the last value arrived is the drain time.

func (h *harness) scale(ctx context.Context, scenario string, payloads int) error {
	for r := range h.o.ScaleRuns {
		if err := h.scaleRun(ctx, scenario, payloads, fmt.Sprintf("%s run %d/%d", scenario, r+1, h.o.ScaleRuns)); err != nil {
			return err
		}
	}
	return nil
}

type scaleRun struct {
	ingest, mapped, drain     time.Duration
	rssIngest, rssDrain       int64
	storeIngest, storeMapped  int64
	cpuIngest, cpuDrain       float64
	sinkCPUDrain              float64
	n                         int
	busy                      int // 503 answers (Tally's bound on concurrent ingests), each retried
	ok                        bool
	measuredRSS, measuredDisk bool
}

func (h *harness) scaleRun(ctx context.Context, scenario string, payloads int, label string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	spec := SinkSpec{Kind: SinkCounting, Addr: addr}
	s, err := h.startSink(ctx, spec)
	if err != nil {
		return err
	}
	stopSink := s.Stop
	defer func() { _ = stopSink() }()
	t, err := h.startTally(ctx, s.URL, h.o.Concurrency)
	if err != nil {
		return err
	}
	defer t.Stop()
	if err := h.warmUp(ctx, t, s, label); err != nil {
		return err
	}
	mapped0, err := h.mappedValues(ctx, t)
	if err != nil {
		return err
	}
	h.logf("%s: the target goes down", label)
	if err := s.Stop(); err != nil {
		return fmt.Errorf("stopping the sink: %w", err)
	}
	stopSink = func() error { return nil }

	n := h.o.ScaleValues
	res := scaleRun{n: n, measuredRSS: t.PID != 0}
	if t.PID != 0 {
		if err := resetPeakRSS(t.PID); err != nil {
			return err
		}
	}
	cpu, err := startCPU(t.PID)
	if err != nil {
		return err
	}
	start := h.alloc(n)
	h.logf("%s: posting %d values in %d payload(s)", label, n, payloads)
	began := time.Now()
	if res.busy, err = h.postConcurrently(ctx, t, start, n, payloads); err != nil {
		return err
	}
	res.ingest = time.Since(began)
	if res.storeIngest, err = dirBytes(t.store); err != nil {
		return err
	}
	if err := h.awaitMapped(ctx, t, mapped0+float64(n)); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	res.mapped = time.Since(began)
	if res.storeMapped, err = dirBytes(t.store); err != nil {
		return err
	}
	settle(t.PID, 10*time.Second)
	if t.PID != 0 {
		if res.rssIngest, err = peakRSS(t.PID); err != nil {
			return err
		}
		if err := resetPeakRSS(t.PID); err != nil {
			return err
		}
	}
	if res.cpuIngest, err = cpu.used(); err != nil {
		return err
	}

	h.logf("%s: the target is back; draining %d values", label, n)
	s, err = h.startSink(ctx, spec)
	if err != nil {
		return err
	}
	stopSink = s.Stop
	if err := s.c.reset(ctx, n); err != nil {
		return err
	}
	if cpu, err = startCPU(t.PID); err != nil {
		return err
	}
	sinkCPU, err := startCPU(s.PID)
	if err != nil {
		return err
	}
	resumed := time.Now()
	if err := probeTarget(ctx, t); err != nil {
		return err
	}
	p, werr := s.c.awaitReceipts(ctx, h.o.Stall)
	if werr != nil {
		h.logf("%s: %v", label, werr)
	}
	if p.Reached {
		res.drain = time.Duration(p.ReachedAt - resumed.UnixNano())
	}
	settle(t.PID, 10*time.Second)
	if t.PID != 0 {
		if res.rssDrain, err = peakRSS(t.PID); err != nil {
			return err
		}
	}
	if res.cpuDrain, err = cpu.used(); err != nil {
		return err
	}
	if res.sinkCPUDrain, err = sinkCPU.used(); err != nil {
		return err
	}
	ok, err := h.check(ctx, s, label+": the drained backlog", start, n)
	if err != nil {
		return err
	}
	res.ok = ok && werr == nil
	h.scaleFigures(scenario, payloads, res)
	return nil
}

// freeAddr picks a free loopback address for a sink that has to come back on it.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// postConcurrently posts the values [start, start+n) as payloads equal JSON payloads at
// once, as that many clients would: a payload answered 503 (Tally's bound on concurrent
// ingests, http.max_concurrent_ingests) is posted again after its Retry-After, as DHIS2's
// exchange and scripts should. It returns how many 503 answers there were.
func (h *harness) postConcurrently(ctx context.Context, t *tallyProc, start, n, payloads int) (int, error) {
	size := n / payloads
	errs := make([]error, payloads)
	var busy atomic.Int64
	var wg sync.WaitGroup
	for k := range payloads {
		wg.Go(func() {
			errs[k] = h.postUntilTaken(ctx, t, start+k*size, size, &busy)
		})
	}
	wg.Wait()
	return int(busy.Load()), errors.Join(errs...)
}

// maxBusyRetries bounds how often one payload is posted again after a 503.
const maxBusyRetries = 1000

// postUntilTaken posts one generated payload until Tally takes it, waiting each 503's
// Retry-After (1 s when it names none) before generating and posting it again.
func (h *harness) postUntilTaken(ctx context.Context, t *tallyProc, first, size int, busy *atomic.Int64) error {
	for range maxBusyRetries {
		g, ctype, err := UniversePayload("json", first, size)
		if err != nil {
			return err
		}
		_, err = h.post(ctx, t, g, ctype)
		var b *busyError
		if !errors.As(err, &b) {
			return err
		}
		busy.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.retryAfter):
		}
	}
	return fmt.Errorf("values %d to %d: Tally answered 503 %d times", first, first+size, maxBusyRetries)
}

// mappedValues is how many values Tally's mapper has passed on (tally_mapper_values_total
// with outcome mapped).
func (h *harness) mappedValues(ctx context.Context, t *tallyProc) (float64, error) {
	m, err := scrape(ctx, t.URL)
	if err != nil {
		return 0, err
	}
	v, _ := m.sum(metricMapped, "outcome", "mapped")
	return v, nil
}

// awaitMapped waits until the mapper has passed on want values in all, failing when the
// count stops moving for the stall time.
func (h *harness) awaitMapped(ctx context.Context, t *tallyProc, want float64) error {
	last, since := -1.0, time.Now()
	for {
		got, err := h.mappedValues(ctx, t)
		if err != nil {
			return err
		}
		if got >= want {
			return nil
		}
		if got != last {
			last, since = got, time.Now()
		} else if time.Since(since) > h.o.Stall {
			return fmt.Errorf("the mapper passed on %.0f of %.0f values and nothing more for %s", got, want, h.o.Stall)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// probeTarget asks Tally to probe the target now (POST /admin/v1/targets/{name}/probe),
// retrying while the sink is still coming up.
func probeTarget(ctx context.Context, t *tallyProc) error {
	var last error
	for range 50 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/admin/v1/targets/"+targetName+"/probe", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+benchAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("asking Tally to probe the target: %w", last)
}

func (h *harness) scaleFigures(scenario string, payloads int, r scaleRun) {
	shape := fmt.Sprintf("%d values in %d payload(s)", r.n, payloads)
	fig := func(measure, unit string, v float64) {
		h.r.add(Figure{Scenario: scenario, Sink: SinkCounting, Subject: "tally, " + shape, Measure: measure, Unit: unit}, []float64{v})
	}
	if !r.ok {
		h.r.Notes = append(h.r.Notes, scenario+": no figures, the backlog did not arrive exactly once")
		return
	}
	fig("ingest, until every payload was answered", UnitSeconds, r.ingest.Seconds())
	fig("ingest rate", UnitRate, float64(r.n)/r.ingest.Seconds())
	fig("until the mapper had passed on every value (target down)", UnitSeconds, r.mapped.Seconds())
	fig("store size after ingest, per value", UnitBytesPerValue, float64(r.storeIngest)/float64(r.n))
	fig("store size with the whole backlog mapped, per value", UnitBytesPerValue, float64(r.storeMapped)/float64(r.n))
	fig("drain into the counting sink, from the target's return", UnitSeconds, r.drain.Seconds())
	fig("drain rate", UnitRate, float64(r.n)/r.drain.Seconds())
	fig("ingests answered 503 (busy) and posted again", UnitCount, float64(r.busy))
	if r.measuredRSS {
		fig("peak RSS, ingest and mapping", UnitMiB, mib(r.rssIngest))
		fig("peak RSS, drain", UnitMiB, mib(r.rssDrain))
	}
	if r.cpuIngest >= 0 {
		fig("CPU time, ingest and mapping", UnitCPU, perMillion(r.cpuIngest, r.n))
		fig("CPU time, drain", UnitCPU, perMillion(r.cpuDrain, r.n))
	}
	if r.sinkCPUDrain >= 0 {
		h.r.add(Figure{Scenario: scenario, Sink: SinkCounting, Subject: "sink, during the drain", Measure: "CPU time", Unit: UnitCPU},
			[]float64{perMillion(r.sinkCPUDrain, r.n)})
	}
}
