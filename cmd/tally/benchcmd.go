package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/bench"
)

const benchUsage = `bench [flags]
       tally bench sink --kind counting|emulator [--addr HOST:PORT] [--import-time D] [--capacity [--capacity-* ...]]

Tally runs as a child process ("tally serve", embedded JetStream) and so does each sink
("tally bench sink"), so that the CPU time (/proc/<pid>/stat) and peak RSS (VmHWM) of each
are their own. Every run is verified: each value sent must arrive at the sink exactly once,
or the bench exits 1 naming the missing, duplicated or unexpected values.

Sinks (--sinks): counting (a DHIS2 import endpoint that decodes every value with Tally's JSON
decoder and counts receipts per key) and emulator (the emulator's validating store, as
dhis2-sim runs it). Both serve the bench's generated metadata: 20 data elements x 4 option
combos x 5,000 org units x 120 months, so that every value sent has a key of its own.
With --counting-import-time D each import into the counting sink takes at least D, one at a
time: a target that is the bottleneck, as DHIS2 is, while the sink's own CPU stays low, so
that Tally's CPU per value can be read as it is when it waits on DHIS2.

Scenarios (--scenarios, comma-separated, or "all"; default ingest,e2e,latency,memory,capacity):
  ingest      ingest rate per format (JSON, ADX, CSV, CHT) until Tally's answer, and the parser
              alone in memory; the payloads are then verified at the counting sink
  e2e         end to end on each sink: Tally and the peer script (--peer) alternating, --runs
              rounds; values/s and CPU-s per million values of Tally, the peer and the sink,
              and the share of the cores each program and the sink kept busy together
  latency     time to answer at --rate requests of 1000 values per second for --duration
  memory      Tally's peak RSS for a --big-values JSON and ADX payload, request to delivered
  capacity    delivery into the emulator in capacity mode (--capacity-*): Tally at each
              --capacity-concurrency, with adaptive concurrency under each
              --capacity-adaptive ceiling, and the sequential peer; share of the sink's capacity,
              503s, queue timeouts, Tally's retries, dead letters, and
              tally_delivery_concurrency_limit sampled over each run when exported
  scale-one   a backlog of --scale-values values in one payload while the target is down:
              peak RSS, store bytes per value, then the time to drain it into the counting sink
  scale-many  the same backlog as --scale-payloads payloads posted at once

"tally bench sink" runs one sink in the foreground and prints its URL (the control API is
under /__bench/, the emulator's admin API under /__sim/).`

const benchExample = `go build -o tally ./cmd/tally
./tally bench --peer bench/peer.py                        # the default scenarios, Markdown
./tally bench --peer bench/peer.py --json > bench.json    # every figure with its unit and the machine
./tally bench --scenarios e2e --sinks emulator --runs 5 --peer bench/peer.py
./tally bench --scenarios capacity --capacity-max-concurrent 8 --capacity-per-value 1ms --capacity-concurrency 2,4,16 --peer bench/peer.py
./tally bench --scenarios scale-one,scale-many            # 10 million values each: long
./tally bench --scenarios e2e --sinks counting --cpuprofile tally.prof && go tool pprof -top tally tally.prof
./tally bench --scenarios e2e --sinks counting --counting-import-time 4ms --values 300000   # Tally's CPU per value while the target is slow
./tally bench sink --kind emulator --addr 127.0.0.1:8089 --capacity`

