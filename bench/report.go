package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Units of the figures.
const (
	UnitRate          = "values/s"
	UnitCPU           = "CPU-s per million values"
	UnitCPUSeconds    = "CPU-s"
	UnitRatio         = "×"
	UnitMillis        = "ms"
	UnitMiB           = "MiB"
	UnitSeconds       = "s"
	UnitBytesPerValue = "bytes/value"
	UnitPercent       = "%"
	UnitCount         = "count"
)

// Figure is one measured quantity: the median of its runs, with their range.
type Figure struct {
	Scenario string `json:"scenario"`
	// Sink is what the values were delivered into (empty when nothing was).
	Sink string `json:"sink,omitempty"`
	// Subject is what was measured: tally, the peer script, a parser, the sink.
	Subject string    `json:"subject"`
	Measure string    `json:"measure"`
	Unit    string    `json:"unit"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Runs    []float64 `json:"runs"`
}

// Check is the verification of one run.
type Check struct {
	Run string `json:"run"`
	Verification
}

// Point is one sample of a metric over a run.
type Point struct {
	Seconds float64 `json:"seconds"` // since the run started
	Value   float64 `json:"value"`
}

// Series is a metric sampled over one run.
type Series struct {
	Run    string  `json:"run"`
	Metric string  `json:"metric"`
	Points []Point `json:"points"`
}

// Settings are the options a report was measured with.
type Settings struct {
	Scenarios      []string         `json:"scenarios"`
	Sinks          []string         `json:"sinks"`
	Runs           int              `json:"runs"`
	Values         int              `json:"values"`
	BigValues      int              `json:"bigValues"`
	Rules          int              `json:"rules"`
	Concurrency    int              `json:"concurrency"`
	Rate           int              `json:"latencyRequestsPerSecond"`
	Duration       string           `json:"latencyDuration"`
	Peer           string           `json:"peer,omitempty"`
	Capacity       CapacitySettings `json:"capacity"`
	CapacityValues int              `json:"capacityValues"`
	CapacityRate   float64          `json:"capacityValuesPerSecond,omitempty"`
	Concurrencies  []int            `json:"capacityConcurrencies"`
	Adaptive       []int            `json:"capacityAdaptive"`
	ScaleValues    int              `json:"scaleValues"`
	ScalePayloads  int              `json:"scalePayloads"`
	TargetYAML     string           `json:"targetYAML,omitempty"`
	// CountingImportTime is Options.CountingImportTime, written out; empty: none.
	CountingImportTime string `json:"countingImportTime,omitempty"`
}

// Report is what a run measured. Every figure carries its unit; Checks holds the
// verification of every run (a figure comes only from runs that passed it).
type Report struct {
	Machine  Machine       `json:"machine"`
	Command  string        `json:"command,omitempty"`
	Settings Settings      `json:"settings"`
	Figures  []Figure      `json:"figures"`
	Checks   []Check       `json:"checks"`
	Series   []Series      `json:"series,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
	Failures []string      `json:"failures,omitempty"`
	Duration time.Duration `json:"durationNanoseconds"`
}

func newReport(o Options, began time.Time) *Report {
	peer := ""
	if o.PeerScript != "" {
		peer = o.Python + " " + o.PeerScript
	}
	return &Report{Machine: thisMachine(began), Settings: Settings{Scenarios: o.Scenarios, Sinks: o.Sinks, Runs: o.Runs,
		Values: o.Values, BigValues: o.BigValues, Rules: o.Rules, Concurrency: o.Concurrency, Rate: o.Rate,
		Duration: o.Duration.String(), Peer: peer, Capacity: capacityJSON(o), CapacityValues: o.CapacityValues,
		Concurrencies: o.Concurrencies, Adaptive: o.Adaptive, ScaleValues: o.ScaleValues, ScalePayloads: o.ScalePayloads, TargetYAML: o.TargetYAML,
		CountingImportTime: durationOrNone(o.CountingImportTime)},
		Figures: []Figure{}, Checks: []Check{}}
}

