package dvs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

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
		buf:      make([]byte, jsonBufSize),
		maxTok:   opts.maxToken(),
		maxDepth: opts.maxDepth(),
		maxHeld:  opts.maxHeld(),
		intern:   make(map[string]string, 256),
		em:       emitter{sink: sink, opts: opts},
	}
	d.maxBuf = d.maxTok + 2*jsonBufSize
	d.cur.line = 1
	d.loc.d = &d
	d.fixed.d = &d
	return d.decode()
}

const (
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
	cache   [cacheSize]string

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
// Input buffer

// fill discards buf[:keep], then reads more input. It returns how far the bytes after
// keep moved towards the start (callers shift their indices by it), and io.EOF once the
// input is exhausted.
func (d *jsonDecoder) fill(keep int) (int, error) {
	if d.rerr != nil {
		return 0, d.rerr
	}
	shift := 0
	if keep > 0 {
		d.discard(keep)
		shift = keep
	}
	if d.end == len(d.buf) {
		if len(d.buf) >= d.maxBuf {
			return shift, errTokenTooLong
		}
		nb := make([]byte, min(2*len(d.buf), d.maxBuf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for tries := 0; ; tries++ {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("dvs: reading JSON: %w", err)
			}
			d.rerr = err
			if n > 0 {
				return shift, nil
			}
			return shift, err
		}
		if n > 0 {
			return shift, nil
		}
		if tries == 100 {
			d.rerr = fmt.Errorf("dvs: reading JSON: %w", io.ErrNoProgress)
			return shift, d.rerr
		}
	}
}

var errTokenTooLong = errors.New("token too long")

// discard drops buf[:keep], keeping the line count of what is dropped.
func (d *jsonDecoder) discard(keep int) {
	abs := d.base + int64(keep)
	if d.inValue && !d.vPosKnown && d.vStart < abs {
		d.vPos = d.advanceTo(d.vStart)
		d.vPosKnown = true
	}
	d.advanceTo(abs)
	n := copy(d.buf, d.buf[keep:d.end])
	d.end = n
	d.pos -= keep
	d.base = abs
}

// advanceTo moves the line cursor forward to abs (which must still be in the buffer) and
// returns it. Positions are only needed for errors, held values and refills, so lines are
// never counted on the hot path.
func (d *jsonDecoder) advanceTo(abs int64) cursor {
	if abs <= d.cur.off {
		return d.cur
	}
	from, to := int(d.cur.off-d.base), int(abs-d.base)
	if from < 0 || to > d.end {
		return d.cur // not in the buffer any more: keep the last known position
	}
	seg := d.buf[from:to]
	if n := bytes.Count(seg, nl); n > 0 {
		d.cur.line += n
		d.cur.col = utf8.RuneCount(seg[bytes.LastIndexByte(seg, '\n')+1:])
	} else {
		d.cur.col += utf8.RuneCount(seg)
	}
	d.cur.off = abs
	return d.cur
}

var nl = []byte{'\n'}

// need makes n bytes available from buf[i]; it returns i moved by the refill.
func (d *jsonDecoder) need(i, n int) (int, error) {
	for d.end-i < n {
		shift, err := d.fill(i)
		i -= shift
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

// next skips whitespace and returns the next byte without consuming it.
func (d *jsonDecoder) next() (byte, error) {
	if d.pos < d.end && d.buf[d.pos] > ' ' {
		return d.buf[d.pos], nil
	}
	return d.nextSlow()
}

func (d *jsonDecoder) nextSlow() (byte, error) {
	for {
		for d.pos < d.end {
			c := d.buf[d.pos]
			if c > ' ' || (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
				return c, nil
			}
			d.pos++
		}
		if _, err := d.fill(d.pos); err != nil {
			return 0, err
		}
	}
}

// ---------------------------------------------------------------------------------------
// Errors

func (d *jsonDecoder) posAt(i int) transform.Pos {
	c := d.advanceTo(d.base + int64(i))
	return transform.Pos{Line: c.line, Column: c.col + 1, Path: d.path()}
}

func (d *jsonDecoder) path() string {
	var b []byte
	if d.bare {
		if d.inValue {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(d.vIndex), 10)
			b = append(b, ']')
		}
	} else if len(d.topKey) > 0 {
		b = append(b, d.topKey...)
		if d.inValues && d.inValue {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(d.vIndex), 10)
			b = append(b, ']')
		}
	}
	if d.inValue && len(d.vKey) > 0 {
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, d.vKey...)
	}
	for _, e := range d.skipPath {
		switch {
		case e.array:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(e.index), 10)
			b = append(b, ']')
		case e.key != "":
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, e.key...)
		}
	}
	return string(b)
}

