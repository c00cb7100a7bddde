package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
)

// Mapper is the mapper stage: it maps each TALLY_INGEST message for every target of its
// source, with the mapping in force, into TALLY_DELIVER. It is safe for concurrent use.
type Mapper struct {
	cfg      *config.Config
	mapping  *Mapping
	pub      *stream.Publisher
	tx       *txlog.TxLog
	dead     DeadLetters
	delivery Delivery
	payloads *payloadKeys
	direct   slots // mapping at ingest (Direct)
	// encoders are the mapper workers' transform.Encoders.
	encoders sync.Pool
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
}

// Delivery is what the mapper asks of the delivery stage (mediator/delivery's Deliverer).
type Delivery interface {
	// CircuitRemaining is how long the target's circuit stays open; 0 when it is not.
	CircuitRemaining(target string) time.Duration
	// CompleteIfDone registers a transaction's completions at the target once its batches
	// are all done there; the mapper calls it for the batches it finishes itself.
	CompleteIfDone(ctx context.Context, target, txID string, batches int)
}

// MapperConfig is what a Mapper works with.
type MapperConfig struct {
	// Config names the sources and their targets (the exchanges' sources included).
	Config      *config.Config
	Mapping     *Mapping
	Publisher   *stream.Publisher
	TxLog       *txlog.TxLog
	DeadLetters DeadLetters
	Delivery    Delivery
	Metrics     *Metrics
	Log         *slog.Logger
	Now         func() time.Time
}

// NewMapper returns the mapper stage c describes.
func NewMapper(c MapperConfig) *Mapper {
	return &Mapper{cfg: c.Config, mapping: c.Mapping, pub: c.Publisher, tx: c.TxLog, dead: c.DeadLetters,
		delivery: c.Delivery, payloads: newPayloadKeys(), direct: newSlots(runtime.GOMAXPROCS(0)), metrics: c.Metrics, log: c.Log, now: c.Now}
}

// Consumer is the mapper's consumer on TALLY_INGEST, its messages going through chain. Its
// backstop is above what the most patient target's retry policy uses.
func (s *Mapper) Consumer(chain *Chain, ackWait time.Duration) *Consumer {
	maxAttempts := 1
	for i := range s.cfg.Targets {
		maxAttempts = max(maxAttempts, s.cfg.Targets[i].Retry.MaxAttempts)
	}
	stop, serverMax := BackstopFor(maxAttempts)
	return &Consumer{
		Stream: stream.IngestStream, Workers: 2, Log: s.log,
		Handle: chain.Wrap(Stage{Name: "mapper", DLQTarget: IngestDLQ, AckWait: ackWait, MaxDeliver: stop}, s.work),
		Track:  s.payloads.track,
		Config: jetstream.ConsumerConfig{Durable: MapperConsumer, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: ackWait, MaxAckPending: 64, MaxDeliver: serverMax, FilterSubject: stream.IngestPrefix + ">"},
	}
}

// work is the mapper stage's work: one TALLY_INGEST message becomes one TALLY_DELIVER
// message per target. The ingest message is acknowledged only after every output is stored,
// so a crash in between replays it, and the deterministic output ids make the replay
// harmless.
func (s *Mapper) work(ctx context.Context, msg jetstream.Msg, _ Permit) error {
	b, err := DecodeIngest(msg)
	if err != nil {
		return DecodeFailure(s.log, msg, err, s.cfg.Delivery.UpgradeWait.D(), s.now())
	}
	src, ok := s.cfg.Source(b.Source)
	if !ok {
		// During a rolling configuration change another replica may know the source; past
		// delivery.upgrade_wait it is a dead letter, replayable once the source is back.
		err := fmt.Errorf("source %q is not configured", b.Source)
		if md, merr := msg.Metadata(); merr == nil && s.now().Sub(md.Timestamp) < s.cfg.Delivery.UpgradeWait.D() {
			s.log.Warn("ingest message from a source this replica does not know; leaving it for one that does",
				"source", b.Source, "tx", b.TxID)
			return RetryIn(min(s.cfg.Delivery.UpgradeWait.D()/4+Jitter(time.Second), time.Minute), err)
		}
		return Poison(ReasonNoSource, err)
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
		return RetryIn(RetryDelay(MsgAttempts(msg), 0), fmt.Errorf("publishing mapped batches: %w", err))
	}
	// Counted once the outputs are stored, so that a batch mapped again after a failure is
	// not counted twice.
	s.count(src, StageMapper, 1, counts)
	return nil
}

