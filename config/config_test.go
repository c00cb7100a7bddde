package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseValidWithExpansion(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "pat")
	if err := os.WriteFile(secret, []byte("d2pat_from_file_0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `
http:
  addr: ${ADDR:-127.0.0.1:9090}
  max_body_bytes: 64MiB
admin:
  token: ${ADMIN}
sources:
  - name: cht
    format: json
    auth: {tokens: ["${file:` + secret + `}"]}
    targets: [hmis]
targets:
  - name: hmis
    url: https://hmis.example.org/dhis
    token: ${file:` + secret + `}
    id_schemes: {data_element: CODE, org_unit: code}
    retry: {max_attempts: 5, initial_delay: 2s}
`
	c, err := Parse("tally.yaml", []byte(yml), env(map[string]string{"ADMIN": "admin-token-0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:9090" || c.HTTP.MaxBodyBytes != 64<<20 {
		t.Errorf("http = %+v", c.HTTP)
	}
	tg, _ := c.Target("hmis")
	if tg.Token != "d2pat_from_file_0123456789" || tg.Retry.MaxAttempts != 5 || tg.Retry.InitialDelay.D().Seconds() != 2 {
		t.Errorf("target = %+v", tg)
	}
	if tg.Concurrency != 2 || tg.ImportStrategy != "CREATE_AND_UPDATE" || tg.MaxValuesPerRequest != 1000 {
		t.Errorf("defaults not applied: %+v", tg)
	}
	src, _ := c.Source("cht")
	if got := c.TargetsOf(src); len(got) != 1 || got[0].Name != "hmis" {
		t.Errorf("TargetsOf = %v", got)
	}
	if c.NATS.StoreDir != DefaultStoreDir || c.NATS.Replicas != 1 {
		t.Errorf("nats defaults = %+v", c.NATS)
	}
}

func TestParseReportsEveryProblemWithItsLine(t *testing.T) {
	yml := `http:
  adr: 1.2.3.4:80
sources:
  - name: "bad name"
    format: excel
    targets: [nowhere]
targets:
  - name: hmis
    url: ftp://x
    username: admin
    import_strategy: MERGE
    id_schemes: {org_unit: SHORTNAME}
  - name: hmis
    url: https://ok.example.org
    token: ${MISSING}
`
	_, err := Parse("tally.yaml", []byte(yml), env(nil))
	wantProblems(t, err, []lineProblem{
		{2, `http.adr: unknown key (did you mean "addr"?)`},
		{4, `sources[0].name: "bad name"`},
		{5, `sources[0].format: "excel"`},
		{6, `sources[0].targets[0]: no target is called "nowhere"`},
		{9, `targets[0].url: "ftp://x"`},
		{11, `targets[0].import_strategy: "MERGE"`},
		{12, `targets[0].id_schemes.org_unit: "SHORTNAME"`},
		{13, `targets[1].name: "hmis" is defined twice`},
		{15, `${MISSING} is not set`},
	})
	text := err.Error()
	if !strings.Contains(text, "Basic auth needs both username and password") {
		t.Errorf("missing credential problem:\n%s", text)
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse("x.yaml", []byte("http:\n  addr: [unclosed\n"), env(nil))
	probs, ok := err.(Problems)
	if !ok || len(probs) != 1 || probs[0].Line == 0 {
		t.Fatalf("err = %#v", err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "2KiB": 2048, "64MiB": 64 << 20, "1GB": 1e9} {
		c, err := Parse("x", []byte("http: {max_body_bytes: "+in+"}"), env(nil))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if int64(c.HTTP.MaxBodyBytes) != want {
			t.Errorf("%s = %d, want %d", in, c.HTTP.MaxBodyBytes, want)
		}
	}
	if _, err := Parse("x", []byte("http: {max_body_bytes: lots}"), env(nil)); err == nil {
		t.Error("want error for 'lots'")
	}
}

func TestSourceOrgUnits(t *testing.T) {
	yml := `sources:
  - name: cht
    auth: {public: true}
    mapping: cht-to-hmis
    org_units: {keep: assigned, level: 3}
  - name: plain
    auth: {public: true}
  - name: bad
    auth: {public: true}
    org_units:
      keep: some
      level: -1
  - name: nomapping
    auth: {public: true}
    org_units: {keep: assigned}
targets:
  - {name: hmis, url: https://hmis.example.org, token: d2pat_0123456789abcdef}
`
	_, err := Parse("tally.yaml", []byte(yml), env(nil))
	want := []lineProblem{
		{11, `sources[2].org_units.keep: "some": want all or assigned`},
		{12, `sources[2].org_units.level: -1: want an org unit level`},
		{15, `sources[3].org_units: filtering by org unit needs the target's metadata, which only a mapping set reads`},
	}
	if probs := wantProblems(t, err, want); len(probs) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(probs), len(want), err)
	}

	c, err := Parse("tally.yaml", []byte(yml[:strings.Index(yml, "  - name: bad")]+yml[strings.Index(yml, "targets:"):]), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cht, _ := c.Source("cht")
	plain, _ := c.Source("plain")
	if cht.OrgUnits != (SourceOrgUnits{Keep: "assigned", Level: 3}) || plain.OrgUnits != (SourceOrgUnits{Keep: "all"}) {
		t.Errorf("org_units: cht %+v, plain %+v", cht.OrgUnits, plain.OrgUnits)
	}
}

