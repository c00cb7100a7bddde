package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// Instance is a running Tally the harness drives.
type Instance struct {
	URL string
	// PID is the process to measure CPU time and memory of; 0 when Tally runs inside the
	// harness, in which case neither is reported.
	PID  int
	Stop func() error
}

// Starter starts Tally with a configuration file's content.
type Starter func(ctx context.Context, configYAML string) (*Instance, error)

// Scenarios, in the order a run performs them.
const (
	ScenarioIngest    = "ingest"     // ingest rate per format, and the parsers alone
	ScenarioE2E       = "e2e"        // end to end against each sink, Tally and the peer alternating
	ScenarioLatency   = "latency"    // time to answer at a fixed offered load
	ScenarioMemory    = "memory"     // peak RSS for a large JSON and ADX payload
	ScenarioCapacity  = "capacity"   // delivery into a DHIS2-shaped capacity limit
	ScenarioScaleOne  = "scale-one"  // a backlog of ScaleValues values in one payload
	ScenarioScaleMany = "scale-many" // the same in ScalePayloads payloads posted at once
)

// DefaultScenarios is what `tally bench` runs without --scenarios: a few minutes.
var DefaultScenarios = []string{ScenarioIngest, ScenarioE2E, ScenarioLatency, ScenarioMemory, ScenarioCapacity}

// AllScenarios lists every scenario.
var AllScenarios = []string{ScenarioIngest, ScenarioE2E, ScenarioLatency, ScenarioMemory, ScenarioCapacity,
	ScenarioScaleOne, ScenarioScaleMany}

// Options configure a harness run. Zero fields take the defaults in brackets.
type Options struct {
	// Start starts Tally; StartSink starts a sink (InProcessSink when nil).
	Start     Starter
	StartSink SinkStarter
	// Scenarios to run [DefaultScenarios]; Sinks the end-to-end runs use [both].
	Scenarios []string
	Sinks     []string
	// Runs is the number of alternating runs behind every median [3; at least 3].
	Runs int
	// Values per throughput payload [100,000]; BigValues of the memory payloads
	// [1,000,000].
	Values, BigValues int
	// Rules is the size of the mapping set the values go through [100; at least MinRules].
	Rules int
	// Concurrency is the target's concurrency in every scenario but capacity [4].
	Concurrency int
	// Rate and Duration set the latency run's offered load [20 requests of 1000 values
	// per second for 10 s].
	Rate     int
	Duration time.Duration
	// Python runs the reference peer script PeerScript; empty skips the peer.
	Python, PeerScript string
	// Capacity is the emulator's capacity mode in the capacity scenario [DefaultCapacity];
	// CapacityValues the values per run [100,000]; Concurrencies the target concurrencies
	// Tally is measured with there [2 and 16].
	Capacity       dhis2test.Capacity
	CapacityValues int
	Concurrencies  []int
	// Adaptive are the ceilings (targets[].concurrency) Tally is measured with in the
	// capacity scenario with adaptive_concurrency on [16].
	Adaptive []int
	// ScaleValues is the backlog of the scale scenarios [10,000,000], ScalePayloads the
	// number of payloads scale-many splits it into [100], ScaleRuns their runs [1].
	ScaleValues, ScalePayloads, ScaleRuns int
	// TargetYAML is added to the target's configuration (flow-style YAML keys, e.g.
	// "timeout: 30s"), for settings the harness does not know, such as a future adaptive
	// concurrency switch.
	TargetYAML string
	// CountingImportTime makes each import into the counting sink take at least this long,
	// one import at a time (SinkSpec.ImportTime), in every scenario of its session [0:
	// none]: a target that is the bottleneck, as DHIS2 is, without the sink's own CPU.
	CountingImportTime time.Duration
	// Stall is how long a run may go without a new value arriving before it fails [2m].
	Stall time.Duration
	// CPUProfile receives a CPU profile of Tally taken during its end-to-end runs into the
	// counting sink, or into the emulator when it is the only sink (through Tally's admin
	// pprof endpoint), for CPUProfileSeconds from the scenario's start [5].
	CPUProfile        string
	CPUProfileSeconds int
	// MemProfile receives Tally's allocation profile (pprof "allocs") read right after its
	// end-to-end runs into the same sink: what each call site allocated since the start.
	MemProfile string
	Log        io.Writer
}

