package openhimtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const testURN = "urn:mediator:routed"

// mediatorAt is a mediator's HTTP server: it records what the core forwarded and answers
// with answer.
type mediatorAt struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []*http.Request
	bodies []string
}

func newMediator(t *testing.T, answer http.HandlerFunc) *mediatorAt {
	t.Helper()
	m := &mediatorAt{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.seen = append(m.seen, r.Clone(context.Background()))
		m.bodies = append(m.bodies, string(b))
		m.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mediatorAt) requests() []*http.Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*http.Request(nil), m.seen...)
}

func (m *mediatorAt) port(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(m.Listener.Addr().String())
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// envelopeAnswer answers like a mediator that stored the request and delivers later.
func envelopeAnswer(w http.ResponseWriter, r *http.Request) {
	env := map[string]any{
		"x-mediator-urn": testURN, "status": "Processing",
		"response": map[string]any{"status": 202, "headers": map[string]any{"Content-Type": "application/json"},
			"body": `{"status":"OK","description":"stored"}`, "timestamp": "2025-03-01T09:30:00.123Z"},
		"orchestrations": []any{map[string]any{"name": "Tally ingest",
			"request": map[string]any{"path": r.URL.Path, "method": r.Method, "headers": map[string]any{},
				"timestamp": "2025-03-01T09:30:00.100Z"}}},
		"properties": map[string]any{"tally_transaction": "tx-1"},
	}
	w.Header().Set("Content-Type", "application/json+openhim")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(env)
}

// routedCore registers a mediator whose one channel routes /ingest/cht to m, installs the
// channel and adds a client allowed on it.
func routedCore(t *testing.T, m *mediatorAt, opts ...Option) *Server {
	t.Helper()
	s := NewServer(append([]Option{WithClient("cht", "cht-pw", "tally")}, opts...)...)
	t.Cleanup(s.Close)
	route := map[string]any{"name": "Tally cht", "host": "127.0.0.1", "port": strconv.Itoa(m.port(t)),
		"primary": true, "type": "http"}
	reg := map[string]any{"urn": testURN, "version": "1.0.0", "name": "Routed",
		"endpoints": []any{route},
		"defaultChannelConfig": []any{map[string]any{"name": "Tally - cht", "urlPattern": `^/ingest/cht$`,
			"methods": []any{"POST"}, "allow": []any{"tally"}, "routes": []any{route}, "type": "http"}},
	}
	if status, body := do(t, s, call{method: "POST", path: "/mediators", basic: true, body: reg}); status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	if status, body := do(t, s, call{method: "POST", path: "/mediators/" + testURN + "/channels", basic: true}); status != http.StatusCreated {
		t.Fatalf("install channels: %d %s", status, body)
	}
	return s
}

type routedAnswer struct {
	status int
	header http.Header
	body   string
	txID   string
}

// post sends a client request through the router.
func post(t *testing.T, s *Server, path, body string, auth func(*http.Request)) routedAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.RouterURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return routedAnswer{resp.StatusCode, resp.Header, string(b), resp.Header.Get("X-OpenHIM-TransactionID")}
}

func asCHT(r *http.Request) { r.SetBasicAuth("cht", "cht-pw") }

