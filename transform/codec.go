package transform

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// Batches travel on the stream in a compact binary form: a two-byte header (magic 'T' and a
// version), a table of the distinct strings of the batch, then the fields as varints that
// index into the table. Values of one batch repeat their periods, org units, data elements
// and combos, so the table makes a batch several times smaller than its JSON and decoding
// allocates each distinct string once.
//
// The version byte lets a newer replica read what an older one wrote during a rolling
// upgrade: a decoder keeps reading every version it has ever written.
//
//	version 1: the fields above.
//	version 2: adds a varint of batch flags after the received time (batchDeletion).
//	version 3: adds the import strategy after the batch flags, and a value flag
//	           (flagDataSet) followed by the value's own data set (an ADX group's).
const (
	codecMagic   = 'T'
	codecVersion = 3
)

// Batch flags (version 2 on).
const (
	batchDeletion = 1 << iota
)

// Value flags.
const (
	flagFollowUp = 1 << iota
	flagDeleted
	flagCategories
	flagAttributes
	flagDataSet
)

// ErrCodec reports bytes that are not an encoded batch of a known version.
var ErrCodec = errors.New("not an encoded batch")

// ErrCodecVersion reports a batch written by a newer build, in a version this build does not
// read. It wraps ErrCodec. A consumer that meets it should leave the message for a replica
// that reads it (a rolling upgrade) rather than treat the bytes as corrupt.
var ErrCodecVersion = fmt.Errorf("%w: written by a newer version", ErrCodec)

// CodecVersion is the version this build writes.
const CodecVersion = codecVersion

type encoder struct {
	words wordIndex
	strs  map[string]uint64 // the strings wordIndex turned away
	table []string
	body  []byte
}

// wordIndex finds the table's strings without hashing them through a map: a string's
// first and last four bytes, read in two loads, make a word, and a probe of this
// open-addressed table costs a multiply and a compare of words, then of the strings when
// the words match (strings whose first and last bytes agree can share a word; the table's
// string tells them apart). It was a map[string]uint64, and its lookups a fifth of the
// encoder's time. A probe run longer than wordProbes (a batch of more distinct strings than
// the table was sized for, or input crafted to collide) goes to the map instead, so no
// input makes a lookup cost more than a few compares and a map lookup. A string the map
// holds is not looked for here, nor one held here in the map; the table may then hold a
// string twice, which the format allows (a reader only follows indexes).
type wordIndex struct {
	word []uint64
	at   []uint32 // the string's 1-based index in the table; 0: an empty slot
	bits int      // len(at) is 1<<bits
}

const wordProbes = 8

// reset empties the index and sizes it for a batch of n values: most strings of a batch
// are its values', and its other fields repeat. It holds at most 1<<16 slots (768 KiB);
// a larger batch's other strings go to the map.
func (x *wordIndex) reset(n int) {
	x.bits = min(16, max(6, bits.Len(uint(n+n/2+32))))
	size := 1 << x.bits
	if cap(x.at) < size {
		x.word, x.at = make([]uint64, size), make([]uint32, size)
		return
	}
	x.word, x.at = x.word[:size], x.at[:size]
	clear(x.at)
}

// find returns s's index, or adds s as index next when it is not there and there is
// room. It returns 0 when s is neither there nor added.
func (x *wordIndex) find(s string, table []string, next uint32) uint32 {
	w, h := pack(s)
	mask := len(x.at) - 1
	for p := range wordProbes {
		j := (int(h>>(64-x.bits)) + p) & mask
		at := x.at[j]
		if at == 0 {
			x.word[j], x.at[j] = w, next
			return next
		}
		if x.word[j] == w && table[at-1] == s {
			return at
		}
	}
	return 0
}

// pack is s's word and hash: its first and last four bytes (overlapping below eight), or
// for a shorter string its first, middle and last byte.
func pack(s string) (w, h uint64) {
	switch n := len(s); {
	case n >= 4:
		t := s[n-4:]
		w = uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(t[0])<<32 | uint64(t[1])<<40 | uint64(t[2])<<48 | uint64(t[3])<<56
	case n > 0:
		w = uint64(s[0]) | uint64(s[n/2])<<8 | uint64(s[n-1])<<16
	}
	return w, (w ^ uint64(len(s))*0xBF58476D1CE4E5B9) * 0x9E3779B97F4A7C15 // Fibonacci hashing
}

func (e *encoder) ref(s string) {
	if s == "" {
		e.body = binary.AppendUvarint(e.body, 0)
		return
	}
	e.body = binary.AppendUvarint(e.body, e.index(s))
}

// index is s's 1-based place in the string table, adding it when new.
func (e *encoder) index(s string) uint64 {
	next := uint32(len(e.table) + 1)
	if at := e.words.find(s, e.table, next); at != 0 {
		if at == next {
			e.table = append(e.table, s)
		}
		return uint64(at)
	}
	i, ok := e.strs[s]
	if !ok {
		if e.strs == nil {
			e.strs = map[string]uint64{}
		}
		e.table = append(e.table, s)
		i = uint64(len(e.table))
		e.strs[s] = i
	}
	return i
}

