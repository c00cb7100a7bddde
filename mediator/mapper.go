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

// headerUnmapped tells the delivery worker how many source values mapping dropped, so the
// transaction log can account for every value.
const headerUnmapped = "Tally-Unmapped"

// mapWork is the mapper stage's work: one TALLY_INGEST message becomes one TALLY_DELIVER
// message per target. The ingest message is acknowledged only after every output is stored,
// so a crash in between replays it, and the deterministic output ids make the replay
// harmless.
func (s *Service) mapWork(ctx context.Context, msg jetstream.Msg, _ permit) error {
	b, err := decodeMsg(msg)
	if err != nil {
		return s.decodeFailure(msg, err)
	}
	src, ok := s.cfg.Source(b.Source)
	if !ok {
		// During a rolling configuration change another replica may know the source; past
		// delivery.upgrade_wait it is a dead letter, replayable once the source is back.
		err := fmt.Errorf("source %q is not configured", b.Source)
		if md, merr := msg.Metadata(); merr == nil && s.now().Sub(md.Timestamp) < s.cfg.Delivery.UpgradeWait.D() {
			s.log.Warn("ingest message from a source this replica does not know; leaving it for one that does",
				"source", b.Source, "tx", b.TxID)
			return retryIn(min(s.cfg.Delivery.UpgradeWait.D()/4+jitter(time.Second), time.Minute), err)
		}
		return &errPoison{reason: ReasonNoSource, err: err}
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
		return retryIn(s.retryDelay(msgAttempts(msg), 0), fmt.Errorf("publishing mapped batches: %w", err))
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
	note                      mappingNote
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
	kept := carriedBy(msg.Headers())
	keys, done := s.payloads.begin(ctx, b.TxID, t.Name, b.Seq, msg.Headers())
	defer done()
	m, err := s.engine.Load().MapWith(ctx, b, pipeline.MappingSource(src), pipeline.MappingTarget(t), mapping.Options{Rollup: s.rollupStore(), Payload: keys})
	if errors.Is(err, mapping.ErrRejected) {
		bctx, cancel := bookkeeping(ctx)
		defer cancel()
		if err := s.deadLetterMapping(bctx, b, t, fmt.Errorf("%w: %w", ErrMappingRejected, err), kept); err != nil {
			return n, retryIn(s.retryDelay(msgAttempts(msg), 0), err)
		}
		s.completeIfDone(bctx, s.targets[t.Name], b.TxID, kept.completes)
		return n, nil
	}
	if err != nil {
		return n, s.mappingFailed(ctx, msg, b, t, err)
	}
	s.refuseNewerPeriods(ctx, src, t, m)
	n.note = noteOf(m)
	n.mapped, n.unmapped, n.refused = len(m.Batch.Values), len(m.Unmapped), len(m.Refused)
	if len(m.Refused) > 0 {
		bctx, cancel := bookkeeping(ctx)
		defer cancel()
		if err := s.deadLetterRefused(bctx, b, t, m.Refused, n.note.Conflicts, kept); err != nil {
			return n, retryIn(s.retryDelay(msgAttempts(msg), 0), err)
		}
	}
	if len(m.Batch.Values) == 0 {
		bctx, cancel := bookkeeping(ctx)
		defer cancel()
		rec := &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays, Outcome: txlog.OutcomeEmpty,
			Values: len(b.Values), Unmapped: len(m.Unmapped), Time: s.now().UTC()}
		n.note.apply(rec)
		if err := s.txlog.PutDelivery(bctx, b.TxID, rec); err != nil {
			return n, retryIn(s.retryDelay(msgAttempts(msg), 0), err)
		}
		s.completeIfDone(bctx, s.targets[t.Name], b.TxID, kept.completes)
		return n, nil
	}
	m.Batch.Target = t.Name
	// deliver.go: carries the source values too when mapping changed them (for re-mapping
	// dead letters on replay).
	h := withNote(kept.header(), n.note)
	if err := pb.Add(deliverMessage(b.ID+":"+t.Name, b, m.Batch, len(m.Unmapped), h)); err != nil {
		return n, retryIn(s.retryDelay(msgAttempts(msg), 0), fmt.Errorf("publishing mapped batch: %w", err))
	}
	return n, nil
}

// mappingFailed applies the target's retry policy to a mapping that failed for a reason
// outside the payload. Its attempts are kept in the batch's delivery record at the target
// (stage "mapping"), which also tells an operator why the transaction waits; a target whose
// circuit is open is not blamed twice, and its messages wait for the circuit.
func (s *Service) mappingFailed(ctx context.Context, msg jetstream.Msg, b *transform.Batch, t *config.Target, err error) error {
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	pol := policyOf(t)
	tg := s.targets[t.Name]
	if rem := tg.breaker.remaining(); rem > 0 {
		return retryIn(pol.circuitWait(rem), fmt.Errorf("mapping for %s: %w", t.Name, err))
	}
	prev := s.earlierTries(ctx, msg, b, t.Name)
	rec := &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays, Values: len(b.Values), Stage: stageMapping,
		Attempts: prev.attempts + 1, FirstError: prev.first, LastError: "mapping: " + err.Error(), Time: s.now().UTC()}
	if rec.FirstError.IsZero() {
		rec.FirstError = rec.Time
	}
	if delay, ok := pol.next(rec.Attempts, b.Received, rec.Time, 0); ok {
		rec.Outcome = txlog.OutcomeRetrying
		s.record(bctx, b.TxID, rec)
		s.log.Warn("mapping failed; will retry", "tx", b.TxID, "seq", b.Seq, "target", t.Name,
			"attempt", rec.Attempts, "retry_in", delay, "err", err)
		return retryIn(delay, err)
	}
	if dlErr := s.deadLetterMapping(bctx, b, t, fmt.Errorf("mapping failed %d times: %w", rec.Attempts, err), carriedBy(msg.Headers())); dlErr != nil {
		return retryIn(s.retryDelay(rec.Attempts, 0), errors.Join(err, dlErr))
	}
	return nil
}

// stageMapping marks a delivery record written by the mapper.
const stageMapping = "mapping"

// decodeMsg decodes a batch and restores the identity that travels in headers.
func decodeMsg(msg jetstream.Msg) (*transform.Batch, error) {
	b, err := transform.DecodeBatch(msg.Data())
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", msg.Subject(), err)
	}
	if h := msg.Headers(); h != nil {
		if b.TxID == "" {
			b.TxID = h.Get(headerTx)
		}
		if b.ID == "" {
			b.ID = h.Get(jetstream.MsgIDHeader)
		}
	}
	return b, nil
}

func msgAttempts(msg jetstream.Msg) int {
	md, err := msg.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}
