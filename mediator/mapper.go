package mediator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/period"
)

// Mapper turns a source batch into what one target receives. The mapping engine implements
// it (mapping.go: engineMapper); a source without a mapping set gets the identity mapping
// from the engine.
type Mapper interface {
	Map(ctx context.Context, in *transform.Batch, source *config.Source, target *config.Target) (*transform.Mapped, error)
}

// ErrMappingRejected wraps a mapping failure that is the payload's fault (a source whose
// policy is to reject batches with unmapped items): it becomes a dead letter, not a retry.
var ErrMappingRejected = errors.New("mapping rejected the batch")

// mapWork is the mapper stage's work: one TALLY_INGEST message becomes one TALLY_DELIVER
// message per target. The ingest message is acknowledged only after every output is stored,
// so a crash in between replays it, and the deterministic output ids make the replay
// harmless.
func (s *Service) mapWork(ctx context.Context, msg jetstream.Msg, _ pipeline.Permit) error {
	b, err := pipeline.DecodeIngest(msg)
	if err != nil {
		return pipeline.DecodeFailure(s.log, msg, err, s.cfg.Delivery.UpgradeWait.D(), s.now())
	}
	src, ok := s.cfg.Source(b.Source)
	if !ok {
		// During a rolling configuration change another replica may know the source; past
		// delivery.upgrade_wait it is a dead letter, replayable once the source is back.
		err := fmt.Errorf("source %q is not configured", b.Source)
		if md, merr := msg.Metadata(); merr == nil && s.now().Sub(md.Timestamp) < s.cfg.Delivery.UpgradeWait.D() {
			s.log.Warn("ingest message from a source this replica does not know; leaving it for one that does",
				"source", b.Source, "tx", b.TxID)
			return pipeline.RetryIn(min(s.cfg.Delivery.UpgradeWait.D()/4+pipeline.Jitter(time.Second), time.Minute), err)
		}
		return pipeline.Poison(pipeline.ReasonNoSource, err)
	}
	pb := s.pub.Start(ctx)
	var counts []mappedCount
	for _, t := range s.cfg.TargetsOf(src) {
		n, err := s.mapForTarget(ctx, msg, pb, b, src, t)
		if err != nil {
			return err
		}
		counts = append(counts, n)
	}
	if _, err := pb.Wait(); err != nil {
		return pipeline.RetryIn(pipeline.RetryDelay(pipeline.MsgAttempts(msg), 0), fmt.Errorf("publishing mapped batches: %w", err))
	}
	// Counted once the outputs are stored, so that a batch mapped again after a failure is
	// not counted twice.
	for _, c := range counts {
		s.metrics.MappedValues.WithLabelValues(src.Name, c.target, "mapped").Add(float64(c.mapped))
		s.metrics.MappedValues.WithLabelValues(src.Name, c.target, "unmapped").Add(float64(c.unmapped))
		s.metrics.MappedValues.WithLabelValues(src.Name, c.target, "refused").Add(float64(c.refused))
		for _, w := range c.note.Warnings {
			s.metrics.MappingWarnings.WithLabelValues(src.Name, c.target, w.ErrorCode).Inc()
		}
		for _, d := range c.note.Duplicates {
			s.metrics.MappingDuplicates.WithLabelValues(src.Name, c.target, string(d.Action)).Inc()
		}
	}
	return nil
}

type mappedCount struct {
	target                    string
	mapped, unmapped, refused int
	note                      pipeline.MappingNote
}

