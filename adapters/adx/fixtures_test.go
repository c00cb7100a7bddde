package adx

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform"
)

// TestFixturesWithBatcher runs every fixture through transform.Batcher, the sink used in
// production, and checks the counts README §5 gives.
func TestFixturesWithBatcher(t *testing.T) {
	counts := map[string]struct{ groups, values int }{
		"importA.adx.xml":                 {5, 9},
		"importB.adx.xml":                 {5, 9},
		"importC.adx.xml":                 {5, 9},
		"exportA.adx.xml":                 {2, 2},
		"exportB.adx.xml":                 {4, 4},
		"exportC.adx.xml":                 {4, 4},
		"exportD.adx.xml":                 {1, 1},
		"importDates.adx.xml":             {1, 1},
		"importDatesUpdate.adx.xml":       {1, 1},
		"v2.43/importDates.adx.xml":       {1, 1},
		"v2.43/importDatesUpdate.adx.xml": {1, 1},
		"adx_data_sample1.xml":            {2, 13},
		"adx_data_sample2.xml":            {2, 13},
	}
	for _, f := range fixtureFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			want, ok := counts[f.name]
			if !ok {
				t.Fatalf("fixture %s has no expected outcome in this test; add one", f.name)
			}
			var got []transform.DataValue
			groups := &groupCounter{}
			b := transform.NewBatcher(transform.BatcherConfig{Source: "test", Emit: func(b *transform.Batch) error {
				if b.Schemes.IDScheme != transform.SchemeCode {
					t.Errorf("batch schemes %+v, want idScheme CODE (ADX default)", b.Schemes)
				}
				got = append(got, b.Values...)
				return nil
			}})
			if err := Decode(bytes.NewReader(f.data), groups.wrap(b), Options{}); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Fatalf("Batcher: %v", err)
			}
			if groups.n != want.groups || len(got) != want.values {
				t.Fatalf("%d groups, %d values; README says %d groups, %d values", groups.n, len(got), want.groups, want.values)
			}
			for i, v := range got {
				if v.Index != i {
					t.Errorf("value %d has Index %d", i, v.Index)
				}
			}
		})
	}
}

// groupCounter counts Group calls on the way to another sink.
type groupCounter struct{ n int }

type countingSink struct {
	*transform.Batcher
	c *groupCounter
}

func (s countingSink) Group(g transform.Group) error { s.c.n++; return s.Batcher.Group(g) }

func (c *groupCounter) wrap(b *transform.Batcher) transform.Sink { return countingSink{b, c} }

// TestImportA checks every field of the values of importA (README §5.1, §7.1): category
// attributes kept in the order written, explicit combos honoured, attribute categories on
// the group, periods converted, the text value taken from its annotation.
func TestImportA(t *testing.T) {
	data := readFixture(t, "importA.adx.xml")
	rec := decodeAll(t, scannerDecode, data, Options{IsText: isText("Malaria text")})
	num := "Malaria numeric"
	v := func(pe, ou, de string, c []transform.CategoryOption, coc string, a []transform.CategoryOption, aoc, value string) transform.DataValue {
		return transform.DataValue{DataElement: de, Period: pe, OrgUnit: ou, Categories: c, CategoryOptionCombo: coc,
			Attributes: a, AttributeOptionCombo: aoc, Value: value}
	}
	fu5 := cats("Sex_category", "FFFFFFFFFFF", "Age_category", "under555555")
	want := []transform.DataValue{
		v("202001", "123", num, fu5, "", nil, "", "1"),
		v("202001", "123", num, cats("Sex_category", "MMMMMMMMMMM", "Age_category", "under555555"), "", nil, "", "2"),
		v("202001", "123", num, nil, "FOver555555", nil, "", "3"),
		v("202001", "123", num, nil, "MOver555555", nil, "", "4"),
		v("202001", "123", "Malaria text", nil, "", nil, "", "Text data value"),
		v("202002", "456", num, fu5, "", nil, "", "6"),
		v("2021Q1", "456", num, fu5, "", cats("Mechanism_category", "PEPFARRRRRR"), "", "10"),
		v("2021Q1", "456", num, cats("Sex_category", "FFFFFFFFFFF", "Age_category", "over5555555"), "",
			cats("Mechanism_category", "McDonaldsss"), "", "20"),
		v("2021Q1", "456", num, cats("Sex_category", "MMMMMMMMMMM", "Age_category", "under555555"), "", nil, "cocMcDonald", "30"),
	}
	if d := diffValues(want, rec.values); d != "" {
		t.Fatal(d)
	}
	wantDS := []string{"MalariaDS", "MalariaDS", "MalariaMechanismDS", "MalariaMechanismDS", "MalariaMechanismDS"}
	for i, g := range rec.groups {
		if g.DataSet != wantDS[i] {
			t.Errorf("group %d data set %q, want %q", i, g.DataSet, wantDS[i])
		}
		if g.Schemes != (transform.IDSchemes{IDScheme: transform.SchemeCode}) {
			t.Errorf("group %d schemes %+v, want only idScheme CODE", i, g.Schemes)
		}
	}
}

