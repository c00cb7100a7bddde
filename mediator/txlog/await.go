package txlog

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Await waits, up to wait, until every target has the transaction, and returns its view;
// nil when wait is not positive or time ran out. It follows the transaction's delivery
// records as they are written rather than polling.
func (l *TxLog) Await(ctx context.Context, txID string, wait time.Duration) *TxView {
	if wait <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := l.kv.Watch(ctx, txID+".d.>", jetstream.IgnoreDeletes())
	if err != nil {
		return nil
	}
	defer func() { _ = w.Stop() }()
	check := func() *TxView {
		if v, ok := l.Finished(ctx, txID); ok {
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

// Finished returns the transaction's view if its deliveries are all done.
func (l *TxLog) Finished(ctx context.Context, txID string) (*TxView, bool) {
	v, err := l.View(ctx, txID)
	if err != nil || v.Status == TxAccepted {
		return nil, false
	}
	return v, true
}
