package dhis2test

import (
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	periods "github.com/tally-hmis/tally/transform/period"
)

// Tests of GET /api/analytics/dataValueSet (spec dhis2.md §6) over the fact
// table (facts.go), on the fixed clock 2024-03-15.

const dvsPath = "/api/analytics/dataValueSet.json?"

// kalimaDistrict maps the sample's facilities to their districts.
var kalimaDistrict = map[string]string{"KL_N_F1": "KL_NORTH", "KL_N_F2": "KL_NORTH", "KL_S_F1": "KL_SOUTH", "KL_S_F2": "KL_SOUTH"}

// §6.2, §13.14: every cell of a query over the bundled sample equals the sum
// of the seeded facts below it (org unit tree) and inside it (months of a
// quarter), computed here independently; program indicators carry their
// aggregate export combos; zero cells are absent.
func TestAnalyticsSampleFactsValueByValue(t *testing.T) {
	srv := epServer(t)
	m := srv.Metadata()
	facts := srv.Facts()
	if len(facts) != 13*4*12 {
		t.Fatalf("sample has %d facts, want 624 (13 indicators × 4 facilities × 12 months)", len(facts))
	}
	var dx []string
	for _, p := range m.ProgramIndicators {
		dx = append(dx, p.Code)
	}
	quarter := func(month string) string { // "202405" → "2024Q2"
		mo, _ := strconv.Atoi(month[4:])
		return fmt.Sprintf("%sQ%d", month[:4], (mo+2)/3)
	}
	want := map[string]float64{}
	add := func(pi, pe, ou string, v float64) {
		p := m.ProgramIndicator(pi)
		coc := m.idx.coc[p.AggregateExportCategoryOptionCombo]
		aoc := ""
		if p.AggregateExportAttributeOptionCombo != "" {
			aoc = p.AggregateExportAttributeOptionCombo
		}
		want[strings.Join([]string{pi, pe, ou, coc.ID, aoc}, "|")] += v
	}
	for _, f := range facts {
		for _, pe := range []string{f.Period, quarter(f.Period)} {
			if pe != "202403" && pe != "2024Q1" && pe != "2024Q3" {
				continue
			}
			for _, ou := range []string{f.OrgUnit, kalimaDistrict[f.OrgUnit], "KL"} {
				add(f.DX, pe, ou, f.Value)
			}
		}
	}
	for k, v := range want {
		if v == 0 {
			delete(want, k) // analytics leaves zero rows out (§12)
		}
	}
	r := epGet(t, srv, dvsPath+"dimension=dx:"+strings.Join(dx, ";")+"&dimension=pe:202403;2024Q1;2024Q3"+
		"&dimension=ou:KL;KL_NORTH;KL_SOUTH;KL_N_F1;KL_N_F2;KL_S_F1;KL_S_F2&inputIdScheme=CODE&outputIdScheme=CODE")
	got := epCells(t, epValues(t, r))
	if len(got) != len(want) {
		t.Errorf("%d cells, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != strconv.Itoa(int(v)) {
			t.Errorf("%s = %q, want %v", k, got[k], v)
		}
	}
	// one cell spelled out: BCG female <1 at KL_N_F1 in Q1 2024 = 21+20+22
	if k := "PI_BCG_F_LT1|2024Q1|KL_N_F1|" + SampleCOCFemaleLT1 + "|"; got[k] != "63" {
		t.Errorf("%s = %q, want 63", k, got[k])
	}
}

// kalimaFacts is a small controlled fact table for the tests below.
func kalimaFacts(t *testing.T, srv *Server) {
	t.Helper()
	err := srv.SetFacts(
		Fact{DX: "PI_BCG_F_LT1", Period: "202312", OrgUnit: "KL_N_F1", Value: 4},
		Fact{DX: "PI_BCG_F_LT1", Period: "202401", OrgUnit: "KL_N_F1", Value: 5},
		Fact{DX: "PI_BCG_F_LT1", Period: "202402", OrgUnit: "KL_N_F1", Value: 6},
		Fact{DX: "PI_BCG_F_LT1", Period: "202402", OrgUnit: "KL_N_F2", Value: 1},
		Fact{DX: "PI_BCG_F_LT1", Period: "202403", OrgUnit: "KL_S_F1", Value: 7},
		Fact{DX: "PI_BCG_F_LT1", Period: "202404", OrgUnit: "KL_S_F2", Value: 8},
		Fact{DX: "PI_BCG_F_LT1", Period: "202406", OrgUnit: "KL_S_F2", Value: 2},
		Fact{DX: "PI_MAL_TREATED", Period: "202402", OrgUnit: "KL_S_F1", Value: 30},
		Fact{DX: "PI_MAL_TREATED", Period: "202402", OrgUnit: "KL_S_F2", Value: 0},
		Fact{DX: "EPI_BCG", Period: "202402", OrgUnit: "KL_N_F1", COC: "F_LT1", Value: 10},
		Fact{DX: "EPI_BCG", Period: "202402", OrgUnit: "KL_N_F1", COC: "M_LT1", Value: 11},
		Fact{DX: "MAL_CONFIRMED", Period: "202402", OrgUnit: "KL_S_F1", COC: "F_1TO4", AOC: "GOV", Value: 3},
		Fact{DX: "MAL_CONFIRMED", Period: "202402", OrgUnit: "KL_S_F1", COC: "F_1TO4", AOC: "NGO", Value: 2},
	)
	if err != nil {
		t.Fatal(err)
	}
}

