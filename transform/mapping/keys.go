package mapping

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tally-hmis/tally/transform"
)

// PayloadKeys remembers the target keys one payload's batches were mapped to for one
// target, so that the source's duplicates policy reaches across the batches of a payload
// (a batch holds at most batch_size values): reject refuses a later value on a key an
// earlier batch delivered (the earlier one is gone already), last lets the later one
// overwrite it, sum delivers the earlier batches' values plus the later one. Identical
// values pass, as within a batch.
//
// "Earlier" is by Batch.Seq: a batch sees the keys of batches with a lower Seq that were
// mapped before it, so the answer is exact when the caller maps a payload's batches in
// order (a DLQ replay maps one batch alone, with nothing earlier). Each batch's own
// contribution is recorded under its Seq and replaced when the batch is mapped again, so a
// retry does not count it twice. Rolled-up values are left to the RollupStore.
//
// Keep one per payload and target, for as long as its batches are being mapped. It is
// safe for concurrent use; it remembers a bounded number of keys, and past them the batches'
// Mapped.Warnings say so.
type PayloadKeys struct {
	mu     sync.Mutex
	max    int
	keys   map[transform.Key]keyUses
	budget *KeyBudget // nil: only max bounds it
}

// KeyBudget bounds the keys several PayloadKeys remember together: a mapper that maps many
// payloads at once (a hundred clients posting at the same time) would otherwise hold each
// one's keys, about 200 bytes a key, at the same time. A key the budget cannot take is
// not remembered, as past a PayloadKeys' own limit (the batch's warnings say so). It is
// safe for concurrent use.
type KeyBudget struct {
	used atomic.Int64
	max  int64
}

// NewKeyBudget returns a budget of at most max keys (at least one).
func NewKeyBudget(n int) *KeyBudget { return &KeyBudget{max: int64(max(1, n))} }

// Used is the number of keys remembered under the budget.
func (b *KeyBudget) Used() int { return int(b.used.Load()) }

func (b *KeyBudget) take() bool {
	if b.used.Add(1) > b.max {
		b.used.Add(-1)
		return false
	}
	return true
}

// NewPayloadKeysWithin returns an empty PayloadKeys that remembers at most limit keys, and
// no more than budget still has room for; Release gives its keys back.
func NewPayloadKeysWithin(limit int, budget *KeyBudget) *PayloadKeys {
	pk := NewPayloadKeys(limit)
	pk.budget = budget
	return pk
}

// full says why a key was not remembered, for the batch's warning.
func (pk *PayloadKeys) full() string {
	if pk.budget != nil && len(pk.keys) < pk.max {
		return fmt.Sprintf("the payloads being mapped together have more than %d target keys", pk.budget.max)
	}
	return fmt.Sprintf("the payload has more than %d target keys", pk.max)
}

// Release forgets every key and gives them back to the budget: the payload is through.
func (pk *PayloadKeys) Release() {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.budget != nil {
		pk.budget.used.Add(-int64(len(pk.keys)))
	}
	pk.keys = map[transform.Key]keyUses{}
}

type keyUse struct {
	seq, index int
	value      string
	deleted    bool
}

// keyUses are the contributions to one key: nearly always one (the key of one value of
// one batch), kept in place so that remembering a key allocates nothing beyond the map.
type keyUses struct {
	first keyUse
	more  []keyUse
}

// NewPayloadKeys returns an empty PayloadKeys that remembers at most limit keys (at least
// one).
func NewPayloadKeys(limit int) *PayloadKeys {
	return &PayloadKeys{max: max(1, limit), keys: map[transform.Key]keyUses{}}
}

// Len returns the number of keys remembered.
func (pk *PayloadKeys) Len() int {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return len(pk.keys)
}

// earlierLocked returns the contributions to k of the batches before seq. The caller holds
// pk.mu: a batch takes it once for all its values (run.finish), not once per value, since
// the mapper's workers map a payload's batches side by side and a lock taken and released
// a thousand times per batch was contended enough to cost a tenth of Tally's CPU.
func (pk *PayloadKeys) earlierLocked(k transform.Key, seq int) []keyUse {
	uses, ok := pk.keys[k]
	if !ok {
		return nil
	}
	var out []keyUse
	for _, u := range append([]keyUse{uses.first}, uses.more...) {
		if u.seq < seq {
			out = append(out, u)
		}
	}
	return out
}

// recordLocked keeps a batch's own contribution to k, replacing what the same batch
// recorded before. It reports false when k is new and the set is full. The caller holds
// pk.mu.
func (pk *PayloadKeys) recordLocked(k transform.Key, u keyUse) bool {
	uses, ok := pk.keys[k]
	switch {
	case !ok && (len(pk.keys) >= pk.max || pk.budget != nil && !pk.budget.take()):
		return false
	case !ok || uses.first.seq == u.seq:
		uses.first = u
	default:
		i := slices.IndexFunc(uses.more, func(m keyUse) bool { return m.seq == u.seq })
		if i >= 0 {
			uses.more[i] = u
		} else {
			uses.more = append(uses.more, u)
		}
	}
	pk.keys[k] = uses
	return true
}
