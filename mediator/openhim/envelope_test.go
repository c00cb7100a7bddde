package openhim_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
)

func TestEnvelopeGolden(t *testing.T) {
	received := time.Date(2025, 3, 1, 9, 30, 0, 123456789, time.FixedZone("EAT", 3*3600))
	sent := received.Add(40 * time.Millisecond)
	answered := sent.Add(310 * time.Millisecond)

	// An outbound DHIS2 import with credentials in the header and in the URL.
	u, _ := url.Parse("https://admin:district@hmis.example.org/api/dataValueSets?dataElementIdScheme=CODE&async=false")
	out := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{
		"Authorization": {"ApiToken d2pat_abcdefghijklmnopqrstuvwxyz"},
		"Content-Type":  {"application/json"},
	}}
	dhis2Resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{
		"Content-Type": {"application/json;charset=UTF-8"},
		"Set-Cookie":   {"JSESSIONID=abc; Path=/"},
	}}
	imported := openhim.NewOrchestration("deliver hmis",
		openhim.RequestFromHTTP(out, []byte(`{"dataValues":[]}`), sent),
		ptr(openhim.ResponseFromHTTP(dhis2Resp, []byte(`{"status":"OK","importCount":{"imported":2}}`), answered)),
		nil)
	failed := openhim.NewOrchestration("deliver backup",
		openhim.RequestFromHTTP(&http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "http", Host: "backup:8080",
			Path: "/api/dataValueSets"}}, nil, sent),
		nil, errors.New("dial tcp: connection refused"))

	tests := []struct {
		name string
		env  *openhim.Envelope
	}{
		{"envelope_successful.golden.json",
			openhim.NewEnvelope("urn:mediator:tally", openhim.StatusSuccessful,
				openhim.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}},
					[]byte(`{"httpStatus":"OK","status":"OK"}`), answered)).
				AddOrchestration(imported, failed).
				SetProperty("batches", 1).SetProperty("source", "cht")},
		{"envelope_processing.golden.json",
			openhim.NewEnvelope("urn:mediator:tally", openhim.StatusProcessing,
				openhim.NewResponse(http.StatusAccepted, nil, []byte(`{"status":"OK","description":"stored"}`), received))},
		{"envelope_failed.golden.json",
			func() *openhim.Envelope {
				e := openhim.NewEnvelope("urn:mediator:tally", openhim.StatusFailed,
					openhim.NewResponse(http.StatusServiceUnavailable, nil, []byte("stream unavailable"), received))
				e.Error = &openhim.ErrorDetails{Message: "jetstream: no responders"}
				return e
			}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, indentJSON(t, tc.env))
			b, _ := json.Marshal(tc.env)
			for _, secret := range []string{"d2pat_", "district", "JSESSIONID"} {
				if strings.Contains(string(b), secret) {
					t.Errorf("envelope leaks %q: %s", secret, b)
				}
			}
		})
	}
}

func TestEnvelopeWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	env := openhim.NewEnvelope("urn:mediator:tally", openhim.StatusCompleted,
		openhim.NewResponse(http.StatusConflict, nil, []byte(`{"status":"WARNING"}`), time.Unix(0, 0)))
	if err := env.Write(rec); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusConflict || rec.Header().Get("Content-Type") != openhim.ContentType {
		t.Errorf("got %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var back map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x-mediator-urn", "status", "response", "orchestrations"} {
		if _, ok := back[k]; !ok {
			t.Errorf("envelope lacks %q: %s", k, rec.Body)
		}
	}
}

func TestBodyTruncation(t *testing.T) {
	big := strings.Repeat("é", openhim.MaxBodyBytes) // 2 bytes each
	r := openhim.NewResponse(200, nil, []byte(big), time.Unix(0, 0))
	if !strings.HasSuffix(r.Body, "\n[truncated ...]") || len(r.Body) > openhim.MaxBodyBytes+32 {
		t.Fatalf("body of %d bytes not truncated", len(r.Body))
	}
	if !json.Valid([]byte(`"` + strings.TrimSuffix(r.Body, "\n[truncated ...]") + `"`)) {
		t.Error("truncation split a UTF-8 sequence")
	}
}

