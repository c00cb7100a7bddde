package mediator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// TestImportStrategyAppliedAtTheTarget: the client's importStrategy reaches the target,
// which applies it as DHIS2's DefaultDataValueSetService does (spec dhis2.md §1.4 outcome
// table): CREATE (and its legacy name NEW) leaves an existing value alone and counts it
// ignored, UPDATE (UPDATES) creates nothing, DELETE deletes and counts it deleted. An
// unknown strategy is refused with 400 naming it, and a preview shows the strategy the
// target would be sent.
func TestImportStrategyAppliedAtTheTarget(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), syncSource, "")
	value := func(v string) string {
		return `{"period":"202403","orgUnit":"KL_N_F1","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","value":"` + v + `"}]}`
	}
	stored := func() string {
		v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202403", "KL_N_F1", "", "")
		if !ok || v.Deleted {
			return "none"
		}
		return v.Value
	}
	counts := func(wm map[string]any) string {
		resp, _ := wm["response"].(map[string]any)
		return fmt.Sprint(resp["importCount"])
	}
	steps := []struct {
		strategy, value, counts, stored string
	}{
		{"UPDATES", "12", "map[deleted:0 ignored:1 imported:0 updated:0]", "none"},
		{"CREATE_AND_UPDATE", "84", "map[deleted:0 ignored:0 imported:1 updated:0]", "84"},
		{"CREATE", "999", "map[deleted:0 ignored:1 imported:0 updated:0]", "84"},
		{"new", "998", "map[deleted:0 ignored:1 imported:0 updated:0]", "84"},
		{"UPDATE", "85", "map[deleted:0 ignored:0 imported:0 updated:1]", "85"},
		{"DELETES", "85", "map[deleted:1 ignored:0 imported:0 updated:0]", "none"},
	}
	for _, st := range steps {
		_, wm := h.post("/api/dataValueSets?idScheme=CODE&importStrategy="+st.strategy, "application/json", basic("sync", "sync-password"), []byte(value(st.value)))
		if got := counts(wm); got != st.counts || stored() != st.stored {
			t.Errorf("%s %s: counts %s, stored %s; want %s, %s\n%v", st.strategy, st.value, got, stored(), st.counts, st.stored, wm)
		}
	}

	code, wm := h.post("/api/dataValueSets?idScheme=CODE&importStrategy=MERGE", "application/json", basic("sync", "sync-password"), []byte(value("1")))
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(wm["message"]), `"MERGE"`) {
		t.Errorf("unknown strategy: HTTP %d %v", code, wm)
	}

	_, raw := h.preview("?source=cht&importStrategy=UPDATES", []byte(value("3")))
	var out struct {
		Targets []struct {
			ImportStrategy string `json:"importStrategy"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Targets) != 1 || out.Targets[0].ImportStrategy != "UPDATE" {
		t.Errorf("preview: %s", raw)
	}
}
