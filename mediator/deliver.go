package mediator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// target is a configured DHIS2 target with its client and the controls delivery applies to
// it: a bound on requests in flight, a circuit breaker, an optional rate limit and the
// request size learned from a 413.
type target struct {
	cfg     *config.Target
	client  *dhis2.Client
	slots   *slots
	breaker *breaker
	limiter *rate.Limiter // nil: no limit
	// size is the largest request the target took after answering 413; 0 means
	// max_values_per_request. It lasts until restart.
	size atomic.Int64
}

// controlTarget gives a target its bound on requests in flight, its breaker and its rate
// limit; Start calls it through consumers.
func (s *Service) controlTarget(t *target) {
	name := t.cfg.Name
	t.slots = newSlots(s.deliveryConcurrency(t.cfg), s.concurrencyLimit.WithLabelValues(name))
	retry := t.cfg.Retry
	gauge := s.metrics.CircuitState.WithLabelValues(name)
	gauge.Set(float64(circuitClosed))
	t.breaker = newBreaker(circuitThreshold,
		func(opens int) time.Duration {
			return pipeline.Backoff(opens+2, retry.InitialDelay.D(), retry.MaxDelay.D())
		},
		func(from, to circuitState) {
			gauge.Set(float64(to))
			s.log.Warn("target circuit changed", "target", name, "from", from.String(), "to", to.String())
		})
	if rl := t.cfg.RateLimit; rl.PerSecond > 0 {
		t.limiter = rate.NewLimiter(rate.Limit(rl.PerSecond), max(rl.Burst, 1))
	}
}

// Acquire admits one worker to fetch and deliver: a free slot of the concurrency limit
// first, so that at most the limit of workers even wait for the circuit and the rate limit.
// Every acquire that succeeds is paired with one release.
func (t *target) Acquire(ctx context.Context) (pipeline.Permit, error) {
	if err := t.slots.acquire(ctx); err != nil {
		return pipeline.Permit{}, err
	}
	p, err := t.breaker.acquire(ctx)
	if err != nil {
		t.slots.release()
		return p, err
	}
	if err := t.wait(ctx); err != nil {
		t.breaker.release(p)
		t.slots.release()
		return pipeline.Permit{}, err
	}
	return p, nil
}

func (t *target) Release(p pipeline.Permit) {
	t.breaker.release(p)
	t.slots.release()
}

// maxDeliveryConcurrency is the most requests in flight a target may be given, in the
// configuration (targets[].concurrency) or from the OpenHIM console; each delivery consumer
// runs this many workers, and its slots admit as many as the limit in force.
const maxDeliveryConcurrency = 64

// slots bounds the deliveries in flight to one target. Its size changes at run time (the
// OpenHIM console's delivery_concurrency); a smaller size takes effect as requests finish,
// since a request in flight is never cut short.
type slots struct {
	mu      sync.Mutex
	size    int
	used    int
	changed chan struct{} // closed and replaced whenever a slot frees or the size changes
	gauge   prometheus.Gauge
}

func newSlots(size int, gauge prometheus.Gauge) *slots {
	s := &slots{changed: make(chan struct{}), gauge: gauge}
	s.resize(size)
	return s
}

// acquire waits for a free slot until ctx ends.
func (s *slots) acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.used < s.size {
			s.used++
			s.mu.Unlock()
			return nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// over reports whether more slots are held than the limit allows: the limit shrank while
// workers held them.
func (s *slots) over() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used > s.size
}

func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used > 0 {
		s.used--
	}
	s.notifyLocked()
}

// resize sets the limit, within 1 and maxDeliveryConcurrency.
func (s *slots) resize(size int) {
	size = min(max(size, 1), maxDeliveryConcurrency)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = size
	s.gauge.Set(float64(size))
	s.notifyLocked()
}

