package dvs

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

type check func(t *testing.T, s *recSink)

func count(n int) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		if len(s.values) != n {
			t.Errorf("got %d values, want %d", len(s.values), n)
		}
	}
}

func group(g transform.Group) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		if len(s.groups) != 1 || !reflect.DeepEqual(s.groups[0], g) {
			t.Errorf("groups = %+v, want one: %+v", s.groups, g)
		}
	}
}

func value(i int, want transform.DataValue) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		want.Index = i
		if i >= len(s.values) {
			t.Errorf("no value %d", i)
			return
		}
		if got := s.values[i]; !reflect.DeepEqual(got, want) {
			t.Errorf("value %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// every checks a property of all values.
func every(what string, ok func(v *transform.DataValue) bool) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		for i := range s.values {
			if !ok(&s.values[i]) {
				t.Errorf("value %d %+v: not %s", i, s.values[i], what)
			}
		}
	}
}

// field collects one field of every value.
func field(name string, want ...string) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		var got []string
		for _, v := range s.values {
			got = append(got, reflect.ValueOf(v).FieldByName(name).String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func distinct(name string, n int) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		seen := map[string]bool{}
		for _, v := range s.values {
			seen[reflect.ValueOf(v).FieldByName(name).String()] = true
		}
		if len(seen) != n {
			t.Errorf("%d distinct %s, want %d", len(seen), name, n)
		}
	}
}

func deletedAt(idx ...int) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		var got []int
		for i, v := range s.values {
			if v.Deleted {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, idx) {
			t.Errorf("deleted values %v, want %v", got, idx)
		}
	}
}

func countWhere(what string, n int, ok func(v *transform.DataValue) bool) check {
	return func(t *testing.T, s *recSink) {
		t.Helper()
		got := 0
		for i := range s.values {
			if ok(&s.values[i]) {
				got++
			}
		}
		if got != n {
			t.Errorf("%d values %s, want %d", got, what, n)
		}
	}
}

var (
	dvsA   = transform.Group{DataSet: "pBOMPrpg1QX"}
	cht    = transform.Group{DataSet: "VMuFODsyWaO", CompleteDate: "2000-02-21"}
	values = func(vs ...string) check { return field("Value", vs...) }
	bDEs   = []string{"f7n9E0hX8qk", "f7n9E0hX8qk", "f7n9E0hX8qk", "f7n9E0hX8qk", "Ix2HsbDMLea", "Ix2HsbDMLea",
		"Ix2HsbDMLea", "Ix2HsbDMLea", "eY5ehpbEsB7", "eY5ehpbEsB7", "eY5ehpbEsB7", "eY5ehpbEsB7"}
	bPeriods = []string{"201201", "201201", "201202", "201202", "201201", "201201", "201202", "201202",
		"201201", "201201", "201202", "201202"}
	bOrgUnits = []string{"DiszpKrYNg8", "BdfsJfj87js", "DiszpKrYNg8", "BdfsJfj87js", "DiszpKrYNg8", "BdfsJfj87js",
		"DiszpKrYNg8", "BdfsJfj87js", "DiszpKrYNg8", "BdfsJfj87js", "DiszpKrYNg8", "BdfsJfj87js"}
	bValues = []string{"10001", "10002", "10003", "10004", "10005", "10006", "10007", "10008", "10009",
		"10010", "10011", "10012"}
	// setB is dataValueSetB's twelve values: DE_A, DE_B, DE_C × 201201, 201202 × OU_A, OU_B.
	setB = []check{count(12), field("DataElement", bDEs...), field("Period", bPeriods...),
		field("OrgUnit", bOrgUnits...), values(bValues...)}
	fullA0 = transform.DataValue{DataElement: "f7n9E0hX8qk", Period: "201201", OrgUnit: "DiszpKrYNg8",
		Value: "10001", StoredBy: "john", Comment: "comment"}
	code     = transform.IDSchemes{IDScheme: transform.SchemeCode}
	attrUID  = transform.IDScheme("ATTRIBUTE:uh6H2ff562G")
	noCombos = every("without combos", func(v *transform.DataValue) bool {
		return v.CategoryOptionCombo == "" && v.AttributeOptionCombo == "" && v.Categories == nil && v.Attributes == nil
	})
)

