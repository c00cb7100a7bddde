package mediator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestMappingRefusesValueByValue: under unmapped: reject one code no rule names refuses
// that value alone (E7610, a dead letter of reason mapping holding exactly it); the other
// values of the batch are delivered, and the transaction records the refusal.
func TestMappingRefusesValueByValue(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), `  - name: strict
    format: json
    auth: {tokens: [strict-token-0123456789]}
    id_schemes: {id_scheme: CODE}
    mapping: chw
    unmapped: reject
`, chwMapping)
	body := `{"period":"202405","orgUnit":"KL_S_F1","dataValues":[{"dataElement":"visits","value":"10"},
	  {"dataElement":"pregnancies","value":"2"},{"dataElement":"u5","value":"7"}]}`
	code, resp := h.post("/ingest/strict", "application/json", "Bearer strict-token-0123456789", []byte(body))
	if code != http.StatusAccepted {
		t.Fatalf("HTTP %d %v", code, resp)
	}
	tx := h.waitStatus(resp["transaction"].(string), txlog.TxPartiallyDelivered)
	for de, want := range map[string]string{"CHW_HOUSEHOLD_VISITS": "10", "CHW_U5_ASSESSMENTS": "7"} {
		if v, ok := emu.Lookup(de, "202405", "KL_S_F1", "", ""); !ok || v.Value != want {
			t.Errorf("%s = %+v, %v; want %s", de, v, ok, want)
		}
	}
	hmis := targetSummary(t, tx, "hmis")
	cs, _ := hmis["conflicts"].([]any)
	if hmis["refused"] != float64(1) || len(cs) != 1 || cs[0].(map[string]any)["errorCode"] != "E7610" ||
		fmt.Sprint(cs[0].(map[string]any)["indexes"]) != "[1]" {
		t.Errorf("target summary %v", hmis)
	}
	dl := h.deadLetters("reason=mapping")
	if len(dl) != 1 || dl[0]["values"] != float64(1) || fmt.Sprint(dl[0]["codes"]) != "[E7610]" {
		t.Fatalf("dead letters %v, want the one refused value", dl)
	}
	if n := metric(t, h, `tally_mapper_values_total{outcome="refused",source="strict",target="hmis"}`); n != 1 {
		t.Errorf("refused values metric = %v", n)
	}
}

// summingSource is a source whose payloads are cut into batches of two values, with
// duplicates: sum; summingPayload is a payload of three batches whose first and third carry
// a value on one key (1 and 3 for visits at KL_N_F1).
const (
	summingSource = `  - name: summing
    format: json
    auth: {tokens: [summing-token-0123456789]}
    id_schemes: {id_scheme: CODE}
    duplicates: sum
    batch_size: 2
`
	summingPayload = `{"period":"202406","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":"1"},{"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F2","value":"2"},
	  {"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_N_F1","value":"5"},{"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_N_F2","value":"6"},
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":"3"}]}`
)

// TestDuplicatesAcrossBatchesOfAPayload: a payload cut into batches of two still gets its
// source's duplicates policy across them: with duplicates: sum, a key sent in the first and
// the third batch is delivered as the sum, and the transaction reports it.
func TestDuplicatesAcrossBatchesOfAPayload(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), summingSource, "")
	body := summingPayload
	code, resp := h.post("/ingest/summing", "application/json", "Bearer summing-token-0123456789", []byte(body))
	if code != http.StatusAccepted || resp["batches"] != float64(3) {
		t.Fatalf("HTTP %d %v", code, resp)
	}
	tx := h.waitStatus(resp["transaction"].(string), txlog.TxDelivered)
	if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202406", "KL_N_F1", "", ""); !ok || v.Value != "4" {
		t.Errorf("KL_N_F1 visits = %+v, %v; want 1 + 3 = 4", v, ok)
	}
	ds, _ := targetSummary(t, tx, "hmis")["duplicates"].([]any)
	if len(ds) != 1 || ds[0].(map[string]any)["action"] != "sum" || fmt.Sprint(ds[0].(map[string]any)["indexes"]) != "[0 4]" {
		t.Errorf("duplicates reported %v", ds)
	}
}