func (s *slots) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// newConcurrencyGauge registers tally_delivery_concurrency_limit.
func newConcurrencyGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tally", Subsystem: "delivery", Name: "concurrency_limit",
		Help: "Requests a target may have in flight: targets[].concurrency, or the OpenHIM console's delivery_concurrency."},
		[]string{"target"})
	reg.MustRegister(g)
	return g
}

// wait takes a token from the rate limit, if there is one.
func (t *target) wait(ctx context.Context) error {
	if t.limiter == nil {
		return nil
	}
	return t.limiter.Wait(ctx)
}

func (t *target) requestSize() int {
	if n := int(t.size.Load()); n > 0 && n < t.cfg.MaxValuesPerRequest {
		return n
	}
	return t.cfg.MaxValuesPerRequest
}

// Importer is what delivery needs from a DHIS2 client.
type Importer interface {
	ImportDataValues(ctx context.Context, body dhis2.Payload, opts dhis2.ImportOptions) (*dhis2.ImportResult, error)
}

var _ Importer = (*dhis2.Client)(nil)

// dvsPayload is a batch's values as a DHIS2 data value set JSON body.
type dvsPayload struct {
	b      *transform.Batch
	values []transform.DataValue
}

func (p dvsPayload) ContentType() string { return "application/json" }

func (p dvsPayload) WriteTo(w io.Writer) (int64, error) {
	part := *p.b
	part.Values = p.values
	cw := &countWriter{w: w}
	err := dvs.WriteJSON(cw, &part)
	return cw.n, err
}

// deletionPayload is a DHIS2 2.43+ request that removes a deletion scope and upserts
// nothing: {"deletion": {...}, "dataValues": []}, with the batch's id schemes.
type deletionPayload struct {
	b *transform.Batch
	d *dvs.Deletion
}

func (p deletionPayload) ContentType() string { return "application/json" }