func (d *jsonDecoder) field() string {
	if d.inValue {
		return string(d.vKey)
	}
	return string(d.topKey)
}

func (d *jsonDecoder) index() int {
	if d.inValue {
		return d.vIndex
	}
	return -1
}

// errAt reports a problem at buf[i]. A read error or a refill that found the input
// exhausted is turned into "unexpected end of input".
func (d *jsonDecoder) errAt(i int, found, expected string) error {
	return &transform.InputError{Pos: d.posAt(i), Index: d.index(), Field: d.field(), Value: found, Expected: expected}
}

// errAtCursor reports a problem at a place located earlier.
func (d *jsonDecoder) errAtCursor(c cursor, found, expected string) error {
	return &transform.InputError{Pos: transform.Pos{Line: c.line, Column: c.col + 1, Path: d.path()}, Index: d.index(),
		Field: d.field(), Value: found, Expected: expected}
}

// syntax reports the byte at buf[i] (or the end of the input) where expected was wanted.
func (d *jsonDecoder) syntax(i int, err error, expected string) error {
	if err != nil && err != io.EOF {
		if errors.Is(err, errTokenTooLong) {
			return d.errAt(i, "", fmt.Sprintf("a token shorter than %d bytes", d.maxTok))
		}
		return err // a read error: not the sender's syntax
	}
	if i >= d.end {
		return d.errAt(d.end, "", expected+", found the end of the input")
	}
	return d.errAt(i, found(d.buf[i:d.end]), expected)
}

// found describes the input at the start of b for an error message.
func found(b []byte) string {
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02x", b[0])
	}
	if r < 0x20 || r == 0x7f {
		return fmt.Sprintf("control character U+%04X", r)
	}
	return string(b[:size])
}

// ---------------------------------------------------------------------------------------
// Tokens

// strPlain marks bytes a string can hold as they are.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// readString reads the string whose opening quote is at buf[pos] and returns its
// unescaped bytes, valid until the next read.
func (d *jsonDecoder) readString() ([]byte, error) {
	start := d.pos + 1
	i := start
	for {
		for buf := d.buf[:d.end]; i+4 <= len(buf) && strPlain[buf[i]] && strPlain[buf[i+1]] && strPlain[buf[i+2]] && strPlain[buf[i+3]]; {
			i += 4
		}
		for i < d.end && strPlain[d.buf[i]] {
			i++
		}
		if i-start > d.maxTok {
			return nil, d.errAt(start-1, "", fmt.Sprintf("a string shorter than %d bytes", d.maxTok))
		}
		if i >= d.end {
			shift, err := d.fill(start - 1)
			start, i = start-shift, i-shift
			if err != nil {
				return nil, d.syntax(i, err, "a closing quote")
			}
			continue
		}
		switch c := d.buf[i]; {
		case c == '"':
			d.pos = i + 1
			return d.buf[start:i], nil
		case c == '\\':
			d.scratch = append(d.scratch[:0], d.buf[start:i]...)
			return d.readEscaped(i)
		case c < 0x20:
			return nil, d.errAt(i, found(d.buf[i:d.end]), `a string character (control characters must be escaped, e.g. \n or \u0001)`)
		default:
			if !utf8.FullRune(d.buf[i:d.end]) {
				shift, err := d.fill(start - 1)
				start, i = start-shift, i-shift
				if err == nil {
					continue
				}
				if err != io.EOF {
					return nil, d.syntax(i, err, "a closing quote")
				}
			}
			r, size := utf8.DecodeRune(d.buf[i:d.end])
			if r == utf8.RuneError && size <= 1 {
				return nil, d.errAt(i, found(d.buf[i:d.end]), "UTF-8 text")
			}
			i += size
		}
	}
}

