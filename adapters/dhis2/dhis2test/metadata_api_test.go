package dhis2test

import (
	"net/http"
	"strings"
	"testing"
)

// Tests of the metadata reads: the DHIS2 metadata API's pager, fields and
// object filters (dhis2-docs src/developer/web-api/metadata.md "Browsing the
// Web API", "Metadata object filter", "Metadata field filter"), and spec
// dhis2.md §10.1 for aggregate data exchanges.

// metadata.md "Browsing the Web API": lists are paged (pageSize 50) with
// id and displayName by default; the .json suffix is the same resource.
func TestMetadataListDefaults(t *testing.T) {
	srv := epServer(t)
	r := epGet(t, srv, "/api/dataSets")
	want := `{"pager":{"page":1,"total":3,"pageSize":50,"pageCount":1},"dataSets":[` +
		`{"id":"wu1JOSNta0P","displayName":"CHW monthly"},{"id":"eRTpPWzUB4q","displayName":"EPI monthly"},` +
		`{"id":"sskDI1EDL0Y","displayName":"Malaria monthly"}]}`
	if string(r.raw) != want {
		t.Errorf("got  %s\nwant %s", r.raw, want)
	}
	if r2 := epGet(t, srv, "/api/dataSets.json"); string(r2.raw) != want {
		t.Errorf(".json suffix: %s", r2.raw)
	}
}

// metadata.md "Browsing the Web API": page, pageSize, paging=false, order.
func TestMetadataPaging(t *testing.T) {
	srv := epServer(t)
	r := epGet(t, srv, "/api/organisationUnits?fields=code&pageSize=3&page=2&order=code:asc")
	b := r.obj(t)
	pager := b["pager"].(map[string]any)
	if pager["page"] != 2.0 || pager["total"] != 7.0 || pager["pageSize"] != 3.0 || pager["pageCount"] != 3.0 ||
		!strings.Contains(pager["nextPage"].(string), "page=3") || !strings.Contains(pager["prevPage"].(string), "page=1") {
		t.Errorf("pager = %v", pager)
	}
	var codes []string
	for _, o := range b["organisationUnits"].([]any) {
		codes = append(codes, o.(map[string]any)["code"].(string))
	}
	if strings.Join(codes, ",") != "KL_N_F2,KL_SOUTH,KL_S_F1" {
		t.Errorf("page 2 = %v", codes)
	}
	r = epGet(t, srv, "/api/organisationUnits?fields=code&paging=false&order=level:desc,code:asc")
	if _, has := r.obj(t)["pager"]; has || !strings.HasPrefix(string(r.raw), `{"organisationUnits":[{"code":"KL_N_F1"},{"code":"KL_N_F2"}`) {
		t.Errorf("paging=false: %s", r.raw)
	}
}

