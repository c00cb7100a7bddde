package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tally-hmis/tally/adapters/adx"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

// Instance is a running Tally the harness drives.
type Instance struct {
	URL string
	// PID is the process to measure memory of; 0 when Tally runs inside the harness, in
	// which case memory is not reported.
	PID  int
	Stop func() error
}

// Starter starts Tally with a configuration file's content.
type Starter func(ctx context.Context, configYAML string) (*Instance, error)

// Options configure a harness run.
type Options struct {
	Start Starter
	// Values is the size of the throughput payloads (default 100,000); BigValues of the
	// memory payloads (default 1,000,000; 0 skips).
	Values, BigValues int
	// Rules is the number of code rules the end-to-end run maps through (default 100).
	Rules int
	// Rate and Duration set the fixed offered load of the latency run (default 20 requests
	// of 1000 values per second for 10 s).
	Rate     int
	Duration time.Duration
	// Python runs the reference peer script; empty skips it.
	Python string
	// PeerScript is the path of peer.py.
	PeerScript string
	Log        io.Writer
	// CPUProfile, when set, receives a CPU profile of Tally taken during the end-to-end
	// runs (through its admin pprof endpoint).
	CPUProfile string
}

// Report is what a run measured. Rates are values per second.
type Report struct {
	Ingest      map[string]float64 `json:"ingestValuesPerSecond"`
	Decode      map[string]float64 `json:"decodeValuesPerSecond"`
	EndToEnd    float64            `json:"endToEndValuesPerSecond"`
	Peer        float64            `json:"peerValuesPerSecond,omitempty"`
	PeerErr     string             `json:"peerError,omitempty"`
	LatencyP50  time.Duration      `json:"latencyP50"`
	LatencyP95  time.Duration      `json:"latencyP95"`
	LatencyP99  time.Duration      `json:"latencyP99"`
	LatencyN    int                `json:"latencyRequests"`
	PeakRSS     map[string]int64   `json:"peakRSSBytes,omitempty"`
	Values      int                `json:"values"`
	BigValues   int                `json:"bigValues"`
	Rules       int                `json:"rules"`
	OfferedLoad string             `json:"offeredLoad"`
	Host        string             `json:"host"`
	GoMaxProcs  int                `json:"cpus"`
	StartedAt   time.Time          `json:"startedAt"`
	Duration    time.Duration      `json:"duration"`
	emuAccepted func() int64
	sourceToken string
	log         io.Writer
	start       int
}

const (
	benchToken      = "bench-token-0123456789"
	benchAdminToken = "admin-bench-token-0123"
)

// configYAML is a Tally configuration for the harness: one source, one target (the no-op
// emulator), and a mapping set of rules code rules when rules > 0.
func configYAML(emuURL, store string, rules int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `http: {addr: "127.0.0.1:0", max_body_bytes: 1GiB}
nats: {store_dir: %q}
admin: {token: %s}
sources:
  - name: bench
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
`, store, benchAdminToken, benchToken)
	if rules > 0 {
		b.WriteString("    mapping: bench\n")
	}
	fmt.Fprintf(&b, `targets:
  - name: sink
    url: %s
    username: %s
    password: %s
    concurrency: 4
    id_schemes: {id_scheme: CODE}
log: {level: warn}
`, emuURL, dhis2test.SampleUser, dhis2test.SamplePassword)
	if rules > 0 {
		b.WriteString(MappingYAML(rules))
	}
	return b.String()
}

// MappingYAML is a mapping set of n code rules, the first ones naming the data elements the
// payloads use (as program indicator style source codes) and the rest padding the table.
func MappingYAML(n int) string {
	var b strings.Builder
	b.WriteString("mappings:\n  - name: bench\n    source_id_scheme: CODE\n    target_id_scheme: CODE\n    rules:\n")
	for i := 0; i < n; i++ {
		if i < len(elements) {
			fmt.Fprintf(&b, "      - {source: %s, data_element: %s}\n", elements[i], elements[i])
			continue
		}
		fmt.Fprintf(&b, "      - {source: PI_PAD_%03d, data_element: %s}\n", i, elements[i%len(elements)])
	}
	return b.String()
}