// readEscaped finishes a string with escapes into d.scratch; buf[i] is the first
// backslash.
func (d *jsonDecoder) readEscaped(i int) ([]byte, error) {
	var err error
	for {
		if len(d.scratch) > d.maxTok {
			return nil, d.errAt(i, "", fmt.Sprintf("a string shorter than %d bytes", d.maxTok))
		}
		if i >= d.end {
			shift, err := d.fill(i)
			i -= shift
			if err != nil {
				return nil, d.syntax(i, err, "a closing quote")
			}
			continue
		}
		c := d.buf[i]
		switch {
		case strPlain[c]:
			j := i + 1
			for j < d.end && strPlain[d.buf[j]] {
				j++
			}
			d.scratch = append(d.scratch, d.buf[i:j]...)
			i = j
		case c == '"':
			d.pos = i + 1
			return d.scratch, nil
		case c == '\\':
			if i, err = d.need(i, 2); err != nil {
				return nil, d.syntax(d.end, err, "an escape sequence")
			}
			switch e := d.buf[i+1]; e {
			case '"', '\\', '/':
				d.scratch = append(d.scratch, e)
			case 'b':
				d.scratch = append(d.scratch, '\b')
			case 'f':
				d.scratch = append(d.scratch, '\f')
			case 'n':
				d.scratch = append(d.scratch, '\n')
			case 'r':
				d.scratch = append(d.scratch, '\r')
			case 't':
				d.scratch = append(d.scratch, '\t')
			case 'u':
				var r rune
				if i, r, err = d.unicodeEscape(i); err != nil {
					return nil, err
				}
				d.scratch = utf8.AppendRune(d.scratch, r)
				continue
			default:
				return nil, d.errAt(i, string(d.buf[i:i+2]), `an escape sequence: \" \\ \/ \b \f \n \r \t or \uXXXX`)
			}
			i += 2
		case c < 0x20:
			return nil, d.errAt(i, found(d.buf[i:d.end]), `a string character (control characters must be escaped, e.g. \n or \u0001)`)
		default:
			if !utf8.FullRune(d.buf[i:d.end]) {
				shift, err := d.fill(i)
				i -= shift
				if err != nil && err != io.EOF {
					return nil, err
				}
				if err == nil {
					continue
				}
			}
			r, size := utf8.DecodeRune(d.buf[i:d.end])
			if r == utf8.RuneError && size <= 1 {
				return nil, d.errAt(i, found(d.buf[i:d.end]), "UTF-8 text")
			}
			d.scratch = append(d.scratch, d.buf[i:i+size]...)
			i += size
		}
	}
}