// metadata.md "Metadata field filter": nested selections follow
// references, presets, exclusions.
func TestMetadataFields(t *testing.T) {
	srv := epServer(t)
	cases := []struct{ path, want string }{
		{"/api/dataElements?filter=code:eq:EPI_BCG&fields=id,code,name,categoryCombo[id,code]",
			`{"id":"BYQ0DVbpag1","code":"EPI_BCG","name":"BCG doses given","categoryCombo":{"id":"sNdV40J599d","code":"SEX_AGE"}}`},
		{"/api/dataElements?filter=code:eq:EPI_BCG&fields=code,dataSetElements[dataSet[id,code]],categoryCombo",
			`{"code":"EPI_BCG","dataSetElements":[{"dataSet":{"id":"eRTpPWzUB4q","code":"EPI_MONTHLY"}}],"categoryCombo":{"id":"sNdV40J599d"}}`},
		{"/api/categoryCombos?filter=code:eq:FUNDING&fields=code,categories[code,categoryOptions[code]],categoryOptionCombos[code]",
			`{"code":"FUNDING","categories":[{"code":"FUNDING","categoryOptions":[{"code":"GOV"},{"code":"NGO"}]}],"categoryOptionCombos":[{"code":"GOV"},{"code":"NGO"}]}`},
		{"/api/programIndicators?filter=code:eq:PI_MAL_TREATED&fields=code,aggregateExportCategoryOptionCombo,aggregateExportAttributeOptionCombo,attributeValues[attribute[id,code],value]",
			`{"code":"PI_MAL_TREATED","aggregateExportCategoryOptionCombo":"HllvX50cXC0","aggregateExportAttributeOptionCombo":"pATIk27f4t3","attributeValues":[{"attribute":{"id":"Khe37ak1aSJ","code":"AGG_DE_CODE"},"value":"MAL_TREATED"}]}`},
		{"/api/categoryOptionCombos?filter=code:eq:M_1TO4&fields=*,!ignoreApproval,!attributeValues",
			`{"id":"NcAKEIOUttY","code":"M_1TO4","name":"Male, 1-4 years","displayName":"Male, 1-4 years","categoryCombo":{"id":"sNdV40J599d"},"categoryOptions":[{"id":"QA6TCvY4dhK"},{"id":"UuSnH6av1Ib"}]}`},
		{"/api/organisationUnits?filter=code:eq:KL_SOUTH&fields=:identifiable,level,parent[code],children[code]",
			`{"id":"dAwVtRMflhb","code":"KL_SOUTH","name":"Kalima South","level":2,"parent":{"code":"KL"},"children":[{"code":"KL_S_F1"},{"code":"KL_S_F2"}]}`},
		{"/api/userGroups?filter=code:eq:DISTRICT_OFFICERS&fields=code,users[username]",
			`{"code":"DISTRICT_OFFICERS","users":[{"username":"kl_north"}]}`},
		{"/api/dataElementGroups?filter=code:eq:CHW&fields=code,dataElements[code]",
			`{"code":"CHW","dataElements":[{"code":"CHW_HOUSEHOLD_VISITS"},{"code":"CHW_U5_ASSESSMENTS"},{"code":"CHW_PREGNANCIES_REGISTERED"}]}`},
	}
	for _, c := range cases {
		r := epGet(t, srv, c.path+"&paging=false")
		epWantStatus(t, r, http.StatusOK)
		_, list, _ := strings.Cut(string(r.raw), ":[")
		if got := strings.TrimSuffix(list, "]}"); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.path, got, c.want)
		}
	}
}

// metadata.md "Metadata object filter": operators, paths through
// references and collections, rootJunction, attribute UIDs, query.
func TestMetadataFilters(t *testing.T) {
	srv := epServer(t)
	count := func(res, q string) int {
		t.Helper()
		r := epGet(t, srv, "/api/"+res+"?paging=false&"+q)
		epWantStatus(t, r, http.StatusOK)
		return len(r.obj(t)[res].([]any))
	}
	cases := []struct {
		res, q string
		want   int
	}{
		{"dataElements", "filter=code:like:MAL", 4},
		{"dataElements", "filter=code:!like:MAL", 6},
		{"dataElements", "filter=name:ilike:doses", 3},
		{"dataElements", "filter=code:$like:CHW", 3},
		{"dataElements", "filter=code:like$:1", 2},
		{"dataElements", "filter=code:in:[EPI_BCG,MAL_TREATED,NOPE]", 2},
		{"dataElements", "filter=code:!in:[EPI_BCG,MAL_TREATED]", 8},
		{"dataElements", "filter=categoryCombo.code:eq:SEX_AGE", 4},
		{"dataElements", "filter=dataSetElements.dataSet.id:eq:" + SampleDataSetMAL, 4},
		{"dataElements", "filter=dataSetElements.dataSet.code:eq:EPI_MONTHLY&filter=zeroIsSignificant:eq:true", 2},
		{"dataElements", "filter=code:eq:EPI_BCG&filter=code:eq:MAL_TREATED&rootJunction=OR", 2},
		{"organisationUnits", "filter=parent:null", 1},
		{"organisationUnits", "filter=parent:!null", 6},
		{"organisationUnits", "filter=level:ge:2&filter=parent.code:!eq:KL", 4},
		{"organisationUnits", "filter=path:like:" + SampleOrgUnitKLNorth, 3},
		{"programIndicators", "filter=attributeValues.value:eq:EPI_BCG", 4},
		{"programIndicators", "filter=aggregateExportAttributeOptionCombo:eq:" + SampleAOCGov, 5},
		{"categoryOptionCombos", "filter=categoryCombo.id:eq:" + SampleCategoryComboSexAge, 4},
		{"categories", "filter=dataDimensionType:eq:ATTRIBUTE", 1},
		{"attributes", "filter=code:eq:AGG_DE_CODE", 1},
		{"users", "filter=organisationUnits.code:eq:KL_NORTH", 1},
		{"programIndicators", "filter=" + SampleAttributeAggDECode + ":eq:MAL_CONFIRMED", 4},
		{"dataElements", "filter=code:ieq:epi_bcg", 1},
		{"dataElements", "filter=name:token:doses%20BCG", 1},
		{"dataSets", "filter=dataSetElements:eq:4", 1},
		{"dataSets", "filter=dataSetElements:lt:4", 2},
		{"organisationUnits", "filter=children:empty", 4},
		{"organisationUnits", "query=north", 3},
	}
	for _, c := range cases {
		if got := count(c.res, c.q); got != c.want {
			t.Errorf("%s?%s: %d objects, want %d", c.res, c.q, got, c.want)
		}
	}
	epWantError(t, epGet(t, srv, "/api/dataElements?filter=code:sounds:like"), http.StatusBadRequest, "", "Unsupported filter operator: sounds")
	epWantError(t, epGet(t, srv, "/api/dataElements?filter=colour:eq:red"), http.StatusBadRequest, "", "Unknown path property: colour")
}

