package dhis2test

import (
	"net/http"
	"strings"
	"testing"
)

// Tests of POST /api/resourceTables/analytics and its task notifications
// (spec dhis2.md §3 task notifications, §12 "analytics-based sources need
// analytics tables to be run first").

// ResourceTableController: the job WebMessage "Initiated inMemoryAnalyticsJob"
// with the job configuration, and task notifications ending completed (the
// notification shape of spec dhis2.md §3).
func TestAnalyticsTablesJob(t *testing.T) {
	srv := epServer(t)
	r := epDo(t, srv, http.MethodPost, "/api/resourceTables/analytics?skipEvents=true&lastYears=2", "", "")
	epWantStatus(t, r, http.StatusOK)
	want := `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated inMemoryAnalyticsJob","response":{` +
		`"name":"inMemoryAnalyticsJob","id":"Job00000001","created":"2024-03-15T10:00:00.000","jobType":"ANALYTICS_TABLE",` +
		`"jobStatus":"SCHEDULED","jobParameters":{"lastYears":2,"skipTableTypes":["EVENT"],"skipPrograms":[],"skipResourceTables":false},` +
		`"relativeNotifierEndpoint":"/api/system/tasks/ANALYTICS_TABLE/Job00000001"}}`
	if string(r.raw) != want {
		t.Errorf("body\n got %s\nwant %s", r.raw, want)
	}
	if loc := r.header.Get("Location"); !strings.HasSuffix(loc, "/dhis/api/system/tasks/ANALYTICS_TABLE") {
		t.Errorf("Location = %q", loc)
	}
	notes := epGet(t, srv, "/api/system/tasks/ANALYTICS_TABLE/Job00000001").json(t).([]any)
	if len(notes) == 0 {
		t.Fatal("no notifications")
	}
	first := notes[0].(map[string]any) // newest first
	if first["completed"] != true || first["message"] != "Analytics tables updated: 00:00:00.000" || first["category"] != "ANALYTICS_TABLE" {
		t.Errorf("last notification = %v", first)
	}
	// a completed job does not block the next one
	epWantStatus(t, epDo(t, srv, http.MethodPut, "/api/resourceTables/analytics", "", ""), http.StatusOK)
}

// WithHeldJobs: the job waits for RunPendingJobs; meanwhile a second
// request is 409 "Job of type ANALYTICS_TABLE is already running".
func TestAnalyticsTablesHeld(t *testing.T) {
	srv := epServer(t, WithHeldJobs(), WithVersion("2.42"))
	r := epDo(t, srv, http.MethodPost, "/api/resourceTables/analytics", "", "")
	epWantStatus(t, r, http.StatusOK)
	resp := r.obj(t)["response"].(map[string]any)
	if resp["responseType"] != "JobConfiguration" {
		t.Errorf("2.42 response = %v", resp)
	}
	id := resp["id"].(string)
	if notes := epGet(t, srv, "/api/system/tasks/ANALYTICS_TABLE/"+id).json(t).([]any); len(notes) != 0 {
		t.Errorf("held job has notifications: %v", notes)
	}
	epWantError(t, epDo(t, srv, http.MethodPost, "/api/resourceTables/analytics", "", ""), http.StatusConflict, "",
		"Job of type ANALYTICS_TABLE is already running")
	if n := srv.RunPendingJobs(); n != 1 {
		t.Fatalf("RunPendingJobs ran %d jobs", n)
	}
	notes := epGet(t, srv, "/api/system/tasks/ANALYTICS_TABLE/"+id).json(t).([]any)
	if len(notes) == 0 || notes[0].(map[string]any)["completed"] != true {
		t.Errorf("notifications after run: %v", notes)
	}
	epWantStatus(t, epDo(t, srv, http.MethodPost, "/api/resourceTables/analytics", "", ""), http.StatusOK)
}

// ResourceTableController requires ALL or F_PERFORM_MAINTENANCE.
func TestAnalyticsTablesAuthority(t *testing.T) {
	srv := epServer(t)
	r := epDo(t, srv, http.MethodPost, "/api/resourceTables/analytics", "", "", epAs(SampleDistrictUser, SampleDistrictPassword))
	epWantError(t, r, http.StatusForbidden, "", "Access is denied")
}
