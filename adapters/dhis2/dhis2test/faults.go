package dhis2test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind names what an injected fault does.
type FaultKind string

// Fault kinds.
const (
	// FaultPass lets matching requests through untouched (use it first in a
	// sequence to fail only later requests).
	FaultPass FaultKind = "pass"
	// FaultLatency waits Delay, then serves the request normally.
	FaultLatency FaultKind = "latency"
	// FaultStatus answers Status (default 503) with Body (default a DHIS2
	// WebMessage) without running the handler.
	FaultStatus FaultKind = "status"
	// FaultRateLimit answers 429 with Retry-After (default "1").
	FaultRateLimit FaultKind = "ratelimit"
	// FaultReset closes the TCP connection without a response (RST).
	FaultReset FaultKind = "reset"
	// FaultHang never answers: the request waits until the client gives up
	// (its context ends) or the server closes.
	FaultHang FaultKind = "hang"
	// FaultTruncate runs the handler, sends the headers and half of the body,
	// then closes the connection.
	FaultTruncate FaultKind = "truncate"
)

// Duration is a time.Duration that reads and writes JSON as "250ms" (or a
// number of nanoseconds).
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a string like \"250ms\" or nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}

// Fault describes one injected fault rule. Rules are tried in the order they
// were added; the first matching rule with budget left applies, so rules
// added in sequence form a script ("reset once, then 503 twice, then pass").
type Fault struct {
	Kind FaultKind `json:"kind"`
	// Path is a prefix of the request path relative to the base path, with
	// any API version removed: "/api/dataValueSets" also matches
	// "/api/40/dataValueSets". Empty matches every API request.
	Path string `json:"path,omitempty"`
	// Method restricts the rule to one HTTP method (empty: any).
	Method string `json:"method,omitempty"`
	// Times is how many requests the rule applies to; 0 means unlimited.
	Times int `json:"times,omitempty"`
	// Delay for FaultLatency.
	Delay Duration `json:"delay,omitempty"`
	// Status for FaultStatus (default 503).
	Status int `json:"status,omitempty"`
	// Body and ContentType override the FaultStatus/FaultRateLimit body.
	Body        string `json:"body,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	// RetryAfter is the Retry-After header of FaultRateLimit (default "1").
	RetryAfter string `json:"retryAfter,omitempty"`
	// AfterHandler runs the real handler first (so an import is applied) and
	// then replaces its response with the fault: "DHIS2 stored the values
	// but the client never saw the answer". For status, ratelimit and reset.
	AfterHandler bool `json:"afterHandler,omitempty"`
}

// FaultState is a rule with its id and how often it has fired.
type FaultState struct {
	ID    string `json:"id"`
	Fault Fault  `json:"fault"`
	Hits  int    `json:"hits"`
	Left  int    `json:"left"` // -1 when unlimited
}

type faultRule struct {
	id   string
	f    Fault
	hits int
}

// Faults is the fault injector of a server. It is safe for concurrent use.
type Faults struct {
	mu    sync.Mutex
	seq   int
	rules []*faultRule
}

func newFaults() *Faults { return &Faults{} }

// Add appends a rule and returns its id.
func (fs *Faults) Add(f Fault) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.seq++
	id := "f" + strconv.Itoa(fs.seq)
	fs.rules = append(fs.rules, &faultRule{id: id, f: f})
	return id
}

// Sequence adds one rule per step for path, each applying once, in order:
// Sequence("/api/dataValueSets", FaultReset, FaultStatus, FaultStatus) resets
// the first request, answers the next two with 503, then lets requests pass.
func (fs *Faults) Sequence(path string, steps ...FaultKind) []string {
	ids := make([]string, len(steps))
	for i, k := range steps {
		ids[i] = fs.Add(Fault{Kind: k, Path: path, Times: 1})
	}
	return ids
}

// FailTimes answers the next n requests under path with status (then requests pass).
func (fs *Faults) FailTimes(path string, status, n int) string {
	return fs.Add(Fault{Kind: FaultStatus, Path: path, Status: status, Times: n})
}

// Remove deletes a rule; it reports whether it existed.
func (fs *Faults) Remove(id string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, r := range fs.rules {
		if r.id == id {
			fs.rules = slices.Delete(fs.rules, i, i+1)
			return true
		}
	}
	return false
}

// Clear removes every rule.
func (fs *Faults) Clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.rules = nil
}

// List returns the rules and their state.
func (fs *Faults) List() []FaultState {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]FaultState, len(fs.rules))
	for i, r := range fs.rules {
		left := -1
		if r.f.Times > 0 {
			left = r.f.Times - r.hits
		}
		out[i] = FaultState{ID: r.id, Fault: r.f, Hits: r.hits, Left: left}
	}
	return out
}

// next picks the rule for a request and consumes one use of it.
func (fs *Faults) next(method, path string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, r := range fs.rules {
		if r.f.Times > 0 && r.hits >= r.f.Times {
			continue
		}
		if r.f.Method != "" && !strings.EqualFold(r.f.Method, method) {
			continue
		}
		if r.f.Path != "" && !strings.HasPrefix(path, r.f.Path) {
			continue
		}
		r.hits++
		return r.f, true
	}
	return Fault{}, false
}

// apply injects the fault for the request, if any. It returns true when the
// request has been fully handled (next must not be called again).
func (fs *Faults) apply(w http.ResponseWriter, r *http.Request, s *Server, path string, c *call, next http.HandlerFunc) bool {
	f, ok := fs.next(r.Method, path)
	if !ok || f.Kind == FaultPass {
		return false
	}
	c.fault = string(f.Kind)
	s.logger.InfoContext(r.Context(), "injecting fault", "kind", f.Kind, "path", r.URL.Path, "request", c.id)
	rw, _ := w.(*recordingWriter)
	switch f.Kind {
	case FaultLatency:
		t := time.NewTimer(time.Duration(f.Delay))
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.closing:
			return true
		}
		return false
	case FaultHang:
		if rw != nil {
			rw.commitOnce(0) // recorded as abandoned (status 0)
		}
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return true
	}
	if f.AfterHandler || f.Kind == FaultTruncate {
		rec := httptest.NewRecorder()
		next(rec, r)
		if f.Kind == FaultTruncate {
			truncate(w, rw, rec)
			return true
		}
	}
	switch f.Kind {
	case FaultReset:
		resetConn(w, rw)
	case FaultStatus:
		code := f.Status
		if code == 0 {
			code = http.StatusServiceUnavailable
		}
		writeFaultBody(w, r, code, f)
	case FaultRateLimit:
		ra := f.RetryAfter
		if ra == "" {
			ra = "1"
		}
		w.Header().Set("Retry-After", ra)
		writeFaultBody(w, r, http.StatusTooManyRequests, f)
	default:
		writeError(w, r, http.StatusInternalServerError, "dhis2test: unknown fault kind "+string(f.Kind))
	}
	return true
}

func writeFaultBody(w http.ResponseWriter, r *http.Request, code int, f Fault) {
	if f.Body == "" {
		writeError(w, r, code, http.StatusText(code))
		return
	}
	ct := f.ContentType
	if ct == "" {
		ct = "text/plain;charset=UTF-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(f.Body))
}

// resetConn hijacks the connection and closes it with SO_LINGER 0 (RST).
func resetConn(w http.ResponseWriter, rw *recordingWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2 or a recorder: abort the stream instead
	}
	if rw != nil {
		rw.commitOnce(0)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// truncate sends the recorded response's headers (with the full
// Content-Length) and half of its body, then drops the connection.
func truncate(w http.ResponseWriter, rw *recordingWriter, rec *httptest.ResponseRecorder) {
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body[:len(body)/2])
	_ = http.NewResponseController(w).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
