package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tally-hmis/tally/adapters/adx"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

// perMillion turns CPU seconds for n values into CPU seconds per million values.
func perMillion(cpu float64, n int) float64 { return cpu / float64(n) * 1e6 }

// decode measures the parsers alone over each format's payload, in memory: the reference
// limit the ingest rate is compared with.
func (h *harness) decode(context.Context) error {
	for _, f := range Formats {
		var runs []float64
		for r := range h.o.Runs {
			h.logf("decode %s %d/%d: %d values", f, r+1, h.o.Runs, h.o.Values)
			v, err := decodeRate(f, h.o.Values)
			if err != nil {
				return err
			}
			runs = append(runs, v)
		}
		h.r.add(Figure{Scenario: ScenarioIngest, Subject: "parser alone, " + f, Measure: "decode rate", Unit: UnitRate}, runs)
	}
	return nil
}

type nopSink struct{}

func (nopSink) Group(transform.Group) error                         { return nil }
func (nopSink) Value(*transform.DataValue, transform.Locator) error { return nil }

// decodeRate is values per second of Tally's parser for format, into a sink that does
// nothing.
func decodeRate(format string, n int) (float64, error) {
	data, _, err := generate(format, 0, n)
	if err != nil {
		return 0, err
	}
	began := time.Now()
	rd := bytes.NewReader(data)
	switch format {
	case "json", "cht":
		err = dvs.DecodeJSON(rd, nopSink{}, dvs.Options{})
	case "csv":
		err = dvs.DecodeCSV(rd, nopSink{}, dvs.CSVOptions{})
	case "adx":
		err = adx.Decode(rd, nopSink{}, adx.Options{})
	}
	if err != nil {
		return 0, fmt.Errorf("decoding %s: %w", format, err)
	}
	return float64(n) / time.Since(began).Seconds(), nil
}

// session starts a sink and a Tally delivering to it, and warms Tally up; stop ends both.
func (h *harness) session(ctx context.Context, spec SinkSpec) (s *sinkProc, t *tallyProc, stop func(), err error) {
	if s, err = h.startSink(ctx, spec); err != nil {
		return nil, nil, nil, err
	}
	if t, err = h.startTally(ctx, s.URL, h.o.Concurrency); err != nil {
		_ = s.Stop()
		return nil, nil, nil, err
	}
	stop = func() { _ = t.Stop(); _ = s.Stop() }
	if err = h.warmUp(ctx, t, s, spec.Kind); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return s, t, stop, nil
}

