package dhis2test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Payloads against the sample: one good value, and one good + one unknown DE.
const (
	okBody      = `{"dataValues":[{"dataElement":"rd0APsmYaUS","period":"202401","orgUnit":"muaptt0Azn0","attributeOptionCombo":"pATIk27f4t3","value":"4"}]}`
	warningBody = `{"dataValues":[{"dataElement":"rd0APsmYaUS","period":"202401","orgUnit":"muaptt0Azn0","attributeOptionCombo":"pATIk27f4t3","value":"4"},
	                {"dataElement":"XXXXXXXXXXX","period":"202401","orgUnit":"muaptt0Azn0","value":"3"}]}`
	errorBody = `{"dataSet":"nOtAdAtAsEt","dataValues":[]}`
)

// spec dhis2.md §0.3, §2.1, §2.2, §13 item 2: wrapper, HTTP status and
// message per version era for SUCCESS, WARNING and ERROR.
func TestResponseEras(t *testing.T) {
	type want struct {
		code    int
		wrapped bool
		status  string // WebMessage status when wrapped
		message string
	}
	const (
		okMsg   = "Import was successful."
		warn409 = "One more conflicts encountered, please check import summary."
		warn200 = "Import completed with warnings, please check import summary."
		errMsg  = "An error occurred, please check import summary."
	)
	cases := []struct {
		version, path          string
		success, warning, fail want
	}{
		{"2.36", "/api/dataValueSets", want{200, false, "", ""}, want{200, false, "", ""}, want{200, false, "", ""}},
		{"2.37", "/api/dataValueSets", want{200, false, "", ""}, want{200, false, "", ""}, want{200, false, "", ""}},
		{"2.37", "/api/37/dataValueSets", want{200, false, "", ""}, want{200, false, "", ""}, want{200, false, "", ""}},
		{"2.38", "/api/dataValueSets", want{200, true, "OK", okMsg}, want{409, true, "WARNING", warn409}, want{409, true, "ERROR", errMsg}},
		{"2.38", "/api/37/dataValueSets", want{200, false, "", ""}, want{200, false, "", ""}, want{200, false, "", ""}},
		{"2.39", "/api/39/dataValueSets", want{200, true, "OK", okMsg}, want{409, true, "WARNING", warn409}, want{409, true, "ERROR", errMsg}},
		{"2.40", "/api/dataValueSets", want{200, true, "OK", okMsg}, want{409, true, "WARNING", warn409}, want{409, true, "ERROR", errMsg}},
		{"2.40", "/api/37/dataValueSets", want{200, false, "", ""}, want{200, false, "", ""}, want{200, false, "", ""}},
		{"2.41", "/api/dataValueSets", want{200, true, "OK", okMsg}, want{409, true, "WARNING", warn409}, want{409, true, "ERROR", errMsg}},
		{"2.41", "/api/37/dataValueSets", want{200, false, "", ""}, want{200, false, "", ""}, want{200, false, "", ""}},
		{"2.42", "/api/dataValueSets", want{200, true, "OK", okMsg}, want{409, true, "WARNING", warn409}, want{409, true, "ERROR", errMsg}},
		{"2.42", "/api/37/dataValueSets", want{200, true, "OK", okMsg}, want{409, true, "WARNING", warn409}, want{409, true, "ERROR", errMsg}},
		{"2.43", "/api/dataValueSets", want{200, true, "OK", okMsg}, want{200, true, "WARNING", warn200}, want{409, true, "ERROR", errMsg}},
		{"2.43", "/api/41/dataValueSets", want{200, true, "OK", okMsg}, want{200, true, "WARNING", warn200}, want{409, true, "ERROR", errMsg}},
	}
	for _, tc := range cases {
		t.Run(tc.version+tc.path, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, WithVersion(tc.version))
			for _, c := range []struct {
				name, body, sumStatus string
				want                  want
			}{{"success", okBody, "SUCCESS", tc.success}, {"warning", warningBody, "WARNING", tc.warning}, {"error", errorBody, "ERROR", tc.fail}} {
				if tc.version == "2.43" && c.name == "warning" { // 2.43: a value-level error (E8122)
					c.body = strings.Replace(warningBody, `"XXXXXXXXXXX","period":"202401","orgUnit":"muaptt0Azn0","value":"3"`,
						`"rd0APsmYaUS","period":"202402","orgUnit":"muaptt0Azn0","attributeOptionCombo":"pATIk27f4t3","value":"three"`, 1)
				}
				r := do(t, srv, http.MethodPost, tc.path, "application/json", []byte(c.body))
				if r.status != c.want.code {
					t.Errorf("%s: HTTP %d, want %d: %s", c.name, r.status, c.want.code, r.raw)
				}
				_, wrapped := r.body["httpStatus"]
				if wrapped != c.want.wrapped {
					t.Errorf("%s: wrapped=%v, want %v: %s", c.name, wrapped, c.want.wrapped, r.raw)
				}
				if wrapped && (r.body["status"] != c.want.status || r.body["message"] != c.want.message ||
					r.body["httpStatusCode"] != float64(c.want.code) || r.body["httpStatus"] != http.StatusText(c.want.code)) {
					t.Errorf("%s: web message %s", c.name, r.raw)
				}
				sum := summaryOf(t, r)
				if sum["responseType"] != "ImportSummary" || sum["status"] != c.sumStatus {
					t.Errorf("%s: summary %v", c.name, sum)
				}
				if (r.status >= 400) != (r.header.Get("Cache-Control") == "no-cache, private") {
					t.Errorf("%s: Cache-Control %q on %d", c.name, r.header.Get("Cache-Control"), r.status)
				}
			}
		})
	}
}

