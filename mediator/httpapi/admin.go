package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/httpapi/auth"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// requireAdmin guards /admin/v1 with the configured admin credentials: it finds who is
// calling, refuses what their scope does not allow (403, naming the scope needed) and hands
// the principal to the handlers in the request's context. Without a configured credential the
// admin API is closed rather than open.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.admins.Enabled() {
			return c.JSON(http.StatusForbidden, apiError{Status: "error", Message: "the admin API is disabled: set admin.token or admin.credentials"})
		}
		_, _, token := credentials(c.Request())
		p, ok := s.admins.Match(token)
		if !ok {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="tally-admin"`)
			return c.JSON(http.StatusUnauthorized, apiError{Status: "error", Message: "missing or wrong admin token"})
		}
		if changes(c.Request().Method) {
			defer s.recordAudit(c, p)
		}
		if !p.Can(c.Request().Method, c.Path()) {
			return c.JSON(http.StatusForbidden, apiError{Status: "error",
				Message: fmt.Sprintf("%s has scope %s: %s %s needs scope operate", p.Name, p.Scope, c.Request().Method, c.Path())})
		}
		r := c.Request()
		ctx := txlog.WithActor(auth.WithPrincipal(r.Context(), p), p.Name)
		c.SetRequest(r.WithContext(ctx))
		if err := next(c); err != nil {
			c.Error(err) // answered now, so that the audit entry has the status
		}
		return nil
	}
}

// changes says whether a request method may change something: those are the admin actions
// the audit log records (reads are not actions).
func changes(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// recordAudit writes who did what and how it ended; a failure to record is logged, never
// turned into a failure of the action (which has happened by then).
func (s *Server) recordAudit(c echo.Context, p auth.Principal) {
	r := c.Request()
	e := &txlog.AuditEntry{Time: s.now().UTC(), Who: p.Name, Scope: string(p.Scope), Action: r.Method + " " + c.Path(),
		Path: r.URL.Path, Result: c.Response().Status, RequestID: RequestID(r.Context()), Client: c.RealIP()}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.txlog.PutAudit(ctx, e); err != nil {
		s.log.Error("recording an admin action", "action", e.Action, "who", e.Who, "request_id", e.RequestID, "err", err)
	}
}

// handleAudit is GET /admin/v1/audit?who=&since=&until=&limit=: the admin actions, newest
// first.
func (s adminAPI) handleAudit(c echo.Context) error {
	f := txlog.AuditFilter{Who: c.QueryParam("who"), Limit: 100}
	var err error
	if f.Since, f.Until, err = s.timeRange(c); err != nil {
		return badRequest(c, err)
	}
	if l := c.QueryParam("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 || f.Limit > 10000 {
			return badRequest(c, errors.New("limit: want 1 to 10000"))
		}
	}
	entries, err := s.txlog.Audit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []*txlog.AuditEntry{}
	}
	return c.JSON(http.StatusOK, map[string]any{"audit": entries})
}

// handleWhoAmI is GET /admin/v1/whoami: the credential's name and scope, so a client (the CLI,
// the console) can tell what it may offer before it tries.
func (s adminAPI) handleWhoAmI(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	return c.JSON(http.StatusOK, p)
}

func (s adminAPI) handleTxShow(c echo.Context) error {
	id := c.Param("id")
	if !txlog.ValidTxID(id) {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: "not a transaction id: " + strconv.Quote(id)})
	}
	v, err := s.txlog.View(c.Request().Context(), id)
	if errors.Is(err, txlog.ErrTxNotFound) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no transaction " + id})
	}
	if err != nil {
		return err
	}
	if c.QueryParam("limit") == "" && c.QueryParam("offset") == "" {
		return c.JSON(http.StatusOK, v)
	}
	return s.txPage(c, v)
}

// maxDeliveriesPage bounds one page of a transaction's delivery records.
const maxDeliveriesPage = 1000

// txPage answers a transaction with one page of its delivery records (?offset=&limit=;
// limit=0 for none) and their total: a 200-batch transaction's records run to hundreds of
// thousands of lines, which a summary or a terminal does not want at once.
func (s adminAPI) txPage(c echo.Context, v *txlog.TxView) error {
	offset, limit := 0, 50
	var err error
	if o := c.QueryParam("offset"); o != "" {
		if offset, err = strconv.Atoi(o); err != nil || offset < 0 {
			return badRequest(c, errors.New("offset: want 0 or more"))
		}
	}
	if l := c.QueryParam("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 || limit > maxDeliveriesPage {
			return badRequest(c, fmt.Errorf("limit: want 0 to %d", maxDeliveriesPage))
		}
	}
	total := len(v.Deliveries)
	page := *v
	page.Deliveries = v.Deliveries[min(offset, total):min(offset+limit, total)]
	return c.JSON(http.StatusOK, struct {
		*txlog.TxView
		DeliveriesTotal int `json:"deliveriesTotal"`
	}{&page, total})
}

// handleTxList is GET /admin/v1/transactions?source=&status=&since=&until=&limit=, newest
// first. since and until bound the time the payload was received (RFC 3339, a date or a
// duration ago, as for the dead-letter list).
func (s adminAPI) handleTxList(c echo.Context) error {
	limit := 50
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: "limit: want 1 to 1000"})
		}
		limit = n
	}
	f := txlog.TxFilter{Source: strings.TrimSpace(c.QueryParam("source")), Status: strings.TrimSpace(c.QueryParam("status")), Limit: limit}
	switch f.Status {
	case "", txlog.TxAccepted, txlog.TxDelivered, txlog.TxPartiallyDelivered, txlog.TxFailed:
	default:
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: fmt.Sprintf("status: want %s, %s, %s or %s",
			txlog.TxAccepted, txlog.TxDelivered, txlog.TxPartiallyDelivered, txlog.TxFailed)})
	}
	var err error
	if f.Since, f.Until, err = s.timeRange(c); err != nil {
		return badRequest(c, err)
	}
	views, err := s.txlog.Search(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if views == nil {
		views = []*txlog.TxView{}
	}
	return c.JSON(http.StatusOK, map[string]any{"transactions": views})
}

// errUnauthorized refuses a request whose credentials match no source.
var errUnauthorized = errors.New("unauthorized")

// authenticate returns the source whose credentials the request carries: Basic, Bearer, or
// DHIS2's "ApiToken" scheme, so that DHIS2's own clients can authenticate unchanged.
func authenticate(r *http.Request, sources []config.Source, only *config.Source) (*config.Source, error) {
	user, pass, token := credentials(r)
	match := func(src *config.Source) bool {
		if src.Auth.Public && user == "" && token == "" {
			return true
		}
		for _, u := range src.Auth.Users {
			if user != "" && constEq(u.Username, user) && constEq(u.Password, pass) {
				return true
			}
		}
		for _, t := range src.Auth.Tokens {
			if token != "" && constEq(t, token) {
				return true
			}
		}
		return false
	}
	if only != nil {
		if match(only) {
			return only, nil
		}
		return nil, errUnauthorized
	}
	for i := range sources {
		if (user != "" || token != "") && match(&sources[i]) {
			return &sources[i], nil
		}
	}
	return nil, errUnauthorized
}

func credentials(r *http.Request) (user, pass, token string) {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err == nil {
			user, pass, _ = strings.Cut(string(raw), ":")
		}
	case "bearer", "apitoken":
		token = rest
	}
	return user, pass, token
}

func constEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// timeRange reads a list's since and until query parameters.
func (s adminAPI) timeRange(c echo.Context) (since, until time.Time, err error) {
	now := s.now()
	if since, err = parseWhen(c.QueryParam("since"), now); err != nil {
		return since, until, fmt.Errorf("since: %w", err)
	}
	if until, err = parseWhen(c.QueryParam("until"), now); err != nil {
		return since, until, fmt.Errorf("until: %w", err)
	}
	return since, until, nil
}
