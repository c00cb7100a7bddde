package console

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// "Where did this value come from": given a target, a period, and a data element and org
// unit (by UID, code or name), the deliveries that carried such values, newest first, with
// what each wrote, read from the transaction log's value index (txlog/origins.go).

// maxOrigins bounds the deliveries the page lists; maxContentTx the transactions a content
// search of the list considers.
const (
	maxOrigins   = 200
	maxContentTx = 10000
)

type originForm struct {
	Target, DE, PE, OU string
}

type originRow struct {
	*txlog.Origin
	Values []namedOrigin
}

type namedOrigin struct {
	txlog.OriginValue
	DEName, OUName, COCName string
}

type originPage struct {
	Form    originForm
	Targets []string
	Asked   bool
	Rows    []originRow
}

func (c *Console) handleOrigin(ec echo.Context) error {
	q := ec.QueryParams()
	form := originForm{Target: q.Get("target"), DE: q.Get("de"), PE: strings.TrimSpace(q.Get("pe")), OU: q.Get("ou")}
	p := &originPage{Form: form, Targets: c.targetNames()}
	if form.Target == "" && len(p.Targets) == 1 {
		p.Form.Target = p.Targets[0]
	}
	if form.PE == "" || form.Target == "" || (form.DE == "" && form.OU == "") {
		msg := ""
		if form != (originForm{}) {
			msg = "Give a target, a period, and a data element or org unit (or both)."
		}
		return c.renderView(ec, http.StatusOK, "origin", view{Title: "Where did this value come from?", Nav: "origin", Data: p, Error: msg})
	}
	ctx := ec.Request().Context()
	origins, err := c.origins(ctx, []string{form.Target}, form.Target, form.PE, form.DE, form.OU, maxOrigins)
	if err != nil {
		return err
	}
	p.Asked = true
	n := c.namesOf(ctx, form.Target)
	for _, o := range origins {
		row := originRow{Origin: o}
		for _, v := range o.Values {
			row.Values = append(row.Values, namedOrigin{OriginValue: v, DEName: n.de[v.DataElement], OUName: n.ou[v.OrgUnit], COCName: n.coc[v.CategoryOptionCombo]})
		}
		p.Rows = append(p.Rows, row)
	}
	return c.render(ec, http.StatusOK, "origin", "Where did this value come from?", p)
}

// origins reads the index for values of a data element and org unit (typed as UID, code or
// name, resolved in the targets' metadata) in a period; target and period may be empty.
func (c *Console) origins(ctx context.Context, targets []string, target, period, de, ou string, limit int) ([]*txlog.Origin, error) {
	ix, ok := c.cfg.TxLog.(Origins)
	if !ok {
		return nil, errors.New("this transaction log keeps no value index")
	}
	des, ous := c.aliasesOf(ctx, targets, "de", de), c.aliasesOf(ctx, targets, "ou", ou)
	return ix.Origins(ctx, txlog.OriginQuery{Target: target, Period: period, Limit: limit,
		Match: func(v txlog.OriginValue) bool { return des.has(v.DataElement) && ous.has(v.OrgUnit) }})
}

// contentIDs are the transactions that carried values of the content filter, for the list.
func (c *Console) contentIDs(ctx context.Context, form txFilter) (map[string]bool, error) {
	targets := c.targetNames()
	if form.Target != "" {
		targets = []string{form.Target}
	}
	os, err := c.origins(ctx, targets, form.Target, strings.TrimSpace(form.PE), form.DE, form.OU, 0)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, o := range os {
		if len(ids) == maxContentTx {
			break
		}
		ids[o.TxID] = true
	}
	return ids, nil
}

// valuesPageSize is the rows of a page of a transaction's values.
const valuesPageSize = 100

type txValueRow struct {
	Target  string
	Seq     int
	Replay  int
	Period  string
	Outcome string
	namedOrigin
}

type txValuesPage struct {
	TxID    string
	Rows    []txValueRow
	Total   int
	Page    int
	Pages   int
	HasNext bool
}

// handleTxValues pages through the values a transaction carried to its targets, as the value
// index recorded them when the targets answered (each replay apart).
func (c *Console) handleTxValues(ec echo.Context) error {
	id, err := c.txParam(ec)
	if id == "" {
		return err
	}
	ix, ok := c.cfg.TxLog.(Origins)
	if !ok {
		return c.fail(ec, http.StatusNotImplemented, "This transaction log keeps no value index.")
	}
	ctx := ec.Request().Context()
	os, err := ix.Origins(ctx, txlog.OriginQuery{TxID: id})
	if err != nil {
		return err
	}
	sort.Slice(os, func(i, j int) bool {
		a, b := os[i], os[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		if a.Replay != b.Replay {
			return a.Replay < b.Replay
		}
		return a.Period < b.Period
	})
	p := &txValuesPage{TxID: id, Page: pageOf(ec)}
	for _, o := range os {
		p.Total += len(o.Values)
	}
	p.Pages = (p.Total + valuesPageSize - 1) / valuesPageSize
	start, end := (p.Page-1)*valuesPageSize, p.Page*valuesPageSize
	byTarget := map[string]*names{}
	at := 0
	for _, o := range os {
		for _, v := range o.Values {
			if at >= start && at < end {
				n := byTarget[o.Target]
				if n == nil {
					n = c.namesOf(ctx, o.Target)
					byTarget[o.Target] = n
				}
				p.Rows = append(p.Rows, txValueRow{Target: o.Target, Seq: o.Seq, Replay: o.Replay, Period: o.Period, Outcome: o.Outcome,
					namedOrigin: namedOrigin{OriginValue: v, DEName: n.de[v.DataElement], OUName: n.ou[v.OrgUnit], COCName: n.coc[v.CategoryOptionCombo]}})
			}
			at++
		}
	}
	p.HasNext = end < p.Total
	return c.render(ec, http.StatusOK, "txvalues", "Values of transaction "+id, p)
}
