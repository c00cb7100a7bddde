package mediator_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

const adxPayload = `<?xml version="1.0" encoding="UTF-8"?>
<adx xmlns="urn:ihe:qrph:adx:2015" exported="2024-02-03T10:00:00Z">
  <group orgUnit="KL_N_F1" period="2024-01-01/P1M" dataSet="CHW_MONTHLY">
    <dataValue dataElement="CHW_HOUSEHOLD_VISITS" value="31"/>
    <dataValue dataElement="CHW_U5_ASSESSMENTS" value="12"/>
  </group>
</adx>`

const xmlPayload = `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" dataSet="CHW_MONTHLY" period="202402" orgUnit="KL_S_F1">
  <dataValue dataElement="CHW_HOUSEHOLD_VISITS" value="40"/>
  <dataValue dataElement="CHW_PREGNANCIES_REGISTERED" value="3"/>
</dataValueSet>`

// TestFormatsThroughTheRealEndpoint posts every inbound format, by Content-Type and by
// sniffing, plain and gzip-compressed, and checks the values land in the emulator.
func TestFormatsThroughTheRealEndpoint(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())
	bearer := "Bearer " + chtToken
	cases := []struct {
		name, ctype string
		body        []byte
		values      int
		check       [5]string // a key that must hold want
		want        string
	}{
		{"ADX by type", "application/adx+xml", []byte(adxPayload), 2,
			[5]string{"CHW_HOUSEHOLD_VISITS", "202401", "KL_N_F1", "", ""}, "31"},
		{"DXF2 XML sniffed", "", []byte(xmlPayload), 2,
			[5]string{"CHW_HOUSEHOLD_VISITS", "202402", "KL_S_F1", "", ""}, "40"},
		{"CSV gzip", "application/csv", gz(t, payload(t, "mal-2024-01.csv")), 24,
			[5]string{"MAL_TREATED", "202401", "KL_N_F2", "", "GOV"}, "8"},
		{"CHT JSON gzip octet-stream", "application/octet-stream", gz(t, payload(t, "chw-2024-01.json")), 12,
			[5]string{"CHW_U5_ASSESSMENTS", "202401", "KL_S_F2", "", ""}, "44"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := h.post("/ingest/cht", c.ctype, bearer, c.body)
			if code != http.StatusAccepted || body["values"] != float64(c.values) {
				t.Fatalf("HTTP %d %v", code, body)
			}
			h.waitStatus(body["transaction"].(string), "delivered")
			k := c.check
			if v, ok := emu.Lookup(k[0], k[1], k[2], k[3], k[4]); !ok || v.Value != c.want {
				t.Errorf("%v = %+v, %v; want %s", k, v, ok, c.want)
			}
		})
	}
}

