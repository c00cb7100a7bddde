package dhis2test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func notificationsOf(t *testing.T, r response) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(r.raw, &out); err != nil {
		t.Fatalf("notifications %s: %v", r.raw, err)
	}
	return out
}

// spec dhis2.md §3: async=true answers 200 with the job (message and shape per
// era), a Location header, notifications newest first ending with
// "Import done", and the bare summary at taskSummaries.
func TestAsyncImport(t *testing.T) {
	for _, ver := range []string{"2.38", "2.40", "2.41", "2.42", "2.43"} {
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, WithVersion(ver))
			r := postJSON(t, srv, "?async=true", okBody)
			if r.status != 200 || r.body["httpStatus"] != "OK" || r.body["status"] != "OK" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			resp := r.body["response"].(map[string]any)
			id := resp["id"].(string)
			v, _ := ParseVersion(ver)
			wantMsg, wantName := "Initiated dataValueImport", "dataValueImport"
			if v.Minor >= 41 {
				wantName = fmt.Sprintf("DATAVALUE_IMPORT (%d)", fixedNow.UnixMilli())
				wantMsg = "Initiated " + wantName
			}
			if r.body["message"] != wantMsg || resp["name"] != wantName || resp["jobType"] != "DATAVALUE_IMPORT" ||
				resp["relativeNotifierEndpoint"] != "/api/system/tasks/DATAVALUE_IMPORT/"+id || !IsUID(id) {
				t.Errorf("job response %s", r.raw)
			}
			if _, ok := resp["responseType"]; ok != (v.Minor >= 42) {
				t.Errorf("responseType present=%v: %s", ok, r.raw)
			}
			if loc := r.header.Get("Location"); !strings.HasSuffix(loc, "/dhis/api/system/tasks/DATAVALUE_IMPORT") {
				t.Errorf("Location %q", loc)
			}
			tasks := notificationsOf(t, do(t, srv, http.MethodGet, "/api/system/tasks/DATAVALUE_IMPORT/"+id, "", nil))
			if len(tasks) < 2 || tasks[0]["message"] != "Import done" || tasks[0]["completed"] != true ||
				tasks[len(tasks)-1]["message"] != "Process started" || tasks[0]["category"] != "DATAVALUE_IMPORT" {
				t.Errorf("notifications %v", tasks)
			}
			sr := do(t, srv, http.MethodGet, "/api/system/taskSummaries/DATAVALUE_IMPORT/"+id, "", nil)
			if sr.body["responseType"] != "ImportSummary" || sr.body["status"] != "SUCCESS" {
				t.Errorf("task summary %s", sr.raw)
			}
			if opts := sr.body["importOptions"].(map[string]any); opts["async"] != true {
				t.Errorf("importOptions.async %v", opts["async"])
			}
			if srv.Store().Len() != 1 {
				t.Errorf("%d values stored", srv.Store().Len())
			}
		})
	}
}

// spec dhis2.md §3: before completion taskSummaries answers 200 with an empty
// body (WithHeldJobs makes that state observable deterministically).
func TestAsyncHeldJob(t *testing.T) {
	srv := newTestServer(t, WithHeldJobs())
	id := postJSON(t, srv, "?async=true", okBody).body["response"].(map[string]any)["id"].(string)
	sr := do(t, srv, http.MethodGet, "/api/system/taskSummaries/DATAVALUE_IMPORT/"+id, "", nil)
	if sr.status != 200 || len(sr.raw) != 0 || srv.Store().Len() != 0 {
		t.Errorf("before run: %d %q, %d stored", sr.status, sr.raw, srv.Store().Len())
	}
	if n := srv.RunPendingJobs(); n != 1 {
		t.Errorf("ran %d jobs", n)
	}
	sr = do(t, srv, http.MethodGet, "/api/system/taskSummaries/DATAVALUE_IMPORT/"+id, "", nil)
	if sr.body["status"] != "SUCCESS" || srv.Store().Len() != 1 {
		t.Errorf("after run: %s", sr.raw)
	}
	all := do(t, srv, http.MethodGet, "/api/system/taskSummaries/DATAVALUE_IMPORT", "", nil)
	if _, ok := all.body[id]; !ok {
		t.Errorf("summaries map %s", all.raw)
	}
	if ids := srv.Jobs(); len(ids) != 1 || ids[0] != id {
		t.Errorf("jobs %v", ids)
	}
}

// conformance README §9: an empty async JSON file reports
// "No content to map due to end-of-input" and "Import complete with status
// ERROR, 0 created, …"; an empty ADX file "Data set import failed".
func TestAsyncEmptyFiles(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.41"))
	for _, c := range []struct{ ct, query, want string }{
		{"application/json", "?async=true&format=json", "No content to map due to end-of-input"},
		{"application/adx+xml", "?async=true&format=adx", "Data set import failed"},
	} {
		r := do(t, srv, http.MethodPost, "/api/dataValueSets"+c.query, c.ct, nil)
		id := r.body["response"].(map[string]any)["id"].(string)
		var msgs []string
		for _, n := range notificationsOf(t, do(t, srv, http.MethodGet, "/api/system/tasks/DATAVALUE_IMPORT/"+id, "", nil)) {
			msgs = append(msgs, n["message"].(string))
		}
		joined := strings.Join(msgs, "\n")
		if !strings.Contains(joined, "Import complete with status ERROR, 0 created, 0 updated, 0 deleted, 0 ignored") ||
			!strings.Contains(joined, c.want) {
			t.Errorf("%s notifications:\n%s", c.ct, joined)
		}
		sum := do(t, srv, http.MethodGet, "/api/system/taskSummaries/DATAVALUE_IMPORT/"+id, "", nil).body
		if sum["status"] != "ERROR" || !strings.Contains(sum["description"].(string), c.want) || counts(t, sum) != [4]int{} {
			t.Errorf("%s summary %v", c.ct, sum)
		}
	}
	if r := do(t, srv, http.MethodGet, "/api/system/tasks/DATAVALUE_IMPORT/NoSuchJob01", "", nil); string(r.raw) != "[]" {
		t.Errorf("unknown job: %s", r.raw)
	}
}
