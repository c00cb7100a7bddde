package mediator

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
)

// awaitDelivery waits, up to the source's wait_for_delivery, until every target has the
// transaction, and returns its view; nil when the source does not wait or time ran out
// (the answer then says "accepted" as usual and delivery goes on). It follows the
// transaction's delivery records as they are written rather than polling.
func (s *Service) awaitDelivery(ctx context.Context, src *config.Source, txID string) *TxView {
	wait := src.WaitForDelivery.D()
	if wait <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := s.conn.Tx.Watch(ctx, txID+".d.>", jetstream.IgnoreDeletes())
	if err != nil {
		return nil
	}
	defer func() { _ = w.Stop() }()
	check := func() *TxView {
		if v, ok := s.finished(ctx, txID); ok {
			return v
		}
		return nil
	}
	if v := check(); v != nil {
		return v
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if v := check(); v != nil {
				return v
			}
		}
	}
}

// finished returns the transaction's view if its deliveries are all done.
func (s *Service) finished(ctx context.Context, txID string) (*TxView, bool) {
	v, err := s.txlog.View(ctx, txID)
	if err != nil || v.Status == TxAccepted {
		return nil, false
	}
	return v, true
}

// deliveredCounts adds up what the targets reported, for an answer in DHIS2's shape.
func deliveredCounts(v *TxView) (ImportCount, int) {
	var c ImportCount
	rejected := 0
	for _, t := range v.Targets {
		c.add(t.Counts)
		rejected += t.Rejected
	}
	return c, rejected
}
