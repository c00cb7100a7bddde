package mediator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// rerun asks the core to rerun transaction id, as the console's rerun button does
// (POST /tasks {"tids": [...]}, spec openhim.md §10.2), waits for the task and returns the
// child transaction's id. The core replays the stored request with the headers parentID and
// taskID (CORE src/tasks.js rerunSetHTTPRequestOptions).
func (b *behindHIM) rerun(id string) string {
	b.t.Helper()
	body, _ := json.Marshal(map[string]any{"tids": []string{id}})
	req, _ := http.NewRequest(http.MethodPost, b.core.URL+"/tasks", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(openhimtest.RootEmail, openhimtest.RootPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.t.Fatalf("POST /tasks: HTTP %d", resp.StatusCode)
	}
	tasks := b.core.Tasks()
	task := tasks[len(tasks)-1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.core.WaitTask(ctx, task["_id"].(string)); err != nil {
		b.t.Fatal(err)
	}
	task = b.core.Tasks()[len(tasks)-1]
	entry := task["transactions"].([]any)[0].(map[string]any)
	child, _ := entry["rerunID"].(string)
	if child == "" {
		b.t.Fatalf("the rerun made no child transaction: %v", entry)
	}
	return child
}

// TestOpenHIMRerunOfAFailedTransactionDelivers: the target refuses every value (an org unit
// it does not know), so the transaction fails and the core's record says so. The target's
// metadata is fixed; the operator reruns the transaction from the console. Within the
// duplicate window the rerun is the same Tally transaction: its dead letters are replayed
// through the live mapper, the rerun is a new attempt in the transaction log, and the child
// transaction's record ends Successful with the DHIS2 import. A second rerun, of a
// transaction now delivered, is a harmless duplicate that sends nothing.
func TestOpenHIMRerunOfAFailedTransactionDelivers(t *testing.T) {
	emu := emulator(t)
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: emu.URL})

	answer := b.post("/ingest/him", chwValues("202401", "KL_N_F3", 7), nil) // KL_N_F3 is unknown to the target
	txID := answer.body["transaction"].(string)
	b.h.waitStatus(txID, txlog.TxFailed)
	orig := b.waitConfirmed(1, answer.txID)
	if byName, names := orchestrations(orig); orig["status"] != "Failed" || jsonAt(byName["DHIS2 import: hmis"], "error.message") == nil {
		t.Fatalf("original record: status %v, orchestrations %q %v", orig["status"], names, byName["DHIS2 import: hmis"])
	}

	if err := emu.UpdateMetadata(func(m *dhis2test.Metadata) error {
		m.AddOrgUnit(dhis2test.OrgUnit{ID: "Kx3Fac00003", Code: "KL_N_F3", Name: "North Facility 3", Parent: "KL_NORTH", OpeningDate: "2000-01-01"})
		ds := m.DataSet("CHW_MONTHLY")
		ds.OrgUnits = append(ds.OrgUnits, "KL_N_F3")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	child := b.rerun(answer.txID)
	rec := b.waitConfirmed(2, child)
	assertFinalRecord(t, rec, "Tally him", http.StatusAccepted, emu.URL)
	if rec["parentID"] != answer.txID || jsonAt(rec, "properties.tally_rerun_of") != answer.txID ||
		jsonAt(rec, "properties.tally_replayed") != float64(1) {
		t.Errorf("child record: parent %v, properties %v", rec["parentID"], rec["properties"])
	}
	if body, _ := jsonAt(rec, "response.body").(string); !bytes.Contains([]byte(body), []byte(`"status":"replaying"`)) {
		t.Errorf("the rerun's answer = %s, want what was replayed", body)
	}
	if n := emu.Store().Len(); n != 3 {
		t.Errorf("the target holds %d values, want 3", n)
	}
	tx := b.h.waitStatus(txID, txlog.TxDelivered)
	var rerunEvent map[string]any
	for _, e := range tx["events"].([]any) {
		if ev := e.(map[string]any); ev["kind"] == txlog.EventRerun {
			rerunEvent = ev
		}
	}
	if rerunEvent == nil || rerunEvent["openhimTransaction"] != child || num(rerunEvent["values"]) != 3 {
		t.Errorf("transaction events = %v, want the rerun as an attempt", tx["events"])
	}
	if again, _ := core.Transaction(answer.txID); again["status"] != "Failed" {
		t.Errorf("the original record changed to %v; a rerun is recorded on its child", again["status"])
	}

	imports := emu.ImportRequests()
	second := b.rerun(answer.txID)
	rec = b.waitConfirmed(3, second)
	byName, names := orchestrations(rec)
	if rec["status"] != "Successful" || jsonAt(rec, "properties.tally_duplicate") != true || len(byName) == 0 ||
		count(names, "DHIS2 import: hmis") != 0 {
		t.Errorf("rerun of a delivered transaction: status %v, orchestrations %q, properties %v",
			rec["status"], names, rec["properties"])
	}
	if got := emu.ImportRequests(); got != imports {
		t.Errorf("a rerun of a delivered transaction sent %d imports", got-imports)
	}
}
