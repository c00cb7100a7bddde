package mediator_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// bodyRecorder sits in front of an emulator and keeps the bodies of the data value set
// imports it receives.
type bodyRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
}

func recordBodies(t *testing.T, target *dhis2test.Server) *bodyRecorder {
	t.Helper()
	r := &bodyRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/dataValueSets") {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.mu.Lock()
			r.bodies = append(r.bodies, string(body))
			r.mu.Unlock()
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		target.Handler().ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// deletions returns the recorded bodies that carry a deletion block.
func (r *bodyRecorder) deletions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.bodies {
		if strings.Contains(b, `"deletion":`) {
			out = append(out, b)
		}
	}
	return out
}

// TestExchangeStaleScope: with stale.mode scope (or auto) a 2.43 target gets the removals
// as deletion scopes, one per org unit and period, narrowed to exactly the stale keys; a
// value in the same org unit and period that Tally never sent stays. A target before 2.43
// never sees a deletion block: it gets deleted: true values (scope mode warns).
func TestExchangeStaleScope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version, mode string
		byScope       int
		warn          bool
	}{
		{"2.43", "scope", 3, false},
		{"2.43", "auto", 3, false},
		{"2.40", "scope", 0, true},
		{"2.40", "auto", 0, false},
	} {
		t.Run(tc.version+"/"+tc.mode, func(t *testing.T) {
			t.Parallel()
			testStaleScope(t, tc.version, tc.mode, tc.byScope, tc.warn)
		})
	}
}

func testStaleScope(t *testing.T, version, mode string, byScope int, warn bool) {
	tracker, hmis := trackerEmulator(t), hmisEmulator(t, dhis2test.WithVersion(version))
	rec := recordBodies(t, hmis)
	h := startWith(t, exchangeYAML(t.TempDir(), rec.srv.URL+hmis.BasePath(), immunisationExchange(tracker.URL, "    stale: {mode: "+mode+"}\n")),
		mediator.Options{Now: fixedClock(kalimaNow)}, nil)

	run := h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded || run.Values != 48 || run.Delivery != txlog.TxDelivered {
		t.Fatalf("first run: %+v", run)
	}
	// Values Tally never sent, in the org unit and periods about to lose one: BCG for
	// girls aged 1 to 4, entered at the HMIS.
	for _, pe := range []string{"202404", "202405", "202406"} {
		k, err := hmis.Key("EPI_BCG", pe, "KL_N_F1", "F_1TO4", "")
		if err != nil {
			t.Fatal(err)
		}
		hmis.Store().Put(dhis2test.Value{Key: k, Value: "9"})
	}

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
	tr := run.Targets[0]
	if run.Status != exchange.RunSucceeded || tr.Removed != 3 || tr.ByScope != byScope || run.Values != 45 ||
		run.Delivery != txlog.TxDelivered {
		t.Fatalf("second run: %+v %+v", run, tr)
	}
	if !strings.Contains(tr.Delivery, "3 deleted") {
		t.Errorf("delivery %q does not count the 3 removals", tr.Delivery)
	}
	warned := strings.Contains(strings.Join(run.Warnings, "\n"), "stale.mode scope needs DHIS2 2.43")
	if warned != warn {
		t.Errorf("warnings %q, want the version warning: %v", run.Warnings, warn)
	}
	for _, pe := range []string{"202404", "202405", "202406"} {
		if got := value(hmis, "EPI_BCG", pe, "KL_N_F1", "F_LT1", ""); got != "" {
			t.Errorf("stale EPI_BCG F_LT1 KL_N_F1 %s is %q, want removed", pe, got)
		}
		if got := value(hmis, "EPI_BCG", pe, "KL_N_F1", "M_LT1", ""); got == "" {
			t.Errorf("EPI_BCG M_LT1 KL_N_F1 %s was removed", pe)
		}
		if got := value(hmis, "EPI_BCG", pe, "KL_N_F1", "F_1TO4", ""); got != "9" {
			t.Errorf("EPI_BCG F_1TO4 KL_N_F1 %s, never sent by Tally, is %q, want 9", pe, got)
		}
	}

	dels := rec.deletions()
	if byScope == 0 {
		if len(dels) != 0 {
			t.Fatalf("a %s target received deletion blocks: %s", version, dels)
		}
		return
	}
	// One request per org unit and period, each naming exactly the stale key.
	if len(dels) != 3 {
		t.Fatalf("deletion requests = %d, want 3: %s", len(dels), dels)
	}
	ou := dhis2test.SampleOrgUnitKLNF1
	for _, b := range dels {
		if !strings.Contains(b, `"deletion":{"orgUnits":["`+ou+`"],"periods":["2024`) ||
			!strings.Contains(b, `"elements":[{"dataElement":"EPI_BCG","categoryOptionCombo":"`) ||
			strings.Count(b, `"dataElement"`) != 1 || !strings.Contains(b, `"attributeOptionCombo":"HllvX50cXC0"`) ||
			!strings.HasSuffix(b, `"dataValues":[]}`) || !strings.Contains(b, `"dataElementIdScheme":"CODE"`) {
			t.Errorf("deletion request %s", b)
		}
	}

	run = h.runExchange("epi", "")
	if run.Status != exchange.RunSucceeded || run.Targets[0].Removed != 0 || len(rec.deletions()) != 3 {
		t.Fatalf("third run: %+v %+v", run, run.Targets[0])
	}
}
