package mediator_test

import (
	"encoding/json"
	"fmt"
	"github.com/labstack/echo/v4"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

const (
	viewerToken   = "viewer-token-0123456789"
	operatorToken = "operator-token-0123456789"
)

// withCredentials adds two scoped admin credentials beside admin.token.
func withCredentials(yml string) string {
	return strings.Replace(yml, fmt.Sprintf("admin: {token: %s}\n", adminToken), fmt.Sprintf(`admin:
  token: %s
  credentials:
    - {name: viewer, token: %s, scope: read}
    - {name: alice, token: %s, scope: operate}
`, adminToken, viewerToken, operatorToken), 1)
}

// A read credential looks at everything and changes nothing: every state-changing admin
// route answers 403 naming the scope needed, and the dead letter is still there. An operate
// credential's replay and discard are recorded under its name.
func TestAdminScopesThroughTheRunningService(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{}, withCredentials)

	vs := epiValues("202401", 0)[:4]
	vs = append(vs, dv{"EPI_BCG", "202401", "KL_NOWHERE", "F_LT1", "", "1"})
	id := h.ingest(dvsBody(vs))
	h.waitStatus(id, txlog.TxPartiallyDelivered)
	letters := h.deadLetters("")
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	seq := fmt.Sprint(num(letters[0]["seq"]))

	as := func(token, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return h.do(req)
	}
	if code, who := as(viewerToken, "GET", "/admin/v1/whoami", ""); code != 200 || who["name"] != "viewer" || who["scope"] != "read" {
		t.Errorf("whoami as viewer: HTTP %d %v", code, who)
	}
	for _, path := range []string{"/admin/v1/transactions", "/admin/v1/transactions/" + id, "/admin/v1/dlq", "/admin/v1/dlq/" + seq, "/admin/v1/exchanges", "/admin/v1/audit"} {
		if code, body := as(viewerToken, "GET", path, ""); code != http.StatusOK {
			t.Errorf("viewer GET %s: HTTP %d %v", path, code, body)
		}
	}
	refused := []struct{ method, path, body string }{
		{"POST", "/admin/v1/dlq/" + seq + "/replay", ""},
		{"DELETE", "/admin/v1/dlq/" + seq, ""},
		{"POST", "/admin/v1/dlq/replay", `{"all": true}`},
		{"POST", "/admin/v1/dlq/discard", `{"all": true}`},
		{"POST", "/admin/v1/targets/hmis/probe", ""},
		{"POST", "/admin/v1/targets/hmis/metadata/refresh", ""},
		{"POST", "/admin/v1/exchanges/none/run", ""},
		{"GET", "/admin/v1/debug/pprof/heap", ""},
	}
	for _, r := range refused {
		code, body := as(viewerToken, r.method, r.path, r.body)
		if msg, _ := body["message"].(string); code != http.StatusForbidden || !strings.Contains(msg, "needs scope operate") {
			t.Errorf("viewer %s %s: HTTP %d %v, want 403 naming the scope", r.method, r.path, code, body)
		}
	}
	if n := len(h.deadLetters("")); n != 1 {
		t.Fatalf("after the refused calls %d dead letters, want 1 untouched", n)
	}
	if code, _ := as("not-a-credential-0123456789", "GET", "/admin/v1/dlq", ""); code != http.StatusUnauthorized {
		t.Errorf("unknown token: HTTP %d, want 401", code)
	}

	if code, body := as(operatorToken, "DELETE", "/admin/v1/dlq/"+seq, ""); code != http.StatusOK {
		t.Fatalf("operator discard: HTTP %d %v", code, body)
	}
	ev, _ := h.tx(id)["events"].([]any)
	if len(ev) != 1 || ev[0].(map[string]any)["by"] != "alice" {
		t.Errorf("events = %v, want the discard by alice", ev)
	}

	// The audit log: every action tried (reads are not actions), who, what and how it ended.
	code, body := as(viewerToken, "GET", "/admin/v1/audit?who=alice", "")
	entries, _ := body["audit"].([]any)
	if code != http.StatusOK || len(entries) != 1 {
		t.Fatalf("audit of alice: HTTP %d %v", code, body)
	}
	if e := entries[0].(map[string]any); e["action"] != "DELETE /admin/v1/dlq/:seq" || e["path"] != "/admin/v1/dlq/"+seq ||
		num(e["result"]) != http.StatusOK || e["scope"] != "operate" || e["requestId"] == "" || e["time"] == "" {
		t.Errorf("alice's entry = %v", e)
	}
	_, body = as(viewerToken, "GET", "/admin/v1/audit?who=viewer", "")
	entries, _ = body["audit"].([]any)
	if len(entries) != len(refused)-1 { // the pprof GET is a read
		t.Fatalf("viewer's entries: %d, want %d: %v", len(entries), len(refused)-1, entries)
	}
	for _, x := range entries {
		if e := x.(map[string]any); num(e["result"]) != http.StatusForbidden {
			t.Errorf("a refused action recorded as %v", e)
		}
	}
	if code, _ := as(viewerToken, "GET", "/admin/v1/audit?since=soon", ""); code != http.StatusBadRequest {
		t.Errorf("audit?since=soon: HTTP %d, want 400", code)
	}
}

