package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/transform/mapping"
)

// kvRollup is the mapping engine's RollupStore on the tally_state bucket: one entry per
// rolled-up value under the keys mapping.RollupStore documents ("rollup.<target>.<source>.
// <de>.<period>.<ou>.<coc>.<aoc>"), written with compare-and-set on the entry's revision so
// that two replicas (or two mapper workers) adding a month to the same quarter cannot lose
// one another's part: Create for a new entry, Update at the revision read; the engine reads
// again when another writer came first. Because a part replaces its earlier contribution
// rather than adding to it, mapping a batch again (a retry, a replay) stores the same thing.
//
// Entries are kept as long as the bucket keeps them (tally_state has no age limit): a
// quarter's later months need its earlier ones.
type kvRollup struct{ kv jetstream.KeyValue }

var _ mapping.RollupStore = kvRollup{}

// Get returns the entry and its revision; a key never stored, or deleted, is nil and 0.
func (r kvRollup) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := r.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, 0, nil
	case err != nil:
		return nil, 0, fmt.Errorf("reading %s from tally_state: %w", key, err)
	}
	return e.Value(), e.Revision(), nil
}

// Put stores value if key is still at revision (0: absent); a writer that came first is
// mapping.ErrRollupConflict.
func (r kvRollup) Put(ctx context.Context, key string, value []byte, revision uint64) error {
	var err error
	if revision == 0 {
		_, err = r.kv.Create(ctx, key, value)
	} else {
		_, err = r.kv.Update(ctx, key, value, revision)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return fmt.Errorf("%s: %w", key, mapping.ErrRollupConflict)
	}
	return fmt.Errorf("writing %s to tally_state: %w", key, err)
}

// rollupStore is the roll-up store on tally_state (nil without one).
func (m *Mapping) rollupStore() mapping.RollupStore {
	if m.state == nil {
		return nil
	}
	return kvRollup{kv: m.state}
}
