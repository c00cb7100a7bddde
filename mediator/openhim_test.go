package mediator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

func openhimYAML(coreURL string) string {
	return fmt.Sprintf(`
openhim:
  enabled: true
  url: %s
  username: %s
  password: %s
  heartbeat_interval: 1s
  route: {host: 127.0.0.1, port: 8080}
`, coreURL, openhimtest.RootEmail, openhimtest.RootPassword)
}

// TestOpenHIMChannelRequestIsEnvelopedAndUpdatedWhenDelivered drives a request as an OpenHIM
// core forwards it: Tally registers, answers with the json+openhim envelope while delivery is
// pending, and updates the core's transaction with the final outcome once it is delivered.
func TestOpenHIMChannelRequestIsEnvelopedAndUpdatedWhenDelivered(t *testing.T) {
	core := openhimtest.NewServer()
	defer core.Close()
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyWith(t, emu.URL, t.TempDir(), openhimYAML(core.URL))

	waitFor(t, "registration", func() bool { return len(core.Registrations()) > 0 })
	if _, ok := core.Mediator("urn:mediator:tally"); !ok {
		t.Fatal("mediator not stored by the core")
	}

	coreTx := core.NewTransaction(map[string]any{"status": "Processing"})
	req, _ := http.NewRequest("POST", h.base+"/ingest/cht", bytes.NewReader(payload(t, "chw-2024-01.json")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+chtToken)
	req.Header.Set("X-OpenHIM-TransactionID", coreTx)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json+openhim" {
		t.Fatalf("Content-Type = %q, body %s", ct, raw)
	}
	var env struct {
		URN      string `json:"x-mediator-urn"`
		Status   string `json:"status"`
		Response struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		} `json:"response"`
		Orchestrations []struct {
			Name string `json:"name"`
		} `json:"orchestrations"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if env.URN != "urn:mediator:tally" || env.Status != "Processing" || env.Response.Status != http.StatusAccepted ||
		len(env.Orchestrations) != 1 || env.Properties["tally_transaction"] == nil {
		t.Fatalf("envelope = %s", raw)
	}

	waitFor(t, "transaction update", func() bool { return len(core.TransactionUpdates()) > 0 })
	up := core.TransactionUpdates()[0]
	if up.ID != coreTx || up.Body["status"] != "Successful" {
		t.Fatalf("update = %s", up.Raw)
	}
	if n := emu.Store().Len(); n != 12 {
		t.Errorf("emulator holds %d values, want 12", n)
	}
	// A rerun from the console re-sends the same body with a new transaction id: Tally
	// recognises the payload and stores nothing twice.
	rerun := core.NewTransaction(map[string]any{"status": "Processing"})
	req, _ = http.NewRequest("POST", h.base+"/ingest/cht", bytes.NewReader(payload(t, "chw-2024-01.json")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+chtToken)
	req.Header.Set("X-OpenHIM-TransactionID", rerun)
	req.Header.Set("parentID", coreTx)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(raw, []byte(`duplicate`)) {
		t.Errorf("rerun answer = %s", raw)
	}
	if got := emu.ImportRequests(); got != 1 {
		t.Errorf("emulator saw %d imports, want 1", got)
	}
}

// TestOpenHIMCoreDownDoesNotStopTally starts Tally while the core refuses everything: Tally is
// ready and delivers, and registers once the core comes back.
func TestOpenHIMCoreDownDoesNotStopTally(t *testing.T) {
	core := openhimtest.NewServer()
	defer core.Close()
	core.SetDown(openhimtest.Unavailable)
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyWith(t, emu.URL, t.TempDir(), openhimYAML(core.URL))

	resp, err := http.Get(h.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d while the core is down", resp.StatusCode)
	}
	_, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, payload(t, "chw-2024-01.json"))
	h.waitStatus(body["transaction"].(string), "delivered")

	core.SetDown(openhimtest.Up)
	waitFor(t, "registration after the core came back", func() bool { return len(core.Registrations()) > 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOpenHIMConsoleConfigIsAppliedLive: an operator makes a target dry-run from the OpenHIM
// console; the next heartbeat brings the change and the next delivery is a dry run.
func TestOpenHIMConsoleConfigIsAppliedLive(t *testing.T) {
	core := openhimtest.NewServer()
	defer core.Close()
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyWith(t, emu.URL, t.TempDir(), openhimYAML(core.URL))
	waitFor(t, "registration", func() bool { return len(core.Registrations()) > 0 })

	if err := core.SetConfig("urn:mediator:tally", map[string]any{"dry_run_targets": []any{"hmis"}}); err != nil {
		t.Fatal(err)
	}
	// The config reaches Tally with a heartbeat (every second here): wait until a heartbeat
	// has been answered after the change, then post.
	beats := len(core.Heartbeats("urn:mediator:tally"))
	waitFor(t, "a heartbeat after the change", func() bool { return len(core.Heartbeats("urn:mediator:tally")) > beats+1 })

	_, body := h.post("/ingest/cht", "application/json", "Bearer "+chtToken, payload(t, "chw-2024-01.json"))
	h.waitStatus(body["transaction"].(string), "delivered")
	if n := emu.Store().Len(); n != 0 {
		t.Errorf("a dry-run target stored %d values", n)
	}
	var dry bool
	for _, r := range emu.Requests() {
		if r.Method == "POST" && r.Query.Get("dryRun") == "true" {
			dry = true
		}
	}
	if !dry {
		t.Error("no dry-run import reached the emulator")
	}
}
