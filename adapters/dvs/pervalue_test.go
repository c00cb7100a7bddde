package dvs

import (
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// Empty payloads import nothing and are no error in DHIS2 (conformance README §5.5,
// DataValueSetControllerTest: an XML <dataValueSet/>, JSON {} and the CSV body "abc" —
// a header row only — all answer 200 "Import was successful."). Each parses into zero
// values and zero batches, in both Batcher modes.
func TestEmptyPayloadsAreValid(t *testing.T) {
	tests := []struct {
		name   string
		decode decodeFunc
		in     string
	}{
		{"JSON {}", jsonDecode(Options{}), `{}`},
		{"JSON empty dataValues", jsonDecode(Options{}), `{"dataValues":[]}`},
		{"JSON null dataValues", jsonDecode(Options{}), `{"dataSet":"DS","dataValues":null}`},
		{"JSON empty array", jsonDecode(Options{}), ` [ ] `},
		{"XML self-closing", xmlDecode(Options{}), `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"/>`},
		{"XML as in DHIS2's test", xmlDecode(Options{}), `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"></dataValueSet>`},
		{"CSV header only", csvDecode(CSVOptions{}), "dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value\n"},
		{"CSV abc", csvDecode(CSVOptions{}), "abc"},
		{"CSV nothing", csvDecode(CSVOptions{}), ""},
	}
	for _, tt := range tests {
		for _, perValue := range []bool{false, true} {
			run, err := runBatcherWith(t, tt.decode, tt.in, transform.BatcherConfig{PerValue: perValue})
			if err != nil || run.errs != nil || len(run.batches) != 0 || run.report.Read != 0 {
				t.Errorf("%s (per value %v): %v %v, %d batches, %+v", tt.name, perValue, err, run.errs, len(run.batches), run.report)
			}
		}
	}
}

// The header's completeDate (DataValueSet.completeDate in dhis2-core, JSON member and XML
// attribute; spec dhis2.md §4.1, §4.3) and strategy reach the batch and survive the stream
// encoding. DHIS2's CSV has no header fields at all (CsvDataValueSetReader.readHeader
// returns an empty DataValueSet), so a CSV batch has no complete date.
func TestHeaderReachesBatch(t *testing.T) {
	tests := []struct {
		name     string
		decode   decodeFunc
		in       string
		complete string
		strategy string
	}{
		{"JSON", jsonDecode(Options{}), `{"dataSet":"DS","completeDate":"2024-02-03","period":"202401","orgUnit":"OU",` +
			`"strategy":"UPDATES","dataValues":[{"dataElement":"A","value":"1"}]}`, "2024-02-03", "UPDATE"},
		{"JSON, header after the values", jsonDecode(Options{}), `{"dataValues":[{"dataElement":"A","value":"1"}],` +
			`"period":"202401","orgUnit":"OU","completeDate":"2024-02-03","dataSet":"DS"}`, "2024-02-03", ""},
		{"XML", xmlDecode(Options{}), `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" dataSet="DS" completeDate="2024-02-03" ` +
			`importStrategy="NEW" period="202401" orgUnit="OU"><dataValue dataElement="A" value="1"/></dataValueSet>`, "2024-02-03", "CREATE"},
		{"CSV", csvDecode(CSVOptions{DataSet: "DS"}), "h\nA,202401,OU,,,1\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := runBatcher(t, tt.decode, tt.in, 10)
			if err != nil || run.errs != nil || len(run.batches) != 1 {
				t.Fatalf("%v %v, %d batches", err, run.errs, len(run.batches))
			}
			b := run.batches[0]
			if b.CompleteDate != tt.complete || b.DataSet != "DS" || b.ImportStrategy != tt.strategy {
				t.Errorf("batch: complete date %q, data set %q, strategy %q", b.CompleteDate, b.DataSet, b.ImportStrategy)
			}
			back, err := transform.DecodeBatch(transform.EncodeBatch(&b))
			if err != nil || back.CompleteDate != b.CompleteDate || back.DataSet != b.DataSet ||
				back.ImportStrategy != b.ImportStrategy || len(back.Values) != 1 {
				t.Errorf("codec: %v\n got %+v\nwant %+v", err, back, b)
			}
		})
	}
}

