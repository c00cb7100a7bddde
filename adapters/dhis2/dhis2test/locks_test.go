package dhis2test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Tests of locked and closed periods (E7640–E7644). Codes, properties,
// object types and texts: dhis2-core DataValueImportConflict (E7643 period +
// dataSet, property "period"; E7644 period; E7642 no property, objects org
// unit, period, AOC, data set), ErrorCode E7642–E7644, and the assertions of
// DataValueSetImportValidatorTest (testCheckDataValuePeriodIsOpenNow*,
// testCheckDataValueNotAlreadyApproved, …ConformsToOpenPeriods…). Clock:
// 2024-03-15.

func lockServer(t *testing.T, ver string, edit func(m *Metadata)) *Server {
	t.Helper()
	srv := newTestServer(t, WithVersion(ver))
	if err := srv.UpdateMetadata(func(m *Metadata) error { edit(m); return nil }); err != nil {
		t.Fatal(err)
	}
	return srv
}

// oneConflict imports one MAL_TREATED value and returns its only conflict.
func oneConflict(t *testing.T, srv *Server, query, body string, opts ...reqOpt) map[string]any {
	t.Helper()
	r := postJSON(t, srv, "?idScheme=CODE"+query, body, opts...)
	sum := summaryOf(t, r)
	cs := conflictsOf(sum)
	if len(cs) != 1 || counts(t, sum) != [4]int{0, 0, 0, 1} || srv.Store().Len() != 0 {
		t.Fatalf("want one conflict and nothing stored: %s", r.raw)
	}
	return cs[0]
}

func expectConflict(t *testing.T, c map[string]any, code, property, value string, objects map[string]any) {
	t.Helper()
	if c["errorCode"] != code || c["value"] != value || (property == "" && c["property"] != nil) || (property != "" && c["property"] != property) {
		t.Errorf("conflict %v, want %s %q property %q", c, code, value, property)
	}
	got, _ := c["objects"].(map[string]any)
	for k, v := range objects {
		if got[k] != v {
			t.Errorf("objects %v, want %s=%v", got, k, v)
		}
	}
}

func TestDataInputPeriods(t *testing.T) {
	srv := lockServer(t, "2.40", func(m *Metadata) {
		m.DataSet("MAL_MONTHLY").DataInputPeriods = []DataInputPeriod{
			{Period: "202402", OpeningDate: "2024-03-01", ClosingDate: "2024-03-31"},
			{Period: "202401", OpeningDate: "2024-02-01", ClosingDate: "2024-03-10T23:59:59"},
		}
	})
	// 202401's window closed on 10 March: E7643 for the data set.
	c := oneConflict(t, srv, "", treated("202401", "4"))
	expectConflict(t, c, "E7643", "period", "Period: `202401` is not open for this data set at this time: `"+SampleDataSetMAL+"`",
		map[string]any{"period": "202401", "dataSet": SampleDataSetMAL})
	// 202312 has no input period at all.
	c = oneConflict(t, srv, "", treated("202312", "4"))
	expectConflict(t, c, "E7643", "period", "Period: `202312` is not open for this data set at this time: `"+SampleDataSetMAL+"`", nil)
	// 202402 is open now.
	if r := postJSON(t, srv, "?idScheme=CODE", treated("202402", "4")); counts(t, summaryOf(t, r)) != [4]int{1, 0, 0, 0} {
		t.Errorf("open period refused: %s", r.raw)
	}
	// force=true skips the check (superuser).
	if r := postJSON(t, srv, "?idScheme=CODE&force=true", treated("202312", "4")); counts(t, summaryOf(t, r)) != [4]int{1, 0, 0, 0} {
		t.Errorf("force: %s", r.raw)
	}
	// E7644: the header names CHW_MONTHLY (no input periods, so E7643
	// passes), but none of MAL_TREATED's own data sets is open for 202311.
	srv.Store().Reset()
	c = oneConflict(t, srv, "", `{"dataSet":"CHW_MONTHLY","dataValues":[{"dataElement":"MAL_TREATED","period":"202311","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"2"}]}`)
	expectConflict(t, c, "E7644", "period", "Period: `202311` does not conform to the open periods of associated data sets",
		map[string]any{"period": "202311"})
}