// Run runs every measurement and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Values == 0 {
		o.Values = 100_000
	}
	if o.Rules == 0 {
		o.Rules = 100
	}
	if o.Rate == 0 {
		o.Rate = 20
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	host, _ := os.Hostname()
	r := &Report{Ingest: map[string]float64{}, Decode: map[string]float64{}, PeakRSS: map[string]int64{},
		Values: o.Values, BigValues: o.BigValues, Rules: o.Rules, Host: host, StartedAt: time.Now(),
		GoMaxProcs: runtime.NumCPU(), OfferedLoad: fmt.Sprintf("%d requests/s of 1000 values for %s", o.Rate, o.Duration), log: o.Log,
		sourceToken: benchToken}
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"), dhis2test.WithNoopStore())
	defer emu.Close()
	r.emuAccepted = emu.Store().Accepted

	store, err := os.MkdirTemp("", "tally-bench-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(store)
	inst, err := o.Start(ctx, configYAML(emu.URL, filepath.Join(store, "nats"), o.Rules))
	if err != nil {
		return nil, fmt.Errorf("starting Tally: %w", err)
	}
	defer inst.Stop()

	for _, f := range Formats {
		r.logf("decode %s: %d values", f, o.Values)
		if r.Decode[f], err = decodeRate(f, o.Values); err != nil {
			return nil, err
		}
		r.logf("ingest %s: %d values over HTTP", f, o.Values)
		if r.Ingest[f], err = r.ingestRate(ctx, inst.URL, f, o.Values); err != nil {
			return nil, err
		}
	}
	// The end-to-end figures are the median of three runs each, Tally's and the peer's
	// alternating, so that a passing disturbance on a small machine moves neither alone.
	var tallyRuns, peerRuns []float64
	var profDone chan error
	if o.CPUProfile != "" {
		profDone = make(chan error, 1)
		go func() { profDone <- cpuProfile(ctx, inst.URL, o.CPUProfile, 3) }()
	}
	for i := range 3 {
		r.logf("end to end %d/3: %d values through %d rules into the no-op emulator", i+1, o.Values, o.Rules)
		v, err := r.endToEnd(ctx, inst.URL, o.Values)
		if err != nil {
			return nil, err
		}
		tallyRuns = append(tallyRuns, v)
		if o.Python != "" && o.PeerScript != "" && r.PeerErr == "" {
			r.logf("reference peer %d/3: %s %s", i+1, o.Python, o.PeerScript)
			p, err := peer(ctx, o.Python, o.PeerScript, emu.URL, o.Values, o.Rules)
			if err != nil {
				r.PeerErr = err.Error()
				continue
			}
			peerRuns = append(peerRuns, p)
		}
	}
	r.EndToEnd, r.Peer = median(tallyRuns), median(peerRuns)
	if profDone != nil {
		if err := <-profDone; err != nil {
			r.logf("CPU profile: %v", err)
		}
	}
	r.logf("latency at %s", r.OfferedLoad)
	if err := r.latency(ctx, inst.URL, o.Rate, o.Duration); err != nil {
		return nil, err
	}
	if o.BigValues > 0 && inst.PID > 0 {
		for _, f := range []string{"json", "adx"} {
			r.logf("peak memory: %d-value %s payload", o.BigValues, f)
			resetPeakRSS(inst.PID)
			if _, err := r.ingestRate(ctx, inst.URL, f, o.BigValues); err != nil {
				return nil, err
			}
			r.PeakRSS[f] = peakRSS(inst.PID)
		}
	}
	r.Duration = time.Since(r.StartedAt)
	return r, nil
}

// cpuProfile saves a CPU profile of the Tally at base, taken over the next seconds.
func cpuProfile(ctx context.Context, base, file string, seconds int) error {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/admin/v1/debug/pprof/profile?seconds=%d", base, seconds), nil)
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

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func (r *Report) logf(format string, args ...any) { fmt.Fprintf(r.log, "bench: "+format+"\n", args...) }

// next returns a fresh start offset, so that no two payloads of a run repeat values (a
// repeated body would be recognised as a retry and not stored again).
func (r *Report) next(n int) int {
	s := r.start
	r.start += n
	return s
}

func (r *Report) post(ctx context.Context, base, format string, n int) (time.Duration, error) {
	gen, ctype, err := Payload(format, r.next(n), n)
	if err != nil {
		return 0, err
	}
	// Generated up front so that the generator's own cost is not counted against Tally.
	body, err := io.ReadAll(gen)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/ingest/bench", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+r.sourceToken)
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	took := time.Since(began)
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("posting %d %s values: HTTP %d: %s", n, format, resp.StatusCode, msg)
	}
	return took, nil
}

// ingestRate is values per second from the request's start to the answer, which Tally gives
// only once JetStream has stored every batch.
func (r *Report) ingestRate(ctx context.Context, base, format string, n int) (float64, error) {
	took, err := r.post(ctx, base, format, n)
	if err != nil {
		return 0, err
	}
	return float64(n) / took.Seconds(), nil
}

// endToEnd is values per second from the request's start until the emulator has received
// every value.
func (r *Report) endToEnd(ctx context.Context, base string, n int) (float64, error) {
	if err := r.drain(ctx, 0); err != nil {
		return 0, err
	}
	before := r.emuAccepted()
	began := time.Now()
	if _, err := r.post(ctx, base, "json", n); err != nil {
		return 0, err
	}
	if err := r.drain(ctx, before+int64(n)); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(began).Seconds(), nil
}

// drain waits until the emulator has received at least want values (or, with want 0, until
// the count stops moving), so one measurement's deliveries do not overlap the next.
func (r *Report) drain(ctx context.Context, want int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	last, stable := int64(-1), 0
	for time.Now().Before(deadline) {
		got := r.emuAccepted()
		if want > 0 && got >= want {
			return nil
		}
		if want == 0 {
			if got == last {
				stable++
				if stable >= 10 {
					return nil
				}
			} else {
				stable = 0
			}
		}
		last = got
		// Waiting for a count, poll finely: the wait is part of what is measured.
		poll := 20 * time.Millisecond
		if want > 0 {
			poll = time.Millisecond
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	return fmt.Errorf("the emulator received %d values, want %d", r.emuAccepted(), want)
}

// latency offers rate requests of 1000 values per second for d and records each request's
// time to answer.
func (r *Report) latency(ctx context.Context, base string, rate int, d time.Duration) error {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.After(d)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var firstErr error
loop:
	for {
		select {
		case <-end:
			break loop
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			start := r.next(1000)
			wg.Add(1)
			gen, ctype, _ := Payload("json", start, 1000)
			body, _ := io.ReadAll(gen)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/ingest/bench", bytes.NewReader(body))
				req.Header.Set("Content-Type", ctype)
				req.Header.Set("Authorization", "Bearer "+r.sourceToken)
				began := time.Now()
				resp, err := http.DefaultClient.Do(req)
				took := time.Since(began)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = errors.Join(firstErr, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, took)
			}()
		}
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	r.LatencyP50, r.LatencyP95, r.LatencyP99, r.LatencyN = pct(0.50), pct(0.95), pct(0.99), len(lat)
	return nil
}

type nopSink struct{}

func (nopSink) Group(transform.Group) error                         { return nil }
func (nopSink) Value(*transform.DataValue, transform.Locator) error { return nil }

// decodeRate is the reference limit: the parser alone over the same payload, in memory.
func decodeRate(format string, n int) (float64, error) {
	src, _, err := Payload(format, 0, n)
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(src)
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

// peer runs the reference script: the plain "read, map codes, post chunks" integration that
// Tally replaces, against the same sink.
func peer(ctx context.Context, python, script, sinkURL string, n, rules int) (float64, error) {
	dir, err := os.MkdirTemp("", "tally-peer-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "payload.json")
	src, _, _ := Payload("json", 0, n)
	data, _ := io.ReadAll(src)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, python, script, "--file", file, "--url", sinkURL,
		"--user", dhis2test.SampleUser, "--password", dhis2test.SamplePassword, "--rules", strconv.Itoa(rules))
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("peer script: %v: %s", err, ee.Stderr)
		}
		return 0, fmt.Errorf("peer script: %w", err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("peer script printed %q, want values/s", out)
	}
	return v, nil
}

// peakRSS reads a process's resident-set high-water mark (VmHWM) in bytes.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so that
// each measurement sees its own peak.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0o200)
}

// Markdown writes the report as the tables BENCHMARKS.md holds.
func (r *Report) Markdown(w io.Writer) {
	rate := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	fmt.Fprintf(w, "Host %s, %d CPUs, %s; payloads of %d values; %d mapping rules.\n\n",
		r.Host, r.GoMaxProcs, r.StartedAt.UTC().Format(time.RFC3339), r.Values, r.Rules)
	fmt.Fprintln(w, "| format | ingest values/s (HTTP → JetStream) | raw decode values/s | ingest / decode |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, f := range Formats {
		fmt.Fprintf(w, "| %s | %s | %s | %.2f |\n", f, rate(r.Ingest[f]), rate(r.Decode[f]), r.Ingest[f]/r.Decode[f])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| measurement | result |")
	fmt.Fprintln(w, "|---|---:|")
	fmt.Fprintf(w, "| end to end, HTTP → mapping → no-op DHIS2 emulator | %s values/s |\n", rate(r.EndToEnd))
	if r.Peer > 0 {
		fmt.Fprintf(w, "| reference peer (Python script, same payload and sink) | %s values/s |\n", rate(r.Peer))
		fmt.Fprintf(w, "| Tally end to end / peer | %.2f× |\n", r.EndToEnd/r.Peer)
	} else if r.PeerErr != "" {
		fmt.Fprintf(w, "| reference peer | not run: %s |\n", r.PeerErr)
	}
	fmt.Fprintf(w, "| ingest latency p50 / p95 / p99 at %s | %s / %s / %s (%d requests) |\n", r.OfferedLoad,
		r.LatencyP50.Round(time.Millisecond/10), r.LatencyP95.Round(time.Millisecond/10), r.LatencyP99.Round(time.Millisecond/10), r.LatencyN)
	for _, f := range []string{"json", "adx"} {
		if v, ok := r.PeakRSS[f]; ok && v > 0 {
			fmt.Fprintf(w, "| peak RSS of the Tally process, %d-value %s payload | %.0f MiB |\n", r.BigValues, f, float64(v)/(1<<20))
		}
	}
}
