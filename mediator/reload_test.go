package mediator_test

import (
	"context"
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
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	table := filepath.Join(dir, "pi.csv")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(table, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		// Make the change visible to an mtime poll even within one clock tick.
		later := time.Now().Add(time.Duration(len(content)) * time.Second)
		os.Chtimes(table, later, later)
	}
	write("source,data_element,coc\nPI_BCG_F_LT1,EPI_BCG,F_LT1\n")
	yml := configYAML(emu.URL, filepath.Join(dir, "nats"), mappingSources) + `mappings:
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
	defer h.stop()
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
