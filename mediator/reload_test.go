package mediator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
)

// TestMappingReload: editing a mapping table is picked up without a restart (by the file
// watcher, and by ReloadMappings as SIGHUP calls it); a broken edit keeps the rules in
// force and says why.
func TestMappingReload(t *testing.T) {
	emu, svc, h, write := startWithTable(t, mappingSources)
	post := func(value string) {
		t.Helper()
		body := `{"period":"202403","orgUnit":"KL_N_F1","dataValues":[{"dataElement":"PI_BCG_F_LT1","value":"` + value + `"}]}`
		_, res := h.post("/ingest/tracker", "application/json", "Bearer "+trackerToken, []byte(body))
		h.waitStatus(res["transaction"].(string), "delivered")
	}
	post("1")
	if v, ok := emu.Lookup("EPI_BCG", "202403", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "1" {
		t.Fatalf("before the edit: %+v %v", v, ok)
	}

	// The file watcher notices the edit.
	write("source,data_element,coc\nPI_BCG_F_LT1,EPI_PENTA1,F_LT1\n")
	waitFor(t, "the watcher's reload", func() bool { return metric(t, h, `tally_mapping_reloads_total{result="success"}`) >= 1 })
	post("2")
	if v, ok := emu.Lookup("EPI_PENTA1", "202403", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "2" {
		t.Fatalf("after the edit: %+v %v", v, ok)
	}

	// A broken table is refused and the rules in force stay.
	write("source,data_element,coc\nPI_BCG_F_LT1,,F_LT1\n")
	if err := svc.ReloadMappings(); err == nil || !strings.Contains(err.Error(), "pi.csv:2") {
		t.Fatalf("bad reload: %v", err)
	}
	post("3")
	if v, ok := emu.Lookup("EPI_PENTA1", "202403", "KL_N_F1", "F_LT1", ""); !ok || v.Value != "3" {
		t.Fatalf("after a bad edit: %+v %v", v, ok)
	}
}

// startWithTable starts Tally with the sources given (YAML list items), the mapping set
// tracker-to-hmis reading its rules from pi.csv beside the configuration (first mapping
// PI_BCG_F_LT1 to EPI_BCG, F_LT1), and the emulator as target. write replaces the table,
// with a modification time an mtime poll sees even within one clock tick.
func startWithTable(t *testing.T, sources string) (*dhis2test.Server, *mediator.Service, *harness, func(string)) {
	t.Helper()
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	t.Cleanup(emu.Close)
	dir := t.TempDir()
	table := filepath.Join(dir, "pi.csv")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(table, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(len(content)) * time.Second)
		os.Chtimes(table, later, later)
	}
	write("source,data_element,coc\nPI_BCG_F_LT1,EPI_BCG,F_LT1\n")
	yml := configYAML(emu.URL, filepath.Join(dir, "nats"), sources) + `mappings:
  - name: tracker-to-hmis
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    tables: [pi.csv]
  - name: adx-to-hmis
    target_id_scheme: CODE
`
	file := filepath.Join(dir, "tally.yaml")
	os.WriteFile(file, []byte(yml), 0o644)
	cfg, err := config.Parse(file, []byte(yml), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	svc, err := mediator.New(cfg, mediator.Options{Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, svc: svc, base: "http://" + svc.Addr(), dir: filepath.Join(dir, "nats")}
	t.Cleanup(h.stop)
	return emu, svc, h, write
}

// metric reads one sample from /metrics, or -1.
func metric(t *testing.T, h *harness, series string) float64 {
	t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// TestAReloadWhileAPayloadIsReadLeavesItsRules: ingest maps a payload's batches as it reads
// them, with the rules in force when the payload arrived. Here the table changes and is
// reloaded after the payload began and before any of its batches was complete (batches of
// 2, the first value sent before the reload and five after): every value must still go where
// the old rules sent it, and the next payload where the new ones do. Mapping each batch with
// whatever was in force when it was read would split the payload between the two rule sets,
// and a reload that made the set roll up would write roll-up state for a payload not yet
// stored.
func TestAReloadWhileAPayloadIsReadLeavesItsRules(t *testing.T) {
	emu, svc, h, write := startWithTable(t, `  - name: tracker
    auth: {tokens: [`+trackerToken+`]}
    id_schemes: {id_scheme: CODE}
    mapping: tracker-to-hmis
    batch_size: 2
`)
	value := func(ou, pe, v string) string {
		return `{"dataElement":"PI_BCG_F_LT1","period":"` + pe + `","orgUnit":"` + ou + `","value":"` + v + `"}`
	}
	// A first payload has Tally read the target's metadata, so that the next one is mapped
	// at ingest rather than left to the mapper stage.
	_, res := h.post("/ingest/tracker", "application/json", "Bearer "+trackerToken,
		[]byte(`{"dataValues":[`+value("KL_N_F1", "202401", "1")+`]}`))
	h.waitStatus(res["transaction"].(string), "delivered")

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/ingest/tracker", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+trackerToken)
	// With Expect: 100-continue the client sends the body only once the handler reads it,
	// so the first write below returns once ingest has begun.
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	answer := make(chan map[string]any, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Error(err)
			answer <- nil
			return
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusAccepted {
			t.Errorf("HTTP %d, %v: %v", resp.StatusCode, err, m)
		}
		answer <- m
	}()
	keys := [][2]string{{"KL_N_F1", "202402"}, {"KL_N_F2", "202402"}, {"KL_S_F1", "202402"},
		{"KL_S_F2", "202402"}, {"KL_N_F1", "202403"}, {"KL_N_F2", "202403"}}
	if _, err := io.WriteString(pw, `{"dataValues":[`+value(keys[0][0], keys[0][1], "10")); err != nil {
		t.Fatal(err)
	}
	write("source,data_element,coc\nPI_BCG_F_LT1,EPI_PENTA1,F_LT1\n")
	if err := svc.ReloadMappings(); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for i, k := range keys[1:] {
		rest.WriteString("," + value(k[0], k[1], fmt.Sprint(11+i)))
	}
	rest.WriteString("]}")
	io.WriteString(pw, rest.String())
	pw.Close()
	m := <-answer
	if m == nil {
		t.FailNow()
	}
	h.waitStatus(m["transaction"].(string), "delivered")
	for i, k := range keys {
		if v, ok := emu.Lookup("EPI_BCG", k[1], k[0], "F_LT1", ""); !ok || v.Value != fmt.Sprint(10+i) {
			t.Errorf("%s %s: EPI_BCG holds %q (found %v), want %d, where the rules in force when the payload arrived map it", k[0], k[1], v.Value, ok, 10+i)
		}
		if v, ok := emu.Lookup("EPI_PENTA1", k[1], k[0], "F_LT1", ""); ok {
			t.Errorf("%s %s: EPI_PENTA1 holds %q: the payload was mapped with the rules reloaded while it was read", k[0], k[1], v.Value)
		}
	}

	_, res = h.post("/ingest/tracker", "application/json", "Bearer "+trackerToken,
		[]byte(`{"dataValues":[`+value("KL_S_F1", "202404", "20")+`]}`))
	h.waitStatus(res["transaction"].(string), "delivered")
	if v, ok := emu.Lookup("EPI_PENTA1", "202404", "KL_S_F1", "F_LT1", ""); !ok || v.Value != "20" {
		t.Errorf("the next payload: EPI_PENTA1 holds %q (found %v), want 20 under the reloaded rules", v.Value, ok)
	}
}