func cat(cs ...[]check) (out []check) {
	for _, c := range cs {
		out = append(out, c...)
	}
	return out
}

// TestConformance reads every fixture of the shared corpus (README §6, §7, §9) and checks
// what the parsers deliver, then runs it through a Batcher and checks which values the
// canonical validation refuses.
func TestConformance(t *testing.T) {
	xmlD, jsonD, csvD := xmlDecode(Options{}), jsonDecode(Options{}), csvDecode(CSVOptions{})
	tests := []struct {
		file    string
		decode  decodeFunc
		checks  []check
		invalid []int // indexes the Batcher refuses
	}{
		// DHIS2 XML (README §6.1, §6.2)
		{"dvs/dataValueSetA.xml", xmlD, []check{count(3), group(dvsA), value(0, fullA0),
			field("OrgUnit", "DiszpKrYNg8", "BdfsJfj87js", "DiszpKrYNg8"), field("Period", "201201", "201201", "201202"),
			values("10001", "10002", "10003"), noCombos}, nil},
		{"dvs/dataValueSetACatCombo.xml", xmlD, []check{count(3),
			group(transform.Group{DataSet: "pBOMPrpg1QX", CompleteDate: "2012-01-09"}),
			field("Period", "201201", "201201", "201201"), field("OrgUnit", "DiszpKrYNg8", "DiszpKrYNg8", "DiszpKrYNg8"),
			field("CategoryOptionCombo", "kjuiHgy67hg", "Gad33qy67g5", "")}, nil},
		{"dvs/dataValueSetACode.xml", xmlD, []check{count(3),
			group(transform.Group{DataSet: "DS_A", CompleteDate: "2012-01-09", Schemes: code}),
			field("DataElement", "DE_A", "DE_B", "DE_C"), field("OrgUnit", "OU_A", "OU_A", "OU_A"),
			field("Period", "201201", "201201", "201201")}, nil},
		{"dvs/dataValueSetADeleted.xml", xmlD, []check{count(3), deletedAt(0, 1, 2), group(transform.Group{})}, nil},
		{"dvs/dataValueSetANull.xml", xmlD, []check{count(3), values("", "", "10003"), field("Comment", "", "", "comment")},
			[]int{0, 1}},
		{"dvs/dataValueSetAUpdate.xml", xmlD, []check{count(3), values("10011", "10022", "10033"),
			field("Comment", "updated comment", "updated comment", "updated comment")}, nil},
		{"dvs/dataValueSetB.xml", xmlD, cat(setB, []check{group(transform.Group{}), deletedAt(), noCombos}), nil},
		{"dvs/dataValueSetBAttribute.xml", xmlD, []check{count(12), group(transform.Group{}),
			distinct("DataElement", 3), distinct("OrgUnit", 2)}, nil},
		{"dvs/dataValueSetBAttributeIdScheme.xml", xmlD, []check{count(12),
			group(transform.Group{Schemes: transform.IDSchemes{DataElement: attrUID, OrgUnit: attrUID}}),
			field("DataElement", "DE1", "DE1", "DE1", "DE1", "DE2", "DE2", "DE2", "DE2", "DE3", "DE3", "DE3", "DE3")}, nil},
		{"dvs/dataValueSetBCode.xml", xmlD, []check{count(12), distinct("DataElement", 3)}, nil},
		{"dvs/dataValueSetBDeleted.xml", xmlD, cat(setB, []check{deletedAt(4, 5, 6, 7)}), nil},
		{"dvs/dataValueSetBNew.xml", xmlD, []check{count(12), distinct("Period", 4)}, nil},
		{"dvs/dataValueSetBNewDeleted.xml", xmlD, []check{count(12), deletedAt(4, 5, 6, 7)}, nil},
		{"dvs/dataValueSetBUpdate.xml", xmlD, []check{count(6), values("20009", "20010", "20011", "20012", "20013", "20014"),
			field("Comment", "comment09", "comment10", "comment11", "comment12", "comment13", "comment14")}, nil},
		{"dvs/dataValueSetC.xml", xmlD, []check{count(3), field("Period", "201205", "201205", "201205")}, nil},
		{"dvs/dataValueSetCCode.xml", xmlD, []check{count(3),
			field("CategoryOptionCombo", "OC_DEF_CODE", "OC_DEF_CODE", "OC_DEF_CODE")}, nil},
		{"dvs/dataValueSetD.xml", xmlD, []check{count(3), field("AttributeOptionCombo", "kjuiHgy67hg", "kjuiHgy67hg", "kjuiHgy67hg"),
			field("Period", "201201", "201201", "201201"), field("CategoryOptionCombo", "", "", "")}, nil},
		{"dvs/dataValueSetE.xml", xmlD, []check{count(3), field("OrgUnit", "DiszpKrYNg8", "j7Hg26FpoIa", "j7Hg26FpoIa"),
			field("AttributeOptionCombo", "kjuiHgy67hg", "kjuiHgy67hg", "kjuiHgy67hg")}, nil},
		{"dvs/dataValueSetF.xml", xmlD, []check{count(4),
			field("AttributeOptionCombo", "inValidUid1", "inValidUid1", "inValidUid1", "inValidUid1")}, nil},
		{"dvs/dataValueSetG.xml", xmlD, []check{count(4), field("DataElement", "nonEx1sting", "nonEx1sting", "f7n9E0hX8qk", "eY5ehpbEsB7"),
			field("OrgUnit", "DiszpKrYNg8", "DiszpKrYNg8", "nonEx1sting", "DiszpKrYNg8")}, nil},
		{"dvs/dataValueSetH.xml", xmlD, []check{count(3), field("Period", "201201", "201202", "201203"),
			field("AttributeOptionCombo", "kjuiHgy67hg", "kjuiHgy67hg", "kjuiHgy67hg")}, nil},
		{"dvs/dataValueSetInvalid.xml", xmlD, []check{count(3), values("1", "2", "7")}, nil},
		{"dvs/dataValueSetNonStrict.xml", xmlD, []check{count(3), field("Period", "201201", "2012Q2", "2012"),
			field("CategoryOptionCombo", "kjuiHgy67hg", "", ""), field("AttributeOptionCombo", "", "Gad33qy67g5", "")}, nil},
		{"dvs/v2.43/dataValueSetD2.xml", xmlD, []check{count(3), field("AttributeOptionCombo", "", "", ""),
			field("OrgUnit", "DiszpKrYNg8", "DiszpKrYNg8", "DiszpKrYNg8")}, nil},
		{"dvs/v2.43/dataValueSetE.xml", xmlD, []check{count(3)}, nil},
		{"dvs/v2.43/dataValueSetIllegalCoc.xml", xmlD, []check{count(1), field("CategoryOptionCombo", "kjuiHgy67hg")}, nil},
		{"dvs/v2.43/dataValueSetIllegalOrgUnit.xml", xmlD, []check{count(1), field("OrgUnit", "missingOrgu")}, nil},

		// DHIS2 JSON
		{"dvs/dataValueSetCreateDate.json", jsonD, []check{count(1), group(transform.Group{}),
			value(0, transform.DataValue{DataElement: "f7n9E0hX8qk", Period: "201201", OrgUnit: "DiszpKrYNg8", Value: "20", StoredBy: "system"})}, nil},
		{"dvs/dataValueSetCreateDateUpdated.json", jsonD, []check{count(1), values("22"), field("Comment", "new comment")}, nil},
		{"dvs/dataValueSetJ.json", jsonD, []check{count(1),
			value(0, transform.DataValue{DataElement: "f7n9E0hX8qk", Period: "201201", OrgUnit: "DiszpKrYNg8", Value: "10"})}, nil},
		{"dvs/dataValueSetJDeleteNewValue.json", jsonD, []check{count(1), values("9")}, nil},
		// No value: DHIS2 deletes it under strategy DELETE; the canonical validation wants a
		// value, a comment or deleted:true, so the ingest must apply the strategy first.
		{"dvs/dataValueSetJDeleteNoValue.json", jsonD, []check{count(1), values("")}, []int{0}},
		{"dvs/dataValueSetJDeleteZeroValue.json", jsonD, []check{count(1), values("0")}, nil},
		{"dvs/e2e/dataValues_single_dataset.json", jsonD, []check{count(2),
			// the header key is "completedDate" (sic), which DHIS2 does not read either
			group(transform.Group{DataSet: "VEM58nY22sO"}),
			field("Period", "201911", "201911"), field("OrgUnit", "O6uvpzGd5pu", "O6uvpzGd5pu"),
			field("CategoryOptionCombo", "oPcWGgS2Liz", "rtfSaMjPyq6"), field("AttributeOptionCombo", "HllvX50cXC0", "HllvX50cXC0"),
			values("1000", "2000")}, nil},
		{"dvs/e2e/dataValues_bulk.json", jsonD, []check{count(231), distinct("DataElement", 73), distinct("OrgUnit", 1),
			countWhere("in 201912", 222, func(v *transform.DataValue) bool { return v.Period == "201912" }),
			countWhere("in 2018", 9, func(v *transform.DataValue) bool { return v.Period == "2018" })}, nil},
		// a metadata package is not a data value set: every member is unknown and skipped
		{"dvs/e2e/metadata.json", jsonD, []check{count(0), group(transform.Group{})}, nil},

		// DHIS2 CSV
		{"dvs/dataValueSetB.csv", csvD, cat(setB, []check{group(transform.Group{}),
			every("stored by john with a comment", func(v *transform.DataValue) bool {
				return v.StoredBy == "john" && v.Comment == "comment" && !v.FollowUp && !v.Deleted
			})}), nil},
		{"dvs/dataValueSetBNoHeader.csv", csvDecode(CSVOptions{FirstRowIsHeader: new(false)}), setB, nil},
		{"dvs/dataValueSetBooleanTest.csv", csvD, []check{count(18), values("true", "True", "false", "False", "f", "F", "t", "T",
			"1", "0", "test", "not true", "1", "t", "true", "True", "false", "test")}, nil},
		{"dvs/dataValueSetWithDataSetHeader.csv", csvDecode(CSVOptions{DataSet: "pBOMPrpg1QX"}), []check{count(3),
			group(dvsA), values("10001", "10002", "10003"), field("OrgUnit", "DiszpKrYNg8", "BdfsJfj87js", "DiszpKrYNg8")}, nil},
		{"dvs/v2.43/dataValueSetB.csv", csvD, setB, nil},
		{"dvs/v2.43/dataValueSetBooleanDuplicatesTest.csv", csvD, []check{count(18)}, nil},
		{"dvs/v2.43/dataValueSetBooleanTest.csv", csvD, []check{count(18), distinct("Period", 18)}, nil},
		{"dvs/v2.43/dataValueSetWithDataSetHeader.csv", csvDecode(CSVOptions{DataSet: "pBOMPrpg1QX"}), []check{count(3), group(dvsA)}, nil},

		// CHT's DHIS2 export (README §7): numbers become their literal text, the header period
		// applies to every value, completeDate (the export date) stays in the group.
		{"cht/export-sums-all-dataElements.json", jsonD, []check{count(4), group(cht),
			value(1, transform.DataValue{DataElement: "e22tIwy1nKR", Period: "200002", OrgUnit: "ou-chu1",
				CategoryOptionCombo: "HllvX50cXC0", AttributeOptionCombo: "HllvX50cXC0", Value: "8"}),
			field("OrgUnit", "ou-chu1", "ou-chu1", "ou-chu2", "ou-chu2"), values("24", "8", "12", "4"),
			every("in 200002", func(v *transform.DataValue) bool { return v.Period == "200002" })}, nil},
		{"cht/export-filter-orgUnit-ou-chu1.json", jsonD, []check{count(2), group(cht), values("24", "8")}, nil},
		{"cht/export-zeros-without-target-docs.json", jsonD, []check{count(2), values("0", "0"), field("OrgUnit", "ou-chu", "ou-chu")}, nil},
		{"cht/export-two-orgUnits-in-hierarchy.json", jsonD, []check{count(4), values("24", "8", "12", "4"),
			field("OrgUnit", "alt", "alt", "ou-chu", "ou-chu")}, nil},
		{"cht/export-multiple-orgUnits-ds-1.json", jsonD, []check{count(2),
			group(transform.Group{DataSet: "ds-1", CompleteDate: "2000-02-21"}),
			// "arbitrary": "yes", copied from the target's dhis config, is skipped
			value(0, transform.DataValue{DataElement: "de-1", Period: "200002", OrgUnit: "ou-1", Value: "1"}),
			value(1, transform.DataValue{DataElement: "de-both", Period: "200002", OrgUnit: "ou-1", Value: "100"})}, nil},
		{"cht/export-multiple-orgUnits-ds-2.json", jsonD, []check{count(2), field("DataElement", "de-2", "de-both"), values("2", "100")}, nil},
		{"cht/export-human-readable-multiple-orgUnits-ds-1.json", jsonD, []check{count(2),
			group(transform.Group{DataSet: "dataset 1", CompleteDate: "2000-02-21"}),
			field("DataElement", "data element 1", "data element both")}, nil},
		// The .dataValues.json files are the bare dataValues array: no header, so no period;
		// the Batcher refuses every value until the CHT adapter supplies the period.
		{"cht/export-human-readable-single.dataValues.json", jsonD, []check{count(2), group(transform.Group{}),
			value(1, transform.DataValue{DataElement: "facility-deliveries", OrgUnit: "chu", CategoryOptionCombo: "HllvX50cXC0",
				AttributeOptionCombo: "HllvX50cXC0", Value: "4"})}, []int{0, 1}},
		{"cht/export-other-dataSet-targets-excluded.dataValues.json", jsonD, []check{count(1),
			value(0, transform.DataValue{DataElement: "relevant", OrgUnit: "ou-chu", Value: "0"})}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			payload := readFixture(t, tt.file)
			var s recSink
			if err := tt.decode(strings.NewReader(payload), &s); err != nil {
				t.Fatalf("decode: %v", err)
			}
			for _, c := range tt.checks {
				c(t, &s)
			}
			for i, p := range s.pos {
				if p.Line == 0 {
					t.Errorf("value %d has no line: %+v", i, p)
				}
			}
			run, err := runBatcher(t, tt.decode, payload, 5)
			if err != nil {
				t.Fatalf("decode into Batcher: %v", err)
			}
			var invalid []int
			if run.errs != nil {
				for _, e := range run.errs.Errs {
					invalid = append(invalid, e.Index)
					if e.Line == 0 {
						t.Errorf("error without a line: %v", e)
					}
				}
			}
			if !slices.Equal(invalid, tt.invalid) {
				t.Errorf("Batcher refused %v (%v), want %v", invalid, run.errs, tt.invalid)
			}
			if tt.invalid == nil && !reflect.DeepEqual(indexed(run.values), indexed(s.values)) {
				t.Errorf("Batcher emitted %d values, different from the %d decoded", len(run.values), len(s.values))
			}
			checkPerValue(t, tt.decode, payload, s.values, tt.invalid)
		})
	}
}

