package mapping

import (
	"context"
	"slices"
	"strings"

	"github.com/tally-hmis/tally/transform"
)

// rollUIDs are a rolled-up value's objects by uid: the roll-up store keys by them, so that
// a change of the target's id schemes keeps what was received.
type rollUIDs struct{ de, ou, coc, aoc string }

// slotOf is what put is told of a value beyond its fields.
type slotOf struct {
	from  string // the source period, when the value was rolled up into a longer one
	dsOut string // the data set the value belongs to in the target, "" when unknown
	uids  rollUIDs
}

// slot is what the engine knows of an output value beyond its fields. It is kept small:
// a batch has one per value, and most values meet no other.
type slot struct {
	from, dsOut string // as in slotOf
	pos         int32  // the batch position of the value that opened the slot
	id          keyID  // the key's id (run.keyID)
	dup         int32  // 1 + the index of the key's report in run.dups; 0 for none
	dropped     bool
	x           *slotExtra // a rolled value's uids, and what collided on the key
}

type slotExtra struct {
	uids rollUIDs
	// parts are, once a second value lands on the key, every contribution.
	parts []part
	// refusedFrom are the source periods whose values were refused as duplicates: a
	// third value of such a period is refused too.
	refusedFrom []string
}

func (s *slot) extra() *slotExtra {
	if s.x == nil {
		s.x = &slotExtra{}
	}
	return s.x
}

// parts returns the slot's parts, nil while one value holds the key.
func (s *slot) parts() []part {
	if s.x == nil {
		return nil
	}
	return s.x.parts
}

type part struct {
	period string // the source period of a rolled-up value, "" for one of the key's own period
	pos    int32
	v      transform.DataValue // as mapped
}

// collides reports whether values of source periods a and b are duplicates rather than
// parts of one sum: the same period, or one of them already of the target's period.
func collides(a, b string) bool { return a == b || a == "" || b == "" }

// put adds a mapped value under its target key k, applying the duplicates policy when
// another value already maps there. Values rolled up from different source periods are
// parts of one sum, not duplicates.
func (r *run) put(v transform.DataValue, pos int, k transform.Key, so slotOf) {
	id := r.keyID(k)
	j, added := r.byKey.find(id, int32(len(r.slots)))
	if added {
		r.vals = append(r.vals, v)
		ns := slot{from: so.from, dsOut: so.dsOut, pos: int32(pos), id: id}
		if so.from != "" {
			ns.extra().uids = so.uids
		}
		r.slots = append(r.slots, ns)
		return
	}
	s, x := &r.slots[j], r.slots[j].extra()
	if x.parts == nil {
		x.parts = []part{{period: s.from, pos: s.pos, v: r.vals[j]}}
	}
	if so.from != "" {
		x.uids = so.uids // the key's objects; the slot may have been opened by a direct value
	}
	if s.dsOut != so.dsOut {
		s.dsOut = ""
	}
	np := part{period: so.from, pos: int32(pos), v: v}
	if slices.ContainsFunc(x.refusedFrom, func(p string) bool { return collides(p, so.from) }) {
		d := r.dupReport(j, k, -1)
		d.Indexes = append(d.Indexes, v.Index)
		r.refuseDup(np, k, d.Indexes[0])
		return
	}
	hit := slices.IndexFunc(x.parts, func(pt part) bool { return collides(pt.period, so.from) })
	if hit < 0 {
		x.parts = append(x.parts, np) // another period of the same roll-up
		return
	}
	d := r.dupReport(j, k, x.parts[hit].v.Index)
	d.Indexes = append(d.Indexes, v.Index)
	switch r.pol.dups {
	case dupSum:
		x.parts = append(x.parts, np)
		d.Action = transform.DuplicateSum
	case dupLast:
		x.parts = slices.DeleteFunc(x.parts, func(pt part) bool { return collides(pt.period, so.from) })
		x.parts = append(x.parts, np)
		d.Action = transform.DuplicateLast
	default:
		old := x.parts[hit]
		if d.Action != transform.DuplicateRefused && sameValue(old.v, v) &&
			!slices.ContainsFunc(x.parts[hit+1:], func(pt part) bool { return collides(pt.period, so.from) }) {
			d.Action = transform.DuplicateIdentical // DHIS2 stores the same either way: keep one
			return
		}
		d.Action = transform.DuplicateRefused
		x.refusedFrom = append(x.refusedFrom, so.from)
		kept := x.parts[:0]
		for _, pt := range x.parts {
			if !collides(pt.period, so.from) {
				kept = append(kept, pt)
				continue
			}
			r.refuseDup(pt, k, v.Index)
			if pt.period != so.from {
				x.refusedFrom = append(x.refusedFrom, pt.period)
			}
		}
		x.parts = kept
		r.refuseDup(np, k, old.v.Index)
	}
}

