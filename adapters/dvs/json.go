package dvs

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/tally-hmis/tally/transform"
)

// DecodeJSON reads a DHIS2 data value set in JSON and pushes it into sink: one Group, then
// one Value per data value, with the header's period, org unit and attribute option combo
// replacing the value's own (DHIS2's rule). It also reads a bare JSON array of data values
// (CHT's dataValues, or a script's) as a set without a header.
//
// The input is read in one pass through a bounded buffer, so memory does not grow with
// the payload. JSON object keys may come in any order: DHIS2's and CHT's writers put the
// header first, but a header field may also follow "dataValues". To apply it, DecodeJSON
// holds back the first Options.MaxHeldValues values until the object ends; a longer array
// is streamed from then on, and a header field that would change it after that point is
// refused with an error naming its place, rather than applied to some values and not to
// others.
//
// Values may be strings, numbers (kept as written: 1.50 stays "1.50") or booleans; null
// means absent. A categoryOptionCombo or attributeOptionCombo written as an object of
// category → option (DHIS2 2.43+) becomes the value's Categories or Attributes. Unknown
// keys are skipped. The JSON must be well formed (RFC 8259, UTF-8); a problem is reported
// as a *transform.InputError with line, column and a path such as dataValues[3].period.
// An error returned by the sink is wrapped and returned.
//
// Because values are streamed, a sink may have received values before a later part of
// the payload is found to be malformed: a caller must treat any error as the refusal of
// the whole payload.
func DecodeJSON(r io.Reader, sink transform.Sink, opts Options) error {
	d := jsonDecoder{
		r:        r,
		buf:      make([]byte, jsonFirstBuf),
		maxTok:   opts.maxToken(),
		maxDepth: opts.maxDepth(),
		maxHeld:  opts.maxHeld(),
		intern:   make(map[string]string),
		em:       emitter{sink: sink, opts: opts},
	}
	d.maxBuf = d.maxTok + 2*jsonBufSize
	d.cur.line = 1
	d.loc.d = &d
	d.fixed.d = &d
	return d.decode()
}

const (
	// The buffer starts small, for the many small payloads, and doubles with each refill
	// up to jsonBufSize, for throughput on large ones. It grows beyond only to hold a long
	// token.
	jsonFirstBuf     = 4 << 10
	jsonBufSize      = 64 << 10
	maxInternLen     = 64
	maxInternEntries = 1 << 14
)

// Interning slots: identifiers repeat from one value to the next, so each field remembers
// its last string and a shared table remembers the rest.
const (
	slotDataElement = iota
	slotPeriod
	slotOrgUnit
	slotCOC
	slotAOC
	slotStoredBy
	slotValue
	slotCategory
	slotOption
	nSlots
)

type cursor struct {
	off       int64 // absolute offset in the input
	line, col int   // line (1-based) and runes before off on that line
}

type pathElem struct {
	key   string
	index int
	array bool
}

type heldValue struct {
	v         transform.DataValue
	line, col int
	index     int
}

type jsonDecoder struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of valid data in buf
	rerr error // sticky read error; io.EOF at the end of the input
	base int64 // absolute offset of buf[0]
	cur  cursor

	maxTok, maxBuf, maxDepth, maxHeld int

	scratch []byte
	intern  map[string]string
	last    [nSlots]string
	cache   *[cacheSize]string

	em emitter

	// where the decoder is, for error positions and paths
	bare      bool
	topKey    []byte
	inValues  bool
	inValue   bool
	vKey      []byte
	vIndex    int
	vStart    int64
	vPos      cursor
	vPosKnown bool
	skipPath  []pathElem

	v          transform.DataValue
	count      int
	seenValues bool
	holding    bool
	released   bool
	held       []heldValue
	loc        jsonValueLoc
	fixed      heldLoc
}

// jsonValueLoc locates the value being delivered.
type jsonValueLoc struct{ d *jsonDecoder }

