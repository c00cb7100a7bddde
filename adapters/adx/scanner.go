package adx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// This file is a strictly validating, streaming scanner for the part of XML 1.0 (with
// namespaces) that ADX messages use. It exists because encoding/xml is the bottleneck of
// ADX ingest (see the package benchmarks): it allocates a string per name and attribute and
// cannot bound the size of a token before it has read it. The scanner works on a buffer it
// owns, hands out slices into it, and enforces the Limits while it reads.
//
// It accepts exactly the well-formed UTF-8 documents without a document type declaration:
// an optional BOM and XML declaration (version 1.0, encoding UTF-8), comments, processing
// instructions, one root element, character data with the five predefined entities and
// character references, CDATA sections. It refuses everything else with the place:
// DOCTYPE (and with it any entity definitions), other entities, malformed or overlong
// UTF-8, characters outside the XML Char production, mismatched tags, duplicate
// attributes, "]]>" in text, markup or text outside the root element, and QNames with
// more than one colon. Line ends are normalised to "\n" and attribute values are
// normalised as XML 1.0 §3.3.3 says for CDATA-typed attributes (each literal tab, line
// end or newline becomes a space; character references are kept).

type tokKind uint8

const (
	kindNone  tokKind = iota // a construct that yields no token (comment, PI, declaration)
	kindStart                // a start tag; tok.prefix, tok.local, tok.attrs
	kindEnd                  // an end tag, or the end of an empty-element tag
	kindText                 // a run of character data; tok.text
	kindEOF                  // the end of a well-formed document
)

// xattr is one attribute of a start tag. The slices stay valid until the next call to next.
type xattr struct {
	raw           []byte // the qualified name as written
	prefix, local []byte
	value         []byte
	// while scanning, a value that needed decoding lives in the scanner's scratch buffer
	vs, ve int
	dec    bool
}

// token is what a lexer read last. The slices stay valid until the next call to next.
type token struct {
	prefix, local []byte
	attrs         []xattr
	text          []byte
}

// lexer is the seam between XML tokenisation and ADX structure, so that the ADX layer can
// be run over encoding/xml as well (the tests do, as a reference).
type lexer interface {
	next() (tokKind, error)
	tok() *token
	// pos is the line and column (1-based, in bytes) where the current token starts.
	pos() (line, col int)
}

// xmlError is a well-formedness or limit violation at a place in the input.
type xmlError struct {
	line, col int
	msg       string
}

func (e *xmlError) Error() string { return fmt.Sprintf("line %d, column %d: %s", e.line, e.col, e.msg) }

var errNeedMore = errors.New("adx: need more input") // internal signal, never returned by next

// Character classes of single bytes, one bit each. Bytes from 0x80 are decoded as UTF-8
// and classified by rune.
const (
	cNameStart = 1 << iota // ASCII NameStartChar other than ':'
	cName                  // ASCII NameChar
	cText                  // a byte of character data that needs no further look
	cAttr                  // a byte of an attribute value that needs no further look
	cSpace                 // XML white space
)

// charClass is indexed by byte; TestCharClass regenerates it from the definitions above.
const charClass = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x14\x14\x00\x00\x10\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x1c\x0c\x04\x0c\x0c\x0c\x00\x04\x0c\x0c\x0c\x0c\x0c\x0e\x0e\x0c" +
	"\x0e\x0e\x0e\x0e\x0e\x0e\x0e\x0e\x0e\x0e\x0e\x0c\x00\x0c\x0c\x0c" +
	"\x0c\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f" +
	"\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0c\x0c\x08\x0c\x0f" +
	"\x0c\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f" +
	"\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0c\x0c\x0c\x0c\x0c" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

func isSpace(c byte) bool { return charClass[c]&cSpace != 0 }

// isChar reports whether r is an XML 1.0 Char (for runes from 0x80; utf8 decoding already
// excludes surrogates).
func isChar(r rune) bool {
	return r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF ||
		r == '\t' || r == '\n' || r == '\r'
}

