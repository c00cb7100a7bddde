package mediator_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// TestContentTypesAndNegotiationAsDHIS2: POST /api/dataValueSets takes the types DHIS2's
// handlers consume and answers 415 to the rest (text/csv, text/plain, none; spec dhis2.md
// §1.1), while /ingest/{source} still sniffs; the .json and .xml suffixes are mapped; an
// XML answer is DHIS2's XML WebMessage (root webMessage in the DXF namespace, status and
// httpStatusCode as attributes; conformance README §5.5 checks httpStatusCode="200" for an
// empty ADX message).
func TestContentTypesAndNegotiationAsDHIS2(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())
	send := func(path, ctype, accept, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", h.base+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		req.SetBasicAuth("exchange", "exchange-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
	}
	csv := "dataelement,period,orgunit,catoptcombo,attroptcombo,value\nCHW_HOUSEHOLD_VISITS,202409,KL_N_F1,,,3\n"
	for _, ctype := range []string{"text/csv", "text/plain", ""} {
		if code, _, body := send("/api/dataValueSets?idScheme=CODE", ctype, "", csv); code != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: HTTP %d %s, want 415", ctype, code, body)
		}
	}
	if code, _, body := send("/api/dataValueSets?idScheme=CODE", "application/csv; charset=utf-8", "", csv); code != http.StatusOK {
		t.Errorf("application/csv: HTTP %d %s", code, body)
	}
	// Tally's own endpoint sniffs a text/plain body.
	code, body := h.post("/ingest/cht", "text/plain", "Bearer "+chtToken, []byte(csv))
	if code != http.StatusAccepted {
		t.Errorf("/ingest text/plain: HTTP %d %v", code, body)
	}

	code, ctype, raw := send("/api/dataValueSets.json", "application/json", "application/xml", `{}`)
	if code != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
		t.Errorf(".json: HTTP %d %s %s", code, ctype, raw)
	}
	var wm struct {
		XMLName        xml.Name
		Status         string `xml:"status,attr"`
		HTTPStatusCode int    `xml:"httpStatusCode,attr"`
		Message        string `xml:"message"`
		Response       struct {
			ResponseType string `xml:"responseType,attr"`
			Status       string `xml:"status"`
			ImportCount  struct {
				Imported int `xml:"imported,attr"`
			} `xml:"importCount"`
		} `xml:"response"`
	}
	for _, c := range []struct{ path, accept, body, ctype string }{
		{"/api/dataValueSets.xml", "", `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"></dataValueSet>`, "application/xml"},
		{"/api/38/dataValueSets", "application/xml", `<adx xmlns="urn:ihe:qrph:adx:2015"></adx>`, "application/adx+xml"},
	} {
		code, ctype, raw = send(c.path, c.ctype, c.accept, c.body)
		if err := xml.Unmarshal([]byte(raw), &wm); err != nil || code != 200 || !strings.HasPrefix(ctype, "application/xml") ||
			wm.XMLName.Space != "http://dhis2.org/schema/dxf/2.0" || wm.XMLName.Local != "webMessage" || wm.HTTPStatusCode != 200 ||
			wm.Status != "OK" || wm.Response.ResponseType != "ImportSummary" || wm.Response.Status != "SUCCESS" {
			t.Errorf("%s: HTTP %d %s %s (%v)", c.path, code, ctype, raw, err)
		}
	}
	// A WARNING in XML: 409 and the conflict as attributes.
	code, _, raw = send("/api/dataValueSets.xml?idScheme=CODE", "application/json", "", oneBadPeriod)
	if code != http.StatusConflict || !strings.Contains(raw, `errorCode="E7611"`) || !strings.Contains(raw, `<period>202413</period>`) {
		t.Errorf("XML warning: HTTP %d %s", code, raw)
	}
}
