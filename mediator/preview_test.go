package mediator_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

func TestPreviewDiffsAgainstTheTarget(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startTallyCfg(t, emu.URL, filepath.Join(dir, "nats"), mappingSources, mappingSets(t, dir))

	// The target holds two facility values of CHW_HOUSEHOLD_VISITS for January.
	seed := `{"period":"202401","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":"11"},
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F2","value":"21"}]}`
	_, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, []byte(seed))
	h.waitStatus(body["transaction"].(string), "delivered")

	// The new data: F1 unchanged, F2 changed, S_F1 added; the target's other values for the
	// same element, period and org units would be stale.
	next := `{"period":"202401","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":"11"},
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_S_F1","value":"5"}]}`
	code, raw := h.preview("?source=cht", []byte(next))
	if code != 200 {
		t.Fatalf("HTTP %d %s", code, raw)
	}
	var out struct {
		Values  int `json:"values"`
		Targets []struct {
			Target string `json:"target"`
			Values []any  `json:"dataValues"`
			Error  string `json:"error"`
			Diff   struct {
				Added, Changed, Unchanged, Stale int
				Error                            string
			} `json:"diff"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Targets) != 1 || len(out.Targets[0].Values) != 2 {
		t.Fatalf("preview = %s", raw)
	}
	d := out.Targets[0].Diff
	// KL_N_F2's 21 is not in the new data over the org units it covers (F1, S_F1): the
	// export is scoped to the new data's org units, so F2 is outside and not stale.
	if d.Error != "" || d.Added != 1 || d.Unchanged != 1 || d.Changed != 0 {
		t.Errorf("diff = %+v\n%s", d, raw)
	}

	// A changed value and a stale one, within the same org units.
	again := `{"period":"202401","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":"12"},
	  {"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_N_F2","value":"3"}]}`
	_, raw = h.preview("?source=cht", []byte(again))
	json.Unmarshal(raw, &out)
	d = out.Targets[0].Diff
	if d.Changed != 1 || d.Added != 1 || d.Stale != 1 {
		t.Errorf("diff = %+v\n%s", d, raw)
	}
	// A preview asks the target with dry-run imports (for locked periods) and writes nothing.
	if v, _ := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202401", "KL_N_F1", "", ""); emu.Store().Len() != 2 || v.Value != "11" {
		t.Errorf("a preview changed the target: %d values, KL_N_F1 %q", emu.Store().Len(), v.Value)
	}
}

// preview posts a JSON payload to POST /admin/v1/preview with query (starting with "?")
// and returns the status and the raw answer.
func (h *harness) preview(query string, body []byte) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.base+"/admin/v1/preview"+query, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	return h.doRaw(req)
}