// From 2.39 the checks run over the value's target data sets: one open
// data set is enough unless strictDataSetInputPeriods / strictDataSetLocking
// ask for all (DataValueSetImportValidator.checkDataValueTargetDataSets,
// ImportContext.getTargetDataSets).
func TestTargetDataSets(t *testing.T) {
	srv := lockServer(t, "2.41", func(m *Metadata) {
		mal := m.DataSet("MAL_MONTHLY")
		mal.DataInputPeriods = []DataInputPeriod{{Period: "202402"}}
		mal.ExpiryDays = 10
		m.AddDataSet(DataSet{ID: "MalCopyDs01", Code: "MAL_COPY", Name: "Malaria copy", PeriodType: "Monthly",
			CategoryCombo: "FUNDING", DataElements: []string{"MAL_TREATED"}, OrgUnits: []string{"KL_N_F1"}})
	})
	if r := postJSON(t, srv, "?idScheme=CODE", treated("202401", "1")); counts(t, summaryOf(t, r)) != [4]int{1, 0, 0, 0} {
		t.Fatalf("MAL_COPY is open and unlocked, yet: %s", r.raw)
	}
	srv.Store().Reset()
	// strict locking: MAL_MONTHLY's 202401 expired on 10 February (for a
	// user without F_EDIT_EXPIRED; the admin's ALL would override the lock).
	c := oneConflict(t, srv, "&strictDataSetLocking=true", treated("202401", "1"), withBasic(SampleDistrictUser, SampleDistrictPassword))
	expectConflict(t, c, "E7640", "period", "Current date is past expiry days for period: `202401`  and data set: `"+SampleDataSetMAL+"`",
		map[string]any{"period": "202401", "dataSet": SampleDataSetMAL})
	c = oneConflict(t, srv, "&strictDataSetInputPeriods=true", treated("202403", "1"))
	expectConflict(t, c, "E7643", "period", "Period: `202403` is not open for this data set at this time: `"+SampleDataSetMAL+"`", nil)
	// Both closed: one conflict per failing data set.
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		m.DataSet("MAL_COPY").DataInputPeriods = []DataInputPeriod{{Period: "202402"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := postJSON(t, srv, "?idScheme=CODE", treated("202403", "1"))
	sum := summaryOf(t, r)
	var sets []string
	for _, c := range conflictsOf(sum) {
		sets = append(sets, c["objects"].(map[string]any)["dataSet"].(string))
	}
	slices.Sort(sets)
	if counts(t, sum) != [4]int{0, 0, 0, 1} || !slices.Equal(sets, []string{"MalCopyDs01", SampleDataSetMAL}) || !slices.Equal(intsOf(sum["rejectedIndexes"]), []int{0}) {
		t.Errorf("both closed: %s", r.raw)
	}
}

func TestApprovals(t *testing.T) {
	for _, ver := range []string{"2.38", "2.40"} {
		t.Run(ver, func(t *testing.T) {
			srv := newTestServer(t, WithVersion(ver))
			a := Approval{DataSet: "MAL_MONTHLY", Period: "202401", OrgUnit: "KL_NORTH", AttributeOptionCombo: "GOV"}
			if err := srv.Approve(a); err != nil {
				t.Fatal(err)
			}
			// approved at the district: its facilities' data is approved too
			c := oneConflict(t, srv, "", treated("202401", "7"))
			want := "Data already approved for data set: `" + SampleDataSetMAL + "` period: `202401` org unit: `KL_N_F1` attribute option combo: `GOV`"
			if ver == "2.38" {
				want = "Data is already approved for data set: `" + SampleDataSetMAL + "` period: `202401` organisation unit: `KL_N_F1` attribute option combo: `GOV`"
			}
			expectConflict(t, c, "E7642", "", want, map[string]any{"organisationUnit": "KL_N_F1", "period": "202401",
				"categoryOptionCombo": "GOV", "dataSet": SampleDataSetMAL})
			// another attribute option combo, period or district is not approved
			ngo := `{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"NGO","value":"7"}]}`
			south := `{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_S_F1","attributeOptionCombo":"GOV","value":"7"}]}`
			for _, body := range []string{ngo, south, treated("202402", "7")} {
				if r := postJSON(t, srv, "?idScheme=CODE", body); counts(t, summaryOf(t, r))[0] != 1 {
					t.Errorf("not approved, yet refused: %s", r.raw)
				}
			}
			if ok, err := srv.Unapprove(a); !ok || err != nil {
				t.Fatalf("unapprove: %v %v", ok, err)
			}
			if r := postJSON(t, srv, "?idScheme=CODE", treated("202401", "7")); counts(t, summaryOf(t, r))[0] != 1 {
				t.Errorf("after unapprove: %s", r.raw)
			}
			if err := srv.Approve(Approval{DataSet: "NOPE", Period: "2024x", OrgUnit: "KL"}); err == nil ||
				!strings.Contains(err.Error(), `unknown data set "NOPE"`) || !strings.Contains(err.Error(), `invalid period "2024x"`) {
				t.Errorf("bad approval: %v", err)
			}
		})
	}
}

func TestApprovalsAdminAPI(t *testing.T) {
	srv := newTestServer(t)
	admin := func(method, body string) response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.httpSrv.URL+"/__sim/approvals", strings.NewReader(body))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw := make([]byte, 4096)
		n, _ := res.Body.Read(raw)
		return response{status: res.StatusCode, raw: raw[:n]}
	}
	body := `{"dataSet":"MAL_MONTHLY","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV"}`
	if r := admin(http.MethodPost, body); r.status != http.StatusNoContent {
		t.Fatalf("POST: %d %s", r.status, r.raw)
	}
	if r := admin(http.MethodGet, ""); !strings.Contains(string(r.raw), `"orgUnit":"`+SampleOrgUnitKLNF1+`"`) {
		t.Errorf("GET: %s", r.raw)
	}
	oneConflict(t, srv, "", treated("202401", "7"))
	if r := admin(http.MethodPost, `{"dataSet":"NOPE","period":"202401","orgUnit":"KL"}`); r.status != http.StatusBadRequest {
		t.Errorf("bad POST: %d", r.status)
	}
	if r := admin(http.MethodDelete, body); r.status != http.StatusNoContent || len(srv.Approvals()) != 0 {
		t.Errorf("DELETE one: %d %v", r.status, srv.Approvals())
	}
	if r := admin(http.MethodDelete, body); r.status != http.StatusNotFound {
		t.Errorf("DELETE again: %d", r.status)
	}
	_ = srv.Approve(Approval{DataSet: "MAL_MONTHLY", Period: "202402", OrgUnit: "KL"})
	if r := admin(http.MethodDelete, ""); r.status != http.StatusNoContent || len(srv.Approvals()) != 0 {
		t.Errorf("DELETE all: %d", r.status)
	}
}

