package mapping

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
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
	mu  sync.Mutex
	max int
	// A payload holds up to 100,000 keys, and the garbage collector walks whatever holds
	// pointers on every cycle: keyed by the five strings of a transform.Key, the map alone
	// cost a large share of the mapper's GC work. So the map holds no pointers (its key is
	// a hash, its value an index), and what has to keep a string, a contribution's value,
	// lives in one slice that the collector scans in a single linear pass.
	keys map[keyID]int32 // the index in uses of the key's first contribution
	uses []keyUse        // every key's contributions, each key's chained by next
	// seeds make keyID (a run hashes its batch's keys under them, run.keyID); earlier is
	// scratch space reused under mu, so that looking a key up allocates nothing.
	seeds   [2]maphash.Seed
	earlier []keyUse
	budget  *KeyBudget // nil: only max bounds it
	// held is what pk took from budget: keys reserved up front (NewPayloadKeysWithin) and
	// any taken one by one past them. Release gives it back.
	held int
}

// keyID stands for a transform.Key: two 64-bit hashes, under independent random seeds, of
// the key's fields each written after its length, so that ("a","bc") and ("ab","c") are
// different input. Two keys share an id only when both hashes collide: by the birthday
// bound that takes about 2^64 keys, against at most a few hundred thousand here. maphash
// is not a cryptographic hash, but its seeds are random per PayloadKeys and never leave
// the process, so a client cannot aim at a collision. (Were one to happen, a value would
// be taken for a duplicate of an unrelated key.) The transaction id relies on a 128-bit
// hash in the same way (ingest's assignTxID keeps 16 bytes of a SHA-256).
type keyID [2]uint64

// keyIndex finds a batch's slots by their keys' ids. The ids are seeded 128-bit hashes,
// random to anyone without the seeds, so an id's first word places it in an open-addressed
// table without hashing it again, and with the table at most half full probes stay short.
// It was a map[keyID]int32, whose hashing, probing and clearing were about a third of what
// put cost.
type keyIndex struct {
	ids  []keyID
	at   []int32 // 1 + the key's slot; 0: an empty place
	bits int     // len(at) is 1<<bits
}

// reset empties the index for a batch of n values, each at most one key.
func (x *keyIndex) reset(n int) {
	x.bits = max(6, bits.Len(uint(2*n)))
	size := 1 << x.bits
	if cap(x.at) < size {
		x.ids, x.at = make([]keyID, size), make([]int32, size)
		return
	}
	x.ids, x.at = x.ids[:size], x.at[:size]
	clear(x.at)
}

// find returns the slot of key id; a new id takes slot next, and added says so.
func (x *keyIndex) find(id keyID, next int32) (slot int32, added bool) {
	mask := len(x.at) - 1
	for j := int(id[0] >> (64 - x.bits)); ; j = (j + 1) & mask {
		switch at := x.at[j]; {
		case at == 0:
			x.ids[j], x.at[j] = id, next+1
			return next, true
		case x.ids[j] == id:
			return at - 1, false
		}
	}
}

// noUse ends a key's chain of contributions.
const noUse = -1

// keyUse is one batch's contribution to a key. Seq and index fit in 32 bits: a payload of
// 2^31 values would be tens of gigabytes, far past any request body Tally accepts, and
// acrossBatches checks.
type keyUse struct {
	value      string
	seq, index int32
	next       int32 // the index in uses of the key's next contribution, or noUse
	deleted    bool
}

// KeyBudget bounds the keys several PayloadKeys remember together: a mapper that maps many
// payloads at once (a hundred clients posting at the same time) would otherwise hold each
// one's keys at the same time: about 67 bytes a key reserved, as much again for each key's
// contribution past the first (BenchmarkPayloadKeys' B/key). A key the budget cannot take is
// not remembered, as past a PayloadKeys' own limit (the batch's warnings say so). It is safe
// for concurrent use.
type KeyBudget struct {
	used atomic.Int64
	max  int64
}

// NewKeyBudget returns a budget of at most max keys (at least one).
func NewKeyBudget(n int) *KeyBudget { return &KeyBudget{max: int64(max(1, n))} }

// Used is the number of keys taken from the budget: remembered, or reserved by a payload
// that expects them (NewPayloadKeysWithin).
func (b *KeyBudget) Used() int { return int(b.used.Load()) }

func (b *KeyBudget) take() bool {
	if b.used.Add(1) > b.max {
		b.used.Add(-1)
		return false
	}
	return true
}

// reserve takes up to n keys at once and returns how many it took.
func (b *KeyBudget) reserve(n int) int {
	for {
		used := b.used.Load()
		k := min(int64(n), b.max-used)
		if k <= 0 {
			return 0
		}
		if b.used.CompareAndSwap(used, used+k) {
			return int(k)
		}
	}
}