// metadata.md: a single object has all fields by default; 404 for an
// unknown UID; credentials are never rendered.
func TestMetadataObject(t *testing.T) {
	srv := epServer(t)
	r := epGet(t, srv, "/api/categoryCombos/"+SampleCategoryComboFunding+".json")
	want := `{"id":"TCZWZYvRSZe","code":"FUNDING","name":"Funding","displayName":"Funding","dataDimensionType":"ATTRIBUTE",` +
		`"isDefault":false,"categories":[{"id":"esokF5NSAll"}],"categoryOptionCombos":[{"id":"pATIk27f4t3"},{"id":"tGolUByxRmX"}],"attributeValues":[]}`
	if string(r.raw) != want {
		t.Errorf("got  %s\nwant %s", r.raw, want)
	}
	r = epGet(t, srv, "/api/dataSets/"+SampleDataSetEPI+"?fields=code,periodType")
	if string(r.raw) != `{"code":"EPI_MONTHLY","periodType":"Monthly"}` {
		t.Errorf("fields on object: %s", r.raw)
	}
	epWantError(t, epGet(t, srv, "/api/dataElements/XXXXXXXXXXX"), http.StatusNotFound, "", "DataElement with id XXXXXXXXXXX could not be found.")
	// users never show passwords or tokens
	if r := epGet(t, srv, "/api/users/ftUvXQIChPn"); strings.Contains(string(r.raw), "district") || strings.Contains(string(r.raw), "d2pat_") {
		t.Errorf("user leaks credentials: %s", r.raw)
	}
}

// §10.1: exchanges are metadata from 2.39; target.api shows url and username
// only (ApiSerializer).
func TestMetadataExchanges(t *testing.T) {
	srv := epServer(t)
	r := epGet(t, srv, "/api/aggregateDataExchanges/"+SampleExchangeTrackerToHMIS+"?fields=code,target")
	want := `{"code":"KL_TRACKER_TO_HMIS","target":{"type":"EXTERNAL","api":{"url":"http://hmis.kalima.example/dhis","username":"admin"},` +
		`"request":{"dataElementIdScheme":"CODE","orgUnitIdScheme":"UID","categoryOptionComboIdScheme":"UID"}}}`
	if string(r.raw) != want {
		t.Errorf("got  %s\nwant %s", r.raw, want)
	}
	r = epGet(t, srv, "/api/aggregateDataExchanges?fields=id,source[requests[name,dx,pe,ou,inputIdScheme,outputIdScheme]]&filter=code:eq:KL_PI_TO_AGGREGATE&paging=false")
	b := r.obj(t)["aggregateDataExchanges"].([]any)
	if len(b) != 1 {
		t.Fatalf("exchanges = %s", r.raw)
	}
	req := b[0].(map[string]any)["source"].(map[string]any)["requests"].([]any)[0].(map[string]any)
	if req["outputIdScheme"] != "ATTRIBUTE:"+SampleAttributeAggDECode || len(req["dx"].([]any)) != 13 || req["pe"].([]any)[0] != "202401" {
		t.Errorf("request = %v", req)
	}
	if strings.Contains(string(epGet(t, srv, "/api/aggregateDataExchanges?fields=*").raw), "password") {
		t.Error("password exposed")
	}
	old := epServer(t, WithVersion("2.38"))
	epWantStatus(t, epGet(t, old, "/api/aggregateDataExchanges"), http.StatusNotFound)
}
