package dhis2test

import (
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Request is one recorded API request (admin /__sim/ calls are not recorded).
type Request struct {
	ID       string        `json:"id"`
	Time     time.Time     `json:"time"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	RawQuery string        `json:"rawQuery,omitempty"`
	Query    url.Values    `json:"query,omitempty"`
	Header   http.Header   `json:"header"` // without Authorization
	BodySize int64         `json:"bodySize"`
	Status   int           `json:"status"` // 0 when the connection was reset or abandoned
	User     string        `json:"user,omitempty"`
	Fault    string        `json:"fault,omitempty"` // kind of the injected fault, if any
	Duration time.Duration `json:"duration"`
}

type requestLog struct {
	mu   sync.Mutex
	reqs []Request
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
}

func (s *Server) recordRequest(r *http.Request, c *call, status int, size int64, d time.Duration) Request {
	h := r.Header.Clone()
	h.Del("Authorization")
	req := Request{ID: c.id, Time: s.now(), Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Query: r.URL.Query(), Header: h, BodySize: max(size, 0), Status: status, Fault: c.fault, Duration: d}
	if c.user != nil {
		req.User = c.user.Username
	}
	return req
}

// Requests returns the recorded API requests, oldest first.
func (s *Server) Requests() []Request {
	s.reqlog.mu.Lock()
	defer s.reqlog.mu.Unlock()
	return slices.Clone(s.reqlog.reqs)
}

// ResetRequests forgets the recorded requests and the import request count.
func (s *Server) ResetRequests() {
	s.reqlog.mu.Lock()
	defer s.reqlog.mu.Unlock()
	s.reqlog.reqs = nil
	s.imports.Store(0)
}