// NewPayloadKeysWithin returns an empty PayloadKeys that remembers at most limit keys, and
// no more than budget still has room for; Release gives its keys back. expect is how many
// keys the payload is expected to bring (its number of values): that many, up to limit,
// are taken from the budget at once, with room for them allocated up front. Growing the
// storage key by key (the map rehashed, the contributions copied) and taking the budget
// key by key (an atomic shared by every payload) cost a quarter of remembering a payload's
// keys (BenchmarkPayloadKeys). Past what it reserved, it takes one key at a time.
func NewPayloadKeysWithin(limit, expect int, budget *KeyBudget) *PayloadKeys {
	n := budget.reserve(min(max(expect, 0), max(1, limit)))
	pk := newPayloadKeys(limit, n)
	pk.budget, pk.held = budget, n
	return pk
}

// take makes room for one more key within the budget: from what pk holds, or one more.
func (pk *PayloadKeys) take() bool {
	if pk.budget == nil || len(pk.keys) < pk.held {
		return true
	}
	if !pk.budget.take() {
		return false
	}
	pk.held++
	return true
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
		pk.budget.used.Add(-int64(pk.held))
	}
	pk.keys, pk.uses, pk.earlier, pk.held = map[keyID]int32{}, nil, nil, 0
}

// NewPayloadKeys returns an empty PayloadKeys that remembers at most limit keys (at least
// one).
func NewPayloadKeys(limit int) *PayloadKeys { return newPayloadKeys(limit, 0) }

// newPayloadKeys returns an empty PayloadKeys with room for room keys.
func newPayloadKeys(limit, room int) *PayloadKeys {
	return &PayloadKeys{max: max(1, limit), keys: make(map[keyID]int32, room), uses: make([]keyUse, 0, room),
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

// Len returns the number of keys remembered.
func (pk *PayloadKeys) Len() int {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return len(pk.keys)
}

// idOf is k's id under seeds, written through buf (returned for reuse).
func idOf(seeds *[2]maphash.Seed, buf []byte, k transform.Key) (keyID, []byte) {
	b := buf[:0]
	for _, f := range [...]string{k.DataElement, k.Period, k.OrgUnit, k.CategoryOptionCombo, k.AttributeOptionCombo} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return keyID{maphash.Bytes(seeds[0], b), maphash.Bytes(seeds[1], b)}, b
}

// lookupLocked finds where the contributions to key id start: found is false for a key no
// batch has recorded. A value looks its key up once for both earlierLocked and
// recordLocked. The caller holds pk.mu.
func (pk *PayloadKeys) lookupLocked(id keyID) (head int32, found bool) {
	head, found = pk.keys[id]
	return head, found
}

// earlierLocked returns the contributions of the batches before seq to the key whose
// contributions start at head (lookupLocked), nil for none. The answer is pk's scratch
// space, good until the next call. The caller holds pk.mu: a batch takes it once for all
// its values (run.finish), not once per value, since the mapper's workers map a payload's
// batches side by side and a lock taken and released a thousand times per batch was
// contended enough to cost a tenth of Tally's CPU.
func (pk *PayloadKeys) earlierLocked(head int32, found bool, seq int) []keyUse {
	if !found {
		return nil
	}
	out := pk.earlier[:0]
	for i := head; i != noUse; i = pk.uses[i].next {
		if u := pk.uses[i]; int(u.seq) < seq {
			out = append(out, u)
		}
	}
	pk.earlier = out
	if len(out) == 0 {
		return nil
	}
	return out
}

// recordLocked keeps a batch's own contribution to key id, whose contributions start at
// head (lookupLocked, with nothing recorded since), replacing what the same batch recorded
// before. It reports false when the key is new and the set is full. The caller holds pk.mu.
func (pk *PayloadKeys) recordLocked(id keyID, head int32, found bool, u keyUse) bool {
	u.next = noUse
	if !found {
		if len(pk.keys) >= pk.max || !pk.take() {
			return false
		}
		pk.keys[id] = pk.add(u)
		return true
	}
	last := head
	for i := head; i != noUse; i = pk.uses[i].next {
		if pk.uses[i].seq == u.seq {
			u.next = pk.uses[i].next
			pk.uses[i] = u
			return true
		}
		last = i
	}
	pk.uses[last].next = pk.add(u)
	return true
}

// add appends u to uses and returns its index.
func (pk *PayloadKeys) add(u keyUse) int32 {
	pk.uses = append(pk.uses, u)
	return int32(len(pk.uses) - 1)
}