// §6.1, §11.2: relative periods resolve against the server clock (or
// relativePeriodDate) with transform/period.Relative; each resolved period is
// a row.
func TestAnalyticsRelativePeriods(t *testing.T) {
	srv := epServer(t)
	kalimaFacts(t, srv)
	q := func(pe string, extra string) map[string]string {
		t.Helper()
		return epCells(t, epValues(t, epGet(t, srv, dvsPath+"dimension=dx:PI_BCG_F_LT1&dimension=pe:"+pe+
			"&dimension=ou:KL&inputIdScheme=CODE&outputIdScheme=CODE"+extra)))
	}
	row := func(pe string) string { return "PI_BCG_F_LT1|" + pe + "|KL|" + SampleCOCFemaleLT1 + "|" }
	cases := []struct {
		pe, extra string
		want      map[string]string
	}{
		{"LAST_3_MONTHS", "", map[string]string{row("202312"): "4", row("202401"): "5", row("202402"): "7"}},
		{"LAST_MONTH", "", map[string]string{row("202402"): "7"}},
		{"THIS_MONTH", "", map[string]string{row("202403"): "7"}},
		{"THIS_QUARTER", "", map[string]string{row("2024Q1"): "19"}},
		{"LAST_QUARTER", "", map[string]string{row("2023Q4"): "4"}},
		{"THIS_YEAR", "", map[string]string{row("2024"): "29"}},
		{"LAST_YEAR", "", map[string]string{row("2023"): "4"}},
		{"LAST_12_MONTHS", "", map[string]string{row("202312"): "4", row("202401"): "5", row("202402"): "7"}},
		{"LAST_3_MONTHS;202403", "", map[string]string{row("202312"): "4", row("202401"): "5", row("202402"): "7", row("202403"): "7"}},
		{"LAST_3_MONTHS", "&relativePeriodDate=2024-07-01", map[string]string{row("202404"): "8", row("202406"): "2"}},
		{"QUARTERS_THIS_YEAR", "", map[string]string{row("2024Q1"): "19", row("2024Q2"): "10"}},
	}
	for _, c := range cases {
		got := q(c.pe, c.extra)
		if !maps.Equal(got, c.want) {
			t.Errorf("pe:%s%s = %v\nwant %v", c.pe, c.extra, got, c.want)
		}
	}
	// the periods are exactly those of transform/period.Relative
	for _, name := range []string{"LAST_12_MONTHS", "MONTHS_THIS_YEAR", "LAST_4_QUARTERS", "LAST_52_WEEKS"} {
		ps, err := periods.Relative(name, epNow, periods.RelativeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var facts []Fact
		for _, p := range ps {
			d := p.Start().Format("20060102")
			facts = append(facts, Fact{DX: "PI_PENTA1_F_LT1", Period: d, OrgUnit: "KL_N_F1", Value: 1})
		}
		if err := srv.SetFacts(facts...); err != nil {
			t.Fatal(err)
		}
		vals := epValues(t, epGet(t, srv, dvsPath+"dimension=dx:PI_PENTA1_F_LT1&dimension=pe:"+name+"&dimension=ou:KL_N_F1&inputIdScheme=CODE"))
		var got []string
		for _, v := range vals {
			got = append(got, v["period"].(string))
		}
		var want []string
		for _, p := range ps {
			want = append(want, p.ID())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: periods %v, want %v", name, got, want)
		}
	}
}

// §6.1: ou items: uids, LEVEL-n with boundaries, USER_ORGUNIT and its
// children/grandchildren (per user, or userOrgUnit); facts sum up the tree.
func TestAnalyticsOrgUnits(t *testing.T) {
	srv := epServer(t)
	kalimaFacts(t, srv)
	ous := func(ou string, extra string, as ...epOpt) map[string]string {
		t.Helper()
		vals := epValues(t, epGet(t, srv, dvsPath+"dimension=dx:PI_BCG_F_LT1&dimension=pe:2024Q1&dimension=ou:"+ou+
			"&inputIdScheme=CODE&outputOrgUnitIdScheme=CODE"+extra, as...))
		out := map[string]string{}
		for _, v := range vals {
			out[v["orgUnit"].(string)] = v["value"].(string)
		}
		return out
	}
	north := epAs(SampleDistrictUser, SampleDistrictPassword)
	cases := []struct {
		ou, extra string
		as        []epOpt
		want      map[string]string
	}{
		{"KL", "", nil, map[string]string{"KL": "19"}},
		{"KL;KL_NORTH;KL_S_F1", "", nil, map[string]string{"KL": "19", "KL_NORTH": "12", "KL_S_F1": "7"}},
		{"KL;LEVEL-2", "", nil, map[string]string{"KL_NORTH": "12", "KL_SOUTH": "7"}},
		{"KL_NORTH;LEVEL-3", "", nil, map[string]string{"KL_N_F1": "11", "KL_N_F2": "1"}},
		{"LEVEL-3", "", nil, map[string]string{"KL_N_F1": "11", "KL_N_F2": "1", "KL_S_F1": "7"}},
		{"LEVEL-3", "", []epOpt{north}, map[string]string{"KL_N_F1": "11", "KL_N_F2": "1"}},
		{"USER_ORGUNIT", "", nil, map[string]string{"KL": "19"}},
		{"USER_ORGUNIT", "", []epOpt{north}, map[string]string{"KL_NORTH": "12"}},
		{"USER_ORGUNIT_CHILDREN", "", nil, map[string]string{"KL_NORTH": "12", "KL_SOUTH": "7"}},
		{"USER_ORGUNIT_GRANDCHILDREN", "", nil, map[string]string{"KL_N_F1": "11", "KL_N_F2": "1", "KL_S_F1": "7"}},
		{"USER_ORGUNIT", "&userOrgUnit=" + SampleOrgUnitKLSouth, nil, map[string]string{"KL_SOUTH": "7"}},
	}
	for _, c := range cases {
		if got := ous(c.ou, c.extra, c.as...); !maps.Equal(got, c.want) {
			t.Errorf("ou:%s%s = %v, want %v", c.ou, c.extra, got, c.want)
		}
	}
}

// §6.2, §6.4: output id schemes. Program indicators keep their export COC
// and AOC verbatim (UIDs); ATTRIBUTE:<AGG_DE_CODE> turns them into the
// aggregate data element codes while org units without the attribute keep
// their UIDs; outputDataItemIdScheme exists from 2.41; outputDataElementIdScheme
// applies to data elements and operands; plain data elements are totals
// without combos.
func TestAnalyticsIDSchemes(t *testing.T) {
	for _, ver := range []string{"2.40", "2.41"} {
		t.Run(ver, func(t *testing.T) {
			srv := epServer(t, WithVersion(ver))
			kalimaFacts(t, srv)
			get := func(dx, extra string) map[string]string {
				t.Helper()
				return epCells(t, epValues(t, epGet(t, srv, dvsPath+"dimension=dx:"+dx+"&dimension=pe:202402&dimension=ou:"+SampleOrgUnitKLSF1+";"+SampleOrgUnitKLNF1+extra)))
			}
			attr := "ATTRIBUTE:" + SampleAttributeAggDECode
			mal := "UVXoqmaQzE4" // PI_MAL_TREATED
			cases := []struct {
				dx, extra string
				want      map[string]string
			}{
				{mal, "", map[string]string{mal + "|202402|" + SampleOrgUnitKLSF1 + "|" + DefaultCategoryOptionComboUID + "|" + SampleAOCGov: "30"}},
				{mal, "&outputIdScheme=CODE", map[string]string{"PI_MAL_TREATED|202402|KL_S_F1|" + DefaultCategoryOptionComboUID + "|" + SampleAOCGov: "30"}},
				{mal, "&outputIdScheme=NAME", map[string]string{"Malaria cases treated|202402|South Facility 1|" + DefaultCategoryOptionComboUID + "|" + SampleAOCGov: "30"}},
				{mal, "&outputIdScheme=" + attr, map[string]string{"MAL_TREATED|202402|" + SampleOrgUnitKLSF1 + "|" + DefaultCategoryOptionComboUID + "|" + SampleAOCGov: "30"}},
				{mal, "&outputIdScheme=" + attr + "&outputOrgUnitIdScheme=CODE", map[string]string{"MAL_TREATED|202402|KL_S_F1|" + DefaultCategoryOptionComboUID + "|" + SampleAOCGov: "30"}},
				{SampleDEEPIBCG, "", map[string]string{SampleDEEPIBCG + "|202402|" + SampleOrgUnitKLNF1 + "||": "21"}},
				{SampleDEEPIBCG, "&outputDataElementIdScheme=NAME&outputIdScheme=CODE", map[string]string{"BCG doses given|202402|KL_N_F1||": "21"}},
				{SampleDEEPIBCG + "." + SampleCOCMaleLT1, "&outputIdScheme=CODE", map[string]string{"EPI_BCG|202402|KL_N_F1|M_LT1|": "11"}},
				{SampleDEEPIBCG + "." + SampleCOCMaleLT1, "", map[string]string{SampleDEEPIBCG + "|202402|" + SampleOrgUnitKLNF1 + "|" + SampleCOCMaleLT1 + "|": "11"}},
				{SampleDEMALConfirmed, "&outputIdScheme=CODE", map[string]string{"MAL_CONFIRMED|202402|KL_S_F1||": "5"}},
			}
			for _, c := range cases {
				if got := get(c.dx, c.extra); !maps.Equal(got, c.want) {
					t.Errorf("dx:%s%s\n got %v\nwant %v", c.dx, c.extra, got, c.want)
				}
			}
			// outputDataItemIdScheme (2.41+) applies to program indicators
			want := map[string]string{"PI_MAL_TREATED|202402|KL_S_F1|" + DefaultCategoryOptionComboUID + "|" + SampleAOCGov: "30"}
			if ver == "2.41" {
				want = map[string]string{"MAL_TREATED|202402|KL_S_F1|" + DefaultCategoryOptionComboUID + "|" + SampleAOCGov: "30"}
			}
			if got := get(mal, "&outputIdScheme=CODE&outputDataItemIdScheme="+attr); !maps.Equal(got, want) {
				t.Errorf("outputDataItemIdScheme on %s: %v, want %v", ver, got, want)
			}
		})
	}
}

// §6.2 (duplicatesOnly): with an attribute scheme two program indicators can
// become the same data value; duplicatesOnly=true returns only the repeats.
func TestAnalyticsDuplicatesOnly(t *testing.T) {
	srv := epServer(t)
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		m.ProgramIndicators = append(m.ProgramIndicators, &ProgramIndicator{ID: "PiBcgDup001", Code: "PI_BCG_F_LT1_OUTREACH",
			Name: "BCG doses, female <1, outreach", AggregateExportCategoryOptionCombo: "F_LT1",
			AttributeValues: AttributeValues{"AGG_DE_CODE": "EPI_BCG"}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	kalimaFacts(t, srv)
	if err := srv.AddFacts(Fact{DX: "PI_BCG_F_LT1_OUTREACH", Period: "202402", OrgUnit: "KL_N_F1", Value: 3}); err != nil {
		t.Fatal(err)
	}
	base := dvsPath + "dimension=dx:PI_BCG_F_LT1;PI_BCG_F_LT1_OUTREACH;PI_BCG_M_LT1&inputIdScheme=CODE&dimension=pe:202402&dimension=ou:KL_N_F1" +
		"&outputIdScheme=ATTRIBUTE:" + SampleAttributeAggDECode
	all := epValues(t, epGet(t, srv, base))
	if len(all) != 2 || all[0]["value"] != "6" || all[1]["value"] != "3" || all[0]["dataElement"] != "EPI_BCG" || all[1]["dataElement"] != "EPI_BCG" {
		t.Fatalf("rows = %v", all)
	}
	dups := epValues(t, epGet(t, srv, base+"&duplicatesOnly=true"))
	if len(dups) != 1 || dups[0]["value"] != "3" {
		t.Errorf("duplicatesOnly rows = %v", dups)
	}
	// under UID the rows differ, so there is no duplicate
	if d := epValues(t, epGet(t, srv, strings.Replace(base, "&outputIdScheme=ATTRIBUTE:"+SampleAttributeAggDECode, "", 1)+"&duplicatesOnly=true")); len(d) != 0 {
		t.Errorf("duplicates under UID: %v", d)
	}
}

// §6.2, §6.3: the exact row of a program indicator on the default version
// (2.40.0: storedBy "[aggregated]"), and storedBy by version (PR #16466).
func TestAnalyticsRowShape(t *testing.T) {
	srv := epServer(t)
	kalimaFacts(t, srv)
	r := epGet(t, srv, dvsPath+"dimension=dx:UVXoqmaQzE4&dimension=pe:202402&dimension=ou:"+SampleOrgUnitKLSF1)
	want := `{"dataValues":[{"dataElement":"UVXoqmaQzE4","period":"202402","orgUnit":"Td8VKqxryo1",` +
		`"categoryOptionCombo":"HllvX50cXC0","attributeOptionCombo":"pATIk27f4t3","value":"30","storedBy":"[aggregated]",` +
		`"created":"2024-03-15","lastUpdated":"2024-03-15","comment":"[aggregated]","followup":false}]}`
	if string(r.raw) != want {
		t.Errorf("body\n got %s\nwant %s", r.raw, want)
	}
	for ver, stored := range map[string]bool{"2.38": true, "2.39.5": true, "2.39.6": false, "2.40.3": true, "2.40.4": false, "2.41": false, "2.43": false} {
		srv := epServer(t, WithVersion(ver))
		kalimaFacts(t, srv)
		v := epValues(t, epGet(t, srv, dvsPath+"dimension=dx:UVXoqmaQzE4&dimension=pe:202402&dimension=ou:"+SampleOrgUnitKLSF1))[0]
		if _, has := v["storedBy"]; has != stored || v["comment"] != "[aggregated]" {
			t.Errorf("%s: storedBy present = %v, want %v (%v)", ver, has, stored, v)
		}
	}
}

// §6.1: data elements and program indicators aggregate from days and weeks
// into months, quarters and years (DHIS2's roll-up: a week counts where its
// fourth day falls); a monthly fact is not split into weeks.
func TestAnalyticsPeriodHierarchy(t *testing.T) {
	srv := epServer(t)
	err := srv.SetFacts(
		Fact{DX: "PI_PENTA1_M_LT1", Period: "20240131", OrgUnit: "KL_N_F1", Value: 1},
		Fact{DX: "PI_PENTA1_M_LT1", Period: "20240201", OrgUnit: "KL_N_F1", Value: 2},
		Fact{DX: "PI_PENTA1_M_LT1", Period: "20240229", OrgUnit: "KL_N_F2", Value: 4},
		Fact{DX: "PI_PENTA1_M_LT1", Period: "2024W9", OrgUnit: "KL_N_F1", Value: 8},   // 26 Feb – 3 Mar: February
		Fact{DX: "PI_PENTA1_M_LT1", Period: "2024W14", OrgUnit: "KL_N_F1", Value: 16}, // 1–7 Apr: April
		Fact{DX: "PI_PENTA1_M_LT1", Period: "202403", OrgUnit: "KL_N_F1", Value: 32},
	)
	if err != nil {
		t.Fatal(err)
	}
	got := epCells(t, epValues(t, epGet(t, srv, dvsPath+"dimension=dx:PI_PENTA1_M_LT1&dimension=pe:20240201;2024W9;202401;202402;202403;202404;2024Q1;2024S1;2024&"+
		"dimension=ou:KL_NORTH&inputIdScheme=CODE&outputIdScheme=CODE")))
	row := func(pe string) string { return "PI_PENTA1_M_LT1|" + pe + "|KL_NORTH|" + SampleCOCMaleLT1 + "|" }
	want := map[string]string{row("20240201"): "2", row("2024W9"): "12", row("202401"): "1", row("202402"): "14",
		row("202403"): "32", row("202404"): "16", row("2024Q1"): "47", row("2024S1"): "63", row("2024"): "63"}
	if !maps.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// §6.2: values are strings, rounded like MathUtils.getRounded; integer data
// elements are truncated; skipRounding keeps decimals; aggregationType picks
// the function.
func TestAnalyticsValues(t *testing.T) {
	srv := epServer(t)
	err := srv.SetFacts(
		Fact{DX: "PI_MAL_TREATED", Period: "202401", OrgUnit: "KL_S_F1", Value: 2.25},
		Fact{DX: "PI_MAL_TREATED", Period: "202401", OrgUnit: "KL_S_F2", Value: 0.5},
		Fact{DX: "PI_MAL_CONF_F_LT1", Period: "202401", OrgUnit: "KL_S_F1", Value: 0.125},
		Fact{DX: "PI_MAL_CONF_F_1TO4", Period: "202401", OrgUnit: "KL_S_F1", Value: 12},
		Fact{DX: "EPI_PENTA1", Period: "202401", OrgUnit: "KL_S_F1", COC: "F_LT1", Value: 7},
		Fact{DX: "EPI_PENTA1", Period: "202401", OrgUnit: "KL_S_F2", COC: "F_LT1", Value: 8},
		Fact{DX: "CHW_HOUSEHOLD_VISITS", Period: "202401", OrgUnit: "KL_S_F1", Value: 0},
	)
	if err != nil {
		t.Fatal(err)
	}
	value := func(dx, extra string) any {
		t.Helper()
		vals := epValues(t, epGet(t, srv, dvsPath+"dimension=dx:"+dx+"&dimension=pe:202401&dimension=ou:KL_SOUTH&inputIdScheme=CODE"+extra))
		if len(vals) == 0 {
			return nil
		}
		return vals[0]["value"]
	}
	cases := []struct {
		dx, extra string
		want      any
	}{
		{"PI_MAL_TREATED", "", "2.8"},
		{"PI_MAL_TREATED", "&skipRounding=true", "2.75"},
		{"PI_MAL_CONF_F_LT1", "", "0.13"},
		{"PI_MAL_CONF_F_1TO4", "", "12"},
		{"PI_MAL_CONF_F_1TO4", "&skipRounding=true", "12.0"},
		{"EPI_PENTA1", "", "15"},
		{"EPI_PENTA1", "&aggregationType=AVERAGE", "7"}, // 7.5 truncated: integer data element
		{"PI_MAL_TREATED", "&aggregationType=AVERAGE", "1.4"},
		{"PI_MAL_TREATED", "&aggregationType=COUNT", "2"},
		{"PI_MAL_TREATED", "&aggregationType=MAX", "2.3"},
		{"CHW_HOUSEHOLD_VISITS", "", nil}, // zero rows are left out
		{"EPI_BCG", "", nil},              // no facts, no row
	}
	for _, c := range cases {
		if got := value(c.dx, c.extra); got != c.want {
			t.Errorf("%s%s: value %#v, want %#v", c.dx, c.extra, got, c.want)
		}
	}
}

// §6.1: filter= and further dimensions restrict facts by the category
// options of their combos.
func TestAnalyticsFilters(t *testing.T) {
	srv := epServer(t)
	kalimaFacts(t, srv)
	value := func(extra string) any {
		t.Helper()
		vals := epValues(t, epGet(t, srv, dvsPath+"dimension=dx:"+SampleDEMALConfirmed+"&dimension=pe:202402&dimension=ou:"+SampleOrgUnitKL+extra))
		if len(vals) != 1 {
			return len(vals)
		}
		return vals[0]["value"]
	}
	cases := map[string]any{
		"":                                   "5",
		"&filter=esokF5NSAll:pp1xxXHU0BS":    "3",
		"&dimension=esokF5NSAll:cJXj675eVq3": "2",
		"&filter=esokF5NSAll:pp1xxXHU0BS;cJXj675eVq3": "5",
		"&filter=XYqaNUDqN9N:QA6TCvY4dhK":             0, // SEX:M — no male facts
	}
	for extra, want := range cases {
		if got := value(extra); got != want {
			t.Errorf("%s: %#v, want %#v", extra, got, want)
		}
	}
	vals := epValues(t, epGet(t, srv, dvsPath+"dimension=dx:MAL_CONFIRMED&dimension=pe:202402&dimension=ou:KL&inputIdScheme=CODE&filter=FUNDING:NGO"))
	if len(vals) != 1 || vals[0]["value"] != "2" {
		t.Errorf("filter by codes: %v", vals)
	}
}

// §6.1: missing dimensions are E7117/E7118/E7119; dimensions without valid
// items E7124; unknown dimensions E7125; a filter repeating a dimension
// E7103; an org unit outside the user's hierarchy E7120.
func TestAnalyticsErrors(t *testing.T) {
	srv := epServer(t)
	dx, pe, ou := "dimension=dx:"+SampleDEEPIBCG, "dimension=pe:202401", "dimension=ou:"+SampleOrgUnitKL
	cases := []struct{ q, code, msg string }{
		{pe + "&" + ou, "E7117", "A data dimension 'dx' must be specified when output format is DATA_VALUE_SET"},
		{dx + "&" + ou + "&filter=pe:202401", "E7118", "A period dimension 'pe' must be specified when output format is DATA_VALUE_SET"},
		{dx + "&" + pe, "E7119", "An organisation unit dimension 'ou' must be specified when output format is DATA_VALUE_SET"},
		{"dimension=dx:XXXXXXXXXXX&" + pe + "&" + ou, "E7124", "Dimension is present in query without any valid dimension options: `dx`"},
		{dx + "&dimension=pe:NEXT_CENTURY&" + ou, "E7124", "Dimension is present in query without any valid dimension options: `pe`"},
		{dx + "&" + pe + "&dimension=ou:XXXXXXXXXXX", "E7124", "Dimension is present in query without any valid dimension options: `ou`"},
		{dx + "&" + pe + "&" + ou + "&filter=nonexistent:a", "E7125", "Dimension identifier does not reference any dimension: `nonexistent`"},
		{dx + "&" + pe + "&" + ou + "&filter=ou:" + SampleOrgUnitKLNorth, "E7103", "Dimensions cannot be specified as dimension and filter simultaneously: `ou`"},
	}
	for _, c := range cases {
		epWantError(t, epGet(t, srv, dvsPath+c.q), http.StatusConflict, c.code, c.msg)
	}
	epWantError(t, epGet(t, srv, dvsPath+dx+"&"+pe+"&"+ou, epAs(SampleDistrictUser, SampleDistrictPassword)), http.StatusConflict,
		"E7120", "User: `kl_north` is not allowed to view org unit: `"+SampleOrgUnitKL+"`")
}

// §6.3: XML (DXF2 dataValueSet with attributes), CSV (grid headers) and
// content negotiation on the path without suffix.
func TestAnalyticsFormats(t *testing.T) {
	srv := epServer(t)
	kalimaFacts(t, srv)
	q := "?dimension=dx:UVXoqmaQzE4;" + SampleDEEPIBCG + "&dimension=pe:202402&dimension=ou:" + SampleOrgUnitKL
	for _, r := range []epResp{epGet(t, srv, "/api/analytics/dataValueSet.xml"+q),
		epGet(t, srv, "/api/analytics/dataValueSet"+q, epHeader("Accept", "application/xml"))} {
		epWantStatus(t, r, http.StatusOK)
		var doc struct {
			XMLName xml.Name `xml:"http://dhis2.org/schema/dxf/2.0 dataValueSet"`
			Values  []struct {
				DataElement string `xml:"dataElement,attr"`
				COC         string `xml:"categoryOptionCombo,attr"`
				AOC         string `xml:"attributeOptionCombo,attr"`
				Value       string `xml:"value,attr"`
				Comment     string `xml:"comment,attr"`
			} `xml:"dataValue"`
		}
		if err := xml.Unmarshal(r.raw, &doc); err != nil {
			t.Fatalf("%v: %s", err, r.raw)
		}
		if len(doc.Values) != 2 || doc.Values[0].Value != "30" || doc.Values[0].AOC != SampleAOCGov ||
			doc.Values[1].DataElement != SampleDEEPIBCG || doc.Values[1].COC != "" || doc.Values[1].Value != "21" ||
			doc.Values[1].Comment != "[aggregated]" {
			t.Errorf("xml = %s", r.raw)
		}
	}
	for _, r := range []epResp{epGet(t, srv, "/api/analytics/dataValueSet.csv"+q),
		epGet(t, srv, "/api/analytics/dataValueSet"+q, epHeader("Accept", "text/csv"))} {
		recs, err := csv.NewReader(strings.NewReader(string(r.raw))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"data_element", "period", "organisation_unit", "category_option_combo", "attribute_option_combo", "value", "stored_by", "created", "last_updated", "comment", "follow_up"},
			{"UVXoqmaQzE4", "202402", SampleOrgUnitKL, DefaultCategoryOptionComboUID, SampleAOCGov, "30", "[aggregated]", "2024-03-15", "2024-03-15", "[aggregated]", "false"},
			{SampleDEEPIBCG, "202402", SampleOrgUnitKL, "", "", "21", "[aggregated]", "2024-03-15", "2024-03-15", "[aggregated]", "false"},
		}
		if fmt.Sprint(recs) != fmt.Sprint(want) {
			t.Errorf("csv\n got %q\nwant %q", recs, want)
		}
	}
	if r := epGet(t, srv, "/api/analytics/dataValueSet"+q); !strings.HasPrefix(string(r.raw), `{"dataValues":[`) {
		t.Errorf("default format: %s", r.raw)
	}
}

// facts.go: SetFacts checks and normalises references; AddFacts appends;
// metadata files may carry facts, also as series.
func TestFactsAPI(t *testing.T) {
	srv := epServer(t)
	if err := srv.SetFacts(Fact{DX: "NOPE", Period: "2024", OrgUnit: "KL", Value: 1}); err == nil {
		t.Error("SetFacts accepted an unknown dx")
	}
	if err := srv.SetFacts(Fact{DX: "PI_BCG_M_LT1", Period: "2024-02", OrgUnit: "KL_S_F2", Value: 1}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddFacts(Fact{DX: "EPI_BCG", Period: "20240105", OrgUnit: "KL_S_F2", COC: "M_LT1", Value: 2}); err != nil {
		t.Fatal(err)
	}
	want := []Fact{{DX: "de2wioVMEuU", Period: "202402", OrgUnit: SampleOrgUnitKLSF2, Value: 1},
		{DX: SampleDEEPIBCG, Period: "20240105", OrgUnit: SampleOrgUnitKLSF2, COC: SampleCOCMaleLT1, Value: 2}}
	if got := srv.Facts(); !slices.Equal(got, want) {
		t.Errorf("Facts() = %v, want %v", got, want)
	}
	doc := strings.Replace(string(SampleMetadataYAML()), "\nattributes:", `
facts:
  - {dx: PI_BCG_F_LT1, ou: KL_N_F1, pe: "202311", values: [1, 2, 3]}
  - {dx: EPI_BCG, ou: KL_N_F1, pe: "2024W1", coc: F_LT1, value: 4}
attributes:`, 1)
	m, err := ParseMetadata([]byte(doc), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range m.Clone().Facts { // Clone round-trips through JSON
		got = append(got, f.DX+"/"+f.Period+"/"+strconv.FormatFloat(f.Value, 'f', -1, 64))
	}
	if w := []string{"PI_BCG_F_LT1/202311/1", "PI_BCG_F_LT1/202312/2", "PI_BCG_F_LT1/202401/3", "EPI_BCG/2024W1/4"}; !slices.Equal(got, w) {
		t.Errorf("parsed facts %v, want %v", got, w)
	}
	for _, bad := range []string{"  - {dx: X, ou: KL, pe: \"2024\"}\n", "  - {dx: X, ou: KL, pe: \"2024\", value: 1, colour: red}\n"} {
		if _, err := ParseMetadata([]byte("facts:\n"+bad), "yaml"); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// a server on custom metadata has no sample facts
	if n := len(NewServer(WithT(t), WithMetadata(m)).Facts()); n != 4 {
		t.Errorf("custom metadata server has %d facts, want its own 4", n)
	}
}

// §6.2: stored aggregate values count in analytics like facts (DHIS2's
// analytics data value table): a plain data element is the total over its
// disaggregations and attribute option combos; text values are left out.
func TestAnalyticsStoredValues(t *testing.T) {
	srv := epServer(t)
	body := `{"dataSet":"` + SampleDataSetMAL + `","period":"202402","orgUnit":"` + SampleOrgUnitKLSF1 + `","attributeOptionCombo":"` + SampleAOCNGO + `","dataValues":[` +
		`{"dataElement":"` + SampleDEMALConfirmed + `","categoryOptionCombo":"` + SampleCOCFemale1To4 + `","value":"4"},` +
		`{"dataElement":"` + SampleDEMALConfirmed + `","categoryOptionCombo":"` + SampleCOCMale1To4 + `","value":"6"},` +
		`{"dataElement":"` + SampleDEMALRemarks + `","value":"stock-out"}]}`
	epWantStatus(t, epDo(t, srv, http.MethodPost, "/api/dataValueSets", "application/json", body), http.StatusOK)
	kalimaFacts(t, srv) // adds MAL_CONFIRMED F_1TO4 3 (GOV) + 2 (NGO) at KL_S_F1 in 202402
	got := epCells(t, epValues(t, epGet(t, srv, dvsPath+"dimension=dx:MAL_CONFIRMED;MAL_CONFIRMED.F_1TO4;MAL_REMARKS"+
		"&dimension=pe:202402;2024Q1&dimension=ou:KL_SOUTH&inputIdScheme=CODE&outputIdScheme=CODE")))
	want := map[string]string{
		"MAL_CONFIRMED|202402|KL_SOUTH||": "15", "MAL_CONFIRMED|2024Q1|KL_SOUTH||": "15",
		"MAL_CONFIRMED|202402|KL_SOUTH|F_1TO4|": "9", "MAL_CONFIRMED|2024Q1|KL_SOUTH|F_1TO4|": "9",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	got = epCells(t, epValues(t, epGet(t, srv, dvsPath+"dimension=dx:MAL_CONFIRMED&dimension=pe:202402&dimension=ou:KL_S_F1"+
		"&filter=FUNDING:NGO&inputIdScheme=CODE&outputIdScheme=CODE")))
	if got["MAL_CONFIRMED|202402|KL_S_F1||"] != "12" {
		t.Errorf("NGO only: %v", got)
	}
}

// facts.go: a server on the bare Kalima sample (also through WithMetadata)
// starts with the sample's facts, exchanges and data element groups;
// AddSampleAnalytics refuses metadata that is not the Kalima sample.
func TestSampleAnalyticsSeeding(t *testing.T) {
	srv := NewServer(WithT(t), WithMetadata(SampleMetadata()))
	m := srv.Metadata()
	if len(m.Facts) != 624 || len(m.AggregateDataExchanges) != 2 || len(m.DataElementGroups) != 3 {
		t.Errorf("seeded: %d facts, %d exchanges, %d groups", len(m.Facts), len(m.AggregateDataExchanges), len(m.DataElementGroups))
	}
	other, err := ParseMetadata([]byte("organisationUnits:\n  - {id: Abcdefghij1, code: X, name: X}\n"), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := AddSampleAnalytics(other); err == nil {
		t.Error("AddSampleAnalytics accepted non-Kalima metadata")
	}
	if n := len(NewServer(WithT(t), WithMetadata(other)).Facts()); n != 0 {
		t.Errorf("non-Kalima server has %d facts", n)
	}
}