// countingSession runs the scenarios that share one Tally and one counting sink: ingest,
// end to end (counting), latency and memory.
func (h *harness) countingSession(ctx context.Context) error {
	s, t, stop, err := h.session(ctx, SinkSpec{Kind: SinkCounting, ImportTime: h.o.CountingImportTime})
	if err != nil {
		return err
	}
	defer stop()
	steps := []struct {
		on  bool
		run func(context.Context, *tallyProc, *sinkProc) error
	}{
		{h.selected(ScenarioIngest), h.ingest},
		{h.selected(ScenarioE2E) && containsString(h.o.Sinks, SinkCounting), h.e2e},
		{h.selected(ScenarioLatency), h.latency},
		{h.selected(ScenarioMemory), h.memory},
	}
	for _, st := range steps {
		if st.on {
			if err := st.run(ctx, t, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// emulatorSession runs the end-to-end scenario against the emulator's validating store.
func (h *harness) emulatorSession(ctx context.Context) error {
	if !containsString(h.o.Sinks, SinkEmulator) {
		return nil
	}
	s, t, stop, err := h.session(ctx, SinkSpec{Kind: SinkEmulator})
	if err != nil {
		return err
	}
	defer stop()
	return h.e2e(ctx, t, s)
}

// profiledSink is the sink whose end-to-end runs the profiles cover: the counting sink when
// it is among the sinks, else the emulator, so that Tally can be profiled on either.
func (h *harness) profiledSink() string {
	if containsString(h.o.Sinks, SinkCounting) {
		return SinkCounting
	}
	return SinkEmulator
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ingest posts a payload of each format per run and times each answer (Tally answers once
// JetStream holds every batch); then it waits until all of them reached the sink and
// verifies them.
func (h *harness) ingest(ctx context.Context, t *tallyProc, s *sinkProc) error {
	total := h.o.Runs * len(Formats) * h.o.Values
	base := h.alloc(total)
	if err := s.c.reset(ctx, total); err != nil {
		return err
	}
	rates := map[string][]float64{}
	for r := range h.o.Runs {
		for k, f := range Formats {
			start := base + (r*len(Formats)+k)*h.o.Values
			h.logf("ingest %s %d/%d: %d values over HTTP", f, r+1, h.o.Runs, h.o.Values)
			body, ctype, err := generate(f, start, h.o.Values)
			if err != nil {
				return err
			}
			took, err := h.post(ctx, t, bytes.NewReader(body), ctype)
			if err != nil {
				return err
			}
			rates[f] = append(rates[f], float64(h.o.Values)/took.Seconds())
		}
	}
	for _, f := range Formats {
		h.r.add(Figure{Scenario: ScenarioIngest, Sink: SinkCounting, Subject: "tally, " + f, Measure: "ingest rate (HTTP → JetStream)", Unit: UnitRate}, rates[f])
	}
	if _, err := s.c.awaitReceipts(ctx, h.o.Stall); err != nil {
		h.logf("ingest: %v", err)
	}
	settle(t.PID, 5*time.Second)
	_, err := h.check(ctx, s, "ingest: every format's payloads", base, total)
	return err
}

// e2e alternates Tally's and the peer's runs into one sink.
func (h *harness) e2e(ctx context.Context, t *tallyProc, s *sinkProc) error {
	var profDone chan error
	if h.o.CPUProfile != "" && s.kind == h.profiledSink() {
		profDone = make(chan error, 1)
		go func() { profDone <- cpuProfile(ctx, t.URL, h.o.CPUProfile, h.o.CPUProfileSeconds) }()
	}
	n := h.o.Values
	tally, peer := flowRuns{cores: runtime.NumCPU()}, flowRuns{cores: runtime.NumCPU()}
	var ratio, cpuRatio []float64
	for r := range h.o.Runs {
		label := fmt.Sprintf("e2e %s: tally run %d/%d", s.kind, r+1, h.o.Runs)
		h.logf("%s: %d values through %d rules", label, n, h.o.Rules)
		f, err := h.tallyFlow(ctx, t, s, label, n)
		if err != nil {
			return err
		}
		tally.add(f, n)
		if h.o.PeerScript == "" {
			continue
		}
		label = fmt.Sprintf("e2e %s: peer run %d/%d", s.kind, r+1, h.o.Runs)
		h.logf("%s: %s %s", label, h.o.Python, h.o.PeerScript)
		p, err := h.peerFlow(ctx, s, label, n)
		if err != nil {
			return err
		}
		peer.add(p, n)
		if p.ok && f.ok {
			ratio = append(ratio, f.rate/p.rate)
			if f.subjectCPU > 0 && p.subjectCPU > 0 {
				cpuRatio = append(cpuRatio, f.subjectCPU/p.subjectCPU)
			}
		}
	}
	fig := func(subject, measure, unit string, runs []float64) {
		h.r.add(Figure{Scenario: ScenarioE2E, Sink: s.kind, Subject: subject, Measure: measure, Unit: unit}, runs)
	}
	h.noteSpread(s.kind, "Tally", tally.cpu)
	h.noteSpread(s.kind, "the peer script", peer.cpu)
	tally.figures(fig, "tally", "sink, during Tally's runs")
	if h.o.PeerScript != "" {
		peer.figures(fig, "peer script", "sink, during the peer's runs")
		fig("tally / peer script, same round", "end-to-end speed ratio", UnitRatio, ratio)
		fig("tally / peer script, same round", "CPU time ratio", UnitRatio, cpuRatio)
	}
	if profDone != nil {
		if err := <-profDone; err != nil {
			h.logf("CPU profile: %v", err)
		}
	}
	if h.o.MemProfile != "" && s.kind == h.profiledSink() {
		if err := fetchProfile(ctx, t.URL+"/admin/v1/debug/pprof/allocs", h.o.MemProfile); err != nil {
			h.logf("allocation profile: %v", err)
		}
	}
	return nil
}

// spreadLimit is how far a program's CPU per value may range across its end-to-end runs of
// one session (the largest over the smallest) before the report says so. A program does the
// same work per value in every run: in the eighteen sessions of BENCHMARKS.md's rounds 6 and
// 7 the range stayed within 1.41, except in the three that something else disturbed, where it
// reached 1.48 (Tally's, while a go vet ran), 1.9 (the script's) and 2.4 (Tally's). Such a
// session's ratios can flatter either side, and its median alone does not show it.
const spreadLimit = 1.5

// noteSpread adds a note to the report when subject's CPU per million values (cpu, one
// figure per run) ranged past spreadLimit on sink.
func (h *harness) noteSpread(sink, subject string, cpu []float64) {
	if len(cpu) < 2 {
		return
	}
	lo, hi := slices.Min(cpu), slices.Max(cpu)
	if lo <= 0 || hi/lo <= spreadLimit {
		return
	}
	h.r.Notes = append(h.r.Notes, fmt.Sprintf(
		"e2e %s: %s's CPU per million values ranged from %.1f to %.1f s across its runs, more than %.1f times over: something else took the cores, and this session's ratios may flatter either side",
		sink, subject, lo, hi, spreadLimit))
}

// flowRuns collects the runs of one subject that passed their verification.
type flowRuns struct {
	rate, cpu, sinkCPU []float64
	// busy is the share of the machine's cores the program and the sink kept busy
	// together over each run: their CPU time over the run's wall time times the cores.
	// Near 100%, the run was bound by the cores they share, and only less CPU per value
	// on either side makes it faster; well below, it waited on something else (a
	// sequential client, a latency). Tally's CPU time runs until it is idle again, past
	// the run's last value, so its share may read a little high.
	busy  []float64
	cores int
}

// add records a run; CPU times become seconds per million values, unless they were not
// measured (a component running inside the harness).
func (fr *flowRuns) add(f flow, n int) {
	if !f.ok {
		return
	}
	fr.rate = append(fr.rate, f.rate)
	if f.subjectCPU >= 0 {
		fr.cpu = append(fr.cpu, perMillion(f.subjectCPU, n))
	}
	if f.sinkCPU >= 0 {
		fr.sinkCPU = append(fr.sinkCPU, perMillion(f.sinkCPU, n))
	}
	if f.subjectCPU >= 0 && f.sinkCPU >= 0 && f.rate > 0 && fr.cores > 0 {
		wall := float64(n) / f.rate
		fr.busy = append(fr.busy, 100*(f.subjectCPU+f.sinkCPU)/(wall*float64(fr.cores)))
	}
}

func (fr *flowRuns) figures(fig func(subject, measure, unit string, runs []float64), subject, sink string) {
	fig(subject, "end to end", UnitRate, fr.rate)
	fig(subject, "CPU time", UnitCPU, fr.cpu)
	fig(sink, "CPU time", UnitCPU, fr.sinkCPU)
	fig(subject+" and the sink", "share of the cores kept busy", UnitPercent, fr.busy)
}

// latency offers Rate requests of 1000 values per second for Duration (a fixed offered load,
// not a closed loop) and records each request's time to answer.
func (h *harness) latency(ctx context.Context, t *tallyProc, s *sinkProc) error {
	count := int(float64(h.o.Rate) * h.o.Duration.Seconds())
	const size = 1000
	base := h.alloc(count * size)
	bodies := make([][]byte, count)
	var ctype string
	for i := range bodies {
		var err error
		if bodies[i], ctype, err = generate("json", base+i*size, size); err != nil {
			return err
		}
	}
	if err := s.c.reset(ctx, count*size); err != nil {
		return err
	}
	h.logf("latency: %d requests of %d values at %d/s", count, size, h.o.Rate)
	tick := time.NewTicker(time.Second / time.Duration(h.o.Rate))
	defer tick.Stop()
	lat := make([]time.Duration, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range count {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		wg.Go(func() { lat[i], errs[i] = h.post(ctx, t, bytes.NewReader(bodies[i]), ctype) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}} {
		d := lat[min(count-1, int(p.q*float64(count)))]
		h.r.add(Figure{Scenario: ScenarioLatency, Sink: SinkCounting, Subject: "tally",
			Measure: fmt.Sprintf("time to answer, %s of %d requests at %d/s of %d values", p.name, count, h.o.Rate, size), Unit: UnitMillis},
			[]float64{float64(d) / float64(time.Millisecond)})
	}
	if _, err := s.c.awaitReceipts(ctx, h.o.Stall); err != nil {
		h.logf("latency: %v", err)
	}
	_, err := h.check(ctx, s, "latency: every request's values", base, count*size)
	return err
}

// memory measures Tally's peak RSS from posting a large payload until it has all been
// delivered, for JSON and ADX (the two parsers with the most state).
func (h *harness) memory(ctx context.Context, t *tallyProc, s *sinkProc) error {
	if t.PID == 0 {
		h.r.Notes = append(h.r.Notes, "memory: not measured (Tally runs inside the harness)")
		return nil
	}
	n := h.o.BigValues
	for _, f := range []string{"json", "adx"} {
		start := h.alloc(n)
		body, ctype, err := generate(f, start, n)
		if err != nil {
			return err
		}
		if err := s.c.reset(ctx, n); err != nil {
			return err
		}
		if err := resetPeakRSS(t.PID); err != nil {
			return err
		}
		h.logf("memory: %d-value %s payload", n, f)
		if _, err := h.post(ctx, t, bytes.NewReader(body), ctype); err != nil {
			return err
		}
		if _, err := s.c.awaitReceipts(ctx, h.o.Stall); err != nil {
			h.logf("memory: %v", err)
		}
		settle(t.PID, 5*time.Second)
		rss, err := peakRSS(t.PID)
		if err != nil {
			return err
		}
		h.r.add(Figure{Scenario: ScenarioMemory, Sink: SinkCounting, Subject: "tally, " + f,
			Measure: fmt.Sprintf("peak RSS, %d-value payload from request to delivered", n), Unit: UnitMiB}, []float64{mib(rss)})
		if _, err := h.check(ctx, s, "memory: "+f+" payload", start, n); err != nil {
			return err
		}
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// cpuProfile saves a CPU profile of the Tally at base, taken over the next seconds.
func cpuProfile(ctx context.Context, base, file string, seconds int) error {
	return fetchProfile(ctx, fmt.Sprintf("%s/admin/v1/debug/pprof/profile?seconds=%d", base, seconds), file)
}

// fetchProfile writes what Tally's admin pprof endpoint at url answers to file.
func fetchProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
