package mediator_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// writeRules writes the mapping table of the cht source: its own code for a data element
// to the HMIS's code (each SEX_AGE combo as it is); other codes pass unmapped, as HMIS
// codes already.
func writeRules(t *testing.T, dir, source, target, scale string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("source,source_coc,data_element,coc,scale\n")
	for _, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s\n", source, coc, target, coc, scale)
	}
	file := filepath.Join(dir, "cht.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// Visible to the file watcher's mtime poll even within one clock tick.
	later := time.Now().Add(time.Duration(len(target)) * time.Second)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
}

// chtMapping gives source cht a mapping set read from cht.csv beside the config file.
var chtMapping = testConfig{
	source: "    mapping: cht-to-hmis\n    unmapped: pass\n",
	extra: `mappings:
  - name: cht-to-hmis
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    tables: [cht.csv]
`,
}

// The implementer's own mapping rules, through the running service's mapping engine (no
// mapper is injected): a rule with a wrong scale (-1 for 1) makes values the target refuses
// (negative doses); a replay as they stand fails again and keeps the history, and after the
// rule is fixed and the table reloaded, a re-mapped replay sends exactly what the rules now
// say. The batch is mapped once by the mapper stage (the first payload after a start) and
// once at ingest, which maps it while it reads the payload (a first payload made the
// target's metadata known): the source values must travel with it either way.
func TestDeadLetterReplayKeepsHistoryAndRemapsWithCurrentRules(t *testing.T) {
	for _, stage := range []string{"mapper", "ingest"} {
		t.Run(stage, func(t *testing.T) { testDeadLetterReplayRemaps(t, stage) })
	}
}

