package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// The exchange API, under /admin/v1 (admin token):
//
//	GET  /exchanges                                  every exchange: schedule, next tick, health, last run
//	GET  /exchanges/{name}                           one exchange, with the periods a run would cover now
//	POST /exchanges/{name}/run[?dryRun=true][&wait=true]
//	                                                 run now: 202 with the transaction id, or with
//	                                                 wait=true 200 and the run's summary when it is
//	                                                 done; a dry run pulls, maps and compares and
//	                                                 answers what would be sent, storing nothing
//	GET  /exchanges/{name}/runs[?limit=]             recent runs, newest first
//	GET  /exchanges/{name}/runs/{tx}                 one run's summary with its transaction
//
// A run already under way (here or on another replica) answers 409.

func (s exchangeAPI) exchangeRoutes(admin *echo.Group) {
	admin.GET("/exchanges", s.handleExchangeList)
	admin.GET("/exchanges/:name", s.handleExchangeShow)
	admin.POST("/exchanges/:name/run", s.handleExchangeRun)
	admin.GET("/exchanges/:name/runs", s.handleExchangeRuns)
	admin.GET("/exchanges/:name/runs/:tx", s.handleExchangeRunShow)
}

func (s exchangeAPI) handleExchangeList(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"exchanges": s.exchanges.Infos(c.Request().Context())})
}

// exchangeParam answers 404 unless the path names an exchange; it returns the name.
func (s exchangeAPI) exchangeParam(c echo.Context) (string, error) {
	name := c.Param("name")
	if !s.exchanges.Has(name) {
		return "", c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no exchange is called " + strconv.Quote(name)})
	}
	return name, nil
}

func (s exchangeAPI) handleExchangeShow(c echo.Context) error {
	name, err := s.exchangeParam(c)
	if name == "" {
		return err
	}
	info, err := s.exchanges.Info(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func boolQuery(c echo.Context, names ...string) (bool, error) {
	for _, n := range names {
		if v := c.QueryParam(n); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, fmt.Errorf("%s: want true or false", n)
			}
			return b, nil
		}
	}
	return false, nil
}

func (s exchangeAPI) handleExchangeRun(c echo.Context) error {
	name, err := s.exchangeParam(c)
	if name == "" {
		return err
	}
	dry, err := boolQuery(c, "dryRun", "dry_run")
	if err != nil {
		return badRequest(c, err)
	}
	wait, err := boolQuery(c, "wait")
	if err != nil {
		return badRequest(c, err)
	}
	tx, done, err := s.exchanges.Launch(name, dry)
	switch {
	case exchange.IsBusy(err):
		return c.JSON(http.StatusConflict, apiError{Status: "error", Message: err.Error()})
	case err != nil:
		return c.JSON(http.StatusServiceUnavailable, apiError{Status: "error", Message: err.Error()})
	}
	if !dry && !wait {
		// Give a run that cannot start (busy elsewhere) a moment to say so.
		select {
		case r := <-done:
			if r.Err != nil {
				return s.runAnswer(c, r.Run, r.Err)
			}
		case <-time.After(200 * time.Millisecond):
		}
		return c.JSON(http.StatusAccepted, map[string]any{"status": "started", "exchange": name, "transaction": tx,
			"href": "/admin/v1/exchanges/" + name + "/runs/" + tx})
	}
	select {
	case r := <-done:
		return s.runAnswer(c, r.Run, r.Err)
	case <-c.Request().Context().Done():
		return c.Request().Context().Err() // the run goes on
	}
}

func (s exchangeAPI) runAnswer(c echo.Context, run *exchange.ExchangeRun, err error) error {
	switch {
	case exchange.IsBusy(err):
		return c.JSON(http.StatusConflict, apiError{Status: "error", Message: err.Error()})
	case err != nil:
		return c.JSON(http.StatusServiceUnavailable, apiError{Status: "error", Message: err.Error()})
	}
	return c.JSON(http.StatusOK, run)
}

func (s exchangeAPI) handleExchangeRuns(c echo.Context) error {
	name, err := s.exchangeParam(c)
	if name == "" {
		return err
	}
	limit := 20
	if l := c.QueryParam("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			return badRequest(c, errors.New("limit: want 1 to 1000"))
		}
	}
	runs, err := s.exchanges.Runs(c.Request().Context(), name, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": runs})
}

func (s exchangeAPI) handleExchangeRunShow(c echo.Context) error {
	name, err := s.exchangeParam(c)
	if name == "" {
		return err
	}
	tx := c.Param("tx")
	if !txlog.ValidTxID(tx) {
		return badRequest(c, errors.New("not a transaction id: "+strconv.Quote(tx)))
	}
	run, view, err := s.exchanges.RunOf(c.Request().Context(), name, tx)
	if errors.Is(err, exchange.ErrNoRun) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no run " + tx + " of exchange " + name +
			" (a run under way is recorded once its values are stored)"})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"run": run, "transaction": view})
}
