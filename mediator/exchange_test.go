package mediator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestExchangeRelativePeriodsAndStaleValues runs the tracker-to-aggregate exchange on a
// fixed date: LAST_3_MONTHS is April to June 2024 in Tally and in the tracker alike. A
// program indicator that later falls to zero is absent from analytics; the next run
// removes its value from the HMIS (deleted: true before and after 2.43, or an explicit
// zero), and a third run with nothing changed removes nothing.
func TestExchangeRelativePeriodsAndStaleValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version, mode, after string
	}{
		{"2.38", "delete", ""},
		{"2.40", "delete", ""},
		{"2.43", "delete", ""},
		{"2.40", "zero", "0"},
	} {
		t.Run(tc.version+"/"+tc.mode, func(t *testing.T) {
			t.Parallel()
			testStaleValues(t, tc.version, tc.mode, tc.after)
		})
	}
}

func testStaleValues(t *testing.T, version, mode, after string) {
	tracker, hmis := trackerEmulator(t), hmisEmulator(t, dhis2test.WithVersion(version))
	h := startWith(t, exchangeYAML(t.TempDir(), hmis.URL, immunisationExchange(tracker.URL, "    stale: {mode: "+mode+"}\n")),
		mediator.Options{Now: fixedClock(kalimaNow)}, nil)

	run := h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded {
		t.Fatalf("run: %+v", run)
	}
	if got := strings.Join(run.Requests[0].Periods, ","); got != "202404,202405,202406" {
		t.Errorf("periods = %s", got)
	}
	reqs := analyticsRequests(tracker)
	if len(reqs) != 1 || !strings.Contains(strings.Join(reqs[0].Query["dimension"], " "), "pe:202404;202405;202406") {
		t.Fatalf("analytics requests = %+v", reqs)
	}
	// 4 indicators × 4 facilities × 3 months.
	if run.Values != 48 || run.Targets[0].Mapped != 48 || run.Delivery != txlog.TxDelivered {
		t.Errorf("run: values %d, mapped %d, delivery %q", run.Values, run.Targets[0].Mapped, run.Delivery)
	}
	// PI_BCG_F_LT1 at KL_N_F1: 21 20 22 26 21 20 ... → April 26, May 21, June 20.
	for pe, want := range map[string]string{"202404": "26", "202405": "21", "202406": "20"} {
		if got := value(hmis, "EPI_BCG", pe, "KL_N_F1", "F_LT1", ""); got != want {
			t.Errorf("EPI_BCG F_LT1 KL_N_F1 %s = %q, want %q", pe, got, want)
		}
	}

	// The indicator falls to zero at KL_N_F1: analytics leaves those rows out.
	pi := tracker.Metadata().ProgramIndicator("PI_BCG_F_LT1").ID
	var kept []dhis2test.Fact
	for _, f := range tracker.Facts() {
		if (f.DX == pi || f.DX == "PI_BCG_F_LT1") && (f.OrgUnit == dhis2test.SampleOrgUnitKLNF1 || f.OrgUnit == "KL_N_F1") {
			continue
		}
		kept = append(kept, f)
	}
	if err := tracker.SetFacts(kept...); err != nil {
		t.Fatal(err)
	}
	run = h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Removed != 3 || run.Values != 45 {
		t.Fatalf("second run: %+v %+v", run, run.Targets[0])
	}
	for _, pe := range []string{"202404", "202405", "202406"} {
		if got := value(hmis, "EPI_BCG", pe, "KL_N_F1", "F_LT1", ""); got != after {
			t.Errorf("stale EPI_BCG F_LT1 KL_N_F1 %s is %q, want %q", pe, got, after)
		}
		if got := value(hmis, "EPI_BCG", pe, "KL_N_F1", "M_LT1", ""); got == "" {
			t.Errorf("EPI_BCG M_LT1 KL_N_F1 %s was removed", pe)
		}
	}

	run = h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Removed != 0 {
		t.Fatalf("third run: %+v", run)
	}
}

// TestExchangeImportFromDHIS2 imports the sample's EXTERNAL aggregate data exchange from
// the tracker, runs it in Tally and compares with what DHIS2's own exchange pushes when it
// runs: the same values at the same keys.
func TestExchangeImportFromDHIS2(t *testing.T) {
	t.Parallel()
	tracker := trackerEmulator(t)
	viaDHIS2, viaTally := hmisEmulator(t), hmisEmulator(t)
	ctx := context.Background()

	// DHIS2's exchange pushes to viaDHIS2.
	if err := tracker.UpdateMetadata(func(m *dhis2test.Metadata) error {
		for _, e := range m.AggregateDataExchanges {
			if e.ID == dhis2test.SampleExchangeTrackerToHMIS {
				e.Target.API.URL = viaDHIS2.URL
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, tracker.URL+"/api/aggregateDataExchanges/"+dhis2test.SampleExchangeTrackerToHMIS+"/exchange", nil)
	req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DHIS2's exchange: HTTP %d %s", resp.StatusCode, body)
	}
	if len(viaDHIS2.Store().Values()) == 0 {
		t.Fatal("DHIS2's exchange delivered nothing")
	}

	// tally exchange import --from tracker
	client, err := dhis2.New(dhis2.Config{BaseURL: tracker.URL, Username: dhis2test.SampleUser, Password: dhis2test.SamplePassword})
	if err != nil {
		t.Fatal(err)
	}
	ades, err := client.AggregateDataExchanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := exchange.ExchangeImportOptions{From: tracker.URL, Username: dhis2test.SampleUser}
	imported := exchange.ImportExchanges(ades, opts)
	text, err := imported.YAML(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(imported.Exchanges) != len(ades) || len(imported.Env) == 0 {
		t.Fatalf("imported %+v", imported)
	}
	// Tally delivers to viaTally instead.
	yamlText := fmt.Sprintf("nats: {store_dir: %q, duplicate_window: 1h}\nadmin: {token: %s}\n%s", t.TempDir(), adminToken,
		strings.ReplaceAll(string(text), viaDHIS2.URL, viaTally.URL))
	getenv := func(k string) string {
		if strings.HasSuffix(k, "_PASSWORD") {
			return dhis2test.SamplePassword
		}
		return ""
	}
	h := startWithEnv(t, yamlText, getenv, mediator.Options{Now: fixedClock(kalimaNow)}, nil)
	run := h.runExchange("kl_tracker_to_hmis", "")
	if run.Status != exchange.RunSucceeded {
		t.Fatalf("run: %+v\n%s", run, yamlText)
	}

	want, got := viaDHIS2.Store().Values(), viaTally.Store().Values()
	index := map[dhis2test.Key]string{}
	for _, v := range got {
		index[v.Key] = v.Value
	}
	for _, v := range want {
		if index[v.Key] != v.Value {
			t.Errorf("%+v: DHIS2's exchange wrote %q, Tally %q", v.Key, v.Value, index[v.Key])
		}
	}
	if len(got) != len(want) {
		t.Errorf("DHIS2's exchange wrote %d values, Tally %d", len(want), len(got))
	}
	if run.Values != len(want) {
		t.Errorf("run values %d, want %d", run.Values, len(want))
	}
}
