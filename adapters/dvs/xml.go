package dvs

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tally-hmis/tally/transform"
)

// Namespaces of the XML formats.
const (
	NamespaceDXF2 = "http://dhis2.org/schema/dxf/2.0"
	NamespaceADX  = "urn:ihe:qrph:adx:2015"
)

// DecodeXML reads a DHIS2 data value set in XML (DXF2) and pushes it into sink: one Group
// for the root <dataValueSet>, whose attributes form the header, then one Value per
// <dataValue> element, read from its attributes as DHIS2 does. Like DHIS2's reader, it
// finds <dataValue> elements at any depth under the root (so a <dataValues> wrapper, as
// Jackson writes by default, works), and ignores other elements, text and the children of
// a <dataValue> (DHIS2 reads attributes only). The root may be in the DXF2 namespace or in
// none. An ADX message is refused with a pointer to its own content type.
//
// The document must be well formed. DTDs and entities beyond XML's five predefined ones are
// refused, nesting is bounded by Options.MaxDepth and any single token (an attribute value,
// a comment, text) by Options.MaxTokenBytes. Problems are reported as
// *transform.InputError with line, column and an XPath such as
// /dataValueSet/dataValue[4]/@period (XPath counts from 1; the error's Index from 0).
func DecodeXML(r io.Reader, sink transform.Sink, opts Options) error {
	br, err := skipBOM(r)
	if err != nil {
		return fmt.Errorf("dvs: reading XML: %w", err)
	}
	d := xmlDecoder{em: emitter{sink: sink, opts: opts}, maxDepth: opts.maxDepth()}
	d.lr = limitReader{r: br, max: int64(opts.maxToken())}
	d.dec = xml.NewDecoder(&d.lr)
	d.dec.Strict = true
	d.loc.d = &d
	return d.decode()
}

// limitReader fails once the token (or CSV record) being read grows beyond max bytes, so
// that a huge attribute or field is refused before it is buffered: start is the offset
// where the consumer's current token began, read how much it has been given.
type limitReader struct {
	r     io.Reader
	read  int64
	start int64
	max   int64
	err   error // the underlying reader's error other than io.EOF
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read-l.start > l.max+int64(len(p)) {
		return 0, errTokenTooLong
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

type xmlDecoder struct {
	lr       limitReader
	dec      *xml.Decoder
	em       emitter
	maxDepth int
	depth    int
	stack    []string // names of the open elements
	rootDone bool
	count    int
	// position of the token being handled
	line, col int
	v         transform.DataValue
	loc       xmlValueLoc
}

type xmlValueLoc struct{ d *xmlDecoder }

func (l *xmlValueLoc) Pos() transform.Pos {
	return transform.Pos{Line: l.d.line, Column: l.d.col, Path: l.d.valuePath("")}
}

// valuePath names the data value being read: its elements from the root, the bracket
// holding its ordinal among all data values (1-based; plain XPath when the values sit
// directly under the root), and the attribute, if any.
func (d *xmlDecoder) valuePath(attr string) string {
	var b strings.Builder
	for _, name := range d.stack {
		b.WriteByte('/')
		b.WriteString(name)
	}
	b.WriteByte('[')
	b.WriteString(strconv.Itoa(d.count))
	b.WriteByte(']')
	if attr != "" {
		b.WriteString("/@")
		b.WriteString(attr)
	}
	return b.String()
}

func (d *xmlDecoder) errAt(path string, index int, field, value, expected string) *transform.InputError {
	return &transform.InputError{Pos: transform.Pos{Line: d.line, Column: d.col, Path: path}, Index: index,
		Field: field, Value: value, Expected: expected}
}

func (d *xmlDecoder) decode() error {
	for {
		d.lr.start = d.dec.InputOffset()
		d.line, d.col = d.dec.InputPos()
		tok, err := d.dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return d.syntaxErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			d.depth++
			if d.depth > d.maxDepth {
				return d.errAt("", -1, "", t.Name.Local, fmt.Sprintf("at most %d levels of nested elements", d.maxDepth))
			}
			d.stack = append(d.stack, t.Name.Local)
			switch {
			case d.depth == 1:
				if err := d.root(&t); err != nil {
					return err
				}
			case t.Name.Local == "dataValue" && (t.Name.Space == NamespaceDXF2 || t.Name.Space == ""):
				// at any depth, as DHIS2 reads them: a <dataValues> wrapper works too
				if err := d.value(&t); err != nil {
					return err
				}
			}
		case xml.EndElement:
			d.depth--
			d.stack = d.stack[:d.depth]
			if d.depth == 0 {
				d.rootDone = true
			}
		case xml.Directive:
			return d.errAt("", -1, "", "<!"+firstWord(t)+">", "no DTD or other declaration: Tally does not read them")
		case xml.CharData:
			if d.depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return d.errAt("", -1, "", string(bytes.TrimSpace(t)), "only the <dataValueSet> element at the top level")
			}
		}
	}
	if !d.rootDone {
		if d.depth > 0 {
			return d.errAt("", -1, "", "", "the end of the elements that are open, found the end of the input")
		}
		return d.errAt("", -1, "", "", "a <dataValueSet> element: the body is empty")
	}
	return nil
}

