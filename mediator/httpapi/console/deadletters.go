package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// The dead-letter pages: a filtered list to select from; a preview of exactly what a replay
// would send (with names); the replay; a discard that first states how many values it
// removes and refuses a confirmation for a different number; each letter with its history.

const (
	dlqPageSize = 50
	// maxSelection bounds the letters one action takes ("all matching" included).
	maxSelection = 10000
	// maxPreviewLetters bounds the letters whose values a preview lists in full; the
	// counts cover the whole selection.
	maxPreviewLetters = 20
)

func (c *Console) dlqRoutes(g *echo.Group) {
	g.GET("/dlq", c.handleDLQList)
	g.GET("/dlq/:seq", c.handleDLQShow)
	g.POST("/dlq/preview", c.handleDLQPreview)
	g.POST("/dlq/replay", c.handleDLQReplay)
	g.POST("/dlq/discard/confirm", c.handleDLQDiscardConfirm)
	g.POST("/dlq/discard", c.handleDLQDiscard)
}

// dlqForm is the list's filter as a form or query string carries it.
type dlqForm struct {
	Target, Source, Reason, Code, Tx, Since, Until string
}

func dlqFormOf(get func(string) string) dlqForm {
	return dlqForm{Target: get("target"), Source: get("source"), Reason: get("reason"), Code: get("code"), Tx: get("tx"),
		Since: get("since"), Until: get("until")}
}

