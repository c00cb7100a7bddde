package dhis2test

import (
	"encoding/csv"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of GET /api/dataValueSets (spec dhis2.md §4.2).

// exportServer seeds three values: BCG F_LT1 at KL_N_F1 (January), BCG
// M_LT1 at KL_S_F1 (February, soft-deleted) and MAL_CONFIRMED F_LT1/NGO at
// KL_N_F2 (January, with a comment and follow-up), plus a registration of
// EPI_MONTHLY for KL_N_F1 in January.
func exportServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv := epServer(t, opts...)
	created := time.Date(2024, 2, 5, 19, 58, 12, 0, time.UTC)
	put := func(de, pe, ou, coc, aoc, value, comment string, follow, deleted bool, updated time.Time) {
		srv.Store().Put(Value{Key: epKey(t, srv, de, pe, ou, coc, aoc), Value: value, Comment: comment, FollowUp: follow,
			Deleted: deleted, StoredBy: "admin", Created: created, LastUpdated: updated})
	}
	put("EPI_BCG", "202401", "KL_N_F1", "F_LT1", "", "12", "", false, false, created)
	put("EPI_BCG", "202402", "KL_S_F1", "M_LT1", "", "7", "", false, true, created.Add(48*time.Hour))
	put("MAL_CONFIRMED", "202401", "KL_N_F2", "F_LT1", "NGO", "3", "late report", true, false, epNow.Add(-2*time.Hour))
	srv.Store().PutRegistration(Registration{DataSet: SampleDataSetEPI, Period: "202401", OrgUnit: SampleOrgUnitKLNF1,
		AttributeOptionCombo: DefaultCategoryOptionComboUID, Date: "2024-02-03", StoredBy: "admin", Completed: true})
	return srv
}

