package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
)

// Direct maps a payload's batches at ingest and stores them in TALLY_DELIVER, one message
// per target, instead of in TALLY_INGEST for the mapper stage to map. A batch then takes one
// stream hop instead of two: one store, one read and one acknowledgement (a removal from a
// work queue) fewer, and no second decode. The delivery messages are the very ones the
// mapper stage would publish (same ids, headers and values, the source values carried for a
// re-mapped replay), so a client that retries, or a batch mapped once here and once there,
// is stored once.
//
// Batches are mapped as the payload is read (Map, on the goroutine that spools them, beside
// the parser), not once it proved valid: mapping was a third of the time a large payload
// took to be answered, while one core read it and the other waited. Until the payload is
// read whole its transaction has no id (the id hashes the body), so a mapped batch is kept
// as the body of each delivery message, which names no transaction (the decoders take the
// transaction and message ids from the headers, as they do for an ingest message), and
// Add gives each its ids and headers when the payload is stored. Nothing is stored before
// that, and a payload that is refused, a dry run or a retry of a stored one only cost the
// mapping.
//
// Only the plain case is mapped here: every target's metadata in memory and fresh, and
// each target keeping at least one value with none refused. Anything else needs what only
// the mapper stage has (waiting for DHIS2, retries under the target's policy, dead letters
// with their bookkeeping), so the batch goes to TALLY_INGEST as before, and so do the rest
// of its payload's batches, with the keys the first ones were mapped to handed over
// (payloadKeys.adopt) for the duplicates policy. A source whose mapping set rolls periods
// up is never mapped here: a roll-up writes to tally_state, which must not happen for a
// payload that is then not stored.
//
// A Direct serves one payload: Map is called for its batches in order, then Add for each
// and Done once, from one goroutine at a time. A nil Direct maps nothing and stores every
// batch in TALLY_INGEST.
type Direct struct {
	s   *Mapper
	src *config.Source
	// engine is the mapping in force when the payload arrived, which maps all of it here:
	// a reload while it is read does not change its rules halfway, nor turn its set into
	// one that rolls up (and would write to tally_state before the payload is stored).
	engine  *mapping.Engine
	targets []*config.Target
	// keys are each target's payload keys, made when a second batch shows that the
	// payload has several; first is the first batch's encoding until then, so that its
	// keys can be added.
	keys  []*mapping.PayloadKeys
	first []byte
	// mapped are the batches mapped here; fellBack is set from the first batch left to the
	// mapper stage on, adopted once the keys went to it (fallBack).
	mapped   []int
	fellBack bool
	adopted  bool
	counts   []mappedCount
	// in and out are the arrays a batch is decoded into and mapped into: each batch is done
	// with before the next.
	in, out []transform.DataValue
	enc     transform.Encoder
}

// Premapped is a batch mapped at ingest for one target: the body of its delivery message
// (Data, which the caller may keep elsewhere until Add) and what its headers will say.
type Premapped struct {
	Data     []byte
	target   string
	sourceAt int // where the source values begin in Data; 0: not carried
	unmapped int
	values   int
	note     MappingNote
	after    []int
}

// Direct returns the Direct of a payload of the source src; nil when its batches must go to
// the mapper stage.
func (s *Mapper) Direct(src *config.Source) *Direct {
	if s == nil {
		return nil
	}
	engine := s.mapping.Engine()
	if src.Mapping != "" {
		set, ok := engine.Sets().Set(src.Mapping)
		if !ok || set.Rollup {
			return nil
		}
	}
	targets := s.cfg.TargetsOf(src)
	if len(targets) == 0 {
		return nil
	}
	return &Direct{s: s, src: src, engine: engine, targets: targets}
}

// Map maps batch b of the payload (data is its encoding, which Map does not keep) for
// every target, and returns its delivery messages; nil when this batch and the ones after
// it are left to the mapper stage.
func (d *Direct) Map(ctx context.Context, b *transform.Batch, data []byte) []Premapped {
	if d == nil || d.fellBack {
		return nil
	}
	if err := d.s.direct.acquire(ctx); err != nil {
		d.fellBack = true
		return nil
	}
	defer d.s.direct.release()
	ctx = withAtHandOnly(ctx)
	err := d.severalBatches(ctx, b.Seq)
	var out []Premapped
	if err == nil {
		out, err = d.mapBatch(ctx, b, data)
	}
	if err != nil {
		d.s.log.Debug("leaving a batch to the mapper stage", "source", d.src.Name, "seq", b.Seq, "why", err)
		d.fellBack = true
		return nil
	}
	if b.Seq == 0 {
		d.first = append(d.first[:0], data...)
	}
	d.mapped = append(d.mapped, b.Seq)
	return out
}

