package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

const (
	testAdmin = "admin-token-0123456789"
	testCHT   = "cht-token-0123456789"
)

// startService runs Tally in-process against target, for the CLI to talk to.
func startService(t *testing.T, target string) string {
	t.Helper()
	yml := fmt.Sprintf(`
nats: {store_dir: %q}
admin: {token: %s}
sources:
  - name: cht
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
    retry: {initial_delay: 20ms, max_delay: 100ms}
`, t.TempDir(), testAdmin, testCHT, target)
	return serveTest(t, yml)
}

// cli runs a tally command and returns its exit code and output.
func cli(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code := runCLI(context.Background(), env, args)
	return code, out.String(), errOut.String()
}

func TestDLQCommands(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	base := startService(t, emu.URL)
	api := []string{"--url", base, "--token", testAdmin}

	// Three payloads, each with one value for a facility the target does not know yet.
	for month := 1; month <= 3; month++ {
		body := fmt.Sprintf(`{"dataValues":[
{"dataElement":"EPI_BCG","period":"2024%02d","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"5"},
{"dataElement":"EPI_BCG","period":"2024%02d","orgUnit":"KL_N_F3","categoryOptionCombo":"F_LT1","value":"7"}]}`, month, month)
		req, _ := http.NewRequest("POST", base+"/ingest/cht", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testCHT)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("ingest: HTTP %d", resp.StatusCode)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, out, _ := cli(append([]string{"dlq", "list"}, api...)...)
		if strings.Contains(out, "3 dead letters") {
			if !strings.Contains(out, "rejected") || !strings.Contains(out, "E7612") {
				t.Errorf("list output lacks the reason or code:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters never appeared:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Flags after the subcommand and filters.
	if code, out, errOut := cli(append([]string{"dlq", "list", "--code", "E7610"}, api...)...); code != 0 || !strings.Contains(out, "0 dead letters") {
		t.Errorf("filtered list: exit %d\n%s%s", code, out, errOut)
	}
	// A filter value no dead letter can have is an error, not an empty table.
	if code, _, errOut := cli(append([]string{"dlq", "list", "--reason", "nonsense"}, api...)...); code != 1 || !strings.Contains(errOut, "not a dead-letter reason") {
		t.Errorf("--reason nonsense: exit %d %s", code, errOut)
	}
	if code, _, errOut := cli(append([]string{"dlq", "list", "--target", "nowhere"}, api...)...); code != 1 || !strings.Contains(errOut, `no target is called "nowhere"`) {
		t.Errorf("--target nowhere: exit %d %s", code, errOut)
	}
	if code, _, errOut := cli(append([]string{"dlq", "list", "-o", "xml"}, api...)...); code != 1 || !strings.Contains(errOut, "want table, json or yaml") {
		t.Errorf("-o xml: exit %d %s", code, errOut)
	}
	if code, out, _ := cli(append([]string{"dlq", "list", "-o", "yaml"}, api...)...); code != 0 || !strings.Contains(out, "deadLetters:\n") || !strings.Contains(out, "total: 3") {
		t.Errorf("-o yaml: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(append([]string{"dlq", "list", "-o", "json"}, api...)...); code != 0 || !json.Valid([]byte(out)) {
		t.Errorf("-o json: exit %d\n%s", code, out)
	}
	// Discarding: a dry run counts and keeps; without --yes and without a terminal, nothing goes.
	if code, out, errOut := cli(append([]string{"dlq", "discard", "--all", "--dry-run"}, api...)...); code != 0 || !strings.Contains(out, "would discard 3 dead letters (3 values)") {
		t.Errorf("discard --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cli(append([]string{"dlq", "discard", "--all"}, api...)...); code != 1 || !strings.Contains(errOut, "refusing to discard 3 dead letters (3 values) without --yes") {
		t.Errorf("discard without --yes: exit %d %s", code, errOut)
	}
	if _, out, _ := cli(append([]string{"dlq", "list"}, api...)...); !strings.Contains(out, "3 dead letters") {
		t.Errorf("a dry run or an unconfirmed discard discarded:\n%s", out)
	}
	// tx show: the summary first, the deliveries a page at a time.
	_, out, _ := cli(append([]string{"tx", "list", "-o", "json", "--limit", "1"}, api...)...)
	var txs struct {
		Transactions []struct {
			ID string `json:"id"`
		} `json:"transactions"`
	}
	if err := json.Unmarshal([]byte(out), &txs); err != nil || len(txs.Transactions) != 1 {
		t.Fatalf("tx list -o json: %v\n%s", err, out)
	}
	id := txs.Transactions[0].ID
	if code, out, _ := cli(append([]string{"tx", "show", id}, api...)...); code != 0 || !strings.Contains(out, "Transaction:") ||
		!strings.Contains(out, "Conflicts at hmis (first 1 of 1)") || !strings.Contains(out, "--values") {
		t.Errorf("tx show: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(append([]string{"tx", "show", id, "--values", "--page-size", "1"}, api...)...); code != 0 || !strings.Contains(out, "page 1 of 1 (1 delivery records)") {
		t.Errorf("tx show --values: exit %d\n%s", code, out)
	}
	if code, _, errOut := cli(append([]string{"tx", "list", "--status", "lost"}, api...)...); code != 1 || !strings.Contains(errOut, "want one of") {
		t.Errorf("tx list --status lost: exit %d %s", code, errOut)
	}
	// The refused discard was never sent; the audit log has no action yet.
	if code, out, errOut := cli(append([]string{"audit"}, api...)...); code != 0 || !strings.Contains(out, "TIME") || strings.Contains(out, "discard") {
		t.Errorf("audit: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := cli(append([]string{"dlq", "show", "1"}, api...)...)
	if code != 0 || !strings.Contains(out, `"KL_N_F3"`) {
		t.Errorf("show: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cli(append([]string{"dlq", "show", "999"}, api...)...); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("show of a missing entry: exit %d %s", code, errOut)
	}
	if code, _, _ := cli(append([]string{"dlq", "replay"}, api...)...); code != 2 {
		t.Errorf("replay without a selection: exit %d, want 2", code)
	}

	if err := emu.UpdateMetadata(func(m *dhis2test.Metadata) error {
		m.AddOrgUnit(dhis2test.OrgUnit{ID: "Kx3Fac00003", Code: "KL_N_F3", Name: "North Facility 3", Parent: "KL_NORTH"})
		ds := m.DataSet("EPI_MONTHLY")
		ds.OrgUnits = append(ds.OrgUnits, "KL_N_F3")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(append([]string{"dlq", "replay", "--all", "--target", "hmis", "--chunk", "1"}, api...)...)
	if code != 0 || !strings.Contains(out, "replayed 3 of 3 dead letters (3 values); 0 failed") {
		t.Fatalf("replay --all: exit %d\n%s%s", code, out, errOut)
	}
	for _, step := range []string{"0/3", "1/3", "2/3", "3/3"} {
		if !strings.Contains(errOut, step) {
			t.Errorf("progress lacks %s:\n%s", step, errOut)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for emu.Store().Len() != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("emulator holds %d values after the replay, want 6", emu.Store().Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, out, _ = cli(append([]string{"tx", "list", "--status", "delivered"}, api...)...)
		if strings.Count(out, "delivered") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tx list --status delivered:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, out, _ := cli(append([]string{"tx", "list", "--status", "delivered", "--since", "1h", "--limit", "1"}, api...)...); code != 0 || strings.Count(out, "delivered") != 1 {
		t.Errorf("tx list with filters: exit %d\n%s", code, out)
	}
	// The replays, one request per dead letter (--chunk 1), are admin actions on record.
	if code, out, errOut := cli(append([]string{"audit", "--who", "admin"}, api...)...); code != 0 || strings.Count(out, "POST /admin/v1/dlq/replay") != 3 {
		t.Errorf("audit --who admin: exit %d\n%s%s", code, out, errOut)
	}
}

// tally targets probe asks the service to probe a target now: what a reachable and an
// unreachable target answer, and the exit codes.
func TestTargetsProbeCommand(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	base := startService(t, emu.URL)
	api := []string{"--url", base, "--token", testAdmin}
	if code, out, errOut := cli(append([]string{"targets", "probe", "hmis"}, api...)...); code != 0 || !strings.Contains(out, "hmis answers (circuit closed)") {
		t.Errorf("probe of a reachable target: exit %d\n%s%s", code, out, errOut)
	}
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultStatus, Path: "/api/system/ping", Status: 503})
	if code, out, _ := cli(append([]string{"targets", "probe", "hmis"}, api...)...); code != 1 || !strings.Contains(out, "hmis does not answer") {
		t.Errorf("probe of an unreachable target: exit %d\n%s", code, out)
	}
	if code, _, errOut := cli(append([]string{"targets", "probe", "nowhere"}, api...)...); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("probe of an unknown target: exit %d %s", code, errOut)
	}
	if code, _, _ := cli(append([]string{"targets", "probe"}, api...)...); code != 2 {
		t.Errorf("probe without a name: exit %d, want 2", code)
	}
}