// isNameStart and isNameChar are the XML 1.0 (fifth edition) name productions for runes
// from 0x80.
func isNameStart(r rune) bool {
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

func isNameChar(r rune) bool {
	return isNameStart(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}

const initialBuffer = 64 << 10

// scanner is the lexer used in production.
type scanner struct {
	r     io.Reader
	buf   []byte
	off   int   // start of the token being scanned
	n     int   // buf[:n] holds input
	base  int64 // input offset of buf[0]
	eof   bool  // r is exhausted
	limit Limits

	// newline accounting, done lazily: lines before lnOff are counted.
	lnOff     int64
	line      int
	lineStart int64

	started    bool // the first construct has been read (the XML declaration must come first)
	sawRoot    bool
	rootDone   bool
	pendingEnd bool // the last start tag was an empty-element tag

	stackBuf  []byte // qualified names of open elements, concatenated
	stackEnds []int

	tokAt   int64
	t       token
	scratch []byte
}

func newScanner(r io.Reader, limit Limits) *scanner {
	size := initialBuffer
	if limit.MaxTagBytes+16 < size {
		size = limit.MaxTagBytes + 16
	}
	return &scanner{r: r, buf: make([]byte, size), limit: limit, line: 1}
}

func (s *scanner) tok() *token { return &s.t }

func (s *scanner) pos() (int, int) { return s.posAt(s.tokAt) }

// posAt returns the line and column of an input offset at or after lnOff whose bytes are
// still buffered, or at or after the start of the buffer.
func (s *scanner) posAt(abs int64) (int, int) {
	if abs < s.lnOff {
		// Earlier than what was counted (only on error paths): count back.
		if abs < s.base {
			return s.line, 0
		}
		seg := s.buf[abs-s.base : s.lnOff-s.base]
		line := s.line - bytes.Count(seg, []byte{'\n'})
		start := s.base
		if i := bytes.LastIndexByte(s.buf[:abs-s.base], '\n'); i >= 0 {
			start = s.base + int64(i) + 1
		} else if s.base > 0 {
			return line, 0
		}
		return line, int(abs-start) + 1
	}
	s.countLines(abs)
	return s.line, int(abs-s.lineStart) + 1
}

// countLines moves the newline accounting forward to abs, which must be buffered.
func (s *scanner) countLines(abs int64) {
	if abs <= s.lnOff {
		return
	}
	seg := s.buf[s.lnOff-s.base : abs-s.base]
	if k := bytes.Count(seg, []byte{'\n'}); k > 0 {
		s.line += k
		s.lineStart = s.lnOff + int64(bytes.LastIndexByte(seg, '\n')) + 1
	}
	s.lnOff = abs
}

func (s *scanner) errAt(i int, format string, args ...any) error {
	line, col := s.posAt(s.base + int64(i))
	return &xmlError{line: line, col: col, msg: fmt.Sprintf(format, args...)}
}

// fill reads more input, keeping buf[off:]. It reports whether any byte was added.
func (s *scanner) fill() (bool, error) { return s.fillAtLeast(1) }

// fillAtLeast reads until want bytes were added, the buffer is full or the input ends, and
// reports whether any byte was added. A construct cut off by the end of the buffer is
// scanned again from its start once more input is there; asking for as many new bytes as
// the construct already has keeps that linear even when the reader trickles.
func (s *scanner) fillAtLeast(want int) (bool, error) {
	if s.eof {
		return false, nil
	}
	if s.off > 0 {
		s.countLines(s.base + int64(s.off))
		copy(s.buf, s.buf[s.off:s.n])
		s.n -= s.off
		s.base += int64(s.off)
		s.off = 0
	}
	if s.n == len(s.buf) {
		if len(s.buf) >= s.limit.MaxTagBytes {
			return false, s.errAt(0, "markup or text construct longer than %d bytes (Limits.MaxTagBytes)", s.limit.MaxTagBytes)
		}
		nb := make([]byte, min(2*len(s.buf), s.limit.MaxTagBytes+16))
		copy(nb, s.buf[:s.n])
		s.buf = nb
	}
	added, empty := 0, 0
	for added < want && s.n < len(s.buf) {
		m, err := s.r.Read(s.buf[s.n:])
		s.n += m
		added += m
		if err == io.EOF {
			s.eof = true
			break
		}
		if err != nil {
			return added > 0, fmt.Errorf("reading ADX: %w", err)
		}
		if m == 0 {
			if empty++; empty >= 100 {
				return added > 0, fmt.Errorf("reading ADX: %w", io.ErrNoProgress)
			}
		}
	}
	return added > 0, nil
}

// next reads the next token.
func (s *scanner) next() (tokKind, error) {
	if s.pendingEnd {
		s.pendingEnd = false
		s.t.attrs = s.t.attrs[:0]
		return kindEnd, nil
	}
	for {
		if s.off >= s.n {
			more, err := s.fill()
			if err != nil {
				return kindNone, err
			}
			if !more {
				return s.finish()
			}
		}
		if !s.started {
			if k, err := s.prolog(); err != nil {
				if err == errNeedMore {
					if err := s.needMore(); err != nil {
						return kindNone, err
					}
					continue
				}
				return kindNone, err
			} else if k {
				continue
			}
		}
		s.tokAt = s.base + int64(s.off)
		var (
			k   tokKind
			err error
		)
		if s.buf[s.off] == '<' {
			k, err = s.markup()
		} else {
			k, err = s.chars()
		}
		if err == errNeedMore {
			if err := s.needMore(); err != nil {
				return kindNone, err
			}
			continue
		}
		if err != nil {
			return kindNone, err
		}
		s.started = true
		if k != kindNone {
			return k, nil
		}
	}
}

// needMore reads more input for a construct that is cut off by the end of the buffer.
func (s *scanner) needMore() error {
	more, err := s.fillAtLeast(max(s.n-s.off, 1))
	if err != nil {
		return err
	}
	if !more {
		return s.errAt(s.n, "unexpected end of input inside %s", s.construct())
	}
	return nil
}

// construct names what starts at off, for messages.
func (s *scanner) construct() string {
	b := s.buf[s.off:s.n]
	switch {
	case bytes.HasPrefix(b, []byte("<!--")):
		return "a comment"
	case bytes.HasPrefix(b, []byte("<![CDATA[")):
		return "a CDATA section"
	case bytes.HasPrefix(b, []byte("<?")):
		return "a processing instruction"
	case bytes.HasPrefix(b, []byte("</")):
		return "an end tag"
	case bytes.HasPrefix(b, []byte("<")):
		return "a start tag"
	}
	return "character data"
}

// prolog handles a byte order mark at the very start. It reports whether it consumed one.
func (s *scanner) prolog() (bool, error) {
	if s.base != 0 || s.off != 0 {
		return false, nil
	}
	b := s.buf[:s.n]
	if len(b) < 3 && !s.eof && bytes.HasPrefix([]byte("\xEF\xBB\xBF"), b) {
		return false, errNeedMore
	}
	if len(b) >= 2 && (b[0] == 0xFE && b[1] == 0xFF || b[0] == 0xFF && b[1] == 0xFE) {
		return false, s.errAt(0, "UTF-16 input is not supported; send UTF-8")
	}
	if bytes.HasPrefix(b, []byte("\xEF\xBB\xBF")) {
		s.off = 3
		return true, nil
	}
	return false, nil
}

func (s *scanner) finish() (tokKind, error) {
	if len(s.stackEnds) > 0 {
		return kindNone, s.errAt(s.n, "unexpected end of input: element <%s> is not closed", s.top())
	}
	if !s.sawRoot {
		return kindNone, s.errAt(s.n, "no root element")
	}
	return kindEOF, nil
}

func (s *scanner) top() []byte {
	k := len(s.stackEnds)
	start := 0
	if k > 1 {
		start = s.stackEnds[k-2]
	}
	return s.stackBuf[start:s.stackEnds[k-1]]
}

// hasPrefix reports whether buf[i:] starts with p; errNeedMore when the buffer ends inside
// a prefix of p.
func (s *scanner) hasPrefix(i int, p string) (bool, error) {
	b := s.buf[i:s.n]
	if len(b) >= len(p) {
		return string(b[:len(p)]) == p, nil
	}
	if string(b) == p[:len(b)] && !s.eof {
		return false, errNeedMore
	}
	return false, nil
}

func (s *scanner) markup() (tokKind, error) {
	i := s.off
	if i+1 >= s.n {
		return kindNone, errNeedMore
	}
	switch s.buf[i+1] {
	case '/':
		return s.endTag()
	case '?':
		return kindNone, s.procInst()
	case '!':
		if ok, err := s.hasPrefix(i, "<!--"); err != nil || ok {
			if err != nil {
				return kindNone, err
			}
			return kindNone, s.comment()
		}
		if ok, err := s.hasPrefix(i, "<![CDATA["); err != nil || ok {
			if err != nil {
				return kindNone, err
			}
			return s.cdata()
		}
		if ok, err := s.hasPrefix(i, "<!DOCTYPE"); err != nil || ok {
			if err != nil {
				return kindNone, err
			}
			return kindNone, s.errAt(i, "document type declarations (DOCTYPE) are refused")
		}
		return kindNone, s.errAt(i, "unexpected markup declaration")
	}
	return s.startTag()
}

// qname scans a qualified name at i. It returns the end, the index of its colon (or -1).
func (s *scanner) qname(i int) (end, colon int, err error) {
	b := s.buf[:s.n]
	start := i
	colon = -1
	if i >= len(b) {
		return 0, 0, errNeedMore
	}
	if c := b[i]; c < utf8.RuneSelf {
		if charClass[c]&cNameStart == 0 {
			return 0, 0, s.errAt(i, "expected a name, found %s", describe(b[i:]))
		}
		i++
	} else {
		r, size := utf8.DecodeRune(b[i:])
		if !utf8.FullRune(b[i:]) && !s.eof {
			return 0, 0, errNeedMore
		}
		if !isNameStart(r) || r == utf8.RuneError && size == 1 {
			return 0, 0, s.errAt(i, "expected a name, found %s", describe(b[i:]))
		}
		i += size
	}
	for {
		for i < len(b) && charClass[b[i]]&cName != 0 {
			if b[i] == ':' {
				if colon >= 0 {
					return 0, 0, s.errAt(i, "name %q has more than one colon", b[start:i+1])
				}
				colon = i
			}
			i++
		}
		if i == len(b) {
			if s.eof {
				return 0, 0, s.errAt(i, "unexpected end of input in a name")
			}
			return 0, 0, errNeedMore
		}
		if b[i] < utf8.RuneSelf {
			break
		}
		if !utf8.FullRune(b[i:]) && !s.eof {
			return 0, 0, errNeedMore
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, 0, s.errAt(i, "invalid UTF-8")
		}
		if !isNameChar(r) {
			break
		}
		i += size
	}
	if colon >= 0 {
		local := b[colon+1 : i]
		if len(local) == 0 {
			return 0, 0, s.errAt(colon, "name %q ends with a colon", b[start:i])
		}
		ok := local[0] < utf8.RuneSelf && charClass[local[0]]&cNameStart != 0
		if local[0] >= utf8.RuneSelf {
			r, _ := utf8.DecodeRune(local)
			ok = isNameStart(r)
		}
		if !ok {
			return 0, 0, s.errAt(colon+1, "local part of %q does not start with a name character", b[start:i])
		}
	}
	return i, colon, nil
}

func describe(b []byte) string {
	if len(b) == 0 {
		return "end of input"
	}
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02X", b[0])
	}
	return fmt.Sprintf("%q", r)
}

func split(b []byte, start, end, colon int) (prefix, local []byte) {
	if colon < 0 {
		return nil, b[start:end]
	}
	return b[start:colon], b[colon+1 : end]
}

func (s *scanner) skipSpace(i int) int {
	b := s.buf[:s.n]
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func (s *scanner) startTag() (tokKind, error) {
	if s.rootDone {
		return kindNone, s.errAt(s.off, "element after the end of the root element")
	}
	if len(s.stackEnds) >= s.limit.MaxDepth {
		return kindNone, s.errAt(s.off, "elements nested deeper than %d (Limits.MaxDepth)", s.limit.MaxDepth)
	}
	b := s.buf[:s.n]
	nameStart := s.off + 1
	i, colon, err := s.qname(nameStart)
	if err != nil {
		return kindNone, err
	}
	nameEnd := i
	s.t.prefix, s.t.local = split(b, nameStart, nameEnd, colon)
	s.t.attrs = s.t.attrs[:0]
	s.t.text = nil
	s.scratch = s.scratch[:0]
	self := false
	for {
		j := s.skipSpace(i)
		if j >= len(b) {
			return kindNone, errNeedMore
		}
		if c := b[j]; c == '>' {
			i = j + 1
			break
		} else if c == '/' {
			if j+1 >= len(b) {
				return kindNone, errNeedMore
			}
			if b[j+1] != '>' {
				return kindNone, s.errAt(j+1, "expected '>' after '/' in a tag, found %s", describe(b[j+1:]))
			}
			i = j + 2
			self = true
			break
		}
		if j == i {
			return kindNone, s.errAt(j, "expected white space, '>' or '/>' after the name or attribute, found %s", describe(b[j:]))
		}
		if len(s.t.attrs) >= s.limit.MaxAttrs {
			return kindNone, s.errAt(j, "more than %d attributes on one element (Limits.MaxAttrs)", s.limit.MaxAttrs)
		}
		k, acolon, err := s.qname(j)
		if err != nil {
			return kindNone, err
		}
		a := xattr{raw: b[j:k]}
		a.prefix, a.local = split(b, j, k, acolon)
		k = s.skipSpace(k)
		if k >= len(b) {
			return kindNone, errNeedMore
		}
		if b[k] != '=' {
			return kindNone, s.errAt(k, "expected '=' after attribute %s, found %s", a.raw, describe(b[k:]))
		}
		k = s.skipSpace(k + 1)
		if k >= len(b) {
			return kindNone, errNeedMore
		}
		if q := b[k]; q != '"' && q != '\'' {
			return kindNone, s.errAt(k, "expected a quoted value for attribute %s, found %s", a.raw, describe(b[k:]))
		}
		if i, err = s.attrValue(&a, k); err != nil {
			return kindNone, err
		}
		s.t.attrs = append(s.t.attrs, a)
	}
	attrs := s.t.attrs
	for x := range attrs {
		a := &attrs[x]
		if a.dec {
			a.value = s.scratch[a.vs:a.ve:a.ve]
		}
		for y := range x {
			if bytes.Equal(attrs[y].raw, a.raw) {
				line, col := s.posAt(s.tokAt)
				return kindNone, &xmlError{line: line, col: col, msg: fmt.Sprintf("attribute %s appears twice", a.raw)}
			}
		}
	}
	s.sawRoot = true
	if self {
		s.pendingEnd = true
		if len(s.stackEnds) == 0 {
			s.rootDone = true
		}
	} else {
		s.stackBuf = append(s.stackBuf, b[nameStart:nameEnd]...)
		s.stackEnds = append(s.stackEnds, len(s.stackBuf))
	}
	s.off = i
	return kindStart, nil
}

// attrValue scans the quoted value at q, decoding it into scratch when it holds
// references or white space to normalise. It returns the index after the closing quote.
func (s *scanner) attrValue(a *xattr, q int) (int, error) {
	b := s.buf[:s.n]
	quote := b[q]
	start := q + 1
	i := start
	dec := false
	for {
		for i < len(b) && charClass[b[i]]&cAttr != 0 {
			i++
		}
		if i-start > s.limit.MaxAttrBytes {
			return 0, s.errAt(start, "value of attribute %s is longer than %d bytes (Limits.MaxAttrBytes)", a.raw, s.limit.MaxAttrBytes)
		}
		if i >= len(b) {
			return 0, errNeedMore
		}
		c := b[i]
		switch {
		case c == quote:
			a.value = b[start:i:i]
			if dec {
				a.dec = true
				a.vs = len(s.scratch)
				s.scratch = appendDecoded(s.scratch, b[start:i], true)
				a.ve = len(s.scratch)
			}
			return i + 1, nil
		case c == '"' || c == '\'':
			i++
		case c == '<':
			return 0, s.errAt(i, "'<' in the value of attribute %s (write &lt;)", a.raw)
		case c == '&':
			_, size, err := s.reference(i)
			if err != nil {
				return 0, err
			}
			i += size
			dec = true
		case c == '\t' || c == '\n' || c == '\r':
			i++
			dec = true
		case c >= utf8.RuneSelf:
			size, err := s.validRune(i)
			if err != nil {
				return 0, err
			}
			i += size
		default:
			return 0, s.errAt(i, "character 0x%02X is not allowed in XML", c)
		}
	}
}

// validRune checks the UTF-8 sequence at i and returns its length.
func (s *scanner) validRune(i int) (int, error) {
	b := s.buf[i:s.n]
	if !utf8.FullRune(b) && !s.eof {
		return 0, errNeedMore
	}
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size == 1 {
		return 0, s.errAt(i, "invalid UTF-8")
	}
	if !isChar(r) {
		return 0, s.errAt(i, "character U+%04X is not allowed in XML", r)
	}
	return size, nil
}

// reference reads the entity or character reference at i ('&').
func (s *scanner) reference(i int) (rune, int, error) {
	b := s.buf[i:s.n]
	end := bytes.IndexByte(b[:min(len(b), 16)], ';')
	if end < 0 {
		if len(b) < 16 && !s.eof {
			return 0, 0, errNeedMore
		}
		return 0, 0, s.errAt(i, "'&' that does not start a reference (write &amp;)")
	}
	r, ok := decodeRef(b[1:end])
	if !ok {
		name := b[1:end]
		if len(name) > 0 && name[0] != '#' {
			return 0, 0, s.errAt(i, "entity &%s; is not defined (only &lt; &gt; &amp; &apos; &quot; are)", name)
		}
		return 0, 0, s.errAt(i, "invalid character reference &%s;", name)
	}
	return r, end + 1, nil
}

// decodeRef resolves the name of a reference (between '&' and ';').
func decodeRef(name []byte) (rune, bool) {
	switch string(name) {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "apos":
		return '\'', true
	case "quot":
		return '"', true
	}
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	digits, base := name[1:], rune(10)
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, false
	}
	var r rune
	for _, c := range digits {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + d
	}
	if !isChar(r) || r >= 0xD800 && r <= 0xDFFF {
		return 0, false
	}
	return r, true
}

// appendDecoded appends validated raw text or attribute value b, resolving references and
// normalising line ends ("\r\n" and "\r" become "\n"); in attribute values every literal
// tab, line end and newline becomes a space.
func appendDecoded(dst, b []byte, attr bool) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		switch c {
		case '&':
			end := bytes.IndexByte(b[i:], ';')
			r, _ := decodeRef(b[i+1 : i+end])
			dst = utf8.AppendRune(dst, r)
			i += end + 1
			continue
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			c = '\n'
		}
		if attr && (c == '\n' || c == '\t') {
			c = ' '
		}
		dst = append(dst, c)
		i++
	}
	return dst
}