func testDeadLetterReplayRemaps(t *testing.T, stage string) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	writeRules(t, dir, "BCG", "EPI_BCG", "-1") // a sign typo
	cfg := chtMapping
	cfg.dir, cfg.targets = dir, []testTarget{{name: "hmis", url: emu.URL}}
	h := startConfigured(t, cfg, mediator.Options{})
	stored := 0
	if stage == "ingest" {
		warm := epiValues("202312", 0)[16:32] // EPI_PENTA1 only: plain
		h.waitStatus(h.ingest(dvsBody(warm)), txlog.TxDelivered)
		stored = len(warm)
	}
	before := h.metricSum(t, "tally_mapper_batches_total", "stage", stage)

	values := epiValues("202401", 0)[:32] // EPI_BCG and EPI_PENTA1
	for i := range 16 {
		values[i].de = "BCG" // the source's own code for BCG
	}
	id := h.ingest(dvsBody(values))
	h.waitStatus(id, txlog.TxPartiallyDelivered)
	if n := h.metricSum(t, "tally_mapper_batches_total", "stage", stage) - before; n != 1 {
		t.Fatalf("batches mapped by stage %s: %v, want the payload's one", stage, n)
	}
	dls := h.deadLetters("code=E7619") // value not a zero or positive integer
	if len(dls) != 1 || num(dls[0]["values"]) != 16 {
		t.Fatalf("dead letters = %v, want the 16 BCG values", dls)
	}
	seq := num(dls[0]["seq"])
	_, full := h.admin("GET", fmt.Sprintf("/admin/v1/dlq/%d", seq), nil)
	src, _ := full["sourceBatch"].(map[string]any)
	if src == nil || src["dataValues"].([]any)[0].(map[string]any)["dataElement"] != "BCG" {
		t.Fatalf("dead letter does not keep the source values: %v", full["sourceBatch"])
	}

	// Replayed as it is, the batch fails again: the new dead letter keeps the first failure.
	code, res := h.admin("POST", fmt.Sprintf("/admin/v1/dlq/%d/replay", seq), nil)
	if code != http.StatusOK {
		t.Fatalf("replay: HTTP %d %v", code, res)
	}
	var again []map[string]any
	waitUntil(t, 10*time.Second, "the replay to fail again", func() bool {
		again = h.deadLetters("tx=" + id)
		return len(again) == 1 && num(again[0]["seq"]) != seq
	})
	if num(again[0]["replays"]) != 1 {
		t.Errorf("replays = %v, want 1", again[0]["replays"])
	}
	_, full = h.admin("GET", fmt.Sprintf("/admin/v1/dlq/%d", num(again[0]["seq"])), nil)
	hist, _ := full["history"].([]any)
	if len(hist) != 1 || hist[0].(map[string]any)["reason"] != pipeline.ReasonRejected || num(hist[0].(map[string]any)["replay"]) != 0 {
		t.Errorf("history = %v, want the original failure", full["history"])
	}

	// The rule is fixed; the service's file watcher reloads the table (as SIGHUP would),
	// and a replay with remap maps the source values again with the rules now in force.
	writeRules(t, dir, "BCG", "EPI_BCG", "1")
	waitUntil(t, 10*time.Second, "the mapping reload", func() bool {
		return h.metricValue(t, "tally_mapping_reloads_total", "success") >= 1
	})
	code, res = h.admin("POST", "/admin/v1/dlq/replay", map[string]any{"all": true, "filter": map[string]any{"tx": id}, "remap": true})
	if code != http.StatusOK || num(res["replayed"]) != 1 {
		t.Fatalf("bulk replay: HTTP %d %v", code, res)
	}
	tx := h.waitStatus(id, txlog.TxDelivered)
	assertStoredOnce(t, emu, stored+32)
	if v, ok := emu.Lookup("EPI_BCG", "202401", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "1" {
		t.Errorf("EPI_BCG/KL_N_F1/F_LT1 = %+v, %v", v, ok)
	}
	events, _ := tx["events"].([]any)
	if len(events) != 2 || events[1].(map[string]any)["remapped"] != true {
		t.Errorf("events = %v, want two replays, the second re-mapped", events)
	}
	replays := 0
	for _, x := range tx["deliveries"].([]any) {
		if d := x.(map[string]any); d["seq"] == float64(0) {
			replays = max(replays, num(d["replay"]))
		}
	}
	if replays != 2 {
		t.Errorf("the batch's delivery records go to replay %d, want 2 (history kept)", replays)
	}
	if n := h.metricValue(t, "tally_dlq_replayed_total", "hmis"); n != 2 {
		t.Errorf("tally_dlq_replayed_total = %v, want 2", n)
	}
}

