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

func TestDecodeCSV(t *testing.T) {
	const dhis2Header = "dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value,storedby,lastupdated,comment,followup,deleted\n"
	tests := []struct {
		name   string
		in     string
		opts   CSVOptions
		checks []check
	}{
		{"positional, every column",
			dhis2Header + "MAL_CONFIRMED,202401,KL_N_F1,F_LT1,GOV,12,chw-1,2024-02-01,\"checked, twice\",true,false\n" +
				"MAL_TREATED,202401,KL_N_F1,,,,,,,,true\n", CSVOptions{DataSet: "MAL_MONTHLY"},
			[]check{group(transform.Group{DataSet: "MAL_MONTHLY"}),
				value(0, transform.DataValue{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1",
					AttributeOptionCombo: "GOV", Value: "12", StoredBy: "chw-1", Comment: "checked, twice", FollowUp: true}),
				value(1, transform.DataValue{DataElement: "MAL_TREATED", Period: "202401", OrgUnit: "KL_N_F1", Deleted: true})}},
		{"positional when the header is not recognised; short rows",
			"de,pe,where,x,y,v\nA,202401,KL,,,7\nB,202402,KL\n", CSVOptions{},
			[]check{count(2), values("7", ""), field("Period", "202401", "202402")}},
		{"by name when the header names the columns, in any order and spelling",
			"Org Unit,VALUE,Period,Data_Element,Comment,Deleted,Extra\nKL,3,202401,EPI_BCG,ok,TRUE,zzz\n", CSVOptions{},
			[]check{value(0, transform.DataValue{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "KL", Value: "3", Comment: "ok", Deleted: true})}},
		{"analytics output, by name",
			"data_element,period,organisation_unit,category_option_combo,attribute_option_combo,value,stored_by,created,last_updated,comment,follow_up\n" +
				"MAL_CONFIRMED,202401,KL,F_LT1,,12.0,,2024-03-15,2024-03-15,[aggregated],false\n", CSVOptions{Analytics: true},
			[]check{value(0, transform.DataValue{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL", CategoryOptionCombo: "F_LT1", Value: "12.0"})}},
		{"no header row", "A,202401,KL,,,1\n", CSVOptions{FirstRowIsHeader: new(false)}, []check{count(1), values("1")}},
		{"the first row is a header by default", "A,202401,KL,,,1\n", CSVOptions{}, []check{count(0)}},
		{"quotes, embedded newlines, CRLF and a byte order mark",
			"\uFEFF" + dhis2Header + "\"A\",\"202401\",\"KL\",\"\",\"\",\"1\",\"\",\"\",\"line one\r\nline \"\"two\"\"\",\"false\"\r\nB,202401,KL,,,2\r\n", CSVOptions{},
			[]check{count(2), field("Comment", "line one\nline \"two\"", "")}},
		{"DHIS2 accepts the body abc", "abc", CSVOptions{}, []check{count(0), group(transform.Group{})}},
		{"empty body", "", CSVOptions{}, []check{count(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader} {
				var s recSink
				if err := DecodeCSV(wrap(strings.NewReader(tt.in)), &s, tt.opts); err != nil {
					t.Fatal(err)
				}
				for _, c := range tt.checks {
					c(t, &s)
				}
			}
		})
	}
}

func TestDecodeCSVPositions(t *testing.T) {
	in := "h\nA,202401,KL,,,1\n\"B\",202401,KL,,,\"2\n2\"\nC,202401,,,,3\n"
	var s recSink
	if err := DecodeCSV(strings.NewReader(in), &s, CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []transform.Pos{{Line: 2}, {Line: 3}, {Line: 5}}
	if !reflect.DeepEqual(s.pos, want) {
		t.Errorf("positions %v, want %v", s.pos, want)
	}
	run, err := runBatcher(t, csvDecode(CSVOptions{}), in, 10)
	if err != nil {
		t.Fatal(err)
	}
	if run.errs == nil || run.errs.Errs[0].Error() != "line 5: data value 2: orgUnit: missing: set it on the value or the data value set" {
		t.Errorf("Batcher errors: %v", run.errs)
	}
}

func TestDecodeCSVErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts CSVOptions
		want transform.InputError
	}{
		{"bad followup, positional", "h\nA,202401,KL,,,1,,,,maybe\n", CSVOptions{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 20, Path: "followup"}, Index: 0, Field: "followup", Value: "maybe", Expected: "true or false"}},
		{"bad deleted, by name", "orgunit,dataelement,period,value,Is Deleted,Deleted\nKL,A,202401,1,x,nope\n", CSVOptions{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 17, Path: "Deleted"}, Index: 0, Field: "deleted", Value: "nope", Expected: "true or false"}},
		{"bare quote", "h\nA,2024\"01,KL\n", CSVOptions{}, transform.InputError{
			Pos: transform.Pos{Line: 2, Column: 7}, Index: 0, Expected: `well-formed CSV: bare " in non-quoted-field`}},
		{"unterminated quote", "h\nA,202401,KL,,,1\n\"B,202401\n", CSVOptions{}, transform.InputError{
			Pos: transform.Pos{Line: 3, Column: 11}, Index: 1, Expected: `well-formed CSV: extraneous or missing " in quoted-field`}},
		{"first record too long", "\"" + strings.Repeat("x", 50_000) + "\"\n", CSVOptions{MaxTokenBytes: 1000}, transform.InputError{
			Pos: transform.Pos{Line: 1}, Index: 0, Expected: "a record shorter than 1000 bytes"}},
		{"record too long", "h\nA,202401,KL,,,1,,,\"" + strings.Repeat("x", 50_000) + "\"\n", CSVOptions{MaxTokenBytes: 1000}, transform.InputError{
			Pos: transform.Pos{Line: 2}, Index: 0, Expected: "a record shorter than 1000 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := inputError(t, DecodeCSV(strings.NewReader(tt.in), &recSink{}, tt.opts))
			if *e != tt.want {
				t.Errorf("got  %+v\nwant %+v\n(%v)", *e, tt.want, e)
			}
		})
	}
	boom := errors.New("boom")
	err := DecodeCSV(io.MultiReader(strings.NewReader("h\nA,"), iotest.ErrReader(boom)), &recSink{}, CSVOptions{})
	var ie *transform.InputError
	if !errors.Is(err, boom) || errors.As(err, &ie) {
		t.Errorf("read error: got %v", err)
	}
}
