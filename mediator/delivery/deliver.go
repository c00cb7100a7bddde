package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// Deliverer is the delivery stage: one consumer per target on TALLY_DELIVER, whose workers
// send each batch and record what the target made of it. It is safe for concurrent use.
type Deliverer struct {
	targets     *Targets
	tx          *txlog.TxLog
	dead        pipeline.DeadLetters
	metrics     *Metrics
	log         *slog.Logger
	now         func() time.Time
	upgradeWait time.Duration
	// values are the arrays the workers decode batches into (*[]transform.DataValue):
	// nothing holds a batch's values once its delivery was handled (the request body's
	// writer has ended by then; dead letters copy what they keep).
	values sync.Pool
	// bodies are the buffers request bodies are written in (*[]byte): a body's writer
	// returns its buffer when it ends, and the HTTP client keeps none of what it was given.
	bodies sync.Pool
}

// Config is what a Deliverer works with.
type Config struct {
	Targets     *Targets
	TxLog       *txlog.TxLog
	DeadLetters pipeline.DeadLetters
	Metrics     *Metrics
	Log         *slog.Logger
	Now         func() time.Time
	// UpgradeWait is delivery.upgrade_wait: how long a batch written by a newer Tally
	// waits for a replica that reads it.
	UpgradeWait time.Duration
}

// New returns the delivery stage c describes.
func New(c Config) *Deliverer {
	return &Deliverer{targets: c.Targets, tx: c.TxLog, dead: c.DeadLetters, metrics: c.Metrics, log: c.Log, now: c.Now,
		upgradeWait: c.UpgradeWait}
}

// Consumers are the delivery consumers, one per target, sorted by name; each runs its
// messages through chain, admitted by the target's gate.
func (d *Deliverer) Consumers(chain *pipeline.Chain, ackWait time.Duration) []*pipeline.Consumer {
	var out []*pipeline.Consumer
	for _, name := range d.targets.Names() {
		t := d.targets.byName[name]
		stop, serverMax := pipeline.BackstopFor(t.cfg.Retry.MaxAttempts)
		st := pipeline.Stage{Name: "deliver", DLQTarget: name, AckWait: ackWait, MaxDeliver: stop}
		out = append(out, &pipeline.Consumer{
			// Enough workers for any limit; the target's slots admit as many as the limit in
			// force, which the OpenHIM console can change while they run.
			Stream: stream.DeliverStream, Workers: MaxConcurrency, Gate: t, Log: d.log,
			Handle: chain.Wrap(st, d.work(t)),
			Config: jetstream.ConsumerConfig{Durable: pipeline.DeliverConsumer(name), AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: ackWait, MaxAckPending: pipeline.DeliverMaxAckPending, MaxDeliver: serverMax,
				FilterSubject: stream.DeliverPrefix + name},
		})
	}
	return out
}

// CircuitRemaining is how long the named target's circuit stays open; 0 when it is not.
func (d *Deliverer) CircuitRemaining(target string) time.Duration {
	return d.targets.CircuitRemaining(target)
}

var _ pipeline.Delivery = (*Deliverer)(nil)

// work is the work of a target's delivery stage: decode, then deliver.
func (d *Deliverer) work(t *Target) pipeline.Handler {
	return func(ctx context.Context, msg jetstream.Msg, p pipeline.Permit) error {
		room, _ := d.values.Get().(*[]transform.DataValue)
		if room == nil {
			room = new([]transform.DataValue)
		}
		m, err := pipeline.DecodeDeliverMappedInto(msg, *room)
		if err != nil {
			d.values.Put(room)
			return pipeline.DecodeFailure(d.log, msg, err, d.upgradeWait, d.now())
		}
		err = d.deliverBatch(ctx, t, msg, p, m)
		*room = m.Mapped.Values
		d.values.Put(room)
		return err
	}
}

// errCircuitOpen is why a message fetched as the circuit opened goes back unsent.
var errCircuitOpen = errors.New("the target's circuit is open")

// errOverLimit is why a message fetched as the concurrency limit shrank goes back unsent.
var errOverLimit = errors.New("more workers hold the target than its concurrency limit allows")

