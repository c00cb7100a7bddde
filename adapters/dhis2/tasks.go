package dhis2

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// JobTypeAnalyticsTable is the job type of an analytics table run.
const JobTypeAnalyticsTable = "ANALYTICS_TABLE"

// AnalyticsTablesOptions are the parameters of POST /api/resourceTables/analytics. The
// zero value regenerates every table for every year, which can take hours on a large
// instance; a scheduled exchange normally wants LastYears and the Skip flags it can afford.
// Parameters a server does not know are ignored by it.
type AnalyticsTablesOptions struct {
	// LastYears limits the run to the data of this many last years (0: all years).
	LastYears int
	// SkipResourceTables skips regenerating resource tables (org unit structure,
	// category option combo names...); safe when metadata has not changed.
	SkipResourceTables bool
	// SkipAggregate skips aggregate data and completeness tables.
	SkipAggregate bool
	// SkipEvents skips event tables; SkipEnrollment enrollment tables. Program
	// indicators over events or enrollments need them.
	SkipEvents     bool
	SkipEnrollment bool
	// SkipValidationResult, SkipTrackedEntities (2.41+), SkipOrgUnitOwnership and
	// SkipOutliers (2.41+) skip the matching tables.
	SkipValidationResult bool
	SkipTrackedEntities  bool
	SkipOrgUnitOwnership bool
	SkipOutliers         bool
}

func (o AnalyticsTablesOptions) query() (url.Values, error) {
	q := url.Values{}
	if o.LastYears < 0 {
		return nil, fmt.Errorf("lastYears is negative")
	}
	if o.LastYears > 0 {
		q.Set("lastYears", strconv.Itoa(o.LastYears))
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"skipResourceTables", o.SkipResourceTables},
		{"skipAggregate", o.SkipAggregate},
		{"skipEvents", o.SkipEvents},
		{"skipEnrollment", o.SkipEnrollment},
		{"skipValidationResult", o.SkipValidationResult},
		{"skipTrackedEntities", o.SkipTrackedEntities},
		{"skipOrgUnitOwnership", o.SkipOrgUnitOwnership},
		{"skipOutliers", o.SkipOutliers},
	} {
		if f.set {
			q.Set(f.name, "true")
		}
	}
	return q, nil
}

// StartAnalyticsTables starts an analytics table run (POST /api/resourceTables/analytics,
// authority F_PERFORM_MAINTENANCE) and returns its job; WaitTask waits for it. Analytics
// answers (AnalyticsDataValueSet, aggregate data exchanges) only see data as of the last
// completed run.
//
// A 409 is transient: DHIS2 refuses to start a job while one of the same type runs, and
// a later attempt can succeed (a reading of DHIS2's job scheduler, not a documented
// contract).
func (c *Client) StartAnalyticsTables(ctx context.Context, opts AnalyticsTablesOptions) (*Job, error) {
	const op = "starting analytics tables"
	q, err := opts.query()
	if err != nil {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "invalid options", Err: err}
	}
	res, err := c.roundTrip(ctx, request{op: op, method: http.MethodPost, endpoint: "/resourceTables/analytics", query: q})
	if err != nil {
		return nil, err
	}
	if res.status/100 != 2 {
		e := c.statusError(op, res, nil)
		if res.status == http.StatusConflict {
			e.Kind = KindTransient
			if e.Message == "" {
				e.Message = "DHIS2 refused to start the job (one is running?)"
			}
		}
		return nil, e
	}
	j, _, ok := parseJobStart(res.body, JobTypeAnalyticsTable)
	if !ok {
		e := c.unexpectedBody(op, res)
		if isJSON(res) {
			e.Message = "the answer names no job"
		}
		return nil, e
	}
	return &Job{ID: j.ID, Type: j.JobType}, nil
}

// WaitOptions bound a wait for a job. Zero fields take the client's Config.PollInterval
// and Config.MaxJobWait.
type WaitOptions struct {
	// Interval is the pause between two reads of the job's notifications.
	Interval time.Duration
	// MaxWait bounds the whole wait; an analytics run on a large instance may need hours.
	MaxWait time.Duration
}

// WaitTask polls GET /api/system/tasks/{jobType}/{id} until a notification says the job
// completed, and returns the job with its last message and the number of polls.
//
// The wait is bounded by opts.MaxWait (a transient *Error when used up: the job may still
// finish) and by ctx (its error, unclassified). A job that reported a notification at
// level ERROR comes back with a permanent *Error (transient when the message says DHIS2's
// database was busy) along with the job. While polling, up to two transient failures in a
// row are tolerated, and a 404 (the server forgot the job: restarted?) is transient.
func (c *Client) WaitTask(ctx context.Context, jobType, id string, opts WaitOptions) (*Job, error) {
	jobType, id = strings.TrimSpace(jobType), strings.TrimSpace(id)
	op := "awaiting " + jobType + " job"
	switch {
	case jobType == "" || id == "":
		return nil, &Error{Kind: KindPermanent, Op: "awaiting job", Message: "job type and id are required"}
	case opts.Interval < 0 || opts.MaxWait < 0:
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "negative wait options"}
	}
	job := &Job{ID: id, Type: jobType}
	w := c.newJobWait(op, jobType+" job", opts.Interval, opts.MaxWait)
	if err := c.waitNotes(ctx, w, job); err != nil {
		return nil, err
	}
	job.LastMessage = c.redact(job.LastMessage)
	if job.Failed {
		e := &Error{Kind: KindPermanent, Op: op, JobID: job.ID, Message: "job failed: " + job.LastMessage}
		if looksBusy(job.LastMessage) {
			e.Kind = KindTransient
		}
		return job, e
	}
	return job, nil
}
