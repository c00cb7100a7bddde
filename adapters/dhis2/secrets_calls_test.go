package dhis2

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReadCallsKeepCredentialsOut: every call added for exchanges and mapping, facing a
// server that echoes the credentials in errors, HTML pages, malformed data value sets and
// failed job notifications, keeps them out of its errors and log records.
func TestReadCallsKeepCredentialsOut(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	secrets := []string{testPassword, basic}
	leak := func(r *http.Request) string {
		return r.Header.Get("Authorization") + " / " + strings.Join(secrets, " / ")
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	wm500 := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		w.WriteHeader(500)
		fmt.Fprintf(w, `{"httpStatus":"Internal Server Error","httpStatusCode":500,"status":"ERROR","message":%s}`, q(leak(r)))
	}
	html401 := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(401)
		fmt.Fprintf(w, "<html><head><title>%s</title></head></html>", leak(r))
	}
	badSet := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		fmt.Fprintf(w, `{"dataValues":[{"dataElement":%s,"value":}]}`, q(leak(r)))
	}
	notes := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		fmt.Fprintf(w, `[{"level":"ERROR","message":%s,"completed":true}]`, q("Process failed: "+leak(r)))
	}

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFake(t)
	f.handle("GET /api/analytics/dataValueSet.json", sequence(wm500, html401, badSet))
	f.handle("GET /api/dataValueSets", sequence(badSet, wm500))
	f.handle("GET /api/organisationUnits", sequence(html401, wm500))
	f.handle("GET /api/aggregateDataExchanges/KlEpiPis001", wm500)
	f.handle("POST /api/completeDataSetRegistrations", wm500)
	f.handle("POST /api/messageConversations", html401)
	f.handle("POST /api/resourceTables/analytics", wm500)
	f.handle("GET "+analyticsTasks, notes)
	c := newTestClient(t, f.url(), func(c *Config) { c.Logger = logger })
	ctx := context.Background()

	ar := AnalyticsRequest{DX: []string{"a"}, PE: []string{"202401"}, OU: []string{"b"}}
	er := ExportRequest{DataSets: []string{"d"}, Periods: []string{"202401"}, OrgUnits: []string{"o"}}
	var errs []error
	for range 3 {
		_, err := c.AnalyticsDataValueSet(ctx, ar, &collectSink{})
		errs = append(errs, err)
	}
	for range 2 {
		_, err := c.DataValueSets(ctx, er, &collectSink{})
		errs = append(errs, err)
		_, err = c.OrganisationUnits(ctx, ListOptions{})
		errs = append(errs, err)
	}
	_, err := c.AggregateDataExchange(ctx, "KlEpiPis001")
	errs = append(errs, err)
	_, err = c.RegisterCompleteness(ctx, []Registration{{DataSet: "d", Period: "p", OrgUnit: "o"}}, CompletenessOptions{})
	errs = append(errs, err)
	_, err = c.SendMessage(ctx, "s", "t", []string{"g"}, nil)
	errs = append(errs, err)
	_, err = c.StartAnalyticsTables(ctx, AnalyticsTablesOptions{})
	errs = append(errs, err)
	job, err := c.WaitTask(ctx, JobTypeAnalyticsTable, analyticsJobID, WaitOptions{Interval: time.Millisecond})
	errs = append(errs, err)

	var kept []string
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: no error", i)
			continue
		}
		kept = append(kept, err.Error(), fmt.Sprintf("%+v %#v", err, err))
		if e, ok := err.(*Error); ok {
			kept = append(kept, e.Message, string(e.Body))
		}
	}
	if job != nil {
		kept = append(kept, job.LastMessage)
	}
	kept = append(kept, logs.String())
	all := strings.Join(kept, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("secret %q leaked in:\n%s", s, all)
		}
	}
	if strings.Count(all, "[REDACTED]") < 10 {
		t.Errorf("too little was redacted: did the server echo?\n%s", all)
	}
}
