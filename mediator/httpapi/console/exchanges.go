package console

import (
	"errors"
	"net/http"
	"sort"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/transform"
)

// The exchange pages: the list, one exchange with its recent runs, run now, and a dry run
// shown as a table of what each target would get against what it holds.

func (c *Console) exchangeRoutes(g *echo.Group) {
	g.GET("/exchanges", c.handleExchanges)
	g.GET("/exchanges/:name", c.handleExchange)
	g.POST("/exchanges/:name/run", c.handleExchangeRun)
}

func (c *Console) handleExchanges(ec echo.Context) error {
	return c.render(ec, http.StatusOK, "exchanges", "Exchanges", c.cfg.Exchanges.Infos(ec.Request().Context()))
}

type exchangePage struct {
	Info   *exchange.ExchangeInfo
	Runs   []*exchange.ExchangeRun
	Notice string
	// DryRun is the dry run just made, with its diff tables.
	DryRun *exchange.ExchangeRun
	Diffs  []*diffTable
	// Pulled counts the values the dry run's requests pulled.
	Pulled int
}

// diffTable is one target's dry run: the counts and a row per listed value.
type diffTable struct {
	Target string
	Diff   *delivery.Diff
	Rows   []diffRow
	Error  string
}

type diffRow struct {
	Kind string
	namedKey
	Old, New string
}

// diffRows lists a diff's items by kind (changed, added, stale, unchanged), names beside
// codes; new values come from what the run would send.
func diffRows(d *delivery.Diff, sent []transform.DataValue, n *names) []diffRow {
	newByKey := make(map[transform.Key]string, len(sent))
	for _, v := range sent {
		newByKey[v.Key()] = v.Value
	}
	lookup := func(k transform.Key) string {
		if v, ok := newByKey[k]; ok {
			return v
		}
		k.CategoryOptionCombo, k.AttributeOptionCombo = "", ""
		return newByKey[k]
	}
	var rows []diffRow
	for _, it := range d.ChangedItems {
		rows = append(rows, diffRow{Kind: "changed", namedKey: n.key(it.Key), Old: it.Old, New: it.New})
	}
	for _, k := range d.AddedItems {
		rows = append(rows, diffRow{Kind: "added", namedKey: n.key(k), New: lookup(k)})
	}
	for _, k := range d.StaleItems {
		rows = append(rows, diffRow{Kind: "stale", namedKey: n.key(k)})
	}
	for _, k := range d.UnchangedItems {
		v := lookup(k)
		rows = append(rows, diffRow{Kind: "unchanged", namedKey: n.key(k), Old: v, New: v})
	}
	order := map[string]int{"changed": 0, "added": 1, "stale": 2, "unchanged": 3}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Kind != b.Kind {
			return order[a.Kind] < order[b.Kind]
		}
		if a.DataElement != b.DataElement {
			return a.DataElement < b.DataElement
		}
		if a.Period != b.Period {
			return a.Period < b.Period
		}
		return a.OrgUnit < b.OrgUnit
	})
	return rows
}

func (c *Console) exchangePage(ec echo.Context, name string) (*exchangePage, error) {
	ctx := ec.Request().Context()
	info, err := c.cfg.Exchanges.Info(ctx, name)
	if err != nil {
		return nil, err
	}
	runs, err := c.cfg.Exchanges.Runs(ctx, name, 20)
	if err != nil {
		return nil, err
	}
	return &exchangePage{Info: info, Runs: runs}, nil
}

func (c *Console) handleExchange(ec echo.Context) error {
	name := ec.Param("name")
	if !c.cfg.Exchanges.Has(name) {
		return c.fail(ec, http.StatusNotFound, "No exchange is called "+strconv.Quote(name)+".")
	}
	p, err := c.exchangePage(ec, name)
	if err != nil {
		return err
	}
	return c.render(ec, http.StatusOK, "exchange", "Exchange "+name, p)
}

// handleExchangeRun starts a run through the same call as the admin API; a dry run is
// waited for and shown as diff tables, a real run answers once it started.
func (c *Console) handleExchangeRun(ec echo.Context) error {
	name := ec.Param("name")
	if !c.cfg.Exchanges.Has(name) {
		return c.fail(ec, http.StatusNotFound, "No exchange is called "+strconv.Quote(name)+".")
	}
	dry := ec.Request().PostFormValue("dry") == "true"
	tx, done, err := c.cfg.Exchanges.Launch(name, dry)
	switch {
	case exchange.IsBusy(err):
		return c.fail(ec, http.StatusConflict, err.Error())
	case err != nil:
		return c.fail(ec, http.StatusServiceUnavailable, err.Error())
	}
	ctx := ec.Request().Context()
	if !dry {
		return ec.Redirect(http.StatusSeeOther, "/console/exchanges/"+name+"?started="+tx)
	}
	var r exchange.RunResult
	select {
	case r = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.Err != nil && r.Run == nil {
		return c.fail(ec, http.StatusServiceUnavailable, r.Err.Error())
	}
	p, err := c.exchangePage(ec, name)
	if err != nil {
		return err
	}
	p.DryRun = r.Run
	if r.Run == nil {
		return errors.New("exchange dry run: no run and no error")
	}
	for _, req := range r.Run.Requests {
		p.Pulled += req.Values
	}
	for _, t := range r.Run.Targets {
		dt := &diffTable{Target: t.Target, Diff: t.Diff, Error: t.Error}
		if t.Diff != nil {
			dt.Rows = diffRows(t.Diff, t.Values, c.namesOf(ctx, t.Target))
		}
		p.Diffs = append(p.Diffs, dt)
	}
	return c.render(ec, http.StatusOK, "exchange", "Dry run of "+name, p)
}