func sameValue(a, b transform.DataValue) bool {
	return a.Value == b.Value && a.Deleted == b.Deleted && a.Comment == b.Comment && a.FollowUp == b.FollowUp
}

// dupReport returns the duplicates report of slot j, opening it with the index first
// (none when first < 0).
func (r *run) dupReport(j int32, k transform.Key, first int) *transform.Duplicate {
	s := &r.slots[j]
	if s.dup == 0 {
		d := transform.Duplicate{Key: k}
		if first >= 0 {
			d.Indexes = []int{first}
		}
		r.dups = append(r.dups, d)
		s.dup = int32(len(r.dups))
	}
	return &r.dups[s.dup-1]
}

func (r *run) refuseDup(pt part, k transform.Key, other int) {
	r.refuse(&r.in.Values[pt.pos], "key", codeSameKey,
		"it and value %d map to the same data element, period, org unit and option combos (%s); duplicates: reject on source %q refuses both (choose sum or last to allow)",
		other, keyText(k), r.pol.source)
}

func keyText(k transform.Key) string {
	return strings.Join([]string{k.DataElement, k.Period, k.OrgUnit, k.CategoryOptionCombo, k.AttributeOptionCombo}, " ")
}

// rolled reports whether the slot's value is a sum of shorter periods.
func (s *slot) rolled() bool {
	parts := s.parts()
	if parts == nil {
		return s.from != ""
	}
	return len(parts) > 0 && !slices.ContainsFunc(parts, func(pt part) bool { return pt.period == "" })
}

// finish settles every output value: sums of several parts, the roll-up store's earlier
// parts, duplicates across the payload's batches; then it leaves out what was refused.
func (r *run) finish(ctx context.Context) error {
	// The payload's keys are locked once for a run of values, and let go before the
	// roll-up store's I/O.
	pk, locked := r.opts.Payload, false
	unlock := func() {
		if locked {
			pk.mu.Unlock()
			locked = false
		}
	}
	defer unlock()
	for i := range r.slots {
		s := &r.slots[i]
		store := s.rolled() && r.opts.Rollup != nil
		r.settle(i, store)
		switch {
		case s.dropped:
			continue
		case store:
			unlock()
			if err := r.rollAcross(ctx, i); err != nil {
				return err
			}
		case !s.rolled() && pk != nil:
			if !locked {
				pk.mu.Lock()
				locked = true
			}
			r.acrossBatches(i)
		}
		if s.dup > 0 && !s.dropped {
			if d := &r.dups[s.dup-1]; d.Action != transform.DuplicateRefused {
				d.Value = r.vals[i].Value
			}
		}
	}
	r.compact()
	return nil
}

// settle turns a slot's parts into its output value: a value that must be added up and is
// not a number is refused, the rest summed. With checkAll (the roll-up store keeps the
// parts) even a lone part must be a number.
func (r *run) settle(i int, checkAll bool) {
	s := &r.slots[i]
	if s.parts() == nil {
		if !checkAll {
			return
		}
		s.extra().parts = []part{{period: s.from, pos: s.pos, v: r.vals[i]}}
	}
	x := s.x
	if len(x.parts) > 1 || checkAll {
		why := "duplicates: sum"
		if s.rolled() {
			why = "periods: rollup"
		}
		x.parts = slices.DeleteFunc(x.parts, func(pt part) bool {
			if live(pt.v) && !isDecimal(strings.TrimSpace(pt.v.Value)) {
				r.refuse(&r.in.Values[pt.pos], "value", codeValueType, "not a number, but the values of %s are added up (%s)", keyText(r.vals[i].Key()), why)
				return true
			}
			return false
		})
	}
	switch len(x.parts) {
	case 0:
		s.dropped = true
	case 1:
		r.vals[i] = x.parts[0].v
	default:
		first := slices.MinFunc(x.parts, func(a, b part) int { return a.v.Index - b.v.Index })
		var sum accum
		n := 0
		for _, pt := range x.parts {
			if live(pt.v) {
				sum.add(pt.v.Value)
				n++
			}
		}
		r.vals[i] = first.v
		r.vals[i].Value, r.vals[i].Deleted = sumText(&sum, n)
	}
}

// live reports whether a value contributes to a sum: not deleted and not empty.
func live(v transform.DataValue) bool { return !v.Deleted && v.Value != "" }

