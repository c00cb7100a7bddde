package mediator_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/exchange"
)

// TestExchangeRunsAnalyticsFirst: with analytics.run the run starts the analytics table
// job on the tracker and pulls only once the job has completed.
func TestExchangeRunsAnalyticsFirst(t *testing.T) {
	t.Parallel()
	tracker, hmis := trackerEmulator(t, dhis2test.WithHeldJobs()), hmisEmulator(t)
	extra := "    analytics: {run: true, last_years: 1, skip_resource_tables: true, poll_interval: 10ms, max_wait: 10s}\n"
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, immunisationExchange(tracker.URL, extra)),
		mediator.Options{Now: fixedClock(kalimaNow)}, nil)

	code, started := h.admin("POST", "/admin/v1/exchanges/epi/run", nil)
	if code != http.StatusAccepted {
		t.Fatalf("run: HTTP %d %v", code, started)
	}
	waitUntil(t, 10*time.Second, "the analytics job", func() bool { return len(tracker.Jobs()) == 1 })
	// The job is held: while the run polls it, nothing may be pulled.
	waitUntil(t, 10*time.Second, "the run to poll the job", func() bool {
		polls := 0
		for _, r := range tracker.Requests() {
			if strings.Contains(r.Path, "/system/tasks/ANALYTICS_TABLE/") {
				polls++
			}
		}
		return polls >= 3
	})
	if n := len(analyticsRequests(tracker)); n != 0 {
		t.Fatalf("pulled %d times before analytics completed", n)
	}
	if n := tracker.RunPendingJobs(); n != 1 {
		t.Fatalf("ran %d jobs", n)
	}
	var got struct {
		Run *exchange.ExchangeRun `json:"run"`
	}
	waitUntil(t, 10*time.Second, "the run to finish", func() bool {
		return h.getJSON(started["href"].(string), &got) == http.StatusOK && got.Run.Status != exchange.RunRunning
	})
	run := got.Run
	if run.Status != exchange.RunSucceeded || run.Analytics == nil || run.Analytics.Job != tracker.Jobs()[0] ||
		!strings.Contains(run.Analytics.Message, "Analytics tables updated") {
		t.Fatalf("run: %+v analytics %+v", run, run.Analytics)
	}
	// Order on the wire: start the job, poll it, then pull.
	var order []string
	for _, r := range tracker.Requests() {
		switch {
		case strings.HasSuffix(r.Path, "/resourceTables/analytics"):
			order = append(order, "start:"+r.Query.Get("lastYears")+":"+r.Query.Get("skipResourceTables"))
		case strings.Contains(r.Path, "/system/tasks/ANALYTICS_TABLE/"):
			if len(order) == 0 || order[len(order)-1] != "poll" {
				order = append(order, "poll")
			}
		case strings.Contains(r.Path, "/analytics/dataValueSet"):
			order = append(order, "pull")
		}
	}
	if got := strings.Join(order, " "); got != "start:1:true poll pull" {
		t.Errorf("requests: %s", got)
	}
	if got := value(hmis, "EPI_PENTA1", "202406", "KL_S_F1", "F_LT1", ""); got != "11" {
		t.Errorf("EPI_PENTA1 = %q", got)
	}

	// An update someone else started still runs: DHIS2 answers 409 and the run tries again
	// until it can start its own.
	req, _ := http.NewRequest(http.MethodPost, tracker.URL+"/api/resourceTables/analytics", nil)
	req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code, started = h.admin("POST", "/admin/v1/exchanges/epi/run", nil)
	if code != http.StatusAccepted {
		t.Fatalf("run: HTTP %d %v", code, started)
	}
	waitUntil(t, 10*time.Second, "a refused start", func() bool {
		for _, r := range tracker.Requests() {
			if strings.HasSuffix(r.Path, "/resourceTables/analytics") && r.Status == http.StatusConflict {
				return true
			}
		}
		return false
	})
	tracker.RunPendingJobs()
	waitUntil(t, 10*time.Second, "the run's own job", func() bool { return len(tracker.Jobs()) == 3 })
	tracker.RunPendingJobs()
	got.Run = nil
	waitUntil(t, 10*time.Second, "the second run to finish", func() bool {
		return h.getJSON(started["href"].(string), &got) == http.StatusOK && got.Run.Status != exchange.RunRunning
	})
	if got.Run.Status != exchange.RunSucceeded || got.Run.Analytics.Job != tracker.Jobs()[2] {
		t.Fatalf("second run %+v analytics %+v", got.Run, got.Run.Analytics)
	}
}

