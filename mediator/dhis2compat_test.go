package mediator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// oneBadPeriod has three CHW values in codes, the second with a month that does not exist.
const oneBadPeriod = `{"orgUnit":"KL_N_F1","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"202401","value":"1"},
  {"dataElement":"CHW_U5_ASSESSMENTS","period":"202413","value":"2"},{"dataElement":"CHW_PREGNANCIES_REGISTERED","period":"202401","value":"3"}]}`

// TestDataValueSetsAnswerInTheTargetsEra: the answer imitates the release of the source's
// targets (spec dhis2.md §2.2): a 2.43 target's era answers WARNING with 200 and "Import
// completed with warnings", counts every accepted write as updated (2.43 §2.4 D) and lists
// rejectedIndexes (2.41+); a source's dhis2_version overrides it, and 2.37 is the bare
// ImportSummary with 200 whatever its status (§2.1).
func TestDataValueSetsAnswerInTheTargetsEra(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.43"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), `  - name: old
    auth: {users: [{username: old, password: old-secret}]}
    dhis2_version: "2.37"
`, "")
	code, wm := h.post("/api/dataValueSets?idScheme=CODE", "application/json", basic("exchange", "exchange-secret"), []byte(oneBadPeriod))
	resp, _ := wm["response"].(map[string]any)
	if code != http.StatusOK || wm["status"] != "WARNING" || wm["message"] != "Import completed with warnings, please check import summary." {
		t.Fatalf("2.43: HTTP %d %v", code, wm)
	}
	if ic := resp["importCount"].(map[string]any); ic["updated"] != float64(2) || ic["imported"] != float64(0) || ic["ignored"] != float64(1) {
		t.Errorf("2.43 counts %v, want 2 updated, 1 ignored", ic)
	}
	if fmt.Sprint(resp["rejectedIndexes"]) != "[1]" {
		t.Errorf("rejectedIndexes %v, want [1]", resp["rejectedIndexes"])
	}

	// atomic=true asks 2.43 for all or nothing (spec dhis2.md §1.2): the bad period refuses
	// the payload whole.
	code, wm = h.post("/api/dataValueSets?idScheme=CODE&atomic=true", "application/json", basic("exchange", "exchange-secret"),
		[]byte(strings.Replace(oneBadPeriod, `"3"`, `"5"`, 1)))
	if resp, _ := wm["response"].(map[string]any); code != http.StatusConflict || resp["status"] != "ERROR" {
		t.Errorf("2.43 atomic=true: HTTP %d %v", code, wm)
	}

	code, sum := h.post("/api/dataValueSets?idScheme=CODE", "application/json", basic("old", "old-secret"), []byte(strings.Replace(oneBadPeriod, `"1"`, `"9"`, 1)))
	if code != http.StatusOK || sum["responseType"] != "ImportSummary" || sum["status"] != "WARNING" || sum["rejectedIndexes"] != nil {
		t.Fatalf("2.37: HTTP %d %v", code, sum)
	}
	if c := sum["conflicts"].([]any)[0].(map[string]any); c["errorCode"] != "E7611" {
		t.Errorf("2.37 conflict %v: 2.37 conflicts carry their error code", c)
	}
}

// TestNativeEndpointPerValue: a source with validation: per_value imports value by value on
// POST /ingest/{source} too: the bad value is refused with its place and DHIS2 conflict, the
// others are stored.
func TestNativeEndpointPerValue(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), `  - name: lenient
    auth: {tokens: [lenient-token-0123456789]}
    id_schemes: {id_scheme: CODE}
    validation: per_value
`, "")
	code, body := h.post("/ingest/lenient", "application/json", "Bearer lenient-token-0123456789", []byte(oneBadPeriod))
	errs, _ := body["errors"].([]any)
	if code != http.StatusAccepted || body["values"] != float64(2) || body["refused"] != float64(1) || len(errs) != 1 ||
		!strings.Contains(fmt.Sprint(errs[0]), "E7611") {
		t.Fatalf("HTTP %d %v", code, body)
	}
	h.waitStatus(body["transaction"].(string), "delivered")
	if emu.Store().Len() != 2 {
		t.Errorf("%d values stored, want 2", emu.Store().Len())
	}
}
