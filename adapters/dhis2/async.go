package dhis2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// maxPollFailures is how many transient failures in a row polling tolerates before it
// gives up (a proxy blip must not throw away a job that is running fine).
const maxPollFailures = 3

// jobTypeDataValueImport is the job type of an asynchronous data value import (§3).
const jobTypeDataValueImport = "DATAVALUE_IMPORT"

// wireJob is the job an async import answers with: inside a WebMessage (2.38+: name
// "dataValueImport", from 2.41 "DATAVALUE_IMPORT (<ms>)", from 2.42 with responseType
// "JobConfiguration") or bare (§3).
type wireJob struct {
	ResponseType             string `json:"responseType"`
	ID                       string `json:"id"`
	Name                     string `json:"name"`
	JobType                  string `json:"jobType"`
	RelativeNotifierEndpoint string `json:"relativeNotifierEndpoint"`
}

// minRelease is the oldest release whose async answer looks like j (§3): responseType
// JobConfiguration from 2.42, a job name "DATAVALUE_IMPORT (<ms>)" from 2.41.
func (j wireJob) minRelease() int {
	switch {
	case j.ResponseType == "JobConfiguration":
		return 42
	case strings.HasPrefix(j.Name, jobTypeDataValueImport+" ("):
		return 41
	}
	return 0
}

// parseJobStart finds the job id in the answer that started a job (an async import, an
// analytics table run). A job without a jobType is taken to be of defaultType.
func parseJobStart(body []byte, defaultType string) (j wireJob, wrapped bool, ok bool) {
	raw := bytes.TrimSpace(body)
	if wm := decodeWebMessage(raw); wm != nil {
		raw, wrapped = wm.Response, true
	}
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &j) != nil {
		return wireJob{}, wrapped, false
	}
	if j.ID == "" && j.RelativeNotifierEndpoint != "" {
		j.ID = path.Base(strings.TrimRight(j.RelativeNotifierEndpoint, "/"))
	}
	if j.JobType == "" {
		j.JobType = defaultType
	}
	return j, wrapped, j.ID != "" && j.ID != "." && j.ID != "/"
}

// wireNote is one notification of /api/system/tasks/{type}/{id} (§3).
type wireNote struct {
	Level     string `json:"level"`
	Message   string `json:"message"`
	Completed bool   `json:"completed"`
}

// awaitJob polls the job an async import started until it completes, then reads its
// summary. It is bounded by Config.MaxJobWait and ctx.
func (c *Client) awaitJob(ctx context.Context, start *response) (*ImportResult, error) {
	const op = "awaiting import job"
	j, wrapped, ok := parseJobStart(start.body, jobTypeDataValueImport)
	if !ok {
		e := c.unexpectedBody(op, start)
		if isJSON(start) {
			e.Message = "async import answered without a job id"
		}
		return nil, e
	}
	job := &Job{ID: j.ID, Type: j.JobType}
	w := c.newJobWait(op, "import job", 0, 0)
	escaped := url.PathEscape(job.Type) + "/" + url.PathEscape(job.ID)
	c.log.LogAttrs(ctx, slog.LevelDebug, "dhis2 import job started", slog.String("job", job.ID))

	// Phase 1: wait until a notification says completed.
	if err := c.waitNotes(ctx, w, job); err != nil {
		return nil, err
	}

	// Phase 2: the summary can trail the final notification; empty means "not yet".
	fails := 0
	for {
		res, err := c.roundTrip(ctx, request{op: "reading import job summary", method: http.MethodGet, endpoint: "/system/taskSummaries/" + escaped})
		if err == nil && res.status != http.StatusOK {
			err = c.statusError("reading import job summary", res, nil)
		}
		if err != nil {
			if stop := c.pollFailed(err, job, &fails); stop != nil {
				return nil, stop
			}
		} else {
			fails = 0
			if !emptySummary(res.body) {
				return c.importOutcome(op, res, eraHints{async: true, bareStart: !wrapped, startFrom: j.minRelease()}, job)
			}
			if job.Failed {
				e := &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status, JobID: job.ID,
					Message: "import job failed: " + c.redact(job.LastMessage)}
				if looksBusy(job.LastMessage) {
					e.Kind = KindTransient
				}
				return nil, e
			}
		}
		if err := c.pause(ctx, w, job); err != nil {
			if e, ok := err.(*Error); ok && e.Kind == KindTransient {
				e.Message = "import job completed but DHIS2 kept no summary (DHIS2-7881?); the outcome is unknown"
			}
			return nil, err
		}
	}
}

