package dhis2

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	tasksPath     = "/api/system/tasks/DATAVALUE_IMPORT/" + jobID
	summariesPath = "/api/system/taskSummaries/DATAVALUE_IMPORT/" + jobID
)

// TestAsyncImport starts an import job in each era's shape, polls it through its
// notifications, and reads the summary that may trail the final notification.
func TestAsyncImport(t *testing.T) {
	type want struct {
		kind     Kind // 0: success
		era      Era
		status   ImportStatus
		rejected []int
		msg      string
		polls    int
		jobID    bool // the error names the job
	}
	ok := func(code int, body string) http.HandlerFunc { return reply(code, jsonCT, body) }
	tests := []struct {
		name      string
		start     http.HandlerFunc
		tasks     http.HandlerFunc
		summaries http.HandlerFunc
		cfg       func(*Config)
		want      want
	}{
		{
			name:      "2.38–2.40 start, running, done, summary trails",
			start:     ok(200, asyncStart240),
			tasks:     sequence(ok(200, notesNone), ok(200, notesRunning), ok(200, notesDone)),
			summaries: sequence(ok(200, ""), ok(200, taskSummaryWarning)),
			want:      want{era: EraUnknown, status: StatusWarning, rejected: []int{2}, polls: 3},
		},
		{
			name:      "2.41 job name with epoch",
			start:     ok(200, asyncStart241),
			tasks:     ok(200, notesDone),
			summaries: ok(200, taskSummaryWarning),
			want:      want{era: Era238, status: StatusWarning, rejected: []int{2}, polls: 1},
		},
		{
			name:      "2.42 JobConfiguration response type",
			start:     ok(200, asyncStart242),
			tasks:     sequence(ok(200, notesRunning), ok(200, notesDone)),
			summaries: ok(200, taskSummaryWarning),
			want:      want{era: Era238, status: StatusWarning, rejected: []int{2}, polls: 2},
		},
		{
			name:      "id only in relativeNotifierEndpoint",
			start:     ok(200, asyncStartEndpointOnly),
			tasks:     ok(200, notesDone),
			summaries: ok(200, taskSummaryWarning),
			want:      want{status: StatusWarning, rejected: []int{2}, polls: 1},
		},
		{
			name:  "server ignored async and answered the summary",
			start: ok(409, bodyA),
			want:  want{era: Era238, status: StatusWarning, rejected: []int{2}},
		},
		{
			name:      "one proxy blip while polling is tolerated",
			start:     ok(200, asyncStart240),
			tasks:     sequence(reply(502, "text/html", body502Proxy), ok(200, notesDone)),
			summaries: ok(200, taskSummaryWarning),
			want:      want{status: StatusWarning, rejected: []int{2}, polls: 2},
		},
		{
			name:      "summary ERROR",
			start:     ok(200, asyncStart240),
			tasks:     ok(200, notesDone),
			summaries: ok(200, taskSummaryError),
			want:      want{kind: KindPermanent, msg: "Data set not found", jobID: true},
		},
		{
			name:      "job failed without a summary",
			start:     ok(200, asyncStart240),
			tasks:     ok(200, notesFailed),
			summaries: ok(200, ""),
			want:      want{kind: KindPermanent, msg: "Process failed: Unexpected end-of-input", jobID: true},
		},
		{
			name:  "job never completes",
			start: ok(200, asyncStart240),
			tasks: ok(200, notesRunning),
			cfg:   func(c *Config) { c.MaxJobWait = 20 * time.Millisecond },
			want:  want{kind: KindTransient, msg: "still running", jobID: true},
		},
		{
			name:      "completed job never gets a summary",
			start:     ok(200, asyncStart240),
			tasks:     ok(200, notesDone),
			summaries: ok(200, ""),
			cfg:       func(c *Config) { c.MaxJobWait = 20 * time.Millisecond },
			want:      want{kind: KindTransient, msg: "kept no summary", jobID: true},
		},
		{
			name:  "polling keeps failing",
			start: ok(200, asyncStart240),
			tasks: reply(503, "text/html", "<html><head><title>503</title></head></html>"),
			want:  want{kind: KindTransient, msg: "503", jobID: true},
		},
		{
			name:  "credentials refused while polling",
			start: ok(200, asyncStart240),
			tasks: ok(401, body401JSON),
			want:  want{kind: KindPermanent, msg: "Unauthorized", jobID: true},
		},
		{
			name:  "job unknown to the server",
			start: ok(200, asyncStart240),
			tasks: ok(404, ""),
			want:  want{kind: KindTransient, msg: "does not know the job", jobID: true},
		},
		{
			name:  "start refused",
			start: ok(409, body409NotSummary),
			want:  want{kind: KindPermanent, msg: "Ad-hoc job creation failed"},
		},
		{
			name:  "start answered by a proxy page",
			start: reply(200, "text/html", "<html><head><title>Please wait</title></head></html>"),
			want:  want{kind: KindTransient, msg: "Please wait"},
		},
		{
			name:  "start without a job id",
			start: ok(200, `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated"}`),
			want:  want{kind: KindPermanent, msg: "without a job id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST /api/dataValueSets", tt.start)
			if tt.tasks != nil {
				f.handle("GET "+tasksPath, tt.tasks)
			}
			if tt.summaries != nil {
				f.handle("GET "+summariesPath, tt.summaries)
			}
			mods := []func(*Config){}
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			c := newTestClient(t, f.url(), mods...)
			r, err := c.ImportDataValues(context.Background(), jsonPayload(), ImportOptions{Async: true, DryRun: true})

			reqs := f.requests()
			if q := reqs[0].Query; q.Get("async") != "true" || q.Get("dryRun") != "true" {
				t.Errorf("start query = %v", q)
			}
			for _, rq := range reqs[1:] {
				if rq.Method != http.MethodGet || rq.Header.Get("Authorization") == "" {
					t.Errorf("poll %s %s without credentials", rq.Method, rq.Path)
				}
			}

			if tt.want.kind == 0 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if r.Era != tt.want.era {
					t.Errorf("Era = %v, want %v", r.Era, tt.want.era)
				}
				if r.Status != tt.want.status || !reflect.DeepEqual(r.Rejected, tt.want.rejected) || !r.IndexesKnown {
					t.Errorf("result: status %q rejected %v known %v", r.Status, r.Rejected, r.IndexesKnown)
				}
				if tt.want.polls > 0 {
					if r.Job == nil || r.Job.ID != jobID || r.Job.Type != "DATAVALUE_IMPORT" || r.Job.Polls != tt.want.polls {
						t.Errorf("Job = %+v, want %d polls", r.Job, tt.want.polls)
					} else if r.Job.LastMessage != "Import done" {
						t.Errorf("LastMessage = %q", r.Job.LastMessage)
					}
				}
				return
			}
			e := wantKind(t, err, tt.want.kind)
			if !strings.Contains(e.Error(), tt.want.msg) {
				t.Errorf("err = %q, want it to mention %q", e, tt.want.msg)
			}
			if (e.JobID == jobID) != tt.want.jobID {
				t.Errorf("JobID = %q", e.JobID)
			}
		})
	}
}

// TestAsyncCallerCancels: the caller's cancellation ends polling at once, unclassified.
func TestAsyncCallerCancels(t *testing.T) {
	f := newFake(t)
	polled := make(chan struct{}, 1)
	f.handle("POST /api/dataValueSets", reply(200, jsonCT, asyncStart240))
	f.handle("GET "+tasksPath, func(w http.ResponseWriter, r *http.Request) {
		select {
		case polled <- struct{}{}:
		default:
		}
		reply(200, jsonCT, notesRunning)(w, r)
	})
	c := newTestClient(t, f.url(), func(c *Config) { c.PollInterval = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-polled; cancel() }()
	_, err := c.ImportDataValues(ctx, jsonPayload(), ImportOptions{Async: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	unclassified(t, err)
}
