package adx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

const head = `<adx xmlns="urn:ihe:qrph:adx:2015">` + "\n"

// doc wraps groups in an ADX root; line 1 is the root tag.
func doc(body string) string { return head + body + "\n</adx>" }

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts Options
		want []transform.DataValue
	}{
		{
			name: "kalima monthly with categories and attribute category",
			in: doc(`<group orgUnit="KL_N_F1" period="2024-01-01/P1M" dataSet="MAL_MONTHLY" FUNDING="GOV">
  <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="LT1" value="3"/>
  <dataValue dataElement="MAL_CONFIRMED" AGE="1TO4" SEX="M" value="4"/>
  <dataValue dataElement="MAL_TREATED" value="7"/>
</group>`),
			want: []transform.DataValue{
				{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX", "F", "AGE", "LT1"),
					Attributes: cats("FUNDING", "GOV"), Value: "3"},
				{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("AGE", "1TO4", "SEX", "M"),
					Attributes: cats("FUNDING", "GOV"), Value: "4"},
				{DataElement: "MAL_TREATED", Period: "202401", OrgUnit: "KL_N_F1", Attributes: cats("FUNDING", "GOV"), Value: "7"},
			},
		},
		{
			name: "explicit combos win over category attributes",
			in: doc(`<group orgUnit="OU" period="2024-03-15/P1M" attributeOptionCombo="NGO" FUNDING="GOV">
<dataValue dataElement="DE" categoryOptionCombo="F_LT1" SEX="M" value="1"/></group>`),
			want: []transform.DataValue{{DataElement: "DE", Period: "202403", OrgUnit: "OU",
				CategoryOptionCombo: "F_LT1", AttributeOptionCombo: "NGO", Value: "1"}},
		},
		{
			name: "comment, followup, deleted, storedBy; created and lastUpdated ignored",
			in: doc(`<group orgUnit="OU" period="2024-01-01/P7D">
<dataValue dataElement="DE" value="" deleted="TRUE" followup="false" storedBy="me" comment="c" created="x" lastUpdated="y"/>
<dataValue dataElement="DE" value="2" followup="true"><annotation>note</annotation></dataValue>
<dataValue dataElement="DE" value="2" comment="own"><annotation>ignored</annotation></dataValue></group>`),
			want: []transform.DataValue{
				{DataElement: "DE", Period: "2024W1", OrgUnit: "OU", Deleted: true, StoredBy: "me", Comment: "c"},
				{DataElement: "DE", Period: "2024W1", OrgUnit: "OU", Value: "2", FollowUp: true, Comment: "note"},
				{DataElement: "DE", Period: "2024W1", OrgUnit: "OU", Value: "2", Comment: "own"},
			},
		},
		{
			name: "group-level value attributes apply to each value",
			in: doc(`<group orgUnit="OU" period="2024-01-01/P1Y" comment="g" followup="true" categoryOptionCombo="C">
<dataValue dataElement="A" value="1"/><dataValue dataElement="B" value="2" comment="v" categoryOptionCombo="D"/></group>`),
			want: []transform.DataValue{
				{DataElement: "A", Period: "2024", OrgUnit: "OU", Value: "1", Comment: "g", FollowUp: true, CategoryOptionCombo: "C"},
				{DataElement: "B", Period: "2024", OrgUnit: "OU", Value: "2", Comment: "v", FollowUp: true, CategoryOptionCombo: "D"},
			},
		},
		{
			name: "text data element takes the annotation",
			in: doc(`<group orgUnit="OU" period="2024-01-01/P1M">
<dataValue dataElement="MAL_REMARKS" value="0" comment="why"><annotation>stock-out &amp; <![CDATA[<rain>]]></annotation></dataValue></group>`),
			opts: Options{IsText: isText("MAL_REMARKS")},
			want: []transform.DataValue{{DataElement: "MAL_REMARKS", Period: "202401", OrgUnit: "OU",
				Value: "stock-out & <rain>", Comment: "why"}},
		},
		{
			name: "2.43 annotation replaces every value",
			in: doc(`<group orgUnit="OU" period="2024-01-01/P1M">
<dataValue dataElement="N" value="1"><annotation>5</annotation></dataValue><dataValue dataElement="M" value="1"/></group>`),
			opts: Options{AnnotationIsValue: true},
			want: []transform.DataValue{
				{DataElement: "N", Period: "202401", OrgUnit: "OU", Value: "5"},
				{DataElement: "M", Period: "202401", OrgUnit: "OU", Value: "1"},
			},
		},
		{
			name: "no namespace, prefixes, BOM, declaration, comments, PIs, CRLF, references",
			in: "\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8' standalone='yes'?>\r\n<!-- c --><?pi x?>" +
				`<x:adx xmlns:x="urn:ihe:qrph:adx:2015" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="a b">` +
				"\r\n<x:group orgUnit='O&#x55;' period=\"2024-01-01/P3M\" xml:lang=\"en\" xsi:type=\"t\">" +
				"<ext:foo xmlns:ext=\"urn:other\"><x:dataValue dataElement='skipped' value='1'/></ext:foo>" +
				"<x:dataValue dataElement=\"D&amp;E\" value=\"a&#9;b\nc\" SEX=\"&quot;F&apos;\"/></x:group></x:adx>\r\n<!-- after -->\n",
			want: []transform.DataValue{{DataElement: "D&E", Period: "2024Q1", OrgUnit: "OU",
				Categories: cats("SEX", `"F'`), Value: "a\tb c"}},
		},
		{
			name: "elements inside a dataValue other than annotation are skipped",
			in: doc(`<group orgUnit="OU" period="2024-01-01/P1M"><dataValue dataElement="DE" value="1">
<created>1987</created><lastUpdated><deep>x</deep></lastUpdated></dataValue></group>`),
			want: []transform.DataValue{{DataElement: "DE", Period: "202401", OrgUnit: "OU", Value: "1"}},
		},
		{name: "empty message", in: `<adx xmlns="urn:ihe:qrph:adx:2015"></adx>`},
		{name: "empty root element", in: `<adx xmlns="urn:ihe:qrph:adx:2015"/>`},
		{name: "empty group", in: doc(`<group orgUnit="OU" period="2024-01-01/P1M"/>`)},
	}
	for _, tt := range tests {
		for _, impl := range []struct {
			name string
			fn   decodeFunc
		}{{"scanner", scannerDecode}, {"encoding-xml", decodeStd}} {
			t.Run(tt.name+"/"+impl.name, func(t *testing.T) {
				if impl.name == "encoding-xml" && strings.Contains(tt.in, "\xEF\xBB\xBF") {
					t.Skip("encoding/xml does not skip a byte order mark")
				}
				rec := decodeAll(t, impl.fn, []byte(tt.in), tt.opts)
				got := rec.values
				if impl.name == "encoding-xml" {
					// encoding/xml does not normalise attribute white space
					for i := range got {
						got[i].Value = strings.NewReplacer("\t", " ", "\n", " ").Replace(got[i].Value)
					}
					want := append([]transform.DataValue(nil), tt.want...)
					for i := range want {
						want[i].Value = strings.ReplaceAll(want[i].Value, "\t", " ")
					}
					if d := diffValues(want, got); d != "" {
						t.Fatal(d)
					}
					return
				}
				if d := diffValues(tt.want, got); d != "" {
					t.Fatal(d)
				}
			})
		}
	}
}