// jobWait is one wait for a job: what it is called and its bounds.
type jobWait struct {
	op       string // what the caller is doing ("awaiting import job")
	noun     string // how messages name the job ("import job")
	interval time.Duration
	limit    time.Duration
	deadline time.Time
}

// newJobWait starts the clock of a wait. Zero interval and limit mean Config.PollInterval
// and Config.MaxJobWait.
func (c *Client) newJobWait(op, noun string, interval, limit time.Duration) *jobWait {
	if interval <= 0 {
		interval = c.pollInterval
	}
	if limit <= 0 {
		limit = c.maxJobWait
	}
	return &jobWait{op: op, noun: noun, interval: interval, limit: limit, deadline: time.Now().Add(limit)}
}

// waitNotes polls /api/system/tasks/{type}/{id} until a notification says the job
// completed. It is bounded by the wait's limit and ctx.
func (c *Client) waitNotes(ctx context.Context, w *jobWait, job *Job) error {
	endpoint := "/system/tasks/" + url.PathEscape(job.Type) + "/" + url.PathEscape(job.ID)
	pollOp := "polling " + w.noun
	fails := 0
	for {
		res, err := c.roundTrip(ctx, request{op: pollOp, method: http.MethodGet, endpoint: endpoint})
		job.Polls++
		if err == nil {
			err = c.readNotes(pollOp, res, job)
		}
		if err != nil {
			if stop := c.pollFailed(err, job, &fails); stop != nil {
				return stop
			}
		} else {
			fails = 0
			if job.completed {
				return nil
			}
		}
		if err := c.pause(ctx, w, job); err != nil {
			return err
		}
	}
}

// readNotes reads a task notification list into job.
func (c *Client) readNotes(op string, res *response, job *Job) error {
	if res.status == http.StatusNotFound {
		e := c.statusError(op, res, nil)
		e.Kind = KindTransient
		e.Message = "DHIS2 does not know the job (restarted?)"
		return e
	}
	if res.status != http.StatusOK {
		return c.statusError(op, res, nil)
	}
	body := bytes.TrimSpace(res.body)
	if len(body) == 0 || string(body) == "null" {
		return nil // no notification yet
	}
	var notes []wireNote
	if err := json.Unmarshal(body, &notes); err != nil {
		e := c.unexpectedBody(op, res)
		if e.Kind == KindPermanent {
			e.Message = "the answer is not a list of task notifications; check BaseURL"
		}
		return e
	}
	for i, n := range notes { // newest first
		if i == 0 {
			job.LastMessage = n.Message
		}
		if strings.EqualFold(n.Level, "ERROR") {
			job.Failed = true
		}
		if n.Completed {
			job.completed = true
		}
	}
	if job.completed && job.LastMessage == "" {
		job.LastMessage = "completed"
	}
	return nil
}

// pollFailed decides whether a failed poll ends the wait: permanent failures do, and
// transient ones after maxPollFailures in a row. It returns the error to give up with.
func (c *Client) pollFailed(err error, job *Job, fails *int) error {
	e, ok := err.(*Error)
	if !ok {
		return err // the caller stopped
	}
	e.JobID = job.ID
	if e.Kind == KindTransient {
		*fails++
		if *fails < maxPollFailures {
			return nil
		}
	}
	return e
}

// pause waits the poll interval, or until ctx ends, or reports that the wait's limit is
// used up.
func (c *Client) pause(ctx context.Context, w *jobWait, job *Job) error {
	left := time.Until(w.deadline)
	if left <= 0 {
		return &Error{Kind: KindTransient, Op: w.op, JobID: job.ID,
			Message: fmt.Sprintf("%s still running after %s (%d polls)", w.noun, w.limit, job.Polls)}
	}
	t := time.NewTimer(min(w.interval, left))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return callerDone(ctx, w.op)
	case <-t.C:
		return nil
	}
}

// emptySummary reports whether a task summary body holds nothing yet.
func emptySummary(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null" || string(b) == "{}"
}
