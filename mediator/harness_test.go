package mediator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tally-hmis/tally/mediator"
)

// Helpers shared by the delivery, dead-letter and shutdown tests. They build on harness
// (e2e_test.go) but write the whole configuration, so that a test can shape its targets.

// testTarget is one target of a test configuration.
type testTarget struct {
	name, url   string
	concurrency int
	maxValues   int
	timeout     string
	// retry is the YAML flow map of retry settings.
	retry     string
	rateLimit string
	// adaptive sets adaptive_concurrency.
	adaptive bool
}

// testConfig is a test configuration: source cht (token chtToken, CODE ids) delivering to
// the targets.
type testConfig struct {
	dir       string
	batchSize int
	ackWait   string
	shutdown  string
	targets   []testTarget
	// source is YAML appended to source cht's entry (indented four spaces), e.g. its mapping.
	source string
	// extra is top-level YAML appended to the file (mappings:, ...). When set, the file is
	// written to dir/tally.yaml, so that mapping tables beside it are found.
	extra string
}

func (c testConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nats: {store_dir: %q, duplicate_window: 1h}\nadmin: {token: %s}\n", c.dir, adminToken)
	if c.shutdown != "" {
		fmt.Fprintf(&b, "http: {shutdown_timeout: %s}\n", c.shutdown)
	}
	batch := c.batchSize
	if batch == 0 {
		batch = 1000
	}
	fmt.Fprintf(&b, "sources:\n  - name: cht\n    auth: {tokens: [%s]}\n    id_schemes: {id_scheme: CODE}\n    allow_delete: true\n    batch_size: %d\n",
		chtToken, batch)
	b.WriteString(c.source)
	b.WriteString("targets:\n")
	for _, t := range c.targets {
		fmt.Fprintf(&b, "  - name: %s\n    url: %s\n    username: admin\n    password: district\n", t.name, t.url)
		fmt.Fprintf(&b, "    timeout: %s\n", or(t.timeout, "5s"))
		fmt.Fprintf(&b, "    concurrency: %d\n", max(t.concurrency, 1))
		if t.maxValues > 0 {
			fmt.Fprintf(&b, "    max_values_per_request: %d\n", t.maxValues)
		}
		fmt.Fprintf(&b, "    retry: %s\n", or(t.retry, "{initial_delay: 20ms, max_delay: 100ms, max_attempts: 1000}"))
		if t.rateLimit != "" {
			fmt.Fprintf(&b, "    rate_limit: %s\n", t.rateLimit)
		}
		if t.adaptive {
			b.WriteString("    adaptive_concurrency: true\n")
		}
	}
	fmt.Fprintf(&b, "delivery: {ack_wait: %s}\n", or(c.ackWait, "30s"))
	b.WriteString(c.extra)
	return b.String()
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// tally is a running service with its metrics registry.
type tally struct {
	*harness
	reg *prometheus.Registry
}

// startConfigured starts Tally with a configuration written by testConfig, after the edits.
func startConfigured(t testing.TB, c testConfig, o mediator.Options, edits ...func(string) string) *tally {
	t.Helper()
	yml := c.yaml()
	for _, e := range edits {
		yml = e(yml)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	file := "test.yaml"
	if c.extra != "" {
		file = filepath.Join(c.dir, "tally.yaml")
		if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startFile(t, file, yml, os.Getenv, o, nil)
	h.dir = c.dir
	return &tally{harness: h, reg: o.Registry}
}

// admin calls the admin API with the admin token; body, when not nil, is sent as JSON.
func (h *harness) admin(method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, h.base+path, r)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return h.do(req)
}

// ingest posts a data value set JSON body to /ingest/cht and returns the transaction id.
func (h *harness) ingest(body []byte) string {
	h.t.Helper()
	code, resp := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, body)
	if code != http.StatusAccepted {
		h.t.Fatalf("ingest: HTTP %d %v", code, resp)
	}
	return resp["transaction"].(string)
}

// deadLetters lists the dead-letter queue with a query ("target=hmis&reason=rejected").
func (h *harness) deadLetters(query string) []map[string]any {
	h.t.Helper()
	code, body := h.admin("GET", "/admin/v1/dlq?"+query, nil)
	if code != http.StatusOK {
		h.t.Fatalf("dlq list: HTTP %d %v", code, body)
	}
	var out []map[string]any
	for _, d := range body["deadLetters"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dv is a data value written with Kalima codes.
type dv struct {
	de, pe, ou, coc, aoc, value string
}

// dvs renders values as a DHIS2 data value set JSON body.
func dvsBody(values []dv) []byte {
	type jv struct {
		DataElement          string `json:"dataElement"`
		Period               string `json:"period"`
		OrgUnit              string `json:"orgUnit"`
		CategoryOptionCombo  string `json:"categoryOptionCombo,omitempty"`
		AttributeOptionCombo string `json:"attributeOptionCombo,omitempty"`
		Value                string `json:"value"`
	}
	out := struct {
		DataValues []jv `json:"dataValues"`
	}{DataValues: make([]jv, len(values))}
	for i, v := range values {
		out.DataValues[i] = jv{v.de, v.pe, v.ou, v.coc, v.aoc, v.value}
	}
	data, _ := json.Marshal(out)
	return data
}

// epiValues returns the EPI_MONTHLY values of one period at the four facilities: 48 values.
func epiValues(period string, base int) []dv {
	var out []dv
	for _, de := range []string{"EPI_BCG", "EPI_PENTA1", "EPI_MEASLES1"} {
		for i, ou := range []string{"KL_N_F1", "KL_N_F2", "KL_S_F1", "KL_S_F2"} {
			for j, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
				out = append(out, dv{de, period, ou, coc, "", fmt.Sprint(base + 10*i + j + 1)})
			}
		}
	}
	return out
}

// counter is an http.Handler middleware that counts requests and those in flight, and can
// refuse requests whose body matches a predicate (a poison batch).
type counter struct {
	next     http.Handler
	total    atomic.Int64
	inFlight atomic.Int64
	mu       sync.Mutex
	poison   func(body []byte) int // status to answer, 0 to pass
	started  chan struct{}         // receives (without blocking) when a request starts
}

func newCounter(next http.Handler) *counter {
	return &counter{next: next, started: make(chan struct{}, 1)}
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.total.Add(1)
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	select {
	case c.started <- struct{}{}:
	default:
	}
	c.mu.Lock()
	poison := c.poison
	c.mu.Unlock()
	if poison != nil && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if status := poison(body); status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
	}
	c.next.ServeHTTP(w, r)
}

func (c *counter) setPoison(fn func([]byte) int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.poison = fn
}

// targetSummary returns a transaction's summary for one target.
func targetSummary(t testing.TB, tx map[string]any, target string) map[string]any {
	t.Helper()
	for _, x := range tx["targets"].([]any) {
		s := x.(map[string]any)
		if s["target"] == target {
			return s
		}
	}
	t.Fatalf("transaction has no target %s: %v", target, tx)
	return nil
}

// metricValue returns the value of a gauge or counter whose only or first label is label.
func (h *tally) metricValue(t testing.TB, name, label string) float64 {
	t.Helper()
	for _, m := range h.series(t, name) {
		if len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() != label {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// metricSum adds up a counter's series whose label name has value.
func (h *tally) metricSum(t testing.TB, metric, name, value string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range h.series(t, metric) {
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == value {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// series are the series of the metric name in Tally's registry.
func (h *tally) series(t testing.TB, name string) []*dto.Metric {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}