func TestDecodeSchemes(t *testing.T) {
	in := doc(`<group orgUnit="OU" period="2024-01-01/P1M"><dataValue dataElement="DE" value="1"/></group>`)
	tests := []struct {
		name string
		opts transform.IDSchemes
		want transform.IDSchemes
	}{
		{"ADX default is CODE", transform.IDSchemes{}, transform.IDSchemes{IDScheme: transform.SchemeCode}},
		{"idScheme parameter wins", transform.IDSchemes{IDScheme: transform.SchemeUID},
			transform.IDSchemes{IDScheme: transform.SchemeUID}},
		{"specific schemes kept", transform.IDSchemes{DataElement: transform.SchemeName, Category: transform.SchemeUID},
			transform.IDSchemes{IDScheme: transform.SchemeCode, DataElement: transform.SchemeName, Category: transform.SchemeUID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := decodeAll(t, scannerDecode, []byte(in), Options{Schemes: tt.opts})
			if got := rec.groups[0].Schemes; got != tt.want {
				t.Fatalf("schemes %+v, want %+v", got, tt.want)
			}
			// Through a Batcher whose config carries the same query schemes.
			var batch transform.IDSchemes
			b := transform.NewBatcher(transform.BatcherConfig{Schemes: tt.opts, Emit: func(b *transform.Batch) error {
				batch = b.Schemes
				return nil
			}})
			if err := Decode(strings.NewReader(in), b, Options{Schemes: tt.opts}); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if batch != tt.want {
				t.Fatalf("batch schemes %+v, want %+v", batch, tt.want)
			}
		})
	}
}