func (l *jsonValueLoc) Pos() transform.Pos {
	d := l.d
	c := d.vPos
	if !d.vPosKnown {
		c = d.advanceTo(d.vStart)
	}
	return transform.Pos{Line: c.line, Column: c.col + 1, Path: d.valuePath(d.vIndex)}
}

// heldLoc locates a value that was held back while the header was incomplete.
type heldLoc struct {
	d *jsonDecoder
	h *heldValue
}

func (l *heldLoc) Pos() transform.Pos {
	return transform.Pos{Line: l.h.line, Column: l.h.col + 1, Path: l.d.valuePath(l.h.index)}
}

func (d *jsonDecoder) valuePath(i int) string {
	if d.bare {
		return "[" + strconv.Itoa(i) + "]"
	}
	return "dataValues[" + strconv.Itoa(i) + "]"
}

// ---------------------------------------------------------------------------------------
// Structure

func (d *jsonDecoder) decode() error {
	if i, err := d.need(0, 3); err == nil || err == io.EOF {
		if bytes.HasPrefix(d.buf[i:d.end], []byte(utf8BOM)) {
			d.pos = i + 3
			d.cur.off = 3
		}
	} else {
		return err
	}
	c, err := d.next()
	if err == io.EOF {
		return &transform.InputError{Pos: transform.Pos{Line: 1, Column: 1}, Index: -1,
			Expected: "a data value set: the body is empty"}
	}
	if err != nil {
		return err
	}
	switch c {
	case '{':
		err = d.decodeSet()
	case '[':
		d.bare = true
		err = d.decodeBare()
	default:
		return d.syntax(d.pos, nil, "a data value set (a JSON object) or an array of data values")
	}
	if err != nil {
		return err
	}
	if c, err := d.next(); err != io.EOF {
		if err != nil {
			return err
		}
		_ = c
		return d.syntax(d.pos, nil, "the end of the input after the data value set")
	}
	return nil
}

// utf8BOM is the UTF-8 byte order mark, which all three formats may start with.
const utf8BOM = "\xEF\xBB\xBF"

// header fields
const (
	hUnknown = iota
	hDataSet
	hCompleteDate
	hPeriod
	hOrgUnit
	hAOC
	hACO
	hScheme
	hDryRun
	hStrategy
	hDataValues
)

func headerField(key []byte) int {
	switch string(key) {
	case "dataValues":
		return hDataValues
	case "dataSet":
		return hDataSet
	case "completeDate":
		return hCompleteDate
	case "period":
		return hPeriod
	case "orgUnit":
		return hOrgUnit
	case "attributeOptionCombo":
		return hAOC
	case "attributeCategoryOptions":
		return hACO
	case "idScheme", "dataElementIdScheme", "orgUnitIdScheme", "categoryOptionComboIdScheme",
		"attributeOptionComboIdScheme", "dataSetIdScheme", "categoryIdScheme", "categoryOptionIdScheme":
		return hScheme
	case "dryRun":
		return hDryRun
	case "strategy", "importStrategy":
		return hStrategy
	}
	return hUnknown
}

func (d *jsonDecoder) decodeSet() error {
	d.pos++ // {
	d.holding = true
	c, err := d.next()
	if err != nil {
		return d.syntax(d.pos, err, `a member name or "}"`)
	}
	if c == '}' {
		d.pos++
		return d.release()
	}
	for {
		if c != '"' {
			return d.syntax(d.pos, nil, "a quoted member name")
		}
		keyAt := d.advanceTo(d.base + int64(d.pos)) // headers are few: locate them now
		key, err := d.readString()
		if err != nil {
			return err
		}
		f := headerField(key)
		d.topKey = append(d.topKey[:0], key...)
		if err := d.expect(':', `":" after the member name`); err != nil {
			return err
		}
		if err := d.headerMember(f, keyAt); err != nil {
			return err
		}
		d.topKey = d.topKey[:0]
		if c, err = d.next(); err != nil {
			return d.syntax(d.pos, err, `"," or "}"`)
		}
		if c == '}' {
			d.pos++
			break
		}
		if c != ',' {
			return d.syntax(d.pos, nil, `"," or "}" after a member of the data value set`)
		}
		d.pos++
		if c, err = d.next(); err != nil {
			return d.syntax(d.pos, err, "a quoted member name")
		}
	}
	return d.release()
}