// TestExchangeCompleteness registers EPI_MONTHLY complete where at least 60% of its data
// elements have values: BCG and Penta 1 are 2 of its 3.
func TestExchangeCompleteness(t *testing.T) {
	t.Parallel()
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	extra := "    completeness: {data_sets: [EPI_MONTHLY], id_scheme: CODE, share: 0.6}\n" +
		strings.Replace(immunisationExchange(tracker.URL, "    completeness: {data_sets: [EPI_MONTHLY], id_scheme: CODE}\n"),
			"exchanges:\n  - name: epi", "  - name: epi-all", 1)
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, immunisationExchange(tracker.URL, extra)),
		mediator.Options{Now: fixedClock(kalimaNow)}, nil)

	run := h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Registered != 12 {
		t.Fatalf("run: %+v target %+v", run, run.Targets[0])
	}
	regs := hmis.Store().Registrations()
	if len(regs) != 12 {
		t.Fatalf("%d registrations", len(regs))
	}
	for _, r := range regs {
		if r.DataSet != dhis2test.SampleDataSetEPI || !strings.HasPrefix(r.Period, "20240") {
			t.Errorf("registration %+v", r)
		}
	}
	// A later run keeps the first completion (CREATE): nothing new.
	run = h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Registered != 0 || run.Targets[0].Already != 12 {
		t.Fatalf("second run: %+v target %+v", run, run.Targets[0])
	}
	// Share 1 (the default) needs Measles 1 too: nothing is complete.
	run = h.runExchange("epi-all", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Registered+run.Targets[0].Already != 0 {
		t.Fatalf("epi-all: %+v target %+v", run, run.Targets[0])
	}
}

// TestExchangeNotifiesOnceWhenFailingAndOnceWhenRecovered: two failed runs make one
// "failed" message, on the webhook and in DHIS2's inbox; the first good run after them
// one "recovered"; further good runs nothing.
func TestExchangeNotifiesOnceWhenFailingAndOnceWhenRecovered(t *testing.T) {
	// A source that keeps failing is asked source.retry.max_attempts (4) times per run
	// before the run fails; TestExchangeRetriesATransientSourceFailure shows a passing one.
	t.Parallel()
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	hook := newWebhookRecorder(t)
	notify := fmt.Sprintf(`notify:
  webhooks:
    - {name: ops, url: %s, headers: {Authorization: "Bearer hook-secret-1"}}
  dhis2:
    - {name: hmis-inbox, target: hmis, user_groups: [AuMe57l9JuO]}
`, hook.srv.URL)
	reg := prometheus.NewRegistry()
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, notify+immunisationExchange(tracker.URL, "")),
		mediator.Options{Now: fixedClock(kalimaNow), Registry: reg}, nil)

	fault := tracker.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultStatus, Path: "/api/analytics", Status: 500})
	for i := range 2 {
		run := h.runExchange("epi", "")
		if run.Status != exchange.RunFailed || !strings.Contains(run.Error, "500") || !strings.Contains(run.Error, "after 4 attempts") {
			t.Fatalf("failing run %d: %+v", i+1, run)
		}
	}
	if n := tracker.Faults().List()[0].Hits; n != 8 {
		t.Errorf("analytics asked %d times in two failing runs, want 4 tries each", n)
	}
	tracker.Faults().Remove(fault)
	for range 2 {
		if run := h.runExchange("epi", ""); run.Status != exchange.RunSucceeded {
			t.Fatalf("run: %+v", run)
		}
	}
	events := hook.received()
	if len(events) != 2 || events[0].Event != exchange.EventExchangeFailed || events[1].Event != exchange.EventExchangeRecovered {
		t.Fatalf("webhook got %+v", events)
	}
	if e := events[0]; e.Exchange != "epi" || e.Failures != 1 || !strings.Contains(e.Error, "500") || e.Transaction == "" {
		t.Errorf("failed event %+v", e)
	}
	if e := events[1]; e.Failures != 2 || !e.Since.Equal(kalimaNow) {
		t.Errorf("recovered event %+v", e)
	}
	if hook.auth[0] != "Bearer hook-secret-1" {
		t.Errorf("webhook Authorization %q", hook.auth[0])
	}
	msgs := hmis.Messages()
	if len(msgs) != 2 || !strings.Contains(msgs[0].Subject, "epi failed") || !strings.Contains(msgs[1].Subject, "epi recovered") ||
		len(msgs[0].UserGroups) != 1 {
		t.Fatalf("messages %+v", msgs)
	}
	// Metrics: two failed runs, two good ones, and they pass the linter.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tally_exchange_runs_total Exchange runs (dry runs excluded), by exchange and result (succeeded, partial, failed).
