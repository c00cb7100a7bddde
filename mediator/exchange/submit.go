package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/metadata"
	"github.com/tally-hmis/tally/transform/period"
)

// withRun is the transaction record of a run, with the run's summary.
func withRun(rec *txlog.TxRecord, run *ExchangeRun) (*txlog.TxRecord, error) {
	data, err := json.Marshal(run)
	if err != nil {
		return nil, err
	}
	r := *rec
	r.Exchange = data
	return &r, nil
}

// submitRun stores a run as one transaction. The pulled values go to TALLY_INGEST like
// any payload's batches (the mapper maps them for each target); the removals of stale
// values are already in target terms and go to TALLY_DELIVER under the same transaction,
// as batches numbered after the pulled ones. Every target gets the same number of batches,
// as the transaction log expects: a target with fewer removals than another is recorded
// "empty" for the rest. The record is written once everything is stored (PubAck), and
// then the target keys the run produced are recorded in tally_state: from this moment the
// values are on their way, with retries and dead letters, so the next run compares with
// them.
func (x *Runner) submitRun(ctx context.Context, e *exchange, run *ExchangeRun) error {
	src := e.source
	pb := x.pub.Start(ctx)
	n, values, err := x.addPulled(pb, e, run)
	if err != nil {
		return err
	}
	removalBatches, pads, err := x.addRemovals(pb, e, run, n)
	if err != nil {
		return err
	}
	if _, err := pb.Wait(); err != nil {
		return err
	}
	total := n + removalBatches
	if total == 0 {
		// Nothing to send: one empty batch per target, so that the transaction reads as
		// delivered rather than waiting for batches that will never come.
		total = 1
		for _, t := range x.cfg.TargetsOf(src) {
			pads = append(pads, pad{t.Name, 0})
		}
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pipeline.BookkeepingTimeout)
	defer cancel()
	for _, p := range pads {
		if err := x.tx.PutDelivery(bctx, run.Transaction, &txlog.DeliveryRecord{Target: p.target, Seq: p.seq,
			Outcome: txlog.OutcomeEmpty, Time: x.now().UTC()}); err != nil {
			return err
		}
	}
	run.Values, run.Batches = values, total
	rec := &txlog.TxRecord{ID: run.Transaction, Source: src.Name, Received: run.Started, Format: e.format(), Values: values,
		Batches: total, Targets: x.cfg.TargetNamesOf(src)}
	if err := x.createRunRecord(bctx, rec, run); err != nil {
		return err
	}
	x.counter.Ingested(src.Name, values, n)
	x.recordDelivered(bctx, e, run)
	return nil
}

// addPulled adds the pulled batches to pb, for TALLY_INGEST; it returns how many batches
// and values.
func (x *Runner) addPulled(pb *stream.Batch, e *exchange, run *ExchangeRun) (n, values int, err error) {
	for _, p := range run.pulled {
		if !p.ok {
			continue
		}
		for _, b := range p.batches {
			if err := pb.Add(pipeline.IngestMessage(e.source.Name, run.Transaction, b.ID, transform.EncodeBatch(b))); err != nil {
				return n, values, err
			}
			n++
			values += len(b.Values)
		}
	}
	return n, values, nil
}

// pad is a batch of a transaction a target gets nothing in: recorded empty.
type pad struct {
	target string
	seq    int
}

// addRemovals adds the removal batches to pb, for TALLY_DELIVER, numbered after the n
// pulled ones: the k-th of every target under one number. It returns how many numbers
// that took, and the pads of the targets with fewer removals.
func (x *Runner) addRemovals(pb *stream.Batch, e *exchange, run *ExchangeRun, n int) (int, []pad, error) {
	targets := x.cfg.TargetsOf(e.source)
	tx := run.Transaction
	removalBatches := 0
	for _, t := range targets {
		if tr := run.targetRun[t.Name]; tr != nil {
			removalBatches = max(removalBatches, len(tr.removals))
		}
	}
	var pads []pad
	for k := range removalBatches {
		seq := n + k
		for _, t := range targets {
			tr := run.targetRun[t.Name]
			if tr == nil || k >= len(tr.removals) {
				pads = append(pads, pad{t.Name, seq})
				continue
			}
			b := tr.removals[k]
			b.ID, b.TxID, b.Seq, b.Received = pipeline.BatchMsgID(tx, seq), tx, seq, run.Started
			b.Values = slices.Clone(b.Values)
			for i := range b.Values {
				b.Values[i].Index = i
			}
			if err := pb.Add(pipeline.DeliverMessage(b.ID+":"+t.Name, nil, &b, 0, nil)); err != nil {
				return 0, nil, err
			}
		}
	}
	return removalBatches, pads, nil
}