func (d *jsonDecoder) headerMember(f int, keyAt cursor) error {
	h := &d.em.hdr
	switch f {
	case hDataValues:
		if d.seenValues {
			return d.errAtCursor(keyAt, "dataValues", `one "dataValues" array per data value set`)
		}
		d.seenValues = true
		return d.decodeValues()
	case hUnknown:
		return d.skip(1)
	case hACO:
		opts, err := d.stringList()
		if err != nil {
			return err
		}
		if d.released && !slices.Equal(opts, h.AttributeCategoryOptions) {
			return d.late(keyAt, fmt.Sprint(opts))
		}
		h.AttributeCategoryOptions = opts
		return nil
	case hDryRun:
		b, set, err := d.boolValue()
		if err != nil {
			return err
		}
		if !set {
			return nil
		}
		if d.released && (h.DryRun == nil || *h.DryRun != b) {
			return d.late(keyAt, strconv.FormatBool(b))
		}
		h.DryRun = &b
		return nil
	}
	if _, err := d.next(); err != nil {
		return d.syntax(d.pos, err, "a string")
	}
	valueAt := d.advanceTo(d.base + int64(d.pos))
	s, err := d.headerString()
	if err != nil {
		return err
	}
	var dst *string
	switch f {
	case hDataSet:
		dst = &h.DataSet
	case hCompleteDate:
		dst = &h.CompleteDate
	case hPeriod:
		dst = &h.Period
	case hOrgUnit:
		dst = &h.OrgUnit
	case hAOC:
		dst = &h.AttributeOptionCombo
	case hStrategy:
		st, err := transform.ParseImportStrategy(s)
		if err != nil {
			return d.errAtCursor(valueAt, s, strategyExpected)
		}
		s, dst = string(st), &h.Strategy
	case hScheme:
		if s == "" && d.released {
			return nil
		}
		sch := h.Schemes
		if err := setScheme(&sch, string(d.topKey), s); err != nil {
			return d.errAtCursor(valueAt, s, "an id scheme: UID, CODE, NAME or ATTRIBUTE:<uid>")
		}
		if d.released && sch != h.Schemes {
			return d.late(keyAt, s)
		}
		h.Schemes = sch
		return nil
	}
	if d.released && *dst != s && s != "" {
		return d.late(keyAt, s)
	}
	if s != "" || !d.released {
		*dst = s
	}
	return nil
}

// late refuses a header field that arrives after values were already delivered.
func (d *jsonDecoder) late(keyAt cursor, value string) error {
	return &transform.InputError{Pos: transform.Pos{Line: keyAt.line, Column: keyAt.col + 1, Path: d.path()}, Index: -1,
		Field: string(d.topKey), Value: value,
		Expected: fmt.Sprintf(`header fields before "dataValues": this one follows more than %d data values, `+
			`which were read without it (Tally streams large payloads)`, d.maxHeld)}
}