// deliverBatch sends one batch to its target and records the outcome.
//
// Outcomes: every value accepted → record, ack. Some values rejected (WARNING) → the
// accepted ones are done, exactly the rejected ones become a dead letter, ack. Transient
// failure → retry while the policy allows, else dead letter. Permanent failure → dead
// letter. Refused credentials → the circuit opens and the message waits (bounded by
// max_age). Shutdown cut the request short → back to the stream at once, not an attempt.
// A dead letter is stored before the ack, so nothing is lost between the two; every write
// after the request runs on a fresh deadline (bookkeeping), whatever the request took.
func (d *Deliverer) deliverBatch(ctx context.Context, t *Target, msg jetstream.Msg, p pipeline.Permit, m *pipeline.Delivered) error {
	b := m.Mapped
	if t.slots.over() {
		// Fetched by a worker admitted before the concurrency limit shrank: not sent, not
		// an attempt; it goes back so that no more than the new limit are in flight.
		return pipeline.RetryIn(pipeline.PolicyOf(t.cfg).Deferred(), errOverLimit)
	}
	if !p.Probe && t.breaker.State() != circuitClosed {
		// Fetched just as the circuit opened: not sent, not an attempt; it waits for the
		// circuit like the messages still in the stream.
		d.metrics.Deferred.WithLabelValues(t.cfg.Name).Inc()
		return pipeline.RetryIn(pipeline.PolicyOf(t.cfg).Deferred(), errCircuitOpen)
	}
	if err := d.earlierFirst(ctx, t, msg, b); err != nil {
		// Not sent, not an attempt: it comes back once the batches it follows had theirs.
		d.metrics.Deferred.WithLabelValues(t.cfg.Name).Inc()
		return pipeline.RetryIn(orderRetry, err)
	}
	prev := pipeline.EarlierTries(ctx, d.tx, msg, b, t.cfg.Name)
	outcome, derr := d.importBatch(ctx, t, b, pipeline.FlagsOf(msg.Headers()))
	bctx, cancel := pipeline.Bookkeeping(ctx)
	defer cancel()
	unmapped, _ := strconv.Atoi(msg.Headers().Get(pipeline.HeaderUnmapped))
	rec := &txlog.DeliveryRecord{Target: t.cfg.Name, Seq: b.Seq, Replay: b.Replays, Values: len(b.Values), Unmapped: unmapped,
		Time: d.now().UTC(), Counts: outcome.counts, Conflicts: outcome.conflicts, Rejected: len(outcome.rejected)}
	a := &attempt{t: t, p: p, b: b, msg: m, rec: rec, prev: prev, kept: pipeline.CarriedBy(msg.Headers())}
	if derr == nil {
		return d.delivered(bctx, a, outcome)
	}
	if dhis2.KindOf(derr) == 0 && ctx.Err() != nil {
		// Our own cancellation (shutdown): the target is not to blame, and the message goes
		// back to the stream now rather than after AckWait.
		d.log.Info("delivery interrupted; message returned to the stream", "tx", b.TxID, "seq", b.Seq,
			"target", t.cfg.Name, "err", derr)
		return pipeline.RetryIn(0, derr)
	}
	return d.deliveryFailed(bctx, a, derr)
}

// A batch that replaces or adds up a key an earlier batch of its payload carried
// (duplicates: last or sum) must reach the target after that batch, or the earlier, partial
// value would be the one DHIS2 keeps: with two or more requests in flight the two could
// cross. Such a batch names the earlier ones (pipeline.HeaderAfter) and waits, returned to
// the stream every orderRetry and never counted as an attempt, until each has an outcome
// at the target other than "retrying", for at most orderWait after it was stored; past
// that it goes anyway (an earlier batch stuck behind an open circuit or a long retry must
// not hold it forever), and says so in the log.
const (
	orderRetry = 500 * time.Millisecond
	orderWait  = time.Minute
)

var errEarlierFirst = errors.New("waiting for the payload's earlier batches to reach the target first")

// earlierFirst returns errEarlierFirst while a batch must still wait for earlier ones.
func (d *Deliverer) earlierFirst(ctx context.Context, t *Target, msg jetstream.Msg, b *transform.Batch) error {
	list := msg.Headers().Get(pipeline.HeaderAfter)
	if list == "" {
		return nil
	}
	if md, err := msg.Metadata(); err == nil && d.now().Sub(md.Timestamp) > orderWait {
		d.log.Warn("sending a batch before the earlier batches it follows have reached the target",
			"tx", b.TxID, "seq", b.Seq, "target", t.cfg.Name, "after", list)
		return nil
	}
	ds, _, err := d.tx.TargetDeliveries(ctx, b.TxID, t.cfg.Name)
	if err != nil {
		return fmt.Errorf("%w: %w", errEarlierFirst, err)
	}
	latest := txlog.LatestBySeq(ds)
	for _, s := range strings.Split(list, ",") {
		seq, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		if r := latest[seq]; r == nil || r.Outcome == txlog.OutcomeRetrying {
			return errEarlierFirst
		}
	}
	return nil
}

// attempt is one delivery of a batch to its target: what it is recorded with.
type attempt struct {
	t *Target
	p pipeline.Permit
	// b is the batch sent; msg the message it came in, whose Source is the values it was
	// mapped from (nil when mapping left them as they were), for dead letters.
	b    *transform.Batch
	msg  *pipeline.Delivered
	rec  *txlog.DeliveryRecord
	prev pipeline.Tries
	kept pipeline.Carried
}

