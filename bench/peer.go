package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// peerFlow runs the reference script (peer.py: read, map codes, post 1000-value chunks one
// at a time) over n fresh values into the sink, and measures it as tallyFlow measures Tally:
// values/s from the script's start to the sink's answer to its last import, its own CPU time,
// and the sink's.
func (h *harness) peerFlow(ctx context.Context, s *sinkProc, label string, n int) (flow, error) {
	start := h.alloc(n)
	file, err := writePayloadFile(start, n)
	if err != nil {
		return flow{}, err
	}
	defer os.RemoveAll(filepath.Dir(file))
	if err := s.c.reset(ctx, n); err != nil {
		return flow{}, err
	}
	startup, err := h.peerStartup(ctx, s.URL)
	if err != nil {
		return flow{}, err
	}
	cpuS, err := startCPU(s.PID)
	if err != nil {
		return flow{}, err
	}
	out, cpu, perr := runPeer(ctx, h.o.Python, h.o.PeerScript, s.URL, h.rules, "--file", file)
	if perr != nil {
		// The script has no retries: a refused request loses its values. That fails the
		// run (the check below names them), not the bench.
		h.r.Failures = append(h.r.Failures, label+": "+perr.Error())
		h.logf("FAILED %s: %v", label, perr)
	}
	// The interpreter's start is not work on the values (Tally's own start is not
	// measured either).
	cpu = max(0, cpu-startup)
	var p Progress
	var werr error
	if perr == nil {
		if p, werr = s.c.awaitReceipts(ctx, h.o.Stall); werr != nil {
			h.logf("%s: %v", label, werr)
		}
	}
	f := flow{subjectCPU: cpu}
	if p.Reached {
		f.rate = float64(n) / (float64(p.ReachedAt)/1e9 - out.Start)
	}
	if f.sinkCPU, err = cpuS.used(); err != nil {
		return f, err
	}
	f.ok, err = h.check(ctx, s, label, start, n)
	f.ok = f.ok && werr == nil && perr == nil
	return f, err
}

// peerStartup is the CPU time the peer's interpreter takes to start and import its modules
// (the median of three runs with --startup-only), measured once per bench run and reported
// as a figure of its own.
func (h *harness) peerStartup(ctx context.Context, sinkURL string) (float64, error) {
	if h.startup >= 0 {
		return h.startup, nil
	}
	var runs []float64
	for range 3 {
		_, cpu, err := runPeer(ctx, h.o.Python, h.o.PeerScript, sinkURL, h.rules, "--file", os.DevNull, "--startup-only")
		if err != nil {
			return 0, fmt.Errorf("measuring the peer's start: %w", err)
		}
		runs = append(runs, cpu)
	}
	h.r.add(Figure{Scenario: ScenarioE2E, Subject: "peer script", Measure: "interpreter start, subtracted from each run's CPU time",
		Unit: UnitCPUSeconds}, runs)
	h.startup = h.r.Figures[len(h.r.Figures)-1].Median
	return h.startup, nil
}

// peerOutput is the line peer.py prints.
type peerOutput struct {
	Start   float64 `json:"start"` // Unix seconds when it began reading the file
	Sent    int     `json:"sent"`
	Seconds float64 `json:"seconds"`
}

// writePayloadFile writes the values [start, start+n) as a JSON data value set into a new
// temporary directory, streaming.
func writePayloadFile(start, n int) (string, error) {
	dir, err := os.MkdirTemp("", "tally-peer-*")
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, "payload.json")
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	g, _, err := UniversePayload("json", start, n)
	if err == nil {
		_, err = io.Copy(f, g)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("writing the peer's payload: %w", err)
	}
	return file, nil
}

// runPeer runs the script and returns what it printed and its CPU time: utime + stime
// from /proc/<pid>/stat, read after it exited and before it is reaped (see waitExited);
// where that cannot be done, the same counters as wait4 reports them.
func runPeer(ctx context.Context, python, script, sinkURL, rules string, args ...string) (peerOutput, float64, error) {
	cmd := exec.CommandContext(ctx, python, append([]string{script, "--url", sinkURL,
		"--user", dhis2test.SampleUser, "--password", dhis2test.SamplePassword, "--rules-file", rules}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return peerOutput{}, 0, fmt.Errorf("peer script: %w", err)
	}
	cpu := -1.0
	if waitExited(cmd.Process.Pid) == nil {
		if c, err := cpuSeconds(cmd.Process.Pid); err == nil {
			cpu = c
		}
	}
	if err := cmd.Wait(); err != nil {
		return peerOutput{}, 0, fmt.Errorf("peer script: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if cpu < 0 {
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	var out peerOutput
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil || out.Start == 0 {
		return out, 0, fmt.Errorf("peer script printed %q, want {\"start\":…,\"sent\":…,\"seconds\":…}", stdout.String())
	}
	return out, cpu, nil
}