// sumText is the value of a sum of n live values: deleted when there are none.
func sumText(a *accum, n int) (string, bool) {
	if n == 0 {
		return "", true
	}
	return a.String(), false
}

// acrossBatches applies the duplicates policy to a value whose key an earlier batch of the
// same payload delivered (Options.Payload), then records the value's own contribution. The
// caller holds the payload keys' lock.
func (r *run) acrossBatches(i int) {
	pk, s, v := r.opts.Payload, &r.slots[i], &r.vals[i]
	if int(int32(r.in.Seq)) != r.in.Seq || int(int32(v.Index)) != v.Index {
		r.warnBatch("payload-keys-int32", "batch %d, value %d: past the 2^31 batches or values a payload's keys can tell apart; duplicates past them are found within a batch only", r.in.Seq, v.Index)
		return
	}
	id := s.id // under the payload's seeds (newRun)
	own := keyUse{seq: int32(r.in.Seq), index: int32(v.Index), value: v.Value, deleted: v.Deleted}
	head, found := pk.lookupLocked(id)
	earlier := pk.earlierLocked(head, found, r.in.Seq)
	if len(earlier) > 0 {
		k := v.Key()
		d := r.dupReport(int32(i), k, -1)
		before := make([]int, len(earlier))
		for j, u := range earlier {
			before[j] = int(u.index)
		}
		d.Indexes = slices.Insert(d.Indexes, 0, before...)
		if !slices.Contains(d.Indexes, v.Index) {
			d.Indexes = append(d.Indexes, v.Index)
		}
		if r.pol.dups == dupLast || r.pol.dups == dupSum {
			for _, u := range earlier {
				r.after = append(r.after, int(u.seq)) // earlier: a lower seq than the batch's own
			}
		}
		switch r.pol.dups {
		case dupLast:
			d.Action = transform.DuplicateLast
		case dupSum:
			var sum accum
			n := 0
			for _, u := range append(earlier, own) {
				if !u.deleted && u.value != "" {
					if !sum.add(u.value) {
						r.refuseParts(s, "value", codeValueType, "not a number, but the values of %s across the payload's batches are added up (duplicates: sum)", keyText(k))
						return
					}
					n++
				}
			}
			v.Value, v.Deleted = sumText(&sum, n)
			d.Action = transform.DuplicateSum
		default:
			if !slices.ContainsFunc(earlier, func(u keyUse) bool { return u.value != own.value || u.deleted != own.deleted }) {
				d.Action = transform.DuplicateIdentical
				break
			}
			d.Action = transform.DuplicateRefused
			r.refuseParts(s, "key", codeSameKey,
				"value %d, in an earlier batch of the payload, maps to the same data element, period, org unit and option combos (%s); duplicates: reject on source %q refuses the later one",
				int(earlier[0].index), keyText(k), r.pol.source)
			return
		}
	}
	if !pk.recordLocked(id, head, found, own) && !r.warned["payload-keys"] {
		r.warnBatch("payload-keys", "%s: duplicates past them are found within a batch only", pk.full())
	}
}

// refuseParts refuses every source value of slot s and drops it.
func (r *run) refuseParts(s *slot, field, code, format string, args ...any) {
	if s.parts() == nil {
		r.refuse(&r.in.Values[s.pos], field, code, format, args...)
	}
	for _, pt := range s.parts() {
		r.refuse(&r.in.Values[pt.pos], field, code, format, args...)
	}
	s.dropped = true
}

// compact leaves out the output values that were dropped.
func (r *run) compact() {
	if !slices.ContainsFunc(r.slots, func(s slot) bool { return s.dropped }) {
		return
	}
	n := 0
	for i := range r.slots {
		if r.slots[i].dropped {
			continue
		}
		r.slots[n], r.vals[n] = r.slots[i], r.vals[i]
		n++
	}
	r.slots, r.vals = r.slots[:n], r.vals[:n]
}

// dataSet is the output batch's data set: the one every value belongs to, or "".
func (r *run) dataSet() string {
	ds := ""
	for i := range r.slots {
		s := &r.slots[i]
		if s.dsOut == "" || (ds != "" && s.dsOut != ds) {
			return ""
		}
		ds = s.dsOut
	}
	return ds
}

// allDeleted reports whether every output value is a deletion (and there is one).
func (r *run) allDeleted() bool {
	return len(r.vals) > 0 && !slices.ContainsFunc(r.vals, func(v transform.DataValue) bool { return !v.Deleted })
}
