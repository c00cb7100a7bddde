package mediator_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestCHTOrgUnitsNotAssignedToTheDataSet: CHT exports a row for each ancestor of a health
// worker that carries dhis.orgUnit, so a district's value lands beside its facilities'.
// By default the value is delivered with a warning (E7636) in the transaction record and
// tally_mapper_warnings_total; with org_units: {keep: assigned} it is left out (unmapped).
// The data set's assignments come from the target's metadata.
func TestCHTOrgUnitsNotAssignedToTheDataSet(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), `  - name: chtwarn
    format: cht
    auth: {tokens: [chtwarn-token-0123456789]}
    id_schemes: {id_scheme: CODE}
    mapping: cht-ids
    unmapped: pass
  - name: chtfacilities
    format: cht
    auth: {tokens: [chtfacilities-token-012345]}
    id_schemes: {id_scheme: CODE}
    mapping: cht-ids
    unmapped: pass
    org_units: {keep: assigned}
`, `mappings:
  - name: cht-ids
    description: the CHT app's dhis config uses the HMIS's codes
`)
	export := func(period string) []byte {
		return []byte(`{"dataSet":"CHW_MONTHLY","completeDate":"2024-02-21","period":"` + period + `","dataValues":[
		  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":5},
		  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_NORTH","value":5}]}`)
	}
	code, body := h.post("/ingest/chtwarn", "application/json", "Bearer chtwarn-token-0123456789", export("202407"))
	if code != http.StatusAccepted {
		t.Fatalf("HTTP %d %v", code, body)
	}
	tx := h.waitStatus(body["transaction"].(string), txlog.TxDelivered)
	ws, _ := targetSummary(t, tx, "hmis")["warnings"].([]any)
	if len(ws) != 1 || ws[0].(map[string]any)["errorCode"] != "E7636" || ws[0].(map[string]any)["index"] != float64(1) {
		t.Errorf("warnings %v, want E7636 for the district's row", ws)
	}
	if _, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202407", "KL_NORTH", "", ""); !ok {
		t.Error("keep: all delivers the district's value")
	}
	if n := metric(t, h, `tally_mapper_warnings_total{code="E7636",source="chtwarn",target="hmis"}`); n != 1 {
		t.Errorf("warnings metric %v", n)
	}

	code, body = h.post("/ingest/chtfacilities", "application/json", "Bearer chtfacilities-token-012345", export("202408"))
	if code != http.StatusAccepted {
		t.Fatalf("HTTP %d %v", code, body)
	}
	tx = h.waitStatus(body["transaction"].(string), txlog.TxDelivered)
	if s := targetSummary(t, tx, "hmis"); s["unmapped"] != float64(1) {
		t.Errorf("summary %v, want the district's row unmapped", s)
	}
	if _, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202408", "KL_NORTH", "", ""); ok {
		t.Error("keep: assigned delivered the district's value")
	}
	if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202408", "KL_N_F1", "", ""); !ok || v.Value != fmt.Sprint(5) {
		t.Errorf("facility value %+v, %v", v, ok)
	}
}
