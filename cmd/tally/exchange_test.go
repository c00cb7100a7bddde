package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// startExchangeService runs Tally in-process with an exchange from tracker to hmis.
func startExchangeService(t *testing.T, tracker, hmis string) string {
	t.Helper()
	yml := fmt.Sprintf(`
nats: {store_dir: %q}
admin: {token: %s}
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
    retry: {initial_delay: 20ms, max_delay: 100ms}
exchanges:
  - name: epi
    description: BCG program indicators to the HMIS
    source: {url: %s, username: admin, password: district}
    schedule: "0 2 * * *"
    requests:
      - name: BCG
        dx: [PI_BCG_F_LT1, PI_BCG_M_LT1]
        pe: ["202404", "202405"]
        ou: [KL, LEVEL-3]
        input_id_scheme: CODE
        output_id_scheme: ATTRIBUTE:%s
    id_schemes: {data_element: CODE, org_unit: UID, category_option_combo: UID}
    await: 10s
`, t.TempDir(), testAdmin, hmis, tracker, dhis2test.SampleAttributeAggDECode)
	return serveTest(t, yml)
}

func TestExchangeCommands(t *testing.T) {
	tracker := dhis2test.NewServer()
	defer tracker.Close()
	hmis := dhis2test.NewServer()
	defer hmis.Close()
	base := startExchangeService(t, tracker.URL, hmis.URL)
	api := []string{"--url", base, "--token", testAdmin}

	code, out, errOut := cli(append([]string{"exchange", "list"}, api...)...)
	if code != 0 || !strings.Contains(out, "epi") || !strings.Contains(out, "0 2 * * *") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = cli(append([]string{"exchange", "run", "epi", "--dry-run"}, api...)...)
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "Dry run") || len(hmis.Store().Values()) != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = cli(append([]string{"exchange", "run", "epi"}, api...)...)
	// 2 indicators × 4 facilities × 2 months.
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "16 imported") {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(hmis.Store().Values()); n != 16 {
		t.Errorf("the HMIS holds %d values", n)
	}

	code, out, errOut = cli(append([]string{"exchange", "runs", "epi"}, api...)...)
	if code != 0 || strings.Count(out, "succeeded") != 1 {
		t.Fatalf("runs: exit %d\n%s%s", code, out, errOut)
	}

	if code, _, errOut := cli(append([]string{"exchange", "run", "nope"}, api...)...); code != 1 || !strings.Contains(errOut, "no exchange") {
		t.Errorf("unknown exchange: exit %d %s", code, errOut)
	}
}

func TestExchangeImportCommand(t *testing.T) {
	tracker := dhis2test.NewServer()
	defer tracker.Close()
	file := filepath.Join(t.TempDir(), "exchanges.yaml")
	env := map[string]string{"DHIS2_PASSWORD": dhis2test.SamplePassword}
	code, out, errOut := runTest(t, env, "exchange", "import", "--from", tracker.URL, "--username", "admin",
		"--id", dhis2test.SampleExchangeTrackerToHMIS, "--file", file)
	if code != 0 || !strings.Contains(errOut, "wrote 1 exchanges") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "kl_tracker_to_hmis") || !strings.Contains(string(text), "LAST_12_MONTHS") {
		t.Fatalf("imported:\n%s", text)
	}
	// The fragment is a configuration that validates once its variables are set.
	vars := map[string]string{}
	for _, line := range strings.Split(string(text), "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "${"); ok {
				vars[strings.TrimSuffix(v, "}")] = "secret-value"
			}
		}
	}
	if code, out, errOut := runTest(t, vars, "config", "validate", file); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s\n%s", code, out, errOut, text)
	}

	if code, _, errOut := runTest(t, nil, "exchange", "import", "--from", tracker.URL, "--username", "admin"); code != 1 ||
		!strings.Contains(errOut, "DHIS2_PASSWORD") {
		t.Errorf("no password: exit %d %s", code, errOut)
	}
}

func TestConfigValidateReportsExchangeProblems(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	text := `targets: [{name: hmis, url: "http://hmis.example", username: admin, password: district}]
exchanges:
  - name: epi
    source: {url: "http://tracker.example", username: admin, password: district}
    schedule: "every night"
    requests:
      - {name: a, dx: [X], ou: [KL]}
`
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runTest(t, nil, "config", "validate", bad)
	if code != 1 || !strings.Contains(out, "bad.yaml:5: exchanges[0].schedule") || !strings.Contains(out, "bad.yaml:7: exchanges[0].requests[0].pe") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
