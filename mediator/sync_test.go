package mediator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

const syncSource = `  - name: sync
    auth: {tokens: [sync-token-0123456789], users: [{username: sync, password: sync-password}]}
    id_schemes: {id_scheme: CODE}
    wait_for_delivery: 20s
`

// TestSynchronousModeAnswersWithTheOutcome: a source with wait_for_delivery answers after
// the targets have the data, with their counts; through /api/dataValueSets the answer is
// DHIS2's own shape with the target's counts and conflicts.
func TestSynchronousModeAnswersWithTheOutcome(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), syncSource, "")

	code, body := h.post("/ingest/sync", "application/json", "Bearer sync-token-0123456789", payload(t, "chw-2024-01.json"))
	if code != http.StatusOK || body["status"] != "delivered" {
		t.Fatalf("HTTP %d %v", code, body)
	}
	if n := emu.Store().Len(); n != 12 {
		t.Errorf("answered before the target had the values: %d stored", n)
	}

	// One value names a data element the HMIS lacks: DHIS2's 409 WARNING, with its conflict.
	bad := `{"period":"202403","orgUnit":"KL_N_F1","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","value":"3"},{"dataElement":"NOT_A_DE","value":"4"}]}`
	req, _ := http.NewRequest("POST", h.base+"/api/dataValueSets?idScheme=CODE", strings.NewReader(bad))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("sync", "sync-password")
	code, wm := h.do(req)
	resp, _ := wm["response"].(map[string]any)
	if code != http.StatusConflict || wm["status"] != "WARNING" || resp == nil {
		t.Fatalf("HTTP %d %v", code, wm)
	}
	ic := resp["importCount"].(map[string]any)
	if ic["imported"] != float64(1) || ic["ignored"] != float64(1) || len(resp["conflicts"].([]any)) != 1 {
		t.Errorf("summary = %v", resp)
	}
}

// TestOpenHIMSynchronousEnvelopeCarriesTheDHIS2Call: through an OpenHIM channel, a waiting
// source's envelope has the final status and the DHIS2 import orchestration.
func TestOpenHIMSynchronousEnvelopeCarriesTheDHIS2Call(t *testing.T) {
	core := openhimtest.NewServer()
	defer core.Close()
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), syncSource, openhimYAML(core.URL))
	coreTx := core.NewTransaction(map[string]any{"status": "Processing"})
	req, _ := http.NewRequest("POST", h.base+"/ingest/sync", bytes.NewReader(payload(t, "chw-2024-01.json")))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("sync", "sync-password")
	req.Header.Set("X-OpenHIM-TransactionID", coreTx)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var env struct {
		Status         string `json:"status"`
		Orchestrations []struct {
			Name string `json:"name"`
		} `json:"orchestrations"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if env.Status != "Successful" || len(env.Orchestrations) != 2 || env.Orchestrations[1].Name != "DHIS2 import: hmis" {
		t.Fatalf("envelope = %s", raw)
	}
}
