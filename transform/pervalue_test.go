package transform

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// collect is an Emit that keeps copies of the batches.
func collect(into *[]Batch) func(*Batch) error {
	return func(b *Batch) error {
		cp := *b
		cp.Values = append([]DataValue(nil), b.Values...)
		*into = append(*into, cp)
		return nil
	}
}

// The conflicts DHIS2 2.38–2.42 reports for the checks Tally can make, with the texts of
// ErrorCode.java and the property and object types of DataValueImportConflict.java
// (dhis2-core; spec dhis2.md §1.5), objects keyed by schema name as
// ImportConflict.createConflict does (spec §2.3).
func TestValidateConflictsAsDHIS2(t *testing.T) {
	tests := []struct {
		name string
		v    DataValue
		want ImportConflict
	}{
		{"no data element", DataValue{Period: "202401", OrgUnit: "OU", Value: "1"},
			ImportConflict{Objects: map[string]string{"dataElement": ""}, ErrorCode: "E7610", Property: "dataElement",
				Value: "Data element not found or not accessible: `null`"}},
		{"no period", DataValue{DataElement: "DE", OrgUnit: "OU", Value: "1"},
			ImportConflict{Objects: map[string]string{"period": ""}, ErrorCode: "E7611", Property: "period",
				Value: "Period not valid: `null`"}},
		{"bad period", DataValue{DataElement: "DE", Period: "2024W53", OrgUnit: "OU", Value: "1"},
			ImportConflict{Object: "2024W53", Objects: map[string]string{"period": "2024W53"}, ErrorCode: "E7611",
				Property: "period", Value: "Period not valid: `2024W53`"}},
		// DHIS2 checks the period before the org unit and the value (DataValueSetImportValidator.init)
		{"bad period, no org unit, no value", DataValue{DataElement: "DE", Period: "2024-13"},
			ImportConflict{Object: "2024-13", Objects: map[string]string{"period": "2024-13"}, ErrorCode: "E7611",
				Property: "period", Value: "Period not valid: `2024-13`"}},
		{"no org unit", DataValue{DataElement: "DE", Period: "202401", Value: "1"},
			ImportConflict{Objects: map[string]string{"organisationUnit": ""}, ErrorCode: "E7612", Property: "orgUnit",
				Value: "Organisation unit not found or not accessible: `null`"}},
		{"neither value nor comment", DataValue{DataElement: "f7n9E0hX8qk", Period: "201201", OrgUnit: "OU"},
			ImportConflict{Object: "f7n9E0hX8qk", Objects: map[string]string{"dataElement": "f7n9E0hX8qk"}, ErrorCode: "E7618",
				Property: "value", Value: "Data value or comment not specified for data element: `f7n9E0hX8qk`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.v.Index = 4
			e := Validate(&tt.v)
			if e == nil {
				t.Fatal("valid")
			}
			tt.want.Indexes = []int{4}
			if got := e.DHIS2(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("conflict\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	for _, ok := range []DataValue{
		{DataElement: "DE", Period: "202401", OrgUnit: "OU", Comment: "only a comment"},
		{DataElement: "DE", Period: "202401", OrgUnit: "OU", Deleted: true},
	} {
		if e := Validate(&ok); e != nil {
			t.Errorf("%+v: %v", ok, e)
		}
	}
}

func TestValidateForRelease(t *testing.T) {
	v := DataValue{DataElement: "DE", Period: "2026FriW3", OrgUnit: "OU", Value: "1"}
	if e := ValidateFor(&v, 43); e != nil {
		t.Fatalf("2.43: %v", e)
	}
	e := ValidateFor(&v, 42)
	if e == nil || e.Conflict.ErrorCode != CodePeriodNotValid || e.Value != "2026FriW3" {
		t.Fatalf("2.42: %+v", e)
	}
	if want := "a period DHIS2 2.42 accepts: this type exists from 2.43"; e.Expected != want {
		t.Errorf("expected %q", e.Expected)
	}
}

// A PerValue Batcher keeps the good values and records each bad one, as DHIS2 2.38–2.42
// stores the valid values of a payload and reports the others as conflicts with status
// WARNING (spec dhis2.md §1.5, §2.2; conformance README §6.1, dataValueSetANull.xml:
// 1 stored, 2 conflicts).
func TestBatcherPerValue(t *testing.T) {
	var got []Batch
	b := NewBatcher(BatcherConfig{Source: "s", MaxValues: 2, PerValue: true, MaxConflicts: 2, Emit: collect(&got)})
	vals := []DataValue{
		{DataElement: "a", Period: "202401", OrgUnit: "OU", Value: "1"},
		{DataElement: "b", Period: "202401", OrgUnit: "OU"},                // E7618
		{DataElement: "c", Period: "202401", OrgUnit: "OU", Value: "3"},    //
		{DataElement: "d", Period: "2024-13", OrgUnit: "OU", Value: "4"},   // E7611
		{DataElement: "e", Period: "202401", OrgUnit: "OU", Comment: "ok"}, //
		{DataElement: "f", Period: "202401", Value: "6"},                   // E7612, not kept past the bound
	}
	if err := b.Group(Group{}); err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if err := b.Value(&vals[i], pos{i + 1}); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
	}
	// a problem the parser found itself with the next value is a value conflict too
	if err := b.Reject(&InputError{Index: 0, Field: "deleted", Value: "maybe", Expected: "true or false"}, pos{7}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var kept []string
	for _, bt := range got {
		for _, v := range bt.Values {
			kept = append(kept, v.DataElement)
		}
	}
	if !reflect.DeepEqual(kept, []string{"a", "c", "e"}) || got[1].Values[0].Index != 4 {
		t.Fatalf("kept %v in %d batches", kept, len(got))
	}
	r := b.Report()
	if r.Read != 7 || r.Kept != 3 || r.Rejected != 4 || r.More != 2 || len(r.Conflicts) != 2 {
		t.Fatalf("report %+v", r)
	}
	if c := r.Conflicts[0]; c.Index != 1 || c.Line != 2 || c.Conflict.ErrorCode != CodeValueNotDefined {
		t.Errorf("first conflict %+v", c)
	}
	if c := r.Conflicts[1]; c.Index != 3 || c.Conflict.ErrorCode != CodePeriodNotValid {
		t.Errorf("second conflict %+v", c)
	}

	// Document-level problems still refuse the payload in PerValue mode.
	doc := NewBatcher(BatcherConfig{PerValue: true, Emit: func(*Batch) error { t.Fatal("emitted"); return nil }})
	_ = doc.Value(&DataValue{DataElement: "a", Period: "202401", OrgUnit: "OU", Value: "1"}, pos{1})
	if err := doc.Reject(&InputError{Index: -1, Field: "strategy", Value: "SOMETIMES", Expected: "an import strategy"}, pos{1}); err != nil {
		t.Fatal(err)
	}
	list, ok := AsInputErrors(doc.Close())
	if !ok || len(list.Errs) != 1 || list.Errs[0].Field != "strategy" {
		t.Fatalf("document-level problem: %+v", list)
	}
	if r := doc.Report(); r.Kept != 0 || r.Rejected != 1 {
		t.Errorf("report after a document-level problem: %+v", r)
	}
}

// The zero BatcherConfig keeps refusing the whole payload, and its report says so.
func TestBatcherWholePayloadReport(t *testing.T) {
	b := NewBatcher(BatcherConfig{Emit: func(*Batch) error { t.Fatal("emitted an invalid payload"); return nil }})
	_ = b.Value(&DataValue{DataElement: "a", Period: "202401", OrgUnit: "OU", Value: "1"}, pos{1})
	_ = b.Value(&DataValue{DataElement: "b", Period: "202401", OrgUnit: "OU"}, pos{2})
	if _, ok := AsInputErrors(b.Close()); !ok {
		t.Fatal("no problems reported")
	}
	if r := b.Report(); r.Read != 2 || r.Kept != 0 || r.Rejected != 2 || len(r.Conflicts) != 0 {
		t.Errorf("report %+v", r)
	}
}

// Empty payloads are valid (conformance README §5.5): no values, no batches, no error.
func TestBatcherEmpty(t *testing.T) {
	for _, perValue := range []bool{false, true} {
		b := NewBatcher(BatcherConfig{PerValue: perValue, Emit: func(*Batch) error { t.Fatal("emitted"); return nil }})
		if err := b.Group(Group{DataSet: "DS"}); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil || b.Batches() != 0 || !reflect.DeepEqual(b.Report(), ValueReport{}) {
			t.Errorf("perValue %v: %v, %d batches, %+v", perValue, err, b.Batches(), b.Report())
		}
	}
}

// A group's complete date, data set, schemes and strategy reach the batch and survive the
// stream encoding.
func TestGroupReachesBatchAndCodec(t *testing.T) {
	var got []Batch
	b := NewBatcher(BatcherConfig{Source: "s", TxID: "tx", Received: time.Unix(1700000000, 0).UTC(),
		Schemes: IDSchemes{OrgUnit: SchemeCode}, ImportStrategy: StrategyCreate, Emit: collect(&got)})
	v := func() *DataValue { return &DataValue{DataElement: "DE", Period: "202401", OrgUnit: "OU", Value: "1"} }
	_ = b.Group(Group{DataSet: "DS", CompleteDate: "2024-02-03", Schemes: IDSchemes{IDScheme: SchemeCode}})
	_ = b.Value(v(), pos{1})
	_ = b.Group(Group{DataSet: "DS", CompleteDate: "2024-02-03", ImportStrategy: StrategyDelete})
	_ = b.Value(v(), pos{2})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d batches", len(got))
	}
	if g := got[0]; g.CompleteDate != "2024-02-03" || g.DataSet != "DS" || g.ImportStrategy != "CREATE" ||
		g.Schemes != (IDSchemes{IDScheme: SchemeCode, OrgUnit: SchemeCode}) {
		t.Errorf("first batch %+v", g)
	}
	if got[1].ImportStrategy != "DELETE" {
		t.Errorf("the payload's strategy does not win: %q", got[1].ImportStrategy)
	}
	for i := range got {
		back, err := DecodeBatch(EncodeBatch(&got[i]))
		if err != nil || !reflect.DeepEqual(*back, got[i]) {
			t.Fatalf("codec changed batch %d: %v\n got %+v\nwant %+v", i, err, back, got[i])
		}
	}
}

// Conflicts of one code and object merge into one entry with their indexes, as DHIS2's
// ImportConflict.mergeWith does (conformance README §6.1, dataValueSetG.xml: the two
// values with the unknown data element nonEx1sting are one conflict with two indexes).
func TestMergeConflicts(t *testing.T) {
	bad := []DataValue{
		{Index: 0, DataElement: "DE", OrgUnit: "OU", Value: "1"},
		{Index: 1, DataElement: "DE", Period: "202401", Value: "1"},
		{Index: 2, DataElement: "DE", OrgUnit: "OU", Value: "2"},
		{Index: 5, DataElement: "X", Period: "202401", OrgUnit: "OU"},
	}
	var errs []*InputError
	for i := range bad {
		errs = append(errs, Validate(&bad[i]))
	}
	errs = append(errs, &InputError{Index: 6, Field: "deleted", Value: "maybe", Expected: "true or false"},
		&InputError{Index: 7, Field: "deleted", Value: "maybe", Expected: "true or false"})
	got := MergeConflicts(errs)
	var codes []string
	var indexes [][]int
	for _, c := range got {
		codes = append(codes, c.ErrorCode)
		indexes = append(indexes, c.Indexes)
	}
	if !reflect.DeepEqual(codes, []string{"E7611", "E7612", "E7618", ""}) ||
		!reflect.DeepEqual(indexes, [][]int{{0, 2}, {1}, {5}, {6, 7}}) {
		t.Fatalf("codes %v, indexes %v", codes, indexes)
	}
	// A problem DHIS2 has no code for takes the older {object, value} form.
	js, _ := json.Marshal(got[3])
	if want := `{"object":"deleted","value":"deleted \"maybe\": true or false","indexes":[6,7]}`; string(js) != want {
		t.Errorf("plain conflict %s, want %s", js, want)
	}
	js, _ = json.Marshal(got[2])
	if want := `{"object":"X","objects":{"dataElement":"X"},"value":"Data value or comment not specified for data element: ` +
		"`X`" + `","errorCode":"E7618","property":"value","indexes":[5]}`; string(js) != want {
		t.Errorf("E7618 conflict %s, want %s", js, want)
	}
}

// DHIS2's ImportStrategy names and legacy aliases (dhis2-core importexport/ImportStrategy.java:
// NEW_AND_UPDATES, NEW, UPDATES, DELETES mean CREATE_AND_UPDATE, CREATE, UPDATE, DELETE).
func TestParseImportStrategy(t *testing.T) {
	for in, want := range map[string]ImportStrategy{
		"": "", "CREATE_AND_UPDATE": StrategyCreateAndUpdate, "NEW_AND_UPDATES": StrategyCreateAndUpdate,
		"CREATE": StrategyCreate, "NEW": StrategyCreate, "UPDATE": StrategyUpdate, "UPDATES": StrategyUpdate,
		"DELETE": StrategyDelete, "DELETES": StrategyDelete, "delete": StrategyDelete, " Create_And_Update ": StrategyCreateAndUpdate,
	} {
		got, err := ParseImportStrategy(in)
		if err != nil || got != want {
			t.Errorf("ParseImportStrategy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"SYNC", "REPLACE", "CREATE-AND-UPDATE"} {
		_, err := ParseImportStrategy(in)
		if !errors.Is(err, ErrImportStrategy) || !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("ParseImportStrategy(%q): %v", in, err)
		}
	}
	if !StrategyDelete.IsDelete() || StrategyUpdate.IsDelete() {
		t.Error("IsDelete")
	}
}

// Under the DELETE strategy a value needs neither value nor comment: it names what to
// delete (DataValueSetImportValidator.validateDataValueIsDefined checks
// !context.getStrategy().isDelete(); conformance README §6.1, dataValueSetJDeleteNoValue
// with strategy DELETE deletes the stored value).
func TestBatcherDeleteStrategyNeedsNoValue(t *testing.T) {
	for _, tt := range []struct {
		cfg   ImportStrategy
		group ImportStrategy
		kept  int
	}{{"", "", 0}, {StrategyDelete, "", 1}, {"", StrategyDelete, 1}, {StrategyDelete, StrategyCreateAndUpdate, 0}} {
		var got []Batch
		b := NewBatcher(BatcherConfig{PerValue: true, ImportStrategy: tt.cfg, Emit: collect(&got)})
		_ = b.Group(Group{ImportStrategy: tt.group})
		_ = b.Value(&DataValue{DataElement: "DE", Period: "201201", OrgUnit: "OU"}, pos{1})
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if r := b.Report(); r.Kept != tt.kept || r.Rejected != 1-tt.kept {
			t.Errorf("query %q, payload %q: %+v", tt.cfg, tt.group, r)
		}
	}
}

// The Batcher checks a period once for a run of values that share it; its verdict on each
// value must still be ValidateFor's, also where periods alternate between valid, unknown to
// the release, and malformed.
func TestBatcherPeriodVerdictsMatchValidateFor(t *testing.T) {
	periods := []string{"202401", "202401", "2024NovQ1", "2024NovQ1", "202401", "2024-13", "2024-13", "2024Q1", "202401"}
	var vals []DataValue
	for i, pe := range periods {
		vals = append(vals, DataValue{DataElement: "de", Period: pe, OrgUnit: "OU", Value: "1", Index: i})
	}
	var got []Batch
	b := NewBatcher(BatcherConfig{Source: "s", PerValue: true, Release: 40, MaxConflicts: len(vals), Emit: collect(&got)})
	if err := b.Group(Group{}); err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		v := vals[i]
		if err := b.Value(&v, pos{i + 1}); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var refused []int
	for _, c := range b.Report().Conflicts {
		refused = append(refused, c.Index)
	}
	var want []int
	for i := range vals {
		if bad := ValidateFor(&vals[i], 40); bad != nil {
			want = append(want, i)
			if c := b.Report().Conflicts[len(want)-1]; c.Expected != bad.Expected {
				t.Errorf("value %d (%s): %q, ValidateFor says %q", i, vals[i].Period, c.Expected, bad.Expected)
			}
		}
	}
	if !reflect.DeepEqual(refused, want) || !reflect.DeepEqual(want, []int{2, 3, 5, 6}) {
		t.Fatalf("refused %v, ValidateFor refuses %v (want 2, 3, 5, 6)", refused, want)
	}
}