// A request's X-Request-ID is kept when usable, made when not, returned, and recorded with
// the transaction beside who sent it (which credential, never its secret), from where and
// with what client.
func TestTransactionsRecordTheirSenderAndRequestID(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{})
	post := func(requestID string) (string, string) {
		req, _ := http.NewRequest("POST", h.base+"/ingest/cht", strings.NewReader(string(dvsBody(epiValues("202401", len(requestID))))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+chtToken)
		req.Header.Set("User-Agent", "cht-sync/4.2")
		if requestID != "" {
			req.Header.Set("X-Request-ID", requestID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("ingest: HTTP %d %v %v", resp.StatusCode, body, err)
		}
		return body["transaction"].(string), resp.Header.Get("X-Request-ID")
	}
	id, echoed := post("sync-run-42")
	if echoed != "sync-run-42" {
		t.Errorf("X-Request-ID answered %q, want the client's", echoed)
	}
	tx := h.tx(id)
	if tx["requestId"] != "sync-run-42" || tx["sentBy"] != "token 1" || tx["userAgent"] != "cht-sync/4.2" || tx["client"] != "127.0.0.1" {
		t.Errorf("record = requestId %v sentBy %v userAgent %v client %v", tx["requestId"], tx["sentBy"], tx["userAgent"], tx["client"])
	}
	raw, _ := json.Marshal(tx)
	if strings.Contains(string(raw), chtToken) {
		t.Error("the transaction record holds the source's token")
	}
	// The record pages its delivery records on request (tally tx show's summary and --values).
	h.waitStatus(id, txlog.TxDelivered)
	if code, v := h.admin("GET", "/admin/v1/transactions/"+id+"?limit=0", nil); code != http.StatusOK || v["deliveries"] != nil || num(v["deliveriesTotal"]) < 1 {
		t.Errorf("?limit=0: HTTP %d deliveries %v total %v", code, v["deliveries"], v["deliveriesTotal"])
	}
	if code, v := h.admin("GET", "/admin/v1/transactions/"+id+"?offset=0&limit=1", nil); code != http.StatusOK || len(v["deliveries"].([]any)) != 1 {
		t.Errorf("?offset=0&limit=1: HTTP %d %v", code, v["deliveries"])
	}
	if code, _ := h.admin("GET", "/admin/v1/transactions/"+id+"?limit=5000", nil); code != http.StatusBadRequest {
		t.Errorf("?limit=5000: HTTP %d, want 400", code)
	}
	id2, made := post("has spaces, not usable")
	if len(made) != 32 || h.tx(id2)["requestId"] != made {
		t.Errorf("a made request id %q, recorded %v", made, h.tx(id2)["requestId"])
	}
}

// Every admin route the running service serves, walked from its router: a read credential is
// refused (403) every one that is not a read, and no route is open without a credential.
func TestEveryAdminRouteIsScoped(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{}, withCredentials)
	e, ok := h.svc.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("the service's handler is %T", h.svc.Handler())
	}
	call := func(token, method, path string) int {
		req, _ := http.NewRequest(method, h.base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	reads, changes := 0, 0
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/admin/v1/") || strings.HasPrefix(r.Method, "echo_") {
			continue
		}
		path := strings.NewReplacer(":name", "nosuch", ":seq", "999999", ":id", "x", ":tx", "x", "*", "x").Replace(r.Path)
		if code := call("", r.Method, path); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a credential: HTTP %d, want 401", r.Method, r.Path, code)
		}
		code := call(viewerToken, r.Method, path)
		switch {
		case r.Method == http.MethodGet && !strings.HasPrefix(r.Path, "/admin/v1/debug/"), r.Path == "/admin/v1/preview":
			reads++
			if code == http.StatusForbidden {
				t.Errorf("read credential %s %s: 403, want it let through", r.Method, r.Path)
			}
		default:
			changes++
			if code != http.StatusForbidden {
				t.Errorf("read credential %s %s: HTTP %d, want 403", r.Method, r.Path, code)
			}
		}
	}
	t.Logf("%d read and %d other admin routes checked", reads, changes)
	if reads == 0 || changes < 8 {
		t.Errorf("only %d read and %d other admin routes found", reads, changes)
	}
}
