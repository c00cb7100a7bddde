package openhimtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type call struct {
	method, path string
	body         any
	basic        bool              // root's Basic credentials
	headers      map[string]string // extra headers
}

func do(t *testing.T, s *Server, c call) (int, string) {
	t.Helper()
	var rd io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(c.method, s.URL+c.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if c.basic {
		req.SetBasicAuth(RootEmail, RootPassword)
	}
	for k, v := range c.headers {
		req.Header[k] = []string{v}
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func minimalMediator() map[string]any {
	return map[string]any{
		"urn": "urn:mediator:test", "version": "1.0.0", "name": "Test",
		"endpoints": []any{map[string]any{"name": "ep", "host": "test", "port": "3000", "primary": true}},
		"configDefs": []any{
			map[string]any{"param": "secret", "type": "password"},
			map[string]any{"param": "level", "type": "option", "values": []any{"a", "b"}},
		},
		"config": map[string]any{"secret": "hunter2", "level": "a"},
	}
}

func TestTokenAuthentication(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewServer(WithNow(func() time.Time { return now }))
	defer s.Close()
	token := func(ts time.Time, password string) map[string]string {
		tsText := ts.Format("2006-01-02T15:04:05.000Z")
		return map[string]string{"auth-username": "ROOT@openhim.org", "auth-ts": tsText, "auth-salt": rootSalt,
			"auth-token": sha512Hex(sha512Hex(rootSalt+password) + rootSalt + tsText)}
	}
	tests := []struct {
		name    string
		headers map[string]string
		basic   bool
		want    int
	}{
		{"valid (email is case-insensitive)", token(now, RootPassword), false, http.StatusOK},
		{"9s in the future", token(now.Add(9*time.Second), RootPassword), false, http.StatusOK},
		{"expired", token(now.Add(-11*time.Second), RootPassword), false, http.StatusUnauthorized},
		{"wrong password", token(now, "nope"), false, http.StatusUnauthorized},
		{"incomplete headers", map[string]string{"auth-username": RootEmail}, false, http.StatusUnauthorized},
		// Any auth-* header selects the token strategy alone, even beside valid Basic.
		{"token header beside basic", map[string]string{"auth-ts": "x"}, true, http.StatusUnauthorized},
		{"basic", nil, true, http.StatusOK},
		{"nothing", nil, false, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, s, call{method: "GET", path: "/mediators", basic: tc.basic, headers: tc.headers})
			if status != tc.want {
				t.Errorf("status %d, want %d", status, tc.want)
			}
			if status == http.StatusUnauthorized && body != "" {
				t.Errorf("401 body %q, want empty", body)
			}
		})
	}
	status, body := do(t, s, call{method: "GET", path: "/authenticate/" + RootEmail})
	if status != http.StatusOK || !strings.Contains(body, rootSalt) || !strings.Contains(body, `"ts":"2025-01-01T00:00:00.000Z"`) {
		t.Errorf("challenge: %d %s", status, body)
	}
	if status, _ := do(t, s, call{method: "GET", path: "/authenticate/nobody@example.org"}); status != http.StatusNotFound {
		t.Errorf("unknown user challenge: %d", status)
	}
}

func TestMediatorEndpoints(t *testing.T) {
	s := NewServer()
	defer s.Close()
	const urn = "urn:mediator:test"

	status, body := do(t, s, call{method: "POST", path: "/mediators", basic: true, body: minimalMediator()})
	if status != http.StatusCreated || body != "User Authenticated Successfully" {
		t.Fatalf("register: %d %q", status, body)
	}

	steps := []struct {
		name       string
		call       call
		wantStatus int
		wantBody   string // substring
	}{
		{"get masks passwords", call{method: "GET", path: "/mediators/" + urn, basic: true}, 200, `"secret":"**********"`},
		{"percent-encoded urn", call{method: "GET", path: "/mediators/urn%3Amediator%3Atest", basic: true}, 200, `"urn":"urn:mediator:test"`},
		// getMediator sets only ctx.status; the Basic strategy's body stays (CORE
		// src/api/mediators.js getMediator, heartbeat, setConfig).
		{"unknown urn", call{method: "GET", path: "/mediators/urn:x", basic: true}, 404, basicGreeting},
		{"heartbeat without uptime", call{method: "POST", path: "/mediators/" + urn + "/heartbeat", basic: true,
			body: map[string]any{"config": true}}, 400, ""},
		{"heartbeat unknown urn", call{method: "POST", path: "/mediators/urn:x/heartbeat", basic: true,
			body: map[string]any{"uptime": 1}}, 404, basicGreeting},
		{"first heartbeat, nothing asked", call{method: "POST", path: "/mediators/" + urn + "/heartbeat", basic: true,
			body: map[string]any{"uptime": 1}}, 200, ""},
		{"heartbeat config is not masked", call{method: "POST", path: "/mediators/" + urn + "/heartbeat", basic: true,
			body: map[string]any{"uptime": 2, "config": true}}, 200, `"secret":"hunter2"`},
		{"console edit with the mask keeps the password", call{method: "PUT", path: "/mediators/" + urn + "/config", basic: true,
			body: map[string]any{"secret": "**********", "level": "b"}}, 200, basicGreeting},
		{"pushed once", call{method: "POST", path: "/mediators/" + urn + "/heartbeat", basic: true,
			body: map[string]any{"uptime": 3}}, 200, `"level":"b","secret":"hunter2"`},
		{"then nothing", call{method: "POST", path: "/mediators/" + urn + "/heartbeat", basic: true,
			body: map[string]any{"uptime": 4}}, 200, ""},
		{"invalid console edit", call{method: "PUT", path: "/mediators/" + urn + "/config", basic: true,
			body: map[string]any{"level": "c"}}, 400, "Expected config param level to be one of a,b"},
		{"config for unknown urn", call{method: "PUT", path: "/mediators/urn:x/config", basic: true,
			body: map[string]any{}}, 404, "No mediator found for this urn."},
		{"public core heartbeat", call{method: "GET", path: "/heartbeat"}, 200, `"urn:mediator:test":4`},
	}
	for _, st := range steps {
		status, body := do(t, s, st.call)
		if status != st.wantStatus || !strings.Contains(body, st.wantBody) || (st.wantBody == "" && status == 200 && body != "") {
			t.Errorf("%s: %d %q, want %d containing %q", st.name, status, body, st.wantStatus, st.wantBody)
		}
	}
	if len(s.Unexpected()) != 0 {
		t.Errorf("unexpected: %+v", s.Unexpected())
	}
}

func TestConfigBeforeFirstHeartbeatIsNotPushed(t *testing.T) {
	s := NewServer()
	defer s.Close()
	do(t, s, call{method: "POST", path: "/mediators", basic: true, body: minimalMediator()})
	if err := s.SetConfig("urn:mediator:test", map[string]any{"secret": "x", "level": "b"}); err != nil {
		t.Fatal(err)
	}
	// JavaScript: Date > undefined is false, so only config:true fetches it.
	_, body := do(t, s, call{method: "POST", path: "/mediators/urn:mediator:test/heartbeat", basic: true,
		body: map[string]any{"uptime": 1}})
	if body != "" {
		t.Errorf("pushed before any heartbeat: %q", body)
	}
}

func TestHeartbeatOKWithoutConfig(t *testing.T) {
	s := NewServer()
	defer s.Close()
	m := minimalMediator()
	delete(m, "config")
	do(t, s, call{method: "POST", path: "/mediators", basic: true, body: m})
	_, body := do(t, s, call{method: "POST", path: "/mediators/urn:mediator:test/heartbeat", basic: true,
		body: map[string]any{"uptime": 1, "config": true}})
	if body != "OK" {
		t.Errorf("body %q, want OK", body)
	}
}

func TestCheckConfigMessages(t *testing.T) {
	defs := []any{
		map[string]any{"param": "s", "type": "string"},
		map[string]any{"param": "bs", "type": "bigstring"},
		map[string]any{"param": "b", "type": "bool"},
		map[string]any{"param": "m", "type": "map"},
		map[string]any{"param": "st", "type": "struct", "template": []any{map[string]any{"param": "a", "type": "string"}}},
		map[string]any{"param": "p", "type": "password"},
		map[string]any{"param": "ns", "type": "number", "array": true},
	}
	tests := []struct {
		config map[string]any
		want   string
	}{
		{map[string]any{"s": 1.0}, "Expected config param s to be a string."},
		{map[string]any{"bs": true}, "Expected config param bs to be a large string."},
		{map[string]any{"b": "true"}, "Expected config param b to be a boolean."},
		{map[string]any{"m": "x"}, "Expected config param m to be an object."},
		{map[string]any{"m": map[string]any{"k": 1.0}}, "Expected config param m to only contain string values."},
		{map[string]any{"st": map[string]any{"z": "v"}}, "Field z is not defined in template definition for config param st."},
		{map[string]any{"p": 5.0}, "Expected config param p to be a string representing a password."},
		{map[string]any{"ns": []any{1.0, "2"}}, "Expected config param ns[1] to be a number."},
		{map[string]any{"s": "x", "bs": "y", "b": false, "m": map[string]any{"k": "v"}, "st": map[string]any{"a": 1.0},
			"p": "pw", "ns": []any{1.0}}, ""},
		{map[string]any{"m": nil}, ""}, // typeof null === 'object'
	}
	for _, tc := range tests {
		err := checkConfig(defs, tc.config)
		got := ""
		if err != nil {
			got = strings.TrimPrefix(err.Error(), "ValidationError: ")
		}
		if got != tc.want {
			t.Errorf("checkConfig(%v) = %q, want %q", tc.config, got, tc.want)
		}
	}
}

func TestTransactions(t *testing.T) {
	s := NewServer(WithUser("clerk@example.org", "pw", NotAdmin()))
	defer s.Close()
	id := s.NewTransaction(nil)
	status, _ := do(t, s, call{method: "PUT", path: "/transactions/" + id, basic: true,
		body: map[string]any{"status": "Completed", "$push": map[string]any{"orchestrations": map[string]any{"name": "x"}}}})
	tx, _ := s.Transaction(id)
	if status != 200 || tx["status"] != "Completed" || len(tx["orchestrations"].([]any)) != 1 {
		t.Errorf("update: %d %v", status, tx)
	}
	status, body := do(t, s, call{method: "GET", path: "/transactions/" + id, basic: true})
	if status != 200 || !strings.Contains(body, `"status":"Completed"`) {
		t.Errorf("get: %d %s", status, body)
	}
	req, _ := http.NewRequest("PUT", s.URL+"/transactions/"+id, strings.NewReader(`{"status":"Failed"}`))
	req.SetBasicAuth("clerk@example.org", "pw")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(b) != "User clerk@example.org is not an admin, API access to updateTransaction denied." {
		t.Errorf("non-admin update: %d %s", resp.StatusCode, b)
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	a, _ := c.NewTimer(3 * time.Second)
	b, stopB := c.NewTimer(time.Second)
	if !stopB() || stopB() {
		t.Error("stop should succeed once")
	}
	if d := c.AdvanceToNext(); d != 3*time.Second || !c.Now().Equal(start.Add(3*time.Second)) {
		t.Errorf("advanced %s to %s", d, c.Now())
	}
	select {
	case <-a:
	default:
		t.Error("timer a did not fire")
	}
	select {
	case <-b:
		t.Error("stopped timer fired")
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.BlockUntil(ctx, 1); err == nil {
		t.Error("BlockUntil returned without a pending timer")
	}
	if got := c.Requested(); len(got) != 2 {
		t.Errorf("requested %v", got)
	}
}
