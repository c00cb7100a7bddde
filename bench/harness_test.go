package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHarnessRuns drives every scenario at a small size against an in-process Tally and
// in-process sinks, so that `tally bench` cannot rot: every scenario must produce its
// figures and every run must pass its verification. (No figure is asserted against a
// speed: that is what the bench is for.)
func TestHarnessRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the full pipeline")
	}
	python, _ := exec.LookPath("python3")
	peer := ""
	if python != "" {
		peer = "peer.py"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{Start: InProcess, Scenarios: AllScenarios, Values: 3000, BigValues: 2000, Rules: MinRules,
		Rate: 20, Duration: time.Second, Python: python, PeerScript: peer, CapacityValues: 3000,
		ScaleValues: 6000, ScalePayloads: 12, Stall: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	has := func(scenario, sink, subject, measure string) {
		t.Helper()
		for _, f := range r.Figures {
			if f.Scenario == scenario && f.Sink == sink && strings.HasPrefix(f.Subject, subject) && strings.HasPrefix(f.Measure, measure) {
				if f.Unit == "" || len(f.Runs) == 0 || f.Min > f.Median || f.Median > f.Max {
					t.Errorf("figure %+v", f)
				}
				return
			}
		}
		t.Errorf("no figure %s/%s/%s/%s", scenario, sink, subject, measure)
	}
	for _, f := range Formats {
		has(ScenarioIngest, "", "parser alone, "+f, "decode rate")
		has(ScenarioIngest, SinkCounting, "tally, "+f, "ingest rate")
	}
	for _, s := range SinkKinds {
		has(ScenarioE2E, s, "tally", "end to end")
		if peer != "" {
			has(ScenarioE2E, s, "peer script", "end to end")
			has(ScenarioE2E, s, "tally / peer script", "end-to-end speed ratio")
		}
	}
	has(ScenarioLatency, SinkCounting, "tally", "time to answer, p99")
	has(ScenarioCapacity, SinkEmulator+" (capacity mode)", "tally, concurrency 2", "share of the sink's capacity")
	has(ScenarioCapacity, SinkEmulator+" (capacity mode)", "tally, concurrency 16", "sink answered 503, queue full")
	has(ScenarioCapacity, SinkEmulator+" (capacity mode)", "tally, concurrency 16", "dead letters")
	has(ScenarioCapacity, SinkEmulator+" (capacity mode)", "tally, adaptive concurrency, at most 16", "concurrency limit")
	has(ScenarioScaleOne, SinkCounting, "tally, 6000 values in 1 payload", "store size with the whole backlog mapped")
	has(ScenarioScaleMany, SinkCounting, "tally, 6000 values in 12 payload", "drain into the counting sink")
	for _, c := range r.Checks {
		if !c.OK() {
			t.Errorf("%s: %v", c.Run, c.Err())
		}
	}
	if len(r.Checks) < 20 {
		t.Errorf("%d runs verified", len(r.Checks))
	}
	var md bytes.Buffer
	r.Markdown(&md)
	t.Log("\n" + md.String())
	for _, want := range []string{"### e2e", "### capacity", "### scale-many", "runs delivered every value exactly once"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Error(err)
	}
}

// TestRunRefusesBadOptions: a median needs three runs, and the mapping set must map every
// data element the payloads use.
func TestRunRefusesBadOptions(t *testing.T) {
	_, err := Run(context.Background(), Options{Start: InProcess, Runs: 2, Rules: 5, Scenarios: []string{"nope"}})
	for _, want := range []string{"at least 3 runs", "rules 5", `unknown scenario "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
	if errors.Is(err, ErrVerification) {
		t.Error("a refusal is not a verification failure")
	}
}

// TestRunFailsWhenValuesDoNotArrive: a Tally that delivers nothing for real (every import a
// dry run, which DHIS2 answers without storing) makes the bench fail, naming the missing
// values, and still returns the report.
func TestRunFailsWhenValuesDoNotArrive(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the full pipeline")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{Start: InProcess, Scenarios: []string{ScenarioE2E}, Sinks: []string{SinkCounting},
		Values: 2000, Rules: MinRules, TargetYAML: "dry_run: true", Stall: 2 * time.Second})
	if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "1000 missing") {
		t.Fatalf("error %v, want a verification failure naming the warm-up's 1000 missing values", err)
	}
	if r == nil || len(r.Failures) == 0 || r.Checks[0].Missing.N != 1000 || r.Checks[0].Arrived != 0 {
		t.Fatalf("report %+v", r)
	}
}

// TestNoteSpread: a session where a program's CPU per value ranged past spreadLimit (the
// script's in the 06:41 session of BENCHMARKS.md's round 7: 3.6, 5.1, 6.8) gets a note
// naming the sink, the program and the range; an ordinary spread gets none.
func TestNoteSpread(t *testing.T) {
	h := &harness{r: &Report{}}
	h.noteSpread(SinkEmulator, "Tally", []float64{2.3, 2.6, 3.1})
	h.noteSpread(SinkCounting, "the peer script", []float64{2.7})
	if len(h.r.Notes) != 0 {
		t.Fatalf("notes %q for ordinary spreads", h.r.Notes)
	}
	h.noteSpread(SinkEmulator, "the peer script", []float64{3.6, 5.1, 6.8})
	if len(h.r.Notes) != 1 || !strings.Contains(h.r.Notes[0], "e2e emulator: the peer script's CPU per million values ranged from 3.6 to 6.8 s") {
		t.Fatalf("notes %q", h.r.Notes)
	}
	var md bytes.Buffer
	h.r.Markdown(&md)
	if !strings.Contains(md.String(), "Note: e2e emulator: the peer script's") {
		t.Fatalf("markdown lacks the note:\n%s", md.String())
	}
}

// TestBusyShare checks the share of the cores a run kept busy: 100,000 values in 0.5 s
// (200,000 values/s) for which the program took 0.2 CPU-s and the sink 0.7 on 2 cores kept
// 0.9 of the 1.0 core-seconds busy. A run whose CPU times were not measured (a component
// inside the harness) or that failed its verification has no share.
func TestBusyShare(t *testing.T) {
	fr := flowRuns{cores: 2}
	fr.add(flow{ok: true, rate: 200_000, subjectCPU: 0.2, sinkCPU: 0.7}, 100_000)
	fr.add(flow{ok: true, rate: 200_000, subjectCPU: -1, sinkCPU: 0.7}, 100_000)
	fr.add(flow{ok: false, rate: 200_000, subjectCPU: 0.2, sinkCPU: 0.7}, 100_000)
	if len(fr.busy) != 1 || fr.busy[0] < 89.999 || fr.busy[0] > 90.001 {
		t.Fatalf("busy %v, want [90]", fr.busy)
	}
	if len(fr.cpu) != 1 || fr.cpu[0] != 2 || len(fr.sinkCPU) != 2 || fr.sinkCPU[0] != 7 {
		t.Fatalf("cpu %v, sink %v", fr.cpu, fr.sinkCPU)
	}
}
