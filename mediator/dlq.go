package mediator

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
)

// Dead-letter reasons: bounded, so they can label metrics.
const (
	ReasonRejected  = "rejected"  // the target refused these values (conflicts)
	ReasonPermanent = "permanent" // the target refused the request as a whole
	ReasonExhausted = "exhausted" // transient failures outlasted the retry budget
	ReasonMapping   = "mapping"   // mapping refused the batch
)

// DeadLetter is a batch, or the part of one, that a target did not take, with everything
// needed to understand and replay it.
type DeadLetter struct {
	ID         string           `json:"id"`
	TxID       string           `json:"txId"`
	Source     string           `json:"source"`
	Target     string           `json:"target"`
	Reason     string           `json:"reason"`
	Error      string           `json:"error"`
	Conflicts  []Conflict       `json:"conflicts,omitempty"`
	Attempts   int              `json:"attempts"`
	FirstError time.Time        `json:"firstError"`
	LastError  time.Time        `json:"lastError"`
	Batch      *transform.Batch `json:"batch"`
}

func (s *Service) newDeadLetter(b *transform.Batch, target, reason string, err error, conflicts []Conflict, attempts int) *DeadLetter {
	now := s.now().UTC()
	first := now
	if prev, gerr := s.txlog.delivery(context.Background(), b.TxID, target, b.Seq); gerr == nil && prev.Outcome == OutcomeRetrying {
		first = prev.FirstError
	}
	return &DeadLetter{
		ID: b.ID + ":" + target + ":dl" + strconv.Itoa(b.Replays), TxID: b.TxID, Source: b.Source, Target: target,
		Reason: reason, Error: err.Error(), Conflicts: conflicts, Attempts: attempts,
		FirstError: first, LastError: now, Batch: b,
	}
}

func (s *Service) storeDeadLetter(ctx context.Context, dl *DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encoding dead letter: %w", err)
	}
	if err := s.pub.Publish(ctx, stream.Msg{Subject: stream.DLQPrefix + dl.Target, ID: dl.ID, Data: data}); err != nil {
		return fmt.Errorf("storing dead letter %s: %w", dl.ID, err)
	}
	s.metrics.DeadLetters.WithLabelValues(dl.Target, dl.Reason).Inc()
	return nil
}

func (s *Service) deadLetterMapping(ctx context.Context, b *transform.Batch, t *config.Target, err error) error {
	dl := s.newDeadLetter(b, t.Name, ReasonMapping, err, nil, 0)
	if serr := s.storeDeadLetter(ctx, dl); serr != nil {
		return serr
	}
	return s.txlog.PutDelivery(ctx, b.TxID, &DeliveryRecord{Target: t.Name, Seq: b.Seq, Outcome: OutcomeDeadLettered,
		Values: len(b.Values), Rejected: len(b.Values), LastError: err.Error(), Time: s.now().UTC()})
}