# TYPE tally_exchange_runs_total counter
tally_exchange_runs_total{exchange="epi",result="failed"} 2
tally_exchange_runs_total{exchange="epi",result="partial"} 0
tally_exchange_runs_total{exchange="epi",result="succeeded"} 2
# HELP tally_exchange_failing 1 while the exchange's last run failed or was partial, else 0.
# TYPE tally_exchange_failing gauge
tally_exchange_failing{exchange="epi"} 0
`), "tally_exchange_runs_total", "tally_exchange_failing"); err != nil {
		t.Error(err)
	}
	if probs, err := testutil.GatherAndLint(reg, "tally_exchange_runs_total", "tally_exchange_run_duration_seconds",
		"tally_exchange_values_total", "tally_exchange_last_success_timestamp_seconds", "tally_exchange_failing"); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %+v", err, probs)
	}
	// The health shows in the list.
	var list struct {
		Exchanges []*exchange.ExchangeInfo `json:"exchanges"`
	}
	h.getJSON("/admin/v1/exchanges", &list)
	if e := list.Exchanges[0]; e.Health == nil || e.Health.Failing || e.LastRun == nil || e.LastRun.Status != exchange.RunSucceeded {
		t.Errorf("list: %+v", e)
	}
}

// TestExchangeTickRunsOnceAcrossReplicas: two replicas on one NATS server both see the
// tick; one runs it. A run under way on one replica makes the other's API answer 409.
// A source that fails for a moment — an analytics 500, a 503 from a proxy, a request that
// outlasts the source timeout — is asked again within the run, and the run succeeds.
func TestExchangeRetriesATransientSourceFailure(t *testing.T) {
	t.Parallel()
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, immunisationExchange(tracker.URL, "")),
		mediator.Options{Now: fixedClock(kalimaNow)}, nil)
	for _, f := range []dhis2test.Fault{
		{Kind: dhis2test.FaultStatus, Path: "/api/analytics", Status: 500, Times: 1},
		{Kind: dhis2test.FaultStatus, Path: "/api/analytics", Status: 503, Times: 2},
	} {
		id := tracker.Faults().Add(f)
		run := h.runExchange("epi", "")
		if run.Status != exchange.RunSucceeded || run.Values == 0 {
			t.Fatalf("run after %d × %d: %+v", f.Times, f.Status, run)
		}
		tracker.Faults().Remove(id)
	}
	// A permanent refusal is not retried.
	id := tracker.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultStatus, Path: "/api/analytics", Status: 409})
	if run := h.runExchange("epi", ""); run.Status != exchange.RunFailed || strings.Contains(run.Error, "attempts") {
		t.Fatalf("run against a 409: %+v", run)
	}
	if n := tracker.Faults().List()[0].Hits; n != 1 {
		t.Errorf("a 409 was asked %d times, want once", n)
	}
	tracker.Faults().Remove(id)
}

func TestExchangeTickRunsOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	yaml := strings.Replace(exchangeYAML("", hmis.URL, immunisationExchange(tracker.URL, "    schedule: \"0 2 * * *\"\n")),
		`nats: {store_dir: "", duplicate_window: 1h}`, "nats: {url: "+ns.ClientURL()+", duplicate_window: 1h}", 1)
	// The schedulers wait for a tick that never comes in this test.
	never := func(h *mediator.Service) { h.SetExchangeTimer(func(time.Duration) <-chan time.Time { return nil }) }
	a := startWith(t, yaml, mediator.Options{Now: fixedClock(kalimaNow)}, never)
	b := startWith(t, yaml, mediator.Options{Now: fixedClock(kalimaNow)}, never)

	tick := time.Date(2024, 7, 15, 2, 0, 0, 0, time.UTC)
	var ran [2]bool
	var errs [2]error
	var wg sync.WaitGroup
	for i, h := range []*harness{a, b} {
		wg.Go(func() { ran[i], errs[i] = h.svc.ExchangeTick(context.Background(), "epi", tick) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || ran[0] == ran[1] {
		t.Fatalf("ran %v, errors %v", ran, errs)
	}
	if n := len(analyticsRequests(tracker)); n != 1 {
		t.Fatalf("%d pulls for one tick", n)
	}
	// The same tick again, on either replica: nothing.
	for _, h := range []*harness{a, b} {
		if ok, err := h.svc.ExchangeTick(context.Background(), "epi", tick); ok || err != nil {
			t.Fatalf("tick again: %v %v", ok, err)
		}
	}
	// The next tick runs once more.
	if ok, err := b.svc.ExchangeTick(context.Background(), "epi", tick.Add(24*time.Hour)); !ok || err != nil {
		t.Fatalf("next tick: %v %v", ok, err)
	}
	if n := len(analyticsRequests(tracker)); n != 2 {
		t.Fatalf("%d pulls for two ticks", n)
	}

	// A slow pull on a: b's API refuses a concurrent run.
	tracker.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: "/api/analytics", Delay: dhis2test.Duration(700 * time.Millisecond), Times: 1})
	if code, body := a.admin("POST", "/admin/v1/exchanges/epi/run", nil); code != http.StatusAccepted {
		t.Fatalf("a: HTTP %d %v", code, body)
	}
	if code, body := b.admin("POST", "/admin/v1/exchanges/epi/run", nil); code != http.StatusConflict {
		t.Fatalf("b during a's run: HTTP %d %v", code, body)
	}
}

// TestExchangeScheduler: the scheduler waits for the next tick of the cron expression in
// the exchange's time zone and runs it; ticks follow one another.
func TestExchangeScheduler(t *testing.T) {
	t.Parallel()
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	waits := make(chan time.Duration, 4)
	fire := make(chan time.Time)
	timer := func(s *mediator.Service) {
		s.SetExchangeTimer(func(d time.Duration) <-chan time.Time { waits <- d; return fire })
	}
	// 09:30 UTC is 12:30 in Nairobi; "45 12,13 * * *" fires at 12:45 and 13:45 there.
	extra := "    schedule: \"45 12,13 * * *\"\n    timezone: Africa/Nairobi\n"
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, immunisationExchange(tracker.URL, extra)),
		mediator.Options{Now: fixedClock(kalimaNow)}, timer)

	for _, want := range []time.Duration{15 * time.Minute, 75 * time.Minute} {
		select {
		case d := <-waits:
			if d != want {
				t.Fatalf("waited %s, want %s", d, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the scheduler did not wait")
		}
		fire <- kalimaNow
	}
	var runs struct {
		Runs []*exchange.ExchangeRun `json:"runs"`
	}
	waitUntil(t, 10*time.Second, "two scheduled runs", func() bool {
		h.getJSON("/admin/v1/exchanges/epi/runs", &runs)
		return len(runs.Runs) == 2 && runs.Runs[0].Status != exchange.RunRunning && runs.Runs[1].Status != exchange.RunRunning
	})
	ticks := map[string]bool{}
	for _, r := range runs.Runs {
		ticks[r.Tick.UTC().Format("15:04")] = r.Trigger == exchange.TriggerSchedule && r.Status == exchange.RunSucceeded
	}
	if !ticks["09:45"] || !ticks["10:45"] {
		t.Errorf("runs %+v", ticks)
	}
}

// TestExchangeCHT pulls CHT's export for the last two months, once per month, with Basic
// credentials, and removes a value CHT no longer reports.
func TestExchangeCHT(t *testing.T) {
	t.Parallel()
	hmis := hmisEmulator(t)
	var mu sync.Mutex
	var asked []string
	households := true
	cht := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		q := r.URL.Query()
		if r.URL.Path != "/api/v2/export/dhis" || user != "medic" || pass != "cht-password" || q.Get("filters[dataSet]") != "CHW_MONTHLY" {
			http.Error(w, `{"code":400,"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		var ms int64
		fmt.Sscan(q.Get("filters[date][from]"), &ms)
		month := time.UnixMilli(ms).UTC().Format("200601")
		mu.Lock()
		asked = append(asked, month)
		withHouseholds := households
		mu.Unlock()
		rows := `{"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_N_F1","value":12},{"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_S_F1","value":0}`
		if withHouseholds {
			rows += `,{"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":40}`
		}
		fmt.Fprintf(w, `{"dataSet":"CHW_MONTHLY","completeDate":"2024-07-15","period":%q,"dataValues":[%s]}`, month, rows)
	}))
	t.Cleanup(cht.Close)
	exch := fmt.Sprintf(`exchanges:
  - name: chw
    source: {type: cht, url: %s, username: medic, password: cht-password}
    window: {type: Monthly, last: 2}
    requests:
      - {name: CHW monthly, data_set: CHW_MONTHLY}
    id_schemes: {id_scheme: CODE}
    await: 10s
`, cht.URL)
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, exch), mediator.Options{Now: fixedClock(kalimaNow)}, nil)
	run := h.runExchange("chw", "")
	if run.Status != exchange.RunSucceeded || run.Values != 6 || strings.Join(asked, ",") != "202405,202406" {
		t.Fatalf("run %+v, asked %v", run, asked)
	}
	if got := value(hmis, "CHW_HOUSEHOLD_VISITS", "202406", "KL_N_F1", "", ""); got != "40" {
		t.Errorf("CHW_HOUSEHOLD_VISITS = %q", got)
	}
	mu.Lock()
	households = false
	mu.Unlock()
	run = h.runExchange("chw", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Removed != 2 {
		t.Fatalf("second run %+v %+v", run, run.Targets[0])
	}
	if got := value(hmis, "CHW_HOUSEHOLD_VISITS", "202406", "KL_N_F1", "", ""); got != "" {
		t.Errorf("CHW_HOUSEHOLD_VISITS still %q", got)
	}
	if got := value(hmis, "CHW_U5_ASSESSMENTS", "202405", "KL_N_F1", "", ""); got != "12" {
		t.Errorf("CHW_U5_ASSESSMENTS = %q", got)
	}
}

