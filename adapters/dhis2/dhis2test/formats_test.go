package dhis2test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
)

// spec dhis2.md §1.1: accepted content types; text/csv and anything else 415.
func TestContentTypes(t *testing.T) {
	srv := newTestServer(t)
	for _, tc := range []struct {
		ct   string
		code int
	}{
		{"application/json", 200}, {"application/json;charset=UTF-8", 200}, {"application/xml", 200},
		{"application/adx+xml; charset=UTF-8", 200}, {"application/csv", 200},
		{"text/csv", 415}, {"text/plain", 415}, {"application/x-www-form-urlencoded", 415}, {"", 415},
	} {
		body := map[string]string{"application/json": `{}`, "application/xml": `<dataValueSet/>`,
			"application/adx+xml": `<adx xmlns="urn:ihe:qrph:adx:2015"/>`, "application/csv": "dataelement\n"}
		var b string
		for k, v := range body {
			if strings.HasPrefix(tc.ct, k) {
				b = v
			}
		}
		r := do(t, srv, http.MethodPost, "/api/dataValueSets", tc.ct, []byte(b))
		if r.status != tc.code {
			t.Errorf("%q: %d %s", tc.ct, r.status, r.raw)
		}
		if tc.code == 415 {
			want := "Content type '" + tc.ct + "' not supported"
			if tc.ct == "" {
				want = "Content type 'application/octet-stream' not supported"
			}
			if r.body["httpStatusCode"] != float64(415) || r.body["message"] != want || r.header.Get("Cache-Control") != "no-cache, private" {
				t.Errorf("%q: 415 body %s", tc.ct, r.raw)
			}
		}
	}
	if srv.ImportRequests() != 5 {
		t.Errorf("ImportRequests %d, want 5 (415s are not imports)", srv.ImportRequests())
	}
}

// spec dhis2.md §4.3: DXF2 XML with header attributes and child elements.
func TestXMLImport(t *testing.T) {
	srv := newTestServer(t)
	body := `<?xml version="1.0" encoding="UTF-8"?>
<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" dataSet="sskDI1EDL0Y" period="202401" orgUnit="muaptt0Azn0" attributeOptionCombo="pATIk27f4t3">
  <dataValue dataElement="YJ2gClNbc7H" categoryOptionCombo="yx4Ag8SsaxT" value="4" comment="a &amp; b"/>
  <dataValue dataElement="ZOkN8gaW18v"><value>stock-out in week 2</value><comment>note</comment></dataValue>
</dataValueSet>`
	r := do(t, srv, http.MethodPost, "/api/dataValueSets", "application/xml", []byte(body))
	if got := counts(t, summaryOf(t, r)); got != [4]int{2, 0, 0, 0} {
		t.Fatalf("counts %v: %s", got, r.raw)
	}
	if v, _ := srv.Lookup("MAL_CONFIRMED", "202401", "KL_N_F1", "F_LT1", "GOV"); v.Value != "4" || v.Comment != "a & b" {
		t.Errorf("stored %+v", v)
	}
	if v, _ := srv.Lookup("MAL_REMARKS", "202401", "KL_N_F1", "", "GOV"); v.Value != "stock-out in week 2" || v.Comment != "note" {
		t.Errorf("stored %+v", v)
	}
}