// checkPerValue runs the payload through a PerValue Batcher: it must keep exactly the
// decoded values that are not invalid and report a conflict for each invalid one, as
// DHIS2 2.38–2.42 stores the good values of a payload (conformance README §6.1).
func checkPerValue(t *testing.T, decode decodeFunc, payload string, decoded []transform.DataValue, invalid []int) {
	t.Helper()
	run, err := runBatcherWith(t, decode, payload, transform.BatcherConfig{MaxValues: 5, PerValue: true})
	if err != nil || run.errs != nil {
		t.Fatalf("per value: %v %v", err, run.errs)
	}
	var want []transform.DataValue
	for _, v := range decoded {
		if !slices.Contains(invalid, v.Index) {
			want = append(want, v)
		}
	}
	if !reflect.DeepEqual(indexed(run.values), indexed(want)) {
		t.Errorf("per value: kept %d values, want %d", len(run.values), len(want))
	}
	var got []int
	for _, c := range run.report.Conflicts {
		got = append(got, c.Index)
		if c.Conflict == nil || c.Line == 0 {
			t.Errorf("per value: conflict without DHIS2 code or line: %+v", c)
		}
	}
	r := run.report
	if !slices.Equal(got, invalid) || r.Read != len(decoded) || r.Kept != len(want) || r.Rejected != len(invalid) {
		t.Errorf("per value: report %+v, conflicts at %v; want %v", r, got, invalid)
	}
}