// mapForTarget maps a batch for one target and adds the result to pb. Mapping refuses
// values one by one (mapping.Engine.MapWith): the refused values become a dead letter of
// exactly those values, with each one's reason and error code, and the rest of the batch
// is delivered; what mapping refused, warned about and did with duplicates travels to the
// delivery record in the Tally-Mapping header (or is recorded here when nothing is left to
// deliver). A failure outside the payload (the target's metadata unreadable) follows the
// target's retry policy, circuit included: the whole message is retried while the policy
// allows, then the batch becomes a dead letter for that target and the other targets go
// on.
func (s *Service) mapForTarget(ctx context.Context, msg jetstream.Msg, pb *stream.Batch, b *transform.Batch,
	src *config.Source, t *config.Target) (mappedCount, error) {
	n := mappedCount{target: t.Name}
	kept := pipeline.CarriedBy(msg.Headers())
	keys, done := s.payloads.begin(ctx, b.TxID, t.Name, b.Seq, msg.Headers())
	defer done()
	m, err := s.engine.Load().MapWith(ctx, b, pipeline.MappingSource(src), pipeline.MappingTarget(t), mapping.Options{Rollup: s.rollupStore(), Payload: keys})
	if errors.Is(err, mapping.ErrRejected) {
		bctx, cancel := pipeline.Bookkeeping(ctx)
		defer cancel()
		if err := s.deadLetterMapping(bctx, b, t, fmt.Errorf("%w: %w", ErrMappingRejected, err), kept); err != nil {
			return n, pipeline.RetryIn(pipeline.RetryDelay(pipeline.MsgAttempts(msg), 0), err)
		}
		s.deliverer.CompleteIfDone(bctx, t.Name, b.TxID, kept.Completes)
		return n, nil
	}
	if err != nil {
		return n, s.mappingFailed(ctx, msg, b, t, err)
	}
	s.refuseNewerPeriods(ctx, src, t, m)
	n.note = pipeline.NoteOf(m)
	n.mapped, n.unmapped, n.refused = len(m.Batch.Values), len(m.Unmapped), len(m.Refused)
	if len(m.Refused) > 0 {
		bctx, cancel := pipeline.Bookkeeping(ctx)
		defer cancel()
		if err := s.deadLetterRefused(bctx, b, t, m.Refused, n.note.Conflicts, kept); err != nil {
			return n, pipeline.RetryIn(pipeline.RetryDelay(pipeline.MsgAttempts(msg), 0), err)
		}
	}
	if len(m.Batch.Values) == 0 {
		bctx, cancel := pipeline.Bookkeeping(ctx)
		defer cancel()
		rec := &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays, Outcome: txlog.OutcomeEmpty,
			Values: len(b.Values), Unmapped: len(m.Unmapped), Time: s.now().UTC()}
		n.note.Apply(rec)
		if err := s.txlog.PutDelivery(bctx, b.TxID, rec); err != nil {
			return n, pipeline.RetryIn(pipeline.RetryDelay(pipeline.MsgAttempts(msg), 0), err)
		}
		s.deliverer.CompleteIfDone(bctx, t.Name, b.TxID, kept.Completes)
		return n, nil
	}
	m.Batch.Target = t.Name
	// deliver.go: carries the source values too when mapping changed them (for re-mapping
	// dead letters on replay).
	h := pipeline.WithNote(kept.Header(), n.note)
	if err := pb.Add(pipeline.DeliverMessage(b.ID+":"+t.Name, b, m.Batch, len(m.Unmapped), h)); err != nil {
		return n, pipeline.RetryIn(pipeline.RetryDelay(pipeline.MsgAttempts(msg), 0), fmt.Errorf("publishing mapped batch: %w", err))
	}
	return n, nil
}

// mappingFailed applies the target's retry policy to a mapping that failed for a reason
// outside the payload. Its attempts are kept in the batch's delivery record at the target
// (stage "mapping"), which also tells an operator why the transaction waits; a target whose
// circuit is open is not blamed twice, and its messages wait for the circuit.
func (s *Service) mappingFailed(ctx context.Context, msg jetstream.Msg, b *transform.Batch, t *config.Target, err error) error {
	bctx, cancel := pipeline.Bookkeeping(ctx)
	defer cancel()
	pol := pipeline.PolicyOf(t)
	if rem := s.targets.CircuitRemaining(t.Name); rem > 0 {
		return pipeline.RetryIn(pol.CircuitWait(rem), fmt.Errorf("mapping for %s: %w", t.Name, err))
	}
	prev := pipeline.EarlierTries(ctx, s.txlog, msg, b, t.Name)
	rec := &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays, Values: len(b.Values), Stage: stageMapping,
		Attempts: prev.Attempts + 1, FirstError: prev.First, LastError: "mapping: " + err.Error(), Time: s.now().UTC()}
	if rec.FirstError.IsZero() {
		rec.FirstError = rec.Time
	}
	if delay, ok := pol.Next(rec.Attempts, b.Received, rec.Time, 0); ok {
		rec.Outcome = txlog.OutcomeRetrying
		pipeline.RecordDelivery(bctx, s.log, s.txlog, b.TxID, rec)
		s.log.Warn("mapping failed; will retry", "tx", b.TxID, "seq", b.Seq, "target", t.Name,
			"attempt", rec.Attempts, "retry_in", delay, "err", err)
		return pipeline.RetryIn(delay, err)
	}
	if dlErr := s.deadLetterMapping(bctx, b, t, fmt.Errorf("mapping failed %d times: %w", rec.Attempts, err), pipeline.CarriedBy(msg.Headers())); dlErr != nil {
		return pipeline.RetryIn(pipeline.RetryDelay(rec.Attempts, 0), errors.Join(err, dlErr))
	}
	return nil
}