// A bad boolean on one value (DHIS2 reads it as false, so Tally refuses that value) is a
// value conflict in XML and CSV: the other values are kept in per-value mode, and the
// whole-payload Batcher reports every such problem rather than the first.
func TestBadBooleanIsAValueConflict(t *testing.T) {
	tests := []struct {
		name   string
		decode decodeFunc
		in     string
		path   []string
	}{
		{"XML", xmlDecode(Options{}), `<dataValueSet period="202401" orgUnit="OU">
<dataValue dataElement="A" value="1" deleted="maybe"/>
<dataValue dataElement="B" value="2"/>
<dataValue dataElement="C" value="3" followup="yes"/>
</dataValueSet>`, []string{"/dataValueSet/dataValue[1]/@deleted", "/dataValueSet/dataValue[3]/@followup"}},
		{"CSV", csvDecode(CSVOptions{}), "h\nA,202401,OU,,,1,,,,,maybe\nB,202401,OU,,,2\nC,202401,OU,,,3,,,,yes\n",
			[]string{"deleted", "followup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := runBatcherWith(t, tt.decode, tt.in, transform.BatcherConfig{PerValue: true})
			if err != nil || run.errs != nil {
				t.Fatal(err, run.errs)
			}
			if len(run.values) != 1 || run.values[0].DataElement != "B" || run.values[0].Index != 1 {
				t.Fatalf("kept %+v", run.values)
			}
			r := run.report
			if r.Read != 3 || r.Kept != 1 || r.Rejected != 2 || r.Conflicts[0].Index != 0 || r.Conflicts[1].Index != 2 {
				t.Fatalf("report %+v", r)
			}
			for i, c := range r.Conflicts {
				if c.Path != tt.path[i] || c.Expected != boolExpected || c.Line != 2*i+2 && tt.name == "XML" {
					t.Errorf("conflict %d: %+v", i, c)
				}
			}
			whole, err := runBatcher(t, tt.decode, tt.in, 10)
			if err != nil || whole.errs == nil || len(whole.errs.Errs) != 2 || len(whole.batches) != 0 {
				t.Errorf("whole payload: %v %v, %d batches", err, whole.errs, len(whole.batches))
			}
		})
	}
}

// DHIS2's XML reader takes the header strategy as importStrategy (StreamingXmlDataValueSet,
// FIELD_IMPORTSTRATEGY) and its JSON model as strategy (DataValueSet.getStrategy); either
// name is read in either format, and legacy names come out under their current one.
func TestHeaderStrategy(t *testing.T) {
	for _, tt := range []struct {
		decode decodeFunc
		in     string
		want   string
	}{
		{jsonDecode(Options{}), `{"importStrategy":"deletes"}`, "DELETE"},
		{jsonDecode(Options{}), `{"strategy":"NEW_AND_UPDATES"}`, "CREATE_AND_UPDATE"},
		{xmlDecode(Options{}), `<dataValueSet strategy="UPDATE"/>`, "UPDATE"},
		{jsonDecode(Options{}), `{"strategy":null}`, ""},
	} {
		var got string
		var s recSink
		opts := Options{OnHeader: func(h *Header) error { got = h.Strategy; return nil }}
		var err error
		if strings.HasPrefix(tt.in, "<") {
			err = DecodeXML(strings.NewReader(tt.in), &s, opts)
		} else {
			err = DecodeJSON(strings.NewReader(tt.in), &s, opts)
		}
		if err != nil || got != tt.want || string(s.groups[0].ImportStrategy) != tt.want {
			t.Errorf("%s: %q, %v, group %+v; want %q", tt.in, got, err, s.groups, tt.want)
		}
	}
}

// dataValueSetJDeleteNoValue.json has no value; imported with strategy DELETE DHIS2 deletes
// the stored value (conformance README §6.1, 0/0/1), so the Batcher keeps it then, and
// refuses it (E7618) otherwise.
func TestConformanceDeleteNoValue(t *testing.T) {
	payload := readFixture(t, "dvs/dataValueSetJDeleteNoValue.json")
	for strategy, kept := range map[transform.ImportStrategy]int{transform.StrategyDelete: 1, "": 0} {
		run, err := runBatcherWith(t, jsonDecode(Options{}), payload, transform.BatcherConfig{PerValue: true, ImportStrategy: strategy})
		if err != nil || run.errs != nil || run.report.Kept != kept || run.report.Rejected != 1-kept {
			t.Errorf("strategy %q: %v %v %+v", strategy, err, run.errs, run.report)
		}
	}
}