func (s *scanner) endTag() (tokKind, error) {
	b := s.buf[:s.n]
	nameStart := s.off + 2
	i, colon, err := s.qname(nameStart)
	if err != nil {
		return kindNone, err
	}
	nameEnd := i
	i = s.skipSpace(i)
	if i >= len(b) {
		return kindNone, errNeedMore
	}
	if b[i] != '>' {
		return kindNone, s.errAt(i, "expected '>' to end the end tag, found %s", describe(b[i:]))
	}
	name := b[nameStart:nameEnd]
	if len(s.stackEnds) == 0 {
		return kindNone, s.errAt(s.off, "end tag </%s> without a start tag", name)
	}
	if top := s.top(); !bytes.Equal(top, name) {
		return kindNone, s.errAt(s.off, "end tag </%s> does not match start tag <%s>", name, top)
	}
	s.t.prefix, s.t.local = split(b, nameStart, nameEnd, colon)
	s.t.attrs = s.t.attrs[:0]
	s.stackEnds = s.stackEnds[:len(s.stackEnds)-1]
	if k := len(s.stackEnds); k > 0 {
		s.stackBuf = s.stackBuf[:s.stackEnds[k-1]]
	} else {
		s.stackBuf = s.stackBuf[:0]
		s.rootDone = true
	}
	s.off = i + 1
	return kindEnd, nil
}

