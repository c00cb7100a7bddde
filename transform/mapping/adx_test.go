package mapping

import (
	"context"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// importFile is one of importA/B/C.adx.xml (conformance README §5.1) as the ADX adapter
// decodes it: the same nine values, with ids in the file's schemes.
type importFile struct {
	name          string
	schemes       transform.IDSchemes
	ds            [2]string // Malaria DS, Malaria Mechanism DS
	ou            [2]string // Provincial, District
	de            [2]string // Malaria numeric, Malaria text
	sex, age, mec string    // the categories as attribute names
	opt           map[string]string
	fo5, mo5, aoc string // categoryOptionCombo="Female/Male Over 5", attributeOptionCombo McDonalds
}

var importFiles = []importFile{
	{name: "importA", schemes: transform.IDSchemes{IDScheme: "CODE", DataElement: "NAME", Category: "NAME", CategoryOption: "UID", CategoryOptionCombo: "UID"},
		ds: [2]string{"MalariaDS", "MalariaMechanismDS"}, ou: [2]string{"123", "456"}, de: [2]string{"Malaria numeric", "Malaria text"},
		sex: "Sex_category", age: "Age_category", mec: "Mechanism_category",
		opt: map[string]string{"F": "FFFFFFFFFFF", "M": "MMMMMMMMMMM", "U5": "under555555", "O5": "over5555555", "PEPFAR": "PEPFARRRRRR", "McD": "McDonaldsss"},
		fo5: "FOver555555", mo5: "MOver555555", aoc: "cocMcDonald"},
	{name: "importB", schemes: transform.IDSchemes{IDScheme: "CODE", DataSet: "NAME", OrgUnit: "UID", DataElement: "UID", CategoryOptionCombo: "NAME"},
		ds: [2]string{"Malaria DS", "Malaria Mechanism DS"}, ou: [2]string{"P1233333333", "D4566666666"}, de: [2]string{"MalNummmmmm", "MalTexttttt"},
		sex: "sex", age: "age", mec: "mechanism",
		opt: map[string]string{"F": "F", "M": "M", "U5": "under5", "O5": "over5", "PEPFAR": "PEPFAR", "McD": "McDonalds"},
		fo5: "Female Over 5", mo5: "Male Over 5", aoc: "McDonalds CategoryOptionCombo"},
	{name: "importC", schemes: transform.IDSchemes{IDScheme: "CODE", DataSet: "UID", OrgUnit: "NAME", Category: "UID", CategoryOption: "NAME"},
		ds: [2]string{"MalariaDSSS", "MalariaMech"}, ou: [2]string{"Provincial Hospital", "District Hospital"}, de: [2]string{"Mal_num", "Mal_text"},
		sex: "sexxxxxxxxx", age: "ageeeeeeeee", mec: "mechanismmm",
		opt: map[string]string{"F": "Female", "M": "Male", "U5": "Under 5", "O5": "Over 5", "PEPFAR": "PEPFAR mechanism", "McD": "McDonalds mechanism"},
		fo5: "F_Over5", mo5: "M_Over5", aoc: "coc_McDonalds"},
}

// batches returns the file's five groups, one batch each, as the ADX adapter's Batcher
// emits them (a batch never spans two groups).
func (f importFile) batches() []*transform.Batch {
	sexAge := func(sex, age string) []transform.CategoryOption {
		return []transform.CategoryOption{{Category: f.sex, Option: f.opt[sex]}, {Category: f.age, Option: f.opt[age]}}
	}
	mech := func(o string) []transform.CategoryOption {
		return []transform.CategoryOption{{Category: f.mec, Option: f.opt[o]}}
	}
	num, text := f.de[0], f.de[1]
	groups := []struct {
		ds, ou, pe string
		attrs      []transform.CategoryOption
		aoc        string
		values     []transform.DataValue
	}{
		{f.ds[0], f.ou[0], "202001", nil, "", []transform.DataValue{
			{DataElement: num, Categories: sexAge("F", "U5"), Value: "1"},
			{DataElement: num, Categories: sexAge("M", "U5"), Value: "2"},
			{DataElement: num, CategoryOptionCombo: f.fo5, Value: "3"},
			{DataElement: num, CategoryOptionCombo: f.mo5, Value: "4"},
			{DataElement: text, Value: "Text data value"}}},
		{f.ds[0], f.ou[1], "202002", nil, "", []transform.DataValue{{DataElement: num, Categories: sexAge("F", "U5"), Value: "6"}}},
		{f.ds[1], f.ou[1], "2021Q1", mech("PEPFAR"), "", []transform.DataValue{{DataElement: num, Categories: sexAge("F", "U5"), Value: "10"}}},
		{f.ds[1], f.ou[1], "2021Q1", mech("McD"), "", []transform.DataValue{{DataElement: num, Categories: sexAge("F", "O5"), Value: "20"}}},
		{f.ds[1], f.ou[1], "2021Q1", nil, f.aoc, []transform.DataValue{{DataElement: num, Categories: sexAge("M", "U5"), Value: "30"}}},
	}
	var out []*transform.Batch
	index := 0
	for seq, g := range groups {
		b := &transform.Batch{ID: f.name, Seq: seq, Source: "adx", Schemes: f.schemes, DataSet: g.ds}
		for _, v := range g.values {
			v.Period, v.OrgUnit, v.Attributes, v.AttributeOptionCombo, v.Index = g.pe, g.ou, g.attrs, g.aoc, index
			index++
			b.Values = append(b.Values, v)
		}
		out = append(out, b)
	}
	return out
}

// The stored values conformance README §5.1 asserts for importA, B and C, in UIDs.
var importStored = []string{
	"MalNummmmmm 202001 P1233333333 FUnder55555 HllvX50cXC0 1 #0",
	"MalNummmmmm 202001 P1233333333 MUnder55555 HllvX50cXC0 2 #1",
	"MalNummmmmm 202001 P1233333333 FOver555555 HllvX50cXC0 3 #2",
	"MalNummmmmm 202001 P1233333333 MOver555555 HllvX50cXC0 4 #3",
	"MalTexttttt 202001 P1233333333 HllvX50cXC0 HllvX50cXC0 Text data value #4",
	"MalNummmmmm 202002 D4566666666 FUnder55555 HllvX50cXC0 6 #5",
	"MalNummmmmm 2021Q1 D4566666666 FUnder55555 cocPEPFARRR 10 #6",
	"MalNummmmmm 2021Q1 D4566666666 FOver555555 cocMcDonald 20 #7",
	"MalNummmmmm 2021Q1 D4566666666 MUnder55555 cocMcDonald 30 #8",
}

const adxPassYAML = `mappings:
  - name: adx-pass
    description: ids as they arrive; ADX categories resolved in the target
`

// TestMapImportABC maps the nine values of importA, B and C (conformance README §5.1)
// through a set without rules that passes ids through: "Malaria numeric" is in two data
// sets with different attribute combos, and each group's dataSet decides which one its
// Mechanism_category belongs to, as DHIS2 decides it (adx.md §7.1): the stored values are
// those DHIS2 asserts. Without the group's data set, only the two values whose attributes
// need it are refused, and the others are delivered.
func TestMapImportABC(t *testing.T) {
	sets, _ := compile(t, adxPassYAML, nil)
	e := NewEngine(sets, StaticMetadata{"dhis2": mADX(t)})
	src := &Source{Name: "adx", Mapping: "adx-pass", Unmapped: "pass"}
	target := &Target{Name: "dhis2"}
	for _, f := range importFiles {
		t.Run(f.name, func(t *testing.T) {
			var got, dataSets []string
			for _, b := range f.batches() {
				m, err := e.Map(context.Background(), b, src, target)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Refused)+len(m.Unmapped) > 0 {
					t.Errorf("group %d: refused %s, unmapped %v", b.Seq, refusedText(m.Refused), m.Unmapped)
				}
				for _, v := range m.Batch.Values {
					got = append(got, show(v))
				}
				dataSets = append(dataSets, m.Batch.DataSet)
			}
			if strings.Join(got, "\n") != strings.Join(importStored, "\n") {
				t.Errorf("values:\n%s\nwant (README §5.1):\n%s", strings.Join(got, "\n"), strings.Join(importStored, "\n"))
			}
			if strings.Join(dataSets, " ") != "MalariaDSSS MalariaDSSS MalariaMech MalariaMech MalariaMech" {
				t.Errorf("batch data sets %v", dataSets)
			}
		})
	}
	t.Run("without the groups' data sets", func(t *testing.T) {
		var got, refused []string
		for _, b := range importFiles[0].batches() {
			b.DataSet = ""
			m, err := e.MapWith(context.Background(), b, src, target, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range m.Batch.Values {
				got = append(got, show(v))
			}
			for _, r := range m.Refused {
				refused = append(refused, showRefused(r))
			}
		}
		want := append(append([]string{}, importStored[:6]...), importStored[8])
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("values:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(refused) != 2 || !strings.HasPrefix(refused[0], "6 attributes E7615: cannot tell which attribute combo applies: data element Mal_num is in data sets MalariaDS (Monthly), MalariaMechanismDS (Quarterly)") ||
			!strings.Contains(refused[0], "(the batch names no data set; an ADX group's dataSet would decide)") || !strings.HasPrefix(refused[1], "7 attributes E7615") {
			t.Errorf("refused:\n%s", strings.Join(refused, "\n"))
		}
	})
}

// TestMapBatchDataSet: EPI_BCG is in EPI_MONTHLY (no attribute combo) and EPI_QUARTERLY
// (attribute combo FUNDING). The data set the batch or the value names decides.
func TestMapBatchDataSet(t *testing.T) {
	md := withEPIQuarterly(kalima(t))
	sets, _ := compile(t, engineYAML+severalYAML, engineFiles)
	bcg := func(ds string, attrs []transform.CategoryOption, aoc string) transform.DataValue {
		return transform.DataValue{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1",
			Attributes: attrs, AttributeOptionCombo: aoc, DataSet: ds, Value: "1"}
	}
	code := Schemes{IDScheme: "CODE"}
	runMapCases(t, NewEngine(sets, StaticMetadata{"hmis": md}), []mapCase{
		{name: "the batch's data set gives the attribute combo", set: "adx", dataSet: "EPI_QUARTERLY", schemes: code,
			values: []transform.DataValue{bcg("", cats("FUNDING=GOV"), "")},
			want:   []string{"EPI_BCG 202401 KL_N_F1 F_LT1 GOV 1 #0"},
			check: func(t *testing.T, m *transform.Mapped) {
				if m.Batch.DataSet != "EPI_QUARTERLY" {
					t.Errorf("data set %q", m.Batch.DataSet)
				}
			}},
		{name: "a value's own data set wins over the batch's", set: "adx", dataSet: "EPI_MONTHLY", schemes: code,
			values: []transform.DataValue{bcg("EPI_QUARTERLY", cats("FUNDING=NGO"), ""), bcg("", nil, "")},
			want:   []string{"EPI_BCG 202401 KL_N_F1 F_LT1 NGO 1 #0", "EPI_BCG 202401 KL_N_F1 F_LT1 default 1 #1"}},
		{name: "attributes the batch's data set has no category for", set: "adx", dataSet: "EPI_MONTHLY",
			values:  []transform.DataValue{bcg("", cats("FUNDING=GOV"), "")},
			refused: []string{"0 attributes E7615: category FUNDING is not in category combo default of data set EPI_MONTHLY"}},
		{name: "a data set the target lacks is named in the refusal", set: "adx", dataSet: "EPI_WEEKLY",
			values:  []transform.DataValue{bcg("", cats("FUNDING=GOV"), "")},
			refused: []string{`0 attributes E7615: cannot tell which attribute combo applies: …(the batch's data set "EPI_WEEKLY" is not in target "hmis")`}},
		{name: "a data set without the element is named in the refusal", set: "adx", dataSet: "MAL_MONTHLY",
			values:  []transform.DataValue{bcg("", cats("FUNDING=GOV"), "")},
			refused: []string{`0 attributes E7615: cannot tell which attribute combo applies: …(the batch's data set MAL_MONTHLY does not hold it)`}},
		{name: "an explicit attribute option combo is honoured when one of the data sets has it", set: "adx", schemes: code,
			values: []transform.DataValue{bcg("", nil, "NGO")},
			want:   []string{"EPI_BCG 202401 KL_N_F1 F_LT1 NGO 1 #0"}},
		{name: "an explicit attribute option combo wins over attributes", set: "adx", dataSet: "EPI_QUARTERLY", schemes: code,
			values: []transform.DataValue{bcg("", cats("FUNDING=GOV"), "NGO")},
			want:   []string{"EPI_BCG 202401 KL_N_F1 F_LT1 NGO 1 #0"}},
		{name: "an explicit attribute option combo in no data set's attribute combo", set: "adx",
			values:  []transform.DataValue{bcg("", nil, "M_LT1")},
			refused: []string{"0 attributeOptionCombo E7635: M_LT1 is in the attribute combo of no data set of data element EPI_BCG (EPI_MONTHLY (Monthly), EPI_QUARTERLY (Quarterly))"}},
		{name: "the batch's data set gives the period type to roll up to", set: "several", dataSet: "EPI_QUARTERLY", schemes: code,
			values: []transform.DataValue{bcg("", cats("FUNDING=GOV"), ""), {DataElement: "BCG", Period: "202402", OrgUnit: "KL_N_F1",
				CategoryOptionCombo: "F_LT1", Attributes: cats("FUNDING=GOV"), Value: "2"}},
			want: []string{"EPI_BCG 2024Q1 KL_N_F1 F_LT1 GOV 3 #0"}},
		{name: "a rule's data set wins over the batch's", set: "adx", dataSet: "EPI_MONTHLY", schemes: code,
			values: []transform.DataValue{{DataElement: "TREATED", Period: "202401", OrgUnit: "KL_N_F1", Attributes: cats("FUNDING=GOV"), Value: "3"}},
			want:   []string{"MAL_TREATED 202401 KL_N_F1 default GOV 3 #0"}},
	})
}
