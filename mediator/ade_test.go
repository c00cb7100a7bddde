package mediator_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestAggregateDataExchangePushesThroughTally: DHIS2's aggregate data exchange with an
// EXTERNAL target pointing at Tally works unchanged (spec dhis2.md §10.4): the tracker
// instance's exchange sends only dataElementIdScheme=CODE (org units and combos by UID, as
// a missing scheme means UID to DHIS2) and reads Tally's WebMessage; the values reach the
// HMIS. When analytics returns nothing, the exchange posts an empty set, which DHIS2
// answers SUCCESS, and so does Tally: the run is not failed.
func TestAggregateDataExchangePushesThroughTally(t *testing.T) {
	hmis := dhis2test.NewServer(dhis2test.WithVersion("2.41"))
	defer hmis.Close()
	h := startTallyCfg(t, hmis.URL, t.TempDir(), syncSource, "")
	tracker := dhis2test.NewServer(dhis2test.WithVersion("2.41"),
		dhis2test.WithClock(func() time.Time { return time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC) }))
	defer tracker.Close()
	if err := tracker.UpdateMetadata(func(m *dhis2test.Metadata) error {
		for _, e := range m.AggregateDataExchanges {
			if e.ID == dhis2test.SampleExchangeTrackerToHMIS {
				e.Target.API = &dhis2test.ExchangeAPI{URL: h.base, Username: "sync", Password: "sync-password"}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		req, _ := http.NewRequest("POST", tracker.URL+"/api/aggregateDataExchanges/"+dhis2test.SampleExchangeTrackerToHMIS+"/exchange", nil)
		req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
		resp, err := tracker.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return string(raw)
	}
	out := run()
	if !strings.Contains(out, `"status":"SUCCESS"`) || strings.Contains(out, `"status":"ERROR"`) {
		t.Fatalf("exchange run: %s", out)
	}
	if v, ok := hmis.Lookup("EPI_BCG", "202402", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "20" {
		t.Errorf("HMIS EPI_BCG/202402/KL_N_F1/F_LT1 = %+v, %v; want 20", v, ok)
	}

	// Analytics returns nothing: the exchange posts empty data value sets.
	if err := tracker.SetFacts(); err != nil {
		t.Fatal(err)
	}
	stored := hmis.Store().Len()
	if out := run(); !strings.Contains(out, `"status":"SUCCESS"`) || strings.Contains(out, `"status":"ERROR"`) {
		t.Errorf("empty exchange run: %s", out)
	}
	if hmis.Store().Len() != stored {
		t.Errorf("an empty exchange changed the HMIS")
	}
	code, body := h.admin("GET", "/admin/v1/transactions?status="+txlog.TxDelivered, nil)
	if txs, _ := body["transactions"].([]any); code != http.StatusOK || len(txs) != 2 {
		t.Errorf("transactions: HTTP %d %v, want the two delivered of the first run only", code, body)
	}
}
