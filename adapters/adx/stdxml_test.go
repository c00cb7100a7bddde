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

// TestScannerAgreesWithEncodingXML runs small edge cases of XML through both lexers.
func TestScannerAgreesWithEncodingXML(t *testing.T) {
	g := func(body string) string {
		return `<adx xmlns="urn:ihe:qrph:adx:2015"><group orgUnit="O" period="2024-01-01/P1M">` + body + `</group></adx>`
	}
	accept := []string{
		g(`<dataValue dataElement = 'D.x-1_2' value="a>b'c"/>`),
		g(`<dataValue dataElement="D" value="1"><annotation>&#65;&#x42;&lt;&gt;&amp;&apos;&quot;]]&gt;]</annotation></dataValue>`),
		g(`<dataValue dataElement="D" value="1"><annotation><![CDATA[]]]]><![CDATA[>&<]]></annotation></dataValue>`),
		g(`<!-- c --><?pi data?><dataValue dataElement="D" value="1"><annotation/></dataValue >`),
		g(`<dataValue dataElement="D" value="1"><annotation><!--x-->a<?p?>b</annotation></dataValue>`),
		g(`<dataValue dataElement="D" value="1"><annotation></annotation></dataValue>`),
		`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + g(`<dataValue dataElement="D" value="&#x10FFFF;"/>`),
	}
	for i, in := range accept {
		t.Run(fmt.Sprint("accept ", i), func(t *testing.T) {
			a := decodeAll(t, scannerDecode, []byte(in), Options{})
			b := decodeAll(t, decodeStd, []byte(in), Options{})
			if d := diffValues(a.values, b.values); d != "" {
				t.Fatal(d)
			}
		})
	}
	refuse := []string{
		`<adx><a></b></adx>`, `<adx>&foo;</adx>`, `<adx>`, `<adx x='1' x='2'/>`, `<<adx/>`, `< adx/>`,
		`</adx>`, `<adx></adx>x`, `<adx>]]></adx>`, `<adx a='<'/>`, `<adx a=b/>`, `<!DOCTYPE x><adx/>`,
		`<adx>&#xD800;</adx>`, `<adx>&#0;</adx>`, "<adx>\x00</adx>", "<adx>\x0c</adx>", `<adx><!-- -- --></adx>`,
		`<adx a="&#x0;"/>`, `<adx>&#xFFFE;</adx>`, `<adx/><adx/>`, `x<adx/>`, `<adx/ >`, `<adx a="1"b="2"/>`,
		`<?xml version="1.1"?><adx/>`, `<?xml version="1.0" encoding="latin1"?><adx/>`, `<adx><![CDATA[x]]</adx>`,
		`<adx>&amp</adx>`, `<adx>&#x;</adx>`, `<adx>&#12a;</adx>`, `<1adx/>`, `<adx -a="1"/>`,
	}
	for i, in := range refuse {
		t.Run(fmt.Sprint("refuse ", i), func(t *testing.T) {
			if err := Decode(strings.NewReader(in), &recorder{}, Options{}); err == nil {
				t.Errorf("scanner accepts %q", in)
			}
			if err := decodeStd(strings.NewReader(in), &recorder{}, Options{}); err == nil {
				t.Logf("encoding/xml accepts %q", in)
			}
		})
	}
}
