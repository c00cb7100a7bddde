package mediator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
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

func (s *Service) exchangeRoutes(admin *echo.Group) {
	admin.GET("/exchanges", s.handleExchangeList)
	admin.GET("/exchanges/:name", s.handleExchangeShow)
	admin.POST("/exchanges/:name/run", s.handleExchangeRun)
	admin.GET("/exchanges/:name/runs", s.handleExchangeRuns)
	admin.GET("/exchanges/:name/runs/:tx", s.handleExchangeRunShow)
}

// ExchangeInfo is an exchange as the API lists it.
type ExchangeInfo struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Source      ExchangeSrcInfo `json:"source"`
	SourceName  string          `json:"sourceName"`
	Schedule    string          `json:"schedule,omitempty"`
	Timezone    string          `json:"timezone"`
	Next        time.Time       `json:"next,omitzero"`
	Targets     []string        `json:"targets"`
	Mapping     string          `json:"mapping,omitempty"`
	Stale       string          `json:"stale"`
	Running     bool            `json:"running"`
	Health      *exchangeHealth `json:"health,omitempty"`
	LastRun     *ExchangeRun    `json:"lastRun,omitempty"`
	// Requests, shown for one exchange, name the periods a run would cover now.
	Requests []RequestInfo `json:"requests,omitempty"`
}

// ExchangeSrcInfo names an exchange's source without its credentials.
type ExchangeSrcInfo struct {
	Type string `json:"type"`
	URL  string `json:"url"`
	Auth string `json:"auth"`
}

// RequestInfo is a request with its periods resolved now.
type RequestInfo struct {
	Name    string   `json:"name"`
	Periods []string `json:"periods"`
	Error   string   `json:"error,omitempty"`
}

func (s *Service) exchangeInfo(ctx context.Context, e *exchange, detail bool) *ExchangeInfo {
	c := e.cfg
	info := &ExchangeInfo{Name: c.Name, Description: c.Description, SourceName: e.source.Name, Schedule: c.Schedule,
		Timezone: c.Timezone, Targets: s.cfg.TargetNamesOf(e.source), Mapping: c.Mapping, Stale: c.Stale.Mode,
		Running: e.busy.Load()}
	info.Source = ExchangeSrcInfo{Type: c.Source.Type, URL: c.Source.URL, Auth: "basic " + c.Source.Username}
	if c.Source.Token != "" {
		info.Source.Auth = "token"
	}
	if e.sched != nil {
		info.Next = e.sched.Next(s.now(), c.Location())
	}
	var lease leaseRecord
	if rev, err := s.loadJSONState(ctx, exchangeKey(c.Name, "lease"), &lease); err == nil && rev > 0 && time.Now().Before(lease.Until) {
		info.Running = true // here or on another replica
	}
	var h exchangeHealth
	if _, err := s.loadJSONState(ctx, exchangeKey(c.Name, "health"), &h); err == nil && (h.Failing || !h.LastSuccess.IsZero()) {
		info.Health = &h
	}
	var last ExchangeRun
	if rev, err := s.loadJSONState(ctx, exchangeKey(c.Name, "last"), &last); err == nil && rev > 0 {
		info.LastRun = &last
	}
	if detail {
		now := s.now()
		for i := range c.Requests {
			r := &c.Requests[i]
			ri := RequestInfo{Name: r.Name, Periods: []string{}}
			ps, err := c.RequestPeriods(r, now)
			for _, p := range ps {
				ri.Periods = append(ri.Periods, p.ID())
			}
			if err != nil {
				ri.Error = err.Error()
			}
			info.Requests = append(info.Requests, ri)
		}
	}
	return info
}

func (s *Service) handleExchangeList(c echo.Context) error {
	out := []*ExchangeInfo{}
	if s.exch != nil {
		for _, e := range s.exch.order {
			out = append(out, s.exchangeInfo(c.Request().Context(), e, false))
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"exchanges": out})
}

func (s *Service) exchangeParam(c echo.Context) (*exchange, error) {
	name := c.Param("name")
	e, ok := s.exchange(name)
	if !ok {
		return nil, c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no exchange is called " + strconv.Quote(name)})
	}
	return e, nil
}

