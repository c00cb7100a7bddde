package dvs

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

func sampleBatch() *transform.Batch {
	b := &transform.Batch{
		DataSet: "MAL_MONTHLY", CompleteDate: "2024-02-01",
		Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode, OrgUnit: "ATTRIBUTE:abcdefghijk"},
	}
	for i := range 2500 {
		b.Values = append(b.Values, kalimaValue(i))
	}
	b.Values = append(b.Values,
		transform.DataValue{DataElement: "MAL_REMARKS", Period: "202401", OrgUnit: "KL_N_F1",
			Value: "quote \" backslash \\ newline \n tab \t nul \x00 del \x7f é 😀 \u2028", Comment: "</script>", FollowUp: true},
		transform.DataValue{DataElement: "MAL_TREATED", Period: "202401", OrgUnit: "KL_N_F1", Deleted: true},
		transform.DataValue{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", Value: "3",
			Categories: []transform.CategoryOption{{Category: "SEX", Option: "F"}, {Category: "AGE", Option: "LT1"}},
			Attributes: []transform.CategoryOption{{Category: "FUNDING", Option: "GOV"}}},
	)
	for i := range b.Values {
		b.Values[i].Index = i
	}
	return b
}

func TestWriteJSONRoundTrip(t *testing.T) {
	b := sampleBatch()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, b); err != nil {
		t.Fatal(err)
	}
	if got := AppendJSON(nil, b); !bytes.Equal(got, buf.Bytes()) {
		t.Error("AppendJSON and WriteJSON differ")
	}
	// A reused buffer, as delivery reuses one, writes the same bytes every time, including
	// after a body of other values.
	var scratch []byte
	for i, bb := range []*transform.Batch{b, {Values: b.Values[2500:]}, b} {
		var out bytes.Buffer
		var err error
		if scratch, err = WriteJSONBuffer(&out, bb, scratch); err != nil {
			t.Fatal(err)
		}
		if want := AppendJSON(nil, bb); !bytes.Equal(out.Bytes(), want) {
			t.Errorf("body %d written with a reused buffer differs from WriteJSON's", i)
		}
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatal("not valid JSON")
	}
	var s recSink
	if err := DecodeJSON(&buf, &s, Options{}); err != nil {
		t.Fatal(err)
	}
	want := transform.Group{DataSet: b.DataSet, Schemes: b.Schemes} // completeDate is not written
	if !reflect.DeepEqual(s.groups, []transform.Group{want}) {
		t.Errorf("group %+v, want %+v", s.groups, want)
	}
	if !reflect.DeepEqual(s.values, b.Values) {
		for i := range b.Values {
			if !reflect.DeepEqual(s.values[i], b.Values[i]) {
				t.Fatalf("value %d:\n got %+v\nwant %+v", i, s.values[i], b.Values[i])
			}
		}
		t.Fatalf("got %d values, want %d", len(s.values), len(b.Values))
	}
}

func TestWriteJSONShape(t *testing.T) {
	b := &transform.Batch{Values: []transform.DataValue{
		{DataElement: "A", Period: "202401", OrgUnit: "KL", CategoryOptionCombo: "F_LT1", Value: "1", FollowUp: true},
		{DataElement: "B", Period: "202401", OrgUnit: "KL", Value: "bad \xff utf8"},
	}}
	got := string(AppendJSON(nil, b))
	want := `{"dataValues":[{"dataElement":"A","period":"202401","orgUnit":"KL","categoryOptionCombo":"F_LT1","value":"1","followup":true,"followUp":true},` +
		`{"dataElement":"B","period":"202401","orgUnit":"KL","value":"bad \ufffd utf8"}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := string(AppendJSON(nil, &transform.Batch{DataSet: "DS"})); got != `{"dataSet":"DS","dataValues":[]}` {
		t.Errorf("empty batch: %s", got)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n--; w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteJSONWriterError(t *testing.T) {
	for _, n := range []int{0, 1} {
		if err := WriteJSON(&failWriter{n: n}, sampleBatch()); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("after %d writes: got %v", n, err)
		}
	}
}

func BenchmarkWriteJSON(b *testing.B) {
	batch := &transform.Batch{DataSet: "MAL_MONTHLY", Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}}
	for i := range transform.DefaultBatchSize {
		batch.Values = append(batch.Values, kalimaValue(i))
	}
	buf := AppendJSON(nil, batch)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		buf = AppendJSON(buf[:0], batch)
	}
	reportRates(b, len(batch.Values), cpu)
}

func TestWriteDeletionJSON(t *testing.T) {
	b := &transform.Batch{Schemes: transform.IDSchemes{DataElement: transform.SchemeCode, OrgUnit: transform.SchemeUID}}
	d := &Deletion{OrgUnits: []string{"DiszpKrYNg8"}, Periods: []string{"202401"}, Elements: []DeletionElement{
		{DataElement: "EPI_BCG", CategoryOptionCombo: "Prlt0C1RF0s", AttributeOptionCombo: "HllvX50cXC0"},
		{DataElement: `odd "de"`},
	}}
	var buf bytes.Buffer
	if err := WriteDeletionJSON(&buf, b, d); err != nil {
		t.Fatal(err)
	}
	want := `{"dataElementIdScheme":"CODE","orgUnitIdScheme":"UID",` +
		`"deletion":{"orgUnits":["DiszpKrYNg8"],"periods":["202401"],"elements":[` +
		`{"dataElement":"EPI_BCG","categoryOptionCombo":"Prlt0C1RF0s","attributeOptionCombo":"HllvX50cXC0"},` +
		`{"dataElement":"odd \"de\""}]},"dataValues":[]}`
	if got := buf.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	// No schemes, and values after the scope (DHIS2's replace semantics).
	b = &transform.Batch{Values: []transform.DataValue{{DataElement: "a", Period: "202401", OrgUnit: "o", Value: "1"}}}
	buf.Reset()
	if err := WriteDeletionJSON(&buf, b, &Deletion{}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Deletion struct {
			OrgUnits, Periods []string
			Elements          []map[string]string
		}
		DataValues []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if !strings.HasPrefix(buf.String(), `{"deletion":{"orgUnits":[],"periods":[],"elements":[]},"dataValues":[{`) ||
		len(doc.DataValues) != 1 {
		t.Fatalf("got %s", buf.String())
	}

	// WriteJSON never writes a deletion block.
	buf.Reset()
	if err := WriteJSON(&buf, b); err != nil || strings.Contains(buf.String(), "deletion") {
		t.Fatalf("WriteJSON: %v %s", err, buf.String())
	}
}
