package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/examples"
	"github.com/tally-hmis/tally/mediator"
)

// scraped is one series Tally exposed: its metric family's name and type, and its labels.
type scraped struct {
	family string
	kind   string
	labels map[string]string
}

// liveSeries starts a real Tally (embedded JetStream, the DHIS2 emulator as its target, a
// push source and an exchange), sends one payload through to DHIS2, and scrapes /metrics
// over HTTP: the series an operator's Prometheus would see from a Tally that has just
// started and done one thing.
func liveSeries(t *testing.T) map[string][]scraped {
	t.Helper()
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	t.Cleanup(emu.Close)
	yml := fmt.Sprintf(`
nats: {store_dir: %q}
admin: {token: live-admin-token-0123456789}
sources:
  - name: cht
    auth: {tokens: [live-cht-token-0123456789]}
    id_schemes: {id_scheme: CODE}
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
    timeout: 5s
exchanges:
  - name: epi
    source: {url: %s, username: admin, password: district}
    requests:
      - name: bcg
        dx: [PI_BCG_F_LT1]
        pe: [LAST_MONTH]
        ou: [KL]
    targets: [hmis]
`, t.TempDir(), emu.URL, emu.URL)
	cfg, err := config.Parse("live.yaml", []byte(yml), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := mediator.New(cfg, mediator.Options{Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		_ = svc.Stop(sctx)
	})
	base := "http://" + svc.Addr()
	body, err := fs.ReadFile(examples.Files, "payloads/epi-2024-01.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/ingest/cht", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer live-cht-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest: HTTP %d", resp.StatusCode)
	}
	// Scrape until the delivery is counted: the histogram of import requests has a series.
	for {
		series := scrape(t, ctx, base)
		if len(series["tally_delivery_request_duration_seconds"]) > 0 {
			return series
		}
		select {
		case <-ctx.Done():
			t.Fatal("the delivery to the emulator was never counted")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scrape reads /metrics in the text format, as Prometheus does, and indexes the series by
// the name a selector uses (a histogram's _bucket, _sum and _count included).
func scrape(t *testing.T, ctx context.Context, base string) map[string][]scraped {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string][]scraped{}
	for name, f := range families {
		kind := strings.ToLower(f.GetType().String())
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			s := scraped{family: name, kind: kind, labels: ls}
			if kind != "histogram" {
				out[name] = append(out[name], s)
				continue
			}
			out[name] = append(out[name], s)
			out[name+"_sum"] = append(out[name+"_sum"], s)
			out[name+"_count"] = append(out[name+"_count"], s)
			for _, b := range m.GetHistogram().GetBucket() {
				bl := map[string]string{"le": fmt.Sprint(b.GetUpperBound())}
				for k, v := range ls {
					bl[k] = v
				}
				out[name+"_bucket"] = append(out[name+"_bucket"], scraped{family: name, kind: kind, labels: bl})
			}
		}
	}
	return out
}

// matches says whether a series satisfies a selector's matchers. Matchers on labels
// Prometheus adds (job, instance) and on Grafana variables ($target) say nothing about what
// Tally exposes and are left out.
func matches(s scraped, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Name == labels.MetricName || slices.Contains(targetLabels, m.Name) || strings.Contains(m.Value, "$") {
			continue
		}
		if !m.Matches(s.labels[m.Name]) {
			return false
		}
	}
	return true
}

// checkLive reports every selector of expr that selects no series of the running Tally, and
// every by (...) label that the series under it do not have.
func checkLive(t *testing.T, where, expr string, live map[string][]scraped) {
	t.Helper()
	node, err := promqlParser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	selected := func(n parser.Node) []scraped {
		var out []scraped
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				for _, s := range live[vs.Name] {
					if matches(s, vs.LabelMatchers) {
						out = append(out, s)
					}
				}
			}
			return nil
		})
		return out
	}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if _, other := otherMetrics[n.Name]; other {
				return nil
			}
			if len(selected(n)) == 0 {
				t.Errorf("%s: %s selects no series of a running Tally (it exposes %s)", where, n, describe(live[n.Name]))
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			for _, g := range n.Grouping {
				if slices.Contains(targetLabels, g) {
					continue
				}
				for _, s := range selected(n.Expr) {
					if _, ok := s.labels[g]; !ok && s.family != "up" {
						t.Errorf("%s: by (%s): %s has no label %q", where, strings.Join(n.Grouping, ", "), s.family, g)
						break
					}
				}
			}
		}
		return nil
	})
}

func describe(ss []scraped) string {
	if len(ss) == 0 {
		return "no series of that name"
	}
	var out []string
	for _, s := range ss[:min(len(ss), 4)] {
		out = append(out, fmt.Sprint(s.labels))
	}
	return strings.Join(out, " ")
}

