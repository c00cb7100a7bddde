package dvs

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// Fuzz inputs are bounded so that a run explores shapes, not sizes.
const fuzzMaxInput = 64 << 10

var fuzzOpts = Options{MaxTokenBytes: 4096, MaxHeldValues: 8, MaxDepth: 32}

// addSeeds adds every fixture with one of the extensions, if the corpus is present.
func addSeeds(f *testing.F, exts ...string) {
	for _, dir := range []string{"dvs", "dvs/v2.43", "dvs/e2e", "cht"} {
		entries, err := os.ReadDir(filepath.Join(conformanceDir, dir))
		if err != nil {
			continue
		}
		for _, e := range entries {
			for _, ext := range exts {
				if filepath.Ext(e.Name()) == ext && e.Name() != "metadata.json" {
					if b, err := os.ReadFile(filepath.Join(conformanceDir, dir, e.Name())); err == nil {
						f.Add(b)
					}
				}
			}
		}
	}
}

// checkOutcome requires a refusal to be an *InputError, and an accepted payload to survive
// WriteJSON and DecodeJSON unchanged.
func checkOutcome(t *testing.T, err error, s *recSink) {
	t.Helper()
	if err != nil {
		var ie *transform.InputError
		if !errors.As(err, &ie) {
			t.Fatalf("refused with %T, not an *InputError: %v", err, err)
		}
		if ie.Line <= 0 && ie.Pos != (transform.Pos{}) {
			t.Fatalf("error without a line: %v", ie)
		}
		return
	}
	if len(s.groups) != 1 {
		t.Fatalf("%d groups", len(s.groups))
	}
	b := &transform.Batch{DataSet: s.groups[0].DataSet, Schemes: s.groups[0].Schemes, Values: s.values}
	out := AppendJSON(nil, b)
	if !json.Valid(out) {
		t.Fatalf("WriteJSON wrote invalid JSON: %s", out)
	}
	var again recSink
	if err := DecodeJSON(bytes.NewReader(out), &again, Options{}); err != nil {
		t.Fatalf("re-reading %s: %v", out, err)
	}
	want := transform.Group{DataSet: b.DataSet, Schemes: b.Schemes}
	if !reflect.DeepEqual(again.groups, []transform.Group{want}) {
		t.Fatalf("group changed: %+v, want %+v", again.groups, want)
	}
	if len(again.values) != len(s.values) {
		t.Fatalf("%d values re-read, want %d", len(again.values), len(s.values))
	}
	for i := range s.values {
		if !reflect.DeepEqual(again.values[i], s.values[i]) {
			t.Fatalf("value %d changed:\n got %+v\nwant %+v", i, again.values[i], s.values[i])
		}
	}
}

// checkPerValueRun decodes data into a PerValue Batcher: every value read is either kept
// in a batch or rejected with a conflict at its index, and a refusal is an *InputError.
func checkPerValueRun(t *testing.T, data []byte, decode func(r *bytes.Reader, s transform.Sink) error) {
	t.Helper()
	kept := 0
	b := transform.NewBatcher(transform.BatcherConfig{PerValue: true, MaxValues: 7,
		Emit: func(b *transform.Batch) error { kept += len(b.Values); return nil }})
	err := decode(bytes.NewReader(data), b)
	if err == nil {
		err = b.Close()
	}
	if err != nil {
		if _, ok := transform.AsInputErrors(err); !ok {
			t.Fatalf("per value: refused with %T, not input errors: %v", err, err)
		}
		return
	}
	r := b.Report()
	if r.Read != r.Kept+r.Rejected || r.Kept != kept || r.Rejected != len(r.Conflicts)+r.More {
		t.Fatalf("per value: report %+v with %d values emitted", r, kept)
	}
	for _, c := range r.Conflicts {
		if c.Index < 0 || c.Index >= r.Read {
			t.Fatalf("per value: conflict at index %d of %d values: %v", c.Index, r.Read, c)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	addSeeds(f, ".json")
	for _, s := range []string{
		`{"dataValues":[{"dataElement":"A","value":1.5e3,"comment":"\ud83d\ude00\u0000\n","followUp":"true"}],"period":"202401"}`,
		`[{"categoryOptionCombo":{"SEX":"F"},"attributeOptionCombo":{"":"x"}}]`,
		`{"attributeCategoryOptions":"a,b","idScheme":"attribute:xyz","x":[[{}],{"y":null}],"dataValues":null}`,
		"\uFEFF[]", `{"dataValues":[{}]}`, `{"dataValues":[1]}`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		var s recSink
		err := DecodeJSON(bytes.NewReader(data), &s, fuzzOpts)
		if err == nil && !json.Valid(bytes.TrimPrefix(data, []byte(utf8BOM))) {
			t.Fatalf("accepted JSON that encoding/json refuses: %q", data)
		}
		checkOutcome(t, err, &s)
		checkPerValueRun(t, data, func(r *bytes.Reader, s transform.Sink) error { return DecodeJSON(r, s, fuzzOpts) })
	})
}

func FuzzDecodeXML(f *testing.F) {
	addSeeds(f, ".xml")
	for _, s := range []string{
		`<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" period="202401" attributeCategoryOptions="a,b"><dataValue dataElement="A" value="&lt;&#x1F600;" followUp="TRUE"/></dataValueSet>`,
		`<d:dataValueSet xmlns:d="http://dhis2.org/schema/dxf/2.0"><d:dataValue deleted="true"><x><y/></x></d:dataValue></d:dataValueSet>`,
		`<adx xmlns="urn:ihe:qrph:adx:2015"/>`, `<!DOCTYPE x><dataValueSet/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		var s recSink
		checkOutcome(t, DecodeXML(bytes.NewReader(data), &s, fuzzOpts), &s)
		checkPerValueRun(t, data, func(r *bytes.Reader, s transform.Sink) error { return DecodeXML(r, s, fuzzOpts) })
	})
}

func FuzzDecodeCSV(f *testing.F) {
	addSeeds(f, ".csv")
	for _, s := range []string{
		"orgunit,dataelement,period,value,deleted\nKL,A,202401,\"1,5\",TRUE\n",
		"A,202401,KL,,,\"multi\r\nline\",,,,false,true\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		for _, header := range []bool{true, false} {
			var s recSink
			opts := CSVOptions{FirstRowIsHeader: &header, MaxTokenBytes: 4096, DataSet: "DS"}
			checkOutcome(t, DecodeCSV(bytes.NewReader(data), &s, opts), &s)
			checkPerValueRun(t, data, func(r *bytes.Reader, s transform.Sink) error { return DecodeCSV(r, s, opts) })
		}
	})
}