// TestRollupAcrossPayloads: periods: rollup keeps each month's part of a quarter in
// tally_state, so that a later payload with May alone makes 2026Q2 April + May instead of
// replacing it, and a corrected April replaces April's part.
func TestRollupAcrossPayloads(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	if err := emu.UpdateMetadata(func(m *dhis2test.Metadata) error {
		m.AddDataElement(dhis2test.DataElement{ID: "ChwVisitsQ1", Code: "CHW_VISITS_Q", Name: "CHW visits per quarter",
			ValueType: "INTEGER", AggregationType: "SUM"})
		m.AddDataSet(dhis2test.DataSet{ID: "ChwQuarter1", Code: "CHW_QUARTERLY", Name: "CHW quarterly", PeriodType: "Quarterly",
			DataElements: []string{"ChwVisitsQ1"}, OrgUnits: []string{m.OrgUnit("KL_N_F1").ID}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h := startTallyCfg(t, emu.URL, t.TempDir(), `  - name: monthly
    format: json
    auth: {tokens: [monthly-token-0123456789]}
    id_schemes: {id_scheme: CODE}
    mapping: to-quarters
`, `mappings:
  - name: to-quarters
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    periods: rollup
    rules:
      - {source: visits, data_element: CHW_VISITS_Q}
`)
	send := func(month, value, want string) {
		t.Helper()
		body := `{"orgUnit":"KL_N_F1","dataValues":[{"dataElement":"visits","period":"` + month + `","value":"` + value + `"}]}`
		code, resp := h.post("/ingest/monthly", "application/json", "Bearer monthly-token-0123456789", []byte(body))
		if code != http.StatusAccepted {
			t.Fatalf("HTTP %d %v", code, resp)
		}
		h.waitStatus(resp["transaction"].(string), txlog.TxDelivered)
		if v, ok := emu.Lookup("CHW_VISITS_Q", "2026Q2", "KL_N_F1", "", ""); !ok || v.Value != want {
			t.Errorf("after %s=%s: 2026Q2 = %+v, %v; want %s", month, value, v, ok, want)
		}
	}
	send("202604", "3", "3")
	send("202605", "4", "7") // April + May, not May alone
	send("202604", "5", "9") // April corrected
	if strings.Contains(fmt.Sprint(h.deadLetters("")), "rollup") {
		t.Errorf("dead letters: %v", h.deadLetters(""))
	}
}

// The batch that carries a sum must reach DHIS2 after the batch it adds to, even when that
// batch is the slow one: the first import takes 400 ms (a busy DHIS2), and with three
// requests allowed in flight the later batches would otherwise land first, leaving the
// first batch's partial value at the target.
func TestDuplicateSumReachesTheTargetAfterTheBatchItAddsTo(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: importPath, Times: 1, Delay: dhis2test.Duration(400 * time.Millisecond)})
	dir := t.TempDir()
	yml := strings.Replace(configYAML(emu.URL, dir, summingSource), "    timeout: 5s\n", "    timeout: 5s\n    concurrency: 3\n", 1)
	h := startYAML(t, yml, dir, false)
	body := summingPayload
	code, resp := h.post("/ingest/summing", "application/json", "Bearer summing-token-0123456789", []byte(body))
	if code != http.StatusAccepted || resp["batches"] != float64(3) {
		t.Fatalf("HTTP %d %v", code, resp)
	}
	h.waitStatus(resp["transaction"].(string), txlog.TxDelivered)
	if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202406", "KL_N_F1", "", ""); !ok || v.Value != "4" {
		t.Errorf("KL_N_F1 visits = %q, %v; want 1 + 3 = 4", v.Value, ok)
	}
}
