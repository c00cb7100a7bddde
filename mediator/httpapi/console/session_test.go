package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/httpapi/auth"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// loginCookie logs in through the real handler and returns the session cookie.
func loginCookie(t *testing.T, e *echo.Echo, token string) *http.Cookie {
	t.Helper()
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("login: HTTP %d %s", rec.Code, rec.Body)
	}
	return rec.Result().Cookies()[0]
}

// logoutStatus posts the logout form with the session's CSRF token: a route that needs a
// live session and no service behind it.
func logoutStatus(con *Console, e *echo.Echo, ck *http.Cookie) int {
	csrf := ""
	if s, ok := con.sessions.get(ck.Value); ok {
		csrf = s.csrf
	}
	req := httptest.NewRequest("POST", "/console/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(ck)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec.Code
}

func newTestConsole(t *testing.T, clk *clock, max int) (*Console, *echo.Echo) {
	t.Helper()
	creds := auth.New(config.Admin{Token: "operator-token-0123456789"})
	con, err := New(Config{Credentials: creds, Config: &config.Config{}, Now: clk.now, MaxSessions: max,
		SessionLifetime: 2 * time.Hour, SessionIdle: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	con.Register(e)
	return con, e
}

func TestSessionsExpireWhenIdleAndAtTheirLifetime(t *testing.T) {
	clk := &clock{t: time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)}
	con, e := newTestConsole(t, clk, 10)

	idle := loginCookie(t, e, "operator-token-0123456789")
	clk.add(31 * time.Minute)
	if code := logoutStatus(con, e, idle); code != http.StatusUnauthorized {
		t.Errorf("a session idle for 31 minutes: HTTP %d, want 401", code)
	}

	busy := loginCookie(t, e, "operator-token-0123456789")
	for range 4 { // used every 29 minutes: never idle, but older than its lifetime at the end
		clk.add(29 * time.Minute)
		if _, ok := con.sessions.get(busy.Value); !ok {
			t.Fatalf("a session used every 29 minutes ended at %v", clk.now())
		}
	}
	clk.add(5 * time.Minute) // 2h01m after login
	if code := logoutStatus(con, e, busy); code != http.StatusUnauthorized {
		t.Errorf("a session past its lifetime: HTTP %d, want 401", code)
	}
	// An expired session's page leads to the login page.
	req := httptest.NewRequest("GET", "/console/", nil)
	req.AddCookie(busy)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/console/login") {
		t.Errorf("expired session GET: HTTP %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestSessionsAreBounded(t *testing.T) {
	clk := &clock{t: time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)}
	con, e := newTestConsole(t, clk, 3)
	first := loginCookie(t, e, "operator-token-0123456789")
	for range 5 {
		clk.add(time.Second)
		loginCookie(t, e, "operator-token-0123456789")
	}
	if n := con.sessions.len(); n != 3 {
		t.Errorf("%d sessions live, want the bound 3", n)
	}
	if code := logoutStatus(con, e, first); code != http.StatusUnauthorized {
		t.Errorf("the least recently used session survived: HTTP %d", code)
	}
}
