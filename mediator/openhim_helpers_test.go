package mediator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

// Tally behind a fake OpenHIM core (mediator/openhim/openhimtest, built from
// jembi/openhim-core-js): a client application posts to the core's router, the core routes
// the request to Tally's channel, stores Tally's envelope in its transaction after its
// configured delay, and the test reads the core's record back.

const (
	himURN            = "urn:mediator:tally"
	himClient         = "cht-app"
	himClientPassword = "cht-app-password"
)

// himConfig is the configuration of Tally behind the core: sources him (asynchronous) and
// himsync (waits for delivery), each with a user the core's route authenticates as; one
// target; the openhim: section is openhimYAML's.
type himConfig struct {
	dir, coreURL, targetURL string
	// concurrency is the target's; batchSize the sources'.
	concurrency, batchSize int
	// wait is himsync's wait_for_delivery (default 20s); ackWait is delivery.ack_wait
	// (default 30s).
	wait, ackWait string
}

func (c himConfig) yaml() string {
	return fmt.Sprintf(`
nats: {store_dir: %q, duplicate_window: 1h}
admin: {token: %s}
log: {level: warn}
sources:
  - name: him
    auth: {users: [{username: him, password: him-password}]}
    id_schemes: {id_scheme: CODE}
    batch_size: %d
  - name: himsync
    auth: {users: [{username: himsync, password: himsync-password}]}
    id_schemes: {id_scheme: CODE}
    batch_size: %d
    wait_for_delivery: %s
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
    timeout: 5s
    concurrency: %d
    retry: {initial_delay: 20ms, max_delay: 100ms, max_attempts: 1000}
delivery: {ack_wait: %s}
`, c.dir, adminToken, or0(c.batchSize, 1000), or0(c.batchSize, 1000), or(c.wait, "20s"), c.targetURL, max(c.concurrency, 1),
		or(c.ackWait, "30s")) +
		openhimYAML(c.coreURL)
}

func or0(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// behindHIM is a running Tally whose channels are installed in a fake core.
type behindHIM struct {
	t    *testing.T
	core *openhimtest.Server
	cfg  himConfig
	h    *tally
	// level is the logger's level variable, which the console may change.
	level *slog.LevelVar
	// clock is Tally's clock: the wall clock moved by a test.
	clock *movedClock
}

// movedClock is the wall clock plus an offset a test moves forward.
type movedClock struct{ offset atomic.Int64 }

func (c *movedClock) now() time.Time       { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *movedClock) move(d time.Duration) { c.offset.Add(int64(d)) }

// startBehindHIM starts Tally with cfg (dir and coreURL filled in here), lets it register,
// installs its channels and points their routes at it.
func startBehindHIM(t *testing.T, core *openhimtest.Server, cfg himConfig) *behindHIM {
	t.Helper()
	if cfg.dir == "" {
		cfg.dir = t.TempDir()
	}
	cfg.coreURL = core.URL
	b := &behindHIM{t: t, core: core, cfg: cfg, clock: &movedClock{}}
	b.start()
	waitUntil(t, 10*time.Second, "Tally to register with the core", func() bool { _, ok := core.Mediator(himURN); return ok })
	if len(core.Channels()) == 0 {
		if err := core.InstallChannels(himURN); err != nil {
			t.Fatal(err)
		}
	}
	b.routeToTally()
	return b
}

// start starts (or, after stop, restarts) Tally on the same store.
func (b *behindHIM) start() {
	b.t.Helper()
	reg := prometheus.NewRegistry()
	b.level = new(slog.LevelVar)
	b.level.Set(slog.LevelWarn)
	h := startFile(b.t, "test.yaml", b.cfg.yaml(), os.Getenv,
		mediator.Options{Registry: reg, LogLevel: b.level, Now: b.clock.now}, nil)
	b.h = &tally{harness: h, reg: reg}
}

// restart stops Tally, runs between (with Tally down), and starts it again on the same
// store, with the channels routed to its new port.
func (b *behindHIM) restart(between func()) {
	b.t.Helper()
	b.h.stop()
	between()
	b.start()
	b.routeToTally()
}

// routeToTally points every Tally channel's route at Tally's port, with the Basic
// credentials of the source user (the core drops the client's own Authorization).
func (b *behindHIM) routeToTally() {
	b.t.Helper()
	_, portText, _ := net.SplitHostPort(b.h.svc.Addr())
	port, _ := strconv.Atoi(portText)
	users := map[string][2]string{
		"Tally - him": {"him", "him-password"}, "Tally - himsync": {"himsync", "himsync-password"},
		"Tally - dataValueSets": {"himsync", "himsync-password"},
	}
	for name, user := range users {
		if err := b.core.UpdateChannel(name, func(c *openhimtest.Channel) {
			c.Routes[0].Host, c.Routes[0].Port = "127.0.0.1", port
			c.Routes[0].Username, c.Routes[0].Password = user[0], user[1]
		}); err != nil {
			b.t.Fatal(err)
		}
	}
}

// routed is the client's answer from the core's router.
type routed struct {
	status int
	txID   string // the core's transaction, X-OpenHIM-TransactionID
	body   map[string]any
}

// post sends a client request through the core's router.
func (b *behindHIM) post(path string, body []byte, header http.Header) routed {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.core.RouterURL+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	req.SetBasicAuth(himClient, himClientPassword)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := routed{status: resp.StatusCode, txID: resp.Header.Get("X-OpenHIM-TransactionID")}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		b.t.Fatalf("POST %s through the core: HTTP %d, body not JSON: %s", path, resp.StatusCode, raw)
	}
	if out.txID == "" {
		b.t.Fatalf("POST %s through the core: no transaction id; HTTP %d %s", path, resp.StatusCode, raw)
	}
	return out
}