func TestDryRunStoresNothing(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())
	code, body := h.post("/ingest/cht?dryRun=true", "application/json", "Bearer "+chtToken, payload(t, "epi-2024-01.json"))
	if code != http.StatusOK || body["status"] != "valid" || body["values"] != float64(32) {
		t.Fatalf("HTTP %d %v", code, body)
	}
	// The payload's own dryRun wins, as in DHIS2.
	req, _ := http.NewRequest("POST", h.base+"/api/dataValueSets",
		strings.NewReader(`{"dryRun":true,"orgUnit":"KL_N_F1","period":"202401","dataValues":[{"dataElement":"EPI_BCG","value":"1"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("exchange", "exchange-secret")
	code, wm := h.do(req)
	if code != 200 || !strings.Contains(fmt.Sprint(wm["response"]), "Dry run") {
		t.Fatalf("HTTP %d %v", code, wm)
	}
	h.stop()
	if n := ingestedMessages(t, h); n != 0 {
		t.Errorf("a dry run published %d messages", n)
	}
}

func TestBodyLimitAnswers413(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyWith(t, emu.URL, t.TempDir(), "http: {max_body_bytes: 4KiB}\n")
	big := payload(t, "epi-2024-01.json") // ≈ 5 KB
	if len(big) <= 4096 {
		t.Fatalf("sample is only %d bytes", len(big))
	}
	code, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, big)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(body["message"]), "4096") {
		t.Fatalf("HTTP %d %v", code, body)
	}
	// A small compressed body that inflates past the limit is refused the same way.
	bomb := gz(t, bytes.Repeat([]byte(" "), 64<<10))
	code, _ = h.post("/ingest/cht", "application/json", "Bearer "+chtToken, bomb)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("gzip bomb: HTTP %d", code)
	}
}

// TestDataValueSetsAnswersPerValueAsDHIS2: one bad period among three values is a conflict
// with DHIS2's code, objects and index, and the two good values reach the target, as DHIS2
// 2.38–2.42 imports (spec dhis2.md §1.4, §2.4 example A: 409 WARNING); a source with
// validation: atomic refuses the payload whole; an empty payload is DHIS2's 200 SUCCESS
// (conformance README §5.5); /api/37/ gets the bare summary; wrong credentials DHIS2's 401.
func TestDataValueSetsAnswersPerValueAsDHIS2(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), `  - name: strict
    auth: {users: [{username: strict, password: strict-secret}]}
    validation: atomic
`, "")
	post := func(path, user, pass, body string) (int, map[string]any) {
		return h.post(path, "application/json", basic(user, pass), []byte(body))
	}
	three := oneBadPeriod
	code, wm := post("/api/dataValueSets?idScheme=CODE", "exchange", "exchange-secret", three)
	resp, _ := wm["response"].(map[string]any)
	if code != http.StatusConflict || wm["status"] != "WARNING" || resp["status"] != "WARNING" {
		t.Fatalf("HTTP %d %v", code, wm)
	}
	conflicts := resp["conflicts"].([]any)
	c0 := conflicts[0].(map[string]any)
	if len(conflicts) != 1 || c0["errorCode"] != "E7611" || c0["object"] != "202413" || c0["property"] != "period" ||
		fmt.Sprint(c0["indexes"]) != "[1]" || fmt.Sprint(c0["objects"]) != "map[period:202413]" {
		t.Errorf("conflicts = %v", conflicts)
	}
	if ic := resp["importCount"].(map[string]any); ic["imported"] != float64(2) || ic["ignored"] != float64(1) {
		t.Errorf("importCount = %v, want 2 accepted and 1 ignored", ic)
	}
	h.waitStatus(resp["reference"].(string), "delivered")
	for _, de := range []string{"CHW_HOUSEHOLD_VISITS", "CHW_PREGNANCIES_REGISTERED"} {
		if _, ok := emu.Lookup(de, "202401", "KL_N_F1", "", ""); !ok {
			t.Errorf("%s not delivered", de)
		}
	}
	if emu.Store().Len() != 2 {
		t.Errorf("%d values stored, want 2", emu.Store().Len())
	}

	// validation: atomic: the whole payload is refused, as an aborted import.
	code, wm = post("/api/dataValueSets?idScheme=CODE", "strict", "strict-secret", strings.Replace(three, `"value":"1"`, `"value":"7"`, 1))
	resp, _ = wm["response"].(map[string]any)
	if code != http.StatusConflict || wm["status"] != "ERROR" || resp["status"] != "ERROR" || len(resp["conflicts"].([]any)) != 1 {
		t.Fatalf("atomic: HTTP %d %v", code, wm)
	}

	// Empty payloads: 200 SUCCESS, zero counts, nothing stored.
	for _, body := range []string{`{"dataValues":[]}`, `{}`} {
		code, wm = post("/api/dataValueSets", "exchange", "exchange-secret", body)
		resp, _ = wm["response"].(map[string]any)
		if code != 200 || wm["message"] != "Import was successful." || resp["status"] != "SUCCESS" ||
			fmt.Sprint(resp["importCount"]) != "map[deleted:0 ignored:0 imported:0 updated:0]" {
			t.Errorf("empty %s: HTTP %d %v", body, code, wm)
		}
	}
	// /api/37/ gets the bare ImportSummary with HTTP 200, as DHIS2 2.38–2.41 answer there.
	code, sum := post("/api/37/dataValueSets", "exchange", "exchange-secret", `{"dataValues":[]}`)
	if code != 200 || sum["responseType"] != "ImportSummary" || sum["status"] != "SUCCESS" {
		t.Fatalf("/api/37: HTTP %d %v", code, sum)
	}
	// Wrong credentials: DHIS2's 401.
	if code, body := post("/api/dataValueSets", "exchange", "wrong", `{}`); code != 401 || body["httpStatusCode"] != float64(401) {
		t.Fatalf("HTTP %d %v", code, body)
	}
	if emu.Store().Len() != 2 {
		t.Errorf("%d values stored after the refusals, want 2", emu.Store().Len())
	}
}

// TestDeleteStrategyMarksValuesDeleted: a client asking DHIS2 for importStrategy=DELETE gets
// the values deleted in the target, whatever the target's own strategy.
func TestDeleteStrategyMarksValuesDeleted(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())
	_, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, payload(t, "chw-2024-01.json"))
	h.waitStatus(body["transaction"].(string), "delivered")
	if _, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202401", "KL_N_F1", "", ""); !ok {
		t.Fatal("value not there before the delete")
	}
	del := `{"strategy":"DELETE","period":"202401","orgUnit":"KL_N_F1","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS"}]}`
	code, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, []byte(del))
	if code != http.StatusAccepted {
		t.Fatalf("HTTP %d %v", code, body)
	}
	h.waitStatus(body["transaction"].(string), "delivered")
	if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202401", "KL_N_F1", "", ""); ok && !v.Deleted {
		t.Errorf("value still there: %+v", v)
	}
}