// recordDelivered records, per target, the keys the run produced (the new delivered
// sets), for the next run to compare with.
func (x *Runner) recordDelivered(ctx context.Context, e *exchange, run *ExchangeRun) {
	for _, t := range x.cfg.TargetsOf(e.source) {
		tr := run.targetRun[t.Name]
		if tr == nil {
			continue
		}
		for _, w := range tr.state {
			if err := x.store.storeDelivered(ctx, e.cfg.Name, t.Name, w.request, w.period, w.set); err != nil {
				run.errs = append(run.errs, t.Name+": recording what was delivered: "+err.Error())
				break
			}
		}
	}
}

// createRunRecord writes a run's transaction record.
func (x *Runner) createRunRecord(ctx context.Context, rec *txlog.TxRecord, run *ExchangeRun) error {
	r, err := withRun(rec, run)
	if err != nil {
		return err
	}
	if err := x.tx.Put(ctx, r); err != nil {
		return err
	}
	run.txRecord = rec
	return nil
}

// recordFailedRun records a run that sent nothing: a transaction without batches or
// targets, which the log shows as failed.
func (x *Runner) recordFailedRun(ctx context.Context, e *exchange, run *ExchangeRun) {
	if run.Transaction == "" || run.DryRun {
		return
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pipeline.BookkeepingTimeout)
	defer cancel()
	rec := &txlog.TxRecord{ID: run.Transaction, Source: e.source.Name, Received: run.Started, Format: e.format()}
	if err := x.createRunRecord(bctx, rec, run); err != nil {
		x.log.Warn("recording a failed exchange run", "exchange", e.cfg.Name, "err", err)
	}
}

// afterSubmit waits for the run's deliveries and registers complete data sets.
func (x *Runner) afterSubmit(ctx context.Context, e *exchange, run *ExchangeRun) {
	var view *txlog.TxView
	if await := e.cfg.Await.D(); await > 0 {
		view = x.awaitTx(ctx, run.Transaction, await)
		if view != nil {
			noteDeliveries(run, view, await)
		}
	}
	if e.cfg.Completeness == nil {
		return
	}
	for _, t := range x.cfg.TargetsOf(e.source) {
		tr := run.targetRun[t.Name]
		if tr == nil {
			continue
		}
		if view != nil {
			if ts := targetSummaryOf(view, t.Name); ts != nil && (ts.Done < ts.Batches || ts.Rejected > 0) {
				tr.sum.Error = joinErr(tr.sum.Error, "completeness not registered: deliveries did not all succeed")
				continue
			}
		}
		if err := x.registerCompleteness(ctx, e, t.Name, tr); err != nil {
			msg := "registering completeness: " + err.Error()
			tr.sum.Error = joinErr(tr.sum.Error, msg)
			run.errs = append(run.errs, t.Name+": "+msg)
		}
	}
}

// noteDeliveries records in the run how its deliveries went, as the transaction log
// tells after the wait: an error when they were not all done, or failed.
func noteDeliveries(run *ExchangeRun, view *txlog.TxView, await time.Duration) {
	run.Delivery = view.Status
	for _, ts := range view.Targets {
		if tr := run.targetRun[ts.Target]; tr != nil {
			tr.sum.Delivery = describeTarget(ts)
		}
	}
	switch view.Status {
	case txlog.TxDelivered:
	case txlog.TxAccepted:
		run.errs = append(run.errs, fmt.Sprintf("deliveries not finished within await (%s); see transaction %s",
			await, run.Transaction))
	default:
		msg := "deliveries " + view.Status
		for _, ts := range view.Targets {
			if ts.LastError != "" {
				msg += "; " + ts.Target + ": " + transform.ClipText(ts.LastError, 200)
			} else if ts.Rejected > 0 {
				msg += fmt.Sprintf("; %s rejected %d values (dead letters)", ts.Target, ts.Rejected)
			}
		}
		run.errs = append(run.errs, msg)
	}
}

