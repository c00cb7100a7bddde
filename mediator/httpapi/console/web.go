package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/httpapi/auth"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// pageTemplate is one page: the layout with the page's own content.
type pageTemplate struct{ t *template.Template }

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"join": strings.Join,
	"add":  func(a, b int) int { return a + b },
	"query": func(kv ...string) template.URL {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(q.Encode())
	},
	"statusClass": func(s string) string { return "st-" + strings.NewReplacer(" ", "-", "_", "-").Replace(s) },
}

// parsePages reads every page template with the layout.
func parsePages() (map[string]*pageTemplate, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*pageTemplate{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		out[strings.TrimSuffix(base, ".html")] = &pageTemplate{t: t}
	}
	return out, nil
}

// view is what every page template gets: the page's data and the session's.
type view struct {
	Title string
	Nav   string
	User  auth.Principal
	CSRF  string
	Error string
	Data  any
}

// Can reports whether the session may make this request, so that a page offers only what
// the session may do.
func (v view) Can(method, route string) bool { return v.User.Can(method, route) }

// render writes page name with data; the whole page is built before anything is sent.
func (c *Console) render(ec echo.Context, status int, name, title string, data any) error {
	return c.renderView(ec, status, name, view{Title: title, Nav: name, Data: data})
}

func (c *Console) renderView(ec echo.Context, status int, name string, v view) error {
	p, ok := c.pages[name]
	if !ok {
		return fmt.Errorf("console: no page template %q", name)
	}
	if s, ok := ec.Get("session").(*session); ok {
		v.User, v.CSRF = s.principal, s.csrf
	}
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("rendering console page %s: %w", name, err)
	}
	h := ec.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	return ec.HTMLBlob(status, buf.Bytes())
}

// fail answers a page that says what went wrong.
func (c *Console) fail(ec echo.Context, status int, msg string) error {
	return c.renderView(ec, status, "error", view{Title: http.StatusText(status), Error: msg})
}

func (c *Console) handleStatic(ec echo.Context) error {
	name := path.Clean("/" + ec.Param("*"))
	data, err := files.ReadFile("static" + name)
	if err != nil {
		return ec.NoContent(http.StatusNotFound)
	}
	ec.Response().Header().Set("Cache-Control", "max-age=3600")
	return ec.Blob(http.StatusOK, mime.TypeByExtension(path.Ext(name)), data)
}

// requireSession lets a request through only with a live session, whose scope allows the
// route (auth's table, as for the admin API) and, when the request changes something, with
// the session's CSRF token. It hands the principal and the actor to what the request calls,
// as the admin API does, so that records name the console user.
func (c *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r := ec.Request()
		var s *session
		if ck, err := r.Cookie(cookieName); err == nil {
			s, _ = c.sessions.get(ck.Value)
		}
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				return ec.Redirect(http.StatusSeeOther, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()))
			}
			return c.fail(ec, http.StatusUnauthorized, "Your session has ended. Log in again.")
		}
		ec.Set("session", s)
		// The principal and actor go in first, so that what runs around this check (the
		// audit log) knows who was refused as well as who acted.
		r = r.WithContext(txlog.WithActor(auth.WithPrincipal(r.Context(), s.principal), s.principal.Name))
		ec.SetRequest(r)
		if !safeMethod(r.Method) {
			r.Body = http.MaxBytesReader(ec.Response(), r.Body, maxBody)
		}
		if !safeMethod(r.Method) && !s.validCSRF(csrfOf(r)) {
			return c.fail(ec, http.StatusForbidden, "This request carries no valid CSRF token. Reload the page and try again.")
		}
		if !s.principal.Can(r.Method, ec.Path()) {
			return c.fail(ec, http.StatusForbidden, fmt.Sprintf("%s has scope %s: this needs scope operate.", s.principal.Name, s.principal.Scope))
		}
		return next(ec)
	}
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// csrfOf is the CSRF token a request carries: the form field, or the header a script sets.
func csrfOf(r *http.Request) string {
	if h := r.Header.Get("X-CSRF-Token"); h != "" {
		return h
	}
	return r.PostFormValue("csrf")
}

func (c *Console) handleLoginPage(ec echo.Context) error {
	return c.renderView(ec, http.StatusOK, "login", view{Title: "Log in", Data: loginData{Next: safeNext(ec.QueryParam("next"))}})
}

type loginData struct{ Next string }

// handleLogin starts a session for the admin credential the form carries.
func (c *Console) handleLogin(ec echo.Context) error {
	r := ec.Request()
	next := safeNext(r.PostFormValue("next"))
	if !c.cfg.Credentials.Enabled() {
		return c.renderView(ec, http.StatusForbidden, "login", view{Title: "Log in", Data: loginData{Next: next},
			Error: "The console is closed: set admin.token or admin.credentials in the configuration."})
	}
	p, ok := c.cfg.Credentials.Match(strings.TrimSpace(r.PostFormValue("token")))
	if !ok {
		c.cfg.Log.Info("console login refused", "remote", ec.RealIP())
		return c.renderView(ec, http.StatusUnauthorized, "login", view{Title: "Log in", Data: loginData{Next: next},
			Error: "That token matches no admin credential."})
	}
	s := c.sessions.create(p)
	ec.SetCookie(cookie(r, s.id, int(c.sessions.ttl.Seconds())))
	c.cfg.Log.Info("console login", "user", p.Name, "scope", p.Scope)
	return ec.Redirect(http.StatusSeeOther, next)
}

func (c *Console) handleLogout(ec echo.Context) error {
	if s, ok := ec.Get("session").(*session); ok {
		c.sessions.drop(s.id)
	}
	ec.SetCookie(cookie(ec.Request(), "", -1))
	return ec.Redirect(http.StatusSeeOther, "/console/login")
}

// safeNext keeps a redirect after login inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.Contains(next, `\`) {
		return "/console/"
	}
	return next
}

// pageOf reads the page number (from 1) of a paged list.
func pageOf(ec echo.Context) int {
	n, err := strconv.Atoi(ec.QueryParam("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, 100000)
}
