package mediator

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// requireAdmin guards /admin/v1 with the configured bearer token. Without a configured token
// the admin API is closed rather than open.
func (s *Service) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		want := s.cfg.Admin.Token
		if want == "" {
			return c.JSON(http.StatusForbidden, apiError{Status: "error", Message: "the admin API is disabled: set admin.token"})
		}
		_, _, token := credentials(c.Request())
		if token == "" || !constEq(token, want) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="tally-admin"`)
			return c.JSON(http.StatusUnauthorized, apiError{Status: "error", Message: "missing or wrong admin token"})
		}
		return next(c)
	}
}

func (s *Service) handleTxShow(c echo.Context) error {
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
	return c.JSON(http.StatusOK, v)
}

// handleTxList is GET /admin/v1/transactions?source=&status=&since=&until=&limit=, newest
// first. since and until bound the time the payload was received (RFC 3339, a date or a
// duration ago, as for the dead-letter list).
func (s *Service) handleTxList(c echo.Context) error {
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
	if f.Since, err = parseWhen(c.QueryParam("since"), s.now()); err != nil {
		return badRequest(c, fmt.Errorf("since: %w", err))
	}
	if f.Until, err = parseWhen(c.QueryParam("until"), s.now()); err != nil {
		return badRequest(c, fmt.Errorf("until: %w", err))
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