// unicodeEscape reads \uXXXX at buf[i], and the low half of a surrogate pair after it.
func (d *jsonDecoder) unicodeEscape(i int) (int, rune, error) {
	var err error
	if i, err = d.need(i, 6); err != nil {
		return i, 0, d.syntax(d.end, err, `four hex digits after \u`)
	}
	r, ok := hex4(d.buf[i+2 : i+6])
	if !ok {
		return i, 0, d.errAt(i, string(d.buf[i:i+6]), `\u followed by four hex digits`)
	}
	if !utf16.IsSurrogate(r) {
		return i + 6, r, nil
	}
	if r >= 0xDC00 {
		return i, 0, d.errAt(i, string(d.buf[i:i+6]), `a high surrogate (\uD800-\uDBFF) before a low one: lone surrogates are not text`)
	}
	if i, err = d.need(i, 12); err != nil && err != io.EOF {
		return i, 0, err
	}
	if d.end-i < 12 || d.buf[i+6] != '\\' || d.buf[i+7] != 'u' {
		return i, 0, d.errAt(i, string(d.buf[i:i+6]), `a low surrogate \uDC00-\uDFFF after the high surrogate`)
	}
	r2, ok := hex4(d.buf[i+8 : i+12])
	if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
		return i, 0, d.errAt(i+6, string(d.buf[i+6:i+12]), `a low surrogate \uDC00-\uDFFF after the high surrogate`)
	}
	return i + 12, utf16.DecodeRune(r, r2), nil
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// readNumber reads a number at buf[pos] and returns its literal text.
func (d *jsonDecoder) readNumber() ([]byte, error) {
	const (
		sStart = iota
		sMinus
		sZero
		sInt
		sDot
		sFrac
		sExp
		sExpSign
		sExpDigits
	)
	start := d.pos
	i := start
	state := sStart
loop:
	for {
		if i >= d.end {
			shift, err := d.fill(start)
			start, i = start-shift, i-shift
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, d.syntax(i, err, "a number")
			}
			continue
		}
		if i-start > d.maxTok {
			return nil, d.errAt(start, "", fmt.Sprintf("a number shorter than %d bytes", d.maxTok))
		}
		c := d.buf[i]
		digit := c >= '0' && c <= '9'
		switch state {
		case sStart:
			switch {
			case c == '-':
				state = sMinus
			case c == '0':
				state = sZero
			case digit:
				state = sInt
			default:
				break loop
			}
		case sMinus:
			switch {
			case c == '0':
				state = sZero
			case digit:
				state = sInt
			default:
				break loop
			}
		case sZero:
			switch {
			case digit:
				return nil, d.errAt(start, string(d.buf[start:i+1]), "a number without leading zeros")
			case c == '.':
				state = sDot
			case c == 'e' || c == 'E':
				state = sExp
			default:
				break loop
			}
		case sInt:
			switch {
			case digit:
			case c == '.':
				state = sDot
			case c == 'e' || c == 'E':
				state = sExp
			default:
				break loop
			}
		case sDot:
			if !digit {
				break loop
			}
			state = sFrac
		case sFrac:
			switch {
			case digit:
			case c == 'e' || c == 'E':
				state = sExp
			default:
				break loop
			}
		case sExp:
			switch {
			case c == '+' || c == '-':
				state = sExpSign
			case digit:
				state = sExpDigits
			default:
				break loop
			}
		case sExpSign:
			if !digit {
				break loop
			}
			state = sExpDigits
		case sExpDigits:
			if !digit {
				break loop
			}
		}
		i++
	}
	switch state {
	case sZero, sInt, sFrac, sExpDigits:
		d.pos = i
		return d.buf[start:i], nil
	}
	end := min(i+1, d.end)
	return nil, d.errAt(start, string(d.buf[start:end]), "a number such as 12, -3, 1.50 or 2e3")
}

// literal consumes true, false or null at buf[pos].
func (d *jsonDecoder) literal(lit string) error {
	i, err := d.need(d.pos, len(lit))
	d.pos = i
	if err != nil && err != io.EOF {
		return err
	}
	if d.end-d.pos < len(lit) || string(d.buf[d.pos:d.pos+len(lit)]) != lit {
		end := d.pos + 1
		for end < d.end && end-d.pos < len(lit) && d.buf[end] >= 'a' && d.buf[end] <= 'z' {
			end++
		}
		return d.errAt(d.pos, string(d.buf[d.pos:min(end, d.end)]), "a JSON value: a string, number, object, array, true, false or null")
	}
	d.pos += len(lit)
	return nil
}

// colon consumes the ":" after a member name.
func (d *jsonDecoder) colon() error {
	if d.pos < d.end && d.buf[d.pos] == ':' {
		d.pos++
		return nil
	}
	return d.expect(':', `":" after the member name`)
}

// expect consumes byte c after optional whitespace.
func (d *jsonDecoder) expect(c byte, expected string) error {
	got, err := d.next()
	if err != nil || got != c {
		return d.syntax(d.pos, err, expected)
	}
	d.pos++
	return nil
}

// ---------------------------------------------------------------------------------------
// Structure

func (d *jsonDecoder) decode() error {
	if i, err := d.need(0, 3); err == nil || err == io.EOF {
		if bytes.HasPrefix(d.buf[i:d.end], utf8BOM) {
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

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

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
		dst = &h.Strategy
	case hScheme:
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

// valueKeys are the member names of a data value, quoted at the end as they appear in
// the input; knownValueKey matches them without scanning.
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
	h := (uint(len(b))*31 + uint(b[0])*7 + uint(b[len(b)-1])*131 + uint(b[len(b)/2])*17 + uint(slot)*61) & (cacheSize - 1)
	if c := d.cache[h]; string(b) == c {
		d.last[slot] = c
		return c
	}
	s, ok := d.intern[string(b)]
	if !ok {
		s = string(b)
		if len(d.intern) < maxInternEntries {
			d.intern[s] = s
		}
	}
	d.cache[h] = s
	d.last[slot] = s
	return s
}

const cacheSize = 1024

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