// §4.2: every value carries the full field set in Jackson order, timestamps
// in yyyy-MM-dd'T'HH:mm:ss.SSSZ UTC, null for an empty comment, followup,
// and no deleted field on live rows.
func TestExportJSONFieldSet(t *testing.T) {
	srv := exportServer(t)
	r := epGet(t, srv, "/api/dataValueSets.json?dataSet="+SampleDataSetEPI+"&period=202401&period=202402&orgUnit="+SampleOrgUnitKL+"&children=true")
	epWantStatus(t, r, http.StatusOK)
	want := `{"dataValues":[{"dataElement":"BYQ0DVbpag1","period":"202401","orgUnit":"muaptt0Azn0",` +
		`"categoryOptionCombo":"yx4Ag8SsaxT","attributeOptionCombo":"HllvX50cXC0","value":"12","storedBy":"admin",` +
		`"created":"2024-02-05T19:58:12.000+0000","lastUpdated":"2024-02-05T19:58:12.000+0000","comment":null,"followup":false}]}`
	if string(r.raw) != want {
		t.Errorf("body\n got %s\nwant %s", r.raw, want)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
}

// §4.2: deleted:true appears only on deleted rows, which only
// includeDeleted=true brings; comment and followup are exported as stored.
func TestExportIncludeDeleted(t *testing.T) {
	srv := exportServer(t)
	vals := epValues(t, epGet(t, srv, "/api/dataValueSets?dataElement=EPI_BCG,MAL_CONFIRMED&inputIdScheme=CODE"+
		"&startDate=2024-01-01&endDate=2024-02-29&orgUnit=KL&inputOrgUnitIdScheme=CODE&children=true&includeDeleted=true"))
	if len(vals) != 3 {
		t.Fatalf("got %d values, want 3: %v", len(vals), vals)
	}
	for _, v := range vals {
		_, has := v["deleted"]
		switch v["period"].(string) + v["orgUnit"].(string) {
		case "202402" + SampleOrgUnitKLSF1:
			if v["deleted"] != true {
				t.Errorf("deleted row without deleted:true: %v", v)
			}
		default:
			if has {
				t.Errorf("live row carries deleted: %v", v)
			}
		}
		if v["orgUnit"] == SampleOrgUnitKLNF2 && (v["comment"] != "late report" || v["followup"] != true ||
			v["attributeOptionCombo"] != SampleAOCNGO) {
			t.Errorf("malaria value = %v", v)
		}
	}
	vals = epValues(t, epGet(t, srv, "/api/dataValueSets?dataElement="+SampleDEEPIBCG+"&startDate=2024-01-01&endDate=2024-02-29&orgUnit="+SampleOrgUnitKL+"&children=true"))
	if len(vals) != 1 || vals[0]["period"] != "202401" {
		t.Errorf("without includeDeleted: %v", vals)
	}
}

// §4.2: one data set, period and org unit give the header variant
// (dataSet, completeDate from the default-AOC registration, period, orgUnit).
func TestExportHeader(t *testing.T) {
	srv := exportServer(t)
	r := epGet(t, srv, "/api/dataValueSets.json?dataSet=EPI_MONTHLY&period=2024-01&orgUnit=KL_N_F1&inputIdScheme=code&idScheme=CODE")
	epWantStatus(t, r, http.StatusOK)
	want := `{"dataSet":"EPI_MONTHLY","completeDate":"2024-02-03T00:00:00.000+0000","period":"202401","orgUnit":"KL_N_F1",` +
		`"dataValues":[{"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1",` +
		`"attributeOptionCombo":"default","value":"12","storedBy":"admin","created":"2024-02-05T19:58:12.000+0000",` +
		`"lastUpdated":"2024-02-05T19:58:12.000+0000","comment":null,"followup":false}]}`
	if string(r.raw) != want {
		t.Errorf("body\n got %s\nwant %s", r.raw, want)
	}
	// without a registration completeDate is null
	r = epGet(t, srv, "/api/dataValueSets.json?dataSet="+SampleDataSetEPI+"&period=202402&orgUnit="+SampleOrgUnitKLNF1)
	if b := r.obj(t); b["completeDate"] != nil || b["dataSet"] != SampleDataSetEPI {
		t.Errorf("header = %s", r.raw)
	}
}

// §4.2: output id schemes per object type; an attribute scheme without a
// value falls back to the UID, a missing code is null; the attribute option
// combo follows categoryOptionComboIdScheme.
func TestExportIDSchemes(t *testing.T) {
	srv := exportServer(t)
	base := "/api/dataValueSets.json?dataSet=" + SampleDataSetMAL + "&period=202401&orgUnit=" + SampleOrgUnitKLNF2
	cases := []struct {
		query               string
		de, ou, coc, aoc    any
		headerDS, headerOrg any
	}{
		{"", SampleDEMALConfirmed, SampleOrgUnitKLNF2, SampleCOCFemaleLT1, SampleAOCNGO, SampleDataSetMAL, SampleOrgUnitKLNF2},
		{"&idScheme=CODE", "MAL_CONFIRMED", "KL_N_F2", "F_LT1", "NGO", "MAL_MONTHLY", "KL_N_F2"},
		{"&dataElementIdScheme=NAME&orgUnitIdScheme=code", "Malaria cases confirmed", "KL_N_F2", SampleCOCFemaleLT1, SampleAOCNGO, SampleDataSetMAL, "KL_N_F2"},
		{"&categoryOptionComboIdScheme=NAME&dataSetIdScheme=CODE", SampleDEMALConfirmed, SampleOrgUnitKLNF2, "Female, <1 year", "NGO partners", "MAL_MONTHLY", SampleOrgUnitKLNF2},
		{"&idScheme=ATTRIBUTE:" + SampleAttributeAggDECode, SampleDEMALConfirmed, SampleOrgUnitKLNF2, SampleCOCFemaleLT1, SampleAOCNGO, SampleDataSetMAL, SampleOrgUnitKLNF2},
	}
	for _, c := range cases {
		r := epGet(t, srv, base+c.query)
		b := r.obj(t)
		vals := epValues(t, r)
		if len(vals) != 1 {
			t.Fatalf("%s: %s", c.query, r.raw)
		}
		v := vals[0]
		if v["dataElement"] != c.de || v["orgUnit"] != c.ou || v["categoryOptionCombo"] != c.coc || v["attributeOptionCombo"] != c.aoc ||
			b["dataSet"] != c.headerDS || b["orgUnit"] != c.headerOrg {
			t.Errorf("%s: got %s", c.query, r.raw)
		}
	}
	// a data element without a code exports null under CODE
	if err := srv.UpdateMetadata(func(m *Metadata) error { m.DataElement("MAL_CONFIRMED").Code = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	v := epValues(t, epGet(t, srv, base+"&dataElementIdScheme=CODE"))[0]
	if x, ok := v["dataElement"]; !ok || x != nil {
		t.Errorf("dataElement = %#v, want null", x)
	}
}

// §4.2: lastUpdated, lastUpdatedDuration (against the server clock),
// attributeOptionCombo, limit and dataElementGroup select values.
func TestExportSelectors(t *testing.T) {
	srv := exportServer(t)
	count := func(q string) int {
		t.Helper()
		return len(epValues(t, epGet(t, srv, "/api/dataValueSets.json?orgUnit="+SampleOrgUnitKL+"&children=true&"+q)))
	}
	cases := []struct {
		q    string
		want int
	}{
		{"dataSet=" + SampleDataSetEPI + "&dataSet=" + SampleDataSetMAL + "&lastUpdated=2024-01-01", 2},
		{"dataSet=" + SampleDataSetEPI + "," + SampleDataSetMAL + "&lastUpdated=2024-03-15T07:00:00", 1},
		{"dataSet=" + SampleDataSetMAL + "&lastUpdatedDuration=3h", 1},
		{"dataSet=" + SampleDataSetEPI + "&lastUpdatedDuration=3h", 0},
		{"dataSet=" + SampleDataSetMAL + "&period=202401&attributeOptionCombo=" + SampleAOCGov, 0},
		{"dataSet=" + SampleDataSetMAL + "&period=202401&attributeOptionCombo=" + SampleAOCNGO, 1},
		{"dataElementGroup=" + SampleDataElementGroupEPI + "&period=202401&period=202402&includeDeleted=true", 2},
		{"dataElementGroup=MAL&inputDataElementGroupIdScheme=CODE&period=202401", 1},
		{"dataSet=" + SampleDataSetEPI + "&dataSet=" + SampleDataSetMAL + "&period=202401&limit=1", 1},
		{"dataSet=" + SampleDataSetCHW + "&period=202401", 0},
		{"dataSet=" + SampleDataSetEPI + "&period=202401&startDate=2024-02-01&endDate=2024-02-29", 1}, // period wins
	}
	for _, c := range cases {
		if got := count(c.q); got != c.want {
			t.Errorf("%s: %d values, want %d", c.q, got, c.want)
		}
	}
	// without children only the named org unit counts
	if n := len(epValues(t, epGet(t, srv, "/api/dataValueSets.json?dataSet="+SampleDataSetEPI+"&period=202401&orgUnit="+SampleOrgUnitKL))); n != 0 {
		t.Errorf("orgUnit=KL without children: %d values", n)
	}
}

// §4.2: missing or contradictory parameters give 409 WebMessages with
// E20xx codes; DHIS2 runs every check and reports the last failure; an org
// unit outside the user's hierarchy is E2012 (checked first). (E2003 cannot
// be reached from the URL: getFromUrl ignores startDate/endDate when periods
// are given.)
func TestExportErrors(t *testing.T) {
	srv := exportServer(t)
	ds, ou := "dataSet="+SampleDataSetEPI, "orgUnit="+SampleOrgUnitKLNF1
	cases := []struct {
		q, code, msg string
	}{
		{"", "E2006", "At least one organisation unit or organisation unit group must be specified"},
		{"period=202401&" + ou, "E2001", "At least one data element, data set or data element group must be specified"},
		{"dataSet=XXXXXXXXXXX&period=202401&" + ou, "E2001", "At least one data element, data set or data element group must be specified"},
		{ds + "&" + ou, "E2002", "At least one period, start/end dates, last updated or last updated duration must be specified"},
		{ds + "&startDate=2024-02-01&endDate=2024-01-31&" + ou, "E2004", "Start date must be before end date"},
		{ds + "&lastUpdatedDuration=10x&" + ou, "E2005", "Duration is not valid: `10x`"},
		{ds + "&period=202401", "E2006", "At least one organisation unit or organisation unit group must be specified"},
		{ds + "&period=202401&children=true", "E2008", "At least one organisation unit must be specified when children are included"},
		{ds + "&period=202401&limit=-1&" + ou, "E2009", "Limit cannot be less than zero: `-1`"},
	}
	for _, c := range cases {
		epWantError(t, epGet(t, srv, "/api/dataValueSets.json?"+c.q), http.StatusConflict, c.code, c.msg)
	}
	r := epGet(t, srv, "/api/dataValueSets.json?"+ds+"&period=202401&orgUnit="+SampleOrgUnitKLSouth,
		epAs(SampleDistrictUser, SampleDistrictPassword))
	epWantError(t, r, http.StatusConflict, "E2012", "User is not allowed to view org unit: `"+SampleOrgUnitKLSouth+"`")
	if r.header.Get("Cache-Control") != "no-cache, private" {
		t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
}

// §4.3, §4.4: XML (attributes, null fields left out) and CSV (the export
// header, no created column) by suffix and by Accept.
func TestExportXMLAndCSV(t *testing.T) {
	srv := exportServer(t)
	q := "?dataSet=" + SampleDataSetMAL + "&period=202401&orgUnit=" + SampleOrgUnitKLNF2
	for _, r := range []epResp{epGet(t, srv, "/api/dataValueSets.xml"+q), epGet(t, srv, "/api/dataValueSets"+q, epHeader("Accept", "application/xml"))} {
		epWantStatus(t, r, http.StatusOK)
		var doc struct {
			XMLName    xml.Name `xml:"http://dhis2.org/schema/dxf/2.0 dataValueSet"`
			DataSet    string   `xml:"dataSet,attr"`
			OrgUnit    string   `xml:"orgUnit,attr"`
			DataValues []struct {
				DataElement string `xml:"dataElement,attr"`
				AOC         string `xml:"attributeOptionCombo,attr"`
				Value       string `xml:"value,attr"`
				Comment     string `xml:"comment,attr"`
				Followup    string `xml:"followup,attr"`
				Created     string `xml:"created,attr"`
			} `xml:"dataValue"`
		}
		if err := xml.Unmarshal(r.raw, &doc); err != nil {
			t.Fatalf("%v: %s", err, r.raw)
		}
		if doc.DataSet != SampleDataSetMAL || doc.OrgUnit != SampleOrgUnitKLNF2 || len(doc.DataValues) != 1 {
			t.Fatalf("xml = %s", r.raw)
		}
		v := doc.DataValues[0]
		if v.DataElement != SampleDEMALConfirmed || v.AOC != SampleAOCNGO || v.Value != "3" || v.Comment != "late report" ||
			v.Followup != "true" || v.Created != "2024-02-05T19:58:12.000+0000" {
			t.Errorf("xml value = %+v", v)
		}
		if strings.Contains(string(r.raw), "completeDate") {
			t.Errorf("null completeDate written: %s", r.raw)
		}
	}
	for _, r := range []epResp{epGet(t, srv, "/api/dataValueSets.csv"+q), epGet(t, srv, "/api/dataValueSets"+q, epHeader("Accept", "application/csv"))} {
		epWantStatus(t, r, http.StatusOK)
		recs, err := csv.NewReader(strings.NewReader(string(r.raw))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo", "value", "storedby", "lastupdated", "comment", "followup"},
			{SampleDEMALConfirmed, "202401", SampleOrgUnitKLNF2, SampleCOCFemaleLT1, SampleAOCNGO, "3", "admin", "2024-03-15T08:00:00.000+0000", "late report", "true"},
		}
		if len(recs) != 2 || strings.Join(recs[0], ",") != strings.Join(want[0], ",") || strings.Join(recs[1], ",") != strings.Join(want[1], ",") {
			t.Errorf("csv = %q", recs)
		}
	}
	// 2.43+ appends the deleted column
	srv43 := exportServer(t, WithVersion("2.43"))
	r := epGet(t, srv43, "/api/dataValueSets.csv"+q)
	if !strings.HasPrefix(string(r.raw), "dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value,storedby,lastupdated,comment,followup,deleted\n") {
		t.Errorf("2.43 csv = %s", r.raw)
	}
}

// §4.2: values written with POST /api/dataValueSets come back out unchanged
// (the emulator's import and export agree).
func TestExportRoundTrip(t *testing.T) {
	srv := epServer(t)
	body := `{"dataSet":"` + SampleDataSetCHW + `","period":"202402","orgUnit":"` + SampleOrgUnitKLSF2 + `","dataValues":[` +
		`{"dataElement":"` + SampleDECHWHouseholdVisits + `","value":"41"},{"dataElement":"` + SampleDECHWU5Assessments + `","value":"9","comment":"ok"}]}`
	epWantStatus(t, epDo(t, srv, http.MethodPost, "/api/dataValueSets", "application/json", body), http.StatusOK)
	vals := epValues(t, epGet(t, srv, "/api/dataValueSets.json?dataSet=CHW_MONTHLY&inputDataSetIdScheme=CODE&period=202402&orgUnit="+SampleOrgUnitKLSF2+"&dataElementIdScheme=CODE"))
	got := map[string]string{}
	for _, v := range vals {
		got[v["dataElement"].(string)] = v["value"].(string)
		if v["created"] != "2024-03-15T10:00:00.000+0000" || v["storedBy"] != SampleUser {
			t.Errorf("value = %v", v)
		}
	}
	if len(got) != 2 || got["CHW_HOUSEHOLD_VISITS"] != "41" || got["CHW_U5_ASSESSMENTS"] != "9" {
		t.Errorf("round trip = %v", got)
	}
}