// spec dhis2.md §2.3: conflict shapes per era, rejectedIndexes from 2.41,
// importOptions fields added in 2.39 (strictDataSet*) and 2.43 (atomic).
func TestSummaryShapesByEra(t *testing.T) {
	for _, ver := range []string{"2.36", "2.37", "2.39", "2.40", "2.41", "2.43"} {
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, WithVersion(ver))
			r := postJSON(t, srv, "", warningBody)
			sum := summaryOf(t, r)
			c := conflictsOf(sum)[0]
			v, _ := ParseVersion(ver)
			switch {
			case v.Minor <= 36:
				if len(c) != 2 || c["object"] != "XXXXXXXXXXX" || c["value"] != "Data element not found or not accessible" {
					t.Errorf("2.36 conflict %v (§2.4 B)", c)
				}
			case v.Minor >= 43:
				if c["errorCode"] != "E8003" || c["object"] != nil || c["property"] != nil ||
					c["objects"].(map[string]any)["args"] != "[XXXXXXXXXXX]" {
					t.Errorf("2.43 conflict %v", c)
				}
			default:
				if c["errorCode"] != "E7610" || c["object"] != "XXXXXXXXXXX" || c["property"] != "dataElement" ||
					c["value"] != "Data element not found or not accessible: `XXXXXXXXXXX`" {
					t.Errorf("conflict %v", c)
				}
			}
			_, hasRejected := sum["rejectedIndexes"]
			if hasRejected != (v.Minor >= 41) {
				t.Errorf("rejectedIndexes present=%v", hasRejected)
			}
			opts := sum["importOptions"].(map[string]any)
			if _, ok := opts["strictDataSetApproval"]; ok != (v.Minor >= 39) {
				t.Errorf("strictDataSetApproval present=%v", ok)
			}
			if _, ok := opts["atomic"]; ok != (v.Minor >= 43) {
				t.Errorf("atomic present=%v", ok)
			}
			if opts["importStrategy"] != "CREATE_AND_UPDATE" || opts["idSchemes"] == nil || opts["firstRowIsHeader"] != true {
				t.Errorf("importOptions %v", opts)
			}
		})
	}
}