// TestExchangeDryRunAndSafeguards: a dry run shows what would be sent and removed and
// stores nothing; a source that suddenly answers nothing does not wipe the target.
func TestExchangeDryRunAndSafeguards(t *testing.T) {
	t.Parallel()
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, immunisationExchange(tracker.URL, "")),
		mediator.Options{Now: fixedClock(kalimaNow)}, nil)

	dry := h.runExchange("epi", "dryRun=true")
	if dry.Status != exchange.RunSucceeded || !dry.DryRun || dry.Transaction != "" || len(dry.Targets[0].Values) != 48 ||
		len(hmis.Store().Values()) != 0 {
		t.Fatalf("dry run %+v", dry)
	}
	if run := h.runExchange("epi", ""); run.Status != exchange.RunSucceeded {
		t.Fatalf("run %+v", run)
	}
	// The tracker answers nothing at all: the removals are held, the HMIS keeps its values.
	if err := tracker.SetFacts(); err != nil {
		t.Fatal(err)
	}
	dry = h.runExchange("epi", "dryRun=true")
	if len(dry.Targets[0].Removals) != 0 || len(dry.Targets[0].Held) != 3 {
		t.Fatalf("dry run on empty answer: %+v", dry.Targets[0])
	}
	run := h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Removed != 0 || len(run.Targets[0].Held) != 3 || len(run.Warnings) == 0 {
		t.Fatalf("empty answer: %+v %+v", run, run.Targets[0])
	}
	if got := value(hmis, "EPI_BCG", "202406", "KL_N_F1", "F_LT1", ""); got != "20" {
		t.Errorf("EPI_BCG = %q after an empty answer", got)
	}

}

