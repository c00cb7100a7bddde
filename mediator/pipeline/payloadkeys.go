package pipeline

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/transform/mapping"
)

// A source's duplicates policy reaches across the batches of one payload (a payload of
// more than batch_size values is cut into several): the mapper keeps, per transaction and
// target, the target keys the earlier batches were mapped to (mapping.PayloadKeys), so
// that reject refuses a later value on a key an earlier batch delivered, last lets it
// overwrite, and sum adds it up.
//
// What this can and cannot see, honestly:
//   - The keys live in the memory of the replica that maps; a batch mapped on another
//     replica, or after a restart, sees only what this replica mapped before it.
//   - "Earlier" is by the batch's position in its payload. Batches arrive in order, but
//     two mapper workers can map neighbours at the same time; a batch therefore waits, a
//     bounded while (payloadOrderWait), for the lower-numbered batches of its payload
//     that this replica has fetched and not finished, so that on one replica the answer
//     is the same as in order. The mapper's consumer fetches with one goroutine and tells
//     track of each message in stream order (Consumer.Track), so an earlier batch this
//     replica holds is always known by then. A batch that still overtakes one (the wait
//     ran out) misses it.
//   - At most payloadKeysEntries payloads are remembered (the oldest forgotten first),
//     each up to payloadKeysLimit keys, and all of them together up to payloadKeysBudget
//     keys (about 70 bytes each, 110 with a second contribution: a hundred payloads of
//     100,000 values posted at once would otherwise hold 700 MB); past that, mapping says
//     so in the batch's warnings.
//   - Once every batch of a payload was mapped for a target, its keys there are forgotten:
//     the payload is through, and keeping 100,000 keys (about 7 MB) of each of the last
//     256 payloads grew the heap without bound in practice. A batch mapped again after that
//     (a retry after its publish failed, a redelivery) sees no earlier batch, as after a
//     restart.
// Duplicates inside one batch are always found. A payload of one batch (the ingest
// messages say how many batches it has) needs no memory at all.

const (
	payloadKeysEntries = 256
	payloadKeysLimit   = 100_000
	payloadKeysBudget  = 200_000
	payloadOrderWait   = 5 * time.Second
)

// payloadKeys remembers the keys of payloads being mapped on this replica.
type payloadKeys struct {
	mu      sync.Mutex
	entries map[string]*payloadEntry
	order   []string // oldest first, for eviction
	budget  *mapping.KeyBudget
	// held are the batches of multi-batch payloads this replica has fetched and not yet
	// finished, by transaction and batch, each with a channel closed when it is.
	held map[string]map[int]chan struct{}
}

type payloadEntry struct {
	keys *mapping.PayloadKeys
	// batches is the payload's number of batches (0: unknown), mapped those mapped so far.
	batches int
	mapped  map[int]struct{}
}

func newPayloadKeys() *payloadKeys {
	return &payloadKeys{entries: map[string]*payloadEntry{}, budget: mapping.NewKeyBudget(payloadKeysBudget),
		held: map[string]map[int]chan struct{}{}}
}

// track notes a fetched ingest message that is one of several batches of its payload, until
// the returned func says it was handled (Consumer.Track calls both).
func (p *payloadKeys) track(msg jetstream.Msg) func() {
	h := msg.Headers()
	if n, err := strconv.Atoi(h.Get(HeaderBatches)); err == nil && n <= 1 {
		return func() {}
	}
	txID := h.Get(HeaderTx)
	id := h.Get(jetstream.MsgIDHeader)
	i := strings.LastIndexByte(id, ':')
	seq, err := strconv.Atoi(id[i+1:])
	if txID == "" || i < 0 || err != nil {
		return func() {}
	}
	ch := make(chan struct{})
	p.mu.Lock()
	if p.held[txID] == nil {
		p.held[txID] = map[int]chan struct{}{}
	}
	p.held[txID][seq] = ch
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if p.held[txID][seq] == ch {
			delete(p.held[txID], seq)
			if len(p.held[txID]) == 0 {
				delete(p.held, txID)
			}
		}
		p.mu.Unlock()
		close(ch)
	}
}

// begin returns the keys of a payload at a target for batch seq, after waiting for the
// lower-numbered batches of the payload that this replica holds (track); done must
// be called when the work on the batch ends, saying whether it was mapped (and passed on).
// A payload of one batch gets nil keys. values is the number of values in batch seq, from
// which the payload's is estimated.
func (p *payloadKeys) begin(ctx context.Context, txID, target string, seq, values int, h nats.Header) (*mapping.PayloadKeys, func(mapped bool)) {
	n, err := strconv.Atoi(h.Get(HeaderBatches))
	if p == nil || err == nil && n <= 1 {
		return nil, func(bool) {}
	}
	id := payloadID(txID, target)
	p.mu.Lock()
	e := p.entries[id]
	if e == nil {
		e = &payloadEntry{keys: p.newKeys(n * values), batches: n, mapped: map[int]struct{}{}}
		p.addLocked(id, e)
	}
	// The earlier batches this replica holds (track), being mapped or about to be.
	var earlier []chan struct{}
	for s, ch := range p.held[txID] {
		if s < seq {
			earlier = append(earlier, ch)
		}
	}
	p.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, payloadOrderWait)
	defer cancel()
	for _, ch := range earlier {
		select {
		case <-ch:
		case <-wctx.Done():
		}
	}
	return e.keys, func(mapped bool) {
		p.mu.Lock()
		if mapped {
			e.mapped[seq] = struct{}{}
			if e.batches > 0 && len(e.mapped) >= e.batches {
				p.forgetLocked(id, e)
			}
		}
		p.mu.Unlock()
	}
}

func payloadID(txID, target string) string { return txID + "\x00" + target }

// newKeys are empty keys of a payload expected to bring about expect keys (its values),
// within the budget all payloads share.
func (p *payloadKeys) newKeys(expect int) *mapping.PayloadKeys {
	return mapping.NewPayloadKeysWithin(payloadKeysLimit, expect, p.budget)
}

// addLocked remembers a payload's entry, forgetting the oldest past payloadKeysEntries.
func (p *payloadKeys) addLocked(id string, e *payloadEntry) {
	p.entries[id] = e
	p.order = append(p.order, id)
	if len(p.order) > payloadKeysEntries {
		p.entries[p.order[0]].keys.Release()
		delete(p.entries, p.order[0])
		p.order = p.order[1:]
	}
}

// adopt takes over the keys of a payload of several batches mapped at ingest (Direct) up to
// a batch that ingest left to this stage: its remaining batches, mapped here, see what the
// first ones were mapped to. mapped are the batches ingest stored mapped.
func (p *payloadKeys) adopt(txID, target string, keys *mapping.PayloadKeys, batches int, mapped []int) {
	id := payloadID(txID, target)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries[id] != nil {
		keys.Release() // a replay got here first; its keys are as good
		return
	}
	e := &payloadEntry{keys: keys, batches: batches, mapped: make(map[int]struct{}, len(mapped))}
	for _, seq := range mapped {
		e.mapped[seq] = struct{}{}
	}
	p.addLocked(id, e)
}

// forgetLocked drops the keys of a payload whose every batch was mapped.
func (p *payloadKeys) forgetLocked(id string, e *payloadEntry) {
	if p.entries[id] != e {
		return // forgotten already, or evicted and begun again
	}
	e.keys.Release()
	delete(p.entries, id)
	if i := slices.Index(p.order, id); i >= 0 {
		p.order = slices.Delete(p.order, i, i+1)
	}
}
