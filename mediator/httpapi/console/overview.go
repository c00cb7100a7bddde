package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// overview is the first page: each target, source and exchange with what needs attention.
type overview struct {
	Targets   []*targetRow
	Sources   []*sourceRow
	Exchanges []*exchange.ExchangeInfo
	Problems  []string
}

type targetRow struct {
	Name, URL string
	Circuit   delivery.CircuitStatus
	// Reachable: the circuit is closed, or half-open and probing.
	Reachable      bool
	BatchesWaiting uint64
	// ValuesWaiting is the values of the batches waiting; ValuesExact is false when only the
	// oldest maxValueScan batches were read (ValuesWaiting is then a lower bound).
	ValuesWaiting uint64
	ValuesExact   bool
	DeadLetters   int
	DeadValues    int
	// Delivered and Rejected are the values counted since start (tally_delivery_values_total).
	Delivered, Rejected float64
}

type sourceRow struct {
	Name        string
	Last        *txlog.TxView
	ValuesToday int
	TxToday     int
	// Rejections counts the requests refused since start (tally_ingest_rejected_requests_total).
	Rejections float64
	// Values is tally_ingest_values_total since start.
	Values float64
}

// maxTodayScan bounds the transactions read to count a source's values today.
const maxTodayScan = 10000

// maxValueScan bounds the batches the overview reads to count a target's values waiting: a
// backlog of a thousand batches (about a million values) is counted exactly, a larger one
// from its oldest thousand batches, shown as "at least".
const maxValueScan = 1000

func (c *Console) handleOverview(ec echo.Context) error {
	ctx := ec.Request().Context()
	o := &overview{}
	metrics := c.gather(o)
	waiting := map[string]uint64{}
	if c.cfg.Waiting != nil {
		w, err := c.cfg.Waiting.Waiting(ctx)
		if err != nil {
			o.Problems = append(o.Problems, "batches waiting: "+err.Error())
		}
		waiting = w
	}
	for i := range c.cfg.Config.Targets {
		t := &c.cfg.Config.Targets[i]
		row := &targetRow{Name: t.Name, URL: t.URL, BatchesWaiting: waiting[t.Name], ValuesExact: true}
		if row.BatchesWaiting > 0 && c.cfg.Waiting != nil {
			n, exact, err := c.cfg.Waiting.Values(ctx, t.Name, maxValueScan)
			if err != nil {
				o.Problems = append(o.Problems, "values waiting for "+t.Name+": "+err.Error())
			}
			row.ValuesWaiting, row.ValuesExact = n, exact
		}
		if cs, ok := c.cfg.Targets.Circuit(t.Name); ok {
			row.Circuit = cs
			row.Reachable = cs.State != "open"
		}
		row.Delivered = metrics.sum("tally_delivery_values_total", map[string]string{"target": t.Name}, "outcome", "imported", "updated", "ignored", "deleted")
		row.Rejected = metrics.sum("tally_delivery_values_total", map[string]string{"target": t.Name}, "outcome", "rejected", "locked")
		if err := c.cfg.DeadLetters.Scan(ctx, dlq.DLQFilter{Target: t.Name}, 0, func(d *dlq.DeadLetterSummary) bool {
			row.DeadLetters++
			row.DeadValues += d.Values
			return true
		}); err != nil {
			o.Problems = append(o.Problems, "dead letters of "+t.Name+": "+err.Error())
		}
		o.Targets = append(o.Targets, row)
	}
	midnight := c.cfg.Now().UTC().Truncate(24 * time.Hour)
	for _, src := range c.cfg.Config.Sources {
		row := &sourceRow{Name: src.Name,
			Rejections: metrics.sum("tally_ingest_rejected_requests_total", map[string]string{"source": src.Name}, ""),
			Values:     metrics.sum("tally_ingest_values_total", map[string]string{"source": src.Name}, "")}
		c.sourceToday(ctx, row, midnight, o)
		o.Sources = append(o.Sources, row)
	}
	o.Exchanges = c.cfg.Exchanges.Infos(ctx)
	return c.render(ec, http.StatusOK, "overview", "Overview", o)
}

// sourceToday fills a source's last payload and what it sent since midnight UTC.
func (c *Console) sourceToday(ctx context.Context, row *sourceRow, midnight time.Time, o *overview) {
	today, err := c.cfg.TxLog.Search(ctx, txlog.TxFilter{Source: row.Name, Since: midnight, Limit: maxTodayScan})
	if err != nil {
		o.Problems = append(o.Problems, "transactions of "+row.Name+": "+err.Error())
		return
	}
	for _, v := range today {
		row.TxToday++
		row.ValuesToday += v.Values
	}
	if len(today) > 0 {
		row.Last = today[0]
		return
	}
	if last, err := c.cfg.TxLog.Search(ctx, txlog.TxFilter{Source: row.Name, Limit: 1}); err == nil && len(last) > 0 {
		row.Last = last[0]
	}
}

// families are the gathered metrics by name.
type families map[string]*dto.MetricFamily

func (c *Console) gather(o *overview) families {
	out := families{}
	if c.cfg.Gatherer == nil {
		return out
	}
	mfs, err := c.cfg.Gatherer.Gather()
	if err != nil {
		o.Problems = append(o.Problems, "metrics: "+err.Error())
	}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// sum adds the counter or gauge series of a metric whose labels match every one of match
// and, when label is set, whose label is one of values.
func (f families) sum(name string, match map[string]string, label string, values ...string) float64 {
	mf, ok := f[name]
	if !ok {
		return 0
	}
	var total float64
	for _, m := range mf.GetMetric() {
		if !labelsMatch(m.GetLabel(), match, label, values) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

func labelsMatch(ls []*dto.LabelPair, match map[string]string, label string, values []string) bool {
	found := 0
	inValues := label == ""
	for _, l := range ls {
		if v, ok := match[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
		if label != "" && l.GetName() == label {
			for _, v := range values {
				inValues = inValues || strings.EqualFold(v, l.GetValue())
			}
		}
	}
	return found == len(match) && inValues
}