// count adds what mapping did with stored batches to the metrics.
func (s *Mapper) count(src *config.Source, stage string, batches int, counts []mappedCount) {
	s.metrics.Batches.WithLabelValues(src.Name, stage).Add(float64(batches))
	for _, c := range counts {
		s.metrics.Values.WithLabelValues(src.Name, c.target, "mapped").Add(float64(c.mapped))
		s.metrics.Values.WithLabelValues(src.Name, c.target, "unmapped").Add(float64(c.unmapped))
		s.metrics.Values.WithLabelValues(src.Name, c.target, "refused").Add(float64(c.refused))
		for _, w := range c.note.Warnings {
			s.metrics.Warnings.WithLabelValues(src.Name, c.target, w.ErrorCode).Inc()
		}
		for _, d := range c.note.Duplicates {
			s.metrics.Duplicates.WithLabelValues(src.Name, c.target, string(d.Action)).Inc()
		}
	}
}

type mappedCount struct {
	target                    string
	mapped, unmapped, refused int
	note                      MappingNote
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
func (s *Mapper) mapForTarget(ctx context.Context, msg jetstream.Msg, pb *stream.Batch, b *transform.Batch,
	src *config.Source, t *config.Target) (_ mappedCount, rerr error) {
	n := mappedCount{target: t.Name}
	kept := CarriedBy(msg.Headers())
	keys, done := s.payloads.begin(ctx, b.TxID, t.Name, b.Seq, len(b.Values), msg.Headers())
	defer func() { done(rerr == nil) }()
	m, err := s.mapping.Engine().MapWith(ctx, b, MappingSource(src), MappingTarget(t), mapping.Options{Rollup: s.mapping.rollupStore(), Payload: keys})
	if settledAt(msg.Headers(), t.Name) && (err == nil || errors.Is(err, mapping.ErrRejected)) {
		// An earlier attempt of the same request settled this batch here (HeaderSettled):
		// it was mapped again only for the payload's duplicates policy.
		return n, nil
	}
	if errors.Is(err, mapping.ErrRejected) {
		bctx, cancel := Bookkeeping(ctx)
		defer cancel()
		if err := s.deadLetterMapping(bctx, b, t, fmt.Errorf("%w: %w", ErrMappingRejected, err), kept); err != nil {
			return n, RetryIn(RetryDelay(MsgAttempts(msg), 0), err)
		}
		s.delivery.CompleteIfDone(bctx, t.Name, b.TxID, kept.Completes)
		return n, nil
	}
	if err != nil {
		return n, s.mappingFailed(ctx, msg, b, t, err)
	}
	s.mapping.RefuseNewerPeriods(ctx, src, t, m)
	n.note = NoteOf(m)
	n.mapped, n.unmapped, n.refused = len(m.Batch.Values), len(m.Unmapped), len(m.Refused)
	if len(m.Refused) > 0 {
		bctx, cancel := Bookkeeping(ctx)
		defer cancel()
		if err := s.deadLetterRefused(bctx, b, t, m.Refused, n.note.Conflicts, kept); err != nil {
			return n, RetryIn(RetryDelay(MsgAttempts(msg), 0), err)
		}
	}
	if len(m.Batch.Values) == 0 {
		bctx, cancel := Bookkeeping(ctx)
		defer cancel()
		rec := &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays, Outcome: txlog.OutcomeEmpty,
			Values: len(b.Values), Unmapped: len(m.Unmapped), Time: s.now().UTC()}
		n.note.Apply(rec)
		if err := s.tx.PutDelivery(bctx, b.TxID, rec); err != nil {
			return n, RetryIn(RetryDelay(MsgAttempts(msg), 0), err)
		}
		s.delivery.CompleteIfDone(bctx, t.Name, b.TxID, kept.Completes)
		return n, nil
	}
	x, _ := s.encoders.Get().(*transform.Encoder)
	if x == nil {
		x = new(transform.Encoder)
	}
	out := mappedMessage(x, b, msg.Data(), m, t, kept, n.note)
	s.encoders.Put(x)
	if err := pb.Add(out); err != nil {
		return n, RetryIn(RetryDelay(MsgAttempts(msg), 0), fmt.Errorf("publishing mapped batch: %w", err))
	}
	return n, nil
}

// mappedMessage is the TALLY_DELIVER message of batch b (encoded as data) mapped for t. It
// carries the source values too when mapping changed them (for re-mapping dead letters on
// replay), and the earlier batches of the payload it must wait for at the target.
func mappedMessage(x *transform.Encoder, b *transform.Batch, data []byte, m *transform.Mapped, t *config.Target, kept Carried, note MappingNote) stream.Msg {
	m.Batch.Target = t.Name
	return DeliverMessageFrom(x, b.ID+":"+t.Name, b, data, m.Batch, len(m.Unmapped), mappedHeader(kept, note, m.After))
}

