package mediator_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/examples"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

const (
	adminToken = "admin-token-0123456789"
	chtToken   = "cht-token-0123456789"
)

// gate puts a switch in front of the emulator: while closed it answers 503 as a DHIS2 behind
// a proxy does during maintenance, so a test can hold deliveries back deterministically.
type gate struct {
	open atomic.Bool
	next http.Handler
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.open.Load() {
		http.Error(w, "<html><title>503 Service Unavailable</title></html>", http.StatusServiceUnavailable)
		return
	}
	g.next.ServeHTTP(w, r)
}

type harness struct {
	t    testing.TB
	svc  *mediator.Service
	base string
	dir  string
}

func configYAML(targetURL, storeDir, extraSources string) string {
	return fmt.Sprintf(`
nats: {store_dir: %q, duplicate_window: 1h}
admin: {token: %s}
sources:
  - name: cht
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
    allow_delete: true
  - name: exchange
    auth: {users: [{username: exchange, password: exchange-secret}]}
    id_schemes: {id_scheme: CODE}
%stargets:
  - name: hmis
    url: %s
    username: admin
    password: district
    timeout: 5s
    retry: {initial_delay: 50ms, max_delay: 200ms, max_attempts: 1000}
delivery: {ack_wait: 30s}
`, storeDir, adminToken, chtToken, extraSources, targetURL)
}

func startTally(t testing.TB, targetURL, storeDir string) *harness {
	t.Helper()
	return startTallyWith(t, targetURL, storeDir, "")
}

// startTallyWith starts Tally with extra top-level YAML appended to the test configuration.
func startTallyWith(t testing.TB, targetURL, storeDir, extra string) *harness {
	t.Helper()
	return startTallyCfg(t, targetURL, storeDir, "", extra)
}

// startTallyCfg starts Tally with extra sources (list items) and extra top-level YAML.
func startTallyCfg(t testing.TB, targetURL, storeDir, extraSources, extra string) *harness {
	t.Helper()
	return startYAML(t, configYAML(targetURL, storeDir, extraSources)+extra, storeDir, testing.Verbose())
}

// startYAML starts Tally with a whole configuration; its log goes to stderr when logs is set.
func startYAML(t testing.TB, yml, storeDir string, logs bool) *harness {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yml), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if logs {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := mediator.New(cfg, mediator.Options{Listener: ln, Logger: log, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, svc: svc, base: "http://" + svc.Addr(), dir: storeDir}
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *harness) stop() {
	if h.svc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.svc.Stop(ctx); err != nil {
		h.t.Errorf("stop: %v", err)
	}
	h.svc = nil
}

func (h *harness) post(path, contentType, auth string, body []byte) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.base+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return h.do(req)
}

// basic is the Authorization header of Basic credentials.
func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func (h *harness) do(req *http.Request) (int, map[string]any) {
	h.t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		h.t.Fatalf("%s %s: HTTP %d, body not JSON: %s", req.Method, req.URL.Path, resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

func (h *harness) tx(id string) map[string]any {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.base+"/admin/v1/transactions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	code, body := h.do(req)
	if code != 200 {
		h.t.Fatalf("transaction %s: HTTP %d %v", id, code, body)
	}
	return body
}

// waitStatus polls the transaction until it reaches want or the deadline passes.
func (h *harness) waitStatus(id, want string) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tx := h.tx(id)
		if tx["status"] == want {
			return tx
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("transaction %s stuck at %v, want %s: %v", id, tx["status"], want, tx)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(examples.Files, "payloads/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ingestedMessages(t *testing.T, h *harness) uint64 {
	t.Helper()
	// Tally is stopped here; open the same store to count what ingest published.
	ctx := context.Background()
	c, err := stream.Open(ctx, stream.Config{StoreDir: h.dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	s, err := c.JS.Stream(ctx, stream.IngestStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Sequences are never reused: the last one counts every message ever published, also
	// those the mapper has consumed since.
	return info.State.LastSeq
}

func TestEndToEndDeliversWithCodes(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())

	code, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, payload(t, "epi-2024-01.json"))
	if code != http.StatusAccepted || body["status"] != "accepted" || body["values"] != float64(32) {
		t.Fatalf("ingest: HTTP %d %v", code, body)
	}
	tx := h.waitStatus(body["transaction"].(string), txlog.TxDelivered)

	if n := emu.Store().Len(); n != 32 {
		t.Errorf("emulator holds %d values, want 32", n)
	}
	v, ok := emu.Lookup("EPI_BCG", "202401", "KL_N_F2", "F_1TO4", "")
	if !ok || v.Value != "8" { // 5 + facility 1·2 + combo 1
		t.Errorf("EPI_BCG/KL_N_F2/F_1TO4 = %+v, %v; want 8", v, ok)
	}
	targets := tx["targets"].([]any)
	hmis := targets[0].(map[string]any)
	if ic := hmis["importCount"].(map[string]any); ic["imported"] != float64(32) {
		t.Errorf("transaction import count = %v", ic)
	}

	// The CSV sample through the DHIS2-compatible endpoint, authenticated as DHIS2 clients do;
	// its ids are codes, which the request must say, as it must to DHIS2.
	req, _ := http.NewRequest("POST", h.base+"/api/dataValueSets?idScheme=CODE", bytes.NewReader(payload(t, "mal-2024-01.csv")))
	req.Header.Set("Content-Type", "application/csv")
	req.SetBasicAuth("exchange", "exchange-secret")
	code, wm := h.do(req)
	resp, _ := wm["response"].(map[string]any)
	if code != 200 || wm["status"] != "OK" || resp["responseType"] != "ImportSummary" || resp["status"] != "SUCCESS" {
		t.Fatalf("dataValueSets: HTTP %d %v", code, wm)
	}
	if ic := resp["importCount"].(map[string]any); ic["imported"] != float64(24) {
		t.Errorf("importCount = %v, want 24 imported", ic)
	}
	h.waitStatus(resp["reference"].(string), txlog.TxDelivered)
	if v, ok := emu.Lookup("MAL_CONFIRMED", "202401", "KL_S_F2", "M_1TO4", "GOV"); !ok || v.Value != "8" {
		t.Errorf("MAL_CONFIRMED/KL_S_F2/M_1TO4/GOV = %+v, %v; want 8", v, ok)
	}
}

func TestRetriedPostIsOneTransaction(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())
	body := payload(t, "chw-2024-01.json")
	_, first := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, body)
	code, second := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, body)
	if code != http.StatusAccepted || second["status"] != "duplicate" || second["transaction"] != first["transaction"] {
		t.Fatalf("second post: HTTP %d %v (first %v)", code, second, first)
	}
	h.waitStatus(first["transaction"].(string), txlog.TxDelivered)
	if got := emu.ImportRequests(); got != 1 {
		t.Errorf("emulator saw %d import requests, want 1", got)
	}
}

func TestRestartBeforeDeliveryDeliversExactlyOnce(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	g := &gate{next: emu.Handler()}
	front := httptest.NewServer(g)
	defer front.Close()
	dir := t.TempDir()

	h := startTally(t, front.URL+emu.BasePath(), dir)
	_, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, payload(t, "epi-2024-01.json"))
	id := body["transaction"].(string)
	// The target is down: the batch is retried, not lost.
	deadline := time.Now().Add(10 * time.Second)
	for h.tx(id)["targets"].([]any)[0].(map[string]any)["attempts"].(float64) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retries seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.stop()
	if n := emu.Store().Len(); n != 0 {
		t.Fatalf("emulator holds %d values while the gate was closed", n)
	}

	g.open.Store(true)
	h = startTally(t, front.URL+emu.BasePath(), dir)
	h.waitStatus(id, txlog.TxDelivered)
	if n := emu.Store().Len(); n != 32 {
		t.Fatalf("emulator holds %d values, want 32", n)
	}
	for _, v := range emu.Store().Values() {
		if hist := emu.Store().History(v.Key); len(hist) != 1 {
			t.Errorf("%v written %d times, want once", v.Key, len(hist))
		}
	}
}