type lineProblem struct {
	line int
	frag string
}

// wantProblems checks that err lists a problem at each line with its fragment.
func wantProblems(t *testing.T, err error, want []lineProblem) Problems {
	t.Helper()
	probs, ok := err.(Problems)
	if !ok {
		t.Fatalf("err = %v, want Problems", err)
	}
	for _, w := range want {
		if !slices.ContainsFunc(probs, func(p Problem) bool { return p.Line == w.line && strings.Contains(p.String(), w.frag) }) {
			t.Errorf("missing problem at line %d containing %q in:\n%s", w.line, w.frag, err)
		}
	}
	return probs
}

// TestSourceImportKeys: validation, dhis2_version and complete_date are checked with their
// lines, and complete_date defaults by format (a CHT export's completeDate is its export
// date, not a completion).
func TestSourceImportKeys(t *testing.T) {
	yml := `sources:
  - name: ade
    auth: {public: true}
    validation: atomic
    dhis2_version: "2.41.3"
  - name: cht
    format: cht
    auth: {public: true}
  - name: bad
    auth: {public: true}
    validation: strict
    dhis2_version: "2.35"
    complete_date: always
    mapping: some-set
    duplicates: keep
targets:
  - {name: hmis, url: https://hmis.example.org, token: d2pat_0123456789abcdef}
`
	_, err := Parse("tally.yaml", []byte(yml), env(nil))
	want := []lineProblem{
		{11, `sources[2].validation: "strict": want per_value or atomic`},
		{12, `sources[2].dhis2_version: "2.35": want a DHIS2 version from 2.36 on`},
		{13, `sources[2].complete_date: "always": want dhis2, per_org_unit or ignore`},
		{15, `sources[2].duplicates: keep: mapped values that meet on one key must be settled`},
	}
	if probs := wantProblems(t, err, want); len(probs) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(probs), len(want), err)
	}
	c, err := Parse("tally.yaml", []byte(yml[:strings.Index(yml, "  - name: bad")]+yml[strings.Index(yml, "targets:"):]), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	ade, _ := c.Source("ade")
	cht, _ := c.Source("cht")
	if ade.Release() != 41 || cht.Release() != 0 || ade.Validation != "atomic" {
		t.Errorf("ade release %d validation %q, cht release %d", ade.Release(), ade.Validation, cht.Release())
	}
	if ade.CompleteDateMode() != "dhis2" || cht.CompleteDateMode() != "ignore" {
		t.Errorf("complete_date: ade %q, cht %q", ade.CompleteDateMode(), cht.CompleteDateMode())
	}
}

func TestAdminCredentialsAreNamedScopedAndNotShared(t *testing.T) {
	yml := `admin:
  token: same-token-0123456789
  credentials:
    - {name: viewer, token: viewer-token-0123456789, scope: read}
    - {name: viewer, token: other-token-0123456789, scope: operate}
    - {name: "a b", token: same-token-0123456789, scope: admin}
    - {token: short, scope: read}
`
	_, err := Parse("tally.yaml", []byte(yml), env(nil))
	wantProblems(t, err, []lineProblem{
		{5, `admin.credentials[1].name: "viewer" is already the name of admin.credentials[0]`},
		{6, `admin.credentials[2].name: "a b"`},
		{6, `admin.credentials[2].token: the same token as admin.token`},
		{6, `admin.credentials[2].scope: "admin": want read or operate`},
		{7, `admin.credentials[3].name: a credential needs a name`},
		{7, `admin.credentials[3].token: an admin token must be at least 16 characters`},
	})
	if strings.Contains(err.Error(), "same-token-0123456789") {
		t.Errorf("a problem shows a token:\n%s", err)
	}
}
