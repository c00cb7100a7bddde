package dvs

// The JSON tokenizer: a bounded buffer over the reader, a line cursor that is advanced
// only when a position is needed, and strict readers for strings, numbers and literals.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tally-hmis/tally/transform"
)

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
	busy := d.end == len(d.buf) // the input filled the buffer: there is more to come
	if keep > 0 {
		d.discard(keep)
		shift = keep
	}
	if full := d.end == len(d.buf); full || (busy && len(d.buf) < jsonBufSize) {
		if full && len(d.buf) >= d.maxBuf {
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
	if n := bytes.Count(seg, []byte{'\n'}); n > 0 {
		d.cur.line += n
		d.cur.col = runeCount(seg[bytes.LastIndexByte(seg, '\n')+1:])
	} else {
		d.cur.col += runeCount(seg)
	}
	d.cur.off = abs
	return d.cur
}

// runeCount counts the runes of p, eight bytes at a time: every byte but those that continue
// a rune (10xxxxxx). A payload is mostly one long line (what clients send is compact JSON),
// so the column of every refill counted each byte once, and utf8.RuneCount, a byte at a
// time, was a twentieth of Tally's CPU. On invalid UTF-8 a stray continuation byte counts
// for nothing here and for one rune there: only the columns of error messages can differ.
func runeCount(p []byte) int {
	n := len(p)
	for ; len(p) >= 8; p = p[8:] {
		w := binary.LittleEndian.Uint64(p)
		n -= bits.OnesCount64(w & 0x8080808080808080 &^ (w << 1)) // bit 7 set, bit 6 clear
	}
	for _, c := range p {
		if c&0xC0 == 0x80 {
			n--
		}
	}
	return n
}

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

// strPlain marks bytes a string can hold as they are (a read-only table).
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
