package mediator_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// registered lists the emulator's registrations as "dataSet period orgUnit date".
func registered(emu *dhis2test.Server) []string {
	var out []string
	for _, r := range emu.Store().Registrations() {
		out = append(out, fmt.Sprintf("%s %s %s %s", r.DataSet, r.Period, r.OrgUnit, r.Date))
	}
	slices.Sort(out)
	return out
}

// uidOf returns the emulator's uid of a data set or an org unit given by code.
func uidOf(t *testing.T, emu *dhis2test.Server, kind, code string) string {
	t.Helper()
	m := emu.Metadata()
	switch {
	case kind == "dataSet" && m.DataSet(code) != nil:
		return m.DataSet(code).ID
	case kind == "organisationUnit" && m.OrgUnit(code) != nil:
		return m.OrgUnit(code).ID
	}
	t.Fatalf("no %s %s in the emulator", kind, code)
	return ""
}

// TestHeaderCompleteDateRegistersAfterDelivery: a data value set's header completeDate
// registers its data set complete at the target once the values are delivered, as DHIS2
// does for the header (spec dhis2.md §1.4): the synchronous answer carries
// dataSetComplete. A header without an org unit is DHIS2's conflict "Must be provided to
// complete data set" and registers nothing.
func TestHeaderCompleteDateRegistersAfterDelivery(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), syncSource, "")
	body := `{"dataSet":"CHW_MONTHLY","completeDate":"2024-02-03","period":"202401","orgUnit":"KL_N_F2","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","value":"7"},{"dataElement":"CHW_U5_ASSESSMENTS","value":"8"}]}`
	code, wm := h.post("/api/dataValueSets?idScheme=CODE", "application/json", basic("sync", "sync-password"), []byte(body))
	resp, _ := wm["response"].(map[string]any)
	if code != http.StatusOK || resp["dataSetComplete"] != "2024-02-03" {
		t.Fatalf("HTTP %d %v", code, wm)
	}
	want := []string{fmt.Sprintf("%s 202401 %s 2024-02-03", uidOf(t, emu, "dataSet", "CHW_MONTHLY"), uidOf(t, emu, "organisationUnit", "KL_N_F2"))}
	if got := registered(emu); !slices.Equal(got, want) {
		t.Errorf("registrations %v, want %v", got, want)
	}

	noOrgUnit := `{"dataSet":"CHW_MONTHLY","completeDate":"2024-03-03","period":"202402","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F2","value":"7"}]}`
	code, wm = h.post("/api/dataValueSets?idScheme=CODE", "application/json", basic("sync", "sync-password"), []byte(noOrgUnit))
	resp, _ = wm["response"].(map[string]any)
	cs, _ := resp["conflicts"].([]any)
	if code != http.StatusConflict || resp["status"] != "WARNING" || len(cs) != 1 ||
		fmt.Sprint(cs[0]) != "map[object:OrganisationUnit value:Must be provided to complete data set]" {
		t.Fatalf("HTTP %d %v", code, wm)
	}
	if got := registered(emu); len(got) != 1 {
		t.Errorf("registrations %v: a header without an org unit completes nothing", got)
	}
}

// TestCHTCompleteDatePerOrgUnit: a CHT export's completeDate is its export date and its
// header has no org unit; with complete_date: per_org_unit the data set is registered
// complete for every org unit of its values, once every batch of the payload is delivered
// (the payload is cut into several batches here). Without the key (format cht) it is
// ignored.
func TestCHTCompleteDatePerOrgUnit(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), `  - name: chtdone
    format: cht
    auth: {tokens: [chtdone-token-0123456789]}
    id_schemes: {id_scheme: CODE}
    complete_date: per_org_unit
    batch_size: 2
  - name: chtplain
    format: cht
    auth: {tokens: [chtplain-token-0123456789]}
    id_schemes: {id_scheme: CODE}
`, "")
	export := `{"dataSet":"CHW_MONTHLY","completeDate":"2024-02-21","period":"202401","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":3},{"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_N_F1","value":4},
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_S_F1","value":5},{"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_S_F1","value":6},
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_S_F2","value":7}]}`
	code, body := h.post("/ingest/chtplain", "application/json", "Bearer chtplain-token-0123456789", []byte(export))
	if code != http.StatusAccepted {
		t.Fatalf("HTTP %d %v", code, body)
	}
	h.waitStatus(body["transaction"].(string), txlog.TxDelivered)
	if got := registered(emu); len(got) != 0 {
		t.Fatalf("format cht registered %v: its completeDate is the export date", got)
	}

	code, body = h.post("/ingest/chtdone", "application/json", "Bearer chtdone-token-0123456789", []byte(export))
	if code != http.StatusAccepted || body["batches"] != float64(3) {
		t.Fatalf("HTTP %d %v", code, body)
	}
	h.waitStatus(body["transaction"].(string), txlog.TxDelivered)
	ds := uidOf(t, emu, "dataSet", "CHW_MONTHLY")
	var want []string
	for _, ou := range []string{"KL_N_F1", "KL_S_F1", "KL_S_F2"} {
		want = append(want, fmt.Sprintf("%s 202401 %s 2024-02-21", ds, uidOf(t, emu, "organisationUnit", ou)))
	}
	slices.Sort(want)
	if got := registered(emu); !slices.Equal(got, want) {
		t.Errorf("registrations %v, want %v", got, want)
	}
	_, tx := h.admin("GET", "/admin/v1/transactions/"+body["transaction"].(string), nil)
	c, _ := targetSummary(t, tx, "hmis")["completeness"].(map[string]any)
	if c == nil || c["registrations"] != float64(3) || c["date"] != "2024-02-21" {
		t.Errorf("transaction completeness = %v", c)
	}
	if n := metric(t, h, `tally_delivery_completions_total{result="registered",target="hmis"}`); n != 3 {
		t.Errorf("tally_delivery_completions_total{registered} = %v, want 3", n)
	}
}
