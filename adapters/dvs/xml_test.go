package dvs

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tally-hmis/tally/transform"
)

func TestDecodeXML(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opts   Options
		checks []check
	}{
		{"header, inheritance and every value attribute",
			`<?xml version="1.0" encoding="UTF-8"?>
<!-- Kalima, January -->
<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" dataSet="MAL_MONTHLY" completeDate="2024-02-03" period="202401"
    orgUnit="KL_N_F1" attributeOptionCombo="GOV" idScheme="CODE" orgUnitIdScheme="code">
  <dataValue dataElement="MAL_CONFIRMED" categoryOptionCombo="F_LT1" period="202312" orgUnit="KL_S_F1" attributeOptionCombo="NGO"
      value="12" comment="from &quot;CHW&quot; &amp; clinic &#233;" storedBy="chw-1" followUp="true" created="2024-01-01" lastUpdated="x"/>
  <dataValue dataElement="MAL_TREATED" value="" deleted="true" followup="false"/>
</dataValueSet>`, Options{},
			[]check{group(transform.Group{DataSet: "MAL_MONTHLY", CompleteDate: "2024-02-03",
				Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode, OrgUnit: transform.SchemeCode}}),
				value(0, transform.DataValue{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1",
					AttributeOptionCombo: "GOV", Value: "12", Comment: `from "CHW" & clinic é`, StoredBy: "chw-1", FollowUp: true}),
				value(1, transform.DataValue{DataElement: "MAL_TREATED", Period: "202401", OrgUnit: "KL_N_F1", AttributeOptionCombo: "GOV", Deleted: true})}},
		{"no namespace, prefixed namespace, byte order mark",
			"\uFEFF<dataValueSet><dataValue dataElement=\"A\" value=\"1\"/></dataValueSet>", Options{}, []check{count(1)}},
		{"prefixed DXF2 namespace",
			`<d:dataValueSet xmlns:d="http://dhis2.org/schema/dxf/2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x">
			<d:dataValue dataElement="A" value="1" xsi:type="ignored"/></d:dataValueSet>`, Options{}, []check{count(1), values("1")}},
		{"other elements and children of a value are skipped; values are found at any depth, as DHIS2 finds them",
			`<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0">
			<meta><note>x</note></meta>
			<dataValue dataElement="A" value="1"><value>99</value><annotation>note</annotation></dataValue>
			<other xmlns="urn:x"/>
			<dataValue xmlns="urn:elsewhere" dataElement="NOT_DXF2" value="1"/>
			<dataValues><dataValue dataElement="B" value="2"/></dataValues>
			<?pi ignored?>
			</dataValueSet>`, Options{}, []check{count(2), field("DataElement", "A", "B"), values("1", "2")}},
		{"attributeCategoryOptions in the header and on a value",
			`<dataValueSet attributeCategoryOptions="GOV_OPT, Q1"><dataValue dataElement="A" value="1" attributeOptionCombo="NGO"/></dataValueSet>`,
			Options{}, []check{value(0, transform.DataValue{DataElement: "A", Value: "1", Attributes: []transform.CategoryOption{{Option: "GOV_OPT"}, {Option: "Q1"}}})}},
		{"attributeCategoryOptions on a value",
			`<dataValueSet><dataValue dataElement="A" value="1" attributeCategoryOptions="X,Y"/><dataValue dataElement="B" value="1" attributeCategoryOptions="X" attributeOptionCombo="Z"/></dataValueSet>`,
			Options{}, []check{value(0, transform.DataValue{DataElement: "A", Value: "1", Attributes: []transform.CategoryOption{{Option: "X"}, {Option: "Y"}}}),
				value(1, transform.DataValue{DataElement: "B", Value: "1", AttributeOptionCombo: "Z"})}},
		{"analytics output",
			`<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"><dataValue dataElement="A" period="2024" orgUnit="KL" value="5.0" comment="[aggregated]" storedBy="[aggregated]"/></dataValueSet>`,
			Options{Analytics: true}, []check{value(0, transform.DataValue{DataElement: "A", Period: "2024", OrgUnit: "KL", Value: "5.0"})}},
		{"empty set", `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"></dataValueSet>`, Options{}, []check{count(0), group(transform.Group{})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader} {
				var s recSink
				if err := DecodeXML(wrap(strings.NewReader(tt.in)), &s, tt.opts); err != nil {
					t.Fatal(err)
				}
				for _, c := range tt.checks {
					c(t, &s)
				}
			}
		})
	}
}

