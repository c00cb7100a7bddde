package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// tally send as a source with Basic credentials (flags or $TALLY_USER/$TALLY_PASSWORD), and
// a refused payload printing every problem the API listed, not only the first.
func TestSendWithBasicAuthPrintsEveryProblem(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	base := serveTest(t, fmt.Sprintf(`
nats: {store_dir: %q}
admin: {token: %s}
sources:
  - name: chw
    auth: {users: [{username: chw-sender, password: chw-password-0123456789}]}
    id_schemes: {id_scheme: CODE}
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
`, t.TempDir(), testAdmin, emu.URL))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	write := func(file, body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good, `{"dataValues":[{"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"5"}]}`)
	write(bad, `{"dataValues":[
{"dataElement":"EPI_BCG","period":"2024-13","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"5"},
{"dataElement":"EPI_BCG","period":"202401","orgUnit":"","categoryOptionCombo":"F_LT1","value":"5"},
{"dataElement":"","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","value":"5"}]}`)

	code, out, errOut := runTest(t, nil, "send", "--url", base, "--source", "chw", "--user", "chw-sender", "--password", "chw-password-0123456789", good)
	if code != 0 || !strings.Contains(out, `"status": "accepted"`) {
		t.Fatalf("send with --user/--password: exit %d\n%s%s", code, out, errOut)
	}
	env := map[string]string{"TALLY_URL": base, "TALLY_USER": "chw-sender", "TALLY_PASSWORD": "chw-password-0123456789"}
	code, out, errOut = runTest(t, env, "send", "--source", "chw", bad)
	if code != 1 || !strings.Contains(errOut, "HTTP 400") || !strings.Contains(errOut, "3 problems:") {
		t.Fatalf("send of a bad payload: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"data value 0: period", "data value 1: orgUnit", "data value 2: dataElement"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the problems lack %q:\n%s", want, errOut)
		}
	}
	if code, _, errOut := runTest(t, map[string]string{"TALLY_URL": base, "TALLY_USER": "chw-sender", "TALLY_PASSWORD": "wrong-password-0123456789"},
		"send", "--source", "chw", good); code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Errorf("send with a wrong password: exit %d %s", code, errOut)
	}
}
