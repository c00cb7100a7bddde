package dhis2test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"
)

// Tests of /api/completeDataSetRegistrations (spec dhis2.md §8).

func regCounts(t *testing.T, sum map[string]any) [4]int {
	t.Helper()
	ic := sum["importCount"].(map[string]any)
	n := func(k string) int { return int(ic[k].(float64)) }
	return [4]int{n("imported"), n("updated"), n("ignored"), n("deleted")}
}

// §8: JSON import with organisationUnit; completed defaults to true and date
// to today; a second post updates; conflicts use {object,value}; status
// stays SUCCESS with conflicts; description "Import process complete.".
func TestRegistrationsPostJSON(t *testing.T) {
	srv := epServer(t)
	body := `{"completeDataSetRegistrations":[
	  {"dataSet":"` + SampleDataSetMAL + `","period":"202401","organisationUnit":"` + SampleOrgUnitKLNF1 + `","attributeOptionCombo":"` + SampleAOCGov + `","storedBy":"mediator"},
	  {"dataSet":"` + SampleDataSetEPI + `","period":"202401","organisationUnit":"` + SampleOrgUnitKLNF1 + `","date":"2024-02-03","completed":false},
	  {"dataSet":"XXXXXXXXXXX","period":"202401","organisationUnit":"` + SampleOrgUnitKLNF1 + `"},
	  {"dataSet":"` + SampleDataSetEPI + `","period":"2024W99","organisationUnit":"` + SampleOrgUnitKLNF1 + `"},
	  {"dataSet":"` + SampleDataSetEPI + `","period":"202401","organisationUnit":"nope"}]}`
	r := epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations", "application/json", body)
	epWantStatus(t, r, http.StatusOK)
	msg := r.obj(t)
	if msg["status"] != "OK" || msg["message"] != "Import was successful." {
		t.Errorf("WebMessage = %s", r.raw)
	}
	sum := msg["response"].(map[string]any)
	if sum["responseType"] != "ImportSummary" || sum["status"] != "SUCCESS" || sum["description"] != "Import process complete." {
		t.Errorf("summary = %v", sum)
	}
	if got := regCounts(t, sum); got != [4]int{2, 0, 3, 0} {
		t.Errorf("counts imported/updated/ignored/deleted = %v", got)
	}
	wantConflicts := `[{"object":"XXXXXXXXXXX","value":"Data set not found or not accessible"},` +
		`{"object":"2024W99","value":"Period not valid"},{"object":"nope","value":"Organisation unit not found or not accessible"}]`
	if got, _ := marshalNoEscape(sum["conflicts"]); string(got) != wantConflicts {
		t.Errorf("conflicts = %s", got)
	}
	regs := srv.Store().Registrations()
	want := []Registration{
		{DataSet: SampleDataSetEPI, Period: "202401", OrgUnit: SampleOrgUnitKLNF1, AttributeOptionCombo: DefaultCategoryOptionComboUID, Date: "2024-02-03", StoredBy: SampleUser, Completed: false},
		{DataSet: SampleDataSetMAL, Period: "202401", OrgUnit: SampleOrgUnitKLNF1, AttributeOptionCombo: SampleAOCGov, Date: "2024-03-15", StoredBy: "mediator", Completed: true},
	}
	if len(regs) != 2 || regs[0] != want[0] || regs[1] != want[1] {
		t.Errorf("registrations = %+v", regs)
	}
	// the same registration again is an update
	r = epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations", "application/json",
		`{"completeDataSetRegistrations":[{"dataSet":"`+SampleDataSetMAL+`","period":"202401","organisationUnit":"`+SampleOrgUnitKLNF1+`","attributeOptionCombo":"`+SampleAOCGov+`"}]}`)
	if got := regCounts(t, r.obj(t)["response"].(map[string]any)); got != [4]int{0, 1, 0, 0} {
		t.Errorf("second post counts = %v", got)
	}
}

// §8: every registration ignored (and the empty list) is ERROR, i.e. 409 on
// 2.38–2.42 and a bare 200 summary on a /api/37/ path of 2.40 (§2.1).
func TestRegistrationsAllIgnored(t *testing.T) {
	srv := epServer(t)
	r := epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations", "application/json", `{"completeDataSetRegistrations":[]}`)
	epWantStatus(t, r, http.StatusConflict)
	if b := r.obj(t); b["status"] != "ERROR" || b["message"] != "An error occurred, please check import summary." ||
		b["response"].(map[string]any)["status"] != "ERROR" {
		t.Errorf("body = %s", r.raw)
	}
	r = epDo(t, srv, http.MethodPost, "/api/37/completeDataSetRegistrations", "application/json",
		`{"completeDataSetRegistrations":[{"dataSet":"nope","period":"202401","organisationUnit":"`+SampleOrgUnitKLNF1+`"}]}`)
	epWantStatus(t, r, http.StatusOK)
	if b := r.obj(t); b["responseType"] != "ImportSummary" || b["status"] != "ERROR" {
		t.Errorf("bare summary = %s", r.raw)
	}
}

