package mediator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// adxMalaria is a MAL_MONTHLY report in Kalima codes (ADX's default scheme): a
// disaggregated value with an annotation, the text element MAL_REMARKS, a value whose SEX
// option the HMIS does not have, and a group that names its attribute option combo.
const adxMalaria = `<adx xmlns="urn:ihe:qrph:adx:2015">
  <group orgUnit="KL_N_F1" period="2024-03-01/P1M" dataSet="MAL_MONTHLY" FUNDING="GOV">
    <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="LT1" value="4"><annotation>checked twice</annotation></dataValue>
    <dataValue dataElement="MAL_REMARKS" value="0"><annotation>stock-out in week 2</annotation></dataValue>
    <dataValue dataElement="MAL_CONFIRMED" SEX="X" AGE="LT1" value="2"/>
  </group>
  <group orgUnit="KL_N_F1" period="2024-03-01/P1M" dataSet="MAL_MONTHLY" attributeOptionCombo="NGO">
    <dataValue dataElement="MAL_TREATED" value="9"/>
  </group>
</adx>`

// TestADXReadWithTheTargetsRules: an ADX message to a source without a mapping set is read
// as the target's DHIS2 reads it (spec adx.md §5, §7): MAL_REMARKS is TEXT in the HMIS, so
// its annotation is the value; MAL_CONFIRMED is numeric, so its annotation is not (2.40
// keeps it as the comment); the categories resolve to the HMIS's combos, the group's
// dataSet decides the attribute combo (FUNDING=GOV), and a group's attributeOptionCombo is
// honoured. The value whose SEX option the HMIS lacks is refused at ingest, as DHIS2's ADX
// reader refuses it ({"object":"ADX Error"}), rather than accepted and dead-lettered.
func TestADXReadWithTheTargetsRules(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), syncSource, "")
	code, wm := h.post("/api/dataValueSets", "application/adx+xml", basic("sync", "sync-password"), []byte(adxMalaria))
	resp, _ := wm["response"].(map[string]any)
	if code != http.StatusConflict || resp["status"] != "WARNING" {
		t.Fatalf("HTTP %d %v", code, wm)
	}
	cs := resp["conflicts"].([]any)
	c0 := cs[0].(map[string]any)
	if len(cs) != 1 || c0["object"] != "ADX Error" || !strings.Contains(fmt.Sprint(c0["value"]), "X") || fmt.Sprint(c0["indexes"]) != "[2]" {
		t.Errorf("conflicts %v", cs)
	}
	if ic := resp["importCount"].(map[string]any); ic["imported"] != float64(3) || ic["ignored"] != float64(1) {
		t.Errorf("importCount %v, want 3 imported, 1 ignored", ic)
	}
	for _, c := range []struct{ de, coc, aoc, value, comment string }{
		{"MAL_CONFIRMED", "F_LT1", "GOV", "4", "checked twice"},
		{"MAL_REMARKS", "", "GOV", "stock-out in week 2", ""},
		{"MAL_TREATED", "", "NGO", "9", ""},
	} {
		v, ok := emu.Lookup(c.de, "202403", "KL_N_F1", c.coc, c.aoc)
		if !ok || v.Value != c.value || v.Comment != c.comment {
			t.Errorf("%s/%s/%s = %+v, %v; want %q (comment %q)", c.de, c.coc, c.aoc, v, ok, c.value, c.comment)
		}
	}
	if dl := h.deadLetters(""); len(dl) != 0 {
		t.Errorf("dead letters %v: the unresolvable value was refused at ingest", dl)
	}

	// On Tally's own endpoint (validation atomic) the message is refused whole, naming why.
	code, body := h.post("/ingest/sync", "application/adx+xml", "Bearer sync-token-0123456789", []byte(adxMalaria))
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "categories") || !strings.Contains(fmt.Sprint(body), "X") {
		t.Errorf("native endpoint: HTTP %d %v", code, body)
	}
}