func (p deletionPayload) WriteTo(w io.Writer) (int64, error) {
	part := *p.b
	part.Values = nil
	cw := &countWriter{w: w}
	err := dvs.WriteDeletionJSON(cw, &part, p.d)
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// deliverWork is the work of a target's delivery stage: decode, then deliver.
func (s *Service) deliverWork(t *target) pipeline.Handler {
	return func(ctx context.Context, msg jetstream.Msg, p pipeline.Permit) error {
		b, source, err := pipeline.DecodeDeliver(msg)
		if err != nil {
			return pipeline.DecodeFailure(s.log, msg, err, s.cfg.Delivery.UpgradeWait.D(), s.now())
		}
		return s.deliverBatch(ctx, t, msg, p, b, source)
	}
}

// errCircuitOpen is why a message fetched as the circuit opened goes back unsent.
var errCircuitOpen = errors.New("the target's circuit is open")

// errOverLimit is why a message fetched as the concurrency limit shrank goes back unsent.
var errOverLimit = errors.New("more workers hold the target than its concurrency limit allows")

// tries is what the transaction log knows of a batch's earlier attempts at a target.
type tries struct {
	attempts int
	first    time.Time
}

// deliverBatch sends one batch to its target and records the outcome.
//
// Outcomes: every value accepted → record, ack. Some values rejected (WARNING) → the
// accepted ones are done, exactly the rejected ones become a dead letter, ack. Transient
// failure → retry while the policy allows, else dead letter. Permanent failure → dead
// letter. Refused credentials → the circuit opens and the message waits (bounded by
// max_age). Shutdown cut the request short → back to the stream at once, not an attempt.
// A dead letter is stored before the ack, so nothing is lost between the two; every write
// after the request runs on a fresh deadline (bookkeeping), whatever the request took.
func (s *Service) deliverBatch(ctx context.Context, t *target, msg jetstream.Msg, p pipeline.Permit, b, source *transform.Batch) error {
	if t.slots.over() {
		// Fetched by a worker admitted before the concurrency limit shrank: not sent, not
		// an attempt; it goes back so that no more than the new limit are in flight.
		return pipeline.RetryIn(pipeline.PolicyOf(t.cfg).Deferred(), errOverLimit)
	}
	if !p.Probe && t.breaker.State() != circuitClosed {
		// Fetched just as the circuit opened: not sent, not an attempt; it waits for the
		// circuit like the messages still in the stream.
		s.metrics.DeliveryDeferred.WithLabelValues(t.cfg.Name).Inc()
		return pipeline.RetryIn(pipeline.PolicyOf(t.cfg).Deferred(), errCircuitOpen)
	}
	prev := s.earlierTries(ctx, msg, b, t.cfg.Name)
	outcome, derr := s.importBatch(ctx, t, b, pipeline.FlagsOf(msg.Headers()))
	bctx, cancel := pipeline.Bookkeeping(ctx)
	defer cancel()
	unmapped, _ := strconv.Atoi(msg.Headers().Get(pipeline.HeaderUnmapped))
	rec := &txlog.DeliveryRecord{Target: t.cfg.Name, Seq: b.Seq, Replay: b.Replays, Values: len(b.Values), Unmapped: unmapped,
		Time: s.now().UTC(), Counts: outcome.counts, Conflicts: outcome.conflicts, Rejected: len(outcome.rejected)}
	kept := pipeline.CarriedBy(msg.Headers())
	if derr == nil {
		return s.delivered(bctx, t, p, b, source, rec, outcome, prev, kept)
	}
	if dhis2.KindOf(derr) == 0 && ctx.Err() != nil {
		// Our own cancellation (shutdown): the target is not to blame, and the message goes
		// back to the stream now rather than after AckWait.
		s.log.Info("delivery interrupted; message returned to the stream", "tx", b.TxID, "seq", b.Seq,
			"target", t.cfg.Name, "err", derr)
		return pipeline.RetryIn(0, derr)
	}
	return s.deliveryFailed(bctx, t, p, b, source, rec, derr, prev, kept)
}

// earlierTries reads the attempts a batch has already used at a target. They are recorded
// only once a message comes back, so the first delivery (the common case) skips the read.
func (s *Service) earlierTries(ctx context.Context, msg jetstream.Msg, b *transform.Batch, target string) tries {
	if pipeline.MsgAttempts(msg) <= 1 {
		return tries{}
	}
	bctx, cancel := pipeline.Bookkeeping(ctx)
	defer cancel()
	prev, err := s.txlog.Delivery(bctx, b.TxID, target, b.Seq, b.Replays)
	if err != nil || prev.Outcome != txlog.OutcomeRetrying {
		return tries{}
	}
	return tries{attempts: prev.Attempts, first: prev.FirstError}
}

// delivered records a batch the target answered for: all of it taken, or some values
// rejected, which become a dead letter of exactly those values.
func (s *Service) delivered(ctx context.Context, t *target, p pipeline.Permit, b, source *transform.Batch, rec *txlog.DeliveryRecord,
	out importOutcome, prev tries, kept pipeline.Carried) error {
	name := t.cfg.Name
	t.breaker.success(p)
	rec.Attempts = prev.attempts + 1
	rec.FirstError = prev.first
	rec.Outcome = txlog.OutcomeDelivered
	result := "success"
	if len(out.rejected) > 0 {
		// Values refused for a locked or closed period are dead letters of their own
		// (locks.go); the others are the target's rejections.
		locked, other := splitRejected(b, out.rejected, rec.Conflicts)
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
			if err := s.deadLetterPart(ctx, b, source, name, part.at, part.reason, part.err, rec, kept); err != nil {
				return pipeline.RetryIn(pipeline.RetryDelay(rec.Attempts, 0), fmt.Errorf("storing the rejected values: %w", err))
			}
		}
		rec.Locked = len(locked)
		rec.Outcome = txlog.OutcomePartial
		result = "partial"
		if len(out.rejected) == len(b.Values) {
			rec.Outcome = txlog.OutcomeDeadLettered // the target answered, and took nothing
		}
		s.metrics.DeliveredValues.WithLabelValues(name, "rejected").Add(float64(len(other)))
		s.metrics.DeliveredValues.WithLabelValues(name, pipeline.ReasonLocked).Add(float64(len(locked)))
	}
	s.metrics.DeliveryAttempts.WithLabelValues(name, result).Inc()
	c := out.counts
	s.metrics.DeliveredValues.WithLabelValues(name, "imported").Add(float64(c.Imported))
	s.metrics.DeliveredValues.WithLabelValues(name, "updated").Add(float64(c.Updated))
	s.metrics.DeliveredValues.WithLabelValues(name, "ignored").Add(float64(c.Ignored))
	s.metrics.DeliveredValues.WithLabelValues(name, "deleted").Add(float64(c.Deleted))
	// The target answered for the batch: what it completes is registered once the
	// transaction's other batches are done (completeness.go), as DHIS2 registers a
	// completion whatever became of the values.
	rec.Completions = completionsOf(b)
	kept.Note.Apply(rec)
	pipeline.RecordDelivery(ctx, s.log, s.txlog, b.TxID, rec)
	s.completeIfDone(ctx, t, b.TxID, kept.Completes)
	return nil
}