func TestDecodeLocator(t *testing.T) {
	in := doc(`<group orgUnit="OU" period="2024-01-01/P1M">
  <dataValue dataElement="A" value="1"/>
</group>
<group orgUnit="OU" period="2024-02-01/P1M">
  <dataValue dataElement="B" value="1"/>   <dataValue dataElement="C" value="1"/>
</group>`)
	rec := &recorder{askPos: true}
	if err := Decode(strings.NewReader(in), rec, Options{}); err != nil {
		t.Fatal(err)
	}
	want := []transform.Pos{
		{Line: 3, Column: 3, Path: "/adx/group[1]/dataValue[1]"},
		{Line: 6, Column: 3, Path: "/adx/group[2]/dataValue[1]"},
		{Line: 6, Column: 44, Path: "/adx/group[2]/dataValue[2]"},
	}
	for i, p := range rec.locs {
		if p != want[i] {
			t.Errorf("value %d at %+v, want %+v", i, p, want[i])
		}
	}
}

// TestDecodeValueErrors: problems with single values are passed to the sink's Reject with
// the value's index and place, and the read goes on (DHIS2 reports them as conflicts).
func TestDecodeValueErrors(t *testing.T) {
	type rej struct {
		index int
		line  int
		path  string
		field string
		msg   string
	}
	group := `<group orgUnit="OU" period="2024-01-01/P1M">` + "\n"
	tests := []struct {
		name   string
		in     string
		opts   Options
		want   []rej
		values int
	}{
		{
			name: "missing dataElement and value",
			in: doc(group + `<dataValue value="1"/>
<dataValue dataElement="" value="1"/>
<dataValue dataElement="DE"/>
<dataValue dataElement="DE" value="1"/></group>`),
			want: []rej{
				{0, 3, "/adx/group[1]/dataValue[1]@dataElement", "dataElement", "dataElement attribute is required on 'dataValue'"},
				{1, 4, "/adx/group[1]/dataValue[2]@dataElement", "dataElement", "dataElement attribute is required on 'dataValue'"},
				{2, 5, "/adx/group[1]/dataValue[3]@value", "value", "value attribute is required on 'dataValue'"},
			},
			values: 1,
		},
		{
			name: "text data element without annotation",
			in:   doc(group + `<dataValue dataElement="MAL_REMARKS" value="0"/></group>`),
			opts: Options{IsText: isText("MAL_REMARKS")},
			want: []rej{{0, 3, "/adx/group[1]/dataValue[1]/annotation", "annotation", "DataElement expects text annotation"}},
		},
		{
			name: "bad booleans and group attributes on a value",
			in: doc(group + `<dataValue dataElement="DE" value="1" followup="yes"/>
<dataValue dataElement="DE" value="1" period="202401"/><dataValue dataElement="DE" value="1" SEX=""/></group>`),
			want: []rej{
				{0, 3, "/adx/group[1]/dataValue[1]@followup", "followup", "true or false"},
				{1, 4, "/adx/group[1]/dataValue[2]@period", "period", "an attribute of <group>"},
				{2, 4, "/adx/group[1]/dataValue[3]@SEX", "SEX", "a category option"},
			},
		},
		{
			name: "two annotations, and elements in an annotation",
			in: doc(group + `<dataValue dataElement="DE" value="1"><annotation>a</annotation><annotation>b</annotation></dataValue>
<dataValue dataElement="DE" value="1"><annotation>a<b>c</b></annotation></dataValue>
<dataValue dataElement="DE" value="1"/></group>`),
			want: []rej{
				{0, 3, "/adx/group[1]/dataValue[1]/annotation", "annotation", "at most one"},
				{1, 4, "/adx/group[1]/dataValue[2]/annotation", "annotation", "text only"},
			},
			values: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			if err := Decode(strings.NewReader(tt.in), rec, tt.opts); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(rec.values) != tt.values {
				t.Errorf("%d values accepted, want %d", len(rec.values), tt.values)
			}
			if len(rec.rejects) != len(tt.want) {
				t.Fatalf("rejects %v, want %d", rec.rejects, len(tt.want))
			}
			for i, w := range tt.want {
				e := rec.rejects[i]
				if e.Index != w.index || e.Line != w.line || e.Path != w.path || e.Field != w.field ||
					!strings.Contains(e.Expected, w.msg) {
					t.Errorf("reject %d = %+v (%v)\nwant %+v", i, *e, e, w)
				}
			}
		})
	}

	t.Run("without Reject the first problem ends the read", func(t *testing.T) {
		in := doc(group + `<dataValue value="1"/></group>`)
		err := Decode(strings.NewReader(in), plainSink{}, Options{})
		var ie *transform.InputError
		if !errors.As(err, &ie) || ie.Path != "/adx/group[1]/dataValue[1]@dataElement" {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("Batcher collects them", func(t *testing.T) {
		in := doc(group + `<dataValue value="1"/><dataValue dataElement="DE"/><dataValue dataElement="X" value="1"/></group>`)
		b := transform.NewBatcher(transform.BatcherConfig{Emit: func(*transform.Batch) error { return nil }})
		if err := Decode(strings.NewReader(in), b, Options{}); err != nil {
			t.Fatal(err)
		}
		list, ok := transform.AsInputErrors(b.Close())
		if !ok || len(list.Errs) != 2 {
			t.Fatalf("Close = %v", list)
		}
		if got := list.Errs[0].Error(); !strings.Contains(got, "line 3, column 1, /adx/group[1]/dataValue[1]@dataElement") {
			t.Fatalf("error %q does not name the place", got)
		}
	})
}

type plainSink struct{}

func (plainSink) Group(transform.Group) error                         { return nil }
func (plainSink) Value(*transform.DataValue, transform.Locator) error { return nil }

// TestDecodeFatalErrors: malformed XML, exceeded limits and group-level problems end the
// read with one *transform.InputError naming the place, as DHIS2 refuses the whole message.
func TestDecodeFatalErrors(t *testing.T) {
	small := Limits{MaxDepth: 5, MaxAttrs: 8, MaxAttrBytes: 32, MaxTextBytes: 16, MaxTagBytes: 4096}
	tests := []struct {
		name      string
		in        string
		opts      Options
		line, col int
		path      string
		msg       string
	}{
		{name: "no orgUnit", in: doc(`<group period="2024-01-01/P1M"><dataValue dataElement="D" value="1"/></group>`),
			line: 2, col: 1, path: "/adx/group[1]@orgUnit", msg: "orgUnit attribute is required on 'group'"},
		{name: "no period", in: doc(`<group orgUnit="O"/>` + "\n" + `  <group orgUnit="O"/>`),
			line: 2, col: 1, path: "/adx/group[1]@period", msg: "period attribute is required on 'group'"},
		{name: "period without duration", in: doc("\n\n" + `   <group orgUnit="O" period="2024-01-01"/>`),
			line: 4, col: 4, path: "/adx/group[1]@period", msg: `"2024-01-01"`},
		{name: "Tuesday week", in: doc(`<group orgUnit="O" period="2024-01-01/P1M"/><group orgUnit="O" period="2024-01-02/P7D"/>`),
			line: 2, col: 45, path: "/adx/group[2]@period", msg: "Tuesday"},
		{name: "unsupported duration", in: doc(`<group orgUnit="O" period="2024-01-01/P2Y"/>`),
			line: 2, col: 1, path: "/adx/group[1]@period", msg: "P2Y"},
		{name: "dataElement on a group", in: doc(`<group orgUnit="O" period="2024-01-01/P1M" dataElement="D"/>`),
			line: 2, col: 1, path: "/adx/group[1]@dataElement", msg: "not of <group>"},
		{name: "empty attribute category", in: doc(`<group orgUnit="O" period="2024-01-01/P1M" FUNDING=""/>`),
			line: 2, col: 1, path: "/adx/group[1]@FUNDING", msg: "attribute category option"},
		{name: "wrong root", in: `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"/>`,
			line: 1, col: 1, path: "/dataValueSet", msg: "root element <adx"},
		{name: "adx in another namespace", in: `<adx xmlns="urn:other"/>`, line: 1, col: 1, path: "/adx", msg: "root element <adx"},
		{name: "unknown ADX element in a group", in: doc(`<group orgUnit="O" period="2024-01-01/P1M"><datavalue/></group>`),
			line: 2, col: 44, path: "/adx/group[1]", msg: "only <dataValue> elements inside <group>"},
		{name: "unknown ADX element in adx", in: doc(`<grp/>`), line: 2, col: 1, path: "/adx", msg: "only <group>"},
		{name: "empty input", in: "", line: 1, col: 1, msg: "no root element"},
		{name: "only white space", in: " \n ", line: 2, col: 2, msg: "no root element"},
		{name: "DOCTYPE", in: `<!DOCTYPE adx [<!ENTITY a "b">]>` + doc(""), line: 1, col: 1, msg: "DOCTYPE"},
		{name: "billion laughs", in: `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><adx>&lol2;</adx>`,
			line: 1, col: 22, msg: "DOCTYPE"},
		{name: "undefined entity", in: doc(`<group orgUnit="&ou;" period="2024-01-01/P1M"/>`), line: 2, col: 17, msg: "entity &ou; is not defined"},
		{name: "undefined entity in text", in: doc(`&nbsp;`), line: 2, col: 1, msg: "entity &nbsp; is not defined"},
		{name: "bad character reference", in: doc(`<group orgUnit="&#0;" period="2024-01-01/P1M"/>`), line: 2, col: 17, msg: "invalid character reference"},
		{name: "mismatched end tag", in: doc(`<group orgUnit="O" period="2024-01-01/P1M"></grp>`), line: 2, col: 44, path: "/adx/group[1]", msg: "does not match"},
		{name: "unclosed root", in: head + `<group orgUnit="O" period="2024-01-01/P1M"/>`, line: 2, col: 45, path: "/adx", msg: "<adx> is not closed"},
		{name: "duplicate attribute", in: doc(`<group orgUnit="O" orgUnit="P"/>`), line: 2, col: 1, path: "/adx", msg: "attribute orgUnit appears twice"},
		{name: "duplicate namespaced attribute", in: doc(`<group xmlns:a="u" xmlns:b="u" a:x="1" b:x="2"/>`), line: 2, col: 1, msg: "same namespace and name"},
		{name: "unbound prefix", in: doc(`<g:group/>`), line: 2, col: 1, msg: "prefix g of element g:group is not declared"},
		{name: "unbound attribute prefix", in: doc(`<group orgUnit="O" period="2024-01-01/P1M" q:x="1"/>`), line: 2, col: 1, msg: "prefix q of attribute q:x"},
		{name: "two colons", in: doc(`<a:b:c/>`), line: 2, col: 5, msg: "more than one colon"},
		{name: "text after root", in: doc("") + "x", line: 3, col: 7, msg: "text outside the root element"},
		{name: "second root", in: doc("") + "<adx/>", line: 3, col: 7, msg: "after the end of the root element"},
		{name: "lt in attribute", in: doc(`<group orgUnit="<"/>`), line: 2, col: 17, msg: "'<' in the value"},
		{name: "missing space between attributes", in: doc(`<group orgUnit="O"period="2024-01-01/P1M"/>`), line: 2, col: 19, msg: "expected white space"},
		{name: "unquoted attribute", in: doc(`<group orgUnit=O/>`), line: 2, col: 16, msg: "quoted value"},
		{name: "invalid UTF-8", in: doc("<group orgUnit=\"\xff\"/>"), line: 2, col: 17, msg: "invalid UTF-8"},
		{name: "control character", in: doc("\x01"), line: 2, col: 1, msg: "0x01 is not allowed"},
		{name: "cdata end in text", in: doc(`<group orgUnit="O" period="2024-01-01/P1M">]]></group>`), line: 2, col: 44, path: "/adx/group[1]", msg: `"]]>" in character data`},
		{name: "double hyphen in comment", in: doc(`<!-- a -- b -->`), line: 2, col: 8, msg: `"--" inside a comment`},
		{name: "declaration not first", in: ` <?xml version="1.0"?>` + doc(""), line: 1, col: 2, msg: "XML declaration may only appear"},
		{name: "latin-1 declared", in: `<?xml version="1.0" encoding="ISO-8859-1"?>` + doc(""), line: 1, col: 31, msg: "send UTF-8"},
		{name: "XML 1.1", in: `<?xml version="1.1"?>` + doc(""), line: 1, col: 16, msg: "only 1.0"},
		{name: "UTF-16", in: "\xFF\xFE<\x00", line: 1, col: 1, msg: "UTF-16"},
		{name: "truncated", in: head + `<group orgUnit="O" per`, line: 2, col: 23, msg: "unexpected end of input inside a start tag"},
		{name: "xmlns prefix declared", in: doc(`<group xmlns:xmlns="u"/>`), line: 2, col: 1, msg: "prefix xmlns cannot be declared"},
		{name: "prefix undeclared to empty", in: doc(`<group xmlns:p=""/>`), line: 2, col: 1, msg: "empty namespace name"},
		{name: "too deep", opts: Options{Limits: small},
			in:   doc(`<group orgUnit="O" period="2024-01-01/P1M"><dataValue dataElement="D" value="1"><x><y><z/></y></x></dataValue></group>`),
			line: 2, col: 87, path: "/adx/group[1]/dataValue[1]", msg: "deeper than 5"},
		{name: "too many attributes", opts: Options{Limits: small},
			in:   doc(`<group orgUnit="O" period="2024-01-01/P1M" a="1" b="1" c="1" d="1" e="1" f="1" g="1"/>`),
			line: 2, col: 80, msg: "more than 8 attributes"},
		{name: "attribute too long", opts: Options{Limits: small},
			in:   doc(`<group orgUnit="` + strings.Repeat("x", 40) + `"/>`),
			line: 2, col: 17, msg: "longer than 32 bytes"},
		{name: "annotation too long", opts: Options{Limits: small},
			in:   doc(`<group orgUnit="O" period="2024-01-01/P1M"><dataValue dataElement="D" value="1"><annotation>` + strings.Repeat("x", 17) + `</annotation></dataValue></group>`),
			line: 2, col: 93, path: "/adx/group[1]/dataValue[1]/annotation", msg: "at most 16 bytes of annotation text"},
		{name: "tag too long", opts: Options{Limits: small},
			in:   doc(`<group orgUnit="O" period="2024-01-01/P1M"` + strings.Repeat(" ", 5000) + `/>`),
			line: 2, col: 1, msg: "longer than 4096 bytes"},
		{name: "comment too long", opts: Options{Limits: small},
			in:   doc(`<!--` + strings.Repeat("x", 5000) + `-->`),
			line: 2, col: 1, msg: "longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			err := Decode(strings.NewReader(tt.in), rec, tt.opts)
			var ie *transform.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			if !strings.HasPrefix(err.Error(), "adx: ") {
				t.Errorf("error %q lacks context", err)
			}
			if ie.Index != -1 || ie.Line != tt.line || ie.Column != tt.col || tt.path != "" && ie.Path != tt.path ||
				!strings.Contains(ie.Error(), tt.msg) {
				t.Fatalf("err = %v\n%+v\nwant line %d col %d path %q msg %q", err, *ie, tt.line, tt.col, tt.path, tt.msg)
			}
		})
	}
}

// TestDecodeChunkedReads feeds input a byte at a time, so that every construct is cut by
// the end of the buffer somewhere, and compares with a whole read.
func TestDecodeChunkedReads(t *testing.T) {
	inputs := []string{
		"\xEF\xBB\xBF<?xml version=\"1.0\"?>\r\n" + doc(`<group orgUnit="O&amp;U" period="2024-01-01/P1M" F="é€𝄞">`+"\r\n"+
			`<dataValue dataElement="D" value="1" SEX="x&#x10FFFF;y"><annotation>a]b]]&gt;&#13;`+"\r\n"+`<![CDATA[x]]y]]></annotation></dataValue>`+
			`<!-- c - c --><?pi ?></group>`),
	}
	for _, f := range fixtureFiles(t) {
		inputs = append(inputs, string(f.data))
	}
	for i, in := range inputs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			whole := decodeAll(t, scannerDecode, []byte(in), Options{})
			rec := &recorder{askPos: true}
			if err := Decode(io.Reader(&oneByteReader{s: in}), rec, Options{Limits: Limits{MaxTagBytes: 1}}); err != nil {
				t.Fatal(err)
			}
			if d := diffValues(whole.values, rec.values); d != "" {
				t.Fatal(d)
			}
		})
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecodeReadAndSinkErrors(t *testing.T) {
	boom := errors.New("boom")
	if err := Decode(io.MultiReader(strings.NewReader(head), failingReader{boom}), &recorder{}, Options{}); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	in := doc(`<group orgUnit="O" period="2024-01-01/P1M"><dataValue dataElement="D" value="1"/></group>`)
	if err := Decode(strings.NewReader(in), errSink{group: boom}, Options{}); !errors.Is(err, boom) {
		t.Errorf("Group error: %v", err)
	}
	if err := Decode(strings.NewReader(in), errSink{value: boom}, Options{}); !errors.Is(err, boom) {
		t.Errorf("Value error: %v", err)
	}
	many := doc(`<group orgUnit="O" period="2024-01-01/P1M">` + strings.Repeat(`<dataValue value="1"/>`, 5) + `</group>`)
	b := transform.NewBatcher(transform.BatcherConfig{MaxErrors: 2, Emit: func(*transform.Batch) error { return nil }})
	if err := Decode(strings.NewReader(many), b, Options{}); !errors.Is(err, transform.ErrTooManyErrors) {
		t.Errorf("too many errors: %v", err)
	}
}

