package dhis2

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fixedNow is the client clock in tests that read an HTTP-date.
var fixedNow = time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)

// TestClassification replays statuses and bodies and checks the decision of each: the
// table of the package documentation.
func TestClassification(t *testing.T) {
	type want struct {
		kind                        Kind
		unauthorized, tooLarge      bool
		retryAfter                  time.Duration
		code, msg                   string
		noBody                      bool // the *Error carries no Body
		resultAttached, hasLocation bool
	}
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		headers     []string
		want        want
	}{
		{"400 bad request", 400, jsonCT, `{"httpStatus":"Bad Request","httpStatusCode":400,"status":"ERROR","message":"Invalid request"}`, nil,
			want{kind: KindPermanent, msg: "Invalid request"}},
		{"400 token checksum (2.43)", 400, jsonCT, body400Token, nil,
			want{kind: KindPermanent, unauthorized: true}},
		{"401 WebMessage", 401, jsonCT, body401JSON, []string{"WWW-Authenticate", `Basic realm="DHIS2"`},
			want{kind: KindPermanent, unauthorized: true, msg: "Unauthorized"}},
		{"401 Tomcat HTML", 401, "text/html;charset=utf-8", body401HTML, nil,
			want{kind: KindPermanent, unauthorized: true, msg: "HTTP Status 401 – Unauthorized"}},
		{"401 unknown token", 401, jsonCT, body401Token, nil,
			want{kind: KindPermanent, unauthorized: true, msg: "The API token does not exists."}},
		{"403 missing authority", 403, jsonCT, body403JSON, nil,
			want{kind: KindPermanent, unauthorized: true, code: "E1006", msg: "proper permissions"}},
		{"404 wrong base path", 404, "text/html", "<html><head><title>Not Found</title></head></html>", nil,
			want{kind: KindPermanent, msg: "Not Found"}},
		{"405", 405, "", "", nil, want{kind: KindPermanent, noBody: true}},
		{"408", 408, "", "", nil, want{kind: KindTransient, noBody: true}},
		{"409 without a summary", 409, jsonCT, body409NotSummary, nil,
			want{kind: KindPermanent, code: "E1004", msg: "Ad-hoc job creation failed"}},
		{"409 HTML", 409, "text/html", "<html><head><title>Conflict</title></head></html>", nil,
			want{kind: KindPermanent, msg: "Conflict"}},
		{"413 from nginx", 413, "text/html", "<html>\r\n<head><title>413 Request Entity Too Large</title></head></html>", nil,
			want{kind: KindPermanent, tooLarge: true, msg: "413 Request Entity Too Large"}},
		{"415", 415, jsonCT, `{"httpStatus":"Unsupported Media Type","httpStatusCode":415,"status":"ERROR","message":"Content type 'text/csv' not supported"}`, nil,
			want{kind: KindPermanent, msg: "not supported"}},
		{"425", 425, "", "", nil, want{kind: KindTransient, noBody: true}},
		{"429 Retry-After seconds", 429, "text/plain", "slow down", []string{"Retry-After", "120"},
			want{kind: KindTransient, retryAfter: 2 * time.Minute, msg: "slow down"}},
		{"429 Retry-After HTTP-date", 429, "", "", []string{"Retry-After", fixedNow.Add(90 * time.Second).Format(http.TimeFormat)},
			want{kind: KindTransient, retryAfter: 90 * time.Second, noBody: true}},
		{"429 Retry-After in the past", 429, "", "", []string{"Retry-After", fixedNow.Add(-time.Hour).Format(http.TimeFormat)},
			want{kind: KindTransient, noBody: true}},
		{"500 WebMessage", 500, jsonCT, `{"httpStatus":"Internal Server Error","httpStatusCode":500,"status":"ERROR","message":"java.lang.NullPointerException"}`, nil,
			want{kind: KindTransient, msg: "NullPointerException"}},
		{"501", 501, "", "", nil, want{kind: KindPermanent, noBody: true}},
		{"502 proxy HTML", 502, "text/html", body502Proxy, nil,
			want{kind: KindTransient, msg: "502 Bad Gateway"}},
		{"503 with Retry-After", 503, "text/html", "<html><body><h1>Maintenance</h1></body></html>", []string{"Retry-After", "30"},
			want{kind: KindTransient, retryAfter: 30 * time.Second, msg: "Maintenance"}},
		{"504", 504, "text/html", "<html><head><title>504 Gateway Time-out</title></head></html>", nil,
			want{kind: KindTransient, msg: "504 Gateway Time-out"}},
		{"302 to the login page", 302, "", "", []string{"Location", "https://hmis.example.org/dhis-web-commons/security/login.action"},
			want{kind: KindPermanent, unauthorized: true, msg: "login page", noBody: true, hasLocation: true}},
		{"301 to https", 301, "", "", []string{"Location", "https://hmis.example.org/hmis/api/dataValueSets"},
			want{kind: KindPermanent, msg: "set BaseURL", noBody: true, hasLocation: true}},
		{"200 maintenance page", 200, "text/html", "<html><head><title>Down for maintenance</title></head></html>", nil,
			want{kind: KindTransient, msg: "Down for maintenance"}},
		{"200 JSON that is no summary", 200, jsonCT, `{"pager":{"page":1},"dataElements":[]}`, nil,
			want{kind: KindPermanent, msg: "not an import summary"}},
		{"200 empty body", 200, "", "", nil, want{kind: KindTransient, noBody: true}},
		{"500 with an ERROR summary", 500, jsonCT, bodyC, nil,
			want{kind: KindTransient, resultAttached: true, noBody: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST /api/dataValueSets", reply(tt.status, tt.contentType, tt.body, tt.headers...))
			c := newTestClient(t, f.url())
			c.now = func() time.Time { return fixedNow }
			r, err := c.ImportDataValues(context.Background(), jsonPayload(), ImportOptions{})
			if r != nil {
				t.Errorf("result %+v, want none", r)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			w := tt.want
			if e.Kind != w.kind {
				t.Errorf("Kind = %v, want %v (%v)", e.Kind, w.kind, err)
			}
			if errors.Is(err, ErrTransient) != (w.kind == KindTransient) || errors.Is(err, ErrPermanent) != (w.kind == KindPermanent) {
				t.Errorf("sentinels disagree with Kind %v", e.Kind)
			}
			if errors.Is(err, ErrUnauthorized) != w.unauthorized {
				t.Errorf("ErrUnauthorized = %v, want %v", !w.unauthorized, w.unauthorized)
			}
			if errors.Is(err, ErrTooLarge) != w.tooLarge {
				t.Errorf("ErrTooLarge = %v, want %v", !w.tooLarge, w.tooLarge)
			}
			if errors.Is(err, ErrTimeout) {
				t.Error("matches ErrTimeout")
			}
			if e.HTTPStatus != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", e.HTTPStatus, tt.status)
			}
			if e.RetryAfter != w.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, w.retryAfter)
			}
			if e.Code != w.code {
				t.Errorf("Code = %q, want %q", e.Code, w.code)
			}
			if !strings.Contains(e.Message, w.msg) {
				t.Errorf("Message = %q, want it to contain %q", e.Message, w.msg)
			}
			if (len(e.Body) == 0) != w.noBody {
				t.Errorf("Body = %q", e.Body)
			}
			if (e.Result != nil) != w.resultAttached {
				t.Errorf("Result = %+v", e.Result)
			}
			if w.hasLocation && !strings.Contains(e.Message, "hmis.example.org") {
				t.Errorf("Message %q does not name the Location", e.Message)
			}
			if !strings.Contains(err.Error(), "importing data values") || !strings.Contains(err.Error(), w.kind.String()) {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := fixedNow
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "17", 17 * time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"huge", "99999999999999", maxRetryAfter},
		{"IMF-fixdate", "Fri, 15 Mar 2024 10:05:00 GMT", 5 * time.Minute},
		{"RFC 850", "Friday, 15-Mar-24 10:00:30 GMT", 30 * time.Second},
		{"asctime", "Fri Mar 15 10:01:00 2024", time.Minute},
		{"past date", "Fri, 15 Mar 2024 09:00:00 GMT", 0},
		{"far future date", "Fri, 15 Mar 2030 09:00:00 GMT", maxRetryAfter},
		{"garbage", "soon", 0},
		{"spaces", "  12 ", 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	if KindOf(nil) != 0 || KindOf(context.Canceled) != 0 {
		t.Error("unclassified errors must give 0")
	}
	wrapped := errors.Join(errors.New("context"), &Error{Kind: KindTransient})
	if KindOf(wrapped) != KindTransient || !errors.Is(wrapped, ErrTransient) {
		t.Error("wrapped *Error not found")
	}
}
