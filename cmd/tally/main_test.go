package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

func runTest(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := runCLI(ctx, &cliEnv{stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }}, args)
	return code, out.String(), errOut.String()
}

func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	for _, c := range commands() {
		code, out, _ := runTest(t, nil, c.name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: tally "+c.name) || !strings.Contains(out, "Example:") {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, out)
		}
	}
	if code, _, errOut := runTest(t, nil, "nope"); code != 2 || !strings.Contains(errOut, `unknown command "nope"`) {
		t.Errorf("unknown command: exit %d %s", code, errOut)
	}
}

func TestDemoDeliversTheSamplePayloads(t *testing.T) {
	code, out, errOut := runTest(t, nil, "demo", "--addr", "127.0.0.1:0", "--once")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, errOut)
	}
	// Every sample payload, through its own source and mapping, is delivered whole: the
	// CHT export (12), the EPI JSON (32) and malaria CSV (24) posted as a DHIS2 client
	// would, the ADX message (16) and the tracker's program indicators (52); then the
	// scheduled exchange pulls April–June 2024 from analytics (149 non-zero values).
	for _, want := range []string{"posted chw-2024-01.json", "to /ingest/tracker", "to /ingest/adx",
		"to /api/dataValueSets", "ran exchange tracker-pi-to-hmis: pulled 149 program indicator values",
		"The emulated HMIS now holds 285 values", "CHW_HOUSEHOLD_VISITS", "MAL_CONFIRMED", "curl"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, ": delivered\n"); n != 6 {
		t.Errorf("%d of 6 transactions delivered:\n%s\n%s", n, out, errOut)
	}
}

func TestConfigValidate(t *testing.T) {
	env := map[string]string{"TALLY_ADMIN_TOKEN": "change-me-0123456789", "CHT_TOKEN": "cht-token-0123456789", "HMIS_PASSWORD": "district"}
	if code, out, errOut := runTest(t, env, "config", "validate", "../../examples/tally.yaml"); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("targets:\n  - name: hmis\n    url: nope\nopenhim:\n  enabled: true\n"), 0o600)
	code, out, _ := runTest(t, nil, "config", "validate", bad)
	if code != 1 || !strings.Contains(out, "bad.yaml:3: targets[0].url") || !strings.Contains(out, "openhim.") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestOpenHIMRegisterDryRunPassesTheCoresRules(t *testing.T) {
	code, out, errOut := runTest(t, nil, "openhim", "register", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	if err := openhimtest.ValidateRegistration([]byte(out)); err != nil {
		t.Fatalf("the core would refuse the body: %v\n%s", err, out)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(out), &body); err != nil || body["urn"] != "urn:mediator:tally" {
		t.Fatalf("body = %s", out)
	}
}

// tally version reads the binary's build information: under go test that is the test
// binary's, whose Go version is this runtime's.
func TestVersion(t *testing.T) {
	if code, out, _ := runTest(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "tally ") || !strings.HasSuffix(out, " "+runtime.Version()+"\n") {
		t.Fatalf("exit %d %q", code, out)
	}
	code, out, _ := runTest(t, nil, "version", "-o", "json")
	var b mediator.BuildInfo
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil || b.GoVersion != runtime.Version() || b.Version == "" || b.Version == "dev" {
		t.Fatalf("version -o json: exit %d %v %q", code, err, out)
	}
}

// A secret in the environment (the admin token, a source's password, DHIS2's) is read
// when a command runs, never shown as a flag default: no --help of any command prints it.
func TestSecretsNeverInHelp(t *testing.T) {
	const secret = "s3cret-do-not-print-0123456789"
	env := map[string]string{"TALLY_ADMIN_TOKEN": secret, "TALLY_PASSWORD": secret, "TALLY_USER": secret,
		"DHIS2_PASSWORD": secret, "DHIS2_TOKEN": secret, "TALLY_URL": "http://u:" + secret + "@127.0.0.1:1"}
	for _, args := range [][]string{{"help"}, {"--help"}} {
		if _, out, errOut := runTest(t, env, args...); strings.Contains(out+errOut, secret) {
			t.Errorf("tally %v prints the secret", args)
		}
	}
	for _, c := range commands() {
		code, out, errOut := runTest(t, env, c.name, "--help")
		if code != 0 || strings.Contains(out+errOut, secret) {
			t.Errorf("tally %s --help: exit %d, prints the secret: %v", c.name, code, strings.Contains(out+errOut, secret))
		}
	}
}

// serveTest runs Tally in process with the configuration yml and returns its base URL.
func serveTest(t *testing.T, yml string) string {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := mediator.New(cfg, mediator.Options{Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	return "http://" + svc.Addr()
}

// TestMappingCheckAgainstLiveMetadata runs `tally mapping check` on the example
// configuration against the emulator's live metadata, then on a table with a data element
// the HMIS does not have: the problem names the table's file and line.
func TestMappingCheckAgainstLiveMetadata(t *testing.T) {
	emu := dhis2test.NewServer()
	defer emu.Close()
	env := map[string]string{"TALLY_ADMIN_TOKEN": "change-me-0123456789", "CHT_TOKEN": "cht-token-0123456789",
		"HMIS_PASSWORD": dhis2test.SamplePassword, "HMIS_URL": emu.URL}
	code, out, errOut := runTest(t, env, "mapping", "check", "--config", "../../examples/tally.yaml")
	if code != 0 || !strings.Contains(out, "agree") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}

	dir := t.TempDir()
	cfg, _ := os.ReadFile("../../examples/tally.yaml")
	os.MkdirAll(filepath.Join(dir, "mappings"), 0o755)
	os.WriteFile(filepath.Join(dir, "tally.yaml"), cfg, 0o644)
	os.WriteFile(filepath.Join(dir, "mappings", "tracker-to-hmis.csv"),
		[]byte("source,data_element,coc,aoc\nPI_BCG_F_LT1,EPI_BCG,F_LT1,\nPI_MAL_TREATED,MAL_NOT_THERE,,GOV\n"), 0o644)
	code, out, _ = runTest(t, env, "mapping", "check", "--config", filepath.Join(dir, "tally.yaml"))
	if code != 1 || !strings.Contains(out, "tracker-to-hmis.csv:3") || !strings.Contains(out, "MAL_NOT_THERE") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