// validText checks that b holds only XML characters and returns the index of the first
// that is not, or -1.
func validText(b []byte) int {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || !isChar(r) {
			return i
		}
		i += size
	}
	return -1
}

// delimited finds the terminator of a construct that starts at off and whose body starts
// at body; the body must hold only XML characters.
func (s *scanner) delimited(body int, term string, what string) (int, error) {
	end := bytes.Index(s.buf[body:s.n], []byte(term))
	if end < 0 {
		return 0, errNeedMore
	}
	end += body
	if bad := validText(s.buf[body:end]); bad >= 0 {
		return 0, s.errAt(body+bad, "%s in %s is not an XML character", describe(s.buf[body+bad:end]), what)
	}
	return end, nil
}

func (s *scanner) comment() error {
	body := s.off + 4
	end, err := s.delimited(body, "-->", "a comment")
	if err != nil {
		return err
	}
	c := s.buf[body:end]
	if k := bytes.Index(c, []byte("--")); k >= 0 {
		return s.errAt(body+k, "\"--\" inside a comment")
	}
	if len(c) > 0 && c[len(c)-1] == '-' {
		return s.errAt(end-1, "a comment may not end with \"--->\"")
	}
	s.off = end + 3
	return nil
}

func (s *scanner) cdata() (tokKind, error) {
	body := s.off + 9
	if len(s.stackEnds) == 0 {
		return kindNone, s.errAt(s.off, "CDATA section outside the root element")
	}
	end, err := s.delimited(body, "]]>", "a CDATA section")
	if err != nil {
		return kindNone, err
	}
	raw := s.buf[body:end]
	s.off = end + 3
	if bytes.IndexByte(raw, '\r') >= 0 {
		s.scratch = s.scratch[:0]
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c == '\r' {
				if i+1 < len(raw) && raw[i+1] == '\n' {
					i++
				}
				c = '\n'
			}
			s.scratch = append(s.scratch, c)
		}
		raw = s.scratch
	}
	if len(raw) == 0 {
		return kindNone, nil
	}
	s.t.text = raw
	return kindText, nil
}