// A batch that mapping itself refused was never mapped: replayed without asking for remap,
// it is mapped again with the rules in force, and the mapped codes arrive.
func TestDeadLetterRefusedByMappingIsRemappedOnReplay(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	writeRules(t, dir, "BCG", "EPI_BCGX", "") // a typo: no such data element at the target
	cfg := chtMapping
	cfg.dir, cfg.targets = dir, []testTarget{{name: "hmis", url: emu.URL}}
	h := startConfigured(t, cfg, mediator.Options{})

	values := epiValues("202401", 0)[:16]
	for i := range values {
		values[i].de = "BCG"
	}
	id := h.ingest(dvsBody(values))
	h.waitStatus(id, txlog.TxFailed)
	dls := h.deadLetters("reason=" + pipeline.ReasonMapping)
	if len(dls) != 1 || num(dls[0]["values"]) != 16 {
		t.Fatalf("dead letters = %v, want the 16 values mapping refused", dls)
	}
	seq := num(dls[0]["seq"])

	// While the rule is still wrong, replay refuses and says why; the letter stays.
	code, res := h.admin("POST", fmt.Sprintf("/admin/v1/dlq/%d/replay", seq), nil)
	if code == http.StatusOK || !strings.Contains(fmt.Sprint(res), "EPI_BCGX") {
		t.Fatalf("replay with the typo still in place: HTTP %d %v", code, res)
	}
	if n := len(h.deadLetters("tx=" + id)); n != 1 {
		t.Fatalf("%d dead letters after the refused replay, want the one kept", n)
	}

	writeRules(t, dir, "BCG", "EPI_BCG", "")
	if err := h.svc.ReloadMappings(); err != nil { // what SIGHUP calls
		t.Fatal(err)
	}
	code, res = h.admin("POST", fmt.Sprintf("/admin/v1/dlq/%d/replay", seq), nil) // no remap asked
	if code != http.StatusOK {
		t.Fatalf("replay: HTTP %d %v", code, res)
	}
	tx := h.waitStatus(id, txlog.TxDelivered)
	assertStoredOnce(t, emu, 16)
	if v, ok := emu.Lookup("EPI_BCG", "202401", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "1" {
		t.Errorf("EPI_BCG/KL_N_F1/F_LT1 = %+v, %v", v, ok)
	}
	if events, _ := tx["events"].([]any); len(events) != 1 || events[0].(map[string]any)["remapped"] != true {
		t.Errorf("events = %v, want one re-mapped replay", tx["events"])
	}
}

func TestDeadLetterListFiltersShowAndDiscard(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{})

	// Three transactions, each with one kind of rejected value.
	bad := func(period, de, ou string) []byte {
		vs := epiValues(period, 0)[:4]
		vs = append(vs, dv{de, period, ou, "F_LT1", "", "1"})
		return dvsBody(vs)
	}
	unknownOU := h.ingest(bad("202401", "EPI_BCG", "KL_NOWHERE"))
	unknownDE := h.ingest(bad("202402", "EPI_NOTHING", "KL_N_F1"))
	third := h.ingest(bad("202403", "EPI_BCG", "KL_NOWHERE"))
	for _, id := range []string{unknownOU, unknownDE, third} {
		h.waitStatus(id, txlog.TxPartiallyDelivered)
	}
	if n := len(h.deadLetters("")); n != 3 {
		t.Fatalf("%d dead letters, want 3", n)
	}
	// tally_dlq_depth{reason,target} counts what waits now (its first label is the reason).
	if n := h.metricValue(t, "tally_dlq_depth", pipeline.ReasonRejected); n != 3 {
		t.Errorf("tally_dlq_depth{rejected} = %v, want 3", n)
	}
	for q, want := range map[string]int{
		"target=hmis": 3, "source=cht": 3, "reason=rejected": 3, "reason=exhausted": 0,
		"code=E7610": 1, "code=e7612": 2, "tx=" + unknownDE: 1, "since=1h": 3, "until=1h": 0,
		"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)): 0,
	} {
		if got := len(h.deadLetters(q)); got != want {
			t.Errorf("?%s: %d entries, want %d", q, got, want)
		}
	}
	code, page := h.admin("GET", "/admin/v1/dlq?limit=2", nil)
	if code != http.StatusOK || num(page["total"]) != 3 || len(page["deadLetters"].([]any)) != 2 || page["next"] == nil {
		t.Fatalf("page 1 = %v", page)
	}
	_, page2 := h.admin("GET", fmt.Sprintf("/admin/v1/dlq?limit=2&after=%d", num(page["next"])), nil)
	if l := page2["deadLetters"].([]any); len(l) != 1 || page2["next"] != nil {
		t.Errorf("page 2 = %v", page2)
	}

	byID := h.deadLetters("tx=" + unknownDE)[0]
	if code, body := h.admin("GET", "/admin/v1/dlq/"+url.PathEscape(byID["id"].(string)), nil); code != http.StatusOK || body["seq"] != byID["seq"] {
		t.Errorf("show by id: HTTP %d %v", code, body)
	}
	for path, want := range map[string]int{"/admin/v1/dlq/999": 404, "/admin/v1/dlq/x": 404, "/admin/v1/dlq?since=soon": 400,
		"/admin/v1/dlq?limit=0": 400, "/admin/v1/dlq?target=other": 400, "/admin/v1/dlq?reason=nonsense": 400} {
		if code, body := h.admin("GET", path, nil); code != want {
			t.Errorf("GET %s: HTTP %d, want %d: %v", path, code, want, body)
		}
	}
	if code, body := h.admin("POST", "/admin/v1/dlq/replay", map[string]any{}); code != http.StatusBadRequest {
		t.Errorf("replay without a selection: HTTP %d %v", code, body)
	}

	one := h.deadLetters("code=E7610")[0]
	code, res := h.admin("DELETE", fmt.Sprintf("/admin/v1/dlq/%d", num(one["seq"])), nil)
	if code != http.StatusOK || res["status"] != "discarded" {
		t.Fatalf("discard: HTTP %d %v", code, res)
	}
	if n := h.metricValue(t, "tally_dlq_depth", pipeline.ReasonRejected); n != 2 {
		t.Errorf("tally_dlq_depth{rejected} after a discard = %v, want 2", n)
	}
	if code, _ := h.admin("DELETE", fmt.Sprintf("/admin/v1/dlq/%d", num(one["seq"])), nil); code != http.StatusNotFound {
		t.Errorf("discarding twice: HTTP %d, want 404", code)
	}
	tx := h.tx(unknownDE)
	if ev, _ := tx["events"].([]any); len(ev) != 1 || ev[0].(map[string]any)["kind"] != txlog.EventDiscarded {
		t.Errorf("events = %v, want the discard", tx["events"])
	}
	if tx["status"] != txlog.TxPartiallyDelivered {
		t.Errorf("a discard changed the status to %v", tx["status"])
	}
	code, res = h.admin("POST", "/admin/v1/dlq/discard", map[string]any{"all": true, "filter": map[string]any{"code": "E7612"}})
	if code != http.StatusOK || num(res["discarded"]) != 2 {
		t.Fatalf("bulk discard: HTTP %d %v", code, res)
	}
	if n := len(h.deadLetters("")); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	if n := h.metricValue(t, "tally_dlq_depth", pipeline.ReasonRejected); n != 0 {
		t.Errorf("tally_dlq_depth{rejected} after discarding all = %v, want 0", n)
	}
	if n := h.metricValue(t, "tally_dlq_discarded_total", "hmis"); n != 3 {
		t.Errorf("tally_dlq_discarded_total = %v, want 3", n)
	}
}