// deadLetterPart stores the values at the given positions of b as a dead letter of one
// reason, and records their payload indexes as rejected.
func (s *Service) deadLetterPart(ctx context.Context, b, source *transform.Batch, target string, at []int, reason string,
	err error, rec *txlog.DeliveryRecord, kept pipeline.Carried) error {
	part := *b
	part.Values = make([]transform.DataValue, 0, len(at))
	for _, i := range at {
		part.Values = append(part.Values, b.Values[i])
		rec.RejectedIndexes = append(rec.RejectedIndexes, b.Values[i].Index)
	}
	d := &pipeline.DeadBatch{Batch: &part, Source: source, Target: target, Reason: reason, Err: err, Conflicts: rec.Conflicts,
		Attempts: rec.Attempts, FirstError: rec.Time, Carried: kept}
	if reason != pipeline.ReasonRejected {
		d.IDSuffix = ":" + reason
	}
	return s.deadLetters.Batch(ctx, d)
}

// deliveryFailed applies the retry policy to a request that failed as a whole.
func (s *Service) deliveryFailed(ctx context.Context, t *target, p pipeline.Permit, b, source *transform.Batch, rec *txlog.DeliveryRecord,
	derr error, prev tries, kept pipeline.Carried) error {
	name := t.cfg.Name
	pol := pipeline.PolicyOf(t.cfg)
	rec.LastError = derr.Error()
	rec.FirstError = prev.first
	if rec.FirstError.IsZero() {
		rec.FirstError = rec.Time
	}
	attempts := prev.attempts
	kind := dhis2.KindOf(derr)
	if kind == 0 {
		kind = dhis2.KindTransient // unclassified: the outcome is unknown, and re-sending is harmless
	}
	reason := pipeline.ReasonPermanent
	if unauthorized := errors.Is(derr, dhis2.ErrUnauthorized); kind == dhis2.KindTransient || unauthorized {
		ra := min(retryAfterOf(derr), t.cfg.Retry.MaxDelay.D())
		if unauthorized {
			t.breaker.trip(p, ra) // holds for every message until an operator acts; not an attempt
		} else if t.breaker.failure(p, ra) {
			attempts++
		}
		rec.Attempts = attempts
		if delay, ok := pol.Next(attempts, b.Received, rec.Time, retryAfterOf(derr)); ok {
			s.metrics.DeliveryAttempts.WithLabelValues(name, "transient").Inc()
			s.metrics.DeliveryRetries.WithLabelValues(name).Inc()
			s.log.Warn("delivery failed; will retry", "tx", b.TxID, "seq", b.Seq, "target", name,
				"attempt", attempts, "retry_in", delay, "err", derr)
			rec.Outcome = txlog.OutcomeRetrying
			pipeline.RecordDelivery(ctx, s.log, s.txlog, b.TxID, rec)
			return pipeline.RetryIn(delay, derr)
		}
		reason = pipeline.ReasonExhausted
	} else {
		// The target answered: it is up, whatever it thought of the batch.
		t.breaker.success(p)
		attempts++
		rec.Attempts = attempts
		if allLocks(rec.Conflicts) {
			// 2.43 refuses a data set's values whole for an untimely period (locks.go).
			reason = pipeline.ReasonLocked
			rec.Locked = len(b.Values)
		}
	}
	s.metrics.DeliveryAttempts.WithLabelValues(name, "permanent").Inc()
	d := &pipeline.DeadBatch{Batch: b, Source: source, Target: name, Reason: reason, Err: derr, Conflicts: rec.Conflicts,
		Attempts: attempts, FirstError: rec.FirstError, Carried: kept}
	if err := s.deadLetters.Batch(ctx, d); err != nil {
		return pipeline.RetryIn(pipeline.RetryDelay(attempts, 0), fmt.Errorf("storing a dead letter: %w", err))
	}
	rec.Outcome = txlog.OutcomeDeadLettered
	rec.Rejected, rec.RejectedIndexes = len(b.Values), pipeline.PayloadIndexes(b.Values)
	kept.Note.Apply(rec)
	outcome := "rejected"
	if reason == pipeline.ReasonLocked {
		outcome = pipeline.ReasonLocked
	}
	s.metrics.DeliveredValues.WithLabelValues(name, outcome).Add(float64(len(b.Values)))
	s.log.Error("delivery failed; batch dead-lettered", "tx", b.TxID, "seq", b.Seq, "target", name,
		"reason", reason, "err", derr)
	pipeline.RecordDelivery(ctx, s.log, s.txlog, b.TxID, rec)
	s.completeIfDone(ctx, t, b.TxID, kept.Completes)
	return nil
}

