package openhim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// ContentType marks a response as a mediator envelope; the core then unwraps `response` for
// the client and stores the rest in its transaction log (spec §8).
const ContentType = "application/json+openhim"

// Headers the core adds to requests it routes to a mediator (spec §8.5, §10.3).
const (
	// HeaderTransactionID carries the id of the core's transaction for this request.
	HeaderTransactionID = "X-OpenHIM-TransactionID"
	// HeaderClientID names the authenticated client.
	HeaderClientID = "X-OpenHIM-ClientID"
	// HeaderParentID is set on a rerun: the id of the original transaction.
	HeaderParentID = "parentID"
	// HeaderTaskID is set on a rerun: the id of the core's rerun task.
	HeaderTaskID = "taskID"
)

// MaxBodyBytes bounds each body copied into an orchestration; longer ones are truncated
// with the core's own marker. The core caps all bodies of a transaction at 15 MB anyway.
const MaxBodyBytes = 64 << 10

const truncatedMarker = "\n[truncated ...]"

// Status is a transaction status. Set in an envelope it overrides the core's own computation.
type Status string

// Transaction statuses a mediator may report.
const (
	StatusProcessing          Status = "Processing"
	StatusSuccessful          Status = "Successful"
	StatusCompleted           Status = "Completed"
	StatusCompletedWithErrors Status = "Completed with error(s)"
	StatusFailed              Status = "Failed"
)

// Envelope is the `application/json+openhim` response body.
type Envelope struct {
	URN            string          `json:"x-mediator-urn"`
	Status         Status          `json:"status,omitempty"`
	Response       Response        `json:"response"`
	Orchestrations []Orchestration `json:"orchestrations"`
	Properties     map[string]any  `json:"properties,omitempty"`
	// Error makes the core queue the transaction for auto-retry when the channel enables it.
	Error *ErrorDetails `json:"error,omitempty"`
}