// outcomes is how many outcomes this Tally has confirmed in the core.
func (b *behindHIM) outcomes(result string) int {
	return int(b.h.metricValue(b.t, "tally_openhim_outcomes_total", result))
}

// waitConfirmed waits until this Tally has confirmed n outcomes, then until the core has
// stored its own answer of transaction id, and returns the core's record of it: the outbox
// acknowledges an outcome only once the record shows it after the core's write.
func (b *behindHIM) waitConfirmed(n int, id string) map[string]any {
	b.t.Helper()
	waitUntil(b.t, 10*time.Second, fmt.Sprintf("%d confirmed outcomes", n), func() bool { return b.outcomes("confirmed") >= n })
	return b.stored(id)
}

// stored waits for the core's write of transaction id and returns the record.
func (b *behindHIM) stored(id string) map[string]any {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.core.WaitStored(ctx, id); err != nil {
		b.t.Fatal(err)
	}
	rec, ok := b.core.Transaction(id)
	if !ok {
		b.t.Fatalf("the core has no transaction %s", id)
	}
	return rec
}

// orchestrations returns a record's orchestrations by name; names repeat when the record
// holds the same orchestration twice.
func orchestrations(rec map[string]any) (map[string]map[string]any, []string) {
	byName := map[string]map[string]any{}
	var names []string
	list, _ := rec["orchestrations"].([]any)
	for _, x := range list {
		o, _ := x.(map[string]any)
		name, _ := o["name"].(string)
		byName[name] = o
		names = append(names, name)
	}
	return byName, names
}