func benchCmd() *command {
	c := &command{
		name: "bench", usage: benchUsage,
		summary: "Measure Tally against verifying sinks and the script it replaces: throughput, CPU, latency, memory, capacity, scale.",
		example: benchExample,
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		if len(args) > 0 && args[0] == "sink" {
			return benchSink(ctx, env, args[1:])
		}
		fs := c.flags(env)
		o := bench.Options{Log: env.stderr}
		scenarios := fs.String("scenarios", strings.Join(bench.DefaultScenarios, ","), "scenarios to run, comma-separated, or all: "+strings.Join(bench.AllScenarios, ", "))
		sinks := fs.String("sinks", strings.Join(bench.SinkKinds, ","), "sinks of the e2e scenario, comma-separated: "+strings.Join(bench.SinkKinds, ", "))
		fs.IntVar(&o.Runs, "runs", 3, "alternating runs behind every median (at least 3)")
		fs.IntVar(&o.Values, "values", 100_000, "values per ingest and end-to-end payload")
		fs.IntVar(&o.BigValues, "big-values", 1_000_000, "values of the memory scenario's payloads")
		fs.IntVar(&o.Rules, "rules", 100, fmt.Sprintf("code rules in the mapping set (at least %d)", bench.MinRules))
		fs.IntVar(&o.Concurrency, "concurrency", 4, "the target's concurrency in every scenario but capacity")
		fs.IntVar(&o.Rate, "rate", 20, "requests per second of the latency scenario")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the latency scenario")
		fs.StringVar(&o.PeerScript, "peer", "", "reference peer script (bench/peer.py); empty leaves the peer out")
		python := fs.String("python", "python3", "Python interpreter for the peer script")
		capacity := capacityFlags(fs, bench.DefaultCapacity)
		fs.IntVar(&o.CapacityValues, "capacity-values", 100_000, "values per run of the capacity scenario")
		concurrencies := fs.String("capacity-concurrency", "2,16", "the target concurrencies Tally is measured with in the capacity scenario")
		adaptive := fs.String("capacity-adaptive", "16", "the concurrency ceilings Tally is measured with in the capacity scenario with adaptive_concurrency on (empty: none)")
		fs.IntVar(&o.ScaleValues, "scale-values", 10_000_000, "the backlog of the scale scenarios, in values")
		fs.IntVar(&o.ScalePayloads, "scale-payloads", 100, "payloads scale-many splits the backlog into, posted at once")
		fs.IntVar(&o.ScaleRuns, "scale-runs", 1, "runs of each scale scenario")
		fs.StringVar(&o.TargetYAML, "target-yaml", "", `extra YAML lines for the target's configuration, e.g. "timeout: 30s"`)
		fs.DurationVar(&o.CountingImportTime, "counting-import-time", 0, "make each import into the counting sink take at least this long, one at a time, in every scenario it serves: a slow target that costs no CPU (0: none)")
		fs.DurationVar(&o.Stall, "stall", 2*time.Minute, "a run fails when no value arrives at the sink for this long")
		fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of Tally during its end-to-end runs into the counting sink (the emulator with --sinks emulator) to this file")
		fs.IntVar(&o.CPUProfileSeconds, "cpuprofile-seconds", 5, "how long --cpuprofile profiles, from the start of the end-to-end scenario (long payloads need more)")
		fs.StringVar(&o.MemProfile, "memprofile", "", "write Tally's allocation profile, read after its end-to-end runs into the counting sink (the emulator with --sinks emulator), to this file (go tool pprof -sample_index=alloc_space)")
		asJSON := fs.Bool("json", false, "print the report as JSON (every figure with its unit, and the machine) instead of Markdown")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		o.Scenarios, o.Sinks = splitList(*scenarios), splitList(*sinks)
		if *scenarios == "all" {
			o.Scenarios = bench.AllScenarios
		}
		o.Capacity = capacity()
		var err error
		if o.Concurrencies, err = parseInts(*concurrencies); err != nil {
			return fmt.Errorf("--capacity-concurrency: %w", err)
		}
		if o.Adaptive, err = parseInts(*adaptive); err != nil {
			return fmt.Errorf("--capacity-adaptive: %w", err)
		}
		if o.Adaptive == nil {
			o.Adaptive = []int{} // none, rather than the default
		}
		if o.PeerScript != "" {
			if o.Python, err = exec.LookPath(*python); err != nil {
				return fmt.Errorf("--python: %w", err)
			}
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		o.Start = func(ctx context.Context, yml string) (*bench.Instance, error) { return startChild(ctx, env, self, yml) }
		o.StartSink = func(ctx context.Context, spec bench.SinkSpec) (*bench.SinkInstance, error) {
			return startSinkChild(ctx, env, self, spec)
		}
		r, runErr := bench.Run(ctx, o)
		if r == nil {
			return runErr
		}
		r.Command = "tally bench " + strings.Join(args, " ")
		if *asJSON {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(r); err != nil {
				return err
			}
		} else {
			r.Markdown(env.stdout)
		}
		return runErr
	}
	return c
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// capacityFlags defines the --capacity-* flags (as dhis2-sim names them) with defaults def
// and returns a function reading them: an explicit zero cost means no cost, a queue of -1 no
// queue, as in dhis2-sim.
func capacityFlags(fs *flag.FlagSet, def dhis2test.Capacity) func() dhis2test.Capacity {
	maxConcurrent := fs.Int("capacity-max-concurrent", def.MaxConcurrent, "capacity mode: imports served at once (DHIS2's servlet threads)")
	maxQueue := fs.Int("capacity-max-queue", def.MaxQueue, "capacity mode: imports waiting for a slot before 503 (-1: none)")
	perRequest := fs.Duration("capacity-per-request", def.PerRequest, "capacity mode: fixed cost of an import (measure your DHIS2)")
	perValue := fs.Duration("capacity-per-value", def.PerValue, "capacity mode: cost per data value (measure your DHIS2)")
	queueTimeout := fs.Duration("capacity-queue-timeout", def.QueueTimeout, "capacity mode: longest wait for a slot before 503 (0: as long as the client waits)")
	none := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	return func() dhis2test.Capacity {
		return dhis2test.Capacity{MaxConcurrent: *maxConcurrent, MaxQueue: *maxQueue, PerRequest: none(*perRequest),
			PerValue: none(*perValue), QueueTimeout: *queueTimeout}
	}
}

// benchSink is "tally bench sink": one sink in the foreground, its URL the first line of
// standard output.
func benchSink(ctx context.Context, env *cliEnv, args []string) error {
	c := &command{name: "bench sink", usage: "bench sink --kind counting|emulator [--addr HOST:PORT] [--import-time D] [--capacity [--capacity-* ...]]",
		summary: "Run one of the bench's sinks until interrupted; print its URL.",
		example: "tally bench sink --kind emulator --addr 127.0.0.1:8089 --capacity --capacity-max-concurrent 8"}
	fs := c.flags(env)
	kind := fs.String("kind", bench.SinkCounting, "sink kind: "+strings.Join(bench.SinkKinds, " or "))
	addr := fs.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	on := fs.Bool("capacity", false, "emulator only: capacity mode, configured by the --capacity-* flags")
	importTime := fs.Duration("import-time", 0, "counting sink only: each import takes at least this long, one at a time (0: none)")
	capacity := capacityFlags(fs, dhis2test.Capacity{MaxConcurrent: dhis2test.DefaultCapacityMaxConcurrent,
		MaxQueue: dhis2test.DefaultCapacityMaxQueue, PerRequest: dhis2test.DefaultCapacityPerRequest, PerValue: dhis2test.DefaultCapacityPerValue})
	if err := c.parse(env, fs, args); err != nil {
		return err
	}
	spec := bench.SinkSpec{Kind: *kind, Addr: *addr, ImportTime: *importTime}
	if *on {
		cp := capacity()
		spec.Capacity = &cp
	}
	return bench.ServeSink(ctx, spec, func(url string) {
		fmt.Fprintln(env.stdout, url)
		fmt.Fprintf(env.stderr, "bench %s sink listening on %s (DHIS2 API under /api, control under /__bench/)\n", *kind, url)
	})
}

// startSinkChild runs "tally bench sink" as a child process and waits for its URL.
func startSinkChild(ctx context.Context, env *cliEnv, self string, spec bench.SinkSpec) (*bench.SinkInstance, error) {
	addr := spec.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := []string{"bench", "sink", "--kind", spec.Kind, "--addr", addr}
	if c := spec.Capacity; c != nil {
		// Passed as the harness holds them: a negative cost already means none.
		args = append(args, "--capacity", "--capacity-max-concurrent", strconv.Itoa(c.MaxConcurrent),
			"--capacity-max-queue", strconv.Itoa(c.MaxQueue), "--capacity-per-request", c.PerRequest.String(),
			"--capacity-per-value", c.PerValue.String(), "--capacity-queue-timeout", c.QueueTimeout.String())
	}
	if spec.ImportTime > 0 {
		args = append(args, "--import-time", spec.ImportTime.String())
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = env.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		return cmd.Wait()
	}
	urls := make(chan string, 1)
	go func() {
		rd := bufio.NewReader(out)
		line, _ := rd.ReadString('\n')
		urls <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, rd)
	}()
	select {
	case u := <-urls:
		if !strings.HasPrefix(u, "http://") {
			_ = stop()
			return nil, fmt.Errorf("the %s sink did not start (it printed %q)", spec.Kind, u)
		}
		return &bench.SinkInstance{URL: u, PID: cmd.Process.Pid, Stop: stop}, nil
	case <-time.After(30 * time.Second):
		_ = stop()
		return nil, fmt.Errorf("the %s sink did not start within 30s", spec.Kind)
	case <-ctx.Done():
		_ = stop()
		return nil, ctx.Err()
	}
}

// startChild runs `tally serve` on a free loopback port and waits until it is ready.
func startChild(ctx context.Context, env *cliEnv, self, yml string) (*bench.Instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	yml = strings.Replace(yml, `addr: "127.0.0.1:0"`, fmt.Sprintf("addr: %q", addr), 1)
	dir, err := os.MkdirTemp("", "tally-bench-cfg-*")
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "serve", "--config", file)
	cmd.Stdout, cmd.Stderr = env.stderr, env.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := <-exited
		os.RemoveAll(dir)
		return err
	}
	base := "http://" + addr
	deadline := time.After(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &bench.Instance{URL: base, PID: cmd.Process.Pid, Stop: stop}, nil
			}
		}
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the Tally child process exited before it was ready: %v", err)
		case <-deadline:
			_ = stop()
			return nil, errors.New("the Tally child process did not become ready within 30s")
		case <-ctx.Done():
			_ = stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
