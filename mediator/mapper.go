package mediator

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
)

// Mapper turns a source batch into what one target receives. The mapping engine implements
// it; a source without a mapping set uses identityMapper.
type Mapper interface {
	Map(ctx context.Context, in *transform.Batch, source *config.Source, target *config.Target) (*transform.Mapped, error)
}

// ErrMappingRejected wraps a mapping failure that is the payload's fault (a source whose
// policy is to reject batches with unmapped items): it becomes a dead letter, not a retry.
var ErrMappingRejected = errors.New("mapping rejected the batch")

type identityMapper struct{}

func (identityMapper) Map(_ context.Context, in *transform.Batch, _ *config.Source, t *config.Target) (*transform.Mapped, error) {
	return transform.Identity(in, t.Name), nil
}

// headerUnmapped tells the delivery worker how many source values mapping dropped, so the
// transaction log can account for every value.
const headerUnmapped = "Tally-Unmapped"

// mapBatch is the mapper stage's handler: one TALLY_INGEST message becomes one TALLY_DELIVER
// message per target. The ingest message is acknowledged only after every output is stored,
// so a crash in between replays it, and the deterministic output ids make the replay
// harmless.
func (s *Service) mapBatch(ctx context.Context, msg jetstream.Msg) {
	b, err := decodeMsg(msg)
	if err != nil {
		// A message this build cannot read will never become readable by retrying.
		s.log.Error("dropping unreadable ingest message", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason(err.Error())
		return
	}
	src, ok := s.cfg.Source(b.Source)
	if !ok {
		s.log.Error("ingest message from a source no longer configured; leaving it for a later configuration",
			"source", b.Source, "tx", b.TxID)
		_ = msg.NakWithDelay(s.retryDelay(1, s.cfg.Delivery.AckWait.D()))
		return
	}
	pb := s.pub.Start(ctx)
	for _, t := range s.cfg.TargetsOf(src) {
		if err := s.mapForTarget(ctx, pb, b, src, t); err != nil {
			// Mapping that keeps failing for a reason outside the payload (the target's
			// metadata unreadable) is bounded like delivery: after the target's attempts
			// the batch becomes a dead letter for that target, to be replayed once fixed.
			if n := msgAttempts(msg); n >= t.Retry.MaxAttempts {
				dlErr := s.deadLetterMapping(ctx, b, t, fmt.Errorf("mapping failed %d times: %w", n, err))
				if dlErr == nil {
					continue
				}
				err = errors.Join(err, dlErr)
			}
			s.log.Warn("mapping failed; will retry", "tx", b.TxID, "seq", b.Seq, "target", t.Name, "err", err)
			_ = msg.NakWithDelay(s.retryDelay(msgAttempts(msg), 0))
			return
		}
	}
	if _, err := pb.Wait(); err != nil {
		s.log.Warn("publishing mapped batches failed; will retry", "tx", b.TxID, "seq", b.Seq, "err", err)
		_ = msg.NakWithDelay(s.retryDelay(msgAttempts(msg), 0))
		return
	}
	if err := msg.Ack(); err != nil {
		s.log.Warn("acknowledging ingest message", "tx", b.TxID, "err", err)
	}
}

func (s *Service) mapForTarget(ctx context.Context, pb *stream.Batch, b *transform.Batch, src *config.Source, t *config.Target) error {
	m, err := s.currentMapper().Map(ctx, b, src, t)
	if errors.Is(err, ErrMappingRejected) {
		return s.deadLetterMapping(ctx, b, t, err)
	}
	if err != nil {
		return err
	}
	s.metrics.MappedValues.WithLabelValues(src.Name, t.Name, "mapped").Add(float64(len(m.Batch.Values)))
	s.metrics.MappedValues.WithLabelValues(src.Name, t.Name, "unmapped").Add(float64(len(m.Unmapped)))
	if len(m.Batch.Values) == 0 {
		return s.txlog.PutDelivery(ctx, b.TxID, &DeliveryRecord{Target: t.Name, Seq: b.Seq, Outcome: OutcomeEmpty,
			Unmapped: len(m.Unmapped), Time: s.now().UTC()})
	}
	m.Batch.Target = t.Name
	// deliver.go: carries the source values too when mapping changed them (for re-mapping
	// dead letters on replay).
	return pb.Add(deliverMessage(b.ID+":"+t.Name, b, m.Batch, len(m.Unmapped), nil))
}

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