func count(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

// path reads a nested field of a decoded JSON object ("response.status").
func jsonAt(v any, p string) any {
	for _, k := range strings.Split(p, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// assertFinalRecord checks a core record Tally reported a delivered transaction into: the
// status, one DHIS2 orchestration shaped as the core's schema wants beside the core's own
// route orchestration, and the client's response as Tally first answered it.
func assertFinalRecord(t *testing.T, rec map[string]any, route string, clientStatus int, targetURL string) {
	t.Helper()
	byName, names := orchestrations(rec)
	if rec["status"] != "Successful" {
		t.Errorf("status %v, want Successful; orchestrations %q", rec["status"], names)
	}
	if n := count(names, "DHIS2 import: hmis"); n != 1 {
		t.Errorf("%d DHIS2 import orchestrations, want 1: %q", n, names)
	}
	if count(names, route) != 1 {
		t.Errorf("the core's own orchestration %q is missing: %q", route, names)
	}
	if got := jsonAt(rec, "response.status"); got != float64(clientStatus) {
		t.Errorf("the transaction's response is %v, want the client's %d", got, clientStatus)
	}
	o := byName["DHIS2 import: hmis"]
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	if jsonAt(o, "request.host") != u.Hostname() || jsonAt(o, "request.port") != u.Port() ||
		jsonAt(o, "request.path") != strings.TrimRight(u.Path, "/")+"/api/dataValueSets" ||
		jsonAt(o, "request.method") != "POST" || jsonAt(o, "request.timestamp") == nil {
		t.Errorf("DHIS2 orchestration request = %v", o["request"])
	}
	if _, ok := jsonAt(o, "request.headers").(map[string]any); !ok {
		t.Errorf("DHIS2 orchestration request headers = %v, want an object", jsonAt(o, "request.headers"))
	}
	if jsonAt(o, "response.status") != float64(200) || jsonAt(o, "response.timestamp") == nil {
		t.Errorf("DHIS2 orchestration response = %v", o["response"])
	}
	if body, _ := jsonAt(o, "response.body").(string); !strings.Contains(body, `"status":"delivered"`) {
		t.Errorf("DHIS2 orchestration body = %s", body)
	}
	if p := jsonAt(rec, "properties.hmis: outcome"); p == nil || !strings.HasPrefix(p.(string), "delivered") {
		t.Errorf("properties = %v", rec["properties"])
	}
}

// heldTarget holds DHIS2 import requests until opened, so a test can change the world
// (answer the client first, take the core down) between accepting a payload and delivering
// it. hold closes it again.
type heldTarget struct {
	next    http.Handler
	mu      sync.Mutex
	gate    chan struct{} // closed while open
	arrived chan struct{} // closed when an import arrives at the closed gate
}

func newHeldTarget(next http.Handler) *heldTarget {
	h := &heldTarget{next: next}
	h.hold()
	return h
}

func (h *heldTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/dataValueSets") {
		h.mu.Lock()
		gate, arrived := h.gate, h.arrived
		select {
		case <-arrived:
		default:
			close(arrived)
		}
		h.mu.Unlock()
		<-gate
	}
	h.next.ServeHTTP(w, r)
}

func (h *heldTarget) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gate, h.arrived = make(chan struct{}), make(chan struct{})
}

func (h *heldTarget) open() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.gate:
	default:
		close(h.gate)
	}
}

// waitArrived waits until an import is held at the gate.
func (h *heldTarget) waitArrived(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	arrived := h.arrived
	h.mu.Unlock()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no import reached the target")
	}
}

// heldEmulator is the emulator behind a heldTarget, and the target URL for Tally.
func heldEmulator(t *testing.T) (*dhis2test.Server, *heldTarget, string) {
	t.Helper()
	emu := emulator(t)
	held := newHeldTarget(emu.Handler())
	front := httptest.NewServer(held)
	t.Cleanup(front.Close)
	t.Cleanup(held.open) // before front.Close: a held request would block it
	return emu, held, front.URL + emu.BasePath()
}

// emulator starts the DHIS2 emulator (2.40) for a test.
func emulator(t *testing.T) *dhis2test.Server {
	t.Helper()
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	t.Cleanup(emu.Close)
	return emu
}

// chwValues are CHW_MONTHLY values of one period at one facility.
func chwValues(period, orgUnit string, base int) []byte {
	var vs []dv
	for i, de := range []string{"CHW_HOUSEHOLD_VISITS", "CHW_U5_ASSESSMENTS", "CHW_PREGNANCIES_REGISTERED"} {
		vs = append(vs, dv{de, period, orgUnit, "", "", strconv.Itoa(base + i)})
	}
	return dvsBody(vs)
}