type importOutcome struct {
	counts    txlog.ImportCount
	conflicts []txlog.Conflict
	rejected  []int // positions in the batch's Values
	requests  int
}

// sendRequest posts one request of n values and counts it. When the target refuses it as
// too large (413), the request size is halved for this target and halved is true: the
// caller sends the same values again in smaller requests.
func (s *Service) sendRequest(ctx context.Context, t *target, body dhis2.Payload, opts dhis2.ImportOptions,
	n int, size *int, out *importOutcome) (res *dhis2.ImportResult, halved bool, err error) {
	began := time.Now()
	res, err = t.client.ImportDataValues(ctx, body, opts)
	out.requests++
	s.metrics.DeliveryLatency.WithLabelValues(t.cfg.Name).Observe(time.Since(began).Seconds())
	if errors.Is(err, dhis2.ErrTooLarge) && n > 1 {
		*size = n / 2
		t.size.Store(int64(*size))
		s.metrics.RequestSplits.WithLabelValues(t.cfg.Name).Inc()
		s.log.Warn("target refused the request as too large; halving it", "target", t.cfg.Name,
			"values", n, "now", *size)
		return nil, true, nil
	}
	return res, false, err
}

// importBatch posts the batch in requests of at most max_values_per_request values and adds
// up what the target reported. A 413 halves the request size and sends the same values again
// (down to one value, which is then a permanent failure); the smaller size is kept for the
// target's later batches. Every request after the first waits for the rate limit (the
// consume chain keeps the message's ack deadline alive meanwhile). Conflict indexes are translated from positions
// in each request to positions in the batch, then to the values' indexes in the original
// payload.
func (s *Service) importBatch(ctx context.Context, t *target, b *transform.Batch, flags url.Values) (importOutcome, error) {
	if b.Deletion {
		if scopeSupported(ctx, t) {
			return s.importDeletion(ctx, t, b, flags)
		}
		// Before 2.43 DHIS2 ignores a deletion block and would remove nothing: the
		// batch's values (all deleted: true) remove the same keys one by one.
		s.log.Warn("target does not report DHIS2 2.43 or later; deletion batch sent as deleted values",
			"target", t.cfg.Name, "tx", b.TxID, "seq", b.Seq)
		plain := *b
		plain.Deletion = false
		b = &plain
	}
	var out importOutcome
	size := t.requestSize()
	opts := s.importOptions(t, b, flags)
	for start := 0; start < len(b.Values); {
		end := min(start+size, len(b.Values))
		if out.requests > 0 {
			if err := t.wait(ctx); err != nil {
				return out, err
			}
		}
		res, halved, err := s.sendRequest(ctx, t, dvsPayload{b: b, values: b.Values[start:end]}, opts, end-start, &size, &out)
		if halved {
			continue
		}
		if err != nil {
			var de *dhis2.Error
			if errors.As(err, &de) && de.Result != nil {
				out.conflicts = append(out.conflicts, conflictsOf(de.Result, b, start)...)
			}
			return out, err
		}
		out.counts.Add(txlog.ImportCount{Imported: res.Counts.Imported, Updated: res.Counts.Updated,
			Ignored: res.Counts.Ignored, Deleted: res.Counts.Deleted})
		out.conflicts = append(out.conflicts, conflictsOf(res, b, start)...)
		if !res.IndexesKnown && len(res.Conflicts) > 0 {
			// An old server named conflicts without saying which values they hit: every
			// value of the request is suspect, and re-sending the accepted ones on replay
			// is harmless (DHIS2 upserts).
			for i := start; i < end; i++ {
				out.rejected = append(out.rejected, i)
			}
		} else {
			for _, i := range res.Rejected {
				if i >= 0 && start+i < end {
					out.rejected = append(out.rejected, start+i)
				}
			}
		}
		start = end
	}
	return out, nil
}