// DefaultCapacity is the capacity scenario's DHIS2: 4 imports at once, 4 more queued for
// at most 1 s, then 503; an import costs 20 ms plus 0.1 ms per value (120 ms for 1000
// values), so it serves at most 33,333 values/s in 1000-value requests. Small enough that a
// run of 100,000 values takes seconds; shaped like dhis2test's defaults (Tomcat's pool
// and queue, scaled down) so that overrunning it shows as 503s and timeouts. Set the
// figures to a measured DHIS2 with the --capacity-* flags.
var DefaultCapacity = dhis2test.Capacity{PerRequest: 20 * time.Millisecond, PerValue: 100 * time.Microsecond,
	MaxConcurrent: 4, MaxQueue: 4, QueueTimeout: time.Second}

// ErrVerification is wrapped by Run's error when a run's values did not arrive exactly once.
var ErrVerification = errors.New("a run did not deliver every value exactly once")

func (o *Options) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Runs, 3)
	def(&o.Values, 100_000)
	def(&o.BigValues, 1_000_000)
	def(&o.Rules, 100)
	def(&o.Concurrency, 4)
	def(&o.Rate, 20)
	def(&o.CapacityValues, 100_000)
	def(&o.ScaleValues, 10_000_000)
	def(&o.ScalePayloads, 100)
	def(&o.ScaleRuns, 1)
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.CPUProfileSeconds <= 0 {
		o.CPUProfileSeconds = 5
	}
	if o.Stall == 0 {
		o.Stall = 2 * time.Minute
	}
	if o.Capacity == (dhis2test.Capacity{}) {
		o.Capacity = DefaultCapacity
	}
	if len(o.Concurrencies) == 0 {
		o.Concurrencies = []int{2, 16}
	}
	if o.Adaptive == nil {
		o.Adaptive = []int{16}
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = DefaultScenarios
	}
	if len(o.Sinks) == 0 {
		o.Sinks = SinkKinds
	}
	if o.StartSink == nil {
		o.StartSink = InProcessSink
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	var errs []error
	for _, s := range o.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q; want one of %s", s, strings.Join(AllScenarios, ", ")))
		}
	}
	for _, s := range o.Sinks {
		if !slices.Contains(SinkKinds, s) {
			errs = append(errs, fmt.Errorf("unknown sink %q; want one of %s", s, strings.Join(SinkKinds, ", ")))
		}
	}
	if o.Runs < 3 {
		errs = append(errs, fmt.Errorf("runs %d: a median with a range needs at least 3 runs", o.Runs))
	}
	if o.Rules < MinRules {
		errs = append(errs, fmt.Errorf("rules %d: at least %d, one per data element of the payloads", o.Rules, MinRules))
	}
	if o.ScaleValues%o.ScalePayloads != 0 {
		errs = append(errs, fmt.Errorf("scale values %d do not split into %d equal payloads", o.ScaleValues, o.ScalePayloads))
	}
	for _, n := range []int{o.Values, o.BigValues, o.CapacityValues, o.ScaleValues} {
		if n < 1000 || n > UniverseSize/2 {
			errs = append(errs, fmt.Errorf("payload of %d values: want 1,000 to %d", n, UniverseSize/2))
		}
	}
	if o.Start == nil {
		errs = append(errs, errors.New("no way to start Tally (Options.Start)"))
	}
	return errors.Join(errs...)
}

// harness is one run of the bench.
type harness struct {
	o     Options
	r     *Report
	next  int // the next unused value of the universe
	rules string
	// startup is the peer interpreter's start-up CPU time; -1 until measured.
	startup float64
}

// Run runs the selected scenarios and returns the report. A run whose values did not all
// arrive exactly once does not stop the others; Run then returns the report with an error
// wrapping ErrVerification.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	began := time.Now()
	h := &harness{o: o, r: newReport(o, began), startup: -1}
	dir, err := os.MkdirTemp("", "tally-bench-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	h.rules = filepath.Join(dir, "rules.csv")
	if err := os.WriteFile(h.rules, []byte(mappingCSV(o.Rules)), 0o600); err != nil {
		return nil, err
	}
	steps := []struct {
		run  func(context.Context) error
		when []string
	}{
		{h.decode, []string{ScenarioIngest}},
		{h.countingSession, []string{ScenarioIngest, ScenarioE2E, ScenarioLatency, ScenarioMemory}},
		{h.emulatorSession, []string{ScenarioE2E}},
		{h.capacity, []string{ScenarioCapacity}},
		{func(ctx context.Context) error { return h.scale(ctx, ScenarioScaleOne, 1) }, []string{ScenarioScaleOne}},
		{func(ctx context.Context) error { return h.scale(ctx, ScenarioScaleMany, o.ScalePayloads) }, []string{ScenarioScaleMany}},
	}
	for _, s := range steps {
		if !slices.ContainsFunc(s.when, h.selected) {
			continue
		}
		if err := s.run(ctx); err != nil {
			h.r.Duration = time.Since(began)
			return h.r, h.failed(err)
		}
	}
	h.r.Duration = time.Since(began)
	if len(h.r.Failures) > 0 {
		return h.r, h.failed(ErrVerification)
	}
	return h.r, nil
}