func TestTransactionListFilters(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{})
	good := h.ingest(dvsBody(epiValues("202401", 0)))
	partial := h.ingest(dvsBody(append(epiValues("202402", 0), dv{"EPI_BCG", "202402", "KL_NOWHERE", "F_LT1", "", "1"})))
	h.waitStatus(good, txlog.TxDelivered)
	h.waitStatus(partial, txlog.TxPartiallyDelivered)

	list := func(q string) []string {
		t.Helper()
		code, body := h.admin("GET", "/admin/v1/transactions?"+q, nil)
		if code != http.StatusOK {
			t.Fatalf("?%s: HTTP %d %v", q, code, body)
		}
		var ids []string
		for _, x := range body["transactions"].([]any) {
			ids = append(ids, x.(map[string]any)["id"].(string))
		}
		return ids
	}
	for q, want := range map[string][]string{
		"":                 {partial, good},
		"status=delivered": {good},
		"status=" + url.QueryEscape("partially delivered"): {partial},
		"status=failed":             nil,
		"source=cht&limit=1":        {partial},
		"source=exchange":           nil,
		"since=1h":                  {partial, good},
		"until=1h":                  nil,
		"since=1h&status=delivered": {good},
	} {
		if got := list(q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("?%s = %v, want %v", q, got, want)
		}
	}
	if code, _ := h.admin("GET", "/admin/v1/transactions?status=lost", nil); code != http.StatusBadRequest {
		t.Errorf("unknown status: HTTP %d, want 400", code)
	}
}
