package dhis2test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// The store can be seeded directly (for export/analytics tests), keeps soft
// deletes visible through AllValues and Get, and holds registrations.
func TestStoreAPI(t *testing.T) {
	srv := newTestServer(t)
	k := mustKey(t, srv, "MAL_TREATED", "202401", "KL_N_F1", "", "GOV")
	srv.Store().Put(Value{Key: k, Value: "8", StoredBy: "seed"})
	if v, ok := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); !ok || v.Value != "8" {
		t.Fatalf("seeded value %+v", v)
	}
	postJSON(t, srv, "?idScheme=CODE&importStrategy=DELETE", treated("202401", "8"))
	if srv.Store().Len() != 0 || len(srv.Store().AllValues()) != 1 {
		t.Errorf("len %d all %d", srv.Store().Len(), len(srv.Store().AllValues()))
	}
	if v, ok := srv.Store().Get(k); !ok || !v.Deleted {
		t.Errorf("soft-deleted row %+v %v", v, ok)
	}
	if _, ok := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); ok {
		t.Error("Lookup returned a deleted value")
	}
	if ops := opsOf(srv.Store().History(k)); strings.Join(ops, ",") != "CREATE,DELETE" {
		t.Errorf("history %v", ops)
	}
	r := Registration{DataSet: SampleDataSetCHW, Period: "202401", OrgUnit: SampleOrgUnitKLNF1, AttributeOptionCombo: DefaultCategoryOptionComboUID, Date: "2024-02-01"}
	srv.Store().PutRegistration(r)
	if !srv.Store().DeleteRegistration(r.DataSet, r.Period, r.OrgUnit, r.AttributeOptionCombo) || len(srv.Store().Registrations()) != 0 {
		t.Error("registration not deleted")
	}
	srv.Store().Reset()
	if len(srv.Store().AllValues()) != 0 {
		t.Error("reset")
	}
	if _, err := srv.Key("NOPE", "2024", "KL", "", ""); err == nil {
		t.Error("unknown data element resolved")
	}
}

// Fault rules can be removed; Sequence scripts one rule per step.
func TestFaultRulesAPI(t *testing.T) {
	srv := newTestServer(t)
	ids := srv.Faults().Sequence("/api/me", FaultStatus, FaultPass, FaultStatus)
	if len(ids) != 3 || !srv.Faults().Remove(ids[2]) || srv.Faults().Remove("nope") {
		t.Fatalf("ids %v", ids)
	}
	var got []int
	for range 3 {
		got = append(got, do(t, srv, http.MethodGet, "/api/me", "", nil).status)
	}
	if got[0] != 503 || got[1] != 200 || got[2] != 200 {
		t.Errorf("statuses %v", got)
	}
}

// spec adx.md §7.1: an option combination the combo does not have.
func TestADXInvalidAttributes(t *testing.T) {
	srv := newTestServer(t)
	r := do(t, srv, http.MethodPost, "/api/dataValueSets", "application/adx+xml", []byte(`<adx xmlns="urn:ihe:qrph:adx:2015">
  <group dataSet="MAL_MONTHLY" orgUnit="KL_N_F1" period="2024-01-01/P1M" FUNDING="GOV">
    <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="GOV" value="2"/>
  </group></adx>`))
	cs := conflictsOf(summaryOf(t, r))
	if len(cs) != 1 || cs[0]["object"] != "ADX Error" || cs[0]["value"] != "Invalid attributes: {AGE=GOV, SEX=F}" {
		t.Errorf("conflicts %v", cs)
	}
}

// GET /api/system/tasks/{type} lists every job's notifications; the logger
// receives one line per import.
func TestTaskListAndLogging(t *testing.T) {
	var logs bytes.Buffer
	srv := newTestServer(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	id := postJSON(t, srv, "?async=true", okBody).body["response"].(map[string]any)["id"].(string)
	r := do(t, srv, http.MethodGet, "/api/system/tasks/DATAVALUE_IMPORT", "", nil)
	if _, ok := r.body[id]; !ok {
		t.Errorf("tasks %s", r.raw)
	}
	postJSON(t, srv, "", okBody)
	if !strings.Contains(logs.String(), "dataValueSets import") {
		t.Errorf("logs: %s", logs.String())
	}
}