// Response is what the core returns to its client, and the shape of an orchestration's
// response: the core's ResponseDef {status, headers, body, timestamp} (spec §8.2; CORE
// src/model/transactions.js). Nil Headers are sent as {}, never null.
type Response struct {
	Status    int               `json:"status"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	Timestamp time.Time         `json:"timestamp"`
}

// MarshalJSON sends nil Headers as an empty object.
func (r Response) MarshalJSON() ([]byte, error) {
	type plain Response
	r.Headers = headersObject(r.Headers)
	return marshalPlain(plain(r))
}

// headersObject is h, or an empty map for nil: the core's schema types headers as an object.
func headersObject(h map[string]string) map[string]string {
	if h == nil {
		return map[string]string{}
	}
	return h
}

// Request is an orchestration's request: the core's RequestDef {host, port, path, headers,
// querystring, body, method, timestamp} (spec §8.2; CORE src/model/transactions.js), where
// port is a string and timestamp is required. Nil Headers are sent as {}, never null. Build
// one with NewRequest (from a URL) or RequestFromHTTP rather than by hand, so the host and
// port are split the way the console shows them.
type Request struct {
	Host        string            `json:"host,omitempty"`
	Port        string            `json:"port,omitempty"`
	Path        string            `json:"path"`
	Headers     map[string]string `json:"headers"`
	Querystring string            `json:"querystring"`
	Body        string            `json:"body"`
	Method      string            `json:"method"`
	Timestamp   time.Time         `json:"timestamp"`
}

// MarshalJSON sends nil Headers as an empty object.
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	r.Headers = headersObject(r.Headers)
	return marshalPlain(plain(r))
}

// marshalPlain encodes v without HTML escaping, so query strings and bodies stay readable
// in the console.
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Orchestration records one call Tally made while handling a transaction (e.g. a DHIS2 import).
type Orchestration struct {
	Name     string        `json:"name"`
	Group    string        `json:"group,omitempty"`
	Request  Request       `json:"request"`
	Response *Response     `json:"response,omitempty"`
	Error    *ErrorDetails `json:"error,omitempty"`
}

// ErrorDetails is an error as the core stores it.
type ErrorDetails struct {
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

// NewEnvelope starts an envelope for the registered urn with the response the core's client
// should receive. The response status is also used as the HTTP status by Write.
func NewEnvelope(urn string, status Status, resp Response) *Envelope {
	return &Envelope{URN: urn, Status: status, Response: resp, Orchestrations: []Orchestration{}}
}

// AddOrchestration appends orchestrations.
func (e *Envelope) AddOrchestration(o ...Orchestration) *Envelope {
	e.Orchestrations = append(e.Orchestrations, o...)
	return e
}

// SetProperty sets a free key/value shown with the transaction in the console.
func (e *Envelope) SetProperty(key string, value any) *Envelope {
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	e.Properties[key] = value
	return e
}

// Write sends the envelope with ContentType and the wrapped response's status.
func (e *Envelope) Write(w http.ResponseWriter) error {
	b, err := marshalPlain(e)
	if err != nil {
		return fmt.Errorf("openhim: encode envelope: %w", err)
	}
	w.Header().Set("Content-Type", ContentType)
	status := e.Response.Status
	if status < 100 || status > 999 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("openhim: write envelope: %w", err)
	}
	return nil
}

// NewResponse builds a Response; body is truncated to MaxBodyBytes and credentials in
// headers are redacted.
func NewResponse(status int, header http.Header, body []byte, at time.Time) Response {
	return Response{Status: status, Headers: flattenHeaders(header), Body: truncateBody(body), Timestamp: stamp(at)}
}

// RequestFromHTTP describes an outbound request for an orchestration. body is what was sent
// (the request's own Body is not read). Authorization, Cookie and similar headers are redacted
// and URL credentials dropped.
func RequestFromHTTP(r *http.Request, body []byte, at time.Time) Request {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if r.URL != nil && r.URL.User != nil && h.Get("Authorization") == "" {
		h.Set("Authorization", "Basic [redacted]") // the transport sends URL credentials as Basic
	}
	return requestFromURL(r.Method, r.URL, h, body, at)
}

// NewRequest describes a call Tally made to rawURL, for an orchestration: the host name and
// the port are split as the core stores them (the scheme's default port, 80 or 443, when
// the URL names none), the path and query string are separated, credentials in header are
// redacted and body is truncated to MaxBodyBytes. rawURL must be an absolute http(s) URL,
// e.g. a target's base URL joined with "/api/dataValueSets".
func NewRequest(method, rawURL string, header http.Header, body []byte, at time.Time) (Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// A *url.Error repeats the URL, credentials included; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Request{}, fmt.Errorf("openhim: orchestration url %q: %w", redactURL(rawURL), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return Request{}, fmt.Errorf("openhim: orchestration url %q: want an absolute http or https URL", u.Redacted())
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if u.User != nil && h.Get("Authorization") == "" {
		h.Set("Authorization", "Basic [redacted]")
	}
	return requestFromURL(method, u, h, body, at), nil
}

// redactURL hides credentials in a URL that could not be parsed.
func redactURL(raw string) string {
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			return scheme + "://[redacted]@" + rest[at+1:]
		}
	}
	return raw
}

func requestFromURL(method string, u *url.URL, h http.Header, body []byte, at time.Time) Request {
	req := Request{Method: method, Headers: flattenHeaders(h), Body: truncateBody(body), Timestamp: stamp(at)}
	if u == nil {
		return req
	}
	req.Host, req.Port = hostPort(u)
	req.Path = u.EscapedPath()
	if req.Path == "" {
		req.Path = "/"
	}
	req.Querystring = u.RawQuery
	return req
}

// hostPort splits u's host into a host name (without IPv6 brackets) and a port, the
// scheme's default port when u names none.
func hostPort(u *url.URL) (host, port string) {
	host, port = u.Hostname(), u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return host, port
}

// ResponseFromHTTP describes a received response for an orchestration; body is what was read.
func ResponseFromHTTP(r *http.Response, body []byte, at time.Time) Response {
	return NewResponse(r.StatusCode, r.Header, body, at)
}

// NewOrchestration pairs a request with its response, or with err when none was received.
func NewOrchestration(name string, req Request, resp *Response, err error) Orchestration {
	o := Orchestration{Name: name, Request: req, Response: resp}
	if err != nil {
		o.Error = &ErrorDetails{Message: err.Error()}
	}
	return o
}

// TransactionID returns the core's transaction id for a request routed through the OpenHIM,
// or "" for a request that did not come through the core.
//
// How Tally should use it:
//   - Record it with the batches of the request (Batch.TransactionID), and answer with an
//     Envelope only when it is present. When delivery finishes asynchronously, report the
//     outcome with Client.ReportOutcome under this id.
//   - Never derive message ids from it. A rerun from the console (spec §10.2-10.3) replays the
//     stored request to Tally as a new transaction: a new X-OpenHIM-TransactionID, the same
//     path, query and body, plus the headers "parentID" (the original transaction id) and
//     "taskID" (see Rerun). Because Tally's message ids are derived from body content, a
//     rerun inside JetStream's duplicate window is the same Tally transaction: Tally replays
//     its dead letters when it failed, and otherwise answers with its status and a property
//     saying it is a duplicate, so the operator sees why nothing new happened. After the
//     window the replay is delivered again, which DHIS2's upsert makes harmless.
//   - Auto-retry (channel setting) is triggered by an envelope with Error set; it also
//     arrives as a rerun.
func TransactionID(r *http.Request) string {
	return strings.TrimSpace(r.Header.Get(HeaderTransactionID))
}

// Rerun reports whether r is a rerun of an earlier transaction, returning the original
// transaction id and the rerun task id. The core adds these headers when replaying.
func Rerun(r *http.Request) (parentID, taskID string, ok bool) {
	parentID = strings.TrimSpace(r.Header.Get(HeaderParentID))
	taskID = strings.TrimSpace(r.Header.Get(HeaderTaskID))
	return parentID, taskID, parentID != ""
}

// isSensitiveHeader reports headers replaced by "[redacted]" (keeping an auth scheme word)
// in orchestrations and responses stored by the core.
func isSensitiveHeader(canonicalKey string) bool {
	switch canonicalKey {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "Auth-Token", "Auth-Salt", "X-Api-Key":
		return true
	}
	return false
}

func flattenHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ck := http.CanonicalHeaderKey(k)
		v := strings.Join(h[k], ", ")
		if isSensitiveHeader(ck) {
			v = redactCredential(ck, v)
		}
		out[ck] = v
	}
	return out
}

func redactCredential(key, v string) string {
	if key == "Authorization" || key == "Proxy-Authorization" {
		if scheme, _, ok := strings.Cut(strings.TrimSpace(v), " "); ok && scheme != "" && !strings.HasPrefix(v, "[") {
			return scheme + " [redacted]"
		}
	}
	return "[redacted]"
}

func truncateBody(b []byte) string {
	if len(b) <= MaxBodyBytes {
		return string(b)
	}
	cut := MaxBodyBytes
	// Do not split a UTF-8 sequence.
	for cut > 0 && b[cut]&0xC0 == 0x80 {
		cut--
	}
	return string(b[:cut]) + truncatedMarker
}

// stamp normalises a timestamp to what the core stores: UTC, millisecond precision.
func stamp(t time.Time) time.Time {
	return t.UTC().Truncate(time.Millisecond)
}
