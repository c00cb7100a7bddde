package mediator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
)

// target is a configured DHIS2 target with its client.
type target struct {
	cfg    *config.Target
	client *dhis2.Client
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

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// deliverBatch is a delivery worker's handler for one TALLY_DELIVER message.
//
// Outcomes: every value accepted → record and ack. Some values rejected (WARNING) → the
// accepted ones are done, exactly the rejected ones become a dead letter, ack. Transient
// failure → nak with backoff while attempts and age allow, else dead letter. Permanent
// failure → dead letter. The dead letter is stored before the ack, so nothing is lost
// between the two.
func (s *Service) deliverBatch(ctx context.Context, t *target, msg jetstream.Msg) {
	b, err := decodeMsg(msg)
	if err != nil {
		s.log.Error("dropping unreadable delivery message", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason(err.Error())
		return
	}
	attempt := msgAttempts(msg)
	unmapped, _ := strconv.Atoi(msg.Headers().Get(headerUnmapped))
	rec := &DeliveryRecord{Target: t.cfg.Name, Seq: b.Seq, Values: len(b.Values), Unmapped: unmapped, Attempts: attempt}

	outcome, derr := s.importBatch(ctx, t, b)
	rec.Time = s.now().UTC()
	rec.Counts = outcome.counts
	rec.Conflicts = outcome.conflicts
	rec.Rejected = len(outcome.rejected)

	if derr != nil {
		rec.LastError = derr.Error()
		age := s.now().Sub(b.Received)
		retry := t.cfg.Retry
		if dhis2.KindOf(derr) == dhis2.KindTransient && attempt < retry.MaxAttempts && age < retry.MaxAge.D() {
			s.metrics.DeliveryAttempts.WithLabelValues(t.cfg.Name, "transient").Inc()
			delay := s.retryDelayFor(t.cfg, attempt, derr)
			s.log.Warn("delivery failed; will retry", "tx", b.TxID, "seq", b.Seq, "target", t.cfg.Name,
				"attempt", attempt, "retry_in", delay, "err", derr)
			rec.Outcome = OutcomeRetrying
			rec.FirstError = rec.Time
			if prev, err := s.txlog.delivery(ctx, b.TxID, t.cfg.Name, b.Seq); err == nil && !prev.FirstError.IsZero() {
				rec.FirstError = prev.FirstError
			}
			_ = s.txlog.PutDelivery(ctx, b.TxID, rec)
			_ = msg.NakWithDelay(delay)
			return
		}
		reason := ReasonPermanent
		if dhis2.KindOf(derr) == dhis2.KindTransient {
			reason = ReasonExhausted
		}
		s.metrics.DeliveryAttempts.WithLabelValues(t.cfg.Name, "permanent").Inc()
		dl := s.newDeadLetter(b, t.cfg.Name, reason, derr, rec.Conflicts, attempt)
		if err := s.storeDeadLetter(ctx, dl); err != nil {
			s.log.Error("storing dead letter failed; leaving the message for redelivery", "tx", b.TxID, "err", err)
			_ = msg.NakWithDelay(s.retryDelay(attempt, 0))
			return
		}
		rec.Outcome = OutcomeDeadLettered
		rec.Rejected = len(b.Values)
		s.metrics.DeliveredValues.WithLabelValues(t.cfg.Name, "rejected").Add(float64(len(b.Values)))
		s.log.Error("delivery failed; batch dead-lettered", "tx", b.TxID, "seq", b.Seq, "target", t.cfg.Name,
			"reason", reason, "err", derr)
	} else {
		rec.Outcome = OutcomeDelivered
		result := "success"
		if len(outcome.rejected) > 0 {
			rejected := b.Values[:0:0]
			for _, i := range outcome.rejected {
				rejected = append(rejected, b.Values[i])
			}
			part := *b
			part.Values = rejected
			dl := s.newDeadLetter(&part, t.cfg.Name, ReasonRejected,
				fmt.Errorf("%s rejected %d of %d values", t.cfg.Name, len(rejected), len(b.Values)), rec.Conflicts, attempt)
			if err := s.storeDeadLetter(ctx, dl); err != nil {
				s.log.Error("storing dead letter failed; leaving the message for redelivery", "tx", b.TxID, "err", err)
				_ = msg.NakWithDelay(s.retryDelay(attempt, 0))
				return
			}
			rec.Outcome = OutcomePartial
			result = "partial"
			s.metrics.DeliveredValues.WithLabelValues(t.cfg.Name, "rejected").Add(float64(len(rejected)))
		}
		s.metrics.DeliveryAttempts.WithLabelValues(t.cfg.Name, result).Inc()
		c := outcome.counts
		s.metrics.DeliveredValues.WithLabelValues(t.cfg.Name, "imported").Add(float64(c.Imported))
		s.metrics.DeliveredValues.WithLabelValues(t.cfg.Name, "updated").Add(float64(c.Updated))
		s.metrics.DeliveredValues.WithLabelValues(t.cfg.Name, "ignored").Add(float64(c.Ignored))
		s.metrics.DeliveredValues.WithLabelValues(t.cfg.Name, "deleted").Add(float64(c.Deleted))
	}
	if err := s.txlog.PutDelivery(ctx, b.TxID, rec); err != nil {
		s.log.Warn("recording delivery", "tx", b.TxID, "err", err)
	}
	if err := msg.DoubleAck(ctx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		s.log.Warn("acknowledging delivery message", "tx", b.TxID, "err", err)
	}
}

type importOutcome struct {
	counts    ImportCount
	conflicts []Conflict
	rejected  []int // positions in the batch's Values
}

// importBatch posts the batch in requests of at most max_values_per_request values and adds
// up what the target reported. Conflict indexes are translated from positions in each
// request to positions in the batch, then to the values' indexes in the original payload.
func (s *Service) importBatch(ctx context.Context, t *target, b *transform.Batch) (importOutcome, error) {
	var out importOutcome
	size := t.cfg.MaxValuesPerRequest
	opts := dhis2.ImportOptions{Schemes: b.Schemes, ImportStrategy: t.cfg.ImportStrategy,
		DryRun: t.cfg.DryRun, SkipAudit: t.cfg.SkipAudit, Async: t.cfg.Async}
	for start := 0; start < len(b.Values); start += size {
		end := min(start+size, len(b.Values))
		began := time.Now()
		res, err := t.client.ImportDataValues(ctx, dvsPayload{b: b, values: b.Values[start:end]}, opts)
		s.metrics.DeliveryLatency.WithLabelValues(t.cfg.Name).Observe(time.Since(began).Seconds())
		if err != nil {
			var de *dhis2.Error
			if errors.As(err, &de) && de.Result != nil {
				out.conflicts = append(out.conflicts, conflictsOf(de.Result, b, start)...)
			}
			return out, err
		}
		out.counts.add(ImportCount{Imported: res.Counts.Imported, Updated: res.Counts.Updated,
			Ignored: res.Counts.Ignored, Deleted: res.Counts.Deleted})
		out.conflicts = append(out.conflicts, conflictsOf(res, b, start)...)
		if !res.IndexesKnown && len(res.Conflicts) > 0 {
			// An old server named conflicts without saying which values they hit: every
			// value of the request is suspect, and re-sending the accepted ones on replay
			// is harmless (DHIS2 upserts).
			for i := start; i < end; i++ {
				out.rejected = append(out.rejected, i)
			}
			continue
		}
		for _, i := range res.Rejected {
			if i >= 0 && start+i < end {
				out.rejected = append(out.rejected, start+i)
			}
		}
	}
	return out, nil
}

func conflictsOf(res *dhis2.ImportResult, b *transform.Batch, offset int) []Conflict {
	out := make([]Conflict, 0, len(res.Conflicts))
	for _, c := range res.Conflicts {
		cc := Conflict{ErrorCode: c.ErrorCode, Object: c.Object, Property: c.Property, Message: c.Value}
		for _, i := range c.Indexes {
			if p := offset + i; p >= 0 && p < len(b.Values) {
				cc.Indexes = append(cc.Indexes, b.Values[p].Index)
			}
		}
		out = append(out, cc)
	}
	return out
}

// retryDelayFor honours a server's Retry-After, else backs off exponentially with jitter.
func (s *Service) retryDelayFor(t *config.Target, attempt int, err error) time.Duration {
	var de *dhis2.Error
	if errors.As(err, &de) && de.RetryAfter > 0 {
		return min(de.RetryAfter, t.Retry.MaxDelay.D())
	}
	return backoff(attempt, t.Retry.InitialDelay.D(), t.Retry.MaxDelay.D())
}

func (s *Service) retryDelay(attempt int, floor time.Duration) time.Duration {
	return max(floor, backoff(attempt, time.Second, time.Minute))
}

// backoff is initial·2^(attempt-1), capped, with "equal jitter": half fixed, half random, so
// that a burst of failures does not come back as a burst.
func backoff(attempt int, initial, maxDelay time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	return half + rand.N(half+1)
}