// TestExchangeDuplicates: a request whose values repeat keys already pulled in the run
// (DHIS2's duplicatesOnly finds such rows) is not sent; the rest of the run is.
func TestExchangeDuplicates(t *testing.T) {
	t.Parallel()
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	again := `      - name: BCG again
        dx: [PI_BCG_F_LT1]
        pe: ["202406"]
        ou: [KL_N_F1]
        input_id_scheme: CODE
        output_id_scheme: ATTRIBUTE:` + dhis2test.SampleAttributeAggDECode + "\n"
	exch := strings.Replace(immunisationExchange(tracker.URL, ""), "    id_schemes:", again+"    id_schemes:", 1)
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, exch), mediator.Options{Now: fixedClock(kalimaNow)}, nil)
	run := h.runExchange("epi", "")
	r := run.Requests[1]
	if run.Status != exchange.RunPartial || run.Values != 48 || r.Duplicates != 1 || !strings.Contains(r.Error, "repeat a key") ||
		len(r.DuplicateKeys) != 1 || r.DuplicateKeys[0].Period != "202406" {
		t.Fatalf("run %+v, request %+v", run, r)
	}
	if got := value(hmis, "EPI_BCG", "202406", "KL_N_F1", "F_LT1", ""); got != "20" {
		t.Errorf("EPI_BCG = %q", got)
	}
}