func targetSummaryOf(v *txlog.TxView, target string) *txlog.TargetSummary {
	for _, ts := range v.Targets {
		if ts.Target == target {
			return ts
		}
	}
	return nil
}

func describeTarget(ts *txlog.TargetSummary) string {
	c := ts.Counts
	return fmt.Sprintf("%d/%d batches done: %d imported, %d updated, %d deleted, %d ignored, %d rejected",
		ts.Done, ts.Batches, c.Imported, c.Updated, c.Deleted, c.Ignored, ts.Rejected)
}

// awaitTx polls the transaction log until the transaction is no longer accepted (every
// batch reached an outcome at every target) or the wait is over, and returns the last view.
func (x *Runner) awaitTx(ctx context.Context, tx string, wait time.Duration) *txlog.TxView {
	deadline := time.Now().Add(wait)
	pauseFor := 50 * time.Millisecond
	var last *txlog.TxView
	for {
		v, err := x.tx.View(ctx, tx)
		if err == nil {
			last = v
			if v.Status != txlog.TxAccepted {
				return v
			}
		}
		if time.Now().Add(pauseFor).After(deadline) || ctx.Err() != nil {
			return last
		}
		pipeline.Pause(ctx, pauseFor)
		pauseFor = min(pauseFor*2, time.Second)
	}
}

// registrations works out which data sets the run completes at a target: for each org
// unit, period and attribute option combo, the share of the data set's elements with a
// value must reach completeness.share.
func (x *Runner) registrations(ctx context.Context, e *exchange, target string, tr *targetRun) ([]dhis2.Registration, error) {
	c := e.cfg.Completeness
	md, err := x.mapping.Metadata().Metadata(ctx, target)
	if err != nil {
		return nil, err
	}
	ix := mapping.NewIndex(md)
	dsScheme, _ := transform.ParseIDScheme(c.IDScheme)
	var out []dhis2.Registration
	var errs []error
	for _, ref := range c.DataSets {
		ds, err := ix.DataSet(dsScheme, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, dataSetRegistrations(ix, ds, tr, c.Share)...)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.DataSet+a.Period+a.OrgUnit+a.AttributeOptionCombo < b.DataSet+b.Period+b.OrgUnit+b.AttributeOptionCombo
	})
	return out, errors.Join(errs...)
}

// cell is where a data set is registered complete: an org unit, a period and an attribute
// option combo (by UID; "" for the default).
type cell struct{ ou, pe, aoc string }

// dataSetRegistrations are the cells of data set ds where the run produced values for at
// least share of its elements.
func dataSetRegistrations(ix *mapping.Index, ds *metadata.DataSet, tr *targetRun, share float64) []dhis2.Registration {
	elems := map[string]bool{}
	for _, el := range ds.DataSetElements {
		elems[el.DataElement.ID] = true
	}
	pt, err := period.TypeByName(ds.PeriodType)
	if err != nil || len(elems) == 0 {
		return nil
	}
	var out []dhis2.Registration
	for at, des := range elementsByCell(ix, tr, pt, elems) {
		if float64(len(des))+1e-9 >= share*float64(len(elems)) {
			out = append(out, dhis2.Registration{DataSet: ds.ID, Period: at.pe, OrgUnit: at.ou, AttributeOptionCombo: at.aoc,
				StoredBy: "tally"})
		}
	}
	return out
}

// elementsByCell gathers, per cell, the data elements (of elems, by UID) the run produced
// a value of in periods of type pt.
func elementsByCell(ix *mapping.Index, tr *targetRun, pt period.Type, elems map[string]bool) map[cell]map[string]bool {
	counts := map[cell]map[string]bool{}
	for i, produced := range tr.produced {
		sch := tr.schemes[i].Resolved(transform.SchemeUID)
		for pe, keys := range produced {
			if p, err := period.Parse(pe); err != nil || p.Type() != pt {
				continue
			}
			for k := range keys {
				at, de, ok := cellOf(ix, sch, pe, k)
				if !ok || !elems[de] {
					continue
				}
				if counts[at] == nil {
					counts[at] = map[string]bool{}
				}
				counts[at][de] = true
			}
		}
	}
	return counts
}