// TestADXAnnotationIsTheValueFrom243: in the 2.43 era every annotation replaces the value
// (DataEntryInput.fromAdxXml; conformance README §5.3), also a numeric element's.
func TestADXAnnotationIsTheValueFrom243(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.43"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), syncSource, "")
	msg := `<adx xmlns="urn:ihe:qrph:adx:2015"><group orgUnit="KL_N_F2" period="2024-03-01/P1M" dataSet="CHW_MONTHLY">
  <dataValue dataElement="CHW_HOUSEHOLD_VISITS" value="1"><annotation>21</annotation></dataValue></group></adx>`
	code, wm := h.post("/api/dataValueSets?idScheme=CODE", "application/adx+xml", basic("sync", "sync-password"), []byte(msg))
	if code != http.StatusOK {
		t.Fatalf("HTTP %d %v", code, wm)
	}
	if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202403", "KL_N_F2", "", ""); !ok || v.Value != "21" {
		t.Errorf("stored %+v, %v; want the annotation 21", v, ok)
	}
}

// TestPeriodsByTargetRelease: DHIS2 before 2.43 has no FinancialFeb or WeeklyFriday type
// (spec dhis2.md §11.1) and refuses such ids. When every target is older, ingest refuses
// them, naming the period and the release; when the targets differ, the newer one gets the
// value and the older one dead-letters it with that reason (E7611).
func TestPeriodsByTargetRelease(t *testing.T) {
	old := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer old.Close()
	newer := dhis2test.NewServer(dhis2test.WithVersion("2.43"))
	defer newer.Close()
	// 2.43 takes a period only for a data set of its type: the newer HMIS has a yearly
	// (February) count of household visits.
	if err := newer.UpdateMetadata(func(m *dhis2test.Metadata) error {
		m.AddDataElement(dhis2test.DataElement{ID: "ChwYearVis1", Code: "CHW_YEAR_VISITS", Name: "CHW visits per year",
			ValueType: "INTEGER", AggregationType: "SUM"})
		m.AddDataSet(dhis2test.DataSet{ID: "ChwFebYear1", Code: "CHW_FEB_YEAR", Name: "CHW by financial year (Feb)",
			PeriodType: "FinancialFeb", DataElements: []string{"ChwYearVis1"}, OrgUnits: []string{m.OrgUnit("KL_N_F1").ID}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	feb := `{"orgUnit":"KL_N_F1","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"2026Feb","value":"5"},
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","period":"202602","value":"6"}]}`

	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: old.URL}}}, mediator.Options{})
	code, wm := h.post("/api/dataValueSets?idScheme=CODE", "application/json", "Bearer "+chtToken, []byte(feb))
	resp, _ := wm["response"].(map[string]any)
	cs, _ := resp["conflicts"].([]any)
	if code != http.StatusConflict || len(cs) != 1 || !strings.Contains(fmt.Sprint(cs[0]), "2026Feb") ||
		!strings.Contains(fmt.Sprint(cs[0]), "E7611") || !strings.Contains(fmt.Sprint(cs[0]), "2.40") {
		t.Fatalf("every target older: HTTP %d %v", code, wm)
	}

	h = startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: old.URL}, {name: "next", url: newer.URL}}},
		mediator.Options{})
	before := old.ImportRequests()
	onlyFeb := `{"orgUnit":"KL_N_F1","dataValues":[{"dataElement":"CHW_YEAR_VISITS","period":"2026Feb","value":"5"}]}`
	code, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, []byte(onlyFeb))
	if code != http.StatusAccepted || body["values"] != float64(1) {
		t.Fatalf("targets differ: HTTP %d %v", code, body)
	}
	h.waitStatus(body["transaction"].(string), txlog.TxPartiallyDelivered)
	if _, ok := newer.Lookup("CHW_YEAR_VISITS", "2026Feb", "KL_N_F1", "", ""); !ok {
		t.Error("the 2.43 target did not get 2026Feb")
	}
	if n := old.ImportRequests() - before; n != 0 {
		t.Errorf("the 2.40 target was sent %d imports", n)
	}
	dl := h.deadLetters("target=hmis&reason=mapping")
	if len(dl) != 1 || dl[0]["values"] != float64(1) || !strings.Contains(fmt.Sprint(dl[0]["error"]), "2026Feb") ||
		fmt.Sprint(dl[0]["codes"]) != "[E7611]" {
		t.Errorf("dead letters at hmis %v, want 2026Feb with E7611", dl)
	}
}
