package checks

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"go.yaml.in/yaml/v3"
)

const runbookBase = "https://github.com/tally-hmis/tally/blob/main/docs/operations.md#"

// TestAlertRules checks deploy/prometheus/alerts.yml as Prometheus loads it (rulefmt, like
// promtool check rules) and against Tally's conventions: every alert waits (for:), has a
// severity, a summary, a description and a runbook_url pointing at a section of
// docs/operations.md, and uses only known tally_ metrics, labels and label values.
func TestAlertRules(t *testing.T) {
	path := repoPath(t, "deploy/prometheus/alerts.yml")
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promqlParser, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("alerts.yml: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	anchors := githubAnchors(string(readRepoFile(t, "docs/operations.md")))
	names := map[string]bool{}
	used := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				if r.Record != "" {
					for _, m := range checkPromQL(t, "record "+r.Record, r.Expr) {
						used[m] = true
					}
				}
				continue
			}
			where := "alert " + r.Alert
			if names[r.Alert] {
				t.Errorf("%s is defined twice", where)
			}
			names[r.Alert] = true
			if !regexp.MustCompile(`^Tally[A-Z][A-Za-z]+$`).MatchString(r.Alert) {
				t.Errorf("%s: alert names are TallyCamelCase", where)
			}
			if r.For == 0 {
				t.Errorf("%s: no for: (an alert should survive one bad scrape)", where)
			}
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity label %q: want critical, warning or info", where, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			if rb := r.Annotations["runbook_url"]; rb != "" {
				anchor, ok := strings.CutPrefix(rb, runbookBase)
				switch {
				case !ok:
					t.Errorf("%s: runbook_url %q does not point into %s", where, rb, runbookBase)
				case anchor != strings.ToLower(r.Alert):
					t.Errorf("%s: runbook_url anchor %q: want #%s (a section named after the alert)", where, anchor, strings.ToLower(r.Alert))
				case !anchors[anchor]:
					t.Errorf("%s: docs/operations.md has no heading for #%s", where, anchor)
				}
			}
			for _, m := range checkPromQL(t, where, r.Expr) {
				used[m] = true
			}
		}
	}
	for _, want := range []string{"TallyDeadLettersGrowing", "TallyTargetUnreachable", "TallyTargetTransientFailures",
		"TallyDeliveryLatencyHigh", "TallyConsumerFallingBehind", "TallyExchangeFailing"} {
		if !names[want] {
			t.Errorf("alert %s is missing", want)
		}
	}

	// Every alert has a promtool unit test in which it fires.
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/alerts_test.yml"), &tests); err != nil {
		t.Fatalf("alerts_test.yml: %v", err)
	}
	if len(tests.RuleFiles) != 1 || tests.RuleFiles[0] != "alerts.yml" {
		t.Errorf("alerts_test.yml: rule_files %v: want [alerts.yml]", tests.RuleFiles)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if !names[a.Alertname] {
				t.Errorf("alerts_test.yml tests %s, which alerts.yml does not define", a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for n := range names {
		if !fires[n] {
			t.Errorf("alerts_test.yml has no test in which %s fires", n)
		}
	}

	// The chart ships the same rules as a PrometheusRule.
	if a, b := readRepoFile(t, "deploy/prometheus/alerts.yml"), readRepoFile(t, "charts/tally/files/alerts.yml"); string(a) != string(b) {
		t.Errorf("charts/tally/files/alerts.yml differs from deploy/prometheus/alerts.yml: cp deploy/prometheus/alerts.yml charts/tally/files/alerts.yml")
	}
}

// TestDocs checks that docs/operations.md explains the commands the runbook relies on, and
// that the links between the deployment docs land on existing files and headings.
func TestDocs(t *testing.T) {
	md := string(readRepoFile(t, "docs/operations.md"))
	for _, cmd := range []string{"tally dlq list", "tally dlq show", "tally dlq replay", "tally dlq discard"} {
		if !strings.Contains(md, cmd) {
			t.Errorf("docs/operations.md does not mention %q", cmd)
		}
	}
	link := regexp.MustCompile(`\]\(([^)\s]*)\)`)
	for _, doc := range []string{"docs/deployment.md", "docs/operations.md"} {
		for _, m := range link.FindAllStringSubmatch(string(readRepoFile(t, doc)), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			rel := doc
			if file != "" {
				rel = filepath.ToSlash(filepath.Join(filepath.Dir(doc), file))
				if _, err := os.Stat(repoPath(t, rel)); err != nil {
					t.Errorf("%s links to %s, which does not exist", doc, target)
					continue
				}
			}
			if anchor != "" && !githubAnchors(string(readRepoFile(t, rel)))[anchor] {
				t.Errorf("%s links to %s: %s has no such heading", doc, target, rel)
			}
		}
	}
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasourceRef           `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaVars are Grafana's built-in variables, replaced by a value that PromQL accepts.
var grafanaVars = map[string]string{"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m"}

// TestDashboard checks deploy/grafana/dashboards/tally.json: valid JSON in Grafana's
// dashboard shape, every panel on the ${datasource} variable with at least one query, every
// query valid PromQL over known tally_ metrics, every variable defined, no overlapping panels,
// and every Tally metric shown somewhere.
func TestDashboard(t *testing.T) {
	raw := readRepoFile(t, "deploy/grafana/dashboards/tally.json")
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("tally.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 {
		t.Errorf("tally.json: uid %q, title %q, schemaVersion %d: want all set (schemaVersion >= 30)", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Name == "datasource" && (v.Type != "datasource" || v.Query != "prometheus") {
			t.Errorf("variable datasource: type %q query %v: want a prometheus datasource variable", v.Type, v.Query)
		}
		if q, ok := v.Query.(map[string]any); ok && v.Type == "query" {
			expr, _ := q["query"].(string)
			m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(expr)
			if m == nil {
				t.Errorf("variable %s: query %q: want label_values(metric, label)", v.Name, expr)
				continue
			}
			if mt, _, ok := lookupMetric(m[1]); !ok || !contains(append(mt.labels, targetLabels...), m[2]) {
				t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
			}
		}
	}
	if !vars["datasource"] {
		t.Fatal("tally.json: no datasource variable")
	}
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var rects []rect
	varRef := regexp.MustCompile(`\$\{?(\w+)\}?`)
	for _, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("%s: panel ids must be unique and non-zero", where)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
		}
		for _, r := range rects {
			if g.X < r.x+r.w && r.x < g.X+g.W && g.Y < r.y+r.h && r.y < g.Y+g.H {
				t.Errorf("%s overlaps %q", where, r.title)
			}
		}
		rects = append(rects, rect{p.Title, g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("%s: no title", where)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("%s: datasource %+v: want {type: prometheus, uid: ${datasource}}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.RefID == "" || refs[q.RefID] {
				t.Errorf("%s: refId %q empty or repeated", where, q.RefID)
			}
			refs[q.RefID] = true
			if q.Datasource != nil && q.Datasource.UID != "${datasource}" {
				t.Errorf("%s: query %s datasource %+v: want ${datasource}", where, q.RefID, q.Datasource)
			}
			expr := q.Expr
			for k, v := range grafanaVars {
				expr = strings.ReplaceAll(expr, k, v)
			}
			for _, m := range varRef.FindAllStringSubmatch(expr, -1) {
				if !vars[m[1]] {
					t.Errorf("%s: query %s uses $%s, which is not a dashboard variable", where, q.RefID, m[1])
				}
			}
			for _, m := range checkPromQL(t, where+" query "+q.RefID, expr) {
				used[m] = true
			}
		}
	}
	for _, name := range metricNames() {
		if !used[name] && !used[name+"_bucket"] {
			t.Errorf("the dashboard shows no panel for %s", name)
		}
	}
}

// TestGrafanaProvisioning checks that the provisioned data source and dashboard provider
// match where docker-compose.yml mounts them.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			IsDefault            bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/grafana/provisioning/datasources/prometheus.yml"), &ds); err != nil {
		t.Fatal(err)
	}
	p := loadCompose(t)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("datasources/prometheus.yml: want apiVersion 1 and one prometheus data source, got %+v", ds)
	}
	u, err := url.Parse(ds.Datasources[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Services[u.Hostname()]; !ok {
		t.Errorf("the Prometheus data source points at %s, which is not a compose service", u.Host)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string
			Options struct{ Path string }
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/grafana/provisioning/dashboards/tally.yml"), &dp); err != nil {
		t.Fatal(err)
	}
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboards/tally.yml: want apiVersion 1 and one file provider, got %+v", dp)
	}
	g, ok := p.Services["grafana"]
	if !ok {
		t.Fatal("no grafana service in docker-compose.yml")
	}
	mounted := map[string]string{}
	for _, v := range g.Volumes {
		if v.Type == "bind" {
			rel, _ := filepath.Rel(root(t), v.Source)
			mounted[v.Target] = filepath.ToSlash(rel)
		}
	}
	if got := mounted[dp.Providers[0].Options.Path]; got != "deploy/grafana/dashboards" {
		t.Errorf("the dashboard provider reads %s, where compose mounts %q: want deploy/grafana/dashboards", dp.Providers[0].Options.Path, got)
	}
	if got := mounted["/etc/grafana/provisioning"]; got != "deploy/grafana/provisioning" {
		t.Errorf("compose mounts %q at /etc/grafana/provisioning: want deploy/grafana/provisioning", got)
	}
}

// TestPrometheusConfig checks deploy/prometheus/prometheus.yml: its rule files exist next to
// it, and it scrapes every Tally replica of docker-compose.yml.
func TestPrometheusConfig(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/prometheus.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, rf := range cfg.RuleFiles {
		if _, err := os.Stat(filepath.Join(repoPath(t, "deploy/prometheus"), rf)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
	if !contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml does not load alerts.yml")
	}
	scraped := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "tally" {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job tally scrapes %s: want /metrics", sc.MetricsPath)
		}
		for _, s := range sc.StaticConfigs {
			for _, tg := range s.Targets {
				scraped[tg] = true
			}
		}
	}
	p := loadCompose(t)
	n := 0
	for _, name := range tallyServices(p) {
		n++
		if !scraped[name+":8080"] {
			t.Errorf("Prometheus does not scrape the Tally service %s (%s:8080)", name, name)
		}
	}
	if n == 0 {
		t.Error("docker-compose.yml has no Tally service")
	}
	for tg := range scraped {
		host, _, _ := strings.Cut(tg, ":")
		if _, ok := p.Services[host]; !ok {
			t.Errorf("Prometheus scrapes %s, which is not a compose service", tg)
		}
	}
}
