package mediator_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// getAs reads path with Basic credentials and returns the status and the raw body.
func (h *harness) getAs(path, user, pass string) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.base+path, nil)
	req.SetBasicAuth(user, pass)
	return h.doRaw(req)
}

// doRaw sends a request and returns the status and the raw body.
func (h *harness) doRaw(req *http.Request) (int, []byte) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// TestAsyncImportIsAJobToPoll: async=true is answered at once with DHIS2's job reference
// (2.41: "Initiated DATAVALUE_IMPORT (<ms>)", relativeNotifierEndpoint, Location; spec
// dhis2.md §3); the task endpoint lists notifications newest first and ends with "Import
// done", completed; the task summary is the bare ImportSummary of what the target made of
// the values, with the values refused at ingest; only the source that posted may poll.
func TestAsyncImportIsAJobToPoll(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.41"))
	defer emu.Close()
	h := startTally(t, emu.URL, t.TempDir())
	req, _ := http.NewRequest("POST", h.base+"/api/dataValueSets?async=true&idScheme=CODE", strings.NewReader(oneBadPeriod))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("exchange", "exchange-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var wm struct {
		Status   string `json:"status"`
		Message  string `json:"message"`
		Response struct {
			ID, JobType, RelativeNotifierEndpoint string
		} `json:"response"`
	}
	if err := json.Unmarshal(raw, &wm); err != nil || resp.StatusCode != 200 || wm.Status != "OK" ||
		!strings.HasPrefix(wm.Message, "Initiated DATAVALUE_IMPORT (") || len(wm.Response.ID) != 11 ||
		wm.Response.RelativeNotifierEndpoint != "/api/system/tasks/DATAVALUE_IMPORT/"+wm.Response.ID ||
		resp.Header.Get("Location") != "/api/system/tasks/DATAVALUE_IMPORT" {
		t.Fatalf("HTTP %d %s", resp.StatusCode, raw)
	}

	var notes []struct {
		Message   string `json:"message"`
		Completed bool   `json:"completed"`
		Category  string `json:"category"`
	}
	waitUntil(t, 10*time.Second, "the job to complete", func() bool {
		code, body := h.getAs(wm.Response.RelativeNotifierEndpoint, "exchange", "exchange-secret")
		if code != 200 || json.Unmarshal(body, &notes) != nil {
			t.Fatalf("tasks: HTTP %d %s", code, body)
		}
		return len(notes) > 0 && notes[0].Completed
	})
	if notes[0].Message != "Import done" || notes[0].Category != "DATAVALUE_IMPORT" || len(notes) != 2 {
		t.Errorf("notifications %+v", notes)
	}
	code, body := h.getAs("/api/system/taskSummaries/DATAVALUE_IMPORT/"+wm.Response.ID, "exchange", "exchange-secret")
	var sum map[string]any
	if code != 200 || json.Unmarshal(body, &sum) != nil || sum["responseType"] != "ImportSummary" || sum["status"] != "WARNING" ||
		fmt.Sprint(sum["importCount"]) != "map[deleted:0 ignored:1 imported:2 updated:0]" || fmt.Sprint(sum["rejectedIndexes"]) != "[1]" {
		t.Errorf("task summary: HTTP %d %s", code, body)
	}
	if code, _ := h.getAs(wm.Response.RelativeNotifierEndpoint, "exchange", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong credentials: HTTP %d", code)
	}
	other, _ := http.NewRequest("GET", h.base+wm.Response.RelativeNotifierEndpoint, nil)
	other.Header.Set("Authorization", "Bearer "+chtToken)
	if code, _ := h.do(other); code != http.StatusNotFound {
		t.Errorf("another source polled the job: HTTP %d", code)
	}

	// An empty payload's job is done at once: SUCCESS, zero counts.
	req, _ = http.NewRequest("POST", h.base+"/api/dataValueSets?async=true", strings.NewReader(`{"dataValues":[]}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("exchange", "exchange-secret")
	_, empty := h.do(req)
	id := empty["response"].(map[string]any)["id"].(string)
	code, body = h.getAs("/api/system/taskSummaries/DATAVALUE_IMPORT/"+id, "exchange", "exchange-secret")
	if code != 200 || !strings.Contains(string(body), `"status":"SUCCESS"`) {
		t.Errorf("empty payload's task summary: HTTP %d %s", code, body)
	}
}