// The conflicts DHIS2 2.42 reports for the fixtures whose values Tally can judge without
// metadata (conformance README §6.1): dataValueSetANull.xml stores 1 value and reports 2
// conflicts (E7618, "Data value or comment not specified for data element", one per data
// element, DataValueSetImportValidator.validateDataValueIsDefined); CHT's bare dataValues
// arrays have no period (E7611) until the CHT adapter supplies it.
func TestConformancePerValueConflicts(t *testing.T) {
	tests := []struct {
		file    string
		decode  decodeFunc
		kept    []string // data elements
		codes   []string
		indexes [][]int
	}{
		{"dvs/dataValueSetANull.xml", xmlDecode(Options{}), []string{"eY5ehpbEsB7"},
			[]string{"E7618", "E7618"}, [][]int{{0}, {1}}},
		{"cht/export-human-readable-single.dataValues.json", jsonDecode(Options{}), nil,
			[]string{"E7611"}, [][]int{{0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			run, err := runBatcherWith(t, tt.decode, readFixture(t, tt.file), transform.BatcherConfig{PerValue: true})
			if err != nil || run.errs != nil {
				t.Fatal(err, run.errs)
			}
			var kept []string
			for _, v := range run.values {
				kept = append(kept, v.DataElement)
			}
			var codes []string
			var indexes [][]int
			for _, c := range transform.MergeConflicts(run.report.Conflicts) {
				codes = append(codes, c.ErrorCode)
				indexes = append(indexes, c.Indexes)
			}
			if !slices.Equal(kept, tt.kept) || !slices.Equal(codes, tt.codes) || !reflect.DeepEqual(indexes, tt.indexes) {
				t.Errorf("kept %v, conflicts %v at %v; want %v, %v at %v", kept, codes, indexes, tt.kept, tt.codes, tt.indexes)
			}
		})
	}
}

func indexed(vs []transform.DataValue) []transform.DataValue {
	if len(vs) == 0 {
		return nil
	}
	return vs
}

// TestConformanceEmpty: DHIS2 answers an empty body with an error (README §9); so does Tally.
func TestConformanceEmpty(t *testing.T) {
	for _, tt := range []struct {
		file   string
		decode decodeFunc
	}{
		{"dvs/e2e/empty_file.json", jsonDecode(Options{})},
		{"dvs/e2e/empty_file.xml", xmlDecode(Options{})},
	} {
		t.Run(tt.file, func(t *testing.T) {
			var s recSink
			e := inputError(t, tt.decode(strings.NewReader(readFixture(t, tt.file)), &s))
			if !strings.Contains(e.Expected, "empty") || len(s.values) != 0 {
				t.Errorf("got %v and %d values, want an error about the empty body", e, len(s.values))
			}
		})
	}
}
