package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/tally-hmis/tally/mediator/httpapi/auth"
)

// Sessions live in the replica's memory: a console session is a person at a browser, few
// at a time, and losing them on restart only asks for the token again. Behind a load
// balancer with several replicas, route /console with sticky sessions (docs/console.md).

// cookieName is the console's session cookie; it holds a random id and nothing else.
const cookieName = "tally_console"

// session is one logged-in browser: who it is, its CSRF token and its lifetime.
type session struct {
	id        string
	csrf      string
	principal auth.Principal
	created   time.Time
	seen      time.Time
}

// sessions is the bounded set of live sessions.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	max  int
	// ttl bounds a session's whole life, idle how long it may go unused.
	ttl, idle time.Duration
	now       func() time.Time
}

func newSessions(max int, ttl, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]*session{}, max: max, ttl: ttl, idle: idle, now: now}
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for p, evicting expired sessions and, when the set is full, the
// least recently used one, so that logins cannot grow memory without bound.
func (s *sessions) create(p auth.Principal) *session {
	now := s.now()
	ss := &session{id: randomToken(), csrf: randomToken(), principal: p, created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.byID) >= s.max {
		var oldest *session
		for _, o := range s.byID {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(s.byID, oldest.id)
	}
	s.byID[ss.id] = ss
	return ss
}

// sweep drops expired sessions; s.mu is held.
func (s *sessions) sweep(now time.Time) {
	for id, o := range s.byID {
		if s.expired(o, now) {
			delete(s.byID, id)
		}
	}
}

func (s *sessions) expired(o *session, now time.Time) bool {
	return now.Sub(o.created) >= s.ttl || now.Sub(o.seen) >= s.idle
}

// get returns the live session with this id and marks it used; an expired one is dropped.
func (s *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	if s.expired(o, now) {
		delete(s.byID, id)
		return nil, false
	}
	o.seen = now
	cp := *o
	return &cp, true
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// validCSRF reports whether token is the session's CSRF token, in constant time.
func (o *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(o.csrf)) == 1
}

// cookie is the session cookie for id: HttpOnly so scripts cannot read it, SameSite=Strict
// so other sites' pages cannot make the browser send it, Secure when the console is served
// over TLS (directly, or behind a proxy that says so).
func cookie(r *http.Request, id string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: id, Path: "/console", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: maxAge}
}
