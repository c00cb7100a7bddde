package checks

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// root is the repository root: deploy/checks/../..
func root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the checks' source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func repoPath(t testing.TB, rel string) string {
	return filepath.Join(root(t), filepath.FromSlash(rel))
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatalf("reading %s: %v", rel, err)
	}
	return b
}

// metric is one tally_ metric that Tally exposes: the names the dashboards and alerts may
// use. TestLiveSeries holds it to what a running Tally exposes, names, types and labels;
// TestMetricsContract to what mediator.NewMetrics registers.
type metric struct {
	planned bool                // not exposed yet: may be missing, must match once there
	kind    string              // counter, gauge, histogram
	labels  []string            // its own labels (Prometheus adds job and instance)
	values  map[string][]string // the closed set of values of some labels
}

// tallyMetrics is the contract between Tally's metrics and deploy/ (alerts, dashboard).
//
// Label vocabulary (docs/operations.md#metrics): outcome is what became of values
// (imported, unmapped, ...), result is how one operation ended (an attempt, a run, a
// reload, a registration), reason is why something was refused or dead-lettered.
var tallyMetrics = map[string]metric{
	"tally_build_info":                              {kind: "gauge", labels: []string{"version", "revision", "dirty", "goversion"}},
	"tally_ingest_values_total":                     {kind: "counter", labels: []string{"source"}},
	"tally_ingest_messages_total":                   {kind: "counter", labels: []string{"source"}},
	"tally_ingest_rejected_requests_total":          {kind: "counter", labels: []string{"source", "reason"}, values: map[string][]string{"reason": {"bad_input", "too_large", "unsupported", "unavailable", "unauthorized", "forbidden", "rate_limited", "busy"}}},
	"tally_mapper_values_total":                     {kind: "counter", labels: []string{"source", "target", "outcome"}, values: map[string][]string{"outcome": {"mapped", "unmapped", "refused"}}},
	"tally_mapper_warnings_total":                   {kind: "counter", labels: []string{"source", "target", "code"}},
	"tally_mapper_duplicate_keys_total":             {kind: "counter", labels: []string{"source", "target", "action"}, values: map[string][]string{"action": {"last", "sum", "refused", "identical"}}},
	"tally_mapper_batches_total":                    {kind: "counter", labels: []string{"source", "stage"}, values: map[string][]string{"stage": {"ingest", "mapper"}}},
	"tally_mapping_reloads_total":                   {kind: "counter", labels: []string{"result"}, values: map[string][]string{"result": {"success", "failure"}}},
	"tally_delivery_completions_total":              {kind: "counter", labels: []string{"target", "result"}, values: map[string][]string{"result": {"registered", "failed"}}},
	"tally_delivery_values_total":                   {kind: "counter", labels: []string{"target", "outcome"}, values: map[string][]string{"outcome": {"imported", "updated", "ignored", "deleted", "rejected", "locked"}}},
	"tally_delivery_attempts_total":                 {kind: "counter", labels: []string{"target", "result"}, values: map[string][]string{"result": {"success", "partial", "transient", "permanent"}}},
	"tally_delivery_request_duration_seconds":       {kind: "histogram", labels: []string{"target"}},
	"tally_delivery_retries_total":                  {kind: "counter", labels: []string{"target"}},
	"tally_delivery_deferred_total":                 {kind: "counter", labels: []string{"target"}},
	"tally_delivery_request_splits_total":           {kind: "counter", labels: []string{"target"}},
	"tally_delivery_circuit_state":                  {kind: "gauge", labels: []string{"target"}}, // 0 closed, 1 half-open, 2 open
	"tally_delivery_concurrency_limit":              {kind: "gauge", labels: []string{"target"}},
	"tally_delivery_oldest_undelivered_seconds":     {kind: "gauge", labels: []string{"target"}},
	"tally_consumer_pending_messages":               {kind: "gauge", labels: []string{"consumer"}},
	"tally_dlq_messages_total":                      {kind: "counter", labels: []string{"target", "reason"}, values: map[string][]string{"reason": {"rejected", "permanent", "exhausted", "mapping", "locked", "undecodable", "panic", "max_delivered", "no_source"}}},
	"tally_dlq_depth":                               {kind: "gauge", labels: []string{"target", "reason"}, values: map[string][]string{"reason": {"rejected", "permanent", "exhausted", "mapping", "locked", "undecodable", "panic", "max_delivered", "no_source"}}},
	"tally_dlq_replayed_total":                      {kind: "counter", labels: []string{"target"}},
	"tally_dlq_discarded_total":                     {kind: "counter", labels: []string{"target"}},
	"tally_exchange_runs_total":                     {kind: "counter", labels: []string{"exchange", "result"}, values: map[string][]string{"result": {"succeeded", "partial", "failed"}}},
	"tally_exchange_run_duration_seconds":           {kind: "histogram", labels: []string{"exchange"}},
	"tally_exchange_values_total":                   {kind: "counter", labels: []string{"exchange", "kind"}, values: map[string][]string{"kind": {"pulled", "removed"}}},
	"tally_exchange_last_success_timestamp_seconds": {kind: "gauge", labels: []string{"exchange"}},
	"tally_exchange_failing":                        {kind: "gauge", labels: []string{"exchange"}},
	"tally_openhim_outcomes_total":                  {kind: "counter", labels: []string{"result"}, values: map[string][]string{"result": {"confirmed", "retried", "abandoned"}}},
	"tally_http_requests_total":                     {kind: "counter", labels: []string{"route", "method", "code"}},
	"tally_http_request_duration_seconds":           {kind: "histogram", labels: []string{"route"}},
}