// TestExchangeConfigProblems: every problem of an exchanges: or notify: section is
// reported with its line, through the same check `tally config validate` runs.
func TestExchangeConfigProblems(t *testing.T) {
	t.Parallel()
	yaml := `targets:
  - {name: hmis, url: "http://hmis.example", username: admin, password: district}
notify:
  webhooks:
    - {name: ops, url: "ftp://nope"}
exchanges:
  - name: epi
    source: {url: "http://tracker.example/api", username: admin}
    schedule: "0 25 * * *"
    timezone: Mars/Olympus
    requests:
      - name: a
        dx: [PI_BCG_F_LT1]
        pe: [LAST_7_FORTNIGHTS]
        ou: [KL]
        output_id_scheme: ATTRIBUTE:abc
      - name: a
        pe: ["202401"]
        ou: [KL]
        dx: [X]
    mapping: nope
    targets: [hmos]
    stale: {mode: sometimes}
    notify: [pager]
    completeness: {data_sets: [], share: 2}
    colour: blue
  - name: chw
    source: {type: cht, url: "https://cht.example", token: abc}
    requests:
      - {data_set: CHW, dx: [A], pe: [2024Q1]}
`
	cfg, err := config.Parse("x.yaml", []byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	_, probs := mediator.CheckConfig(cfg)
	text := probs.Error()
	for _, want := range []string{
		"x.yaml:5: notify.webhooks[0].url",
		"x.yaml:26: exchanges[0].colour: unknown key",
		"x.yaml:28: exchanges[1].source.token",
		"x.yaml:30: exchanges[1].requests[0]: dx, ou and filters",
		"2024Q1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
	// The first exchange has a key it does not know: its other problems show once it is
	// fixed. Without it:
	cfg, _ = config.Parse("x.yaml", []byte(strings.Replace(yaml, "    colour: blue\n", "", 1)), func(string) string { return "" })
	_, probs = mediator.CheckConfig(cfg)
	text = probs.Error()
	for _, want := range []string{
		"x.yaml:8: exchanges[0].source.url", "x.yaml:8: exchanges[0].source: Basic auth needs both",
		"x.yaml:9: exchanges[0].schedule", "x.yaml:10: exchanges[0].timezone",
		"x.yaml:14: exchanges[0].requests[0].pe[0]", "x.yaml:12: exchanges[0].requests[0].id_schemes",
		"x.yaml:17: exchanges[0].requests[1].name", "x.yaml:21: exchanges[0].mapping", "x.yaml:22: exchanges[0].targets[0]",
		"x.yaml:23: exchanges[0].stale.mode", "x.yaml:24: exchanges[0].notify[0]", "x.yaml:25: exchanges[0].completeness.data_sets",
		"exchanges[0].completeness.share",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
}

// TestExchangeWithMappingSet: the exchange's values go through a mapping set (program
// indicator codes to HMIS data elements and combos); what it delivered is remembered in
// the target's terms, so a removal names the HMIS's keys.
func TestExchangeWithMappingSet(t *testing.T) {
	t.Parallel()
	tracker, hmis := trackerEmulator(t), hmisEmulator(t)
	exch := fmt.Sprintf(`mappings:
  - name: pis
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    rules:
      - {source: PI_BCG_F_LT1, data_element: EPI_BCG, coc: F_LT1}
      - {source: PI_BCG_M_LT1, data_element: EPI_BCG, coc: M_LT1}
exchanges:
  - name: epi
    source: {url: %s, token: %s}
    window: {type: Monthly, last: 2}
    requests:
      - name: BCG
        dx: [PI_BCG_F_LT1, PI_BCG_M_LT1, PI_PENTA1_F_LT1]
        ou: [KL_NORTH, LEVEL-3]
        input_id_scheme: CODE
        output_id_scheme: CODE
    mapping: pis
    await: 10s
`, tracker.URL, dhis2test.SampleToken)
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, exch),
		mediator.Options{Now: fixedClock(kalimaNow)}, nil)
	run := h.runExchange("epi", "")
	// 3 indicators × 2 facilities × May, June; Penta 1 has no rule and is dropped.
	tr := run.Targets[0]
	if run.Status != exchange.RunSucceeded || run.Values != 12 || tr.Mapped != 8 || tr.Unmapped != 4 {
		t.Fatalf("run %+v target %+v", run, tr)
	}
	if got := value(hmis, "EPI_BCG", "202405", "KL_N_F2", "M_LT1", ""); got != "11" {
		t.Errorf("EPI_BCG M_LT1 KL_N_F2 202405 = %q", got)
	}
	pi := tracker.Metadata().ProgramIndicator("PI_BCG_M_LT1").ID
	var kept []dhis2test.Fact
	for _, f := range tracker.Facts() {
		if f.DX != pi && f.DX != "PI_BCG_M_LT1" {
			kept = append(kept, f)
		}
	}
	if err := tracker.SetFacts(kept...); err != nil {
		t.Fatal(err)
	}
	run = h.runExchange("epi", "")
	if tr := run.Targets[0]; run.Status != exchange.RunSucceeded || tr.Removed != 4 || tr.Mapped != 4 {
		t.Fatalf("second run %+v target %+v", run, tr)
	}
	if got := value(hmis, "EPI_BCG", "202405", "KL_N_F2", "M_LT1", ""); got != "" {
		t.Errorf("stale EPI_BCG M_LT1 still %q", got)
	}
	if got := value(hmis, "EPI_BCG", "202405", "KL_N_F2", "F_LT1", ""); got != "11" {
		t.Errorf("EPI_BCG F_LT1 = %q", got)
	}
}

// TestExampleExchangesConfig: the documented example configuration validates.
func TestExampleExchangesConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TALLY_ADMIN_TOKEN": "change-me-0123456789", "HMIS_PASSWORD": "district",
		"TRACKER_PASSWORD": "district", "CHT_PASSWORD": "secret"}
	data, err := os.ReadFile("../examples/exchanges.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("exchanges.yaml", data, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	sec, probs := mediator.CheckConfig(cfg)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if len(sec.Exchanges) != 2 || sec.Exchanges[1].Source.Type != config.ExchangeSourceCHT || len(sec.Notify.DHIS2) != 1 {
		t.Errorf("sections %+v", sec)
	}
}

