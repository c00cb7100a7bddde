package dhis2

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	analyticsJobID = "BFa3jDsbtdO"
	analyticsTasks = "/api/system/tasks/ANALYTICS_TABLE/" + analyticsJobID

	// analyticsStart240: jobConfigurationReport for an analytics run (2.38–2.41 shape).
	analyticsStart240 = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated inMemoryAnalyticsJob",
 "response":{"name":"inMemoryAnalyticsJob","id":"` + analyticsJobID + `","created":"2024-03-15T02:00:00.000","jobType":"ANALYTICS_TABLE",
  "jobStatus":"RUNNING","jobParameters":{"lastYears":2,"skipResourceTables":true},
  "relativeNotifierEndpoint":"/api/system/tasks/ANALYTICS_TABLE/` + analyticsJobID + `"}}`
	// analyticsStart242: 2.42+ adds responseType; the job type is left out here to check
	// the default.
	analyticsStart242 = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated ANALYTICS_TABLE (1712345678901)",
 "response":{"responseType":"JobConfiguration","name":"ANALYTICS_TABLE (1712345678901)","id":"` + analyticsJobID + `"}}`

	analyticsRunning = `[{"uid":"a2","level":"INFO","category":"ANALYTICS_TABLE","time":"2024-03-15T02:00:05.000","message":"Populating analytics tables","completed":false},
 {"uid":"a1","level":"INFO","category":"ANALYTICS_TABLE","time":"2024-03-15T02:00:00.000","message":"Analytics table update process started","completed":false}]`
	analyticsDone = `[{"uid":"a3","level":"INFO","category":"ANALYTICS_TABLE","time":"2024-03-15T02:05:00.000","message":"Analytics tables updated: 00:05:00.123","completed":true},
 {"uid":"a2","level":"INFO","category":"ANALYTICS_TABLE","time":"2024-03-15T02:00:05.000","message":"Populating analytics tables","completed":false}]`
	analyticsFailed = `[{"uid":"a3","level":"ERROR","category":"ANALYTICS_TABLE","time":"2024-03-15T02:01:00.000","message":"Process failed: relation \"analytics_temp_2024\" does not exist","completed":true}]`
	analyticsBusy   = `[{"uid":"a3","level":"ERROR","category":"ANALYTICS_TABLE","time":"2024-03-15T02:01:00.000","message":"Process failed: deadlock detected","completed":true}]`
)

