package mediator_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

const (
	trackerToken = "tracker-token-0123456789"
	adxToken     = "adx-token-0123456789"
)

// mappingSources are the example configuration's tracker and ADX sources.
const mappingSources = `  - name: tracker
    format: analytics
    auth: {tokens: [` + trackerToken + `]}
    id_schemes: {id_scheme: CODE}
    mapping: tracker-to-hmis
  - name: adx
    format: adx
    auth: {tokens: [` + adxToken + `]}
    mapping: adx-to-hmis
    unmapped: pass
`

// mappingSets are the example configuration's mapping sets, with the CSV table copied next
// to the test's files, so the test drives exactly what the documentation ships.
func mappingSets(t *testing.T, dir string) string {
	t.Helper()
	csv, err := os.ReadFile("../examples/mappings/tracker-to-hmis.csv")
	if err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(dir, "tracker-to-hmis.csv")
	if err := os.WriteFile(table, csv, 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`mappings:
  - name: tracker-to-hmis
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    tables: [%s]
  - name: adx-to-hmis
    target_id_scheme: CODE
    org_units: {scheme: CODE}
`, table)
}

func TestTrackerToAggregateAndADXThroughMapping(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startTallyCfg(t, emu.URL, filepath.Join(dir, "nats"), mappingSources, mappingSets(t, dir))

	// Program indicators from the tracker's analytics output become EPI and MAL values.
	code, body := h.post("/ingest/tracker", "application/json", "Bearer "+trackerToken, payload(t, "tracker-2024-02.json"))
	if code != http.StatusAccepted || body["values"] != float64(52) {
		t.Fatalf("HTTP %d %v", code, body)
	}
	tx := h.waitStatus(body["transaction"].(string), "delivered")
	for _, c := range []struct{ de, ou, coc, aoc, want string }{
		{"EPI_BCG", "KL_N_F1", "F_LT1", "", "6"},           // PI_BCG_F_LT1: base 6 + facility 0 + combo 0
		{"EPI_PENTA1", "KL_S_F2", "M_1TO4", "", "10"},      // 4 + 3 + 3
		{"MAL_CONFIRMED", "KL_N_F2", "F_1TO4", "GOV", "4"}, // 2 + 1 + 1
		{"MAL_TREATED", "KL_S_F1", "", "GOV", "7"},         // 5 + 2
	} {
		v, ok := emu.Lookup(c.de, "202402", c.ou, c.coc, c.aoc)
		if !ok || v.Value != c.want {
			t.Errorf("%s/%s/%s/%s = %+v, %v; want %s", c.de, c.ou, c.coc, c.aoc, v, ok, c.want)
		}
		if ok && v.Comment != "" {
			t.Errorf("%s kept the analytics comment %q", c.de, v.Comment)
		}
	}
	if n := emu.Store().Len(); n != 52 {
		t.Errorf("emulator holds %d values, want 52; transaction %v", n, tx)
	}

	// ADX categories SEX/AGE and the group's FUNDING resolve to the HMIS's combos.
	code, body = h.post("/ingest/adx", "application/adx+xml", "Bearer "+adxToken, payload(t, "mal-2024-02.adx.xml"))
	if code != http.StatusAccepted || body["values"] != float64(16) {
		t.Fatalf("HTTP %d %v", code, body)
	}
	h.waitStatus(body["transaction"].(string), "delivered")
	if v, ok := emu.Lookup("MAL_CONFIRMED", "202402", "KL_S_F2", "M_1TO4", "NGO"); !ok || v.Value != "6" { // 1 + facility 3 + len("M1TO4")%3
		t.Errorf("ADX MAL_CONFIRMED/KL_S_F2/M_1TO4/NGO = %+v, %v; want 6", v, ok)
	}
}

// TestMappingRejectionIsADeadLetterNotARetry: an ADX option that matches no combo refuses
// that value with the categories named (E7613), it becomes a dead letter of reason mapping,
// and the transaction ends failed, not stuck.
func TestMappingRejectionIsADeadLetterNotARetry(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startTallyCfg(t, emu.URL, filepath.Join(dir, "nats"), mappingSources, mappingSets(t, dir))
	bad := `<adx xmlns="urn:ihe:qrph:adx:2015"><group orgUnit="KL_N_F1" period="2024-02-01/P1M" dataSet="MAL_MONTHLY" FUNDING="GOV">
<dataValue dataElement="MAL_CONFIRMED" SEX="X" AGE="LT1" value="2"/></group></adx>`
	code, body := h.post("/ingest/adx", "application/adx+xml", "Bearer "+adxToken, []byte(bad))
	if code != http.StatusAccepted {
		t.Fatalf("HTTP %d %v", code, body)
	}
	tx := h.waitStatus(body["transaction"].(string), "failed")
	target := tx["targets"].([]any)[0].(map[string]any)
	if cs, _ := target["conflicts"].([]any); len(cs) != 1 || !strings.Contains(fmt.Sprint(cs[0]), "SEX") ||
		cs[0].(map[string]any)["errorCode"] != "E7613" {
		t.Errorf("conflicts do not name the category: %v", target["conflicts"])
	}
	if dl := h.deadLetters("reason=mapping"); len(dl) != 1 || dl[0]["values"] != float64(1) {
		t.Errorf("dead letters %v, want the one refused value", dl)
	}
	if emu.ImportRequests() != 0 {
		t.Errorf("a rejected batch reached the target")
	}
}