// §8: XML bodies (gzip accepted), payload id schemes over the query's,
// importStrategy=DELETE, dryRun, and the user's hierarchy.
func TestRegistrationsXMLSchemesStrategies(t *testing.T) {
	srv := epServer(t)
	xmlBody := `<?xml version="1.0"?><completeDataSetRegistrations xmlns="http://dhis2.org/schema/dxf/2.0" dataSetIdScheme="CODE">` +
		`<completeDataSetRegistration dataSet="CHW_MONTHLY" period="202402" organisationUnit="KL_S_F2"/>` +
		`<completeDataSetRegistration dataSet="CHW_MONTHLY" period="202402" organisationUnit="KL_S_F1" completed="false"/>` +
		`</completeDataSetRegistrations>`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(xmlBody))
	_ = zw.Close()
	r := epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations?orgUnitIdScheme=CODE&dataSetIdScheme=UID", "application/xml", gz.String())
	epWantStatus(t, r, http.StatusOK)
	if got := regCounts(t, r.obj(t)["response"].(map[string]any)); got != [4]int{2, 0, 0, 0} {
		t.Fatalf("counts = %v (%s)", got, r.raw)
	}
	// dry run deletes nothing
	del := `{"completeDataSetRegistrations":[{"dataSet":"` + SampleDataSetCHW + `","period":"202402","organisationUnit":"` + SampleOrgUnitKLSF2 + `"}]}`
	r = epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations?importStrategy=DELETE&dryRun=true", "application/json", del)
	if got := regCounts(t, r.obj(t)["response"].(map[string]any)); got != [4]int{0, 0, 0, 1} || len(srv.Store().Registrations()) != 2 {
		t.Errorf("dry run: counts %v, %d registrations", got, len(srv.Store().Registrations()))
	}
	r = epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations?importStrategy=DELETE", "application/json", del)
	if got := regCounts(t, r.obj(t)["response"].(map[string]any)); got != [4]int{0, 0, 0, 1} || len(srv.Store().Registrations()) != 1 {
		t.Errorf("delete: counts %v, %d registrations", got, len(srv.Store().Registrations()))
	}
	// kl_north may not complete for KL_SOUTH
	r = epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations", "application/json", del, epAs(SampleDistrictUser, SampleDistrictPassword))
	sum := r.obj(t)["response"].(map[string]any)
	c := sum["conflicts"].([]any)[0].(map[string]any)
	if c["object"] != SampleOrgUnitKLSF2 || c["value"] != "Organisation unit is not in hierarchy of user: kl_north" {
		t.Errorf("conflict = %v", c)
	}
	epWantStatus(t, epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations", "text/plain", "x"), http.StatusUnsupportedMediaType)
}

// §8: GET lists registrations with output schemes; DELETE ?ds=&pe=&ou= is
// 204; the export header's completeDate follows (§4.2).
func TestRegistrationsGetAndDelete(t *testing.T) {
	srv := epServer(t)
	epWantStatus(t, epDo(t, srv, http.MethodPost, "/api/completeDataSetRegistrations", "application/json",
		`{"completeDataSetRegistrations":[{"dataSet":"`+SampleDataSetEPI+`","period":"202401","organisationUnit":"`+SampleOrgUnitKLNF1+`","date":"2024-02-10"},`+
			`{"dataSet":"`+SampleDataSetEPI+`","period":"202401","organisationUnit":"`+SampleOrgUnitKLNF2+`","date":"2024-02-11"}]}`), http.StatusOK)
	r := epGet(t, srv, "/api/completeDataSetRegistrations?dataSet="+SampleDataSetEPI+"&period=202401&orgUnit="+SampleOrgUnitKLNorth+"&children=true&idScheme=CODE")
	epWantStatus(t, r, http.StatusOK)
	want := `{"completeDataSetRegistrations":[` +
		`{"dataSet":"EPI_MONTHLY","period":"202401","organisationUnit":"KL_N_F2","attributeOptionCombo":"default","date":"2024-02-11","storedBy":"admin","completed":true},` +
		`{"dataSet":"EPI_MONTHLY","period":"202401","organisationUnit":"KL_N_F1","attributeOptionCombo":"default","date":"2024-02-10","storedBy":"admin","completed":true}]}`
	if string(r.raw) != want {
		t.Errorf("GET\n got %s\nwant %s", r.raw, want)
	}
	hdr := epGet(t, srv, "/api/dataValueSets.json?dataSet="+SampleDataSetEPI+"&period=202401&orgUnit="+SampleOrgUnitKLNF1).obj(t)
	if hdr["completeDate"] != "2024-02-10T00:00:00.000+0000" {
		t.Errorf("export completeDate = %v", hdr["completeDate"])
	}
	epWantError(t, epGet(t, srv, "/api/completeDataSetRegistrations?period=202401&orgUnit="+SampleOrgUnitKL), http.StatusConflict, "",
		"At least one data set must be specified")
	r = epDo(t, srv, http.MethodDelete, "/api/completeDataSetRegistrations?ds="+SampleDataSetEPI+"&pe=202401&ou="+SampleOrgUnitKLNF1, "", "")
	epWantStatus(t, r, http.StatusNoContent)
	if regs := srv.Store().Registrations(); len(regs) != 1 || regs[0].OrgUnit != SampleOrgUnitKLNF2 {
		t.Errorf("after DELETE: %+v", regs)
	}
	epWantError(t, epDo(t, srv, http.MethodDelete, "/api/completeDataSetRegistrations?ds=nope&pe=202401&ou="+SampleOrgUnitKLNF1, "", ""),
		http.StatusConflict, "", "Illegal data set identifier in this list: [nope]")
	epWantStatus(t, epDo(t, srv, http.MethodDelete, "/api/completeDataSetRegistrations?ds="+SampleDataSetEPI+"&pe=202401&ou="+SampleOrgUnitKLNorth+"&multiOu=true", "", ""),
		http.StatusNoContent)
	if regs := srv.Store().Registrations(); len(regs) != 0 {
		t.Errorf("after multiOu DELETE: %+v", regs)
	}
}