// CapacitySettings is the capacity mode of the capacity scenario, durations written out.
type CapacitySettings struct {
	MaxConcurrent int    `json:"maxConcurrent"`
	MaxQueue      int    `json:"maxQueue"`
	PerRequest    string `json:"perRequest"`
	PerValue      string `json:"perValue"`
	QueueTimeout  string `json:"queueTimeout"`
}

func capacityJSON(o Options) CapacitySettings {
	c := o.Capacity
	return CapacitySettings{MaxConcurrent: c.MaxConcurrent, MaxQueue: c.MaxQueue, PerRequest: c.PerRequest.String(),
		PerValue: c.PerValue.String(), QueueTimeout: c.QueueTimeout.String()}
}

// add records a figure from its runs; a figure without a run (every run failed its
// verification) is left out.
func (r *Report) add(f Figure, runs []float64) {
	if len(runs) == 0 {
		return
	}
	f.Runs = runs
	s := slices.Clone(runs)
	sort.Float64s(s)
	f.Min, f.Max = s[0], s[len(s)-1]
	f.Median = s[len(s)/2]
	if len(s)%2 == 0 {
		f.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	r.Figures = append(r.Figures, f)
}

// format writes a number with thousands separators and sensible precision.
func format(v float64) string {
	switch {
	case v >= 1000 || v <= -1000:
		s := fmt.Sprintf("%.0f", v)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	case v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Markdown writes the report as the tables BENCHMARKS.md holds: the machine, then one table
// per scenario, then every run's verification.
func (r *Report) Markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "%s, %d cores, %d MiB, %s, %s (%s), %s; host %s.\n", m.CPU, m.Cores, m.MemoryMiB, m.OS, m.Kernel, m.GoVersion, m.Date, m.Host)
	if r.Command != "" {
		fmt.Fprintf(w, "Command: `%s`.\n", r.Command)
	}
	fmt.Fprintf(w, "Medians of %d runs with their range; %d values per end-to-end run through %d code rules; target concurrency %d.\n",
		r.Settings.Runs, r.Settings.Values, r.Settings.Rules, r.Settings.Concurrency)
	for _, sc := range AllScenarios {
		var figs []Figure
		for _, f := range r.Figures {
			if f.Scenario == sc {
				figs = append(figs, f)
			}
		}
		if len(figs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n### %s\n\n", sc)
		if t := r.Settings.CountingImportTime; t != "" && sc != ScenarioCapacity && sc != ScenarioScaleOne && sc != ScenarioScaleMany {
			fmt.Fprintf(w, "Counting sink: each import takes at least %s, one import at a time.\n\n", t)
		}
		if sc == ScenarioCapacity {
			c := r.Settings.Capacity
			fmt.Fprintf(w, "Sink capacity: %s values/s in %d-value requests (%d imports at once, %d queued for at most %s, %s per request + %s per value).\n\n",
				format(r.Settings.CapacityRate), requestSize, c.MaxConcurrent, c.MaxQueue, c.QueueTimeout, c.PerRequest, c.PerValue)
		}
		fmt.Fprintln(w, "| sink | subject | measure | median | min – max | unit | runs |")
		fmt.Fprintln(w, "|---|---|---|---:|---:|---|---:|")
		for _, f := range figs {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s – %s | %s | %d |\n", f.Sink, f.Subject, f.Measure, format(f.Median),
				format(f.Min), format(f.Max), f.Unit, len(f.Runs))
		}
	}
	passed := 0
	for _, c := range r.Checks {
		if c.OK() {
			passed++
		}
	}
	fmt.Fprintf(w, "\nVerification: %d of %d runs delivered every value exactly once.\n", passed, len(r.Checks))
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "\nFAILED: %s\n", f)
	}
}

// durationOrNone writes d out, or "" for none.
func durationOrNone(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}