func firstWord(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		s = s[:i]
	}
	return s
}

func (d *xmlDecoder) syntaxErr(err error) error {
	if errors.Is(err, errTokenTooLong) {
		return d.errAt("", -1, "", "", fmt.Sprintf("tokens (attribute values, text, comments) shorter than %d bytes", d.lr.max))
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		e := &transform.InputError{Pos: transform.Pos{Line: d.line, Column: d.col}, Index: -1,
			Expected: "well-formed XML: " + se.Msg}
		if se.Line > d.line { // encoding/xml knows the line of the error, not its column
			e.Line, e.Column = se.Line, 0
		}
		return e
	}
	if d.lr.err != nil && errors.Is(err, d.lr.err) {
		return fmt.Errorf("dvs: reading XML: %w", err)
	}
	// anything else encoding/xml refuses is the document's fault, e.g. a declared
	// encoding other than UTF-8
	return &transform.InputError{Pos: transform.Pos{Line: d.line, Column: d.col}, Index: -1,
		Expected: "well-formed UTF-8 XML: " + strings.TrimPrefix(err.Error(), "xml: ")}
}

func (d *xmlDecoder) root(t *xml.StartElement) error {
	if d.rootDone {
		return d.errAt("", -1, "", "<"+t.Name.Local+">", "a single <dataValueSet> root element")
	}
	if t.Name.Space == NamespaceADX || (t.Name.Local == "adx" && t.Name.Space == "") {
		return d.errAt("/"+t.Name.Local, -1, "", "<adx>", "a DHIS2 <dataValueSet>: this is an ADX message, send it as application/adx+xml")
	}
	if t.Name.Local != "dataValueSet" || (t.Name.Space != NamespaceDXF2 && t.Name.Space != "") {
		return d.errAt("/"+t.Name.Local, -1, "", qualified(t.Name), fmt.Sprintf("a <dataValueSet> root element in namespace %s", NamespaceDXF2))
	}
	h := &d.em.hdr
	for _, a := range t.Attr {
		if a.Name.Space != "" {
			continue // xmlns and prefixed attributes such as xsi:schemaLocation
		}
		name := a.Name.Local
		switch name {
		case "dataSet":
			h.DataSet = a.Value
		case "completeDate":
			h.CompleteDate = a.Value
		case "period":
			h.Period = a.Value
		case "orgUnit":
			h.OrgUnit = a.Value
		case "attributeOptionCombo":
			h.AttributeOptionCombo = a.Value
		case "attributeCategoryOptions":
			h.AttributeCategoryOptions = splitOptions(a.Value)
		case "dryRun":
			b, ok := parseBool(a.Value)
			if !ok {
				return d.errAt("/dataValueSet/@"+name, -1, name, a.Value, boolExpected)
			}
			if a.Value != "" {
				h.DryRun = &b
			}
		case "importStrategy", "strategy":
			st, err := transform.ParseImportStrategy(a.Value)
			if err != nil {
				return d.errAt("/dataValueSet/@"+name, -1, name, a.Value, strategyExpected)
			}
			h.Strategy = string(st)
		default:
			if isSchemeField(name) {
				if err := setScheme(&h.Schemes, name, a.Value); err != nil {
					return d.errAt("/dataValueSet/@"+name, -1, name, a.Value, "an id scheme: UID, CODE, NAME or ATTRIBUTE:<uid>")
				}
			}
		}
	}
	return d.em.group()
}

func qualified(n xml.Name) string {
	if n.Space == "" {
		return "<" + n.Local + ">"
	}
	return "<" + n.Local + " xmlns=\"" + n.Space + "\">"
}

func (d *xmlDecoder) value(t *xml.StartElement) error {
	v := &d.v
	*v = transform.DataValue{Index: d.count}
	d.count++
	for _, a := range t.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "dataElement":
			v.DataElement = a.Value
		case "period":
			v.Period = a.Value
		case "orgUnit":
			v.OrgUnit = a.Value
		case "categoryOptionCombo":
			v.CategoryOptionCombo = a.Value
		case "attributeOptionCombo":
			v.AttributeOptionCombo = a.Value
		case "value":
			v.Value = a.Value
		case "comment":
			v.Comment = a.Value
		case "storedBy":
			v.StoredBy = a.Value
		case "followup", "followUp", "deleted":
			b, ok := parseBool(a.Value)
			if !ok {
				// DHIS2 reads anything but "true" as false; Tally refuses the value alone
				return d.em.reject(d.errAt(d.valuePath(a.Name.Local), v.Index, a.Name.Local, a.Value, boolExpected), &d.loc)
			}
			if a.Name.Local == "deleted" {
				v.Deleted = b
			} else {
				v.FollowUp = b
			}
		case "attributeCategoryOptions":
			for _, o := range splitOptions(a.Value) {
				v.Attributes = append(v.Attributes, transform.CategoryOption{Option: o})
			}
		}
	}
	if v.AttributeOptionCombo != "" {
		v.Attributes = nil
	}
	return d.em.value(v, &d.loc)
}

// skipBOM returns a reader of r without a leading UTF-8 byte order mark.
func skipBOM(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, err := br.Peek(3)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if string(head) == utf8BOM {
		_, _ = br.Discard(3)
	}
	return br, nil
}