func TestDecodeXMLReadError(t *testing.T) {
	boom := errors.New("boom")
	err := DecodeXML(io.MultiReader(strings.NewReader("<dataValueSet>"), iotest.ErrReader(boom)), &recSink{}, Options{})
	var ie *transform.InputError
	if !errors.Is(err, boom) || errors.As(err, &ie) {
		t.Errorf("got %v, want the read error", err)
	}
}

func TestDecodeXMLHeaderAndPositions(t *testing.T) {
	in := "<dataValueSet dryRun=\"true\" importStrategy=\"DELETE\" period=\"202401\" dataElementIdScheme=\"ATTRIBUTE:abc\">\n" +
		"  <dataValue dataElement=\"A\" value=\"1\"/>\n\t<dataValue dataElement=\"B\"\n value=\"2\"/></dataValueSet>"
	var h Header
	var s recSink
	if err := DecodeXML(strings.NewReader(in), &s, Options{OnHeader: func(got *Header) error { h = *got; return nil }}); err != nil {
		t.Fatal(err)
	}
	if h.DryRun == nil || !*h.DryRun || h.Strategy != "DELETE" || h.Period != "202401" || h.Schemes.DataElement != "ATTRIBUTE:abc" {
		t.Errorf("header %+v", h)
	}
	want := []transform.Pos{{Line: 2, Column: 3, Path: "/dataValueSet/dataValue[1]"}, {Line: 3, Column: 2, Path: "/dataValueSet/dataValue[2]"}}
	if !reflect.DeepEqual(s.pos, want) {
		t.Errorf("positions %v, want %v", s.pos, want)
	}
	run, err := runBatcher(t, xmlDecode(Options{}), "<dataValueSet>\n<dataValue dataElement=\"A\" period=\"202401\" value=\"1\"/></dataValueSet>", 10)
	if err != nil {
		t.Fatal(err)
	}
	if run.errs == nil || run.errs.Errs[0].Error() != "line 2, column 1, /dataValueSet/dataValue[1]: data value 0: orgUnit: missing: set it on the value or the data value set" {
		t.Errorf("Batcher errors: %v", run.errs)
	}
}