func TestTransactionIDAndRerun(t *testing.T) {
	tests := []struct {
		name          string
		headers       map[string]string
		tx, parent    string
		task          string
		rerun         bool
		wantTxPresent bool
	}{
		{name: "direct call"},
		{name: "through the core", headers: map[string]string{"X-OpenHIM-TransactionID": "65f1aa00000000000000000a"},
			tx: "65f1aa00000000000000000a"},
		{name: "rerun (Node sends the header names as written)", headers: map[string]string{
			"X-OpenHIM-TransactionID": "65f1aa00000000000000000b", "parentID": "65f1aa00000000000000000a", "taskID": "65f1bb000000000000000001"},
			tx: "65f1aa00000000000000000b", parent: "65f1aa00000000000000000a", task: "65f1bb000000000000000001", rerun: true},
		{name: "rerun, lower-case header names", headers: map[string]string{
			"x-openhim-transactionid": "65f1aa00000000000000000c", "parentid": "65f1aa00000000000000000a"},
			tx: "65f1aa00000000000000000c", parent: "65f1aa00000000000000000a", rerun: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/ingest/cht", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v) // Go canonicalises; Node sends "parentID" as written
			}
			if got := openhim.TransactionID(r); got != tc.tx {
				t.Errorf("TransactionID = %q, want %q", got, tc.tx)
			}
			parent, task, ok := openhim.Rerun(r)
			if parent != tc.parent || task != tc.task || ok != tc.rerun {
				t.Errorf("Rerun = %q %q %v", parent, task, ok)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestNewRequest: an orchestration's request from a URL, shaped as the core's RequestDef
// (spec §8.2; CORE src/model/transactions.js: host and port are strings, headers an object,
// timestamp required).
func TestNewRequest(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 30, 0, 123456789, time.FixedZone("EAT", 3*3600))
	tests := []struct {
		url                           string
		host, port, path, querystring string
	}{
		{"https://hmis.example.org/api/dataValueSets?async=true", "hmis.example.org", "443", "/api/dataValueSets", "async=true"},
		{"http://dhis2:8080/dhis/api/dataValueSets", "dhis2", "8080", "/dhis/api/dataValueSets", ""},
		{"http://dhis2", "dhis2", "80", "/", ""},
		{"https://[fd00::7]:8443/api/dataValueSets", "fd00::7", "8443", "/api/dataValueSets", ""},
		{"https://admin:district@hmis.example.org/api/dataValueSets", "hmis.example.org", "443", "/api/dataValueSets", ""},
	}
	for _, tc := range tests {
		req, err := openhim.NewRequest(http.MethodPost, tc.url, nil, []byte(`{"dataValues":[]}`), at)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if req.Host != tc.host || req.Port != tc.port || req.Path != tc.path || req.Querystring != tc.querystring ||
			req.Method != "POST" || req.Body != `{"dataValues":[]}` || !req.Timestamp.Equal(at.Truncate(time.Millisecond)) ||
			req.Timestamp.Location() != time.UTC {
			t.Errorf("%s: %+v", tc.url, req)
		}
		b, _ := json.Marshal(req)
		if strings.Contains(string(b), "district") || strings.Contains(string(b), `"headers":null`) {
			t.Errorf("%s: %s", tc.url, b)
		}
		if strings.Contains(tc.url, "@") && req.Headers["Authorization"] != "Basic [redacted]" {
			t.Errorf("%s: URL credentials not shown as redacted Basic: %v", tc.url, req.Headers)
		}
	}
	for _, bad := range []string{"hmis.example.org/api", "ftp://hmis/api", "https://admin:district@%zz"} {
		_, err := openhim.NewRequest(http.MethodPost, bad, nil, nil, at)
		if err == nil || strings.Contains(err.Error(), "district") {
			t.Errorf("NewRequest(%q) = %v, want an error without the password", bad, err)
		}
	}
}

// TestHeadersAreNeverNull: the core's schema types headers as an object (RequestDef and
// ResponseDef in CORE src/model/transactions.js); a Request or Response built by hand with
// nil headers is still sent with {}.
func TestHeadersAreNeverNull(t *testing.T) {
	o := openhim.NewOrchestration("DHIS2 import: hmis",
		openhim.Request{Path: "/api/dataValueSets", Method: "POST", Body: "a&b<c>", Timestamp: time.Unix(0, 0)},
		&openhim.Response{Status: 200, Body: "ok"}, nil)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "null") || strings.Count(string(b), `"headers":{}`) != 2 {
		t.Errorf("orchestration JSON: %s", b)
	}
	var back openhim.Orchestration
	if err := json.Unmarshal(b, &back); err != nil || back.Request.Body != "a&b<c>" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}
