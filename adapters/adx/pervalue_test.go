package adx

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// batchRun decodes an ADX message into a real Batcher and keeps what it emitted.
type batchRun struct {
	batches []transform.Batch
	report  transform.ValueReport
	close   error
}

func runBatcher(t *testing.T, data string, cfg transform.BatcherConfig, opts Options) (batchRun, error) {
	t.Helper()
	var run batchRun
	cfg.Emit = func(b *transform.Batch) error {
		cp := *b
		cp.Values = append([]transform.DataValue(nil), b.Values...)
		run.batches = append(run.batches, cp)
		return nil
	}
	b := transform.NewBatcher(cfg)
	if err := Decode(strings.NewReader(data), b, opts); err != nil {
		return run, err
	}
	run.close = b.Close()
	run.report = b.Report()
	return run, nil
}

// An empty ADX message imports nothing and is no error (conformance README §5.5:
// DataValueSetControllerTest posts <adx xmlns="urn:ihe:qrph:adx:2015"></adx> as
// application/adx+xml and gets HTTP 200).
func TestEmptyADX(t *testing.T) {
	for _, in := range []string{`<adx xmlns="urn:ihe:qrph:adx:2015"></adx>`, `<?xml version="1.0"?><adx xmlns="urn:ihe:qrph:adx:2015"/>`} {
		for _, perValue := range []bool{false, true} {
			run, err := runBatcher(t, in, transform.BatcherConfig{PerValue: perValue}, Options{})
			if err != nil || run.close != nil || len(run.batches) != 0 || run.report.Read != 0 {
				t.Errorf("%s (per value %v): %v %v, %d batches", in, perValue, err, run.close, len(run.batches))
			}
		}
	}
}

// A group's completeDate (adx_data_sample1.xml's first group has completeDate="2015-06-17",
// conformance README §5.4) reaches its batch and survives the stream encoding; the second
// group, without one, is a batch of its own.
func TestGroupCompleteDateReachesBatch(t *testing.T) {
	run, err := runBatcher(t, string(readFixture(t, "adx_data_sample1.xml")), transform.BatcherConfig{}, Options{})
	if err != nil || run.close != nil {
		t.Fatal(err, run.close)
	}
	if len(run.batches) != 2 || run.batches[0].CompleteDate != "2015-06-17" || run.batches[1].CompleteDate != "" {
		t.Fatalf("%d batches: %+v", len(run.batches), run.batches)
	}
	back, err := transform.DecodeBatch(transform.EncodeBatch(&run.batches[0]))
	if err != nil || back.CompleteDate != "2015-06-17" || back.DataSet != "Malaria" || len(back.Values) != 6 {
		t.Errorf("codec: %v %+v", err, back)
	}
}

// Per value, as DHIS2 2.38–2.42 imports ADX: a <dataValue> DHIS2's ADX reader refuses
// becomes a conflict — {"object":"ADX Error","value":<message>} for a missing
// dataElement or value attribute, the data element as object for a text element without
// annotation (DefaultAdxDataService.parseADXDataValueToDxf; adx.md §9) — and the other
// values of the message are imported.
func TestPerValueADX(t *testing.T) {
	in := doc(`<group orgUnit="OU" period="2024-01-01/P1M">
<dataValue value="1"/>
<dataValue dataElement="A" value="2"/>
<dataValue dataElement="B"/>
<dataValue dataElement="MAL_REMARKS" value="0"/>
<dataValue dataElement="C" value="5" deleted="maybe"/>
<dataValue dataElement="D" value="6"/>
</group>`)
	run, err := runBatcher(t, in, transform.BatcherConfig{PerValue: true}, Options{IsText: isText("MAL_REMARKS")})
	if err != nil || run.close != nil {
		t.Fatal(err, run.close)
	}
	var kept []string
	for _, b := range run.batches {
		for _, v := range b.Values {
			kept = append(kept, v.DataElement+"@"+strconv.Itoa(v.Index))
		}
	}
	if strings.Join(kept, " ") != "A@1 D@5" {
		t.Fatalf("kept %v", kept)
	}
	r := run.report
	if r.Read != 6 || r.Kept != 2 || r.Rejected != 4 {
		t.Fatalf("report %+v", r)
	}
	var got []string
	for _, c := range transform.MergeConflicts(r.Conflicts) {
		js, _ := json.Marshal(c)
		got = append(got, string(js))
	}
	want := []string{
		`{"object":"ADX Error","value":"dataElement attribute is required on 'dataValue'","indexes":[0]}`,
		`{"object":"ADX Error","value":"value attribute is required on 'dataValue'","indexes":[2]}`,
		`{"object":"MAL_REMARKS","value":"DataElement expects text annotation","indexes":[3]}`,
		`{"object":"deleted","value":"deleted \"maybe\": true or false","indexes":[4]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("conflicts\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c := r.Conflicts[0]; c.Path != "/adx/group[1]/dataValue[1]@dataElement" || c.Line != 3 {
		t.Errorf("first conflict's place: %+v", c)
	}
}

// A problem with a group is a document-level one in DHIS2 (an AdxException in
// parseAdxGroupToDxf replaces the summary with ERROR "Data set import failed within group
// number"; adx.md §9), so it ends the parse in per-value mode too.
func TestGroupProblemEndsPerValueImport(t *testing.T) {
	in := doc(`<group orgUnit="OU" period="2024-01-01/P1M"><dataValue dataElement="A" value="1"/></group>
<group period="2024-01-01/P1M"><dataValue dataElement="B" value="2"/></group>`)
	_, err := runBatcher(t, in, transform.BatcherConfig{PerValue: true}, Options{})
	var ie *transform.InputError
	if !errors.As(err, &ie) || ie.Index != -1 || ie.Field != "orgUnit" || !strings.Contains(ie.Expected, "required on 'group'") {
		t.Fatalf("err = %v", err)
	}
}

// ADX periods convert to the DHIS2 ids of the newest period types (adx.md §6.2):
// 2026-02-01/P1Y is FinancialFeb 2026Feb and a Friday P7D is WeeklyFriday, both from 2.43.
// A Batcher set for an older release refuses those values (E7611), and one set for 2.43
// keeps them.
func TestADXPeriodsOfNewerReleases(t *testing.T) {
	in := doc(`<group orgUnit="OU" period="2026-02-01/P1Y"><dataValue dataElement="A" value="1"/></group>
<group orgUnit="OU" period="2026-01-16/P7D"><dataValue dataElement="B" value="2"/></group>
<group orgUnit="OU" period="2026-01-01/P1M"><dataValue dataElement="C" value="3"/></group>`)
	for _, tt := range []struct {
		release int
		kept    string
	}{{42, "C:202601"}, {43, "A:2026Feb B:2026FriW3 C:202601"}} {
		run, err := runBatcher(t, in, transform.BatcherConfig{PerValue: true, Release: tt.release}, Options{})
		if err != nil || run.close != nil {
			t.Fatal(err, run.close)
		}
		var kept []string
		for _, b := range run.batches {
			for _, v := range b.Values {
				kept = append(kept, v.DataElement+":"+v.Period)
			}
		}
		if strings.Join(kept, " ") != tt.kept {
			t.Errorf("release %d: kept %v, want %s", tt.release, kept, tt.kept)
		}
		for _, c := range run.report.Conflicts {
			if c.Conflict == nil || c.Conflict.ErrorCode != transform.CodePeriodNotValid {
				t.Errorf("release %d: conflict %+v", tt.release, c)
			}
		}
	}
}