func TestStartAnalyticsTables(t *testing.T) {
	tests := []struct {
		name    string
		opts    AnalyticsTablesOptions
		handler http.HandlerFunc
		query   url.Values
		kind    Kind
		msg     string
	}{
		{name: "every table", handler: reply(200, jsonCT, analyticsStart240), query: url.Values{}},
		{
			name: "last years, skips",
			opts: AnalyticsTablesOptions{LastYears: 2, SkipResourceTables: true, SkipEvents: true, SkipEnrollment: true,
				SkipTrackedEntities: true, SkipOrgUnitOwnership: true, SkipOutliers: true, SkipValidationResult: true},
			handler: reply(200, jsonCT, analyticsStart242),
			query: url.Values{"lastYears": {"2"}, "skipResourceTables": {"true"}, "skipEvents": {"true"}, "skipEnrollment": {"true"},
				"skipTrackedEntities": {"true"}, "skipOrgUnitOwnership": {"true"}, "skipOutliers": {"true"}, "skipValidationResult": {"true"}},
		},
		{name: "skip aggregate", opts: AnalyticsTablesOptions{SkipAggregate: true}, handler: reply(200, jsonCT, analyticsStart240),
			query: url.Values{"skipAggregate": {"true"}}},
		{name: "job running", handler: reply(409, jsonCT, `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR","message":"Job of type ANALYTICS_TABLE is already running"}`),
			query: url.Values{}, kind: KindTransient, msg: "already running"},
		{name: "no authority", handler: reply(403, jsonCT, body403JSON), query: url.Values{}, kind: KindPermanent, msg: "E1006"},
		{name: "no job in the answer", handler: reply(200, jsonCT, `{"httpStatus":"OK","httpStatusCode":200,"status":"OK"}`),
			query: url.Values{}, kind: KindPermanent, msg: "names no job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST /api/resourceTables/analytics", tt.handler)
			c := newTestClient(t, f.url())
			job, err := c.StartAnalyticsTables(context.Background(), tt.opts)
			if q := f.requests()[0].Query; !reflect.DeepEqual(q, tt.query) {
				t.Errorf("query = %v, want %v", q, tt.query)
			}
			if tt.kind != 0 {
				e := wantKind(t, err, tt.kind)
				if !strings.Contains(e.Error(), tt.msg) {
					t.Errorf("err = %q, want it to mention %q", e, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if job.ID != analyticsJobID || job.Type != JobTypeAnalyticsTable {
				t.Errorf("job = %+v", job)
			}
		})
	}
	c := newTestClient(t, "http://127.0.0.1:1/hmis")
	_, err := c.StartAnalyticsTables(context.Background(), AnalyticsTablesOptions{LastYears: -1})
	wantKind(t, err, KindPermanent)
}

func TestWaitTask(t *testing.T) {
	tests := []struct {
		name  string
		tasks http.HandlerFunc
		opts  WaitOptions
		polls int
		last  string
		kind  Kind
		msg   string
		job   bool // a job comes back with the error
	}{
		{name: "runs then completes", tasks: sequence(reply(200, jsonCT, notesNone), reply(200, jsonCT, analyticsRunning), reply(200, jsonCT, analyticsDone)),
			polls: 3, last: "Analytics tables updated: 00:05:00.123"},
		{name: "empty body before the first notification", tasks: sequence(reply(200, jsonCT, ""), reply(200, jsonCT, analyticsDone)), polls: 2},
		{name: "a proxy blip is tolerated", tasks: sequence(reply(502, "text/html", body502Proxy), reply(200, jsonCT, analyticsDone)), polls: 2},
		{name: "job failed", tasks: reply(200, jsonCT, analyticsFailed), kind: KindPermanent, msg: "analytics_temp_2024", job: true},
		{name: "job failed, database busy", tasks: reply(200, jsonCT, analyticsBusy), kind: KindTransient, msg: "deadlock", job: true},
		{name: "never completes", tasks: reply(200, jsonCT, analyticsRunning), opts: WaitOptions{MaxWait: 20 * time.Millisecond},
			kind: KindTransient, msg: "ANALYTICS_TABLE job still running after 20ms"},
		{name: "server forgot the job", tasks: reply(404, jsonCT, `{"httpStatus":"Not Found","httpStatusCode":404,"status":"ERROR"}`),
			kind: KindTransient, msg: "does not know the job"},
		{name: "credentials refused", tasks: reply(401, jsonCT, body401JSON), kind: KindPermanent, msg: "Unauthorized"},
		{name: "not a notification list", tasks: reply(200, jsonCT, `{"status":"OK"}`), kind: KindPermanent, msg: "not a list of task notifications"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET "+analyticsTasks, tt.tasks)
			c := newTestClient(t, f.url(), func(c *Config) { c.PollInterval = time.Hour }) // opts override it
			opts := tt.opts
			opts.Interval = time.Millisecond
			job, err := c.WaitTask(context.Background(), JobTypeAnalyticsTable, analyticsJobID, opts)
			if tt.kind != 0 {
				e := wantKind(t, err, tt.kind)
				if !strings.Contains(e.Error(), tt.msg) || e.JobID != analyticsJobID {
					t.Errorf("err = %q (job %q), want it to mention %q", e, e.JobID, tt.msg)
				}
				if (job != nil) != tt.job {
					t.Errorf("job = %+v", job)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if job.ID != analyticsJobID || job.Type != JobTypeAnalyticsTable || job.Polls != tt.polls || job.Failed {
				t.Errorf("job = %+v, want %d polls", job, tt.polls)
			}
			if tt.last != "" && job.LastMessage != tt.last {
				t.Errorf("LastMessage = %q", job.LastMessage)
			}
		})
	}
}

func TestWaitTaskCallerAndArguments(t *testing.T) {
	f := newFake(t)
	polled := make(chan struct{}, 1)
	f.handle("GET "+analyticsTasks, func(w http.ResponseWriter, r *http.Request) {
		select {
		case polled <- struct{}{}:
		default:
		}
		reply(200, jsonCT, analyticsRunning)(w, r)
	})
	c := newTestClient(t, f.url())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-polled; cancel() }()
	_, err := c.WaitTask(ctx, JobTypeAnalyticsTable, analyticsJobID, WaitOptions{Interval: time.Hour})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	unclassified(t, err)

	for _, args := range [][2]string{{"", analyticsJobID}, {JobTypeAnalyticsTable, " "}} {
		_, err := c.WaitTask(context.Background(), args[0], args[1], WaitOptions{})
		wantKind(t, err, KindPermanent)
	}
	_, err = c.WaitTask(context.Background(), "X", "Y", WaitOptions{MaxWait: -1})
	wantKind(t, err, KindPermanent)
}

// TestStartThenWait runs the pair the way a scheduled exchange does.
func TestStartThenWait(t *testing.T) {
	f := newFake(t)
	f.handle("POST /api/resourceTables/analytics", reply(200, jsonCT, analyticsStart240))
	f.handle("GET "+analyticsTasks, sequence(reply(200, jsonCT, analyticsRunning), reply(200, jsonCT, analyticsDone)))
	c := newTestClient(t, f.url())
	job, err := c.StartAnalyticsTables(context.Background(), AnalyticsTablesOptions{LastYears: 1, SkipResourceTables: true})
	if err != nil {
		t.Fatal(err)
	}
	job, err = c.WaitTask(context.Background(), job.Type, job.ID, WaitOptions{})
	if err != nil || job.Polls != 2 {
		t.Fatalf("job %+v, err %v", job, err)
	}
}
