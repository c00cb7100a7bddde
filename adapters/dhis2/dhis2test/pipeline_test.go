package dhis2test

import (
	"strings"
	"testing"
)

func seedCHW(t *testing.T, srv *Server) {
	t.Helper()
	body := `{"dataSet":"CHW_MONTHLY","period":"202401","orgUnit":"KL_N_F1","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","value":"70"},
	  {"dataElement":"CHW_U5_ASSESSMENTS","value":"12"},
	  {"dataElement":"CHW_PREGNANCIES_REGISTERED","value":"3"}]}`
	if sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE", body)); sum["status"] != "SUCCESS" {
		t.Fatalf("seed: %v", sum)
	}
}

const scopedExchange = `{"deletion":{"orgUnits":["KL_N_F1"],"periods":["202401"],
   "elements":[{"dataElement":"CHW_HOUSEHOLD_VISITS"},{"dataElement":"CHW_U5_ASSESSMENTS"}]},
 "dataValues":[{"dataElement":"CHW_U5_ASSESSMENTS","period":"202401","orgUnit":"KL_N_F1","value":"15"}]}`

// spec dhis2.md §5 (2.43+ deletion scope): values in scope are deleted and
// counted, then the payload is upserted; dryRun only counts.
func TestDeletionScope(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.43"))
	seedCHW(t, srv)
	sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE&dryRun=true", scopedExchange))
	if got := counts(t, sum); got != [4]int{0, 1, 2, 0} || srv.Store().Len() != 3 {
		t.Errorf("dryRun: %v, %d stored", got, srv.Store().Len())
	}
	sum = summaryOf(t, postJSON(t, srv, "?idScheme=CODE", scopedExchange))
	if got := counts(t, sum); got != [4]int{0, 1, 2, 0} || sum["status"] != "SUCCESS" {
		t.Errorf("counts %v: %v", got, sum)
	}
	if _, ok := srv.Lookup("CHW_HOUSEHOLD_VISITS", "202401", "KL_N_F1", "", ""); ok {
		t.Error("stale value in scope survived (the §12 stale-values case)")
	}
	if v, _ := srv.Lookup("CHW_U5_ASSESSMENTS", "202401", "KL_N_F1", "", ""); v.Value != "15" {
		t.Errorf("upsert after scope: %+v", v)
	}
	if v, _ := srv.Lookup("CHW_PREGNANCIES_REGISTERED", "202401", "KL_N_F1", "", ""); v.Value != "3" {
		t.Errorf("value outside scope touched: %+v", v)
	}
	// an unknown id in the scope rejects the set
	bad := strings.Replace(scopedExchange, `"orgUnits":["KL_N_F1"]`, `"orgUnits":["NOPE"]`, 1)
	sum = summaryOf(t, postJSON(t, srv, "?idScheme=CODE", bad))
	if cs := conflictsOf(sum); sum["status"] != "ERROR" || len(cs) != 1 || cs[0]["errorCode"] != "E8034" {
		t.Errorf("invalid scope: %v", sum)
	}
}

// spec dhis2.md §10.4: targets older than 2.43 ignore the deletion field.
func TestDeletionScopeIgnoredBefore243(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.42"))
	seedCHW(t, srv)
	sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE", scopedExchange))
	if got := counts(t, sum); got != [4]int{0, 1, 0, 0} || srv.Store().Len() != 3 {
		t.Errorf("counts %v, %d stored", got, srv.Store().Len())
	}
}

// spec dhis2.md §1.2 atomic (2.43+): one invalid value rejects everything (E8000).
func TestAtomic(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.43"))
	body := `{"dataSet":"CHW_MONTHLY","period":"202401","orgUnit":"KL_N_F1","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","value":"70"},{"dataElement":"CHW_U5_ASSESSMENTS","value":"many"}]}`
	sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE&atomic=true", body))
	if sum["status"] != "ERROR" || srv.Store().Len() != 0 {
		t.Fatalf("atomic: %v", sum)
	}
	codes := []any{}
	for _, c := range conflictsOf(sum) {
		codes = append(codes, c["errorCode"])
	}
	if len(codes) != 2 || codes[0] != "E8122" || codes[1] != "E8000" {
		t.Errorf("codes %v", codes)
	}
	sum = summaryOf(t, postJSON(t, srv, "?idScheme=CODE", body))
	if got := counts(t, sum); sum["status"] != "WARNING" || got != [4]int{0, 1, 0, 1} {
		t.Errorf("non-atomic: %v %v", sum["status"], got)
	}
	c := conflictsOf(sum)[0]
	if c["value"] != "Value #1 value `many` is no valid INTEGER_ZERO_OR_POSITIVE" || c["objects"].(map[string]any)["args"] != "1-many-INTEGER_ZERO_OR_POSITIVE" {
		t.Errorf("E8122 conflict %v", c)
	}
}

// spec dhis2.md §1.6: the 2.43 JSON reader takes followUp (camelCase); the
// emulator accepts both spellings on every version.
func TestFollowUpSpelling(t *testing.T) {
	for _, ver := range []string{"2.40", "2.43"} {
		srv := newTestServer(t, WithVersion(ver))
		postJSON(t, srv, "?idScheme=CODE", treated("202401", "5", `"followUp":true`))
		if v, _ := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); !v.FollowUp {
			t.Errorf("%s: followUp not read", ver)
		}
	}
}

// spec dhis2.md §12, README §6.2: 2.43 stores insignificant zeros and counts
// CREATE/UPDATE strategies as plain upserts.
func TestPipelineZerosAndStrategies(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.43"))
	postJSON(t, srv, "?idScheme=CODE", strings.Replace(treated("202401", "0"), "MAL_TREATED", "MAL_LLIN_DISTRIBUTED", 1))
	if v, ok := srv.Lookup("MAL_LLIN_DISTRIBUTED", "202401", "KL_N_F1", "", "GOV"); !ok || v.Value != "0" {
		t.Errorf("zero not stored: %+v", v)
	}
	if got := counts(t, summaryOf(t, postJSON(t, srv, "?idScheme=CODE&importStrategy=CREATE", treated("202401", "1")))); got != [4]int{0, 1, 0, 0} {
		t.Errorf("CREATE: %v", got)
	}
}
