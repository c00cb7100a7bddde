package dhis2test

import (
	"fmt"
	"net/http"
	"strconv"
)

// POST (or PUT) /api/resourceTables/analytics starts the analytics table job
// (ResourceTableController). The answer is the job WebMessage
//
//	{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated inMemoryAnalyticsJob",
//	 "response":{"name":"inMemoryAnalyticsJob","id":"Job00000001","created":"…","jobType":"ANALYTICS_TABLE",
//	             "jobStatus":"SCHEDULED","jobParameters":{…},"relativeNotifierEndpoint":"/api/system/tasks/ANALYTICS_TABLE/Job00000001"}}
//
// (responseType "JobConfiguration" first from 2.42, as for async imports)
// with Location <api>/system/tasks/ANALYTICS_TABLE. Progress is served by
// tasks.go at /api/system/tasks/ANALYTICS_TABLE/{id}: notifications, newest
// first, ending with "Analytics tables updated: 00:00:00.000" and
// completed:true. The job shares the async import machinery: it runs to
// completion before the response unless the server was made WithHeldJobs,
// in which case it waits for RunPendingJobs (or POST /__sim/jobs/run); while
// an analytics job has not completed, a second request gets 409 "Job of type
// ANALYTICS_TABLE is already running". Query parameters skipResourceTables,
// skipAggregate, skipEvents, skipEnrollment, skipOrgUnitOwnership and
// lastYears are echoed in jobParameters. The caller needs ALL or
// F_PERFORM_MAINTENANCE (403 otherwise).
//
// The emulator's analytics reads the fact table and the stored values live,
// so the job changes no data; it exists for clients that trigger and poll
// it.

const jobTypeAnalyticsTable = "ANALYTICS_TABLE"

func (s *Server) resTableRoutes() []route {
	return []route{
		{pattern: "POST /resourceTables/analytics", handler: s.handleAnalyticsTables},
		{pattern: "PUT /resourceTables/analytics", handler: s.handleAnalyticsTables},
	}
}

func jobCompleted(j *job) bool {
	for _, n := range j.notifications {
		if n.completed {
			return true
		}
	}
	return false
}

func (s *Server) handleAnalyticsTables(w http.ResponseWriter, r *http.Request) {
	c := callOf(r)
	if !c.user.HasAuthority("F_PERFORM_MAINTENANCE") {
		writeError(w, r, http.StatusForbidden, "Access is denied")
		return
	}
	q := queryOf(r)
	var skip []any
	for _, p := range []struct {
		param string
		types []string
	}{
		{"skipAggregate", []string{"DATA_VALUE", "COMPLETENESS", "COMPLETENESS_TARGET"}},
		{"skipEvents", []string{"EVENT"}},
		{"skipEnrollment", []string{"ENROLLMENT"}},
		{"skipOrgUnitOwnership", []string{"OWNERSHIP"}},
	} {
		if boolParam(q, p.param) {
			for _, t := range p.types {
				skip = append(skip, t)
			}
		}
	}
	params := orderedMap{}
	if v, err := strconv.Atoi(q.Get("lastYears")); err == nil {
		params = append(params, kv{"lastYears", v})
	}
	params = append(params, kv{"skipTableTypes", append([]any{}, skip...)}, kv{"skipPrograms", []any{}},
		kv{"skipResourceTables", boolParam(q, "skipResourceTables")})

	reg := s.jobs
	reg.mu.Lock()
	for _, id := range reg.order {
		if j := reg.jobs[id]; j.jobType == jobTypeAnalyticsTable && !jobCompleted(j) {
			reg.mu.Unlock()
			writeError(w, r, http.StatusConflict, "Job of type ANALYTICS_TABLE is already running")
			return
		}
	}
	reg.seq++
	j := &job{id: fmt.Sprintf("Job%08d", reg.seq), jobType: jobTypeAnalyticsTable, created: s.now(), user: c.user.Username}
	reg.jobs[j.id] = j
	reg.order = append(reg.order, j.id)
	skipResourceTables := boolParam(q, "skipResourceTables")
	j.run = func() {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		s.notify(j, "INFO", "Analytics table update process started", false)
		if !skipResourceTables {
			s.notify(j, "INFO", "Generating resource tables", false)
		}
		s.notify(j, "INFO", "Populating analytics tables", false)
		s.notify(j, "INFO", "Analytics tables updated: 00:00:00.000", true)
	}
	hold := reg.hold
	if hold {
		reg.pending = append(reg.pending, j)
	}
	reg.mu.Unlock()
	if !hold {
		j.run()
	}

	const name = "inMemoryAnalyticsJob"
	resp := orderedMap{}
	if s.version.Minor >= 42 {
		resp = append(resp, kv{"responseType", "JobConfiguration"})
	}
	resp = append(resp, kv{"name", name}, kv{"id", j.id}, kv{"created", j.created.Format("2006-01-02T15:04:05.000")},
		kv{"jobType", jobTypeAnalyticsTable}, kv{"jobStatus", "SCHEDULED"}, kv{"jobParameters", params},
		kv{"relativeNotifierEndpoint", "/api/system/tasks/" + jobTypeAnalyticsTable + "/" + j.id})
	w.Header().Set("Location", requestBase(r)+c.apiBase+"/system/tasks/"+jobTypeAnalyticsTable)
	writeBody(w, r, http.StatusOK, "webMessage", webMessage(http.StatusOK, "OK", "Initiated "+name, resp))
}