// TestLiveSeries scrapes a running Tally and holds deploy/ to what it exposes: every
// selector of the alert rules and the dashboard selects real series (a counter's known
// label values exist before the first event), every grouping label exists on them, the
// promtool tests' input series look like real ones, and the metric list (tallyMetrics) is
// exactly what Tally registers, names, types and labels.
func TestLiveSeries(t *testing.T) {
	live := liveSeries(t)

	for where, expr := range alertExprs(t) {
		checkLive(t, where, expr, live)
	}
	for where, expr := range dashboardExprs(t) {
		checkLive(t, where, expr, live)
	}
	checkPromtoolSeries(t, live)

	families := map[string]scraped{}
	for _, ss := range live {
		for _, s := range ss {
			if strings.HasPrefix(s.family, "tally_") {
				families[s.family] = s
			}
		}
	}
	for name, s := range families {
		want, ok := tallyMetrics[name]
		if !ok {
			t.Errorf("Tally exposes %s (%s), which deploy/checks' tallyMetrics does not list", name, s.kind)
			continue
		}
		if want.kind != s.kind {
			t.Errorf("%s is a %s: tallyMetrics says %s", name, s.kind, want.kind)
		}
		var got []string
		for l := range s.labels {
			if l != "le" {
				got = append(got, l)
			}
		}
		sort.Strings(got)
		w := append([]string{}, want.labels...)
		sort.Strings(w)
		if strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("%s has labels %v: tallyMetrics says %v", name, got, w)
		}
		for l, vals := range want.values {
			for _, ss := range live[name] {
				if v := ss.labels[l]; !slices.Contains(vals, v) {
					t.Errorf("%s{%s=%q}: not among tallyMetrics' values %v", name, l, v, vals)
				}
			}
		}
	}
	for _, name := range metricNames() {
		if _, ok := families[name]; !ok {
			t.Errorf("tallyMetrics lists %s, which a running Tally does not expose", name)
		}
	}
}

// alertExprs are the alert rules' expressions, by alert.
func alertExprs(t *testing.T) map[string]string {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/alerts.yml"), &rules); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert+r.Record] = r.Expr
		}
	}
	return out
}

// dashboardExprs are the dashboard's queries with Grafana's variables given values.
func dashboardExprs(t *testing.T) map[string]string {
	var d dashboard
	if err := json.Unmarshal(readRepoFile(t, "deploy/grafana/dashboards/tally.json"), &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, q := range p.Targets {
				expr := q.Expr
				for k, v := range grafanaVars {
					expr = strings.ReplaceAll(expr, k, v)
				}
				out[fmt.Sprintf("panel %d %q query %s", p.ID, p.Title, q.RefID)] = expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// checkPromtoolSeries holds the promtool unit tests' made-up input series to the real ones:
// each tally_ series has exactly the labels the metric has, and a label whose values Tally
// fixes (a result, a reason, an outcome) takes one Tally really exposes — so that a test
// cannot pass on a label the metric does not have.
func checkPromtoolSeries(t *testing.T, live map[string][]scraped) {
	var tests struct {
		Tests []struct {
			Name        string `yaml:"name"`
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/alerts_test.yml"), &tests); err != nil {
		t.Fatal(err)
	}
	// Labels whose values come from the configuration, not from Tally's code.
	named := regexp.MustCompile(`^(source|target|exchange|consumer|route|method|code|le)$`)
	for _, tc := range tests.Tests {
		for _, in := range tc.InputSeries {
			node, err := promqlParser.ParseExpr(in.Series)
			sel, ok := node.(*parser.VectorSelector)
			if err != nil || !ok {
				t.Errorf("alerts_test.yml %q: %s: not a series (%v)", tc.Name, in.Series, err)
				continue
			}
			name := ""
			have := map[string]string{}
			for _, m := range sel.LabelMatchers {
				if m.Name == labels.MetricName {
					name = m.Value
				} else if !slices.Contains(targetLabels, m.Name) {
					have[m.Name] = m.Value
				}
			}
			real := live[name]
			if !strings.HasPrefix(name, "tally_") {
				continue
			}
			if len(real) == 0 {
				t.Errorf("alerts_test.yml %q: %s: Tally exposes no %s", tc.Name, in.Series, name)
				continue
			}
			for l, v := range have {
				if _, ok := real[0].labels[l]; !ok {
					t.Errorf("alerts_test.yml %q: %s: %s has no label %q (it has %v)", tc.Name, in.Series, name, l, real[0].labels)
					continue
				}
				if named.MatchString(l) {
					continue
				}
				if !slices.ContainsFunc(real, func(s scraped) bool { return s.labels[l] == v }) {
					t.Errorf("alerts_test.yml %q: %s: Tally never sets %s{%s=%q}", tc.Name, in.Series, name, l, v)
				}
			}
			for l := range real[0].labels {
				if _, ok := have[l]; !ok && l != "le" {
					t.Errorf("alerts_test.yml %q: %s: the real series also has the label %q", tc.Name, in.Series, l)
				}
			}
		}
	}
}
