package console

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// txPageSize is the rows of a page of the transaction list; deliveryPageSize the batch
// records a page of a transaction shows.
const (
	txPageSize       = 50
	deliveryPageSize = 50
)

// txFilter is the transaction list's form, as the query string carries it.
type txFilter struct {
	Source, Status, Target, Since, Until string
	// DE, OU and PE search the content: the transactions that carried such values (by
	// UID, code or name), through the value index.
	DE, OU, PE string
}

// content reports whether the form searches the content.
func (f txFilter) content() bool { return f.DE != "" || f.OU != "" || f.PE != "" }

type txList struct {
	Filter   txFilter
	Sources  []string
	Targets  []string
	Statuses []string
	Rows     []*txlog.TxView
	Page     int
	HasNext  bool
}

func (c *Console) handleTxList(ec echo.Context) error {
	q := ec.QueryParams()
	form := txFilter{Source: q.Get("source"), Status: q.Get("status"), Target: q.Get("target"), Since: q.Get("since"), Until: q.Get("until"),
		DE: q.Get("de"), OU: q.Get("ou"), PE: q.Get("pe")}
	page := pageOf(ec)
	data := &txList{Filter: form, Page: page, Sources: c.sourceNames(), Targets: c.targetNames(),
		Statuses: []string{txlog.TxAccepted, txlog.TxDelivered, txlog.TxPartiallyDelivered, txlog.TxFailed}}
	f, err := c.txFilterOf(form)
	if err != nil {
		return c.renderView(ec, http.StatusBadRequest, "transactions", view{Title: "Transactions", Nav: "transactions", Data: data, Error: err.Error()})
	}
	f.Offset, f.Limit = (page-1)*txPageSize, txPageSize+1
	if form.content() {
		if f.IDs, err = c.contentIDs(ec.Request().Context(), form); err != nil {
			return err
		}
	}
	rows, err := c.cfg.TxLog.Search(ec.Request().Context(), f)
	if err != nil {
		return err
	}
	data.HasNext = len(rows) > txPageSize
	data.Rows = rows[:min(len(rows), txPageSize)]
	return c.render(ec, http.StatusOK, "transactions", "Transactions", data)
}

// txFilterOf checks the form and turns it into the log's filter.
func (c *Console) txFilterOf(form txFilter) (txlog.TxFilter, error) {
	f := txlog.TxFilter{Source: form.Source, Status: form.Status, Target: form.Target}
	if f.Status != "" && !slices.Contains([]string{txlog.TxAccepted, txlog.TxDelivered, txlog.TxPartiallyDelivered, txlog.TxFailed}, f.Status) {
		return f, fmt.Errorf("status: %q is not a transaction status", f.Status)
	}
	var err error
	f.Since, f.Until, err = c.bounds(form.Since, form.Until)
	return f, err
}

// bounds reads a filter's since and until (ParseWhen), naming the field at fault.
func (c *Console) bounds(since, until string) (s, u time.Time, err error) {
	now := c.cfg.Now()
	if s, err = ParseWhen(since, now); err != nil {
		return s, u, fmt.Errorf("since: %w", err)
	}
	if u, err = ParseWhen(until, now); err != nil {
		return s, u, fmt.Errorf("until: %w", err)
	}
	return s, u, nil
}

func (c *Console) sourceNames() []string {
	out := make([]string, len(c.cfg.Config.Sources))
	for i, s := range c.cfg.Config.Sources {
		out[i] = s.Name
	}
	return out
}

func (c *Console) targetNames() []string {
	out := make([]string, len(c.cfg.Config.Targets))
	for i, t := range c.cfg.Config.Targets {
		out[i] = t.Name
	}
	return out
}

// conflictGroup is the conflicts of one target with one error code.
type conflictGroup struct {
	Target, Code string
	Conflicts    int
	Values       int
	Example      string
}

type txPage struct {
	Tx         *txlog.TxView
	Groups     []conflictGroup
	Deliveries []*txlog.DeliveryRecord
	Page       int
	HasNext    bool
	Pages      int
}

// txParam is the transaction id a path names; it answers 400 for one that cannot be.
func (c *Console) txParam(ec echo.Context) (string, error) {
	id := ec.Param("id")
	if !txlog.ValidTxID(id) {
		return "", c.fail(ec, http.StatusBadRequest, "Not a transaction id: "+strconv.Quote(id))
	}
	return id, nil
}

func (c *Console) handleTxShow(ec echo.Context) error {
	id, err := c.txParam(ec)
	if id == "" {
		return err
	}
	v, err := c.cfg.TxLog.View(ec.Request().Context(), id)
	if errors.Is(err, txlog.ErrTxNotFound) {
		return c.fail(ec, http.StatusNotFound, "No transaction "+id+" (records expire after nats.tx_retention).")
	}
	if err != nil {
		return err
	}
	page := pageOf(ec)
	p := &txPage{Tx: v, Groups: groupConflicts(v.Targets), Page: page, Pages: (len(v.Deliveries) + deliveryPageSize - 1) / deliveryPageSize}
	start := min((page-1)*deliveryPageSize, len(v.Deliveries))
	end := min(start+deliveryPageSize, len(v.Deliveries))
	p.Deliveries, p.HasNext = v.Deliveries[start:end], end < len(v.Deliveries)
	return c.render(ec, http.StatusOK, "transaction", "Transaction "+id, p)
}

// groupConflicts sums a transaction's conflicts by target and error code, most values first.
func groupConflicts(ts []*txlog.TargetSummary) []conflictGroup {
	var out []conflictGroup
	for _, t := range ts {
		idx := map[string]int{}
		for _, cf := range t.Conflicts {
			code := cf.ErrorCode
			if code == "" {
				code = "(no code)"
			}
			i, ok := idx[code]
			if !ok {
				i = len(out)
				idx[code] = i
				out = append(out, conflictGroup{Target: t.Target, Code: code, Example: cf.Message})
			}
			out[i].Conflicts++
			out[i].Values += max(len(cf.Indexes), 1)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Values > out[j].Values })
	return out
}

// ParseWhen reads a time bound: RFC 3339, a date (midnight UTC) or a duration meaning that
// long before now. Empty is the zero time. The admin API reads its bounds with it too.
func ParseWhen(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", v); err == nil { // an HTML datetime-local field
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, a date (2024-01-31) or a duration ago (24h)", v)
}