func (s *Service) handleExchangeShow(c echo.Context) error {
	e, err := s.exchangeParam(c)
	if e == nil {
		return err
	}
	return c.JSON(http.StatusOK, s.exchangeInfo(c.Request().Context(), e, true))
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

func (s *Service) handleExchangeRun(c echo.Context) error {
	e, err := s.exchangeParam(c)
	if e == nil {
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
	if e.busy.Load() {
		return c.JSON(http.StatusConflict, apiError{Status: "error", Message: errExchangeBusy.Error()})
	}
	o := runOptions{trigger: TriggerAPI, dryRun: dry, started: s.now().UTC(), nonce: rand.Text()}
	runCtx := s.exch.runCtx
	if runCtx == nil {
		return c.JSON(http.StatusServiceUnavailable, apiError{Status: "error", Message: "not started"})
	}
	type result struct {
		run *ExchangeRun
		err error
	}
	done := make(chan result, 1)
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		run, err := s.runExchange(runCtx, e, o)
		done <- result{run, err}
	}()
	if !dry && !wait {
		// Give a run that cannot start (busy elsewhere) a moment to say so.
		select {
		case r := <-done:
			if r.err != nil {
				return s.runAnswer(c, r.run, r.err)
			}
		case <-time.After(200 * time.Millisecond):
		}
		tx := exchangeTxID(e.cfg.Name, o)
		return c.JSON(http.StatusAccepted, map[string]any{"status": "started", "exchange": e.cfg.Name, "transaction": tx,
			"href": "/admin/v1/exchanges/" + e.cfg.Name + "/runs/" + tx})
	}
	select {
	case r := <-done:
		return s.runAnswer(c, r.run, r.err)
	case <-c.Request().Context().Done():
		return c.Request().Context().Err() // the run goes on
	}
}

func (s *Service) runAnswer(c echo.Context, run *ExchangeRun, err error) error {
	switch {
	case errors.Is(err, errExchangeBusy):
		return c.JSON(http.StatusConflict, apiError{Status: "error", Message: err.Error()})
	case err != nil:
		return c.JSON(http.StatusServiceUnavailable, apiError{Status: "error", Message: err.Error()})
	}
	return c.JSON(http.StatusOK, run)
}

// readRun reads a run's summary from its transaction record; nil when the transaction is
// no exchange run's.
func (s *Service) readRun(ctx context.Context, tx string) (*ExchangeRun, error) {
	rec, err := s.txlog.Get(ctx, tx)
	if err != nil || len(rec.Exchange) == 0 {
		return nil, err
	}
	var run ExchangeRun
	if err := json.Unmarshal(rec.Exchange, &run); err != nil {
		return nil, fmt.Errorf("decoding transaction %s: %w", tx, err)
	}
	return &run, nil
}

func (s *Service) handleExchangeRuns(c echo.Context) error {
	e, err := s.exchangeParam(c)
	if e == nil {
		return err
	}
	limit := 20
	if l := c.QueryParam("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			return badRequest(c, errors.New("limit: want 1 to 1000"))
		}
	}
	ctx := c.Request().Context()
	recs, err := s.txlog.List(ctx, e.source.Name, limit)
	if err != nil {
		return err
	}
	out := []*ExchangeRun{}
	for _, r := range recs {
		run, err := s.readRun(ctx, r.ID)
		if err != nil || run == nil {
			continue
		}
		for _, t := range run.Targets {
			t.Values, t.Removals, t.Registrations = nil, nil, nil
		}
		out = append(out, run)
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": out})
}

func (s *Service) handleExchangeRunShow(c echo.Context) error {
	e, err := s.exchangeParam(c)
	if e == nil {
		return err
	}
	tx := c.Param("tx")
	if !txlog.ValidTxID(tx) {
		return badRequest(c, errors.New("not a transaction id: "+strconv.Quote(tx)))
	}
	ctx := c.Request().Context()
	run, err := s.readRun(ctx, tx)
	if errors.Is(err, txlog.ErrTxNotFound) || (err == nil && (run == nil || run.Exchange != e.cfg.Name)) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no run " + tx + " of exchange " + e.cfg.Name +
			" (a run under way is recorded once its values are stored)"})
	}
	if err != nil {
		return err
	}
	view, err := s.txlog.View(ctx, tx)
	if err != nil {
		return err
	}
	view.Deliveries = nil
	return c.JSON(http.StatusOK, map[string]any{"run": run, "transaction": view})
}