// Query is the filter as a query string.
func (f dlqForm) Query() template.URL {
	q := url.Values{}
	for k, v := range map[string]string{"target": f.Target, "source": f.Source, "reason": f.Reason, "code": f.Code,
		"tx": f.Tx, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return template.URL(q.Encode()) // encoded here: the template must not encode it again
}

func (c *Console) dlqFilter(f dlqForm) (dlq.DLQFilter, error) {
	out := dlq.DLQFilter{Target: f.Target, Source: f.Source, Reason: f.Reason, Code: f.Code, TxID: f.Tx}
	var err error
	out.Since, out.Until, err = c.bounds(f.Since, f.Until)
	return out, err
}

type dlqList struct {
	Filter      dlqForm
	Targets     []string
	Sources     []string
	Reasons     []string
	Rows        []*dlq.DeadLetterSummary
	Total       int
	TotalValues int
	Next, After uint64
	NextQuery   template.URL
}

// reasons are the dead-letter reasons an operator filters by (tally_dlq_messages_total's).
var reasons = []string{"rejected", "permanent", "exhausted", "mapping", "locked", "undecodable", "panic", "max_delivered", "no_source"}

func (c *Console) handleDLQList(ec echo.Context) error {
	form := dlqFormOf(ec.QueryParam)
	data := &dlqList{Filter: form, Targets: c.targetNames(), Sources: c.sourceNames(), Reasons: reasons}
	f, err := c.dlqFilter(form)
	if err != nil {
		return c.renderView(ec, http.StatusBadRequest, "dlq", view{Title: "Dead letters", Nav: "dlq", Data: data, Error: err.Error()})
	}
	after, _ := strconv.ParseUint(ec.QueryParam("after"), 10, 64)
	data.After = after
	ctx := ec.Request().Context()
	rows, total, next, err := c.cfg.DeadLetters.List(ctx, f, after, dlqPageSize)
	if err != nil {
		return err
	}
	data.Rows, data.Total, data.Next = rows, total, next
	if err := c.cfg.DeadLetters.Scan(ctx, f, 0, func(d *dlq.DeadLetterSummary) bool {
		data.TotalValues += d.Values
		return true
	}); err != nil {
		return err
	}
	if next != 0 {
		q := string(form.Query())
		if q != "" {
			q += "&"
		}
		data.NextQuery = template.URL(q + "after=" + strconv.FormatUint(next, 10))
	}
	return c.render(ec, http.StatusOK, "dlq", "Dead letters", data)
}

type dlqShow struct {
	Letter  *dlq.DeadLetter
	Values  []namedValue
	Events  []*txlog.TxEvent
	Limited bool
}

// maxLetterValues bounds the values a letter's page lists.
const maxLetterValues = 1000

func (c *Console) handleDLQShow(ec echo.Context) error {
	seq, err := strconv.ParseUint(ec.Param("seq"), 10, 64)
	if err != nil {
		return c.fail(ec, http.StatusBadRequest, "Not a dead-letter sequence: "+strconv.Quote(ec.Param("seq")))
	}
	ctx := ec.Request().Context()
	dl, err := c.cfg.DeadLetters.At(ctx, seq)
	if errors.Is(err, dlq.ErrDeadLetterNotFound) {
		return c.fail(ec, http.StatusNotFound, fmt.Sprintf("No dead letter %d: it was replayed or discarded (see its transaction).", seq))
	}
	if err != nil {
		return err
	}
	p := &dlqShow{Letter: dl}
	if dl.Batch != nil {
		vs := dl.Batch.Values
		p.Limited = len(vs) > maxLetterValues
		p.Values = c.namesOf(ctx, dl.Target).values(vs[:min(len(vs), maxLetterValues)])
	}
	p.Events = c.letterEvents(ctx, dl.TxID, dl.Target, dl.BatchSeq)
	return c.render(ec, http.StatusOK, "deadletter", fmt.Sprintf("Dead letter %d", seq), p)
}

// letterEvents are what operators did to the dead letters of one batch at one target: the
// letter's history across replays.
func (c *Console) letterEvents(ctx context.Context, txID, target string, batch int) []*txlog.TxEvent {
	if !txlog.ValidTxID(txID) {
		return nil
	}
	v, err := c.cfg.TxLog.View(ctx, txID)
	if err != nil {
		return nil
	}
	var out []*txlog.TxEvent
	for _, e := range v.Events {
		if e.Target == target && e.Seq == batch {
			out = append(out, e)
		}
	}
	return out
}

// selection is the letters an action takes: the ones ticked, or all that match the filter.
type selection struct {
	Seqs   []uint64
	All    bool
	Filter dlqForm
	Values int
	Remap  bool
}

// Fields are the hidden form fields that carry the selection to the next step.
func (s *selection) Fields() url.Values {
	q := url.Values{}
	if s.All {
		q.Set("all", "true")
		for k, v := range map[string]string{"target": s.Filter.Target, "source": s.Filter.Source, "reason": s.Filter.Reason,
			"code": s.Filter.Code, "tx": s.Filter.Tx, "since": s.Filter.Since, "until": s.Filter.Until} {
			if v != "" {
				q.Set(k, v)
			}
		}
	} else {
		for _, seq := range s.Seqs {
			q.Add("seq", strconv.FormatUint(seq, 10))
		}
	}
	if s.Remap {
		q.Set("remap", "true")
	}
	return q
}

// selectionOf reads the selection of a POSTed form and resolves it to sequences, counting
// the values the letters hold now.
func (c *Console) selectionOf(ec echo.Context) (*selection, error) {
	r := ec.Request()
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("form: %w", err)
	}
	s := &selection{All: r.PostForm.Get("all") == "true", Filter: dlqFormOf(r.PostForm.Get), Remap: r.PostForm.Get("remap") == "true"}
	picked := map[uint64]bool{}
	for _, v := range r.PostForm["seq"] {
		seq, err := strconv.ParseUint(v, 10, 64)
		if err != nil || seq == 0 {
			return nil, fmt.Errorf("seq: %q is not a dead-letter sequence", v)
		}
		picked[seq] = true
	}
	switch {
	case s.All && len(picked) > 0:
		return nil, errors.New("select letters or all matching, not both")
	case !s.All && len(picked) == 0:
		return nil, errors.New("nothing selected: tick letters, or choose all matching")
	case len(picked) > maxSelection:
		return nil, fmt.Errorf("at most %d letters at once", maxSelection)
	}
	f, err := c.dlqFilter(s.Filter)
	if err != nil {
		return nil, err
	}
	if !s.All {
		f = dlq.DLQFilter{}
	}
	// Scan, rather than read each picked letter, so that the count is of what is there now.
	var scanErr error
	err = c.cfg.DeadLetters.Scan(r.Context(), f, 0, func(d *dlq.DeadLetterSummary) bool {
		if s.All || picked[d.Seq] {
			if len(s.Seqs) == maxSelection {
				scanErr = fmt.Errorf("more than %d letters match: narrow the filter", maxSelection)
				return false
			}
			s.Seqs = append(s.Seqs, d.Seq)
			s.Values += d.Values
		}
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, err
	}
	if len(s.Seqs) == 0 {
		return nil, errors.New("no dead letter matches the selection any more")
	}
	return s, nil
}

type dlqPreview struct {
	Sel      *selection
	Letters  []*letterPreview
	Shown    int
	Failures int
}

type letterPreview struct {
	*dlq.ReplayPreview
	Values []namedValue
	Error  string
}

// handleDLQPreview shows what a replay of the selection would send, per letter, with names.
func (c *Console) handleDLQPreview(ec echo.Context) error {
	sel, err := c.selectionOf(ec)
	if err != nil {
		return c.fail(ec, http.StatusBadRequest, err.Error())
	}
	ctx := ec.Request().Context()
	p := &dlqPreview{Sel: sel}
	byTarget := map[string]*names{}
	for i, seq := range sel.Seqs {
		if i == maxPreviewLetters {
			break
		}
		rp, err := c.cfg.DeadLetters.PreviewReplay(ctx, seq, sel.Remap)
		lp := &letterPreview{ReplayPreview: rp}
		if err != nil {
			lp.ReplayPreview = &dlq.ReplayPreview{Seq: seq}
			lp.Error = err.Error()
			p.Failures++
		} else if rp.Batch != nil {
			n := byTarget[rp.Target]
			if n == nil {
				n = c.namesOf(ctx, rp.Target)
				byTarget[rp.Target] = n
			}
			lp.Values = n.values(rp.Batch.Values)
		}
		p.Letters = append(p.Letters, lp)
	}
	p.Shown = len(p.Letters)
	return c.render(ec, http.StatusOK, "dlqpreview", "Replay preview", p)
}

type dlqResult struct {
	Action   string
	Results  []*dlq.ReplayResult
	Done     int
	Failed   int
	Values   int
	TxIDs    []string
	Selected int
}

// handleDLQReplay replays the selection, one letter after the other, through the same
// service call as the admin API.
func (c *Console) handleDLQReplay(ec echo.Context) error {
	sel, err := c.selectionOf(ec)
	if err != nil {
		return c.fail(ec, http.StatusBadRequest, err.Error())
	}
	out := c.each(ec.Request().Context(), sel.Seqs, func(ctx context.Context, seq uint64) (*dlq.ReplayResult, error) {
		return c.cfg.DeadLetters.Replay(ctx, seq, sel.Remap)
	})
	out.Action = "replayed"
	return c.render(ec, http.StatusOK, "dlqresult", "Replay", out)
}

type dlqConfirm struct {
	Sel *selection
}

// handleDLQDiscardConfirm states what a discard would remove, and asks.
func (c *Console) handleDLQDiscardConfirm(ec echo.Context) error {
	sel, err := c.selectionOf(ec)
	if err != nil {
		return c.fail(ec, http.StatusBadRequest, err.Error())
	}
	return c.render(ec, http.StatusOK, "dlqconfirm", "Discard dead letters?", &dlqConfirm{Sel: sel})
}

// handleDLQDiscard discards the selection once the form confirms the number of values the
// selection holds now: a selection that grew since the confirmation is asked again.
func (c *Console) handleDLQDiscard(ec echo.Context) error {
	sel, err := c.selectionOf(ec)
	if err != nil {
		return c.fail(ec, http.StatusBadRequest, err.Error())
	}
	confirmed, err := strconv.Atoi(ec.Request().PostForm.Get("confirm"))
	if err != nil || confirmed != sel.Values {
		return c.renderView(ec, http.StatusConflict, "dlqconfirm", view{Title: "Discard dead letters?", Nav: "dlqconfirm", Data: &dlqConfirm{Sel: sel},
			Error: fmt.Sprintf("The selection now holds %d values in %d letters; confirm that number to discard them.", sel.Values, len(sel.Seqs))})
	}
	out := c.each(ec.Request().Context(), sel.Seqs, c.cfg.DeadLetters.Discard)
	out.Action = "discarded"
	return c.render(ec, http.StatusOK, "dlqresult", "Discard", out)
}

// each applies fn to every letter, reporting each outcome; a letter that fails is reported
// and the next one tried.
func (c *Console) each(ctx context.Context, seqs []uint64, fn func(context.Context, uint64) (*dlq.ReplayResult, error)) *dlqResult {
	out := &dlqResult{Selected: len(seqs)}
	for _, seq := range seqs {
		if ctx.Err() != nil {
			break
		}
		res, err := fn(ctx, seq)
		if res == nil {
			res = &dlq.ReplayResult{Seq: seq}
		}
		if err != nil {
			res.Status, res.Error = "failed", err.Error()
			out.Failed++
		} else {
			out.Done++
			out.Values += res.Values
		}
		if res.TxID != "" && !slices.Contains(out.TxIDs, res.TxID) {
			out.TxIDs = append(out.TxIDs, res.TxID)
		}
		out.Results = append(out.Results, res)
	}
	return out
}
