package conformance

import (
	"slices"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// Scenarios returns the whole table: README §6.1 (2.42 engine, "dvs242/"),
// §6.2 (2.43 pipeline, "dvs243/"), §5.1/§5.3 (ADX, "adx/") and the CHT
// exports of §7 ("cht/"). Each call builds fresh values.
func Scenarios() []Scenario {
	return slices.Concat(dvs242(), dvs243(), adxScenarios(), chtScenarios())
}

func dvs(file string) string { return "dvs/" + file }

func adx(file string) string { return "adx/" + file }

func cht(file string) string { return "cht/" + file }

// --- shared checks ---------------------------------------------------------

func conflictEntries(n int) func(testing.TB, Result) {
	return func(t testing.TB, res Result) {
		t.Helper()
		if len(res.Conflicts) != n {
			t.Errorf("%d conflict entries, want %d: %+v", len(res.Conflicts), n, res.Conflicts)
		}
	}
}

func oneConflict(code, value string) func(testing.TB, Result) {
	return func(t testing.TB, res Result) {
		t.Helper()
		if len(res.Conflicts) != 1 || res.Conflicts[0].ErrorCode != code || (value != "" && res.Conflicts[0].Value != value) {
			t.Errorf("conflicts %+v, want one %s %q", res.Conflicts, code, value)
		}
	}
}

func storedKeys(keys ...[5]string) func(testing.TB, *dhis2test.Server) {
	return func(t testing.TB, srv *dhis2test.Server) {
		t.Helper()
		for _, k := range keys {
			if _, ok := srv.Lookup(k[0], k[1], k[2], k[3], k[4]); !ok {
				t.Errorf("value %v not stored", k)
			}
		}
	}
}

func storedValues(srv *dhis2test.Server) []string {
	var out []string
	for _, v := range srv.Store().Values() {
		out = append(out, v.Value)
	}
	slices.Sort(out)
	return out
}

func onlyBooleans(t testing.TB, srv *dhis2test.Server) {
	t.Helper()
	vals := storedValues(srv)
	if !slices.Contains(vals, "true") || !slices.Contains(vals, "false") {
		t.Errorf("stored %v, want true and false", vals)
	}
	for _, v := range vals {
		if v != "true" && v != "false" {
			t.Errorf("stored %q", v)
		}
	}
}

// audited counts each live value's audited writes (of op, or any with "").
func audited(op string, want int) func(testing.TB, *dhis2test.Server) {
	return func(t testing.TB, srv *dhis2test.Server) {
		t.Helper()
		for _, v := range srv.Store().Values() {
			n := 0
			for _, w := range srv.Store().History(v.Key) {
				if w.Audited && (op == "" || w.Operation == op) {
					n++
				}
			}
			if n != want {
				t.Errorf("%v: %d audited %s writes, want %d", v.Key, n, op, want)
			}
		}
	}
}

func updateMetadata(fn func(m *dhis2test.Metadata)) func(testing.TB, *dhis2test.Server) {
	return func(t testing.TB, srv *dhis2test.Server) {
		t.Helper()
		if err := srv.UpdateMetadata(func(m *dhis2test.Metadata) error { fn(m); return nil }); err != nil {
			t.Fatal(err)
		}
	}
}

func categoryOption(m *dhis2test.Metadata, id string) *dhis2test.CategoryOption {
	for _, o := range m.CategoryOptions {
		if o.ID == id {
			return o
		}
	}
	return nil
}

// month returns the monthly period n months from Now ("202404" for 1).
func month(n int) string {
	return time.Date(Now.Year(), Now.Month()+time.Month(n), 1, 0, 0, 0, 0, time.UTC).Format("200601")
}

const newPeriodsXML = `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" idScheme="code" dataSet="DS_A" orgUnit="OU_A">
  <dataValue dataElement="DE_A" period="200006" value="10001"/>
  <dataValue dataElement="DE_B" period="200006" value="10002"/>
  <dataValue dataElement="DE_C" period="200007" value="10003"/>
  <dataValue dataElement="DE_D" period="200007" value="10004"/>
  <dataValue dataElement="DE_D" period="200008" value="10005"/>
</dataValueSet>`

// --- README §6.1: 2.42.5.2 -------------------------------------------------

func dvs242() []Scenario {
	j := Step{File: dvs("dataValueSetJ.json"), Counts: Counts{1, 0, 0, -1}, Status: "SUCCESS", Stored: 1}
	a := Step{File: dvs("dataValueSetA.xml"), Counts: Counts{3, 0, 0, -1}, Status: "SUCCESS", Stored: 3}
	b := Step{File: dvs("dataValueSetB.xml"), Counts: Counts{12, 0, 0, -1}, Status: "SUCCESS", Stored: 12}
	bDeleted := Step{File: dvs("dataValueSetBDeleted.xml"), Counts: Counts{12, 0, 0, -1}, Status: "SUCCESS", Stored: 8}
	del := func(file string) Step {
		return Step{File: dvs(file), Query: "?importStrategy=DELETE", Counts: Counts{0, 0, 1, -1}, Stored: 0}
	}
	seedRegistration := func(t testing.TB, srv *dhis2test.Server) {
		srv.Store().PutRegistration(dhis2test.Registration{DataSet: "pBOMPrpg1QX", Period: "201201", OrgUnit: "DiszpKrYNg8",
			AttributeOptionCombo: dhis2test.DefaultCategoryOptionComboUID, Date: "2012-01-09", Completed: true})
	}
	readOnly := updateMetadata(func(m *dhis2test.Metadata) { m.User("dvs").ReadOnlyDataSets = []string{"pBOMPrpg1QX"} })
	optionDates := updateMetadata(func(m *dhis2test.Metadata) {
		o := categoryOption(m, "CatOptionAa")
		o.StartDate, o.EndDate = "2012-02-01", "2012-02-29"
	})
	optionOrgUnits := updateMetadata(func(m *dhis2test.Metadata) {
		categoryOption(m, "CatOptionAa").OrgUnits = []string{"OU_A", "OU_B"}
	})
	allowsPeriods := `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" idScheme="code" dataSet="DS_A" orgUnit="OU_A">
  <dataValue dataElement="DE_A" period="` + month(4) + `" value="1"/>
  <dataValue dataElement="DE_A" period="` + month(1) + `" value="2"/>
  <dataValue dataElement="DE_A" period="` + month(-1) + `" value="3"/>
  <dataValue dataElement="DE_A" period="` + month(-4) + `" value="4"/>
  <dataValue dataElement="DE_A" period="` + month(6) + `" value="5"/>
</dataValueSet>`
	nonStrict := func(query string, counts Counts, check func(testing.TB, Result)) Step {
		return Step{File: dvs("dataValueSetNonStrict.xml"), Query: query, Counts: counts, Status: "WARNING", Stored: -1, CheckResponse: check}
	}
	indexes := func(code string, idx ...int) func(testing.TB, Result) {
		return func(t testing.TB, res Result) {
			t.Helper()
			if len(res.Conflicts) != 1 || !slices.Equal(res.Conflicts[0].Indexes, idx) || res.Conflicts[0].ErrorCode != code {
				t.Errorf("conflicts %+v, want one %s at %v", res.Conflicts, code, idx)
			}
		}
	}
	sc := []Scenario{
		{Name: "J", Steps: []Step{j}},
		{Name: "J/DELETE", Steps: []Step{j, {File: dvs("dataValueSetJ.json"), Query: "?importStrategy=DELETE", Counts: Counts{0, 0, 1, -1}, Status: "SUCCESS", Stored: 0}}},
		{Name: "J/DeleteNoValue", Steps: []Step{j, del("dataValueSetJDeleteNoValue.json")}},
		{Name: "J/DeleteNewValue", Steps: []Step{j, del("dataValueSetJDeleteNewValue.json")}},
		{Name: "J/DeleteZeroValue", Steps: []Step{j, {File: dvs("dataValueSetJDeleteZeroValue.json"), Counts: Counts{0, 0, 1, -1}, Stored: 0}}},
		{Name: "A", Setup: seedRegistration, Steps: []Step{{File: a.File, Counts: a.Counts, Status: "SUCCESS", Stored: 3,
			CheckStore: func(t testing.TB, srv *dhis2test.Server) {
				if got := storedValues(srv); !slices.Equal(got, []string{"10001", "10002", "10003"}) {
					t.Errorf("values %v", got)
				}
				audited("", 0)(t, srv) // creates leave no audit rows
				if regs := srv.Store().Registrations(); len(regs) != 1 || regs[0].Date != "2012-01-09" {
					t.Errorf("registrations %+v", regs)
				}
			}}}},
		{Name: "A/read-only data set", Setup: readOnly, Steps: []Step{{File: a.File, Counts: Unchecked, Status: "ERROR", Stored: 0}}},
		{Name: "A/A", Steps: []Step{a, {File: a.File, Counts: Counts{0, 0, 0, 3}, Status: "SUCCESS", Stored: 3}}},
		{Name: "A/ADeleted", Steps: []Step{a, {File: dvs("dataValueSetADeleted.xml"), Counts: Counts{0, 0, 3, -1}, Status: "SUCCESS", Stored: 0}}},
		{Name: "A/AUpdate", Steps: []Step{a, {File: dvs("dataValueSetAUpdate.xml"), Counts: Counts{0, 3, 0, -1}, Stored: 3, CheckStore: audited(dhis2test.OpUpdate, 1)}}},
		{Name: "A/AUpdate skipAudit", Steps: []Step{a, {File: dvs("dataValueSetAUpdate.xml"), Query: "?skipAudit=true", Counts: Counts{0, 3, 0, -1}, Stored: 3, CheckStore: audited(dhis2test.OpUpdate, 0)}}},
		{Name: "ACode", Steps: []Step{{File: dvs("dataValueSetACode.xml"), Counts: Counts{3, 0, 0, -1}, Stored: 3,
			CheckResponse: func(t testing.TB, res Result) {
				if res.DataSetComplete != "2012-01-09" {
					t.Errorf("dataSetComplete %v", res.DataSetComplete)
				}
			},
			CheckStore: storedKeys([5]string{"DE_A", "201201", "OU_A", "", ""}, [5]string{"DE_B", "201201", "OU_A", "", ""}, [5]string{"DE_C", "201201", "OU_A", "", ""})}}},
		{Name: "ACatCombo", Steps: []Step{{File: dvs("dataValueSetACatCombo.xml"), Counts: Counts{3, 0, 0, -1}, Status: "SUCCESS", Stored: 3}}},
		{Name: "ACatCombo/read-only data set", Setup: readOnly, Steps: []Step{{File: dvs("dataValueSetACatCombo.xml"), Counts: Unchecked, Status: "ERROR", Stored: 0}}},
		{Name: "ANull", Steps: []Step{{File: dvs("dataValueSetANull.xml"), Counts: Counts{1, 0, 0, 2}, Status: "WARNING", Stored: 1, CheckResponse: conflictEntries(2)}}},
		{Name: "B", Steps: []Step{b}},
		{Name: "B dryRun", Steps: []Step{{File: b.File, Query: "?dryRun=true", Counts: Counts{12, 0, 0, -1}, Stored: 0}}},
		{Name: "B UPDATES", Steps: []Step{{File: b.File, Query: "?importStrategy=UPDATES", Counts: Counts{0, 0, 0, 12}, Stored: 0}}},
		{Name: "B/B DELETE", Steps: []Step{b, {File: b.File, Query: "?importStrategy=DELETE", Counts: Counts{0, 0, 12, -1}, Stored: 0}}},
		{Name: "B/BUpdate", Steps: []Step{b, {File: dvs("dataValueSetBUpdate.xml"), Counts: Counts{2, 4, 0, -1}, Status: "SUCCESS", Stored: 14}}},
		{Name: "BDeleted", Steps: []Step{bDeleted}},
		{Name: "B/BDeleted", Steps: []Step{b, {File: bDeleted.File, Counts: Counts{0, 0, 4, 8}, Status: "SUCCESS", Stored: 8}}},
		{Name: "BDeleted/B", Steps: []Step{bDeleted, {File: b.File, Counts: Counts{4, 0, 0, 8}, Status: "SUCCESS", Stored: 12}}},
		{Name: "BDeleted/BNew", Steps: []Step{bDeleted, {File: dvs("dataValueSetBNew.xml"), Counts: Counts{8, 0, 0, 4}, Status: "SUCCESS", Stored: 16}}},
		{Name: "B/BNewDeleted", Steps: []Step{b, {File: dvs("dataValueSetBNewDeleted.xml"), Counts: Counts{2, 0, 4, 6}, Status: "SUCCESS", Stored: 10}}},
		{Name: "CreateDate", Steps: []Step{
			{File: dvs("dataValueSetCreateDate.json"), Counts: Counts{1, 0, 0, -1}, Stored: 1, CheckStore: func(t testing.TB, srv *dhis2test.Server) {
				v, _ := srv.Lookup("DE_A", "201201", "OU_A", "", "")
				if v.Value != "20" || !v.Created.Equal(Now) || !v.LastUpdated.Equal(Now) {
					t.Errorf("stored %+v (created/lastUpdated must be the server's time)", v)
				}
			}},
			{File: dvs("dataValueSetCreateDateUpdated.json"), Counts: Counts{0, 1, 0, -1}, Stored: 1, CheckStore: func(t testing.TB, srv *dhis2test.Server) {
				v, _ := srv.Lookup("DE_A", "201201", "OU_A", "", "")
				if v.Value != "22" || v.Comment != "new comment" || !v.Created.Equal(Now) || v.LastUpdated.Equal(v.Created) {
					t.Errorf("stored %+v", v)
				}
			}}}},
		{Name: "BCode", Steps: []Step{{File: dvs("dataValueSetBCode.xml"), Query: "?idScheme=CODE&dataElementIdScheme=CODE&orgUnitIdScheme=CODE", Counts: Counts{12, 0, 0, -1}, Stored: 12}}},
		{Name: "BAttribute", Steps: []Step{{File: dvs("dataValueSetBAttribute.xml"),
			Query: "?idScheme=ATTRIBUTE:uh6H2ff562G&dataElementIdScheme=ATTRIBUTE:uh6H2ff562G&orgUnitIdScheme=ATTRIBUTE:uh6H2ff562G", Counts: Counts{12, 0, 0, -1}, Stored: 12}}},
		{Name: "BAttributeIdScheme", Steps: []Step{{File: dvs("dataValueSetBAttributeIdScheme.xml"), Counts: Counts{12, 0, 0, -1}, Stored: 12}}},
		{Name: "B.csv", Steps: []Step{{File: dvs("dataValueSetB.csv"), Counts: Counts{12, 0, 0, -1}, Stored: 12}}},
		{Name: "WithDataSetHeader.csv", Steps: []Step{{File: dvs("dataValueSetWithDataSetHeader.csv"), Query: "?dataSet=pBOMPrpg1QX", Counts: Counts{3, 0, 0, -1}, Stored: 3}}},
		{Name: "BNoHeader.csv", Steps: []Step{{File: dvs("dataValueSetBNoHeader.csv"), Query: "?firstRowIsHeader=false", Counts: Counts{12, 0, 0, -1}, Stored: 12}}},
		{Name: "BooleanTest.csv", Steps: []Step{{File: dvs("dataValueSetBooleanTest.csv"), Counts: Unchecked, Stored: -1,
			CheckResponse: func(t testing.TB, res Result) {
				if n := res.Occurrences("E7619"); n != 4 || res.Occurrences("") != 4 {
					t.Errorf("E7619 occurrences %d of %d", n, res.Occurrences(""))
				}
				cs := res.Conflicts
				if len(cs) != 2 || !slices.Equal(cs[0].Indexes, []int{10, 11}) || !slices.Equal(cs[1].Indexes, []int{16, 17}) {
					t.Errorf("conflicts %+v", cs)
				}
			},
			CheckStore: func(t testing.TB, srv *dhis2test.Server) {
				for _, v := range storedValues(srv) {
					if v != "true" && v != "false" {
						t.Errorf("stored %q", v)
					}
				}
			}}}},
		{Name: "C", Steps: []Step{{File: dvs("dataValueSetC.xml"), Counts: Counts{3, 0, 0, -1}, Stored: 3}}},
		{Name: "CCode", Steps: []Step{{File: dvs("dataValueSetCCode.xml"), Query: "?categoryOptionComboIdScheme=CODE", Counts: Counts{3, 0, 0, -1}, Stored: 3}}},
		{Name: "D", Steps: []Step{{File: dvs("dataValueSetD.xml"), Counts: Counts{3, 0, 0, -1}, Stored: 3,
			CheckStore: storedKeys([5]string{"DE_A", "201201", "OU_A", "", "kjuiHgy67hg"}, [5]string{"DE_B", "201201", "OU_A", "", "kjuiHgy67hg"},
				[5]string{"DE_C", "201201", "OU_A", "", "kjuiHgy67hg"})}}},
		// README: "WARNING, 2 conflicts": the two OU_C values merge into one
		// E7617 entry (same code and objects), and the header completeDate
		// without a header orgUnit adds "Must be provided to complete data set".
		{Name: "E", Steps: []Step{{File: dvs("dataValueSetE.xml"), Counts: Unchecked, Status: "WARNING", Stored: 1,
			CheckResponse: func(t testing.TB, res Result) {
				conflictEntries(2)(t, res)
				if n := res.Occurrences("E7617"); n != 2 {
					t.Errorf("E7617 occurrences %d, want 2: %+v", n, res.Conflicts)
				}
			},
			CheckStore: storedKeys([5]string{"DE_A", "201201", "OU_A", "", "kjuiHgy67hg"})}}},
		{Name: "F", Steps: []Step{{File: dvs("dataValueSetF.xml"), Counts: Counts{0, -1, -1, -1}, Status: "ERROR", Stored: 0, Codes: []string{"E7604"}}}},
		{Name: "G", Steps: []Step{{File: dvs("dataValueSetG.xml"), Counts: Counts{1, 0, 0, 3}, Status: "WARNING", Stored: 1, Codes: []string{"E7610", "E7612"},
			CheckResponse: func(t testing.TB, res Result) {
				if res.Occurrences("E7610") != 2 || res.Occurrences("E7612") != 1 {
					t.Errorf("conflicts %+v", res.Conflicts)
				}
			}}}},
		{Name: "H/option dates", Setup: optionDates, Steps: []Step{{File: dvs("dataValueSetH.xml"), Counts: Counts{1, 0, 0, 2}, Status: "WARNING", Stored: 1,
			CheckResponse: conflictEntries(2), CheckStore: storedKeys([5]string{"DE_B", "201202", "OU_B", "", "kjuiHgy67hg"})}}},
		{Name: "H/option org units", Setup: optionOrgUnits, Steps: []Step{{File: dvs("dataValueSetH.xml"), Counts: Counts{2, 0, 0, 1}, Status: "WARNING", Stored: 2,
			CheckResponse: conflictEntries(1),
			CheckStore:    storedKeys([5]string{"DE_A", "201201", "OU_A", "", "kjuiHgy67hg"}, [5]string{"DE_B", "201202", "OU_B", "", "kjuiHgy67hg"})}}},
		{Name: "Invalid", Steps: []Step{{File: dvs("dataValueSetInvalid.xml"), Counts: Counts{2, 0, 0, -1}, Status: "WARNING", Stored: 2, CheckResponse: conflictEntries(1)}}},
		{Name: "NonStrict strictPeriods", Steps: []Step{nonStrict("?strictPeriods=true", Counts{1, 0, 0, 2}, conflictEntries(2))}},
		{Name: "NonStrict strictCOC", Steps: []Step{nonStrict("?strictCategoryOptionCombos=true", Counts{2, 0, 0, 1}, conflictEntries(1))}},
		{Name: "NonStrict strictAOC", Steps: []Step{nonStrict("?strictAttributeOptionCombos=true", Counts{2, 0, 0, 1}, conflictEntries(1))}},
		{Name: "NonStrict requireCOC", Steps: []Step{nonStrict("?requireCategoryOptionCombo=true", Counts{1, 0, 0, 2}, indexes("E7630", 1, 2))}},
		{Name: "NonStrict requireAOC", Steps: []Step{nonStrict("?requireAttributeOptionCombo=true", Counts{1, 0, 0, 2}, indexes("E7631", 0, 2))}},
		{Name: "NonStrict strictOU", Steps: []Step{nonStrict("?strictOrganisationUnits=true", Counts{2, 0, 0, 1}, conflictEntries(1))}},
		// README §6.3 inline payloads
		{Name: "NewPeriods", Inline: map[string]string{"inline.xml": newPeriodsXML},
			Steps: []Step{{File: "inline.xml", Counts: Counts{5, 0, 0, -1}, Status: "SUCCESS", Stored: 5}}},
		{Name: "DataSetAllowsPeriods", Inline: map[string]string{"inline.xml": allowsPeriods},
			Setup: updateMetadata(func(m *dhis2test.Metadata) {
				m.DataSet("DS_A").ExpiryDays, m.DataSet("DS_A").OpenFuturePeriods = 62, 2
			}),
			Steps: []Step{{File: "inline.xml", Counts: Counts{2, 0, 0, 3}, Status: "WARNING", Stored: 2, CheckResponse: conflictEntries(3),
				CheckStore: storedKeys([5]string{"DE_A", month(1), "OU_A", "", ""}, [5]string{"DE_A", month(-1), "OU_A", "", ""})}}},
	}
	for i := range sc {
		sc[i].Name, sc[i].Metadata, sc[i].Version, sc[i].User = "dvs242/"+sc[i].Name, MetaDVS, "2.42", "dvs"
	}
	return sc
}
