package adx

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// stdLexer is the ADX lexer over encoding/xml's streaming RawToken, with the checks that
// RawToken leaves out (tag matching, duplicate attributes, one root, no text outside it,
// no DTD, the limits on depth and attributes). It is the reference the scanner is fuzzed
// against and the baseline of BenchmarkDecode.
type stdLexer struct {
	d         *xml.Decoder
	limit     Limits
	t         token
	stack     []string
	sawRoot   bool
	rootDone  bool
	line, col int
}

func newStdLexer(r io.Reader, limit Limits) *stdLexer {
	d := xml.NewDecoder(r)
	d.Strict = true
	return &stdLexer{d: d, limit: limit}
}

// decodeStd is Decode over encoding/xml.
func decodeStd(r io.Reader, sink transform.Sink, opts Options) error {
	opts.Limits = opts.Limits.withDefaults()
	return decode(newStdLexer(r, opts.Limits), sink, opts)
}

func (s *stdLexer) tok() *token     { return &s.t }
func (s *stdLexer) pos() (int, int) { return s.line, s.col }

func (s *stdLexer) fail(format string, args ...any) error {
	return &xmlError{line: s.line, col: s.col, msg: fmt.Sprintf(format, args...)}
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func (s *stdLexer) next() (tokKind, error) {
	for {
		s.line, s.col = s.d.InputPos()
		tk, err := s.d.RawToken()
		if err == io.EOF {
			if len(s.stack) > 0 {
				return kindNone, s.fail("unexpected end of input: element <%s> is not closed", s.stack[len(s.stack)-1])
			}
			if !s.sawRoot {
				return kindNone, s.fail("no root element")
			}
			return kindEOF, nil
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return kindNone, s.fail("%s", se.Msg)
			}
			return kindNone, fmt.Errorf("reading ADX: %w", err)
		}
		switch t := tk.(type) {
		case xml.StartElement:
			if s.rootDone {
				return kindNone, s.fail("element after the end of the root element")
			}
			if len(s.stack) >= s.limit.MaxDepth {
				return kindNone, s.fail("too deep")
			}
			if len(t.Attr) > s.limit.MaxAttrs {
				return kindNone, s.fail("too many attributes")
			}
			s.sawRoot = true
			s.t.prefix, s.t.local = bytesOrNil(t.Name.Space), []byte(t.Name.Local)
			s.t.attrs = s.t.attrs[:0]
			for i, a := range t.Attr {
				raw := a.Name.Local
				if a.Name.Space != "" {
					raw = a.Name.Space + ":" + raw
				}
				for _, b := range t.Attr[:i] {
					if b.Name == a.Name {
						return kindNone, s.fail("attribute %s appears twice", raw)
					}
				}
				if len(a.Value) > s.limit.MaxAttrBytes {
					return kindNone, s.fail("attribute too long")
				}
				s.t.attrs = append(s.t.attrs, xattr{raw: []byte(raw), prefix: bytesOrNil(a.Name.Space),
					local: []byte(a.Name.Local), value: []byte(a.Value)})
			}
			name := t.Name.Local
			if t.Name.Space != "" {
				name = t.Name.Space + ":" + name
			}
			s.stack = append(s.stack, name)
			return kindStart, nil
		case xml.EndElement:
			name := t.Name.Local
			if t.Name.Space != "" {
				name = t.Name.Space + ":" + name
			}
			if len(s.stack) == 0 || s.stack[len(s.stack)-1] != name {
				return kindNone, s.fail("end tag </%s> does not match", name)
			}
			s.stack = s.stack[:len(s.stack)-1]
			if len(s.stack) == 0 {
				s.rootDone = true
			}
			s.t.prefix, s.t.local = bytesOrNil(t.Name.Space), []byte(t.Name.Local)
			s.t.attrs = s.t.attrs[:0]
			return kindEnd, nil
		case xml.CharData:
			if len(s.stack) == 0 {
				if strings.TrimLeft(string(t), " \t\r\n") != "" {
					return kindNone, s.fail("text outside the root element")
				}
				continue
			}
			s.t.text = t
			return kindText, nil
		case xml.Directive:
			return kindNone, s.fail("document type declarations (DOCTYPE) are refused")
		case xml.Comment, xml.ProcInst:
			continue
		}
	}
}

func TestStdLexerAgreesOnFixtures(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			want := decodeAll(t, scannerDecode, f.data, Options{})
			got := decodeAll(t, decodeStd, f.data, Options{})
			if diff := diffValues(want.values, got.values); diff != "" {
				t.Fatalf("encoding/xml reference disagrees: %s", diff)
			}
		})
	}
}
