package config

import (
	"strings"
	"testing"
)

// Each mistake is one problem, with its line and a plain sentence: a word where a number
// goes, a duration without a unit Go knows, a list where a text goes. The rest of the same
// target is read as written, so nothing else about it is reported (before, "1day" stopped
// the decoding of the whole target and nine problems about its name, URL and credentials
// followed).
func TestWrongTypesAreOneProblemEachWithTheirLine(t *testing.T) {
	yml := `admin: {token: admin-token-0123456789}
sources:
  - name: cht
    auth: {tokens: [cht-token-0123456789]}
targets:
  - name: hmis
    url: https://hmis.example.org
    username: admin
    password: district
    concurrency: two
    retry: {max_age: 1day, initial_delay: 1s}
    id_schemes: [CODE]
http: {max_body_bytes: lots}
`
	_, err := Parse("tally.yaml", []byte(yml), env(nil))
	probs := wantProblems(t, err, []lineProblem{
		{10, `targets[0].concurrency: want a whole number, e.g. 4, not "two"`},
		{11, `targets[0].retry.max_age: "1day" is not a duration: write a number and a unit (s, m or h), e.g. 30s, 5m, 24h`},
		{12, `targets[0].id_schemes: want a mapping of keys to values (key: value), not a list`},
		{13, `http.max_body_bytes: "lots" is not a size`},
	})
	if len(probs) != 4 {
		t.Errorf("%d problems, want exactly 4 (one per mistake):\n%s", len(probs), err)
	}
	if strings.Contains(err.Error(), "cannot unmarshal") {
		t.Errorf("a raw decoder message leaked:\n%s", err)
	}
}

// An unset ${VAR} is one problem; that the value is then empty is not a second one.
func TestUnsetVariableIsOneProblem(t *testing.T) {
	yml := `admin: {token: admin-token-0123456789}
sources:
  - name: cht
    auth: {tokens: ["${CHT_TOKEN}"]}
targets:
  - {name: hmis, url: "https://hmis.example.org", username: admin, password: district}
`
	_, err := Parse("tally.yaml", []byte(yml), env(nil))
	probs := wantProblems(t, err, []lineProblem{{4, "${CHT_TOKEN} is not set"}})
	if len(probs) != 1 {
		t.Errorf("%d problems, want 1:\n%s", len(probs), err)
	}
}

// One credential must serve one principal: two sources sharing a token or a user, a source
// token that opens the admin API, a password shorter than DHIS2 allows, a URL with a
// password in it.
func TestSharedWeakAndEmbeddedCredentialsAreRefused(t *testing.T) {
	yml := `admin:
  token: admin-token-0123456789
  credentials: [{name: viewer, token: viewer-token-0123456789, scope: read}]
sources:
  - name: cht
    auth: {tokens: [shared-token-0123456789]}
  - name: chw
    auth: {tokens: [shared-token-0123456789]}
  - name: sneaky
    auth: {tokens: [viewer-token-0123456789]}
  - name: dvs
    auth: {users: [{username: sender, password: short}]}
  - name: dvs2
    auth: {users: [{username: sender, password: long-enough-password}]}
targets:
  - {name: hmis, url: "https://admin:district@hmis.example.org", username: admin, password: district}
`
	_, err := Parse("tally.yaml", []byte(yml), env(nil))
	wantProblems(t, err, []lineProblem{
		{8, "sources[1].auth.tokens[0]: the same token as sources[0].auth.tokens[0]"},
		{10, "sources[2].auth.tokens[0]: the same token as admin.credentials[0]: a source's token must not open the admin API"},
		{12, "sources[3].auth.users[0].password: a password must be at least 8 characters"},
		{14, `sources[4].auth.users[0].username: "sender" is already a user of sources[3] (dvs)`},
		{16, "targets[0].url: the URL carries a user name or password"},
	})
	if strings.Contains(err.Error(), "district") || strings.Contains(err.Error(), "shared-token") {
		t.Errorf("a problem repeats a secret:\n%s", err)
	}
}