// importOptions are the options of a batch's requests: the client's import strategy, when it
// asked for one, over the target's, so that the target applies it as DHIS2 does (CREATE
// leaves existing values alone, UPDATE creates none, DELETE deletes and counts deleted —
// a DELETE's values also carry deleted: true, which deletes on every version); and the
// import parameters the client asked the target to apply (importflags.go).
func (s *Service) importOptions(t *target, b *transform.Batch, flags url.Values) dhis2.ImportOptions {
	strategy := t.cfg.ImportStrategy
	if b.ImportStrategy != "" {
		strategy = b.ImportStrategy
	}
	o := dhis2.ImportOptions{Schemes: b.Schemes, ImportStrategy: strategy,
		DryRun: s.dryRunFor(t), SkipAudit: t.cfg.SkipAudit || flags.Get("skipAudit") == "true", Async: t.cfg.Async}
	for k, v := range flags {
		if k != "skipAudit" && len(v) > 0 {
			if o.Extra == nil {
				o.Extra = url.Values{}
			}
			o.Extra.Set(k, v[0])
		}
	}
	return o
}

// scopeRelease is the first DHIS2 release that reads a deletion scope (spec dhis2.md §5).
const scopeRelease = 43

// scopeSupported reports whether a target is known to be DHIS2 2.43 or later: from the
// version its client last read, else from asking it now. A target whose version cannot be
// read is treated as older, since deleted: true values work on every version.
func scopeSupported(ctx context.Context, t *target) bool {
	v, ok := t.client.ServerVersion()
	if !ok {
		info, err := t.client.SystemInfo(ctx)
		if err != nil {
			return false
		}
		v = info.Release
	}
	return v.Release() >= scopeRelease
}

