package dhis2

import (
	"bytes"
	"compress/gzip"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// basePath is where the fake DHIS2 lives: a non-empty context path, so that a client that
// drops it hits the catch-all and fails the test.
const basePath = "/hmis"

const (
	testUser     = "admin"
	testPassword = "district-S3cret!"
	testToken    = "d2pat_5xVA12xyUbWNedQxy4ohH77WlxRGVvZZ1151814092"
)

// seen is one request the fake received.
type seen struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Body         []byte // decompressed when Content-Encoding is gzip
	RawBody      []byte
}

// fake is a DHIS2 stand-in: a mux under basePath behind a real server, recording every
// request, with a catch-all that fails the test.
type fake struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu   sync.Mutex
	reqs []seen
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, mux: http.NewServeMux()}
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		http.Error(w, "no route", http.StatusTeapot)
	})
	f.srv = httptest.NewServer(http.HandlerFunc(f.record))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) record(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body := raw
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			f.t.Errorf("gzip body: %v", err)
		} else {
			body, _ = io.ReadAll(zr)
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: body, RawBody: raw})
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mux.ServeHTTP(w, r)
}

// handle routes "METHOD /path" (below basePath) to h.
func (f *fake) handle(pattern string, h http.HandlerFunc) {
	method, path, _ := cut(pattern)
	f.mux.HandleFunc(method+" "+basePath+path, h)
}

func cut(p string) (string, string, bool) {
	for i := range p {
		if p[i] == ' ' {
			return p[:i], p[i+1:], true
		}
	}
	return "", p, false
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func (f *fake) url() string { return f.srv.URL + basePath }

// reply answers with a fixed status, body and headers ("Key", "Value", ...).
func reply(status int, contentType, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// sequence answers with each handler in turn, repeating the last.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(n, len(hs)-1)]
		n++
		mu.Unlock()
		h(w, r)
	}
}

const jsonCT = "application/json;charset=UTF-8"

// newTestClient builds a Basic-auth client for url, adjusted by mod.
func newTestClient(t *testing.T, url string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: url, Username: testUser, Password: testPassword, Timeout: 5 * time.Second,
		PollInterval: time.Millisecond, MaxJobWait: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// streamPayload is a Payload without a known length, written in small pieces.
type streamPayload struct {
	ct   string
	data []byte
	err  error // returned after writing half, when set
}

func (p *streamPayload) ContentType() string { return p.ct }

func (p *streamPayload) WriteTo(w io.Writer) (int64, error) {
	var n int64
	limit := len(p.data)
	if p.err != nil {
		limit /= 2
	}
	for off := 0; off < limit; off += 7 {
		m, err := w.Write(p.data[off:min(off+7, limit)])
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, p.err
}

const samplePayload = `{"dataSet":"EPI_MONTHLY","dataValues":[` +
	`{"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"12"},` +
	`{"dataElement":"EPI_PENTA1","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"9"},` +
	`{"dataElement":"XXXXXXXXXXX","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"3"}]}`

func jsonPayload() Payload { return &streamPayload{ct: ContentTypeJSON, data: []byte(samplePayload)} }

// discardLogger silences a server's error log (TLS handshake noise).
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
