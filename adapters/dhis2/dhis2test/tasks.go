package dhis2test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Asynchronous imports (spec dhis2.md §3). By default a job runs to
// completion before the initiating response is sent, so tests never race
// the job; WithHeldJobs queues jobs until RunPendingJobs.

const jobTypeDataValueImport = "DATAVALUE_IMPORT"

type notification struct {
	uid       string
	level     string
	time      time.Time
	message   string
	completed bool
}

type job struct {
	id            string
	jobType       string
	created       time.Time
	user          string
	notifications []notification
	sum           *summary
	run           func()
}

type jobRegistry struct {
	mu      sync.Mutex
	hold    bool
	seq     int
	jobs    map[string]*job
	order   []string
	pending []*job
}

func newJobRegistry(hold bool) *jobRegistry {
	return &jobRegistry{hold: hold, jobs: map[string]*job{}}
}

func (s *Server) taskRoutes() []route {
	return []route{
		{pattern: "GET /system/tasks/{jobType}/{id}", handler: s.handleTask},
		{pattern: "GET /system/tasks/{jobType}", handler: s.handleTasks},
		{pattern: "GET /system/taskSummaries/{jobType}/{id}", handler: s.handleTaskSummary},
		{pattern: "GET /system/taskSummaries/{jobType}", handler: s.handleTaskSummaries},
	}
}

func (s *Server) notify(j *job, level, msg string, completed bool) {
	j.notifications = append(j.notifications, notification{
		uid: fmt.Sprintf("%s%03d", j.id[:8], len(j.notifications)+1), level: level, time: s.now(), message: msg, completed: completed})
}

// startJob answers an async=true import and runs (or queues) the job.
func (s *Server) startJob(w http.ResponseWriter, r *http.Request, c *call, req importRequest, decodeErr error) {
	reg := s.jobs
	reg.mu.Lock()
	reg.seq++
	j := &job{id: fmt.Sprintf("Job%08d", reg.seq), jobType: jobTypeDataValueImport, created: s.now(), user: c.user.Username}
	reg.jobs[j.id] = j
	reg.order = append(reg.order, j.id)
	reg.mu.Unlock()

	j.run = func() {
		reg.mu.Lock()
		s.notify(j, "INFO", "Process started", false)
		s.notify(j, "INFO", "Importing data values", false)
		reg.mu.Unlock()
		var sum *summary
		if decodeErr != nil {
			sum = newSummary(req.opts)
			sum.status = "ERROR"
			sum.description = "The import process failed: " + decodeErr.Error()
		} else {
			sum = s.runImport(context.Background(), req)
		}
		reg.mu.Lock()
		defer reg.mu.Unlock()
		if sum.status == "ERROR" && sum.count == (importCount{}) {
			s.notify(j, "ERROR", "Process failed: "+failureText(sum), false)
		}
		s.notify(j, "INFO", fmt.Sprintf("Import complete with status %s, %d created, %d updated, %d deleted, %d ignored",
			sum.status, sum.count.imported, sum.count.updated, sum.count.deleted, sum.count.ignored), false)
		s.notify(j, "INFO", "Import done", true)
		j.sum = sum
	}

	reg.mu.Lock()
	hold := reg.hold
	if hold {
		reg.pending = append(reg.pending, j)
	}
	reg.mu.Unlock()
	if !hold {
		j.run()
	}

	v := s.version
	name, msg := "dataValueImport", "Initiated dataValueImport"
	if v.Minor >= 41 {
		name = fmt.Sprintf("%s (%d)", jobTypeDataValueImport, j.created.UnixMilli())
		msg = "Initiated " + name
	}
	resp := orderedMap{}
	if v.Minor >= 42 {
		resp = append(resp, kv{"responseType", "JobConfiguration"})
	}
	resp = append(resp, kv{"name", name}, kv{"id", j.id}, kv{"created", j.created.Format("2006-01-02T15:04:05.000")},
		kv{"jobType", jobTypeDataValueImport}, kv{"jobStatus", "SCHEDULED"},
		kv{"relativeNotifierEndpoint", "/api/system/tasks/" + jobTypeDataValueImport + "/" + j.id})
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("Location", scheme+"://"+r.Host+c.apiBase+"/system/tasks/"+jobTypeDataValueImport)
	writeBody(w, r, http.StatusOK, "webMessage", webMessage(http.StatusOK, "OK", msg, resp))
}