// TestImportABCSameStoredValues resolves the values of importA, B and C — the same nine
// values written with different id schemes — through the M-ADX metadata of README §4.1
// and checks they give the stored values README §5.1 asserts.
func TestImportABCSameStoredValues(t *testing.T) {
	stored := []string{
		"Malaria numeric|202001|Provincial|Female Under 5|default|1",
		"Malaria numeric|202001|Provincial|Male Under 5|default|2",
		"Malaria numeric|202001|Provincial|Female Over 5|default|3",
		"Malaria numeric|202001|Provincial|Male Over 5|default|4",
		"Malaria text|202001|Provincial|default|default|Text data value",
		"Malaria numeric|202002|District|Female Under 5|default|6",
		"Malaria numeric|2021Q1|District|Female Under 5|PEPFAR|10",
		"Malaria numeric|2021Q1|District|Female Over 5|McDonalds|20",
		"Malaria numeric|2021Q1|District|Male Under 5|McDonalds|30",
	}
	// Identifiers in each file's schemes → names; categories → which one they are.
	tests := []struct {
		file  string
		text  string
		names map[string]string
		cat   map[string]string
	}{
		{"importA.adx.xml", "Malaria text", map[string]string{
			"Malaria numeric": "Malaria numeric", "Malaria text": "Malaria text", "123": "Provincial", "456": "District",
			"FFFFFFFFFFF": "Female", "MMMMMMMMMMM": "Male", "under555555": "Under 5", "over5555555": "Over 5",
			"PEPFARRRRRR": "PEPFAR", "McDonaldsss": "McDonalds",
			"FOver555555": "Female Over 5", "MOver555555": "Male Over 5", "cocMcDonald": "McDonalds",
		}, map[string]string{"Sex_category": "sex", "Age_category": "age", "Mechanism_category": "mech"}},
		{"importB.adx.xml", "MalTexttttt", map[string]string{
			"MalNummmmmm": "Malaria numeric", "MalTexttttt": "Malaria text", "P1233333333": "Provincial", "D4566666666": "District",
			"F": "Female", "M": "Male", "under5": "Under 5", "over5": "Over 5", "PEPFAR": "PEPFAR", "McDonalds": "McDonalds",
			"Female Over 5": "Female Over 5", "Male Over 5": "Male Over 5", "McDonalds CategoryOptionCombo": "McDonalds",
		}, map[string]string{"sex": "sex", "age": "age", "mechanism": "mech"}},
		{"importC.adx.xml", "Mal_text", map[string]string{
			"Mal_num": "Malaria numeric", "Mal_text": "Malaria text", "Provincial Hospital": "Provincial", "District Hospital": "District",
			"Female": "Female", "Male": "Male", "Under 5": "Under 5", "Over 5": "Over 5",
			"PEPFAR mechanism": "PEPFAR", "McDonalds mechanism": "McDonalds",
			"F_Over5": "Female Over 5", "M_Over5": "Male Over 5", "coc_McDonalds": "McDonalds",
		}, map[string]string{"sexxxxxxxxx": "sex", "ageeeeeeeee": "age", "mechanismmm": "mech"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rec := decodeAll(t, scannerDecode, readFixture(t, tt.file), Options{IsText: isText(tt.text)})
			name := func(id string) string {
				n, ok := tt.names[id]
				if !ok {
					t.Fatalf("unknown identifier %q", id)
				}
				return n
			}
			var got []string
			for _, v := range rec.values {
				coc, aoc := "default", "default"
				if v.CategoryOptionCombo != "" {
					coc = name(v.CategoryOptionCombo)
				} else if len(v.Categories) > 0 {
					opt := map[string]string{}
					for _, c := range v.Categories {
						opt[tt.cat[c.Category]] = name(c.Option)
					}
					coc = opt["sex"] + " " + opt["age"]
				}
				if v.AttributeOptionCombo != "" {
					aoc = name(v.AttributeOptionCombo)
				} else if len(v.Attributes) == 1 && tt.cat[v.Attributes[0].Category] == "mech" {
					aoc = name(v.Attributes[0].Option)
				}
				got = append(got, strings.Join([]string{name(v.DataElement), v.Period, name(v.OrgUnit), coc, aoc, v.Value}, "|"))
			}
			if !slices.Equal(got, stored) {
				t.Fatalf("stored values:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(stored, "\n"))
			}
		})
	}
}

// TestFixtureDetails checks what README §5.3–§5.4 says of the other fixtures.
func TestFixtureDetails(t *testing.T) {
	uid := transform.IDSchemes{IDScheme: transform.SchemeUID}
	datesCats := cats("ageeeeeeeee", "over5555555", "sexxxxxxxxx", "MMMMMMMMMMM")
	dates := func(value, comment string) []transform.DataValue {
		return []transform.DataValue{{DataElement: "MalNummmmmm", Period: "202001", OrgUnit: "P1233333333",
			Categories: datesCats, Value: value, Comment: comment}}
	}
	tests := []struct {
		name   string
		file   string
		opts   Options
		check  func(t *testing.T, rec *recorder)
		values []transform.DataValue // when set, all values
	}{
		{
			// 2.42: the annotation of a numeric element is not its value; created and
			// lastUpdated (attributes and elements) are ignored, never categories.
			name: "importDates 2.42", file: "importDates.adx.xml", opts: Options{Schemes: uid},
			values: dates("33", "Text data value 33333"),
		},
		{name: "importDatesUpdate 2.42", file: "importDatesUpdate.adx.xml", opts: Options{Schemes: uid},
			values: dates("55", "Text data value 33333")},
		{
			// 2.43+: the annotation replaces the value (README §5.3, inferred).
			name: "importDates 2.43", file: "v2.43/importDates.adx.xml",
			opts:   Options{Schemes: uid, AnnotationIsValue: true},
			values: dates("33333", ""),
		},
		{name: "importDatesUpdate 2.43", file: "v2.43/importDatesUpdate.adx.xml",
			opts: Options{Schemes: uid, AnnotationIsValue: true}, values: dates("33333", "")},
		{
			name: "sample1", file: "adx_data_sample1.xml",
			check: func(t *testing.T, rec *recorder) {
				g := rec.groups[0]
				if g.DataSet != "Malaria" || g.CompleteDate != "2015-06-17" {
					t.Errorf("group 1 = %+v", g)
				}
				for i, v := range rec.values {
					if v.Period != "201501" || v.OrgUnit != "342" {
						t.Errorf("value %d: period %q org unit %q", i, v.Period, v.OrgUnit)
					}
					if wantAOC := map[bool]string{true: "McDonalds"}[rec.groupOf[i] == 0]; v.AttributeOptionCombo != wantAOC {
						t.Errorf("value %d: AOC %q, want %q", i, v.AttributeOptionCombo, wantAOC)
					}
				}
				if v := rec.values[5]; v.CategoryOptionCombo != "McDonalds" || v.DataElement != "MAL04" {
					t.Errorf("value 5 = %+v, want MAL04 with COC McDonalds", v)
				}
				if v := rec.values[8]; v.DataElement != "MAL03" || v.Value != "0" ||
					v.Comment != "Some qualifying text here on the datavalue" {
					t.Errorf("value 8 = %+v, want MAL03 0 with the annotation as comment", v)
				}
			},
		},
		{
			name: "sample2 ragged groups", file: "adx_data_sample2.xml",
			check: func(t *testing.T, rec *recorder) {
				if g := rec.groups[0]; g.DataSet != "" {
					t.Errorf("group 1 data set %q, want none", g.DataSet)
				}
				want := []transform.DataValue{
					{DataElement: "MAL01", Value: "32"},
					{DataElement: "MAL02", Value: "20"},
					{DataElement: "MAL04", Value: "10", Categories: cats("ageGroup", "under5", "sex", "M")},
					{DataElement: "MAL04", Value: "10", Categories: cats("ageGroup", "under5", "sex", "F")},
					{DataElement: "MAL04", Value: "10", Categories: cats("ageGroup", "5andOver", "sex", "M")},
					{DataElement: "MAL04", Value: "10", Categories: cats("ageGroup", "5andOver", "sex", "F")},
				}
				g1 := cats("dataSetComplete", "true", "mechanism", "PEPFAR")
				g2 := cats("mechanism", "OTHER")
				group2 := []transform.DataValue{want[0], want[1],
					{DataElement: "MAL03", Value: "0", Comment: "Some qualifying text here on the datavalue"}}
				group2 = append(group2, want[2:]...)
				var all []transform.DataValue
				for _, v := range want {
					v.Period, v.OrgUnit, v.Attributes = "201501", "342", g1
					all = append(all, v)
				}
				for _, v := range group2 {
					v.Period, v.OrgUnit, v.Attributes = "201501", "342", g2
					if v.Comment == "" {
						v.Comment = "Imported from facility system" // group comment, copied as DHIS2 2.42 does
					}
					all = append(all, v)
				}
				if d := diffValues(all, rec.values); d != "" {
					t.Error(d)
				}
			},
		},
		{
			name: "exportA text value", file: "exportA.adx.xml", opts: Options{IsText: isText("Malaria text")},
			values: []transform.DataValue{
				{DataElement: "Malaria numeric", Period: "202001", OrgUnit: "123",
					Categories: cats("Age_category", "under555555", "Sex_category", "FFFFFFFFFFF"), Value: "1"},
				{DataElement: "Malaria text", Period: "202002", OrgUnit: "123", Value: "Some text"},
			},
		},
		{
			name: "exportA without metadata", file: "exportA.adx.xml",
			check: func(t *testing.T, rec *recorder) {
				if v := rec.values[1]; v.Value != "0" || v.Comment != "Some text" {
					t.Errorf("text value without IsText = %+v, want value 0 and the annotation as comment", v)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := decodeAll(t, scannerDecode, readFixture(t, tt.file), tt.opts)
			if tt.values != nil {
				if d := diffValues(tt.values, rec.values); d != "" {
					t.Error(d)
				}
			}
			if tt.check != nil {
				tt.check(t, rec)
			}
			if want := tt.opts.Schemes.IDScheme.Or(transform.SchemeCode); rec.groups[0].Schemes.IDScheme != want {
				t.Errorf("idScheme %q, want %q", rec.groups[0].Schemes.IDScheme, want)
			}
		})
	}
}

// TestEncodeMatchesDHIS2Export writes the values of README §4.1 with each export's id
// schemes and compares the groups with DHIS2's expected output the way DHIS2's own test
// does: as a set of group strings (README §5.2).
func TestEncodeMatchesDHIS2Export(t *testing.T) {
	type row struct {
		ds, ou, de string
		cats       []transform.CategoryOption
		attrs      []transform.CategoryOption
		pe, value  string
	}
	tests := []struct {
		file string
		text string
		rows []row
	}{
		{"exportA.adx.xml", "Malaria text", []row{
			{"MalariaDS", "123", "Malaria numeric", cats("Age_category", "under555555", "Sex_category", "FFFFFFFFFFF"), nil, "202001", "1"},
			{"MalariaDS", "123", "Malaria text", nil, nil, "202002", "Some text"},
		}},
		{"exportB.adx.xml", "MalTexttttt", []row{
			{"Malaria DS", "P1233333333", "MalNummmmmm", cats("sex", "F", "age", "under5"), nil, "202001", "1"},
			{"Malaria DS", "P1233333333", "MalTexttttt", nil, nil, "202002", "Some text"},
			{"Malaria Mechanism DS", "D4566666666", "MalNummmmmm", cats("sex", "M", "age", "over5"), cats("mechanism", "McDonalds"), "202001", "2"},
			{"Malaria Mechanism DS", "D4566666666", "MalNummmmmm", cats("sex", "F", "age", "over5"), cats("mechanism", "PEPFAR"), "202001", "3"},
		}},
		{"exportC.adx.xml", "Mal_text", []row{
			{"MalariaDSSS", "Provincial Hospital", "Mal_num", cats("ageeeeeeeee", "Under 5", "sexxxxxxxxx", "Female"), nil, "202001", "1"},
			{"MalariaDSSS", "Provincial Hospital", "Mal_text", nil, nil, "202002", "Some text"},
			{"MalariaMech", "District Hospital", "Mal_num", cats("ageeeeeeeee", "Over 5", "sexxxxxxxxx", "Male"), cats("mechanismmm", "McDonalds mechanism"), "202001", "2"},
			{"MalariaMech", "District Hospital", "Mal_num", cats("ageeeeeeeee", "Over 5", "sexxxxxxxxx", "Female"), cats("mechanismmm", "PEPFAR mechanism"), "202001", "3"},
		}},
		{"exportD.adx.xml", "Mal_text", []row{
			{"MalariaMech", "District Hospital", "Mal_num", cats("ageeeeeeeee", "Over 5", "sexxxxxxxxx", "Male"), cats("mechanismmm", "McDonalds mechanism"), "202001", "2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want := readFixture(t, tt.file)
			var out bytes.Buffer
			enc := NewEncoder(&out, EncodeOptions{IsText: isText(tt.text)})
			for _, r := range tt.rows {
				v := transform.DataValue{DataElement: r.de, Period: r.pe, OrgUnit: r.ou, Categories: r.cats,
					Attributes: r.attrs, Value: r.value}
				if err := enc.WriteGroup(transform.Group{DataSet: r.ds}, []transform.DataValue{v}); err != nil {
					t.Fatal(err)
				}
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			got, exp := groupStrings(out.String()), groupStrings(string(want))
			slices.Sort(got)
			slices.Sort(exp)
			if !slices.Equal(got, exp) {
				t.Fatalf("groups differ\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
			}
		})
	}
}

var groupRE = regexp.MustCompile(`(?s)<group.*?</group>`)

func groupStrings(s string) []string { return groupRE.FindAllString(s, -1) }

// TestEncodeDocument pins the whole output for one group.
func TestEncodeDocument(t *testing.T) {
	var out bytes.Buffer
	enc := NewEncoder(&out, EncodeOptions{IsText: isText("MAL_REMARKS"),
		Exported: time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC)})
	vals := []transform.DataValue{
		{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", Attributes: cats("FUNDING", "GOV"),
			Categories: cats("SEX", "F", "AGE", "LT1"), Value: "12", Comment: "tab\there & <there>"},
		{DataElement: "MAL_REMARKS", Period: "202401", OrgUnit: "KL_N_F1", Attributes: cats("FUNDING", "GOV"),
			Value: "stock-out\r\nweek 2", FollowUp: true},
		{DataElement: "MAL_TREATED", Period: "202402", OrgUnit: "KL_N_F1", AttributeOptionCombo: "NGO",
			CategoryOptionCombo: "default", Value: "", Deleted: true, StoredBy: "tally"},
	}
	if err := enc.WriteGroup(transform.Group{DataSet: "MAL_MONTHLY", CompleteDate: "2024-02-03"}, vals); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>
<adx xmlns="urn:ihe:qrph:adx:2015" exported="2024-02-01T10:00:00Z">
    <group dataSet="MAL_MONTHLY" period="2024-01-01/P1M" orgUnit="KL_N_F1" FUNDING="GOV" completeDate="2024-02-03">
        <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="LT1" value="12" comment="tab&#x9;here &amp; &lt;there>"/>
        <dataValue dataElement="MAL_REMARKS" value="0" followup="true">
            <annotation>stock-out&#xD;
week 2</annotation>
        </dataValue>
    </group>
    <group dataSet="MAL_MONTHLY" period="2024-02-01/P1M" orgUnit="KL_N_F1" attributeOptionCombo="NGO" completeDate="2024-02-03">
        <dataValue dataElement="MAL_TREATED" categoryOptionCombo="default" value="" deleted="true" storedBy="tally"/>
    </group>
</adx>
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	// and it reads back
	rec := decodeAll(t, scannerDecode, out.Bytes(), Options{IsText: isText("MAL_REMARKS")})
	if d := diffValues(vals, rec.values); d != "" {
		t.Fatal(d)
	}
	if g := rec.groups[0]; g.DataSet != "MAL_MONTHLY" || g.CompleteDate != "2024-02-03" {
		t.Fatalf("group = %+v", g)
	}
}

// TestRoundTripFixtures encodes what each fixture decodes to and decodes it again.
func TestRoundTripFixtures(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		for _, opts := range []Options{{}, {IsText: isText("Malaria text", "MalTexttttt", "Mal_text", "MAL03")}} {
			t.Run(fmt.Sprintf("%s/text=%v", f.name, opts.IsText != nil), func(t *testing.T) {
				first := decodeAll(t, scannerDecode, f.data, opts)
				out := encodeRecorded(t, first, EncodeOptions{IsText: opts.IsText})
				second := decodeAll(t, scannerDecode, out, opts)
				if d := diffValues(first.values, second.values); d != "" {
					t.Fatalf("%s\noutput:\n%s", d, out)
				}
			})
		}
	}
}

// encodeRecorded writes recorded values, each with the group it came in.
func encodeRecorded(tb testing.TB, rec *recorder, opts EncodeOptions) []byte {
	tb.Helper()
	var out bytes.Buffer
	enc := NewEncoder(&out, opts)
	for start := 0; start < len(rec.values); {
		end := start + 1
		for end < len(rec.values) && rec.groupOf[end] == rec.groupOf[start] {
			end++
		}
		if err := enc.WriteGroup(rec.groups[rec.groupOf[start]], rec.values[start:end]); err != nil {
			tb.Fatalf("encode: %v", err)
		}
		start = end
	}
	if err := enc.Close(); err != nil {
		tb.Fatalf("encode: %v", err)
	}
	return out.Bytes()
}

func TestEncodeErrors(t *testing.T) {
	ok := transform.DataValue{DataElement: "D", Period: "202401", OrgUnit: "O", Value: "1"}
	tests := []struct {
		name string
		edit func(v *transform.DataValue)
		msg  string
	}{
		{"bad period", func(v *transform.DataValue) { v.Period = "2024-13" }, "period"},
		{"no data element", func(v *transform.DataValue) { v.DataElement = "" }, "no data element"},
		{"no org unit", func(v *transform.DataValue) { v.OrgUnit = "" }, "no org unit"},
		{"category not an XML name", func(v *transform.DataValue) { v.Categories = cats("1SEX", "F") }, "not an XML name"},
		{"category with colon", func(v *transform.DataValue) { v.Categories = cats("a:b", "F") }, "not an XML name"},
		{"category clashes", func(v *transform.DataValue) { v.Categories = cats("value", "F") }, "clashes"},
		{"attribute category clashes", func(v *transform.DataValue) { v.Attributes = cats("period", "F") }, "clashes"},
		{"category twice", func(v *transform.DataValue) { v.Categories = cats("SEX", "F", "SEX", "M") }, "twice"},
		{"empty option", func(v *transform.DataValue) { v.Categories = cats("SEX", "") }, "no option"},
		{"control character", func(v *transform.DataValue) { v.Comment = "a\x00b" }, "not allowed in XML"},
		{"invalid UTF-8", func(v *transform.DataValue) { v.Value = "\xff" }, "not allowed in XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := ok
			tt.edit(&v)
			var out bytes.Buffer
			enc := NewEncoder(&out, EncodeOptions{})
			err := enc.WriteGroup(transform.Group{}, []transform.DataValue{ok, v})
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "value 1") {
				t.Fatalf("err = %v, want %q naming value 1", err, tt.msg)
			}
			if out.Len() != 0 {
				t.Fatalf("wrote %q before failing", out.String())
			}
		})
	}
	t.Run("after Close", func(t *testing.T) {
		enc := NewEncoder(&bytes.Buffer{}, EncodeOptions{})
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		if err := enc.WriteGroup(transform.Group{}, []transform.DataValue{ok}); err != ErrClosed {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEncodeBatches(t *testing.T) {
	var out bytes.Buffer
	b1 := &transform.Batch{DataSet: "A", Values: []transform.DataValue{
		{DataElement: "D", Period: "202401", OrgUnit: "O1", Value: "1"},
		{DataElement: "D", Period: "202401", OrgUnit: "O2", Value: "2"},
		{DataElement: "E", Period: "202401", OrgUnit: "O2", Value: "3"},
	}}
	b2 := &transform.Batch{DataSet: "B", Values: []transform.DataValue{{DataElement: "D", Period: "2024W1", OrgUnit: "O1", Value: "4"}}}
	if err := Encode(&out, EncodeOptions{}, b1, b2); err != nil {
		t.Fatal(err)
	}
	rec := decodeAll(t, scannerDecode, out.Bytes(), Options{})
	if len(rec.groups) != 3 {
		t.Fatalf("%d groups, want 3 (one per run of period and org unit)\n%s", len(rec.groups), out.String())
	}
	if d := diffValues(append(slices.Clone(b1.Values), b2.Values...), rec.values); d != "" {
		t.Fatal(d)
	}
	// No batches still make a message DHIS2 accepts (README §5.5).
	empty := new(bytes.Buffer)
	if err := Encode(empty, EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec := decodeAll(t, scannerDecode, empty.Bytes(), Options{}); len(rec.groups) != 0 {
		t.Fatalf("empty message %q", empty.String())
	}
}