// field is the string of one value field most recently written, with its index: values of
// a batch mostly repeat their neighbour's data element, period, org unit and combos, and a
// comparison with it costs less than a map lookup.
type field struct {
	s string
	i uint64
}

// refField writes s through the field's cache.
func (e *encoder) refField(f *field, s string) {
	if s == "" {
		e.body = binary.AppendUvarint(e.body, 0)
		return
	}
	if s != f.s || f.i == 0 {
		f.s, f.i = s, e.index(s)
	}
	e.body = binary.AppendUvarint(e.body, f.i)
}

func (e *encoder) uint(n uint64) { e.body = binary.AppendUvarint(e.body, n) }
func (e *encoder) int(n int64)   { e.body = binary.AppendVarint(e.body, n) }

func (e *encoder) pairs(ps []CategoryOption) {
	e.uint(uint64(len(ps)))
	for _, p := range ps {
		e.ref(p.Category)
		e.ref(p.Option)
	}
}

// AppendBatch appends the encoding of b to dst and returns the extended slice.
func AppendBatch(dst []byte, b *Batch) []byte {
	var x Encoder
	x.Encode(b)
	return x.AppendTo(dst)
}

// Encoder encodes batches, keeping its working memory (the string table and its index)
// from one batch to the next: a stage that encodes batch after batch allocates only the
// messages. It is not safe for concurrent use; the zero Encoder is ready.
type Encoder struct {
	e encoder
}

// Encode prepares the encoding of b and returns its size in bytes; AppendTo writes it. The
// Encoder keeps b's strings until the next Encode.
func (x *Encoder) Encode(b *Batch) int {
	e := &x.e
	e.words.reset(len(b.Values))
	clear(e.strs)
	clear(e.table)
	e.table, e.body = slices.Grow(e.table[:0], 32+len(b.Values)), slices.Grow(e.body[:0], 64+len(b.Values)*12)
	e.ref(b.ID)
	e.ref(b.TxID)
	e.ref(b.Source)
	e.ref(b.Target)
	e.ref(b.DataSet)
	e.ref(b.CompleteDate)
	s := b.Schemes
	for _, sc := range [...]IDScheme{s.IDScheme, s.DataElement, s.OrgUnit, s.CategoryOptionCombo,
		s.AttributeOptionCombo, s.DataSet, s.Category, s.CategoryOption} {
		e.ref(string(sc))
	}
	e.int(int64(b.Seq))
	e.int(int64(b.Part))
	e.int(int64(b.Replays))
	e.int(b.Received.UnixNano())
	var bflags uint64
	if b.Deletion {
		bflags |= batchDeletion
	}
	e.uint(bflags)
	e.ref(b.ImportStrategy)
	e.uint(uint64(len(b.Values)))
	prevIndex := -1
	var de, pe, ou, coc, aoc, comment, storedBy field
	for i := range b.Values {
		v := &b.Values[i]
		var flags uint64
		if v.FollowUp {
			flags |= flagFollowUp
		}
		if v.Deleted {
			flags |= flagDeleted
		}
		if len(v.Categories) > 0 {
			flags |= flagCategories
		}
		if len(v.Attributes) > 0 {
			flags |= flagAttributes
		}
		if v.DataSet != "" {
			flags |= flagDataSet
		}
		e.uint(flags)
		e.refField(&de, v.DataElement)
		e.refField(&pe, v.Period)
		e.refField(&ou, v.OrgUnit)
		e.refField(&coc, v.CategoryOptionCombo)
		e.refField(&aoc, v.AttributeOptionCombo)
		e.ref(v.Value)
		e.refField(&comment, v.Comment)
		e.refField(&storedBy, v.StoredBy)
		// Indexes mostly count up by one: a delta keeps them to one byte.
		e.int(int64(v.Index - prevIndex))
		prevIndex = v.Index
		if len(v.Categories) > 0 {
			e.pairs(v.Categories)
		}
		if len(v.Attributes) > 0 {
			e.pairs(v.Attributes)
		}
		if v.DataSet != "" {
			e.ref(v.DataSet)
		}
	}
	return e.size()
}

// AppendTo appends the encoding Encode prepared to dst, growing it at most once.
func (x *Encoder) AppendTo(dst []byte) []byte {
	e := &x.e
	dst = slices.Grow(dst, e.size()) // one allocation for the whole message
	dst = append(dst, codecMagic, codecVersion)
	dst = binary.AppendUvarint(dst, uint64(len(e.table)))
	for _, s := range e.table {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, e.body...)
}

// size is the length of the encoding prepared.
func (e *encoder) size() int {
	n := 2 + uvarintLen(uint64(len(e.table))) + len(e.body)
	for _, s := range e.table {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	return n
}

// uvarintLen is the length of n as a uvarint.
func uvarintLen(n uint64) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// EncodeBatch returns the encoding of b.
func EncodeBatch(b *Batch) []byte { return AppendBatch(nil, b) }

type decoder struct {
	buf   []byte
	table []string
	err   error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or corrupt %s", ErrCodec, what)
	}
}