// deadLetterMapping stores a batch mapping refused whole (the values as received) and
// records it as dead-lettered at the target.
func (s *Service) deadLetterMapping(ctx context.Context, b *transform.Batch, t *config.Target, err error, kept pipeline.Carried) error {
	d := &pipeline.DeadBatch{Batch: b, Target: t.Name, Reason: pipeline.ReasonMapping, Err: err, Carried: kept}
	if serr := s.deadLetters.Batch(ctx, d); serr != nil {
		return serr
	}
	return s.txlog.PutDelivery(ctx, b.TxID, &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays,
		Outcome: txlog.OutcomeDeadLettered, Values: len(b.Values), Rejected: len(b.Values), RejectedIndexes: pipeline.PayloadIndexes(b.Values),
		LastError: err.Error(), Time: s.now().UTC()})
}

// stageMapping marks a delivery record written by the mapper.
const stageMapping = "mapping"

// deadLetterRefused stores the values mapping refused as one dead letter of the batch
// (reason mapping, the values as received, so that a replay maps them again with the rules
// and metadata then in force), with each value's conflict.
func (s *Service) deadLetterRefused(ctx context.Context, b *transform.Batch, t *config.Target, refused []transform.Refused,
	conflicts []txlog.Conflict, kept pipeline.Carried) error {
	part := *b
	part.Values = make([]transform.DataValue, len(refused))
	for i, r := range refused {
		part.Values[i] = r.Value
	}
	err := fmt.Errorf("mapping refused %d of %d values for %s: %s", len(refused), len(b.Values), t.Name, refused[0].Reason)
	return s.deadLetters.Batch(ctx, &pipeline.DeadBatch{Batch: &part, Target: t.Name, Reason: pipeline.ReasonMapping, Err: err,
		Conflicts: conflicts, Carried: kept, IDSuffix: ":refused"})
}

// refuseNewerPeriods refuses, for a source without a mapping set, the values whose period
// the target's DHIS2 release does not have (a WeeklyFriday week for 2.42, say): the engine
// checks the release only where it maps with the target's metadata. DHIS2 itself would
// answer "Period not valid" (E7611); this says why.
func (s *Service) refuseNewerPeriods(ctx context.Context, src *config.Source, t *config.Target, m *transform.Mapped) {
	if src.Mapping != "" {
		return
	}
	rel := s.targetRelease(ctx, t.Name)
	if rel == 0 {
		return
	}
	keep := m.Batch.Values[:0:0]
	for _, v := range m.Batch.Values {
		if ok, since, err := period.AvailableIn(v.Period, rel); err == nil && !ok {
			m.Refused = append(m.Refused, transform.Refused{Value: v, Field: "period", ErrorCode: transform.CodePeriodNotValid,
				Reason: fmt.Sprintf("period %s is a type DHIS2 has from 2.%d on; target %q runs 2.%d", v.Period, since, t.Name, rel)})
			continue
		}
		keep = append(keep, v)
	}
	if len(keep) < len(m.Batch.Values) {
		out := *m.Batch
		out.Values = keep
		m.Batch = &out
	}
}