// mappedHeader is the start of a mapped batch's headers: what it carries forward, what
// mapping reported, and the earlier batches of its payload it must wait for at the target.
func mappedHeader(kept Carried, note MappingNote, after []int) nats.Header {
	h := WithNote(kept.Header(), note)
	if len(after) > 0 {
		list := make([]string, len(after))
		for i, seq := range after {
			list[i] = strconv.Itoa(seq)
		}
		h.Set(HeaderAfter, strings.Join(list, ","))
	}
	return h
}

// mappingFailed applies the target's retry policy to a mapping that failed for a reason
// outside the payload. Its attempts are kept in the batch's delivery record at the target
// (stage "mapping"), which also tells an operator why the transaction waits; a target whose
// circuit is open is not blamed twice, and its messages wait for the circuit.
func (s *Mapper) mappingFailed(ctx context.Context, msg jetstream.Msg, b *transform.Batch, t *config.Target, err error) error {
	bctx, cancel := Bookkeeping(ctx)
	defer cancel()
	pol := PolicyOf(t)
	if rem := s.delivery.CircuitRemaining(t.Name); rem > 0 {
		return RetryIn(pol.CircuitWait(rem), fmt.Errorf("mapping for %s: %w", t.Name, err))
	}
	prev := EarlierTries(ctx, s.tx, msg, b, t.Name)
	rec := &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays, Values: len(b.Values), Stage: stageMapping,
		Attempts: prev.Attempts + 1, FirstError: prev.First, LastError: "mapping: " + err.Error(), Time: s.now().UTC()}
	if rec.FirstError.IsZero() {
		rec.FirstError = rec.Time
	}
	if delay, ok := pol.Next(rec.Attempts, b.Received, rec.Time, 0); ok {
		rec.Outcome = txlog.OutcomeRetrying
		RecordDelivery(bctx, s.log, s.tx, b.TxID, rec)
		s.log.Warn("mapping failed; will retry", "tx", b.TxID, "seq", b.Seq, "target", t.Name,
			"attempt", rec.Attempts, "retry_in", delay, "err", err)
		return RetryIn(delay, err)
	}
	if dlErr := s.deadLetterMapping(bctx, b, t, fmt.Errorf("mapping failed %d times: %w", rec.Attempts, err), CarriedBy(msg.Headers())); dlErr != nil {
		return RetryIn(RetryDelay(rec.Attempts, 0), errors.Join(err, dlErr))
	}
	return nil
}

// deadLetterMapping stores a batch mapping refused whole (the values as received) and
// records it as dead-lettered at the target.
func (s *Mapper) deadLetterMapping(ctx context.Context, b *transform.Batch, t *config.Target, err error, kept Carried) error {
	d := &DeadBatch{Batch: b, Target: t.Name, Reason: ReasonMapping, Err: err, Carried: kept}
	if serr := s.dead.Batch(ctx, d); serr != nil {
		return serr
	}
	return s.tx.PutDelivery(ctx, b.TxID, &txlog.DeliveryRecord{Target: t.Name, Seq: b.Seq, Replay: b.Replays,
		Outcome: txlog.OutcomeDeadLettered, Values: len(b.Values), Rejected: len(b.Values), RejectedIndexes: PayloadIndexes(b.Values),
		LastError: err.Error(), Time: s.now().UTC()})
}

// stageMapping marks a delivery record written by the mapper.
const stageMapping = "mapping"

// deadLetterRefused stores the values mapping refused as one dead letter of the batch
// (reason mapping, the values as received, so that a replay maps them again with the rules
// and metadata then in force), with each value's conflict.
func (s *Mapper) deadLetterRefused(ctx context.Context, b *transform.Batch, t *config.Target, refused []transform.Refused,
	conflicts []txlog.Conflict, kept Carried) error {
	part := *b
	part.Values = make([]transform.DataValue, len(refused))
	for i, r := range refused {
		part.Values[i] = r.Value
	}
	err := fmt.Errorf("mapping refused %d of %d values for %s: %s", len(refused), len(b.Values), t.Name, refused[0].Reason)
	return s.dead.Batch(ctx, &DeadBatch{Batch: &part, Target: t.Name, Reason: ReasonMapping, Err: err,
		Conflicts: conflicts, Carried: kept, IDSuffix: ":refused"})
}