// spec dhis2.md §4.4: CSV positional columns, header skipped, dataSet
// parameter; 2.43 maps columns by header name.
func TestCSVImport(t *testing.T) {
	csv := "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,followup\n" +
		"YJ2gClNbc7H,202401,muaptt0Azn0,yx4Ag8SsaxT,pATIk27f4t3,5,nurse,,\"a, b\",true\n" +
		"rd0APsmYaUS,202401,muaptt0Azn0,,pATIk27f4t3,6,,,,\n"
	for _, ver := range []string{"2.40", "2.43"} {
		srv := newTestServer(t, WithVersion(ver))
		r := do(t, srv, http.MethodPost, "/api/dataValueSets?dataSet=sskDI1EDL0Y", "application/csv", []byte(csv))
		if sum := summaryOf(t, r); sum["status"] != "SUCCESS" {
			t.Fatalf("%s: %s", ver, r.raw)
		}
		v, _ := srv.Lookup("MAL_CONFIRMED", "202401", "KL_N_F1", "F_LT1", "GOV")
		if v.Value != "5" || v.StoredBy != "nurse" || v.Comment != "a, b" || !v.FollowUp {
			t.Errorf("%s: stored %+v", ver, v)
		}
		if v, _ := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); v.Value != "6" || v.StoredBy != SampleUser {
			t.Errorf("%s: stored %+v", ver, v)
		}
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create("dataValueSet.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// spec dhis2.md §1.1: gzip and zip bodies are detected by content
// (StreamUtils.wrapAndCheckCompressionFormat), with or without Content-Encoding.
func TestCompressedBodies(t *testing.T) {
	srv := newTestServer(t)
	for name, body := range map[string][]byte{"gzip": gzipped(t, []byte(okBody)), "zip": zipped(t, []byte(okBody))} {
		r := do(t, srv, http.MethodPost, "/api/dataValueSets", "application/json", body, withHeader("Content-Encoding", name))
		if sum := summaryOf(t, r); sum["status"] != "SUCCESS" {
			t.Errorf("%s: %s", name, r.raw)
		}
		srv.Store().Reset()
	}
	sum := summaryOf(t, do(t, srv, http.MethodPost, "/api/dataValueSets", "application/json", []byte{0x1f, 0x8b, 1, 2}))
	if sum["status"] != "ERROR" || !strings.Contains(sum["description"].(string), "gzip") {
		t.Errorf("broken gzip: %v", sum)
	}
}

const sampleADX = `<adx xmlns="urn:ihe:qrph:adx:2015" exported="2024-02-01T10:00:00Z">
  <group dataSet="MAL_MONTHLY" orgUnit="KL_N_F1" period="2024-01-01/P1M" FUNDING="GOV">
    <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="LT1" value="12"/>
    <dataValue dataElement="MAL_CONFIRMED" SEX="M" AGE="1TO4" value="3"/>
    <dataValue dataElement="MAL_TREATED" value="15"/>
    <dataValue dataElement="MAL_REMARKS" value="0"><annotation>stock-out week 2</annotation></dataValue>
  </group>
</adx>`

// spec adx.md §4–§8: ADX with category attributes resolved to COC/AOC, the
// CODE default on ≤ 2.42, text values from <annotation>.
func TestADXImport(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	r := do(t, srv, http.MethodPost, "/api/dataValueSets", "application/adx+xml", []byte(sampleADX))
	if got := counts(t, summaryOf(t, r)); got != [4]int{4, 0, 0, 0} {
		t.Fatalf("counts %v: %s", got, r.raw)
	}
	for _, c := range []struct{ de, coc, value string }{
		{"MAL_CONFIRMED", "F_LT1", "12"}, {"MAL_CONFIRMED", "M_1TO4", "3"}, {"MAL_TREATED", "", "15"}, {"MAL_REMARKS", "", "stock-out week 2"},
	} {
		if v, ok := srv.Lookup(c.de, "202401", "KL_N_F1", c.coc, "GOV"); !ok || v.Value != c.value {
			t.Errorf("%s/%s: %+v %v", c.de, c.coc, v, ok)
		}
	}
}

// spec adx.md §8: 2.43 applies no CODE default; with idScheme=CODE it works.
func TestADX243Schemes(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.43"))
	r := do(t, srv, http.MethodPost, "/api/dataValueSets", "application/adx+xml", []byte(sampleADX))
	if sum := summaryOf(t, r); sum["status"] != "ERROR" {
		t.Errorf("codes without idScheme=CODE on 2.43: %s", r.raw)
	}
	r = do(t, srv, http.MethodPost, "/api/dataValueSets?idScheme=CODE", "application/adx+xml", []byte(sampleADX))
	if got := counts(t, summaryOf(t, r)); got != [4]int{0, 4, 0, 0} {
		t.Errorf("counts %v: %s", got, r.raw)
	}
	if v, _ := srv.Lookup("MAL_REMARKS", "202401", "KL_N_F1", "", "GOV"); v.Value != "stock-out week 2" {
		t.Errorf("annotation: %+v", v)
	}
}

// spec adx.md §9: group-level errors replace the summary; value-level errors
// become {object,value} conflicts and count as ignored.
func TestADXErrors(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	r := do(t, srv, http.MethodPost, "/api/dataValueSets", "application/adx+xml",
		[]byte(`<adx xmlns="urn:ihe:qrph:adx:2015"><group period="2024-01-01/P1M"><dataValue dataElement="MAL_TREATED" value="1"/></group></adx>`))
	sum := summaryOf(t, r)
	if sum["status"] != "ERROR" || sum["description"] != "Data set import failed within group number: 0" ||
		conflictsOf(sum)[0]["value"] != "orgUnit attribute is required on 'group'" {
		t.Errorf("missing orgUnit: %s", r.raw)
	}
	r = do(t, srv, http.MethodPost, "/api/dataValueSets", "application/adx+xml",
		[]byte(`<adx xmlns="urn:ihe:qrph:adx:2015"><group orgUnit="KL_N_F1" period="2024-01-02/P7D"/></adx>`))
	if sum := summaryOf(t, r); conflictsOf(sum)[0]["value"] != "2024-01-02/P7D is invalid weekly type" {
		t.Errorf("Tuesday week on 2.40: %s", r.raw)
	}
	r = do(t, srv, http.MethodPost, "/api/dataValueSets", "application/adx+xml", []byte(`<adx xmlns="urn:ihe:qrph:adx:2015">
  <group dataSet="MAL_MONTHLY" orgUnit="KL_N_F1" period="2024-01-01/P1M" FUNDING="GOV">
    <dataValue dataElement="NOPE" value="1"/>
    <dataValue dataElement="MAL_REMARKS" value="0"/>
    <dataValue dataElement="MAL_CONFIRMED" SEX="F" value="2"/>
    <dataValue dataElement="MAL_TREATED" value="3"/>
  </group></adx>`))
	sum = summaryOf(t, r)
	if got := counts(t, sum); got != [4]int{1, 0, 0, 3} {
		t.Errorf("counts %v", got)
	}
	want := []string{"No data element matching CODE 'NOPE'", "DataElement expects text annotation", "Category combo Sex and age must have Age"}
	cs := conflictsOf(sum)
	for i, w := range want {
		if i >= len(cs) || cs[i]["value"] != w {
			t.Errorf("conflict %d: %v, want %q", i, cs, w)
		}
	}
}

// spec dhis2.md §2.3 (XML WebMessage when the client asks for XML).
func TestXMLResponse(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	r := do(t, srv, http.MethodPost, "/api/dataValueSets", "application/json", []byte(warningBody), withHeader("Accept", "application/xml"))
	s := string(r.raw)
	if r.status != 409 || !strings.Contains(s, `<webMessage xmlns="http://dhis2.org/schema/dxf/2.0" httpStatus="Conflict" httpStatusCode="409" status="WARNING">`) ||
		!strings.Contains(s, `errorCode="E7610"`) || !strings.Contains(s, `<importCount imported="1" updated="0" ignored="1" deleted="0">`) {
		t.Errorf("%d %s", r.status, s)
	}
}
