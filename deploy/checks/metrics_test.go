package checks

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-hmis/tally/mediator"
)

// recorder is a prometheus.Registerer that notes what is registered on it.
type recorder struct {
	found map[string]registered
}

type registered struct {
	kind   string
	labels []string
}

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

func (r *recorder) Register(c prometheus.Collector) error {
	kind := "?"
	switch c.(type) {
	case *prometheus.CounterVec, prometheus.Counter, prometheus.CounterFunc:
		kind = "counter"
	case *prometheus.GaugeVec, prometheus.Gauge, prometheus.GaugeFunc:
		kind = "gauge"
	case *prometheus.HistogramVec, prometheus.Histogram:
		kind = "histogram"
	}
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		r.found[m[1]] = registered{kind, labels}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return true }

// TestMetricsContract compares mediator.NewMetrics with the list the alerts and the dashboard
// are written against (tallyMetrics): every metric it registers is listed with its type and
// labels. That every listed metric exists is TestLiveSeries' part: it scrapes a running
// Tally, which also registers the exchanges', the mapping reloads' and the build's.
func TestMetricsContract(t *testing.T) {
	r := &recorder{found: map[string]registered{}}
	mediator.NewMetrics(r)
	if len(r.found) == 0 {
		t.Fatal("mediator.NewMetrics registered nothing")
	}
	for name, got := range r.found {
		want, ok := tallyMetrics[name]
		if !ok {
			t.Errorf("%s (%s %v) is not in deploy/checks' metric list: add it to tallyMetrics, and to the dashboard", name, got.kind, got.labels)
			continue
		}
		if got.kind != "?" && got.kind != want.kind { // "?": a custom collector, type unknown
			t.Errorf("%s is a %s: the dashboards and alerts expect a %s", name, got.kind, want.kind)
		}
		g, w := append([]string{}, got.labels...), append([]string{}, want.labels...)
		sort.Strings(g)
		sort.Strings(w)
		if strings.Join(g, ",") != strings.Join(w, ",") {
			t.Errorf("%s has labels %v: the dashboards and alerts expect %v", name, got.labels, want.labels)
		}
	}
}