// delivered records a batch the target answered for: all of it taken, or some values
// rejected, which become a dead letter of exactly those values.
func (d *Deliverer) delivered(ctx context.Context, a *attempt, out importOutcome) error {
	t, b, rec := a.t, a.b, a.rec
	name := t.cfg.Name
	t.breaker.success(a.p)
	rec.Attempts = a.prev.Attempts + 1
	rec.FirstError = a.prev.First
	rec.Outcome = txlog.OutcomeDelivered
	result := "success"
	if len(out.rejected) > 0 {
		if err := d.deadLetterRejected(ctx, a, out.rejected); err != nil {
			return err
		}
		result = "partial"
	}
	d.metrics.Attempts.WithLabelValues(name, result).Inc()
	c := out.counts
	d.metrics.Values.WithLabelValues(name, "imported").Add(float64(c.Imported))
	d.metrics.Values.WithLabelValues(name, "updated").Add(float64(c.Updated))
	d.metrics.Values.WithLabelValues(name, "ignored").Add(float64(c.Ignored))
	d.metrics.Values.WithLabelValues(name, "deleted").Add(float64(c.Deleted))
	// The target answered for the batch: what it completes is registered once the
	// transaction's other batches are done (completeness.go), as DHIS2 registers a
	// completion whatever became of the values.
	rec.Completions = completionsOf(b)
	a.kept.Note.Apply(rec)
	pipeline.RecordDelivery(ctx, d.log, d.tx, b.TxID, rec)
	d.index(ctx, a, rec)
	d.completeIfDone(ctx, t, b.TxID, a.kept.Completes)
	return nil
}

// deadLetterRejected stores the values the target rejected (positions in the batch) as
// dead letters: those refused for a locked or closed period apart (locks.go), the others as
// the target's rejections. An error is the retry of the message: nothing may be acknowledged
// before the dead letters are stored.
func (d *Deliverer) deadLetterRejected(ctx context.Context, a *attempt, rejected []int) error {
	b, rec, name := a.b, a.rec, a.t.cfg.Name
	locked, other := splitRejected(b, rejected, rec.Conflicts)
	for _, part := range []struct {
		at     []int
		reason string
		err    error
	}{
		{other, pipeline.ReasonRejected, fmt.Errorf("%s rejected %d of %d values", name, len(other), len(b.Values))},
		{locked, pipeline.ReasonLocked, lockedError(name, len(locked), len(b.Values))},
	} {
		if len(part.at) == 0 {
			continue
		}
		if err := d.deadLetterPart(ctx, a, part.at, part.reason, part.err); err != nil {
			return pipeline.RetryIn(pipeline.RetryDelay(rec.Attempts, 0), fmt.Errorf("storing the rejected values: %w", err))
		}
	}
	rec.Locked = len(locked)
	rec.Outcome = txlog.OutcomePartial
	if len(rejected) == len(b.Values) {
		rec.Outcome = txlog.OutcomeDeadLettered // the target answered, and took nothing
	}
	d.metrics.Values.WithLabelValues(name, "rejected").Add(float64(len(other)))
	d.metrics.Values.WithLabelValues(name, pipeline.ReasonLocked).Add(float64(len(locked)))
	return nil
}

// deadLetterPart stores the values at the given positions of the attempt's batch as a dead
// letter of one reason, and records their payload indexes as rejected.
func (d *Deliverer) deadLetterPart(ctx context.Context, a *attempt, at []int, reason string, err error) error {
	b, rec := a.b, a.rec
	source, serr := a.msg.Source()
	if serr != nil {
		return serr
	}
	part := *b
	part.Values = make([]transform.DataValue, 0, len(at))
	for _, i := range at {
		part.Values = append(part.Values, b.Values[i])
		rec.RejectedIndexes = append(rec.RejectedIndexes, b.Values[i].Index)
	}
	db := &pipeline.DeadBatch{Batch: &part, Source: source, Target: a.t.cfg.Name, Reason: reason, Err: err, Conflicts: rec.Conflicts,
		Attempts: rec.Attempts, FirstError: rec.Time, Carried: a.kept}
	if reason != pipeline.ReasonRejected {
		db.IDSuffix = ":" + reason
	}
	return d.dead.Batch(ctx, db)
}

// deliveryFailed applies the retry policy to a request that failed as a whole: a failure
// that may pass (or refused credentials) is retried while the policy allows; a refusal,
// or a failure past the policy, makes the batch a dead letter.
func (d *Deliverer) deliveryFailed(ctx context.Context, a *attempt, derr error) error {
	rec := a.rec
	rec.LastError = derr.Error()
	rec.FirstError = a.prev.First
	if rec.FirstError.IsZero() {
		rec.FirstError = rec.Time
	}
	kind := dhis2.KindOf(derr)
	if kind == 0 {
		kind = dhis2.KindTransient // unclassified: the outcome is unknown, and re-sending is harmless
	}
	var reason string
	if unauthorized := errors.Is(derr, dhis2.ErrUnauthorized); kind == dhis2.KindTransient || unauthorized {
		if retry := d.transientFailure(ctx, a, derr, unauthorized); retry != nil {
			return retry
		}
		reason = pipeline.ReasonExhausted
	} else {
		reason = d.refused(a)
	}
	return d.deadLetterWhole(ctx, a, derr, reason)
}