// Data input periods load from YAML and are served by /api/dataSets as
// DHIS2 serializes them (period as {"id": …}, JacksonPeriodSerializer).
func TestDataInputPeriodsMetadata(t *testing.T) {
	yml := `
users: [{id: UserAaaaaaa, username: admin, password: district, authorities: [ALL]}]
dataElements: [{id: DeAaaaaaaaa, name: A}]
dataSets:
  - id: DsAaaaaaaaa
    name: DS
    dataElements: [DeAaaaaaaaa]
    dataInputPeriods:
      - {period: "2024-02", openingDate: "2024-03-01", closingDate: "2024-03-31T18:00:00"}
`
	m, err := ParseMetadata([]byte(yml), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, WithMetadata(m))
	r := do(t, srv, http.MethodGet, "/api/dataSets/DsAaaaaaaaa?fields=dataInputPeriods", "", nil)
	want := `{"dataInputPeriods":[{"period":{"id":"2024-02"},"openingDate":"2024-03-01T00:00:00.000","closingDate":"2024-03-31T18:00:00.000"}]}`
	if string(r.raw) != want {
		t.Errorf("got  %s\nwant %s", r.raw, want)
	}
	bad := strings.Replace(yml, `"2024-02"`, `"2024-13"`, 1)
	if _, err := ParseMetadata([]byte(bad), "yaml"); err == nil || !strings.Contains(err.Error(), `dataInputPeriods[0]: invalid period "2024-13"`) {
		t.Errorf("bad period: %v", err)
	}
}
