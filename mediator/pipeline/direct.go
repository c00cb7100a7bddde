package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
)

// Direct maps a payload's batches where they are stored, at ingest, and stores them in
// TALLY_DELIVER, one message per target, instead of in TALLY_INGEST for the mapper stage to
// map. A batch then takes one stream hop instead of two: one store, one read and one
// acknowledgement (a removal from a work queue) fewer, and no second decode. The delivery
// messages are the very ones the mapper stage would publish (same ids, headers and body,
// the source values carried for a re-mapped replay), so a client that retries, or a batch
// mapped once here and once there, is stored once.
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
// A Direct serves one payload and is not safe for concurrent use; a nil Direct stores
// every batch in TALLY_INGEST.
type Direct struct {
	s       *Mapper
	src     *config.Source
	targets []*config.Target
	txID    string
	batches int
	// keys are each target's payload keys (nil for a payload of one batch).
	keys     []*mapping.PayloadKeys
	mapped   []int // the batches stored mapped
	counts   []mappedCount
	fellBack bool
	// in and out are the arrays each batch's values are decoded into and mapped into: each
	// batch is done with, its delivery messages encoded, before the next is decoded.
	in, out []transform.DataValue
	enc     transform.Encoder
}

// Direct returns the Direct of a payload of the source src, stored as transaction txID
// in the given number of batches holding values values; nil when its batches must go to
// the mapper stage.
func (s *Mapper) Direct(src *config.Source, txID string, batches, values int) *Direct {
	if s == nil {
		return nil
	}
	if src.Mapping != "" {
		set, ok := s.mapping.Engine().Sets().Set(src.Mapping)
		if !ok || set.Rollup {
			return nil
		}
	}
	targets := s.cfg.TargetsOf(src)
	if len(targets) == 0 {
		return nil
	}
	d := &Direct{s: s, src: src, targets: targets, txID: txID, batches: batches}
	if batches > 1 {
		d.keys = make([]*mapping.PayloadKeys, len(targets))
		for i := range d.keys {
			d.keys[i] = s.payloads.newKeys(values)
		}
	}
	return d
}

// Add adds to pb what the TALLY_INGEST message in (one batch of the payload, in order)
// becomes: a TALLY_DELIVER message per target, or in itself.
func (d *Direct) Add(ctx context.Context, pb *stream.Batch, in stream.Msg) error {
	if d == nil || d.fellBack {
		return pb.Add(in)
	}
	if err := d.s.direct.acquire(ctx); err != nil {
		return err
	}
	seq, outs, counts, err := d.mapIn(ctx, in)
	d.s.direct.release()
	if errors.Is(err, errUndecodable) {
		return err
	}
	if err != nil {
		d.s.log.Debug("leaving a batch to the mapper stage", "tx", d.txID, "seq", seq, "why", err)
		d.fallBack()
		return pb.Add(in)
	}
	for _, m := range outs {
		if err := pb.Add(m); err != nil {
			return err
		}
	}
	d.mapped = append(d.mapped, seq)
	d.counts = append(d.counts, counts...)
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

// mapIn decodes the batch of in and maps it (mapBatch).
func (d *Direct) mapIn(ctx context.Context, in stream.Msg) (seq int, _ []stream.Msg, _ []mappedCount, _ error) {
	b, err := transform.DecodeBatchInto(in.Data, d.in)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %s: %w", errUndecodable, in.ID, err)
	}
	withIdentity(b, in.Header)
	if b.ID == "" {
		b.ID = in.ID // the stream takes it from Msg.ID; the mapper stage reads it from Nats-Msg-Id
	}
	d.in = b.Values
	outs, counts, err := d.mapBatch(withAtHandOnly(ctx), b, in)
	return b.Seq, outs, counts, err
}

// mapBatch maps b for every target, as the mapper stage does, or says why it is not plain.
func (d *Direct) mapBatch(ctx context.Context, b *transform.Batch, in stream.Msg) ([]stream.Msg, []mappedCount, error) {
	kept := CarriedBy(in.Header)
	outs := make([]stream.Msg, 0, len(d.targets))
	counts := make([]mappedCount, 0, len(d.targets))
	for i, t := range d.targets {
		rel, ok := d.s.mapping.metadata.releaseAtHand(t.Name)
		if !ok && d.src.Mapping == "" {
			return nil, nil, fmt.Errorf("target %s: its DHIS2 release is not known yet: %w", t.Name, errNotPlain)
		}
		var keys *mapping.PayloadKeys
		if d.keys != nil {
			keys = d.keys[i]
		}
		m, err := d.s.mapping.Engine().MapWith(ctx, b, MappingSource(d.src), MappingTarget(t),
			mapping.Options{Rollup: d.s.mapping.rollupStore(), Payload: keys, Values: d.out})
		if err != nil {
			return nil, nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		if vs := m.Batch.Values; cap(vs) > 0 && (cap(b.Values) == 0 || &vs[:1][0] != &b.Values[:1][0]) {
			d.out = vs // free again once the message below is encoded; never the input's array
		}
		if settledAt(in.Header, t.Name) {
			continue // mapped only for the payload's duplicates policy: see HeaderSettled
		}
		if d.src.Mapping == "" {
			refuseNewerPeriods(t, rel, m)
		}
		if len(m.Refused) > 0 || len(m.Batch.Values) == 0 {
			return nil, nil, fmt.Errorf("target %s: %d values refused, %d left: %w", t.Name, len(m.Refused), len(m.Batch.Values), errNotPlain)
		}
		note := NoteOf(m)
		outs = append(outs, mappedMessage(&d.enc, b, in.Data, m, t, kept, note))
		counts = append(counts, mappedCount{target: t.Name, mapped: len(m.Batch.Values), unmapped: len(m.Unmapped), note: note})
	}
	return outs, counts, nil
}

// fallBack leaves this batch and the rest of the payload to the mapper stage, handing it the
// keys the batches stored so far were mapped to.
func (d *Direct) fallBack() {
	d.fellBack = true
	for i, keys := range d.keys {
		d.s.payloads.adopt(d.txID, d.targets[i].Name, keys, d.batches, d.mapped)
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