// transientFailure counts a failure that may pass (in the circuit, and as an attempt while
// it is closed) and returns the message's retry, or nil when the policy allows no more.
// Refused credentials open the circuit at once: they hold for every message until an
// operator acts, and are not an attempt.
func (d *Deliverer) transientFailure(ctx context.Context, a *attempt, derr error, unauthorized bool) error {
	t, b, rec := a.t, a.b, a.rec
	name := t.cfg.Name
	attempts := a.prev.Attempts
	ra := min(dhis2.RetryAfterOf(derr), t.cfg.Retry.MaxDelay.D())
	if unauthorized {
		t.breaker.trip(a.p, ra)
	} else if t.breaker.failure(a.p, ra) {
		attempts++
	}
	rec.Attempts = attempts
	delay, ok := pipeline.PolicyOf(t.cfg).Next(attempts, b.Received, rec.Time, dhis2.RetryAfterOf(derr))
	if !ok {
		return nil
	}
	d.metrics.Attempts.WithLabelValues(name, "transient").Inc()
	d.metrics.Retries.WithLabelValues(name).Inc()
	d.log.Warn("delivery failed; will retry", "tx", b.TxID, "seq", b.Seq, "target", name,
		"attempt", attempts, "retry_in", delay, "err", derr)
	rec.Outcome = txlog.OutcomeRetrying
	pipeline.RecordDelivery(ctx, d.log, d.tx, b.TxID, rec)
	return pipeline.RetryIn(delay, derr)
}

// refused counts a request the target refused as a whole: it answered, so it is up,
// whatever it thought of the batch. It returns the dead letter's reason: locked when 2.43
// refused a data set's values whole for an untimely period (locks.go), else permanent.
func (d *Deliverer) refused(a *attempt) string {
	a.t.breaker.success(a.p)
	a.rec.Attempts = a.prev.Attempts + 1
	if allLocks(a.rec.Conflicts) {
		a.rec.Locked = len(a.b.Values)
		return pipeline.ReasonLocked
	}
	return pipeline.ReasonPermanent
}

// deadLetterWhole stores the whole batch as a dead letter of reason and records it.
func (d *Deliverer) deadLetterWhole(ctx context.Context, a *attempt, derr error, reason string) error {
	t, b, rec := a.t, a.b, a.rec
	name := t.cfg.Name
	attempts := rec.Attempts
	d.metrics.Attempts.WithLabelValues(name, "permanent").Inc()
	source, err := a.msg.Source()
	if err != nil {
		return pipeline.RetryIn(pipeline.RetryDelay(attempts, 0), err)
	}
	db := &pipeline.DeadBatch{Batch: b, Source: source, Target: name, Reason: reason, Err: derr, Conflicts: rec.Conflicts,
		Attempts: attempts, FirstError: rec.FirstError, Carried: a.kept}
	if err := d.dead.Batch(ctx, db); err != nil {
		return pipeline.RetryIn(pipeline.RetryDelay(attempts, 0), fmt.Errorf("storing a dead letter: %w", err))
	}
	rec.Outcome = txlog.OutcomeDeadLettered
	rec.Rejected, rec.RejectedIndexes = len(b.Values), pipeline.PayloadIndexes(b.Values)
	a.kept.Note.Apply(rec)
	outcome := "rejected"
	if reason == pipeline.ReasonLocked {
		outcome = pipeline.ReasonLocked
	}
	d.metrics.Values.WithLabelValues(name, outcome).Add(float64(len(b.Values)))
	// The dead-letter queue logs the batch with its counts and first conflicts.
	pipeline.RecordDelivery(ctx, d.log, d.tx, b.TxID, rec)
	d.index(ctx, a, rec)
	d.completeIfDone(ctx, t, b.TxID, a.kept.Completes)
	return nil
}

// index records which values the batch carried to the target (txlog's value index, for
// "where did this value come from"); a failure is logged, as for the delivery record.
func (d *Deliverer) index(ctx context.Context, a *attempt, rec *txlog.DeliveryRecord) {
	b := a.b
	if err := d.tx.IndexBatch(ctx, b, a.msg.Encoded, rec); err != nil {
		d.log.Warn("indexing delivered values", "tx", b.TxID, "target", rec.Target, "seq", rec.Seq, "err", err)
	}
}