func failureText(sum *summary) string {
	const p = "The import process failed: "
	if len(sum.description) > len(p) && sum.description[:len(p)] == p {
		return sum.description[len(p):]
	}
	return sum.description
}

// RunPendingJobs runs every async job queued because of WithHeldJobs and
// returns how many ran.
func (s *Server) RunPendingJobs() int {
	s.jobs.mu.Lock()
	pending := s.jobs.pending
	s.jobs.pending = nil
	s.jobs.mu.Unlock()
	for _, j := range pending {
		j.run()
	}
	return len(pending)
}

// Jobs returns the ids of all async jobs, oldest first.
func (s *Server) Jobs() []string {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	return slices.Clone(s.jobs.order)
}

func renderNotifications(j *job) []any {
	out := make([]any, 0, len(j.notifications))
	for i := len(j.notifications) - 1; i >= 0; i-- { // newest first
		n := j.notifications[i]
		out = append(out, orderedMap{{"uid", n.uid}, {"level", n.level}, {"category", j.jobType},
			{"time", n.time.Format("2006-01-02T15:04:05.000-0700")}, {"message", n.message}, {"completed", n.completed}})
	}
	return out
}

func (s *Server) lookupJob(r *http.Request) *job {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	j := s.jobs.jobs[r.PathValue("id")]
	if j == nil || j.jobType != r.PathValue("jobType") {
		return nil
	}
	return j
}

// handleTask: GET /api/system/tasks/{jobType}/{id} → notifications, newest first.
func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) {
	j := s.lookupJob(r)
	if j == nil {
		writeBody(w, r, http.StatusOK, "", []any{})
		return
	}
	s.jobs.mu.Lock()
	body := renderNotifications(j)
	s.jobs.mu.Unlock()
	writeBody(w, r, http.StatusOK, "", body)
}

// handleTasks: GET /api/system/tasks/{jobType} → {jobId: notifications}.
func (s *Server) handleTasks(w http.ResponseWriter, r *http.Request) {
	s.jobs.mu.Lock()
	out := orderedMap{}
	for _, id := range s.jobs.order {
		if j := s.jobs.jobs[id]; j.jobType == r.PathValue("jobType") {
			out = append(out, kv{id, renderNotifications(j)})
		}
	}
	s.jobs.mu.Unlock()
	writeBody(w, r, http.StatusOK, "", out)
}

// handleTaskSummary: GET /api/system/taskSummaries/{jobType}/{id} → the bare
// ImportSummary, or 200 with an empty body while the job has not finished.
func (s *Server) handleTaskSummary(w http.ResponseWriter, r *http.Request) {
	j := s.lookupJob(r)
	s.jobs.mu.Lock()
	var sum *summary
	if j != nil {
		sum = j.sum
	}
	s.jobs.mu.Unlock()
	if sum == nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	writeBody(w, r, http.StatusOK, "importSummary", sum.render(s.version))
}

// handleTaskSummaries: GET /api/system/taskSummaries/{jobType} → {jobId: summary}.
func (s *Server) handleTaskSummaries(w http.ResponseWriter, r *http.Request) {
	s.jobs.mu.Lock()
	out := orderedMap{}
	for _, id := range s.jobs.order {
		if j := s.jobs.jobs[id]; j.jobType == r.PathValue("jobType") && j.sum != nil {
			out = append(out, kv{id, j.sum.render(s.version)})
		}
	}
	s.jobs.mu.Unlock()
	writeBody(w, r, http.StatusOK, "", out)
}