// readBack is GET /transactions/:id through the API, decoded.
func readBack(t *testing.T, s *Server, id string) map[string]any {
	t.Helper()
	status, body := do(t, s, call{method: "GET", path: "/transactions/" + id, basic: true})
	if status != http.StatusOK {
		t.Fatalf("GET /transactions/%s: %d %s", id, status, body)
	}
	var tx map[string]any
	if err := json.Unmarshal([]byte(body), &tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

func orchNames(tx map[string]any) []string {
	var names []string
	for _, o := range asList(tx["orchestrations"]) {
		names = append(names, jsString(asObject(o)["name"]))
	}
	return names
}

// lastTx is the id of the newest transaction. A client answered by handleServerError gets
// no X-OpenHIM-TransactionID: only setKoaResponse adds it (CORE src/middleware/router.js).
func lastTx(t *testing.T, s *Server, got routedAnswer) string {
	t.Helper()
	if got.txID != "" {
		t.Errorf("a failed route's answer carries transaction id %s", got.txID)
	}
	ids := s.TransactionIDs()
	if len(ids) == 0 {
		t.Fatal("no transaction stored")
	}
	return ids[len(ids)-1]
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRouterStoresTheEnvelopeAsTheCoreDoes follows one request through the router: the
// client gets the envelope's response, the mediator the transaction id, and the record read
// back holds the envelope plus the core's own orchestration of the route call.
// CORE src/middleware/router.js (sendRequest/recordOrchestration, setKoaResponse,
// constructOptionsObject), src/middleware/messageStore.js (storeTransaction, storeResponse,
// setFinalStatus).
func TestRouterStoresTheEnvelopeAsTheCoreDoes(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m)
	got := post(t, s, "/ingest/cht?period=202401", `{"targets":[]}`, asCHT)
	if got.status != http.StatusAccepted || got.body != `{"status":"OK","description":"stored"}` || got.txID == "" ||
		got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("client answer: %+v", got)
	}
	fwd := m.requests()
	if len(fwd) != 1 {
		t.Fatalf("mediator saw %d requests", len(fwd))
	}
	h := fwd[0].Header
	if h.Get("X-OpenHIM-TransactionID") != got.txID || h.Get("X-OpenHIM-ClientID") != "cht" ||
		h.Get("Authorization") != "" || fwd[0].URL.RawQuery != "period=202401" {
		t.Errorf("forwarded request: %s?%s %v", fwd[0].URL.Path, fwd[0].URL.RawQuery, h)
	}

	tx := readBack(t, s, got.txID)
	resp := asObject(tx["response"])
	if tx["status"] != "Processing" || resp["status"] != float64(202) || resp["timestamp"] != "2025-03-01T09:30:00.123Z" ||
		asObject(tx["properties"])["tally_transaction"] != "tx-1" {
		t.Errorf("stored transaction: %v", tx)
	}
	if names := orchNames(tx); fmt.Sprint(names) != "[Tally ingest Tally cht]" {
		t.Errorf("orchestrations %v, want the mediator's then the core's route", names)
	}
	core := asObject(asList(tx["orchestrations"])[1])
	creq, cresp := asObject(core["request"]), asObject(core["response"])
	if creq["host"] != "127.0.0.1" || creq["port"] != strconv.Itoa(m.port(t)) || creq["path"] != "/ingest/cht?period=202401" ||
		creq["body"] != `{"targets":[]}` || cresp["status"] != float64(202) ||
		!strings.Contains(jsString(cresp["body"]), `"x-mediator-urn"`) || core["_id"] == nil {
		t.Errorf("core orchestration: %v", core)
	}
	req := asObject(tx["request"])
	if req["body"] != `{"targets":[]}` || req["querystring"] != "period=202401" || tx["canRerun"] != true || tx["clientID"] == nil {
		t.Errorf("stored request: %v", tx)
	}
}

// TestStoreOverwritesAnEarlierUpdate models what a real core did: the mediator's own
// PUT /transactions/:id arrived before the core stored the envelope, and the core's write
// replaced the status, orchestrations and properties it had set (CORE
// src/middleware/messageStore.js storeResponse: update = {response, error, orchestrations:
// [...]} with properties only when the mediator sent some, then setFinalStatus).
func TestStoreOverwritesAnEarlierUpdate(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m)
	s.HoldStores()
	got := post(t, s, "/ingest/cht", `{}`, asCHT)

	before := readBack(t, s, got.txID)
	if before["response"] != nil || before["status"] != "Processing" {
		t.Fatalf("the core stored the answer while held: %v", before)
	}
	status, body := do(t, s, call{method: "PUT", path: "/transactions/" + got.txID, basic: true, body: map[string]any{
		"status": "Successful", "properties": map[string]any{"imported": 12},
		"$push": map[string]any{"orchestrations": map[string]any{"$each": []any{map[string]any{"name": "DHIS2 import: hmis"}}}},
	}})
	if status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, body)
	}
	if early := readBack(t, s, got.txID); early["status"] != "Successful" || fmt.Sprint(orchNames(early)) != "[DHIS2 import: hmis]" {
		t.Fatalf("the update did not apply: %v", early)
	}

	s.ReleaseStores()
	if err := s.WaitStored(testCtx(t), got.txID); err != nil {
		t.Fatal(err)
	}
	after := readBack(t, s, got.txID)
	if after["status"] != "Processing" || fmt.Sprint(orchNames(after)) != "[Tally ingest Tally cht]" ||
		fmt.Sprint(after["properties"]) != "map[tally_transaction:tx-1]" || asObject(after["response"])["status"] != float64(202) {
		t.Errorf("after the core's write: %v", after)
	}
}

