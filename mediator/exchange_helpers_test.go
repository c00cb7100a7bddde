package mediator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/exchange"
)

// kalimaNow is the fixed date of the exchange tests: relative periods resolve against it
// both in Tally and in the emulated tracker (LAST_3_MONTHS = 202404..202406).
var kalimaNow = time.Date(2024, 7, 15, 9, 30, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// trackerEmulator is the Kalima tracker instance: the sample with its analytics facts.
func trackerEmulator(t *testing.T, opts ...dhis2test.Option) *dhis2test.Server {
	t.Helper()
	srv := dhis2test.NewServer(append([]dhis2test.Option{dhis2test.WithT(t), dhis2test.WithClock(fixedClock(kalimaNow))}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// hmisEmulator is the national HMIS the exchanges deliver to.
func hmisEmulator(t *testing.T, opts ...dhis2test.Option) *dhis2test.Server {
	t.Helper()
	srv := dhis2test.NewServer(append([]dhis2test.Option{dhis2test.WithT(t), dhis2test.WithClock(fixedClock(kalimaNow))}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// exchangeYAML is a configuration with the target hmis and the given exchanges (and
// further top-level sections) appended.
func exchangeYAML(dir, hmisURL, rest string) string {
	return fmt.Sprintf(`nats: {store_dir: %q, duplicate_window: 1h}
admin: {token: %s}
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
    timeout: 5s
    retry: {initial_delay: 20ms, max_delay: 100ms, max_attempts: 3}
delivery: {ack_wait: 30s}
%s`, dir, adminToken, hmisURL, rest)
}

// startWith starts Tally on a configuration text; hook runs between New and Start.
func startWith(t *testing.T, yaml string, o mediator.Options, hook func(*mediator.Service)) *harness {
	t.Helper()
	return startWithEnv(t, yaml, os.Getenv, o, hook)
}

// startWithEnv is startWith with the environment ${VAR}s expand from.
func startWithEnv(t testing.TB, yaml string, getenv func(string) string, o mediator.Options, hook func(*mediator.Service)) *harness {
	t.Helper()
	return startFile(t, "test.yaml", yaml, getenv, o, hook)
}

// startFile starts Tally with a configuration parsed as if read from file, so that mapping
// tables are found beside it and the file watcher follows it (the file itself is written
// by the caller when the test needs the watcher).
func startFile(t testing.TB, file, yaml string, getenv func(string) string, o mediator.Options, hook func(*mediator.Service)) *harness {
	t.Helper()
	cfg, err := config.Parse(file, []byte(yaml), getenv)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	if _, probs := mediator.CheckConfig(cfg); len(probs) > 0 {
		t.Fatalf("%v\n%s", probs, yaml)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	o.Listener, o.Version = ln, "test"
	svc, err := mediator.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(svc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, svc: svc, base: "http://" + svc.Addr(), dir: t.TempDir()}
	t.Cleanup(func() { h.stop() })
	return h
}

// runExchange runs an exchange through the API and waits for its summary.
func (h *harness) runExchange(name, query string) *exchange.ExchangeRun {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/admin/v1/exchanges/"+name+"/run?wait=true&"+query, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("run %s: HTTP %d: %s", name, resp.StatusCode, body)
	}
	var run exchange.ExchangeRun
	if err := json.Unmarshal(body, &run); err != nil {
		h.t.Fatalf("run %s: %v: %s", name, err, body)
	}
	return &run
}

// getJSON reads an admin API path into out.
func (h *harness) getJSON(path string, out any) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			h.t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// value returns a live value of an emulator, "" when there is none.
func value(srv *dhis2test.Server, de, pe, ou, coc, aoc string) string {
	v, ok := srv.Lookup(de, pe, ou, coc, aoc)
	if !ok {
		return ""
	}
	return v.Value
}

// analyticsRequests returns the analytics data value set requests an emulator received.
func analyticsRequests(srv *dhis2test.Server) []dhis2test.Request {
	var out []dhis2test.Request
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "/analytics/dataValueSet") {
			out = append(out, r)
		}
	}
	return out
}

// webhookRecorder records the notifications a webhook receives.
type webhookRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []exchange.Notification
	auth   []string
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	w := &webhookRecorder{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n exchange.Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.events = append(w.events, n)
		w.auth = append(w.auth, r.Header.Get("Authorization"))
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookRecorder) received() []exchange.Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]exchange.Notification(nil), w.events...)
}

// immunisationExchange is the tracker-to-aggregate exchange of the sample for BCG: program
// indicators asked with outputIdScheme ATTRIBUTE:<AGG_DE_CODE>, so that each row names
// the HMIS data element by code with the indicator's export combo as a UID.
func immunisationExchange(trackerURL, extra string) string {
	return fmt.Sprintf(`exchanges:
  - name: epi
    source: {url: %s, username: admin, password: district, timeout: 5s, retry: {initial_delay: 10ms, max_delay: 40ms}}
    requests:
      - name: Immunisation
        dx: [PI_BCG_F_LT1, PI_BCG_M_LT1, PI_PENTA1_F_LT1, PI_PENTA1_M_LT1]
        pe: [LAST_3_MONTHS]
        ou: [KL, LEVEL-3]
        input_id_scheme: CODE
        output_id_scheme: ATTRIBUTE:%s
    id_schemes: {data_element: CODE, org_unit: UID, category_option_combo: UID}
    targets: [hmis]
    await: 10s
%s`, trackerURL, dhis2test.SampleAttributeAggDECode, extra)
}
