package mediator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

const syncSource = `  - name: sync
    auth: {tokens: [sync-token-0123456789], users: [{username: sync, password: sync-password}]}
    id_schemes: {id_scheme: CODE}
    wait_for_delivery: 20s
    allow_delete: true
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

// TestOpenHIMSynchronousSourceHasOneOutcome: through an OpenHIM channel, a source that waits
// for delivery answers with the final status and the DHIS2 orchestration in its envelope; the
// outbox then confirms the record and adds nothing, so the record has exactly one DHIS2
// orchestration, whether the core writes the envelope before the outbox looks or after.
func TestOpenHIMSynchronousSourceHasOneOutcome(t *testing.T) {
	emu := emulator(t)
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: emu.URL})

	for i, c := range []struct {
		path  string
		delay time.Duration
		route string
	}{
		{"/ingest/himsync", 0, "Tally himsync"},
		{"/ingest/himsync", 500 * time.Millisecond, "Tally himsync"},
		{"/api/dataValueSets?idScheme=CODE", 500 * time.Millisecond, "Tally dataValueSets"},
	} {
		t.Run(fmt.Sprintf("%s %s", c.path, c.delay), func(t *testing.T) {
			core.SetStoreDelay(c.delay)
			answer := b.post(c.path, chwValues(fmt.Sprintf("2023%02d", i+1), "KL_S_F1", 3*i), nil)
			if answer.status != http.StatusOK {
				t.Fatalf("client answer: HTTP %d %v", answer.status, answer.body)
			}
			rec := b.waitConfirmed(i+1, answer.txID)
			assertFinalRecord(t, rec, c.route, http.StatusOK, emu.URL)
			if c.delay == 0 {
				// The envelope was stored before the outbox read the record: nothing to add.
				for _, u := range core.TransactionUpdates() {
					if u.ID == answer.txID {
						t.Errorf("the outbox updated a record the envelope had completed: %s", u.Raw)
					}
				}
			}
		})
	}
	if got := emu.ImportRequests(); got != 3 {
		t.Errorf("%d imports, want 3", got)
	}
}

// A synchronous source whose target is slower than its wait_for_delivery: the client gets
// 202 when the wait runs out, the import that was under way finishes and is recorded once —
// never posted a second time, however long past ack_wait it took — and the core's record
// ends with the final status and one DHIS2 orchestration.
func TestOpenHIMSynchronousSourceSlowerThanItsWait(t *testing.T) {
	emu := emulator(t)
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: importPath, Delay: dhis2test.Duration(3 * time.Second)})
	core := openhimtest.NewServer(openhimtest.WithClient(himClient, himClientPassword, "tally"))
	defer core.Close()
	b := startBehindHIM(t, core, himConfig{targetURL: emu.URL, wait: "1s", ackWait: "1s"})

	answer := b.post("/ingest/himsync", chwValues("202305", "KL_S_F2", 0), nil)
	if answer.status != http.StatusAccepted {
		t.Fatalf("client answer: HTTP %d %v, want 202 once the wait ran out", answer.status, answer.body)
	}
	rec := b.waitConfirmed(1, answer.txID)
	assertFinalRecord(t, rec, "Tally himsync", http.StatusAccepted, emu.URL)
	// Three more ack_waits: a message whose import outlasted its deadline would be posted
	// again by now.
	time.Sleep(3 * time.Second)
	if n := emu.ImportRequests(); n != 1 {
		t.Errorf("%d import requests, want 1", n)
	}
	for k, n := range emu.Store().ReceivedCounts() {
		if n != 1 {
			t.Errorf("%v received %d times", k, n)
		}
	}
}
