package dhis2test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawPost sends an import and returns the response or the transport error.
func rawPost(ctx context.Context, srv *Server, path, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(SampleUser, SamplePassword)
	res, err := srv.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

// spec dhis2.md §13 item 13 (faults): a scripted sequence — reset, 503 twice,
// then success — scoped to the import path (also /api/NN/...).
func TestFaultSequence(t *testing.T) {
	srv := newTestServer(t)
	srv.Faults().Add(Fault{Kind: FaultReset, Path: "/api/dataValueSets", Times: 1})
	srv.Faults().FailTimes("/api/dataValueSets", http.StatusServiceUnavailable, 2)
	ctx := context.Background()
	if _, _, err := rawPost(ctx, srv, "/api/dataValueSets", okBody); err == nil {
		t.Fatal("reset: no transport error")
	}
	for i := range 2 {
		res, b, err := rawPost(ctx, srv, "/api/40/dataValueSets", okBody)
		if err != nil || res.StatusCode != 503 || res.Header.Get("Cache-Control") != "no-cache, private" ||
			!bytes.Contains(b, []byte(`"httpStatusCode":503`)) {
			t.Fatalf("503 #%d: %v %v %s", i, err, res, b)
		}
	}
	if srv.Store().Len() != 0 || srv.ImportRequests() != 0 {
		t.Fatal("faulted requests reached the importer")
	}
	res, _, err := rawPost(ctx, srv, "/api/dataValueSets", okBody)
	if err != nil || res.StatusCode != 200 || srv.Store().Len() != 1 {
		t.Fatalf("after the script: %v %v, %d stored", err, res, srv.Store().Len())
	}
	// the script did not touch other paths
	if r := do(t, srv, http.MethodGet, "/api/system/info", "", nil); r.status != 200 {
		t.Errorf("system/info %d", r.status)
	}
	reqs := srv.Requests()
	if len(reqs) != 5 || reqs[0].Fault != "reset" || reqs[0].Status != 0 || reqs[1].Fault != "status" || reqs[1].Status != 503 || reqs[3].Fault != "" {
		t.Errorf("requests %+v", reqs)
	}
	for _, st := range srv.Faults().List() {
		if st.Left != 0 {
			t.Errorf("rule %s left %d", st.ID, st.Left)
		}
	}
}

// 429 with Retry-After, a custom 502 body, and method scoping.
func TestFaultRateLimitAndStatus(t *testing.T) {
	srv := newTestServer(t)
	srv.Faults().Add(Fault{Kind: FaultRateLimit, Path: "/api/dataValueSets", RetryAfter: "7", Times: 1})
	srv.Faults().Add(Fault{Kind: FaultStatus, Status: 502, Body: "<html>Bad Gateway</html>", ContentType: "text/html", Times: 1, Method: http.MethodPost})
	r := postJSON(t, srv, "", okBody)
	if r.status != 429 || r.header.Get("Retry-After") != "7" || r.body["httpStatusCode"] != float64(429) {
		t.Errorf("429: %d %v %s", r.status, r.header, r.raw)
	}
	if r := do(t, srv, http.MethodGet, "/api/me", "", nil); r.status != 200 {
		t.Errorf("GET must pass the POST-only rule: %d", r.status)
	}
	r = postJSON(t, srv, "", okBody)
	if r.status != 502 || string(r.raw) != "<html>Bad Gateway</html>" || r.header.Get("Content-Type") != "text/html" {
		t.Errorf("502: %d %s", r.status, r.raw)
	}
}

// A hang lasts until the client gives up; latency delays but then serves.
func TestFaultHangAndLatency(t *testing.T) {
	srv := newTestServer(t)
	srv.Faults().Add(Fault{Kind: FaultHang, Path: "/api/dataValueSets", Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := rawPost(ctx, srv, "/api/dataValueSets", okBody); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
	srv.Faults().Add(Fault{Kind: FaultLatency, Path: "/api/dataValueSets", Delay: Duration(30 * time.Millisecond), Times: 1})
	start := time.Now()
	res, _, err := rawPost(context.Background(), srv, "/api/dataValueSets", okBody)
	if err != nil || res.StatusCode != 200 || time.Since(start) < 30*time.Millisecond || srv.Store().Len() != 1 {
		t.Errorf("latency: %v %v after %v", err, res, time.Since(start))
	}
}

// AfterHandler: the import is applied but the client sees a failure (the
// case at-least-once delivery must survive); truncate cuts the body.
func TestFaultAfterHandlerAndTruncate(t *testing.T) {
	srv := newTestServer(t)
	srv.Faults().Add(Fault{Kind: FaultStatus, Status: 504, AfterHandler: true, Times: 1})
	r := postJSON(t, srv, "", okBody)
	if r.status != 504 || srv.Store().Len() != 1 || srv.ImportRequests() != 1 {
		t.Errorf("after-handler 504: %d, %d stored", r.status, srv.Store().Len())
	}
	srv.Faults().Add(Fault{Kind: FaultReset, AfterHandler: true, Times: 1})
	if _, _, err := rawPost(context.Background(), srv, "/api/dataValueSets", strings.Replace(okBody, "202401", "202402", 1)); err == nil {
		t.Error("after-handler reset: no error")
	}
	if srv.Store().Len() != 2 {
		t.Errorf("%d stored", srv.Store().Len())
	}
	srv.Faults().Add(Fault{Kind: FaultTruncate, Times: 1})
	_, _, err := rawPost(context.Background(), srv, "/api/dataValueSets", okBody)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncate: %v", err)
	}
}

// The admin API at /__sim/faults drives the same injector over HTTP.
func TestFaultAdminAPI(t *testing.T) {
	srv := newTestServer(t)
	base := strings.TrimSuffix(srv.URL, srv.BasePath())
	post := func(body string) *http.Response {
		res, err := srv.Client().Post(base+"/__sim/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := post(`[{"kind":"status","status":500,"path":"/api/dataValueSets","times":1},{"kind":"latency","delay":"1ms"}]`); res.StatusCode != 201 {
		t.Fatalf("add: %d", res.StatusCode)
	}
	if res := post(`{"kind":"explode"}`); res.StatusCode != 400 {
		t.Errorf("invalid kind: %d", res.StatusCode)
	}
	res, err := srv.Client().Get(base + "/__sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	var states []FaultState
	if err := json.NewDecoder(res.Body).Decode(&states); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(states) != 2 || states[1].Fault.Delay != Duration(time.Millisecond) {
		t.Errorf("list %+v", states)
	}
	if r := postJSON(t, srv, "", okBody); r.status != 500 {
		t.Errorf("injected 500: %d", r.status)
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/__sim/faults", nil)
	if res, err := srv.Client().Do(req); err != nil || res.StatusCode != 204 {
		t.Fatalf("clear: %v %v", err, res)
	}
	if len(srv.Faults().List()) != 0 {
		t.Error("faults not cleared")
	}
	if res, err := srv.Client().Get(base + "/__sim/requests"); err != nil || res.StatusCode != 200 {
		t.Errorf("requests: %v %v", err, res)
	}
}