// importDeletion sends a deletion batch to a 2.43+ target: its keys grouped by org unit
// and period, one request per group (split at max_values_per_request elements, halved on
// 413 as importBatch does), each a deletion scope of exactly those keys — one org unit,
// one period, every element narrowed by both combos — and no values. DHIS2 counts what a
// scope removed as deleted. A refused scope names, as conflict indexes, the values whose
// keys it held.
func (s *Service) importDeletion(ctx context.Context, t *target, b *transform.Batch, flags url.Values) (importOutcome, error) {
	var out importOutcome
	type cell struct{ ou, pe string }
	groups := map[cell][]int{}
	var order []cell
	for i := range b.Values {
		v := &b.Values[i]
		c := cell{v.OrgUnit, v.Period}
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], i)
	}
	size := t.requestSize()
	opts := s.importOptions(t, b, flags)
	for _, c := range order {
		idx := groups[c]
		for start := 0; start < len(idx); {
			end := min(start+size, len(idx))
			if out.requests > 0 {
				if err := t.wait(ctx); err != nil {
					return out, err
				}
			}
			d := &dvs.Deletion{OrgUnits: []string{c.ou}, Periods: []string{c.pe},
				Elements: make([]dvs.DeletionElement, 0, end-start)}
			for _, i := range idx[start:end] {
				v := &b.Values[i]
				d.Elements = append(d.Elements, dvs.DeletionElement{DataElement: v.DataElement,
					CategoryOptionCombo: v.CategoryOptionCombo, AttributeOptionCombo: v.AttributeOptionCombo})
			}
			res, halved, err := s.sendRequest(ctx, t, deletionPayload{b: b, d: d}, opts, end-start, &size, &out)
			if halved {
				continue
			}
			if err != nil {
				var de *dhis2.Error
				if errors.As(err, &de) && de.Result != nil {
					out.conflicts = append(out.conflicts, scopeConflicts(de.Result, b, idx[start:end])...)
				}
				return out, err
			}
			out.counts.Add(txlog.ImportCount{Imported: res.Counts.Imported, Updated: res.Counts.Updated,
				Ignored: res.Counts.Ignored, Deleted: res.Counts.Deleted})
			if len(res.Conflicts) > 0 {
				// A scope is all or nothing; a conflict on it leaves its keys in doubt.
				out.conflicts = append(out.conflicts, scopeConflicts(res, b, idx[start:end])...)
				out.rejected = append(out.rejected, idx[start:end]...)
			}
			start = end
		}
	}
	return out, nil
}

// scopeConflicts reports a deletion request's conflicts against the values whose keys its
// scope held.
func scopeConflicts(res *dhis2.ImportResult, b *transform.Batch, held []int) []txlog.Conflict {
	out := make([]txlog.Conflict, 0, len(res.Conflicts))
	for _, c := range res.Conflicts {
		cc := txlog.Conflict{ErrorCode: c.ErrorCode, Object: c.Object, Objects: c.Objects, Property: c.Property, Message: c.Value}
		for _, i := range held {
			cc.Indexes = append(cc.Indexes, b.Values[i].Index)
		}
		out = append(out, cc)
	}
	return out
}

func conflictsOf(res *dhis2.ImportResult, b *transform.Batch, offset int) []txlog.Conflict {
	out := make([]txlog.Conflict, 0, len(res.Conflicts))
	for _, c := range res.Conflicts {
		cc := txlog.Conflict{ErrorCode: c.ErrorCode, Object: c.Object, Objects: c.Objects, Property: c.Property, Message: c.Value}
		for _, i := range c.Indexes {
			if p := offset + i; p >= 0 && p < len(b.Values) {
				cc.Indexes = append(cc.Indexes, b.Values[p].Index)
			}
		}
		out = append(out, cc)
	}
	return out
}

func retryAfterOf(err error) time.Duration {
	var de *dhis2.Error
	if errors.As(err, &de) {
		return de.RetryAfter
	}
	return 0
}