func (d *decoder) uint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.buf)
	if k <= 0 {
		d.fail(what)
		return 0
	}
	d.buf = d.buf[k:]
	return n
}

func (d *decoder) int(what string) int64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Varint(d.buf)
	if k <= 0 {
		d.fail(what)
		return 0
	}
	d.buf = d.buf[k:]
	return n
}

func (d *decoder) str(what string) string {
	i := d.uint(what)
	if i == 0 {
		return ""
	}
	if i > uint64(len(d.table)) {
		d.fail(what)
		return ""
	}
	return d.table[i-1]
}

// count reads a length and refuses one that the remaining bytes cannot hold, so a corrupt
// message cannot make the decoder allocate without bound.
func (d *decoder) count(what string, minBytesEach int) int {
	n := d.uint(what)
	if n > uint64(len(d.buf)/minBytesEach) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) pairs(what string) []CategoryOption {
	n := d.count(what, 2)
	if n == 0 {
		return nil
	}
	ps := make([]CategoryOption, n)
	for i := range ps {
		ps[i] = CategoryOption{Category: d.str(what), Option: d.str(what)}
	}
	return ps
}

// DecodeBatch decodes what AppendBatch wrote, in any version this build knows.
func DecodeBatch(data []byte) (*Batch, error) { return DecodeBatchInto(data, nil) }

// DecodeBatchInto is DecodeBatch decoding the values into room's array when it has the
// capacity (its length is ignored): a caller that decodes batch after batch and is done with
// each before the next (ingest's mapping, pipeline.Direct) allocates the values once.
func DecodeBatchInto(data []byte, room []DataValue) (*Batch, error) {
	if len(data) < 2 || data[0] != codecMagic {
		return nil, fmt.Errorf("%w: bad header", ErrCodec)
	}
	version := data[1]
	if version > codecVersion {
		return nil, fmt.Errorf("%w: version %d (this build reads 1 to %d)", ErrCodecVersion, version, codecVersion)
	}
	if version < 1 {
		return nil, fmt.Errorf("%w: version %d is not one this build reads (1 to %d)", ErrCodec, version, codecVersion)
	}
	d := decoder{buf: data[2:]}
	n := d.count("string table", 1)
	if d.err != nil {
		return nil, d.err
	}
	// The table's strings are substrings of one copy of the message: one allocation, not
	// one per string.
	all := string(d.buf)
	d.table = make([]string, n)
	for i := range d.table {
		l := d.uint("string length")
		if d.err != nil || l > uint64(len(d.buf)) {
			d.fail("string")
			return nil, d.err
		}
		at := len(all) - len(d.buf)
		d.table[i] = all[at : at+int(l)]
		d.buf = d.buf[l:]
	}
	b := &Batch{
		ID: d.str("id"), TxID: d.str("txId"), Source: d.str("source"), Target: d.str("target"),
		DataSet: d.str("dataSet"), CompleteDate: d.str("completeDate"),
	}
	b.Schemes = IDSchemes{
		IDScheme: IDScheme(d.str("scheme")), DataElement: IDScheme(d.str("scheme")),
		OrgUnit: IDScheme(d.str("scheme")), CategoryOptionCombo: IDScheme(d.str("scheme")),
		AttributeOptionCombo: IDScheme(d.str("scheme")), DataSet: IDScheme(d.str("scheme")),
		Category: IDScheme(d.str("scheme")), CategoryOption: IDScheme(d.str("scheme")),
	}
	b.Seq = int(d.int("seq"))
	b.Part = int(d.int("part"))
	b.Replays = int(d.int("replays"))
	b.Received = time.Unix(0, d.int("received")).UTC()
	if version >= 2 {
		bflags := d.uint("batch flags")
		b.Deletion = bflags&batchDeletion != 0
	}
	if version >= 3 {
		b.ImportStrategy = d.str("importStrategy")
	}
	nv := d.count("values", 10)
	if d.err != nil {
		return nil, d.err
	}
	if cap(room) >= nv {
		b.Values = room[:nv]
		clear(b.Values) // fields a value does not have must not keep the last batch's
	} else {
		b.Values = make([]DataValue, nv)
	}
	prevIndex := -1
	for i := range b.Values {
		v := &b.Values[i]
		flags := d.uint("flags")
		v.FollowUp, v.Deleted = flags&flagFollowUp != 0, flags&flagDeleted != 0
		v.DataElement = d.str("dataElement")
		v.Period = d.str("period")
		v.OrgUnit = d.str("orgUnit")
		v.CategoryOptionCombo = d.str("categoryOptionCombo")
		v.AttributeOptionCombo = d.str("attributeOptionCombo")
		v.Value = d.str("value")
		v.Comment = d.str("comment")
		v.StoredBy = d.str("storedBy")
		v.Index = prevIndex + int(d.int("index"))
		prevIndex = v.Index
		if flags&flagCategories != 0 {
			v.Categories = d.pairs("categories")
		}
		if flags&flagAttributes != 0 {
			v.Attributes = d.pairs("attributes")
		}
		if flags&flagDataSet != 0 {
			v.DataSet = d.str("dataSet")
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCodec, len(d.buf))
	}
	return b, nil
}