// severalBatches makes the payload keys when the second batch comes, and adds to them the
// keys of the first: until then the payload might have been one batch, which needs none.
func (d *Direct) severalBatches(ctx context.Context, seq int) error {
	if seq != 1 || d.keys != nil {
		return nil
	}
	first, err := transform.DecodeBatchInto(d.first, d.in)
	if err != nil {
		return fmt.Errorf("%w: %w", errUndecodable, err)
	}
	d.in = first.Values
	d.keys = make([]*mapping.PayloadKeys, len(d.targets))
	for i, t := range d.targets {
		d.keys[i] = d.s.payloads.newKeys(0)
		m, err := d.engine.MapWith(ctx, first, MappingSource(d.src), MappingTarget(t),
			mapping.Options{Rollup: d.s.mapping.rollupStore(), Payload: d.keys[i], Values: d.out})
		if err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		d.keepOut(m, first)
	}
	d.first = nil
	return nil
}

// keepOut keeps the array mapping wrote into for the next batch, never the input's.
func (d *Direct) keepOut(m *transform.Mapped, in *transform.Batch) {
	if vs := m.Batch.Values; cap(vs) > 0 && (cap(in.Values) == 0 || &vs[:1][0] != &in.Values[:1][0]) {
		d.out = vs
	}
}

// Add adds to pb what the TALLY_INGEST message in (one batch of the payload, in order,
// with its transaction's headers) becomes: its delivery messages mapped at ingest (pre,
// each with its Data), or in itself when pre is nil. A target where the batch is settled
// already (a retried request, HeaderSettled) is left out.
func (d *Direct) Add(ctx context.Context, pb *stream.Batch, in stream.Msg, pre []Premapped) error {
	if pre == nil {
		if d != nil && d.fellBack && !d.adopted {
			batches, _ := strconv.Atoi(in.Header.Get(HeaderBatches))
			d.fallBack(in.Header.Get(HeaderTx), batches)
		}
		return pb.Add(in)
	}
	kept, tx := CarriedBy(in.Header), in.Header.Get(HeaderTx)
	for _, p := range pre {
		if settledAt(in.Header, p.target) {
			continue // mapped only for the payload's duplicates policy: see HeaderSettled
		}
		m := deliverMessage(p.target, in.ID+":"+p.target, tx, p.Data, p.sourceAt, p.unmapped, p.values,
			mappedHeader(kept, p.note, p.after))
		if err := pb.Add(m); err != nil {
			return err
		}
		d.counts = append(d.counts, mappedCount{target: p.target, mapped: p.values, unmapped: p.unmapped, note: p.note})
	}
	return nil
}

// slots bound how many batches are mapped at ingest at once, across all payloads: a
// hundred clients posting at once would otherwise each hold a decoded and a mapped batch,
// and mapping is work for the CPU, which has no more cores for it than it has.
type slots chan struct{}

func newSlots(n int) slots { return make(slots, max(n, 1)) }

func (s slots) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s slots) release() { <-s }

// errNotPlain is a batch that mapping did not simply map for a target.
var errNotPlain = errors.New("not a plain mapping")

// errUndecodable is a spooled batch that cannot be read back: not the payload's fault.
var errUndecodable = errors.New("spooled batch unreadable")

// mapBatch maps b for every target, as the mapper stage does, or says why it is not plain.
func (d *Direct) mapBatch(ctx context.Context, b *transform.Batch, data []byte) ([]Premapped, error) {
	out := make([]Premapped, 0, len(d.targets))
	for i, t := range d.targets {
		rel, ok := d.s.mapping.metadata.releaseAtHand(t.Name)
		if !ok && d.src.Mapping == "" {
			return nil, fmt.Errorf("target %s: its DHIS2 release is not known yet: %w", t.Name, errNotPlain)
		}
		var keys *mapping.PayloadKeys
		if d.keys != nil {
			keys = d.keys[i]
		}
		m, err := d.engine.MapWith(ctx, b, MappingSource(d.src), MappingTarget(t),
			mapping.Options{Rollup: d.s.mapping.rollupStore(), Payload: keys, Values: d.out})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		d.keepOut(m, b)
		if d.src.Mapping == "" {
			refuseNewerPeriods(t, rel, m)
		}
		if len(m.Refused) > 0 || len(m.Batch.Values) == 0 {
			return nil, fmt.Errorf("target %s: %d values refused, %d left: %w", t.Name, len(m.Refused), len(m.Batch.Values), errNotPlain)
		}
		m.Batch.Target = t.Name
		body, sourceAt := deliverBody(&d.enc, b, data, m.Batch)
		out = append(out, Premapped{Data: body, target: t.Name, sourceAt: sourceAt, unmapped: len(m.Unmapped),
			values: len(m.Batch.Values), note: NoteOf(m), after: slices.Clone(m.After)})
	}
	return out, nil
}

// fallBack leaves this batch and the rest of the payload to the mapper stage, handing it the
// keys the batches stored so far were mapped to.
func (d *Direct) fallBack(txID string, batches int) {
	d.adopted = true
	for i, keys := range d.keys {
		d.s.payloads.adopt(txID, d.targets[i].Name, keys, batches, d.mapped)
	}
	d.keys = nil
}

// Done ends the payload: stored says whether every message added was stored. The mapping
// metrics count only what was stored, as the mapper stage counts.
func (d *Direct) Done(stored bool) {
	if d == nil {
		return
	}
	for _, keys := range d.keys {
		keys.Release()
	}
	d.keys = nil
	if stored {
		d.s.count(d.src, StageIngest, len(d.mapped), d.counts)
	}
}
