package dhis2test

import (
	"slices"
	"testing"
)

// TestConformanceDVS243 covers conformance README §6.2 (2.43.1/master data
// entry pipeline): imported is always 0, every write counts as updated.
func TestConformanceDVS243(t *testing.T) {
	conformanceDir(t)
	j := step{file: dvs("dataValueSetJ.json"), counts: [4]int{0, 1, 0, 0}, stored: 1}
	b := step{file: dvs("dataValueSetB.xml"), counts: [4]int{0, 12, 0, 0}, stored: 12}
	bDeleted := step{file: dvs("dataValueSetBDeleted.xml"), counts: [4]int{0, 12, 0, 0}, stored: 8}
	del := func(file string) step {
		return step{file: dvs(file), query: "?importStrategy=DELETE", counts: [4]int{0, 0, 1, 0}, stored: 0}
	}
	rejected := func(code, value string) func(*testing.T, *Server, map[string]any) {
		return func(t *testing.T, _ *Server, sum map[string]any) {
			t.Helper()
			cs := conflictsOf(sum)
			if len(cs) != 1 || cs[0]["errorCode"] != code || (value != "" && cs[0]["value"] != value) {
				t.Errorf("conflicts %v, want one %s %q", cs, code, value)
			}
		}
	}
	scenarios := []scenario{
		{name: "J", steps: []step{j}},
		{name: "J/DELETE", steps: []step{j, del("dataValueSetJ.json")}},
		{name: "J/DeleteNoValue", steps: []step{j, del("dataValueSetJDeleteNoValue.json")}},
		{name: "J/DeleteNewValue", steps: []step{j, del("dataValueSetJDeleteNewValue.json")}},
		{name: "J/DeleteZeroValue", steps: []step{j, {file: dvs("dataValueSetJDeleteZeroValue.json"), counts: [4]int{0, 1, 0, 0}, stored: 1}}},
		{name: "A/ADeleted", steps: []step{
			{file: dvs("dataValueSetA.xml"), counts: [4]int{0, 3, 0, 0}, stored: 3},
			{file: dvs("dataValueSetADeleted.xml"), counts: [4]int{0, 3, 0, 0}, stored: 0}}},
		{name: "B", steps: []step{b}},
		{name: "B/BUpdate", steps: []step{b, {file: dvs("dataValueSetBUpdate.xml"), counts: [4]int{0, 6, 0, 0}, stored: 14}}},
		{name: "BDeleted", steps: []step{bDeleted}},
		{name: "BDeleted/B", steps: []step{bDeleted, {file: b.file, counts: [4]int{0, 12, 0, 0}, stored: 12}}},
		{name: "BDeleted/BNew", steps: []step{bDeleted, {file: dvs("dataValueSetBNew.xml"), counts: [4]int{0, 12, 0, 0}, stored: 16}}},
		{name: "B/BDeleted", steps: []step{b, {file: bDeleted.file, counts: [4]int{0, 12, 0, 0}, stored: 8}}},
		{name: "B/BNewDeleted", steps: []step{b, {file: dvs("dataValueSetBNewDeleted.xml"), counts: [4]int{0, 12, 0, 0}, stored: 10}}},
		{name: "B/B DELETE", steps: []step{b, {file: b.file, query: "?importStrategy=DELETE", counts: [4]int{0, 0, 12, 0}, stored: 0}}},
		{name: "B dryRun", steps: []step{{file: b.file, query: "?dryRun=true", counts: [4]int{0, 12, 0, 0}, stored: 0}}},
		{name: "B UPDATES", steps: []step{{file: b.file, query: "?importStrategy=UPDATES", counts: [4]int{0, 12, 0, 0}, stored: 12}}},
		{name: "CreateDate", steps: []step{
			{file: dvs("dataValueSetCreateDate.json"), counts: [4]int{0, 1, 0, 0}, stored: 1},
			{file: dvs("dataValueSetCreateDateUpdated.json"), counts: [4]int{0, 1, 0, 0}, stored: 1,
				check: func(t *testing.T, srv *Server, _ map[string]any) {
					v, _ := srv.Lookup("DE_A", "201201", "OU_A", "", "")
					if v.Value != "22" || v.Comment != "new comment" || !v.Created.Equal(fixedNow) {
						t.Errorf("stored %+v", v)
					}
				}}}},
		{name: "A/AUpdate changelog", steps: []step{
			{file: dvs("dataValueSetA.xml"), counts: [4]int{0, 3, 0, 0}, stored: 3, check: func(t *testing.T, srv *Server, _ map[string]any) {
				if got := storedValues(srv); !slices.Equal(got, []string{"10001", "10002", "10003"}) {
					t.Errorf("values %v", got)
				}
				expectChangelog(t, srv, 1)
			}},
			{file: dvs("dataValueSetAUpdate.xml"), counts: [4]int{0, 3, 0, 0}, stored: 3, check: func(t *testing.T, srv *Server, _ map[string]any) {
				expectChangelog(t, srv, 2)
			}}}},
		{name: "ACode", steps: []step{{file: dvs("dataValueSetACode.xml"), counts: [4]int{0, 3, 0, 0}, stored: 3}}},
		{name: "BCode", steps: []step{{file: dvs("dataValueSetBCode.xml"), query: "?idScheme=CODE&dataElementIdScheme=CODE&orgUnitIdScheme=CODE", counts: [4]int{0, 12, 0, 0}, stored: 12}}},
		{name: "BAttribute", steps: []step{{file: dvs("dataValueSetBAttribute.xml"),
			query: "?idScheme=ATTRIBUTE:uh6H2ff562G&dataElementIdScheme=ATTRIBUTE:uh6H2ff562G&orgUnitIdScheme=ATTRIBUTE:uh6H2ff562G", counts: [4]int{0, 12, 0, 0}, stored: 12}}},
		{name: "BAttributeIdScheme", steps: []step{{file: dvs("dataValueSetBAttributeIdScheme.xml"), counts: [4]int{0, 12, 0, 0}, stored: 12}}},
		{name: "B.csv", steps: []step{{file: dvs("v2.43/dataValueSetB.csv"), counts: [4]int{0, 12, 0, 0}, stored: 12}}},
		{name: "WithDataSetHeader.csv", steps: []step{{file: dvs("v2.43/dataValueSetWithDataSetHeader.csv"), query: "?dataSet=pBOMPrpg1QX", counts: [4]int{0, 3, 0, 0}, stored: 3}}},
		{name: "BNoHeader.csv", steps: []step{{file: dvs("dataValueSetBNoHeader.csv"), query: "?firstRowIsHeader=false", counts: unchecked, status: "ERROR", stored: 0,
			check: func(t *testing.T, _ *Server, sum map[string]any) {
				if sum["description"] != "The import process failed: CSV without header row is no longer supported." {
					t.Errorf("description %v", sum["description"])
				}
			}}}},
		{name: "BooleanTest.csv", steps: []step{{file: dvs("v2.43/dataValueSetBooleanTest.csv"), counts: [4]int{0, 14, -1, 4}, status: "WARNING", stored: -1,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				if occurrences(sum, "") != 4 || !slices.Equal(intsOf(sum["rejectedIndexes"]), []int{10, 11, 16, 17}) {
					t.Errorf("conflicts %v rejected %v", sum["conflicts"], sum["rejectedIndexes"])
				}
				vals := storedValues(srv)
				if !slices.Contains(vals, "true") || !slices.Contains(vals, "false") {
					t.Errorf("stored %v", vals)
				}
				for _, v := range vals {
					if v != "true" && v != "false" {
						t.Errorf("stored %q", v)
					}
				}
			}}}},
		{name: "BooleanDuplicatesTest.csv", steps: []step{{file: dvs("v2.43/dataValueSetBooleanDuplicatesTest.csv"), counts: unchecked, status: "ERROR", stored: 0,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				rejected("E8128", "Value #[0, 1] all affect the same data value: `DataValueKey[dataElement=jH26dja2f30, orgUnit=DiszpKrYNg8, categoryOptionCombo=null, attributeOptionCombo=null, period=201201]`")(t, srv, sum)
				if n := len(intsOf(sum["rejectedIndexes"])); n != 18 {
					t.Errorf("%d rejected indexes, want 18", n)
				}
			}}}},
		{name: "C", steps: []step{{file: dvs("dataValueSetC.xml"), counts: [4]int{0, 3, 0, 0}, stored: 3}}},
		{name: "CCode", steps: []step{{file: dvs("dataValueSetCCode.xml"), query: "?categoryOptionComboIdScheme=CODE", counts: [4]int{0, 3, 0, 0}, stored: 3}}},
		{name: "D2", steps: []step{{file: dvs("v2.43/dataValueSetD2.xml"), counts: [4]int{0, 3, 0, 0}, stored: 3,
			check: func(t *testing.T, srv *Server, sum map[string]any) {
				for _, de := range []string{"DE_A", "DE_B", "DE_C"} {
					expectStoredKey(de, "201201", "OU_A", "", "")(t, srv, sum)
				}
			}}}},
		{name: "E", steps: []step{{file: dvs("v2.43/dataValueSetE.xml"), counts: unchecked, status: "ERROR", stored: 0,
			check: rejected("E8022", "Data set pBOMPrpg1QX not usable with org unit(s): `[j7Hg26FpoIa]`")}}},
		{name: "F", steps: []step{{file: dvs("dataValueSetF.xml"), counts: [4]int{-1, 0, -1, -1}, status: "ERROR", stored: 0}}},
		{name: "G", steps: []step{{file: dvs("dataValueSetG.xml"), counts: unchecked, status: "ERROR", stored: 0,
			check: rejected("E8020", "Data set pBOMPrpg1QX not usable with data element(s): `[nonEx1sting]`")}}},
		{name: "NonStrict strictPeriods", steps: []step{{file: dvs("dataValueSetNonStrict.xml"), query: "?strictPeriods=true", counts: unchecked, status: "ERROR", stored: 0,
			check: rejected("E8021", "Data set pBOMPrpg1QX not usable with period(s): `[2012Q2, 2012]`")}}},
		{name: "IllegalCoc", steps: []step{{file: dvs("v2.43/dataValueSetIllegalCoc.xml"), query: "?strictCategoryOptionCombos=true", counts: unchecked, status: "ERROR", stored: 0,
			check: rejected("E8024", "Data set pBOMPrpg1QX + data element f7n9E0hX8qk not usable with category option combo(s): `[kjuiHgy67hg]`")}}},
		{name: "IllegalOrgUnit", steps: []step{{file: dvs("v2.43/dataValueSetIllegalOrgUnit.xml"), query: "?strictOrganisationUnits=true", counts: unchecked, status: "ERROR", stored: 0,
			check: rejected("E8022", "")}}},
		{name: "Invalid", steps: []step{{file: dvs("dataValueSetInvalid.xml"), counts: unchecked, status: "ERROR", stored: 0, check: rejected("E8020", "")}}},
		{name: "ANull", steps: []step{{file: dvs("dataValueSetANull.xml"), counts: [4]int{0, 1, 0, 2}, status: "WARNING", stored: 1, check: expectConflicts(2)}}},
		// README §6.3: 2.43 counts the inline payload as 0/5/0/0.
		{name: "NewPeriods", inline: map[string]string{"inline.xml": `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" idScheme="code" dataSet="DS_A" orgUnit="OU_A">
  <dataValue dataElement="DE_A" period="200006" value="10001"/>
  <dataValue dataElement="DE_B" period="200006" value="10002"/>
  <dataValue dataElement="DE_C" period="200007" value="10003"/>
  <dataValue dataElement="DE_D" period="200007" value="10004"/>
  <dataValue dataElement="DE_D" period="200008" value="10005"/>
</dataValueSet>`}, steps: []step{{file: "inline.xml", counts: [4]int{0, 5, 0, 0}, status: "SUCCESS", stored: 5}}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.meta, sc.ver, sc.user = "m-dvs-243.yaml", "2.43", "admin"
			runScenario(t, sc)
		})
	}
}