func TestDecodeXMLErrors(t *testing.T) {
	deep := "<dataValueSet>" + strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70) + "</dataValueSet>"
	tests := []struct {
		name string
		in   string
		opts Options
		want transform.InputError // Expected is matched as a substring
	}{
		{"empty body", "", Options{}, transform.InputError{Pos: transform.Pos{Line: 1, Column: 1}, Index: -1, Expected: "the body is empty"}},
		{"ADX", `<adx xmlns="urn:ihe:qrph:adx:2015"><group/></adx>`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 1, Path: "/adx"}, Index: -1, Value: "<adx>", Expected: "send it as application/adx+xml"}},
		{"another root", "\n <dataValues/>", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 2, Path: "/dataValues"}, Index: -1, Value: "<dataValues>", Expected: "a <dataValueSet> root element"}},
		{"another namespace", `<dataValueSet xmlns="urn:x"/>`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 1, Path: "/dataValueSet"}, Index: -1, Value: `<dataValueSet xmlns="urn:x">`, Expected: "in namespace http://dhis2.org/schema/dxf/2.0"}},
		{"DTD", `<?xml version="1.0"?><!DOCTYPE dataValueSet [<!ENTITY x "y">]><dataValueSet>&x;</dataValueSet>`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 22}, Index: -1, Value: "<!DOCTYPE>", Expected: "no DTD"}},
		{"undefined entity", "<dataValueSet>\n<dataValue dataElement=\"&bomb;\"/></dataValueSet>", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 1}, Index: -1, Expected: "well-formed XML: invalid character entity &bomb;"}},
		{"unclosed element", "<dataValueSet>\n<dataValue dataElement=\"A\">", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 28}, Index: -1, Expected: "well-formed XML: unexpected EOF"}},
		{"mismatched end tag", "<dataValueSet><dataValue></dataValueSet>", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 26}, Index: -1, Expected: "well-formed XML: element <dataValue> closed by </dataValueSet>"}},
		{"text after the root", "<dataValueSet/>\njunk", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 16}, Index: -1, Value: "junk", Expected: "only the <dataValueSet> element"}},
		{"two roots", "<dataValueSet/><dataValueSet/>", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 16}, Index: -1, Value: "<dataValueSet>", Expected: "a single <dataValueSet> root element"}},
		{"bad boolean", "<dataValueSet>\n<dataValue dataElement=\"A\"/>\n  <dataValue dataElement=\"B\" deleted=\"yes\"/></dataValueSet>", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 3, Column: 3, Path: "/dataValueSet/dataValue[2]/@deleted"}, Index: 1, Field: "deleted", Value: "yes", Expected: "true or false"}},
		{"bad boolean in a wrapper", "<dataValueSet><dataValues><dataValue followUp=\"1\"/></dataValues></dataValueSet>", Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 27, Path: "/dataValueSet/dataValues/dataValue[1]/@followUp"}, Index: 0, Field: "followUp", Value: "1", Expected: "true or false"}},
		{"bad dryRun", `<dataValueSet dryRun="maybe"/>`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 1, Path: "/dataValueSet/@dryRun"}, Index: -1, Field: "dryRun", Value: "maybe", Expected: "true or false"}},
		{"unknown strategy", `<dataValueSet importStrategy="MERGE"/>`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 1, Path: "/dataValueSet/@importStrategy"}, Index: -1, Field: "importStrategy", Value: "MERGE", Expected: "an import strategy"}},
		{"bad id scheme", `<dataValueSet idScheme="uuid4"/>`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 1, Path: "/dataValueSet/@idScheme"}, Index: -1, Field: "idScheme", Value: "uuid4", Expected: "an id scheme"}},
		{"nesting too deep", deep, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 204}, Index: -1, Value: "a", Expected: "at most 64 levels"}},
		{"attribute too long", `<dataValueSet><dataValue comment="` + strings.Repeat("x", 20_000) + `"/></dataValueSet>`, Options{MaxTokenBytes: 1000},
			transform.InputError{Pos: transform.Pos{Line: 1, Column: 15}, Index: -1, Expected: "shorter than 1000 bytes"}},
		{"comment too long", `<dataValueSet><!--` + strings.Repeat("x", 20_000) + `--></dataValueSet>`, Options{MaxTokenBytes: 1000},
			transform.InputError{Pos: transform.Pos{Line: 1, Column: 15}, Index: -1, Expected: "shorter than 1000 bytes"}},
		{"not UTF-8", `<?xml version="1.0" encoding="ISO-8859-1"?><dataValueSet/>`, Options{}, transform.InputError{
			Pos: transform.Pos{Line: 1, Column: 1}, Index: -1, Expected: `well-formed UTF-8 XML: encoding "ISO-8859-1" declared`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s recSink
			e := inputError(t, DecodeXML(strings.NewReader(tt.in), &s, tt.opts))
			got := *e
			if !strings.Contains(got.Expected, tt.want.Expected) {
				t.Errorf("Expected %q, want it to contain %q", got.Expected, tt.want.Expected)
			}
			got.Expected = tt.want.Expected
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v\n(%v)", got, tt.want, e)
			}
		})
	}
}