// TestDocumentedExchangeSnippets: the exchanges and notify examples of README.md and
// docs/exchanges.md validate (with a target hmis added).
func TestDocumentedExchangeSnippets(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "secret" }
	target := "targets: [{name: hmis, url: \"https://hmis.example.org\", username: admin, password: district}]\n"
	check := func(name, text string) {
		cfg, err := config.Parse(name, []byte(target+text), env)
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, text)
			return
		}
		if _, probs := mediator.CheckConfig(cfg); len(probs) > 0 {
			t.Errorf("%s: %v\n%s", name, probs, text)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), "### Exchanges and notifications")
	_, block, _ := strings.Cut(after, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	check("README.md", block)

	doc, err := os.ReadFile("../docs/exchanges.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("%d yaml blocks in docs/exchanges.md", len(blocks))
	}
	var exch, cht, notify, watch string
	for _, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		switch {
		case strings.HasPrefix(b, "exchanges:"):
			exch = b
		case strings.HasPrefix(b, "  - name: cht-chw"):
			cht = b
		case strings.HasPrefix(b, "notify:") && notify == "":
			notify = b
		case strings.HasPrefix(b, "notify:"):
			watch = b // the targets and dead letters section
		}
	}
	check("docs/exchanges.md", notify+strings.Replace(exch, "mapping: \"\"", "mapping: \"\"", 1)+cht)
	if watch == "" {
		t.Error("docs/exchanges.md has no notify: block for targets and dead letters")
	}
	check("docs/exchanges.md (targets and dead letters)", watch)
}
