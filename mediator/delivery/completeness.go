package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// A payload's completeDate registers its data set complete at the target, once the values
// it completes are delivered (spec dhis2.md §1.4, §8). Ingest reads the date as DHIS2 reads
// it (mediator/ingest).
//
// At delivery, a batch that carries the date and was answered by the target (all or some
// of its values taken) records what it completes, in the target's ids; once every batch
// of the transaction has its outcome at that target, the last to finish posts the
// registrations to /api/completeDataSetRegistrations (with the default attribute option
// combo, as DHIS2 registers a header completion) and records the answer under
// <tx>.d.<target>.complete. Two batches finishing together may both post: registration
// is an upsert, so the second changes nothing, and only the first record is kept and
// counted (tally_delivery_completions_total). The transaction is not finished at a target
// until that record exists, so a synchronous answer includes dataSetComplete and the
// registration's conflicts.

// completionsOf is what a delivered batch completes: its data set for each period and org
// unit its values name, on the batch's date, in the target's ids.
func completionsOf(b *transform.Batch) []txlog.Completion {
	if b.CompleteDate == "" || b.DataSet == "" {
		return nil
	}
	var out []txlog.Completion
	seen := map[[2]string]bool{}
	for i := range b.Values {
		k := [2]string{b.Values[i].Period, b.Values[i].OrgUnit}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, txlog.Completion{DataSet: b.DataSet, Period: k[0], OrgUnit: k[1], Date: b.CompleteDate, Schemes: b.Schemes})
	}
	return out
}

// CompleteIfDone registers a transaction's completions at the named target once every one
// of its batches has an outcome there (the mapper calls it for the batches it finishes
// itself).
func (d *Deliverer) CompleteIfDone(ctx context.Context, target, txID string, batches int) {
	if t, ok := d.targets.Get(target); ok {
		d.completeIfDone(ctx, t, txID, batches)
	}
}

// completeIfDone registers a transaction's completions at a target once every one of its
// batches has an outcome there; see the top of this file. batches is what the message
// whose outcome was just recorded carries in Tally-Completes (0: nothing to complete).
func (d *Deliverer) completeIfDone(ctx context.Context, t *Target, txID string, batches int) {
	if batches <= 0 || !txlog.ValidTxID(txID) {
		return
	}
	name := t.cfg.Name
	ds, done, err := d.tx.TargetDeliveries(ctx, txID, name)
	if err != nil {
		d.log.Warn("reading deliveries to register completeness", "tx", txID, "target", name, "err", err)
		return
	}
	if done != nil {
		return
	}
	latest := txlog.LatestBySeq(ds)
	if len(latest) < batches {
		return
	}
	var regs []txlog.Completion
	for _, d := range latest {
		if d.Outcome == txlog.OutcomeRetrying {
			return
		}
		for _, c := range d.Completions {
			if !slices.Contains(regs, c) {
				regs = append(regs, c)
			}
		}
	}
	if len(regs) == 0 {
		return
	}
	rec := d.register(ctx, t, regs)
	first, err := d.tx.PutCompletion(ctx, txID, rec)
	if err != nil {
		d.log.Warn("recording a completeness registration", "tx", txID, "target", name, "err", err)
		return
	}
	if first { // counted once per transaction and target, however many workers posted
		result := "registered"
		if rec.Error != "" {
			result = "failed"
		}
		d.metrics.Completions.WithLabelValues(name, result).Add(float64(len(regs)))
	}
}

// registrationTries bounds the attempts at a registration that fails for a transient
// reason; the delivery message is held (and kept alive) meanwhile.
const registrationTries = 3

// register posts the registrations, grouped by their id schemes, and says what came of it.
func (d *Deliverer) register(ctx context.Context, t *Target, regs []txlog.Completion) *txlog.CompletionRecord {
	rec := &txlog.CompletionRecord{Target: t.cfg.Name, Registrations: len(regs)}
	bySchemes := map[transform.IDSchemes][]dhis2.Registration{}
	var order []transform.IDSchemes
	for _, c := range regs {
		if _, ok := bySchemes[c.Schemes]; !ok {
			order = append(order, c.Schemes)
		}
		bySchemes[c.Schemes] = append(bySchemes[c.Schemes], dhis2.Registration{DataSet: c.DataSet, Period: c.Period,
			OrgUnit: c.OrgUnit, Date: c.Date})
		rec.Date = max(rec.Date, c.Date)
	}
	var errs []string
	for _, sc := range order {
		opts := dhis2.CompletenessOptions{Schemes: sc, DryRun: t.dryRun()}
		res, err := d.registerOnce(ctx, t, bySchemes[sc], opts)
		var de *dhis2.Error
		if errors.As(err, &de) && de.Result != nil {
			res = de.Result
		}
		if res != nil {
			rec.Counts.Add(txlog.ImportCount{Imported: res.Counts.Imported, Updated: res.Counts.Updated,
				Ignored: res.Counts.Ignored, Deleted: res.Counts.Deleted})
			for _, c := range res.Conflicts {
				rec.Conflicts = append(rec.Conflicts, txlog.Conflict{ErrorCode: c.ErrorCode, Object: c.Object, Objects: c.Objects,
					Property: c.Property, Message: c.Value})
			}
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	rec.Error = strings.Join(errs, "; ")
	rec.Time = d.now().UTC()
	if rec.Error != "" {
		d.log.Warn("registering complete data sets failed", "target", t.cfg.Name, "err", rec.Error)
	}
	return rec
}

func (d *Deliverer) registerOnce(ctx context.Context, t *Target, regs []dhis2.Registration, opts dhis2.CompletenessOptions) (*dhis2.ImportResult, error) {
	var res *dhis2.ImportResult
	var err error
	for try := 1; try <= registrationTries; try++ {
		res, err = t.client.RegisterCompleteness(ctx, regs, opts)
		if err == nil || dhis2.KindOf(err) == dhis2.KindPermanent || try == registrationTries {
			break
		}
		pipeline.Pause(ctx, time.Duration(try)*time.Second)
	}
	if err != nil {
		return res, fmt.Errorf("registering %d complete data sets: %w", len(regs), err)
	}
	return res, nil
}