// cellOf resolves a produced key of period pe, written in sch, to its cell and its data
// element's UID; false when the target does not know one of its ids.
func cellOf(ix *mapping.Index, sch transform.IDSchemes, pe string, k key4) (cell, string, bool) {
	de, err := ix.DataElement(sch.DataElement, k.de)
	if err != nil {
		return cell{}, "", false
	}
	ou, err := ix.OrgUnit(sch.OrgUnit, k.ou)
	if err != nil {
		return cell{}, "", false
	}
	aoc := ""
	if k.aoc != "" {
		coc, err := ix.CategoryOptionCombo(sch.AttributeOptionCombo, k.aoc)
		if err != nil {
			return cell{}, "", false
		}
		if coc.ID != metadata.DefaultCategoryOptionComboUID {
			aoc = coc.ID
		}
	}
	return cell{ou.ID, pe, aoc}, de.ID, true
}

// registerCompleteness posts the registrations with the CREATE strategy, so that a data
// set completed by an earlier run keeps its completion date (DHIS2's timeliness reports
// read it).
func (x *Runner) registerCompleteness(ctx context.Context, e *exchange, target string, tr *targetRun) error {
	regs, err := x.registrations(ctx, e, target, tr)
	if len(regs) == 0 {
		return err
	}
	t, ok := x.targets.Get(target)
	if !ok {
		return fmt.Errorf("no target %q", target)
	}
	opts := dhis2.CompletenessOptions{Schemes: transform.IDSchemes{IDScheme: transform.SchemeUID}, ImportStrategy: "CREATE",
		DryRun: x.settings.DryRun(target)}
	const chunk = 500
	for start := 0; start < len(regs); start += chunk {
		part := regs[start:min(start+chunk, len(regs))]
		res, rerr := t.Client().RegisterCompleteness(ctx, part, opts)
		var de *dhis2.Error
		switch {
		case rerr == nil:
			tr.sum.Registered += res.Counts.Imported
			tr.sum.Already += res.Counts.Ignored
		case errors.As(rerr, &de) && de.Result != nil && len(de.Result.Conflicts) == 0 && de.Result.Counts.Ignored == len(part):
			// DHIS2 says ERROR when it ignored everything: every one was complete already.
			tr.sum.Already += len(part)
		default:
			return errors.Join(err, rerr)
		}
	}
	return err
}

// finishRun decides the run's status, records it, and notifies. A run cut short by
// shutdown is recorded but notifies nobody: it is not the exchange's failure.
func (x *Runner) finishRun(ctx context.Context, e *exchange, run *ExchangeRun, sent, interrupted bool) {
	run.Finished = x.now().UTC()
	switch {
	case !sent:
		run.Status = RunFailed
	case len(run.errs) > 0:
		run.Status = RunPartial
	default:
		run.Status = RunSucceeded
	}
	if len(run.errs) > 0 {
		shown := run.errs[:min(len(run.errs), 5)]
		run.Error = strings.Join(shown, "; ")
		if more := len(run.errs) - len(shown); more > 0 {
			run.Error += fmt.Sprintf(" (and %d more)", more)
		}
	}
	if interrupted {
		run.errs = append(run.errs, "interrupted: Tally is stopping")
		run.Error = joinErr(run.Error, "interrupted: Tally is stopping")
		if run.Status == RunSucceeded {
			run.Status = RunPartial
		}
	}
	if run.DryRun {
		return
	}
	x.metrics.observe(run)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*pipeline.BookkeepingTimeout)
	defer cancel()
	if !interrupted {
		x.notifyRun(bctx, e, run)
	}
	if rec := run.txRecord; rec != nil {
		r, err := withRun(rec, run)
		if err == nil {
			err = x.tx.Put(bctx, r)
		}
		if err != nil {
			x.log.Warn("recording the exchange run", "exchange", e.cfg.Name, "tx", rec.ID, "err", err)
		}
	}
	if err := x.store.putJSONState(bctx, exchangeKey(e.cfg.Name, "last"), run); err != nil {
		x.log.Warn("recording the exchange run", "exchange", e.cfg.Name, "err", err)
	}
}
