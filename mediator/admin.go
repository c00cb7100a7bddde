package mediator

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
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
	if !validTxID(id) {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: "not a transaction id: " + strconv.Quote(id)})
	}
	v, err := s.txlog.View(c.Request().Context(), id)
	if errors.Is(err, ErrTxNotFound) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no transaction " + id})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Service) handleTxList(c echo.Context) error {
	limit := 50
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: "limit: want 1 to 1000"})
		}
		limit = n
	}
	recs, err := s.txlog.List(c.Request().Context(), strings.TrimSpace(c.QueryParam("source")), limit)
	if err != nil {
		return err
	}
	views := make([]*TxView, 0, len(recs))
	for _, r := range recs {
		v, err := s.txlog.View(c.Request().Context(), r.ID)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	return c.JSON(http.StatusOK, map[string]any{"transactions": views})
}
