package conformance

import (
	"slices"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// --- README §6.2: 2.43.1 / master data entry pipeline ----------------------
// imported is always 0, every write counts as updated.

func dvs243() []Scenario {
	j := Step{File: dvs("dataValueSetJ.json"), Counts: Counts{0, 1, 0, 0}, Stored: 1}
	b := Step{File: dvs("dataValueSetB.xml"), Counts: Counts{0, 12, 0, 0}, Stored: 12}
	bDeleted := Step{File: dvs("dataValueSetBDeleted.xml"), Counts: Counts{0, 12, 0, 0}, Stored: 8}
	del := func(file string) Step {
		return Step{File: dvs(file), Query: "?importStrategy=DELETE", Counts: Counts{0, 0, 1, 0}, Stored: 0}
	}
	rejected := func(file, query, code, value string) Step {
		return Step{File: file, Query: query, Counts: Unchecked, Status: "ERROR", Stored: 0, CheckResponse: oneConflict(code, value)}
	}
	sc := []Scenario{
		{Name: "J", Steps: []Step{j}},
		{Name: "J/DELETE", Steps: []Step{j, del("dataValueSetJ.json")}},
		{Name: "J/DeleteNoValue", Steps: []Step{j, del("dataValueSetJDeleteNoValue.json")}},
		{Name: "J/DeleteNewValue", Steps: []Step{j, del("dataValueSetJDeleteNewValue.json")}},
		{Name: "J/DeleteZeroValue", Steps: []Step{j, {File: dvs("dataValueSetJDeleteZeroValue.json"), Counts: Counts{0, 1, 0, 0}, Stored: 1}}},
		{Name: "A/ADeleted", Steps: []Step{
			{File: dvs("dataValueSetA.xml"), Counts: Counts{0, 3, 0, 0}, Stored: 3},
			{File: dvs("dataValueSetADeleted.xml"), Counts: Counts{0, 3, 0, 0}, Stored: 0}}},
		{Name: "B", Steps: []Step{b}},
		{Name: "B/BUpdate", Steps: []Step{b, {File: dvs("dataValueSetBUpdate.xml"), Counts: Counts{0, 6, 0, 0}, Stored: 14}}},
		{Name: "BDeleted", Steps: []Step{bDeleted}},
		{Name: "BDeleted/B", Steps: []Step{bDeleted, {File: b.File, Counts: Counts{0, 12, 0, 0}, Stored: 12}}},
		{Name: "BDeleted/BNew", Steps: []Step{bDeleted, {File: dvs("dataValueSetBNew.xml"), Counts: Counts{0, 12, 0, 0}, Stored: 16}}},
		{Name: "B/BDeleted", Steps: []Step{b, {File: bDeleted.File, Counts: Counts{0, 12, 0, 0}, Stored: 8}}},
		{Name: "B/BNewDeleted", Steps: []Step{b, {File: dvs("dataValueSetBNewDeleted.xml"), Counts: Counts{0, 12, 0, 0}, Stored: 10}}},
		{Name: "B/B DELETE", Steps: []Step{b, {File: b.File, Query: "?importStrategy=DELETE", Counts: Counts{0, 0, 12, 0}, Stored: 0}}},
		{Name: "B dryRun", Steps: []Step{{File: b.File, Query: "?dryRun=true", Counts: Counts{0, 12, 0, 0}, Stored: 0}}},
		{Name: "B UPDATES", Steps: []Step{{File: b.File, Query: "?importStrategy=UPDATES", Counts: Counts{0, 12, 0, 0}, Stored: 12}}},
		{Name: "CreateDate", Steps: []Step{
			{File: dvs("dataValueSetCreateDate.json"), Counts: Counts{0, 1, 0, 0}, Stored: 1},
			{File: dvs("dataValueSetCreateDateUpdated.json"), Counts: Counts{0, 1, 0, 0}, Stored: 1,
				CheckStore: func(t testing.TB, srv *dhis2test.Server) {
					v, _ := srv.Lookup("DE_A", "201201", "OU_A", "", "")
					if v.Value != "22" || v.Comment != "new comment" || !v.Created.Equal(Now) {
						t.Errorf("stored %+v", v)
					}
				}}}},
		{Name: "A/AUpdate changelog", Steps: []Step{
			{File: dvs("dataValueSetA.xml"), Counts: Counts{0, 3, 0, 0}, Stored: 3, CheckStore: func(t testing.TB, srv *dhis2test.Server) {
				if got := storedValues(srv); !slices.Equal(got, []string{"10001", "10002", "10003"}) {
					t.Errorf("values %v", got)
				}
				audited("", 1)(t, srv)
			}},
			{File: dvs("dataValueSetAUpdate.xml"), Counts: Counts{0, 3, 0, 0}, Stored: 3, CheckStore: audited("", 2)}}},
		{Name: "ACode", Steps: []Step{{File: dvs("dataValueSetACode.xml"), Counts: Counts{0, 3, 0, 0}, Stored: 3}}},
		{Name: "BCode", Steps: []Step{{File: dvs("dataValueSetBCode.xml"), Query: "?idScheme=CODE&dataElementIdScheme=CODE&orgUnitIdScheme=CODE", Counts: Counts{0, 12, 0, 0}, Stored: 12}}},
		{Name: "BAttribute", Steps: []Step{{File: dvs("dataValueSetBAttribute.xml"),
			Query: "?idScheme=ATTRIBUTE:uh6H2ff562G&dataElementIdScheme=ATTRIBUTE:uh6H2ff562G&orgUnitIdScheme=ATTRIBUTE:uh6H2ff562G", Counts: Counts{0, 12, 0, 0}, Stored: 12}}},
		{Name: "BAttributeIdScheme", Steps: []Step{{File: dvs("dataValueSetBAttributeIdScheme.xml"), Counts: Counts{0, 12, 0, 0}, Stored: 12}}},
		{Name: "B.csv", Steps: []Step{{File: dvs("v2.43/dataValueSetB.csv"), Counts: Counts{0, 12, 0, 0}, Stored: 12}}},
		{Name: "WithDataSetHeader.csv", Steps: []Step{{File: dvs("v2.43/dataValueSetWithDataSetHeader.csv"), Query: "?dataSet=pBOMPrpg1QX", Counts: Counts{0, 3, 0, 0}, Stored: 3}}},
		{Name: "BNoHeader.csv", Steps: []Step{{File: dvs("dataValueSetBNoHeader.csv"), Query: "?firstRowIsHeader=false", Counts: Unchecked, Status: "ERROR", Stored: 0,
			CheckResponse: func(t testing.TB, res Result) {
				if res.Description != "The import process failed: CSV without header row is no longer supported." {
					t.Errorf("description %v", res.Description)
				}
			}}}},
		{Name: "BooleanTest.csv", Steps: []Step{{File: dvs("v2.43/dataValueSetBooleanTest.csv"), Counts: Counts{0, 14, -1, 4}, Status: "WARNING", Stored: -1,
			CheckResponse: func(t testing.TB, res Result) {
				if res.Occurrences("") != 4 || !slices.Equal(res.RejectedIndexes, []int{10, 11, 16, 17}) {
					t.Errorf("conflicts %+v rejected %v", res.Conflicts, res.RejectedIndexes)
				}
			},
			CheckStore: onlyBooleans}}},
		{Name: "BooleanDuplicatesTest.csv", Steps: []Step{{File: dvs("v2.43/dataValueSetBooleanDuplicatesTest.csv"), Counts: Unchecked, Status: "ERROR", Stored: 0,
			CheckResponse: func(t testing.TB, res Result) {
				oneConflict("E8128", "Value #[0, 1] all affect the same data value: `DataValueKey[dataElement=jH26dja2f30, orgUnit=DiszpKrYNg8, categoryOptionCombo=null, attributeOptionCombo=null, period=201201]`")(t, res)
				if n := len(res.RejectedIndexes); n != 18 {
					t.Errorf("%d rejected indexes, want 18", n)
				}
			}}}},
		{Name: "C", Steps: []Step{{File: dvs("dataValueSetC.xml"), Counts: Counts{0, 3, 0, 0}, Stored: 3}}},
		{Name: "CCode", Steps: []Step{{File: dvs("dataValueSetCCode.xml"), Query: "?categoryOptionComboIdScheme=CODE", Counts: Counts{0, 3, 0, 0}, Stored: 3}}},
		{Name: "D2", Steps: []Step{{File: dvs("v2.43/dataValueSetD2.xml"), Counts: Counts{0, 3, 0, 0}, Stored: 3,
			CheckStore: storedKeys([5]string{"DE_A", "201201", "OU_A", "", ""}, [5]string{"DE_B", "201201", "OU_A", "", ""}, [5]string{"DE_C", "201201", "OU_A", "", ""})}}},
		{Name: "E", Steps: []Step{rejected(dvs("v2.43/dataValueSetE.xml"), "", "E8022", "Data set pBOMPrpg1QX not usable with org unit(s): `[j7Hg26FpoIa]`")}},
		{Name: "F", Steps: []Step{{File: dvs("dataValueSetF.xml"), Counts: Counts{-1, 0, -1, -1}, Status: "ERROR", Stored: 0}}},
		{Name: "G", Steps: []Step{rejected(dvs("dataValueSetG.xml"), "", "E8020", "Data set pBOMPrpg1QX not usable with data element(s): `[nonEx1sting]`")}},
		{Name: "NonStrict strictPeriods", Steps: []Step{rejected(dvs("dataValueSetNonStrict.xml"), "?strictPeriods=true", "E8021", "Data set pBOMPrpg1QX not usable with period(s): `[2012Q2, 2012]`")}},
		{Name: "IllegalCoc", Steps: []Step{rejected(dvs("v2.43/dataValueSetIllegalCoc.xml"), "?strictCategoryOptionCombos=true", "E8024",
			"Data set pBOMPrpg1QX + data element f7n9E0hX8qk not usable with category option combo(s): `[kjuiHgy67hg]`")}},
		{Name: "IllegalOrgUnit", Steps: []Step{rejected(dvs("v2.43/dataValueSetIllegalOrgUnit.xml"), "?strictOrganisationUnits=true", "E8022", "")}},
		{Name: "Invalid", Steps: []Step{rejected(dvs("dataValueSetInvalid.xml"), "", "E8020", "")}},
		{Name: "ANull", Steps: []Step{{File: dvs("dataValueSetANull.xml"), Counts: Counts{0, 1, 0, 2}, Status: "WARNING", Stored: 1, CheckResponse: conflictEntries(2)}}},
		// README §6.3: 2.43 counts the inline payload as 0/5/0/0.
		{Name: "NewPeriods", Inline: map[string]string{"inline.xml": newPeriodsXML},
			Steps: []Step{{File: "inline.xml", Counts: Counts{0, 5, 0, 0}, Status: "SUCCESS", Stored: 5}}},
	}
	for i := range sc {
		sc[i].Name, sc[i].Metadata, sc[i].Version, sc[i].User = "dvs243/"+sc[i].Name, MetaDVS243, "2.43", "admin"
	}
	return sc
}

// --- README §5.1, §5.3: ADX -------------------------------------------------

// The nine values of README §5.1 (importA/B/C).
var adxExpected = []struct{ de, pe, ou, coc, aoc, value string }{
	{"Mal_num", "202001", "123", "F_Under5", "", "1"},
	{"Mal_num", "202001", "123", "M_Under5", "", "2"},
	{"Mal_num", "202001", "123", "F_Over5", "", "3"},
	{"Mal_num", "202001", "123", "M_Over5", "", "4"},
	{"Mal_text", "202001", "123", "", "", "Text data value"},
	{"Mal_num", "202002", "456", "F_Under5", "", "6"},
	{"Mal_num", "2021Q1", "456", "F_Under5", "coc_PEPFAR", "10"},
	{"Mal_num", "2021Q1", "456", "F_Over5", "coc_McDonalds", "20"},
	{"Mal_num", "2021Q1", "456", "M_Under5", "coc_McDonalds", "30"},
}

func adxValues(t testing.TB, srv *dhis2test.Server) {
	t.Helper()
	if srv.Store().Len() != len(adxExpected) {
		t.Errorf("%d values stored, want %d: %+v", srv.Store().Len(), len(adxExpected), srv.Store().Values())
	}
	for _, e := range adxExpected {
		v, ok := srv.Lookup(e.de, e.pe, e.ou, e.coc, e.aoc)
		if !ok || v.Value != e.value {
			t.Errorf("%+v: stored %q (%v)", e, v.Value, ok)
		}
	}
}

func importDates(value string, updated bool) func(testing.TB, *dhis2test.Server) {
	return func(t testing.TB, srv *dhis2test.Server) {
		t.Helper()
		v, ok := srv.Lookup("MalNummmmmm", "202001", "P1233333333", "MOver555555", "")
		if !ok || v.Value != value || !v.Created.Equal(Now) {
			t.Errorf("stored %+v, want %s created %v", v, value, Now)
		}
		if updated && v.LastUpdated.Equal(v.Created) {
			t.Errorf("lastUpdated %v must differ from created", v.LastUpdated)
		}
	}
}

func adxScenarios() []Scenario {
	uidSchemes := "?idScheme=UID&dataElementIdScheme=UID&orgUnitIdScheme=UID&categoryIdScheme=UID&categoryOptionIdScheme=UID&categoryOptionComboIdScheme=UID&dataSetIdScheme=UID"
	var sc []Scenario
	for _, ver := range []string{"2.38", "2.42"} {
		sc = append(sc,
			Scenario{Name: ver + "/importA", Version: ver, Steps: []Step{{File: adx("importA.adx.xml"),
				Query:  "?dataElementIdScheme=NAME&categoryIdScheme=NAME&categoryOptionIdScheme=UID&categoryOptionComboIdScheme=UID",
				Counts: Counts{9, 0, 0, 0}, Status: "SUCCESS", Stored: 9, CheckStore: adxValues}}},
			Scenario{Name: ver + "/importB", Version: ver, Steps: []Step{{File: adx("importB.adx.xml"),
				Query:  "?dataSetIdScheme=NAME&orgUnitIdScheme=UID&dataElementIdScheme=UID&categoryOptionComboIdScheme=NAME",
				Counts: Counts{9, 0, 0, 0}, Status: "SUCCESS", Stored: 9, CheckStore: adxValues}}},
			Scenario{Name: ver + "/importC", Version: ver, Steps: []Step{{File: adx("importC.adx.xml"),
				Query:  "?dataSetIdScheme=UID&orgUnitIdScheme=NAME&categoryIdScheme=UID&categoryOptionIdScheme=NAME",
				Counts: Counts{9, 0, 0, 0}, Status: "SUCCESS", Stored: 9, CheckStore: adxValues}}},
			Scenario{Name: ver + "/importDates", Version: ver, Steps: []Step{
				{File: adx("importDates.adx.xml"), Query: uidSchemes, Counts: Counts{1, 0, 0, 0}, Stored: 1, CheckStore: importDates("33", false)},
				{File: adx("importDatesUpdate.adx.xml"), Query: uidSchemes, Counts: Counts{0, 1, 0, 0}, Stored: 1, CheckStore: importDates("55", true)}}},
		)
	}
	// Not asserted by DHIS2 for 2.43 (README §5.1 is 2.38): importA through
	// the 2.43 pipeline with explicit schemes, groups of two data sets.
	sc = append(sc,
		Scenario{Name: "2.43/importA", Version: "2.43", Steps: []Step{{File: adx("importA.adx.xml"),
			Query:  "?idScheme=CODE&dataElementIdScheme=NAME&categoryIdScheme=NAME&categoryOptionIdScheme=UID&categoryOptionComboIdScheme=UID",
			Counts: Counts{0, 9, 0, 0}, Status: "SUCCESS", Stored: 9, CheckStore: adxValues}}},
		Scenario{Name: "2.43/importDates", Version: "2.43", Steps: []Step{
			{File: adx("v2.43/importDates.adx.xml"), Counts: Counts{0, 1, 0, 0}, Status: "SUCCESS", Stored: 1, CheckStore: importDates("33333", false)},
			{File: adx("v2.43/importDatesUpdate.adx.xml"), Counts: Counts{0, 1, 0, 0}, Status: "SUCCESS", Stored: 1}}},
	)
	for i := range sc {
		sc[i].Name, sc[i].Metadata, sc[i].User = "adx/"+sc[i].Name, MetaADX, "admin"
	}
	return sc
}