// failed is the error Run returns: err, and every run that failed its verification.
func (h *harness) failed(err error) error {
	if len(h.r.Failures) == 0 {
		return fmt.Errorf("bench: %w", err)
	}
	return fmt.Errorf("bench: %w:\n  %s", err, strings.Join(h.r.Failures, "\n  "))
}

func (h *harness) selected(s string) bool { return slices.Contains(h.o.Scenarios, s) }

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.o.Log, "bench: "+format+"\n", args...)
}

// alloc reserves n values of the universe no earlier payload of this run used, so that no
// two payloads repeat a key (or a body, which Tally would recognise as a client's retry).
func (h *harness) alloc(n int) int {
	if h.next+n > UniverseSize {
		h.next = 0
	}
	s := h.next
	h.next += n
	return s
}

// tallyProc is a Tally the harness started, with its own JetStream store.
type tallyProc struct {
	*Instance
	store string
}

const (
	benchToken      = "bench-token-0123456789"
	benchAdminToken = "admin-bench-token-0123"
	targetName      = "sink"
)

// configYAML is the Tally configuration of the bench: one source posting in the universe's
// source codes through the bench mapping set, one target (the sink) at concurrency.
func (h *harness) configYAML(sinkURL, store string, concurrency int, adaptive bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `http: {addr: "127.0.0.1:0", max_body_bytes: 4GiB, store_timeout: 10m}
nats: {store_dir: %q}
admin: {token: %s}
sources:
  - name: bench
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
    mapping: bench
targets:
  - name: %s
    url: %s
    username: %s
    password: %s
    concurrency: %d
    id_schemes: {id_scheme: CODE}
`, store, benchAdminToken, benchToken, targetName, sinkURL, dhis2test.SampleUser, dhis2test.SamplePassword, concurrency)
	if adaptive {
		b.WriteString("    adaptive_concurrency: true\n")
	}
	for _, line := range strings.Split(strings.TrimSpace(h.o.TargetYAML), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			b.WriteString("    " + line + "\n")
		}
	}
	b.WriteString("log: {level: warn}\n")
	b.WriteString(UniverseMappingYAML(h.o.Rules))
	return b.String()
}

// startTally starts a Tally delivering to sinkURL at a fixed concurrency, with a fresh store.
func (h *harness) startTally(ctx context.Context, sinkURL string, concurrency int) (*tallyProc, error) {
	return h.startTallyWith(ctx, sinkURL, concurrency, false)
}

// startTallyWith starts a Tally delivering to sinkURL, with a fresh store; adaptive turns
// the target's adaptive_concurrency on, concurrency then being its ceiling.
func (h *harness) startTallyWith(ctx context.Context, sinkURL string, concurrency int, adaptive bool) (*tallyProc, error) {
	store, err := os.MkdirTemp("", "tally-bench-store-*")
	if err != nil {
		return nil, err
	}
	inst, err := h.o.Start(ctx, h.configYAML(sinkURL, filepath.Join(store, "nats"), concurrency, adaptive))
	if err != nil {
		os.RemoveAll(store)
		return nil, fmt.Errorf("starting Tally: %w", err)
	}
	stop := inst.Stop
	inst.Stop = func() error {
		err := stop()
		os.RemoveAll(store)
		return err
	}
	return &tallyProc{Instance: inst, store: filepath.Join(store, "nats")}, nil
}

// sinkProc is a running sink with its control client.
type sinkProc struct {
	*SinkInstance
	kind string
	c    *sinkClient
}

