package mediator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// A payload's completeDate registers its data set complete at the target, once the values
// it completes are delivered (spec dhis2.md §1.4, §8).
//
// At ingest the date is read as DHIS2 reads a data value set's header completeDate
// (DefaultDataValueSetService.getCompletionDate/handleComplete): "true" is today, "false"
// or empty is no completion, a date in the future is today, anything else is the conflict
// "Complete date not valid"; a header without a dataSet completes nothing; and a header
// without an org unit, or without a period, is the conflict {"object":"OrganisationUnit"
// (or "Period"),"value":"Must be provided to complete data set"} and completes nothing.
// Those conflicts are in the answer and the transaction record. An ADX group's completeDate
// completes its dataSet for its period and org unit the same way (the group always has
// both). A source's complete_date chooses: dhis2 (the above), per_org_unit (a CHT export,
// whose header names the period but not the org units: every period and org unit its
// values name), or ignore.
//
// At delivery, a batch that carries the date and was answered by the target (all or some
// of its values taken) records what it completes, in the target's ids; once every batch
// of the transaction has its outcome at that target, the last to finish posts the
// registrations to /api/completeDataSetRegistrations (with the default attribute option
// combo, as DHIS2 registers a header completion) and records the answer under
// <tx>.d.<target>.complete. Two batches finishing together may both post: registration
// is an upsert, so the second changes nothing. The transaction is not finished at a target
// until that record exists, so a synchronous answer includes dataSetComplete and the
// registration's conflicts.

// completionReader normalises the completeDate of a payload for a source, and collects the
// conflicts DHIS2 reports about it.
type completionReader struct {
	mode  string // config.Source.CompleteDateMode
	today time.Time
	notes []transform.ImportConflict
	// any is set once a group keeps a completion.
	any bool
}

func newCompletionReader(src *config.Source, received time.Time) *completionReader {
	return &completionReader{mode: src.CompleteDateMode(), today: received.UTC()}
}

// header checks a data value set's header (dvs.Options.OnHeader) and leaves in it the date
// to register, or none.
func (cr *completionReader) header(h *dvs.Header) {
	h.CompleteDate = cr.date(h.CompleteDate, h.DataSet)
	if h.CompleteDate == "" || cr.mode != "dhis2" {
		return
	}
	switch {
	case strings.TrimSpace(h.OrgUnit) == "":
		cr.notes = append(cr.notes, transform.ImportConflict{Object: "OrganisationUnit", Value: "Must be provided to complete data set"})
		h.CompleteDate = ""
	case strings.TrimSpace(h.Period) == "":
		cr.notes = append(cr.notes, transform.ImportConflict{Object: "Period", Value: "Must be provided to complete data set"})
		h.CompleteDate = ""
	}
}

// date reads a completeDate: the date to register (yyyy-MM-dd), or "".
func (cr *completionReader) date(cd, dataSet string) string {
	cd = strings.TrimSpace(cd)
	if cr.mode == "ignore" || cd == "" || strings.EqualFold(cd, "false") || dataSet == "" {
		return ""
	}
	today := cr.today.Format(time.DateOnly)
	if strings.EqualFold(cd, "true") {
		return today
	}
	d, err := time.Parse(time.DateOnly, cd[:min(len(cd), 10)])
	if err != nil {
		cr.notes = append(cr.notes, transform.ImportConflict{Object: cd, Value: "Complete date not valid"})
		return ""
	}
	if s := d.Format(time.DateOnly); s < today {
		return s
	}
	return today
}

// completing is the sink that applies the reader to every group (an ADX group's date, and
// a data value set's once its header was checked).
type completing struct {
	transform.Sink
	cr *completionReader
}

func (c completing) Group(g transform.Group) error {
	g.CompleteDate = c.cr.date(g.CompleteDate, g.DataSet)
	if g.CompleteDate != "" {
		c.cr.any = true
	}
	return c.Sink.Group(g)
}

// Reject passes a parser's own findings on, as deleting does.
func (c completing) Reject(e *transform.InputError, at transform.Locator) error {
	if r, ok := c.Sink.(transform.Rejecter); ok {
		return r.Reject(e, at)
	}
	return e
}

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

// completeIfDone registers a transaction's completions at a target once every one of its
// batches has an outcome there; see the top of this file. batches is what the message
// whose outcome was just recorded carries in Tally-Completes (0: nothing to complete).
func (s *Service) completeIfDone(ctx context.Context, t *target, txID string, batches int) {
	if batches <= 0 || !txlog.ValidTxID(txID) {
		return
	}
	name := t.cfg.Name
	ds, done, err := s.txlog.TargetDeliveries(ctx, txID, name)
	if err != nil {
		s.log.Warn("reading deliveries to register completeness", "tx", txID, "target", name, "err", err)
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
	if err := s.txlog.PutCompletion(ctx, txID, s.register(ctx, t, regs)); err != nil {
		s.log.Warn("recording a completeness registration", "tx", txID, "target", name, "err", err)
	}
}

// registrationTries bounds the attempts at a registration that fails for a transient
// reason; the delivery message is held (and kept alive) meanwhile.
const registrationTries = 3

// register posts the registrations, grouped by their id schemes, and says what came of it.
func (s *Service) register(ctx context.Context, t *target, regs []txlog.Completion) *txlog.CompletionRecord {
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
		opts := dhis2.CompletenessOptions{Schemes: sc, DryRun: s.dryRunFor(t)}
		res, err := s.registerOnce(ctx, t, bySchemes[sc], opts)
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
	rec.Time = s.now().UTC()
	result := "registered"
	if rec.Error != "" {
		result = "failed"
		s.log.Warn("registering complete data sets failed", "target", t.cfg.Name, "err", rec.Error)
	}
	s.metrics.Completions.WithLabelValues(t.cfg.Name, result).Add(float64(len(regs)))
	return rec
}

func (s *Service) registerOnce(ctx context.Context, t *target, regs []dhis2.Registration, opts dhis2.CompletenessOptions) (*dhis2.ImportResult, error) {
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
