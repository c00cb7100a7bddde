package mediator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestLockedPeriodsAreTheirOwnDeadLetters: a value DHIS2 refuses because its period has
// expired for the data set (E7640, expiryDays; spec dhis2.md §1.5) becomes a dead letter
// of reason locked — counted apart, shown by a preview's dry run at the target — while the
// other values are delivered; once the period is open again, the dead letter replays.
func TestLockedPeriodsAreTheirOwnDeadLetters(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	setExpiry := func(days int) {
		t.Helper()
		if err := emu.UpdateMetadata(func(m *dhis2test.Metadata) error { m.DataSet("CHW_MONTHLY").ExpiryDays = days; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	setExpiry(30)
	// The district officer does not hold F_EDIT_EXPIRED, so the expiry applies to Tally.
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{},
		func(y string) string {
			return strings.Replace(y, "username: admin\n    password: district", "username: kl_north\n    password: North-District1", 1)
		})
	now := time.Now().UTC().Format("200601")
	body := `{"orgUnit":"KL_N_F1","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"202301","value":"3"},
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","period":"` + now + `","value":"4"}]}`

	_, raw := h.preview("?source=cht", []byte(body))
	var pv struct {
		Targets []struct {
			Locked []struct {
				ErrorCode string `json:"errorCode"`
				Indexes   []int  `json:"indexes"`
			} `json:"locked"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(raw, &pv); err != nil || len(pv.Targets) != 1 || len(pv.Targets[0].Locked) != 1 ||
		pv.Targets[0].Locked[0].ErrorCode != "E7640" || fmt.Sprint(pv.Targets[0].Locked[0].Indexes) != "[0]" {
		t.Errorf("preview: %s", raw)
	}
	if emu.Store().Len() != 0 {
		t.Fatalf("the preview stored %d values", emu.Store().Len())
	}

	tx := h.ingest([]byte(body))
	h.waitStatus(tx, txlog.TxPartiallyDelivered)
	locked := h.deadLetters("reason=locked")
	if len(locked) != 1 || locked[0]["values"] != float64(1) || fmt.Sprint(locked[0]["codes"]) != "[E7640]" {
		t.Fatalf("locked dead letters %v", locked)
	}
	if n := len(h.deadLetters("reason=rejected")); n != 0 {
		t.Errorf("%d rejected dead letters; the expired value is locked, not rejected", n)
	}
	if n := metric(t, h.harness, `tally_delivery_values_total{outcome="locked",target="hmis"}`); n != 1 {
		t.Errorf("locked values metric %v, want 1", n)
	}

	setExpiry(0) // the data set no longer expires: the period is open again
	code, res := h.admin("POST", fmt.Sprintf("/admin/v1/dlq/%d/replay", int(locked[0]["seq"].(float64))), nil)
	if code != http.StatusOK {
		t.Fatalf("replay: HTTP %d %v", code, res)
	}
	waitUntil(t, 10*time.Second, "the replayed value to be stored", func() bool {
		_, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202301", "KL_N_F1", "", "")
		return ok
	})
}
