package dhis2test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Helpers for the tests of the read, analytics, completeness, messaging and
// exchange endpoints (export_test.go, analytics_test.go, ...).

// epNow is the fixed clock of these tests: Friday 2024-03-15 10:00 UTC.
var epNow = time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)

// epServer starts an emulator on the bundled sample with the fixed clock.
func epServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	return NewServer(append([]Option{WithT(t), WithClock(func() time.Time { return epNow })}, opts...)...)
}

// epResp is a response with its body.
type epResp struct {
	status int
	header http.Header
	raw    []byte
}

// json decodes the body into a generic value.
func (r epResp) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.raw, &v); err != nil {
		t.Fatalf("HTTP %d: body is not JSON: %v\n%s", r.status, err, r.raw)
	}
	return v
}

// obj decodes the body as a JSON object.
func (r epResp) obj(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("HTTP %d: body is not a JSON object: %s", r.status, r.raw)
	}
	return m
}

type epOpt = reqOpt

func epAs(user, pass string) epOpt { return withBasic(user, pass) }

func epHeader(k, v string) epOpt { return withHeader(k, v) }

// epDo sends a request as the sample admin (unless an option changes it).
func epDo(t *testing.T, srv *Server, method, path, contentType, body string, opts ...epOpt) epResp {
	t.Helper()
	r := do(t, srv, method, path, contentType, []byte(body), opts...)
	return epResp{status: r.status, header: r.header, raw: r.raw}
}

func epGet(t *testing.T, srv *Server, path string, opts ...epOpt) epResp {
	t.Helper()
	return epDo(t, srv, http.MethodGet, path, "", "", opts...)
}

// epWantStatus fails the test when the status differs.
func epWantStatus(t *testing.T, r epResp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("HTTP %d, want %d: %s", r.status, want, r.raw)
	}
}

// epWantError checks a WebMessage error (status, errorCode, message).
func epWantError(t *testing.T, r epResp, status int, code, message string) {
	t.Helper()
	epWantStatus(t, r, status)
	b := r.obj(t)
	if b["httpStatusCode"] != float64(status) || b["status"] != "ERROR" {
		t.Errorf("WebMessage = %s", r.raw)
	}
	if code != "" && b["errorCode"] != code {
		t.Errorf("errorCode = %v, want %s (%s)", b["errorCode"], code, r.raw)
	}
	if message != "" && b["message"] != message {
		t.Errorf("message = %q\nwant      %q", b["message"], message)
	}
}

// epValues returns the dataValues of a data value set body.
func epValues(t *testing.T, r epResp) []map[string]any {
	t.Helper()
	epWantStatus(t, r, http.StatusOK)
	list, ok := r.obj(t)["dataValues"].([]any)
	if !ok {
		t.Fatalf("no dataValues: %s", r.raw)
	}
	out := make([]map[string]any, len(list))
	for i, v := range list {
		out[i] = v.(map[string]any)
	}
	return out
}

// epCell indexes analytics values by "dataElement|period|orgUnit|coc|aoc"
// (absent combos are empty) and fails on a repeated key.
func epCells(t *testing.T, values []map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range values {
		s := func(k string) string { x, _ := v[k].(string); return x }
		key := strings.Join([]string{s("dataElement"), s("period"), s("orgUnit"), s("categoryOptionCombo"), s("attributeOptionCombo")}, "|")
		if _, dup := out[key]; dup {
			t.Errorf("duplicate row %s", key)
		}
		val, ok := v["value"].(string)
		if !ok {
			t.Errorf("value of %s is not a string: %#v", key, v["value"])
		}
		out[key] = val
	}
	return out
}

// epCompact compacts a JSON document for textual comparison.
func epCompact(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("compact %s: %v", s, err)
	}
	return buf.String()
}

// epKey resolves a data value key from codes or UIDs.
func epKey(t *testing.T, srv *Server, de, pe, ou, coc, aoc string) Key {
	t.Helper()
	k, err := srv.Key(de, pe, ou, coc, aoc)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