func expectChangelog(t *testing.T, srv *Server, want int) {
	t.Helper()
	for _, v := range srv.Store().Values() {
		n := 0
		for _, w := range srv.Store().History(v.Key) {
			if w.Audited {
				n++
			}
		}
		if n != want {
			t.Errorf("%v: %d changelog entries, want %d", v.Key, n, want)
		}
	}
}

func adx(file string) string { return "adx/" + file }

// The nine values of conformance README §5.1 (importA/B/C).
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

func expectADXValues(t *testing.T, srv *Server, _ map[string]any) {
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

// TestConformanceADX covers conformance README §5.1 and §5.3 (ADX import,
// 2.38–2.42 with the CODE default, and the 2.43 variants).
func TestConformanceADX(t *testing.T) {
	conformanceDir(t)
	importDatesCheck := func(value string, updated bool) func(*testing.T, *Server, map[string]any) {
		return func(t *testing.T, srv *Server, _ map[string]any) {
			t.Helper()
			v, ok := srv.Lookup("MalNummmmmm", "202001", "P1233333333", "MOver555555", "")
			if !ok || v.Value != value || !v.Created.Equal(fixedNow) {
				t.Errorf("stored %+v, want %s created %v", v, value, fixedNow)
			}
			if updated && v.LastUpdated.Equal(v.Created) {
				t.Errorf("lastUpdated %v must differ from created", v.LastUpdated)
			}
		}
	}
	uidSchemes := "?idScheme=UID&dataElementIdScheme=UID&orgUnitIdScheme=UID&categoryIdScheme=UID&categoryOptionIdScheme=UID&categoryOptionComboIdScheme=UID&dataSetIdScheme=UID"
	for _, ver := range []string{"2.38", "2.42"} {
		scenarios := []scenario{
			{name: ver + "/importA", steps: []step{{file: adx("importA.adx.xml"),
				query:  "?dataElementIdScheme=NAME&categoryIdScheme=NAME&categoryOptionIdScheme=UID&categoryOptionComboIdScheme=UID",
				counts: [4]int{9, 0, 0, 0}, status: "SUCCESS", stored: 9, check: expectADXValues}}},
			{name: ver + "/importB", steps: []step{{file: adx("importB.adx.xml"),
				query:  "?dataSetIdScheme=NAME&orgUnitIdScheme=UID&dataElementIdScheme=UID&categoryOptionComboIdScheme=NAME",
				counts: [4]int{9, 0, 0, 0}, status: "SUCCESS", stored: 9, check: expectADXValues}}},
			{name: ver + "/importC", steps: []step{{file: adx("importC.adx.xml"),
				query:  "?dataSetIdScheme=UID&orgUnitIdScheme=NAME&categoryIdScheme=UID&categoryOptionIdScheme=NAME",
				counts: [4]int{9, 0, 0, 0}, status: "SUCCESS", stored: 9, check: expectADXValues}}},
			{name: ver + "/importDates", steps: []step{
				{file: adx("importDates.adx.xml"), query: uidSchemes, counts: [4]int{1, 0, 0, 0}, stored: 1, check: importDatesCheck("33", false)},
				{file: adx("importDatesUpdate.adx.xml"), query: uidSchemes, counts: [4]int{0, 1, 0, 0}, stored: 1, check: importDatesCheck("55", true)}}},
		}
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				sc.meta, sc.ver, sc.user = "m-adx.yaml", ver, "admin"
				runScenario(t, sc)
			})
		}
	}
	// Not asserted by DHIS2 for 2.43 (README §5.1 is 2.38): importA through
	// the 2.43 pipeline with explicit schemes, groups of two data sets.
	t.Run("2.43/importA", func(t *testing.T) {
		t.Parallel()
		runScenario(t, scenario{meta: "m-adx.yaml", ver: "2.43", user: "admin", steps: []step{{file: adx("importA.adx.xml"),
			query:  "?idScheme=CODE&dataElementIdScheme=NAME&categoryIdScheme=NAME&categoryOptionIdScheme=UID&categoryOptionComboIdScheme=UID",
			counts: [4]int{0, 9, 0, 0}, status: "SUCCESS", stored: 9, check: expectADXValues}}})
	})
	t.Run("2.43/importDates", func(t *testing.T) {
		t.Parallel()
		runScenario(t, scenario{meta: "m-adx.yaml", ver: "2.43", user: "admin", steps: []step{
			{file: adx("v2.43/importDates.adx.xml"), counts: [4]int{0, 1, 0, 0}, status: "SUCCESS", stored: 1, check: importDatesCheck("33333", false)},
			{file: adx("v2.43/importDatesUpdate.adx.xml"), counts: [4]int{0, 1, 0, 0}, status: "SUCCESS", stored: 1},
		}})
	})
}