// spec dhis2.md §2.1 (DataValueSetControllerTest evidence) and conformance
// README §5.5: empty payloads of every format succeed.
func TestEmptyPayloads(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	r := do(t, srv, http.MethodPost, "/api/37/dataValueSets/", "application/json", []byte(`{}`))
	if r.status != 200 || r.body["responseType"] != "ImportSummary" || r.body["status"] != "SUCCESS" {
		t.Errorf("/37/: %d %s", r.status, r.raw)
	}
	r = do(t, srv, http.MethodPost, "/api/38/dataValueSets/", "application/json", []byte(`{}`))
	if r.status != 200 || r.body["httpStatus"] != "OK" || r.body["message"] != "Import was successful." {
		t.Errorf("/38/: %d %s", r.status, r.raw)
	}
	r = do(t, srv, http.MethodPost, "/api/dataValueSets", "application/csv", []byte("abc"))
	if r.status != 200 || r.body["message"] != "Import was successful." {
		t.Errorf("csv: %d %s", r.status, r.raw)
	}
	for _, c := range []struct{ ct, body string }{
		{"application/adx+xml", `<adx xmlns="urn:ihe:qrph:adx:2015"></adx>`},
		{"application/xml", `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"></dataValueSet>`},
	} {
		r := do(t, srv, http.MethodPost, "/api/38/dataValueSets", c.ct, []byte(c.body), withHeader("Accept", "application/xml"))
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/xml") ||
			!strings.Contains(string(r.raw), `httpStatusCode="200"`) {
			t.Errorf("%s: %d %s", c.ct, r.status, r.raw)
		}
	}
}

// spec dhis2.md §2.2: malformed JSON is an ERROR summary ("The import
// process failed: …"), HTTP 409 from 2.38 and 200 on ≤ 2.37.
func TestMalformedPayload(t *testing.T) {
	for ver, code := range map[string]int{"2.37": 200, "2.40": 409} {
		srv := newTestServer(t, WithVersion(ver))
		r := postJSON(t, srv, "", `{"dataValues":[`)
		sum := summaryOf(t, r)
		if r.status != code || sum["status"] != "ERROR" || !strings.HasPrefix(sum["description"].(string), "The import process failed: ") {
			t.Errorf("%s: %d %s", ver, r.status, r.raw)
		}
	}
}

// spec dhis2.md §2.4 D: 2.43 counts every upsert as updated, DELETE as deleted.
func TestCounting243(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.43"))
	for i, want := range [][4]int{{0, 1, 0, 0}, {0, 1, 0, 0}} { // new, then unchanged: both "updated"
		if got := counts(t, summaryOf(t, postJSON(t, srv, "", okBody))); got != want {
			t.Errorf("import %d: %v", i, got)
		}
	}
	if got := counts(t, summaryOf(t, postJSON(t, srv, "?importStrategy=DELETE", okBody))); got != [4]int{0, 0, 1, 0} {
		t.Errorf("delete: %v", got)
	}
	if srv.Store().Len() != 0 {
		t.Error("value not deleted")
	}
}

// spec dhis2.md §2.3: conflicts with the same code and objects merge and
// their indexes accumulate; rejectedIndexes lists every skipped value.
func TestConflictMerging(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.41"))
	var vals []string
	for i := range 4 {
		de := "rd0APsmYaUS"
		if i%2 == 1 {
			de = "XXXXXXXXXXX"
		}
		vals = append(vals, fmt.Sprintf(`{"dataElement":%q,"period":"20240%d","orgUnit":"muaptt0Azn0","attributeOptionCombo":"pATIk27f4t3","value":"1"}`, de, i+1))
	}
	sum := summaryOf(t, postJSON(t, srv, "", `{"dataValues":[`+strings.Join(vals, ",")+`]}`))
	cs := conflictsOf(sum)
	if len(cs) != 1 || !slices.Equal(intsOf(cs[0]["indexes"]), []int{1, 3}) || !slices.Equal(intsOf(sum["rejectedIndexes"]), []int{1, 3}) {
		t.Errorf("conflicts %v rejected %v", cs, sum["rejectedIndexes"])
	}
}