// TestBadInputIsRefusedWithItsPlaceAndNothingPublished: on the native endpoint a payload is
// refused whole (validation: atomic, its default), with every problem's place; an empty one
// is accepted and stores nothing.
func TestBadInputIsRefusedWithItsPlaceAndNothingPublished(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())
	bearer := "Bearer " + chtToken
	cases := []struct {
		name, ctype, auth, body string
		status                  int
		want                    []string // fragments of the message or the first error
	}{
		{"malformed JSON", "application/json", bearer, "{\"dataValues\": [\n  {\"dataElement\": \"EPI_BCG\",, }]}", 400,
			[]string{"line 2"}},
		{"missing org unit", "application/json", bearer,
			`{"dataValues":[{"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","value":"1"},{"dataElement":"EPI_BCG","period":"202401","value":"2"}]}`,
			400, []string{"data value 1", "orgUnit", "missing"}},
		{"bad period", "application/json", bearer,
			`{"orgUnit":"KL_N_F1","dataValues":[{"dataElement":"EPI_BCG","period":"2024-13","value":"1"}]}`,
			400, []string{"period", "2024-13"}},
		{"no value", "application/json", bearer,
			`{"orgUnit":"KL_N_F1","period":"202401","dataValues":[{"dataElement":"EPI_BCG"}]}`,
			400, []string{"value", "missing"}},
		{"wrong content type", "image/png", bearer, "\x89PNG\r\n", 415, []string{"application/json"}},
		{"unauthenticated", "application/json", "", `{"dataValues":[]}`, 401, []string{"credentials"}},
		{"wrong token", "application/json", "Bearer nope-nope-nope-nope", `{"dataValues":[]}`, 401, []string{"credentials"}},
		// Empty payloads are valid (as in DHIS2) and store nothing.
		{"empty", "application/json", bearer, `{"dataValues":[]}`, 200, []string{`"status":"empty"`}},
		{"empty object", "application/json", bearer, `{}`, 200, []string{`"status":"empty"`}},
		{"empty ADX", "application/adx+xml", bearer, `<adx xmlns="urn:ihe:qrph:adx:2015"></adx>`, 200, []string{`"values":0`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := h.post("/ingest/cht", c.ctype, c.auth, []byte(c.body))
			if code != c.status {
				t.Fatalf("HTTP %d, want %d: %v", code, c.status, body)
			}
			text, _ := json.Marshal(body)
			for _, w := range c.want {
				if !strings.Contains(string(text), w) {
					t.Errorf("answer lacks %q: %s", w, text)
				}
			}
		})
	}
	code, _ := h.post("/ingest/nowhere", "application/json", bearer, []byte(`{}`))
	if code != http.StatusUnauthorized { // as for wrong credentials: source names cannot be probed
		t.Errorf("unknown source: HTTP %d", code)
	}
	h.stop()
	if n := ingestedMessages(t, h); n != 0 {
		t.Errorf("%d messages were published for refused payloads", n)
	}
}
