package dhis2test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixedNow is the default test clock: 2024-03-15 10:00 UTC.
var fixedNow = time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return fixedNow }

// newTestServer starts an emulator tied to t with a fixed clock.
func newTestServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	return NewServer(append([]Option{WithT(t), WithClock(fixedClock)}, opts...)...)
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func withBasic(u, p string) reqOpt { return func(r *http.Request) { r.SetBasicAuth(u, p) } }

func noAuth() reqOpt { return func(r *http.Request) { r.Header.Del("Authorization") } }

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request to srv.URL+path as the sample admin unless opts change it.
func do(t *testing.T, srv *Server, method, path, contentType string, body []byte, opts ...reqOpt) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.SetBasicAuth(SampleUser, SamplePassword)
	for _, o := range opts {
		o(req)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return r
}

func postJSON(t *testing.T, srv *Server, query string, body string, opts ...reqOpt) response {
	t.Helper()
	return do(t, srv, http.MethodPost, "/api/dataValueSets"+query, "application/json", []byte(body), opts...)
}

// summaryOf returns the ImportSummary of a WebMessage or bare body.
func summaryOf(t *testing.T, r response) map[string]any {
	t.Helper()
	if r.body == nil {
		t.Fatalf("no JSON body (HTTP %d): %s", r.status, r.raw)
	}
	if resp, ok := r.body["response"].(map[string]any); ok {
		return resp
	}
	return r.body
}

// counts returns importCount as [imported, updated, deleted, ignored] (the
// order of conformance README §3).
func counts(t *testing.T, sum map[string]any) [4]int {
	t.Helper()
	ic, ok := sum["importCount"].(map[string]any)
	if !ok {
		t.Fatalf("no importCount in %v", sum)
	}
	n := func(k string) int { return int(ic[k].(float64)) }
	return [4]int{n("imported"), n("updated"), n("deleted"), n("ignored")}
}

func conflictsOf(sum map[string]any) []map[string]any {
	var out []map[string]any
	for _, c := range sum["conflicts"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

func intsOf(v any) []int {
	var out []int
	for _, x := range v.([]any) {
		out = append(out, int(x.(float64)))
	}
	return out
}

// conformanceDir locates shared/conformance next to the module (CI has the
// same layout); tests skip when it is absent, and fail when CI=true like
// conformance.Dir (which this package's own tests cannot import: it imports
// dhis2test).
func conformanceDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "conformance")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("conformance fixtures not found at %s", dir)
		}
		t.Skipf("conformance fixtures not found at %s", dir)
	}
	return dir
}

func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(conformanceDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustKey(t *testing.T, srv *Server, de, pe, ou, coc, aoc string) Key {
	t.Helper()
	k, err := srv.Key(de, pe, ou, coc, aoc)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
