package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/bench"
)

func TestBenchHelpDocumentsEveryScenario(t *testing.T) {
	code, out, _ := runTest(t, nil, "bench", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range append(bench.AllScenarios, "--scenarios", "--capacity-per-value", "--scale-payloads", "tally bench sink", "Example:") {
		if !strings.Contains(out, want) {
			t.Errorf("bench --help lacks %q", want)
		}
	}
	if code, _, _ := runTest(t, nil, "bench", "--runs", "2", "--scenarios", "e2e"); code != 1 {
		t.Errorf("--runs 2: exit %d, want 1 (a median with a range needs 3 runs)", code)
	}
}

// TestBenchSinkCommandServes runs "tally bench sink" in the foreground: its first output
// line is its URL, it serves the emulator in the capacity mode its flags describe, and it
// stops when interrupted.
func TestBenchSinkCommandServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan int, 1)
	go func() {
		defer pw.Close()
		done <- runCLI(ctx, &cliEnv{stdout: pw, stderr: io.Discard, getenv: func(string) string { return "" }},
			[]string{"bench", "sink", "--kind", "emulator", "--capacity", "--capacity-max-concurrent", "3", "--capacity-per-value", "0"})
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	url := strings.TrimSpace(line)
	if err != nil || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q (%v), want the sink's URL", line, err)
	}
	resp, err := http.Get(url + "/__sim/capacity")
	if err != nil {
		t.Fatal(err)
	}
	var cs dhis2test.CapacityStats
	err = json.NewDecoder(resp.Body).Decode(&cs)
	resp.Body.Close()
	if err != nil || !cs.Enabled || cs.Config.MaxConcurrent != 3 || cs.Config.PerValue != 0 {
		t.Fatalf("capacity %+v, %v", cs, err)
	}
	if resp, err := http.Get(url + "/__bench/health"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("control API: %v %v", resp, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after interrupt", code)
	}
}

// TestBenchRunsTallyAndSinksAsProcesses builds the tally binary and runs a small bench the
// way an operator does: Tally and the sinks are child processes, so their CPU time and
// Tally's peak RSS are read from /proc, and every run is verified.
func TestBenchRunsTallyAndSinksAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the bench")
	}
	bin := filepath.Join(t.TempDir(), "tally")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// --counting-import-time reaches the counting sink's process as --import-time.
	args := []string{"bench", "--scenarios", "e2e,memory", "--sinks", "counting,emulator", "--values", "5000",
		"--big-values", "5000", "--rules", "20", "--counting-import-time", "1ms", "--json"}
	python, _ := exec.LookPath("python3")
	if python != "" {
		args = append(args, "--peer", "../../bench/peer.py")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("tally bench: %v\n%s", err, stderr.String())
	}
	var r bench.Report
	if err := json.Unmarshal(stdout, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout)
	}
	find := func(sink, subject, measure string) bool {
		for _, f := range r.Figures {
			// The peer's CPU time may round to 0 at this size once its start is subtracted, and
			// the sink's (about 5 ms for 5000 values) to 0 at /proc's 10 ms resolution.
			coarse := subject == "peer script" || strings.HasPrefix(subject, "sink")
			measured := f.Median > 0 || (coarse && f.Median == 0)
			if f.Sink == sink && f.Subject == subject && strings.HasPrefix(f.Measure, measure) && measured && f.Unit != "" && len(f.Runs) > 0 {
				return true
			}
		}
		return false
	}
	for _, sink := range bench.SinkKinds {
		for _, want := range [][2]string{{"tally", "CPU time"}, {"sink, during Tally's runs", "CPU time"}, {"tally", "end to end"}} {
			if !find(sink, want[0], want[1]) {
				t.Errorf("no %s figure for %s on %s", want[1], want[0], sink)
			}
		}
		if python != "" && !find(sink, "peer script", "CPU time") {
			t.Errorf("no CPU figure for the peer on %s", sink)
		}
	}
	if !find(bench.SinkCounting, "tally, json", "peak RSS") {
		t.Error("no peak RSS figure")
	}
	if r.Settings.CountingImportTime != "1ms" {
		t.Errorf("settings: counting import time %q, want 1ms", r.Settings.CountingImportTime)
	}
	if r.Machine.Cores == 0 || r.Machine.GoVersion == "" || r.Machine.Date == "" {
		t.Errorf("machine %+v", r.Machine)
	}
	if len(r.Checks) == 0 || len(r.Failures) > 0 {
		t.Errorf("%d checks, failures %v", len(r.Checks), r.Failures)
	}
}