type errSink struct{ group, value error }

func (s errSink) Group(transform.Group) error                         { return s.group }
func (s errSink) Value(*transform.DataValue, transform.Locator) error { return s.value }

func TestCharClass(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		var f byte
		if b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '_' {
			f |= cNameStart | cName
		}
		if b >= '0' && b <= '9' || b == '-' || b == '.' || b == ':' {
			f |= cName
		}
		if (b >= 0x20 && b < 0x80 || b == '\t' || b == '\n') && b != '<' && b != '&' && b != ']' {
			f |= cText
		}
		if b >= 0x20 && b < 0x80 && b != '<' && b != '&' && b != '"' && b != '\'' {
			f |= cAttr
		}
		if b == ' ' || b == '\t' || b == '\n' || b == '\r' {
			f |= cSpace
		}
		if charClass[c] != f {
			t.Errorf("charClass[0x%02x] = %#x, want %#x", c, charClass[c], f)
		}
	}
}

func TestDecodeIgnoresTextBetweenElements(t *testing.T) {
	in := doc(`stray <group orgUnit="O" period="2024-01-01/P1M">text<dataValue dataElement="D" value="1">t</dataValue></group>`)
	rec := decodeAll(t, scannerDecode, []byte(in), Options{})
	if len(rec.values) != 1 || !bytes.Equal([]byte(rec.values[0].Value), []byte("1")) {
		t.Fatalf("values %+v", rec.values)
	}
}

// TestDecodeTrickledInput: a long construct that arrives a byte at a time is scanned in
// linear time (each rescan waits for as many new bytes as the construct has), and the
// buffer never grows past MaxTagBytes.
func TestDecodeTrickledInput(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	in := doc(`<!--` + big + `--><group orgUnit="` + big[:60<<10] + `" period="2024-01-01/P1M"><dataValue dataElement="D" value="1"/></group>`)
	s := newScanner(&oneByteReader{s: in}, DefaultLimits())
	rec := &recorder{}
	if err := decode(s, rec, Options{Limits: DefaultLimits()}); err != nil {
		t.Fatal(err)
	}
	if len(rec.values) != 1 || len(rec.values[0].OrgUnit) != 60<<10 {
		t.Fatalf("values %d", len(rec.values))
	}
	if len(s.buf) > DefaultLimits().MaxTagBytes+16 {
		t.Fatalf("buffer grew to %d bytes", len(s.buf))
	}
}
