package dhis2test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Requests are recorded with method, path, query, headers minus
// Authorization, body size, status and user; imports are counted.
func TestRequestLog(t *testing.T) {
	srv := newTestServer(t)
	postJSON(t, srv, "?dryRun=true", okBody, withHeader("X-Request-ID", "abc-1"))
	do(t, srv, http.MethodGet, "/api/system/info", "", nil, noAuth())
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.ID != "abc-1" || r.Method != "POST" || r.Path != "/dhis/api/dataValueSets" || r.Query.Get("dryRun") != "true" ||
		r.BodySize != int64(len(okBody)) || r.Status != 200 || r.User != SampleUser || r.Header.Get("Authorization") != "" ||
		r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %+v", r)
	}
	if reqs[1].Status != 401 || reqs[1].User != "" {
		t.Errorf("unauthenticated request %+v", reqs[1])
	}
	if srv.ImportRequests() != 1 {
		t.Errorf("imports %d", srv.ImportRequests())
	}
	srv.ResetRequests()
	if len(srv.Requests()) != 0 || srv.ImportRequests() != 0 {
		t.Error("not reset")
	}
}

type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Cleanup(func()) {}

// A client that ignores the base path (absolute "/api/...") fails the test
// when the server was made WithT (EXEMPLARS.md §5 "a fake API ... with a trap").
func TestStrayRequestFailsTest(t *testing.T) {
	tb := &recordingTB{TB: t}
	srv := NewServer(WithT(tb))
	defer srv.Close()
	base := strings.TrimSuffix(srv.URL, "/dhis")
	res, err := srv.Client().Get(base + "/api/system/info")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 || len(tb.errs) != 1 || !strings.Contains(tb.errs[0], "/api/system/info") {
		t.Errorf("%d %v", res.StatusCode, tb.errs)
	}
}

// GET /api/system/info reports the emulated version.
func TestSystemInfo(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.41.3"))
	r := do(t, srv, http.MethodGet, "/api/system/info", "", nil)
	if r.status != 200 || r.body["version"] != "2.41.3" || r.body["contextPath"] != srv.URL {
		t.Errorf("%d %s", r.status, r.raw)
	}
	if r := do(t, srv, http.MethodGet, "/api/40/system/info", "", nil); r.status != 200 {
		t.Errorf("versioned path %d", r.status)
	}
	if r := do(t, srv, http.MethodGet, "/api/42/system/info", "", nil); r.status != 404 {
		t.Errorf("API version above the server: %d", r.status)
	}
}

// WithNoopStore accepts and counts values without storing them.
func TestNoopStore(t *testing.T) {
	srv := newTestServer(t, WithNoopStore())
	if got := counts(t, summaryOf(t, postJSON(t, srv, "", okBody))); got != [4]int{1, 0, 0, 0} {
		t.Errorf("counts %v", got)
	}
	if srv.Store().Len() != 0 || srv.Store().Accepted() != 1 {
		t.Errorf("len %d accepted %d", srv.Store().Len(), srv.Store().Accepted())
	}
}

// WithBasePath("") serves the API at the root; New + Handler serves without
// a listener (cmd/dhis2-sim's mode); invalid options are errors.
func TestNewAndOptions(t *testing.T) {
	s, err := New(WithBasePath(""), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.URL+"/api/me", nil)
	req.SetBasicAuth(SampleUser, SamplePassword)
	res, err := ts.Client().Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", err, res)
	}
	res.Body.Close()
	for _, o := range []Option{WithVersion("3.0"), WithVersion("2.35"), WithBasePath("dhis"), WithMetadata(nil), WithClock(nil)} {
		if _, err := New(o); err == nil {
			t.Error("invalid option accepted")
		}
	}
}

// Concurrent imports are serialised; every value lands (go test -race).
func TestConcurrentImports(t *testing.T) {
	srv := newTestServer(t)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"dataValues":[{"dataElement":"jsgJ0Wu8FxT","period":"2023%02d","orgUnit":"muaptt0Azn0","value":"%d"}]}`, i+1, i+1)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/dataValueSets", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth(SampleUser, SamplePassword)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
		}()
	}
	wg.Wait()
	if srv.Store().Len() != 12 || len(srv.Requests()) != 12 {
		t.Errorf("%d stored, %d requests", srv.Store().Len(), len(srv.Requests()))
	}
}

// BenchmarkImportNoop measures import throughput with the no-op store.
func BenchmarkImportNoop(b *testing.B) {
	srv := NewServer(WithNoopStore())
	defer srv.Close()
	var sb strings.Builder
	sb.WriteString(`{"dataValues":[`)
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"dataElement":"jsgJ0Wu8FxT","period":"2023%02d","orgUnit":"muaptt0Azn0","value":"%d"}`, i%12+1, i)
	}
	sb.WriteString(`]}`)
	body := sb.String()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/dataValueSets", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(SampleUser, SamplePassword)
		res, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "values/s")
}

// Unknown API paths answer 404 and wrong methods 405, as WebMessages.
func TestNotFoundAndMethod(t *testing.T) {
	srv := newTestServer(t)
	if r := do(t, srv, http.MethodGet, "/api/nothing", "", nil); r.status != 404 || r.body["httpStatusCode"] != float64(404) {
		t.Errorf("404: %d %s", r.status, r.raw)
	}
	r := do(t, srv, http.MethodPut, "/api/system/info", "", nil)
	if r.status != 405 || r.header.Get("Allow") != "GET" || r.body["message"] != "Request method 'PUT' is not supported" {
		t.Errorf("405: %d %s %v", r.status, r.raw, r.header)
	}
}

func TestDefaultVersion(t *testing.T) {
	v, err := ParseVersion(DefaultVersion)
	if err != nil || v.Minor != defaultMinor || newTestServer(t).Version().Minor != defaultMinor {
		t.Errorf("%v %v", v, err)
	}
}

// WithKeepAlive's maxRequests: a connection's last request is answered with
// "Connection: close" and the connection ends, as Tomcat's maxKeepAliveRequests does; one
// client sending requests one at a time then needs a connection per maxRequests requests.
// The server counts the connections it accepted.
func TestKeepAliveClosesAfterMaxRequests(t *testing.T) {
	srv := newTestServer(t, WithKeepAlive(0, 2))
	for i := range 5 {
		if r := do(t, srv, http.MethodGet, "/api/system/info", "", nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	if n := srv.Connections(); n != 3 {
		t.Errorf("5 requests at 2 per connection took %d connections, want 3", n)
	}
	if _, err := New(WithKeepAlive(-time.Second, 0)); err == nil {
		t.Error("New accepted a negative idle timeout")
	}
}