func (s *scanner) procInst() error {
	start := s.off
	tEnd, colon, err := s.qname(start + 2)
	if err != nil {
		return err
	}
	if colon >= 0 {
		return s.errAt(start+2, "processing instruction target %q contains a colon", s.buf[start+2:tEnd])
	}
	target := s.buf[start+2 : tEnd]
	end, err := s.delimited(tEnd, "?>", "a processing instruction")
	if err != nil {
		return err
	}
	body := s.buf[tEnd:end]
	if len(body) > 0 && !isSpace(body[0]) {
		return s.errAt(tEnd, "expected white space after the processing instruction target")
	}
	if len(target) == 3 && (target[0]|0x20) == 'x' && (target[1]|0x20) == 'm' && (target[2]|0x20) == 'l' {
		if string(target) != "xml" || s.started {
			return s.errAt(start, "the XML declaration may only appear at the very start of the document")
		}
		if err := s.declaration(tEnd, end); err != nil {
			return err
		}
	}
	s.off = end + 2
	return nil
}

// declaration checks the pseudo-attributes of the XML declaration in buf[i:end].
func (s *scanner) declaration(i, end int) error {
	b := s.buf[:end]
	names := []string{"version", "encoding", "standalone"}
	seen := 0
	for {
		j := i
		for j < end && isSpace(b[j]) {
			j++
		}
		if j == end {
			break
		}
		if j == i {
			return s.errAt(j, "expected white space in the XML declaration")
		}
		k := j
		for k < end && charClass[b[k]]&cName != 0 {
			k++
		}
		name := string(b[j:k])
		idx := -1
		for x := seen; x < len(names); x++ {
			if names[x] == name {
				idx = x
				break
			}
		}
		if idx < 0 || seen == 0 && idx != 0 {
			return s.errAt(j, "unexpected %q in the XML declaration", name)
		}
		seen = idx + 1
		k = s.skipSpaceTo(k, end)
		if k >= end || b[k] != '=' {
			return s.errAt(k, "expected '=' in the XML declaration")
		}
		k = s.skipSpaceTo(k+1, end)
		if k >= end || b[k] != '"' && b[k] != '\'' {
			return s.errAt(k, "expected a quoted value in the XML declaration")
		}
		q := bytes.IndexByte(b[k+1:end], b[k])
		if q < 0 {
			return s.errAt(k, "unterminated value in the XML declaration")
		}
		val := string(b[k+1 : k+1+q])
		switch name {
		case "version":
			if val != "1.0" {
				return s.errAt(k+1, "XML version %q is not supported; only 1.0 is", val)
			}
		case "encoding":
			if !equalFoldASCII(val, "utf-8") {
				return s.errAt(k+1, "encoding %q is not supported; send UTF-8", val)
			}
		case "standalone":
			if val != "yes" && val != "no" {
				return s.errAt(k+1, "standalone must be \"yes\" or \"no\", not %q", val)
			}
		}
		i = k + 2 + q
	}
	if seen == 0 {
		return s.errAt(i, "the XML declaration must give the version")
	}
	return nil
}