// TestStoreKeepsPropertiesTheEnvelopeLacks: storeResponse sets properties only when the
// mediator sent some, so properties written earlier survive an envelope without them.
func TestStoreKeepsPropertiesTheEnvelopeLacks(t *testing.T) {
	m := newMediator(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json+openhim")
		io.WriteString(w, `{"x-mediator-urn":"`+testURN+`","response":{"status":"200","headers":{},"body":"ok","timestamp":1740821400123}}`)
	})
	s := routedCore(t, m)
	s.HoldStores()
	got := post(t, s, "/ingest/cht", `{}`, asCHT)
	do(t, s, call{method: "PUT", path: "/transactions/" + got.txID, basic: true,
		body: map[string]any{"properties": map[string]any{"kept": true}}})
	s.ReleaseStores()
	if err := s.WaitStored(testCtx(t), got.txID); err != nil {
		t.Fatal(err)
	}
	tx := readBack(t, s, got.txID)
	resp := asObject(tx["response"])
	// No status in the envelope: the core computes Successful from the 200 (a string status
	// is parsed by setKoaResponse; an epoch timestamp is cast to a Date).
	if tx["status"] != "Successful" || asObject(tx["properties"])["kept"] != true || resp["status"] != float64(200) ||
		resp["timestamp"] != "2025-03-01T09:30:00.123Z" || got.status != http.StatusOK || got.body != "ok" {
		t.Errorf("stored: %v; client got %+v", tx, got)
	}
}

// TestStoreDelay: with a delay the client has its answer before the record does; Close
// drops a write still waiting.
func TestStoreDelay(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m, WithStoreDelay(time.Hour))
	got := post(t, s, "/ingest/cht", `{}`, asCHT)
	if tx := readBack(t, s, got.txID); tx["response"] != nil {
		t.Fatalf("stored before the delay: %v", tx)
	}
	s.SetStoreDelay(time.Millisecond)
	second := post(t, s, "/ingest/cht", `{}`, asCHT)
	if err := s.WaitStored(testCtx(t), second.txID); err != nil {
		t.Fatal(err)
	}
	if tx := readBack(t, s, second.txID); asObject(tx["response"])["status"] != float64(202) {
		t.Errorf("after a short delay: %v", tx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitStored(ctx, got.txID); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitStored on a pending write: %v", err)
	}
	if err := s.WaitStored(ctx, "65f000000000000000000fff"); err == nil {
		t.Error("WaitStored accepted a transaction that was never routed")
	}
}

