package txlog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// A client whose request got no answer sends it again, and the retry is the same
// transaction (same id). When the first attempt died while storing the payload's batches,
// delivery of the first ones may have begun, and a restarted JetStream no longer knows the
// ids of the messages it delivered and removed: it rebuilds its duplicate window only from
// the messages it still holds (nats-server stream.go, rebuildDedupe). The retry would store
// and send those batches again. Ingest marks a transaction before it stores its first batch
// (BeginStoring); a retry that finds the mark reads which batches are already settled at
// each target (Settled), and mapping leaves those out.

// storingKey marks a transaction whose batches ingest began to store. It sits beside the
// transaction's other keys and expires with them; readers of the bucket skip it (its
// second token is neither "d" nor "e").
func storingKey(txID string) string { return txID + ".s" }

// BeginStoring marks that ingest begins to store the batches of transaction txID, and says
// whether an earlier attempt of the same request began already. shape says how the payload
// is split (the number and size of its batches): the earlier attempt's batch n is the
// retry's batch n only when the shapes agree (a changed batch_size splits it otherwise), so
// an earlier attempt of another shape does not count.
func (l *TxLog) BeginStoring(ctx context.Context, txID, shape string) (again bool, err error) {
	_, err = l.kv.Create(ctx, storingKey(txID), []byte(shape))
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := l.kv.Get(ctx, storingKey(txID))
		if gerr != nil {
			return false, fmt.Errorf("reading how transaction %s was stored: %w", txID, gerr)
		}
		return string(e.Value()) == shape, nil
	}
	if err != nil {
		return false, fmt.Errorf("marking transaction %s as being stored: %w", txID, err)
	}
	return false, nil
}

// Settled are the batches of a transaction whose first delivery to a target has ended:
// every value accepted, some or all dead-lettered, or nothing left by mapping. Sending such
// a batch again would import it twice, or dead-letter its rejected values twice.
type Settled map[int][]string

// Targets returns the targets where batch seq is settled.
func (s Settled) Targets(seq int) []string { return s[seq] }

// Settled reads which batches of transaction txID are settled, and where.
func (l *TxLog) Settled(ctx context.Context, txID string) (Settled, error) {
	ds, err := l.Deliveries(ctx, txID)
	if err != nil {
		return nil, err
	}
	s := Settled{}
	for _, d := range ds {
		if d.Replay != 0 || d.Stage != "" || !settles(d.Outcome) || slices.Contains(s[d.Seq], d.Target) {
			continue
		}
		s[d.Seq] = append(s[d.Seq], d.Target)
	}
	return s, nil
}

func settles(outcome string) bool {
	switch outcome {
	case OutcomeDelivered, OutcomePartial, OutcomeDeadLettered, OutcomeEmpty:
		return true
	}
	return false
}