func (s *scanner) skipSpaceTo(i, end int) int {
	for i < end && isSpace(s.buf[i]) {
		i++
	}
	return i
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// chars scans character data up to the next '<', or as much of it as is buffered.
func (s *scanner) chars() (tokKind, error) {
	b := s.buf[:s.n]
	start := s.off
	i := start
	dec := false
	short := false // the buffer ends inside a character or reference
scan:
	for {
		for i < len(b) && charClass[b[i]]&cText != 0 {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '<':
			break scan
		case c == '&':
			_, size, err := s.reference(i)
			if err == errNeedMore {
				short = true
				break scan
			}
			if err != nil {
				return kindNone, err
			}
			i += size
			dec = true
		case c == '\r':
			if i+1 >= len(b) && !s.eof {
				short = true
				break scan
			}
			i++
			dec = true
		case c == ']':
			if i+2 >= len(b) && !s.eof {
				short = true
				break scan
			}
			if i+2 < len(b) && b[i+1] == ']' && b[i+2] == '>' {
				return kindNone, s.errAt(i, "\"]]>\" in character data")
			}
			i++
		case c >= utf8.RuneSelf:
			size, err := s.validRune(i)
			if err == errNeedMore {
				short = true
				break scan
			}
			if err != nil {
				return kindNone, err
			}
			i += size
		default:
			return kindNone, s.errAt(i, "character 0x%02X is not allowed in XML", c)
		}
	}
	if i == start {
		if short || i >= len(b) {
			return kindNone, errNeedMore
		}
	}
	raw := b[start:i]
	s.off = i
	if len(s.stackEnds) == 0 {
		for x, c := range raw {
			if !isSpace(c) {
				return kindNone, s.errAt(start+x, "text outside the root element")
			}
		}
		return kindNone, nil
	}
	if dec {
		s.scratch = appendDecoded(s.scratch[:0], raw, false)
		raw = s.scratch
	}
	s.t.text = raw
	return kindText, nil
}