// TestRouterFailures: what the client and the record show when the route fails
// (CORE src/middleware/router.js handleServerError: 500 "An internal server error
// occurred", ctx.error, autoRetry; messageStore.js setFinalStatus: 5xx is Failed, 4xx
// Completed).
func TestRouterFailures(t *testing.T) {
	t.Run("mediator unreachable", func(t *testing.T) {
		m := newMediator(t, envelopeAnswer)
		s := routedCore(t, m)
		m.Close()
		got := post(t, s, "/ingest/cht", `{}`, asCHT)
		tx := readBack(t, s, lastTx(t, s, got))
		orch := asObject(asList(tx["orchestrations"])[0])
		if got.status != 500 || got.body != "An internal server error occurred" || tx["status"] != "Failed" ||
			tx["autoRetry"] != true || asObject(tx["error"])["message"] == nil || asObject(orch["error"])["message"] == nil {
			t.Errorf("client %+v, stored %v", got, tx)
		}
	})
	t.Run("envelope that is not JSON", func(t *testing.T) {
		m := newMediator(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json+openhim")
			io.WriteString(w, "{not json")
		})
		s := routedCore(t, m)
		got := post(t, s, "/ingest/cht", `{}`, asCHT)
		tx := readBack(t, s, lastTx(t, s, got))
		if got.status != 500 || tx["status"] != "Failed" || !strings.Contains(jsString(asObject(tx["error"])["message"]), "SyntaxError") {
			t.Errorf("client %+v, stored %v", got, tx)
		}
	})
	t.Run("plain 4xx answer", func(t *testing.T) {
		m := newMediator(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"status":"ERROR"}`)
		})
		s := routedCore(t, m)
		got := post(t, s, "/ingest/cht", `{}`, asCHT)
		tx := readBack(t, s, got.txID)
		if got.status != 409 || got.body != `{"status":"ERROR"}` || tx["status"] != "Completed" || tx["autoRetry"] != false {
			t.Errorf("client %+v, stored %v", got, tx)
		}
	})
}

// TestRouterAuthorisation: client authentication and channel matching
// (CORE src/middleware/basicAuthentication.js, requestMatching.js, authorisation.js).
func TestRouterAuthorisation(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m, WithClient("other", "pw", "nobody"))
	for _, tc := range []struct {
		name string
		path string
		auth func(*http.Request)
		want int
	}{
		{"no credentials", "/ingest/cht", nil, http.StatusUnauthorized},
		{"wrong password", "/ingest/cht", func(r *http.Request) { r.SetBasicAuth("cht", "nope") }, http.StatusUnauthorized},
		{"role not allowed", "/ingest/cht", func(r *http.Request) { r.SetBasicAuth("other", "pw") }, http.StatusUnauthorized},
		{"no channel", "/ingest/other", asCHT, http.StatusNotFound},
		{"allowed", "/ingest/cht", asCHT, http.StatusAccepted},
	} {
		got := post(t, s, tc.path, `{}`, tc.auth)
		if got.status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got.status, tc.want)
		}
		if got.status == http.StatusUnauthorized && got.header.Get("WWW-Authenticate") != "Basic" {
			t.Errorf("%s: no Basic challenge", tc.name)
		}
	}
	if n := len(s.TransactionIDs()); n != 1 {
		t.Errorf("%d transactions stored, want only the admitted request's", n)
	}
	// A public channel admits anyone; the route's credentials reach the mediator and the
	// client's Authorization does not (router.js constructOptionsObject).
	err := s.UpdateChannel("Tally - cht", func(c *Channel) {
		c.AuthType = "public"
		c.Routes[0].Username, c.Routes[0].Password = "route-user", "route-pw"
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := post(t, s, "/ingest/cht", `{}`, nil); got.status != http.StatusAccepted {
		t.Errorf("public channel: %+v", got)
	}
	fwd := m.requests()
	if u, p, ok := fwd[len(fwd)-1].BasicAuth(); !ok || u != "route-user" || p != "route-pw" {
		t.Errorf("route credentials not sent: %v", fwd[len(fwd)-1].Header)
	}
}

// TestRequestBodyNotStored: a channel with requestBody false stores no body, and a POST
// without a stored body cannot be rerun (CORE src/middleware/messageStore.js storeTransaction).
func TestRequestBodyNotStored(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m)
	no := false
	if err := s.UpdateChannel("Tally - cht", func(c *Channel) { c.RequestBody = &no }); err != nil {
		t.Fatal(err)
	}
	got := post(t, s, "/ingest/cht", `{"secret":"values"}`, asCHT)
	tx := readBack(t, s, got.txID)
	if asObject(tx["request"])["body"] != "" || tx["canRerun"] != false {
		t.Errorf("stored: %v", tx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bodies[0] != `{"secret":"values"}` {
		t.Errorf("the mediator got %q, want the client's body", m.bodies[0])
	}
}

// TestInstallChannels: POST /mediators/:urn/channels answers (CORE src/api/mediators.js
// loadDefaultChannels; the channels collection's unique index on name).
func TestInstallChannels(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m)
	for _, tc := range []struct {
		name string
		path string
		body any
		want int
		text string
	}{
		{"unknown mediator", "/mediators/urn:x/channels", nil, 404, "No mediator found for this urn."},
		{"unknown channel", "/mediators/" + testURN + "/channels", []string{"nope"}, 400, "not found in the mediator config"},
		{"already installed", "/mediators/" + testURN + "/channels", []string{"Tally - cht"}, 500, "E11000 duplicate key"},
	} {
		status, body := do(t, s, call{method: "POST", path: tc.path, basic: true, body: tc.body})
		if status != tc.want || !strings.Contains(body, tc.text) {
			t.Errorf("%s: %d %q", tc.name, status, body)
		}
	}
	if chs := s.Channels(); len(chs) != 1 || chs[0].Routes[0].Port != m.port(t) || chs[0].ID == "" {
		t.Errorf("channels: %+v", chs)
	}
}

// TestDownModes: the core refusing connections, answering 503 for a while, then serving.
func TestDownModes(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m)
	if err := s.SetDown(Refused); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{s.URL + "/heartbeat", s.RouterURL + "/ingest/cht"} {
		_, err := (&http.Client{Timeout: 5 * time.Second}).Get(u)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("GET %s while refused: %v, want connection refused", u, err)
		}
	}
	if err := s.SetDown(Up); err != nil {
		t.Fatal(err)
	}
	s.FailNext(2, Unavailable)
	var codes []int
	for range 3 {
		status, _ := do(t, s, call{method: "GET", path: "/heartbeat"})
		codes = append(codes, status)
	}
	if fmt.Sprint(codes) != "[503 503 200]" {
		t.Errorf("statuses %v, want two 503 then 200", codes)
	}
	if got := post(t, s, "/ingest/cht", `{}`, asCHT); got.status != http.StatusAccepted {
		t.Errorf("router after the outage: %+v", got)
	}
}

// TestRerunTask: a rerun replays the stored request to the mediator as a new transaction
// with parentID and taskID headers; the original records its child (spec §10.2-10.3; CORE
// src/api/tasks.js addTask, src/tasks.js rerunSetHTTPRequestOptions/rerunHttpRequestSend,
// src/middleware/rerunUpdateTransactionTask.js).
func TestRerunTask(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m)
	orig := post(t, s, "/ingest/cht?period=202401", `{"targets":[1]}`, asCHT)

	status, text := do(t, s, call{method: "POST", path: "/tasks", basic: true, body: map[string]any{"tids": []string{orig.txID}}})
	if status != http.StatusCreated || !strings.HasPrefix(text, "User root@openhim.org created task with id ") {
		t.Fatalf("POST /tasks: %d %q", status, text)
	}
	taskID := strings.TrimPrefix(text, "User root@openhim.org created task with id ")
	if err := s.WaitTask(testCtx(t), taskID); err != nil {
		t.Fatal(err)
	}
	fwd := m.requests()
	if len(fwd) != 2 {
		t.Fatalf("mediator saw %d requests, want the original and the rerun", len(fwd))
	}
	rr := fwd[1]
	child := rr.Header.Get("X-OpenHIM-TransactionID")
	if rr.Header.Get("parentID") != orig.txID || rr.Header.Get("taskID") != taskID || child == "" || child == orig.txID ||
		rr.URL.RawQuery != "period=202401" || rr.Header.Get("Authorization") != "" {
		t.Errorf("rerun request: %s?%s %v", rr.URL.Path, rr.URL.RawQuery, rr.Header)
	}
	m.mu.Lock()
	body := m.bodies[1]
	m.mu.Unlock()
	if body != `{"targets":[1]}` {
		t.Errorf("rerun body %q", body)
	}
	parent, kid := readBack(t, s, orig.txID), readBack(t, s, child)
	if parent["wasRerun"] != true || fmt.Sprint(parent["childIDs"]) != "["+child+"]" || kid["parentID"] != orig.txID ||
		kid["status"] != "Processing" {
		t.Errorf("original %v\nchild %v", parent, kid)
	}
	task := s.Tasks()[0]
	entry := asObject(asList(task["transactions"])[0])
	if task["status"] != TaskCompleted || task["remainingTransactions"] != float64(0) || entry["rerunID"] != child ||
		entry["tstatus"] != TaskCompleted {
		t.Errorf("task: %v", task)
	}
	status, list := do(t, s, call{method: "GET", path: "/tasks?filters=%7B%7D", basic: true})
	if status != http.StatusOK || !strings.Contains(list, taskID) || strings.Contains(list, "transactions\"") {
		t.Errorf("GET /tasks: %d %s", status, list)
	}
}

// TestRerunRefusals: a transaction without a stored body cannot be rerun; a paused task
// does not run; a batch size below 1 is refused (CORE src/tasks.js rerunGetTransaction,
// src/api/tasks.js addTask).
func TestRerunRefusals(t *testing.T) {
	m := newMediator(t, envelopeAnswer)
	s := routedCore(t, m)
	noBody := post(t, s, "/ingest/cht", ``, asCHT)
	_, text := do(t, s, call{method: "POST", path: "/tasks", basic: true, body: map[string]any{"tids": []string{noBody.txID}}})
	taskID := text[strings.LastIndex(text, " ")+1:]
	if err := s.WaitTask(testCtx(t), taskID); err != nil {
		t.Fatal(err)
	}
	entry := asObject(asList(s.Tasks()[0]["transactions"])[0])
	if entry["tstatus"] != "Failed" || !strings.Contains(jsString(entry["error"]), "cannot be rerun") || len(m.requests()) != 1 {
		t.Errorf("task entry: %v", entry)
	}
	status, text := do(t, s, call{method: "POST", path: "/tasks", basic: true,
		body: map[string]any{"tids": []string{noBody.txID}, "paused": true}})
	if status != http.StatusCreated || s.Tasks()[1]["status"] != TaskPaused {
		t.Errorf("paused task: %d %q %v", status, text, s.Tasks()[1])
	}
	if err := s.WaitTask(testCtx(t), text[strings.LastIndex(text, " ")+1:]); err == nil {
		t.Error("a paused task ran")
	}
	status, text = do(t, s, call{method: "POST", path: "/tasks", basic: true,
		body: map[string]any{"tids": []string{noBody.txID}, "batchSize": 0}})
	if status != http.StatusBadRequest || text != "Invalid batch size specified" {
		t.Errorf("batch size 0: %d %q", status, text)
	}
}