// headerString reads a header field written as a string, number or boolean; null is "".
func (d *jsonDecoder) headerString() (string, error) {
	b, err := d.scalar("a string")
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// stringList reads an array of strings (or a comma-separated string, or null).
func (d *jsonDecoder) stringList() ([]string, error) {
	c, err := d.next()
	if err != nil {
		return nil, d.syntax(d.pos, err, "an array of strings")
	}
	if c != '[' {
		b, err := d.scalar("an array of strings")
		if err != nil {
			return nil, err
		}
		return splitOptions(string(b)), nil
	}
	d.pos++
	var out []string
	d.skipPath = append(d.skipPath, pathElem{array: true})
	for n := 0; ; n++ {
		d.skipPath[len(d.skipPath)-1].index = n
		if c, err = d.next(); err != nil {
			return nil, d.syntax(d.pos, err, `a string or "]"`)
		}
		if c == ']' && n == 0 {
			d.pos++
			break
		}
		b, err := d.scalar("a string")
		if err != nil {
			return nil, err
		}
		if len(b) > 0 {
			out = append(out, string(b))
		}
		if c, err = d.next(); err != nil {
			return nil, d.syntax(d.pos, err, `"," or "]"`)
		}
		d.pos++
		if c == ']' {
			break
		}
		if c != ',' {
			return nil, d.syntax(d.pos-1, nil, `"," or "]"`)
		}
	}
	d.skipPath = d.skipPath[:len(d.skipPath)-1]
	return out, nil
}

// release delivers the values held back and ends holding: from now on the header is
// final.
func (d *jsonDecoder) release() error {
	if !d.holding {
		return nil
	}
	d.holding = false
	d.released = true
	if err := d.em.group(); err != nil {
		return err
	}
	for i := range d.held {
		d.fixed.h = &d.held[i]
		if err := d.em.value(&d.held[i].v, &d.fixed); err != nil {
			return err
		}
	}
	d.held = nil
	d.fixed.h = nil
	return nil
}

func (d *jsonDecoder) decodeBare() error {
	d.released = true
	if err := d.em.group(); err != nil {
		return err
	}
	return d.decodeArray()
}

func (d *jsonDecoder) decodeValues() error {
	c, err := d.next()
	if err != nil {
		return d.syntax(d.pos, err, "an array of data values")
	}
	if c == 'n' {
		return d.literal("null")
	}
	if c != '[' {
		return d.syntax(d.pos, nil, "an array of data values")
	}
	return d.decodeArray()
}

// decodeArray reads [ value, ... ] with buf[pos] == '['.
func (d *jsonDecoder) decodeArray() error {
	d.pos++
	d.inValues = true
	c, err := d.next()
	if err != nil {
		return d.syntax(d.pos, err, `a data value or "]"`)
	}
	if c == ']' {
		d.pos++
		d.inValues = false
		return nil
	}
	for {
		if c != '{' {
			d.vIndex, d.inValue = d.count, true
			return d.syntax(d.pos, nil, "a data value (a JSON object)")
		}
		if err := d.decodeValue(); err != nil {
			return err
		}
		if c, err = d.next(); err != nil {
			return d.syntax(d.pos, err, `"," or "]"`)
		}
		if c == ']' {
			d.pos++
			break
		}
		if c != ',' {
			return d.syntax(d.pos, nil, `"," or "]" after a data value`)
		}
		d.pos++
		if c, err = d.next(); err != nil {
			return d.syntax(d.pos, err, "a data value")
		}
	}
	d.inValues = false
	return nil
}

// value fields
const (
	vUnknown = iota
	vDataElement
	vPeriod
	vOrgUnit
	vCOC
	vAOC
	vValue
	vComment
	vStoredBy
	vFollowUp
	vDeleted
)

// valueKeys are the member names of a data value (a read-only table).
var valueKeys = [...]string{
	vDataElement: "dataElement",
	vPeriod:      "period",
	vOrgUnit:     "orgUnit",
	vCOC:         "categoryOptionCombo",
	vAOC:         "attributeOptionCombo",
	vValue:       "value",
	vComment:     "comment",
	vStoredBy:    "storedBy",
	vFollowUp:    "followup",
	vDeleted:     "deleted",
}

// knownValueKey recognises, at buf[pos] == '"', a member name of a data value written
// without escapes, consumes it and returns its field; otherwise it returns vUnknown and
// consumes nothing.
func (d *jsonDecoder) knownValueKey() int {
	i := d.pos + 1
	if i+22 > d.end {
		return vUnknown // near the end of the buffer: let readString handle it
	}
	var f int
	var name string
	switch d.buf[i] {
	case 'd':
		f, name = vDataElement, "dataElement\""
		if d.buf[i+1] == 'e' {
			f, name = vDeleted, "deleted\""
		}
	case 'p':
		f, name = vPeriod, "period\""
	case 'o':
		f, name = vOrgUnit, "orgUnit\""
	case 'c':
		f, name = vCOC, "categoryOptionCombo\""
		if d.buf[i+1] == 'o' {
			f, name = vComment, "comment\""
		}
	case 'a':
		f, name = vAOC, "attributeOptionCombo\""
	case 'v':
		f, name = vValue, "value\""
	case 's':
		f, name = vStoredBy, "storedBy\""
	case 'f':
		f, name = vFollowUp, "followup\""
		if d.buf[i+6] == 'U' {
			name = "followUp\""
		}
	default:
		return vUnknown
	}
	if string(d.buf[i:i+len(name)]) != name {
		return vUnknown
	}
	d.pos = i + len(name)
	return f
}

func valueField(key []byte) int {
	switch string(key) {
	case "dataElement":
		return vDataElement
	case "period":
		return vPeriod
	case "orgUnit":
		return vOrgUnit
	case "categoryOptionCombo":
		return vCOC
	case "attributeOptionCombo":
		return vAOC
	case "value":
		return vValue
	case "comment":
		return vComment
	case "storedBy":
		return vStoredBy
	case "followup", "followUp":
		return vFollowUp
	case "deleted":
		return vDeleted
	}
	return vUnknown
}

// decodeValue reads one data value object, buf[pos] == '{', and delivers it.
func (d *jsonDecoder) decodeValue() error {
	d.vIndex = d.count
	d.count++
	if d.count == cacheAfter {
		d.cache = new([cacheSize]string)
	}
	d.inValue = true
	d.vStart = d.base + int64(d.pos)
	d.vPosKnown = false
	d.pos++
	v := &d.v
	*v = transform.DataValue{Index: d.vIndex}
	c, err := d.next()
	if err != nil {
		return d.syntax(d.pos, err, `a member name or "}"`)
	}
	if c == '}' {
		d.pos++
	} else {
		for {
			if c != '"' {
				return d.syntax(d.pos, nil, "a quoted member name")
			}
			f := d.knownValueKey()
			if f == vUnknown {
				key, err := d.readString()
				if err != nil {
					return err
				}
				f = valueField(key)
				d.vKey = append(d.vKey[:0], key...)
			} else {
				d.vKey = append(d.vKey[:0], valueKeys[f]...)
			}
			if err := d.colon(); err != nil {
				return err
			}
			switch f {
			case vDataElement:
				v.DataElement, err = d.ident(slotDataElement)
			case vPeriod:
				v.Period, err = d.ident(slotPeriod)
			case vOrgUnit:
				v.OrgUnit, err = d.ident(slotOrgUnit)
			case vCOC:
				v.CategoryOptionCombo, v.Categories, err = d.combo(slotCOC)
			case vAOC:
				v.AttributeOptionCombo, v.Attributes, err = d.combo(slotAOC)
			case vValue:
				var b []byte
				if b, err = d.scalar("a string, number or boolean"); err == nil {
					if len(b) <= 16 {
						v.Value = d.str(slotValue, b)
					} else {
						v.Value = string(b)
					}
				}
			case vComment:
				var b []byte
				if b, err = d.scalar("a string"); err == nil && len(b) > 0 {
					v.Comment = string(b)
				}
			case vStoredBy:
				v.StoredBy, err = d.ident(slotStoredBy)
			case vFollowUp:
				v.FollowUp, _, err = d.boolValue()
			case vDeleted:
				v.Deleted, _, err = d.boolValue()
			default:
				err = d.skip(3)
			}
			if err != nil {
				return err
			}
			d.vKey = d.vKey[:0]
			if d.pos+1 < d.end && d.buf[d.pos] == ',' && d.buf[d.pos+1] == '"' {
				d.pos++ // the common case: no whitespace between members
				c = '"'
				continue
			}
			if c, err = d.next(); err != nil {
				return d.syntax(d.pos, err, `"," or "}"`)
			}
			if c == '}' {
				d.pos++
				break
			}
			if c != ',' {
				return d.syntax(d.pos, nil, `"," or "}" after a member of the data value`)
			}
			d.pos++
			if c, err = d.next(); err != nil {
				return d.syntax(d.pos, err, "a quoted member name")
			}
		}
	}
	d.vKey = d.vKey[:0]
	d.inValue = false
	return d.deliver()
}

func (d *jsonDecoder) deliver() error {
	if d.holding {
		if len(d.held) < d.maxHeld {
			if d.held == nil {
				d.held = make([]heldValue, 0, min(16, d.maxHeld))
			}
			c := d.vPos
			if !d.vPosKnown {
				c = d.advanceTo(d.vStart)
			}
			d.held = append(d.held, heldValue{v: d.v, line: c.line, col: c.col, index: d.vIndex})
			return nil
		}
		if err := d.release(); err != nil {
			return err
		}
	}
	return d.em.value(&d.v, &d.loc)
}

// scalar reads a string, number, true, false or null and returns its text (null is
// empty). Objects and arrays are refused with expected.
func (d *jsonDecoder) scalar(expected string) ([]byte, error) {
	c, err := d.next()
	if err != nil {
		return nil, d.syntax(d.pos, err, expected)
	}
	switch {
	case c == '"':
		return d.readString()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.readNumber()
	case c == 't':
		d.scratch = append(d.scratch[:0], "true"...)
		return d.scratch, d.literal("true")
	case c == 'f':
		d.scratch = append(d.scratch[:0], "false"...)
		return d.scratch, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '{' || c == '[':
		return nil, d.errAt(d.pos, string(c), expected)
	}
	return nil, d.syntax(d.pos, nil, expected)
}

// ident reads an identifier field, interning it.
func (d *jsonDecoder) ident(slot int) (string, error) {
	if d.pos < d.end && d.buf[d.pos] == '"' {
		b, err := d.readString()
		if err != nil {
			return "", err
		}
		return d.str(slot, b), nil
	}
	b, err := d.scalar("a string")
	if err != nil {
		return "", err
	}
	return d.str(slot, b), nil
}

// str returns b as a string, reusing an earlier equal string when there is one.
func (d *jsonDecoder) str(slot int, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if last := d.last[slot]; string(b) == last {
		return last
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	c := d.cache
	if c == nil {
		return d.lookup(slot, b)
	}
	h := (uint(len(b))*31 + uint(b[0])*7 + uint(b[len(b)-1])*131 + uint(b[len(b)/2])*17 + uint(slot)*61) & (cacheSize - 1)
	if s := c[h]; string(b) == s {
		d.last[slot] = s
		return s
	}
	s := d.lookup(slot, b)
	c[h] = s
	return s
}

// lookup interns b through the table.
func (d *jsonDecoder) lookup(slot int, b []byte) string {
	s, ok := d.intern[string(b)]
	if !ok {
		s = string(b)
		if len(d.intern) < maxInternEntries {
			d.intern[s] = s
		}
	}
	d.last[slot] = s
	return s
}

// cacheSize is the number of entries of the direct-mapped cache in front of the intern
// table; it is allocated once a payload has cacheAfter values, so that small payloads do
// not pay for it.
const (
	cacheSize  = 1024
	cacheAfter = 32
)

// combo reads a combo written as an id, or (DHIS2 2.43+) as an object of category →
// option.
func (d *jsonDecoder) combo(slot int) (string, []transform.CategoryOption, error) {
	c, err := d.next()
	if err != nil {
		return "", nil, d.syntax(d.pos, err, "a string")
	}
	if c != '{' {
		s, err := d.ident(slot)
		return s, nil, err
	}
	d.pos++
	var out []transform.CategoryOption
	d.skipPath = append(d.skipPath, pathElem{})
	if c, err = d.next(); err != nil {
		return "", nil, d.syntax(d.pos, err, `a category or "}"`)
	}
	if c == '}' {
		d.pos++
	} else {
		for {
			if c != '"' {
				return "", nil, d.syntax(d.pos, nil, "a quoted category")
			}
			key, err := d.readString()
			if err != nil {
				return "", nil, err
			}
			cat := d.str(slotCategory, key)
			d.skipPath[len(d.skipPath)-1].key = cat
			if err := d.expect(':', `":" after the category`); err != nil {
				return "", nil, err
			}
			b, err := d.scalar("a category option (a string)")
			if err != nil {
				return "", nil, err
			}
			out = append(out, transform.CategoryOption{Category: cat, Option: d.str(slotOption, b)})
			if c, err = d.next(); err != nil {
				return "", nil, d.syntax(d.pos, err, `"," or "}"`)
			}
			if c == '}' {
				d.pos++
				break
			}
			if c != ',' {
				return "", nil, d.syntax(d.pos, nil, `"," or "}"`)
			}
			d.pos++
			if c, err = d.next(); err != nil {
				return "", nil, d.syntax(d.pos, err, "a quoted category")
			}
		}
	}
	d.skipPath = d.skipPath[:len(d.skipPath)-1]
	return "", out, nil
}

// boolValue reads true, false, null (not set) or one of them as a string.
func (d *jsonDecoder) boolValue() (b, set bool, err error) {
	c, err := d.next()
	if err != nil {
		return false, false, d.syntax(d.pos, err, boolExpected)
	}
	switch c {
	case 't':
		return true, true, d.literal("true")
	case 'f':
		return false, true, d.literal("false")
	case 'n':
		return false, false, d.literal("null")
	case '"':
		at := d.pos
		s, err := d.readString()
		if err != nil {
			return false, false, err
		}
		v, ok := parseBool(string(s))
		if !ok {
			return false, false, d.errAt(at, string(s), boolExpected)
		}
		return v, len(s) > 0, nil
	}
	if c == '-' || (c >= '0' && c <= '9') || c == '{' || c == '[' {
		return false, false, d.errAt(d.pos, string(c), boolExpected)
	}
	return false, false, d.syntax(d.pos, nil, boolExpected)
}

// skip reads and discards any JSON value; depth is the nesting of the value's container.
func (d *jsonDecoder) skip(depth int) error {
	c, err := d.next()
	if err != nil {
		return d.syntax(d.pos, err, "a JSON value")
	}
	switch {
	case c == '"':
		_, err := d.readString()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.readNumber()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '{' || c == '[':
		if depth >= d.maxDepth {
			return d.errAt(d.pos, string(c), fmt.Sprintf("at most %d levels of nesting", d.maxDepth))
		}
		d.pos++
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		d.skipPath = append(d.skipPath, pathElem{array: c == '['})
		top := len(d.skipPath) - 1
		if c, err = d.next(); err != nil {
			return d.syntax(d.pos, err, "a JSON value or "+string(closer))
		}
		if c == closer {
			d.pos++
		} else {
			for n := 0; ; n++ {
				if closer == '}' {
					if c != '"' {
						return d.syntax(d.pos, nil, "a quoted member name")
					}
					key, err := d.readString()
					if err != nil {
						return err
					}
					d.skipPath[top].key = string(key)
					if err := d.expect(':', `":" after the member name`); err != nil {
						return err
					}
				} else {
					d.skipPath[top].index = n
				}
				if err := d.skip(depth + 1); err != nil {
					return err
				}
				if c, err = d.next(); err != nil {
					return d.syntax(d.pos, err, `"," or "`+string(closer)+`"`)
				}
				if c == closer {
					d.pos++
					break
				}
				if c != ',' {
					return d.syntax(d.pos, nil, `"," or "`+string(closer)+`"`)
				}
				d.pos++
				if c, err = d.next(); err != nil {
					return d.syntax(d.pos, err, "a JSON value")
				}
			}
		}
		d.skipPath = d.skipPath[:top]
		return nil
	}
	return d.syntax(d.pos, nil, "a JSON value")
}