func (h *harness) startSink(ctx context.Context, spec SinkSpec) (*sinkProc, error) {
	s, err := h.o.StartSink(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("starting the %s sink: %w", spec.Kind, err)
	}
	return &sinkProc{SinkInstance: s, kind: spec.Kind, c: newSinkClient(s.URL)}, nil
}

// generate renders a payload of the universe's values [start, start+n) in memory, before
// any clock starts, so the generator's cost is not counted against Tally.
func generate(format string, start, n int) ([]byte, string, error) {
	g, ctype, err := UniversePayload(format, start, n)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(g)
	return body, ctype, err
}

// post sends a payload to Tally's bench source and returns the time to its answer, which
// Tally gives only once JetStream has stored every batch.
func (h *harness) post(ctx context.Context, t *tallyProc, body io.Reader, ctype string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/ingest/bench", body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+benchToken)
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("posting to Tally: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	took := time.Since(began)
	if resp.StatusCode == http.StatusServiceUnavailable {
		wait := time.Second
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		return 0, &busyError{retryAfter: wait, msg: string(bytes.TrimSpace(msg))}
	}
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("posting to Tally: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return took, nil
}

// busyError is Tally's 503: it stored nothing of the payload and asks for it again after
// retryAfter.
type busyError struct {
	retryAfter time.Duration
	msg        string
}

func (e *busyError) Error() string {
	return fmt.Sprintf("posting to Tally: HTTP 503 (retry after %s): %s", e.retryAfter, e.msg)
}

// check reads the sink's state for the values a run sent, records the verdict, and turns a
// failed one into a failure of the whole bench.
func (h *harness) check(ctx context.Context, s *sinkProc, label string, start, n int) (bool, error) {
	st, err := s.c.state(ctx, start, n)
	if err != nil {
		return false, err
	}
	v := Verify(st)
	h.r.Checks = append(h.r.Checks, Check{Run: label, Verification: v})
	if err := v.Err(); err != nil {
		h.r.Failures = append(h.r.Failures, label+": "+err.Error())
		h.logf("FAILED %s: %v", label, err)
		return false, nil
	}
	return true, nil
}

// flow is one measured delivery: values/s from the start to the sink's answer to the import
// that completed the run, and the CPU seconds Tally (or the peer) and the sink used.
type flow struct {
	ok                  bool
	rate                float64
	subjectCPU, sinkCPU float64 // -1: not measured
}

// tallyFlow posts n fresh values to Tally and measures them into the sink.
func (h *harness) tallyFlow(ctx context.Context, t *tallyProc, s *sinkProc, label string, n int) (flow, error) {
	start := h.alloc(n)
	body, ctype, err := generate("json", start, n)
	if err != nil {
		return flow{}, err
	}
	if err := s.c.reset(ctx, n); err != nil {
		return flow{}, err
	}
	cpuT, err := startCPU(t.PID)
	if err != nil {
		return flow{}, err
	}
	cpuS, err := startCPU(s.PID)
	if err != nil {
		return flow{}, err
	}
	began := time.Now()
	if _, err := h.post(ctx, t, bytes.NewReader(body), ctype); err != nil {
		return flow{}, err
	}
	p, werr := s.c.awaitReceipts(ctx, h.o.Stall)
	// Tally's work on the run goes on past the last import (acknowledgements, the
	// transaction log): its CPU time counts until it is idle again.
	settle(t.PID, 5*time.Second)
	f := flow{}
	if p.Reached {
		f.rate = float64(n) / time.Duration(p.ReachedAt-began.UnixNano()).Seconds()
	}
	if f.subjectCPU, err = cpuT.used(); err != nil {
		return f, err
	}
	if f.sinkCPU, err = cpuS.used(); err != nil {
		return f, err
	}
	if werr != nil {
		h.logf("%s: %v", label, werr)
	}
	f.ok, err = h.check(ctx, s, label, start, n)
	f.ok = f.ok && werr == nil
	return f, err
}

// warmUp sends a first small payload through a new Tally, so that its one-time costs
// (reading the target's metadata, opening connections) are not part of the first run.
func (h *harness) warmUp(ctx context.Context, t *tallyProc, s *sinkProc, label string) error {
	f, err := h.tallyFlow(ctx, t, s, label+" warm-up", 1000)
	if err != nil {
		return err
	}
	if !f.ok {
		return fmt.Errorf("%s warm-up: %w", label, ErrVerification)
	}
	return nil
}