// otherMetrics are the names outside tally_ that an expression may use: Prometheus's own
// scrape health.
var otherMetrics = map[string][]string{"up": nil}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

// lookupMetric resolves a series name to its metric, accepting a histogram's _bucket, _sum
// and _count series. extra is the labels the series has beyond the metric's own (le).
func lookupMetric(name string) (m metric, extra []string, ok bool) {
	if m, ok := tallyMetrics[name]; ok {
		return m, nil, m.kind != "histogram"
	}
	for suffix, ex := range map[string][]string{"_bucket": {"le"}, "_sum": nil, "_count": nil} {
		if base, found := strings.CutSuffix(name, suffix); found {
			if m, ok := tallyMetrics[base]; ok && m.kind == "histogram" {
				return m, ex, true
			}
		}
	}
	return metric{}, nil, false
}

var promqlParser = parser.NewParser(parser.Options{})

// checkPromQL parses expr and reports every metric name, label matcher and grouping label
// that does not belong to a known metric. It returns the metric names used.
func checkPromQL(t *testing.T, where, expr string) []string {
	t.Helper()
	node, err := promqlParser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: PromQL does not parse: %v\n%s", where, err, expr)
		return nil
	}
	var used []string
	// labelsOf gives the labels the series selected under a node can have.
	labelsOf := func(n parser.Node) (map[string]bool, bool) {
		set := map[string]bool{}
		found := false
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			found = true
			for _, l := range targetLabels {
				set[l] = true
			}
			if m, extra, ok := lookupMetric(vs.Name); ok {
				for _, l := range append(append([]string{}, m.labels...), extra...) {
					set[l] = true
				}
			}
			for _, l := range otherMetrics[vs.Name] {
				set[l] = true
			}
			return nil
		})
		return set, found
	}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				t.Errorf("%s: selector %s has no metric name", where, n)
				return nil
			}
			used = append(used, n.Name)
			m, extra, ok := lookupMetric(n.Name)
			_, other := otherMetrics[n.Name]
			switch {
			case ok:
			case other:
				return nil
			case strings.HasPrefix(n.Name, "tally_"):
				t.Errorf("%s: %s is not a Tally metric (known: %s)", where, n.Name, strings.Join(metricNames(), ", "))
				return nil
			default:
				t.Errorf("%s: %s is neither a tally_ metric nor one of %v", where, n.Name, keys(otherMetrics))
				return nil
			}
			allowed := map[string]bool{labels.MetricName: true}
			for _, l := range append(append(append([]string{}, m.labels...), extra...), targetLabels...) {
				allowed[l] = true
			}
			for _, mt := range n.LabelMatchers {
				if !allowed[mt.Name] {
					t.Errorf("%s: %s has no label %q (labels: %v)", where, n.Name, mt.Name, m.labels)
					continue
				}
				vals, closed := m.values[mt.Name]
				if !closed || strings.Contains(mt.Value, "$") {
					continue
				}
				var want []string
				switch mt.Type {
				case labels.MatchEqual, labels.MatchNotEqual:
					want = []string{mt.Value}
				case labels.MatchRegexp, labels.MatchNotRegexp:
					if regexp.MustCompile(`^[A-Za-z0-9_|-]+$`).MatchString(mt.Value) {
						want = strings.Split(mt.Value, "|")
					}
				}
				for _, v := range want {
					if !contains(vals, v) {
						t.Errorf("%s: %s{%s} never has the value %q (values: %v)", where, n.Name, mt.Name, v, vals)
					}
				}
			}
		case *parser.AggregateExpr:
			if len(n.Grouping) == 0 || n.Without {
				return nil
			}
			have, found := labelsOf(n.Expr)
			if !found {
				return nil
			}
			for _, g := range n.Grouping {
				if !have[g] {
					t.Errorf("%s: %s by (%s): no series under it has the label %q", where, n.Op, strings.Join(n.Grouping, ", "), g)
				}
			}
		}
		return nil
	})
	return used
}

func metricNames() []string { return keys(tallyMetrics) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// githubAnchors lists the anchors GitHub gives the headings of a Markdown document.
func githubAnchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r > 127:
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a = a + "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}
