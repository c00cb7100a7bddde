package mapping

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// kalima decodes the Kalima HMIS fixture afresh, so a test may change its copy.
func kalima(t testing.TB) *metadata.Metadata { return fixture(t, "kalima-hmis.json") }

// mADX decodes testdata/m-adx.json, the M-ADX metadata of conformance README §4.1.
func mADX(t testing.TB) *metadata.Metadata { return fixture(t, "m-adx.json") }

// fixture decodes a metadata snapshot from testdata.
func fixture(t testing.TB, name string) *metadata.Metadata {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var md metadata.Metadata
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatal(err)
	}
	return &md
}

// withPeriodType returns md with the data set code's period type changed.
func withPeriodType(md *metadata.Metadata, code, pt string) *metadata.Metadata {
	for i := range md.DataSets {
		if md.DataSets[i].Code == code {
			md.DataSets[i].PeriodType = pt
		}
	}
	return md
}

// parseConfig writes files (name → content) and the config into a temporary directory and
// parses the config from there, so that tables resolve beside it.
func parseConfig(t testing.TB, yml string, files map[string]string) (*config.Config, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return config.Parse(filepath.Join(dir, "tally.yaml"), []byte(yml), func(string) string { return "" })
}

// compile parses and compiles a config that must be valid.
func compile(t testing.TB, yml string, files map[string]string) (*Sets, *config.Config) {
	t.Helper()
	cfg, err := parseConfig(t, yml, files)
	if err != nil {
		t.Fatal(err)
	}
	sets, probs := compileConfig(cfg)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return sets, cfg
}

// compileConfig compiles the mappings: section of cfg for its sources, as the mediator does
// (mediator/pipeline): each entry decoded with the configuration's line numbers, its
// problems with the decoding's.
func compileConfig(cfg *config.Config) (*Sets, Problems) {
	sets := NewSets()
	var probs Problems
	for i := range cfg.Mappings {
		path := fmt.Sprintf("mappings[%d]", i)
		var sc SetConfig
		for _, p := range cfg.DecodeSection(&cfg.Mappings[i], path, &sc) {
			probs = append(probs, Problem{Origin: Origin{File: p.File, Line: p.Line, Path: p.Path}, Msg: p.Msg})
		}
		probs = append(probs, sets.Add(&sc, path, cfg)...)
	}
	sources := make([]Source, len(cfg.Sources))
	for i := range cfg.Sources {
		sources[i] = *sourceOf(&cfg.Sources[i])
	}
	return sets, append(probs, sets.CheckSources(sources, cfg)...)
}

// sourceOf and targetOf are a configured source and target as the engine takes them.
func sourceOf(s *config.Source) *Source {
	return &Source{Name: s.Name, Mapping: s.Mapping, Unmapped: s.Unmapped, Duplicates: s.Duplicates,
		OrgUnits: SourceOrgUnits(s.OrgUnits), Format: s.Format, IDSchemes: Schemes(s.IDSchemes)}
}

func targetOf(t *config.Target) Target { return Target{Name: t.Name, IDSchemes: Schemes(t.IDSchemes)} }

// feedsOf is every source of cfg with its targets.
func feedsOf(cfg *config.Config) []Feed {
	feeds := make([]Feed, len(cfg.Sources))
	for i := range cfg.Sources {
		feeds[i].Source = *sourceOf(&cfg.Sources[i])
		for _, t := range cfg.TargetsOf(&cfg.Sources[i]) {
			feeds[i].Targets = append(feeds[i].Targets, targetOf(t))
		}
	}
	return feeds
}

// checkConfig checks sets against md for the sources of cfg.
func checkConfig(sets *Sets, cfg *config.Config, md map[string]*metadata.Metadata) Problems {
	return sets.Check(feedsOf(cfg), md, cfg)
}

// lineOf is the 1-based line of the first line of text containing s.
func lineOf(t testing.TB, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in text", s)
	return 0
}

// dv builds a data value; an empty field stays empty.
func dv(de, pe, ou, coc, aoc, value string) transform.DataValue {
	return transform.DataValue{DataElement: de, Period: pe, OrgUnit: ou, CategoryOptionCombo: coc, AttributeOptionCombo: aoc, Value: value}
}

// cats turns "SEX=F" pairs into an ADX disaggregation.
func cats(pairs ...string) []transform.CategoryOption {
	out := make([]transform.CategoryOption, len(pairs))
	for i, p := range pairs {
		c, o, _ := strings.Cut(p, "=")
		out[i] = transform.CategoryOption{Category: c, Option: o}
	}
	return out
}

// show writes an output value compactly: "DE PE OU COC AOC VALUE #index".
func show(v transform.DataValue) string {
	s := fmt.Sprintf("%s %s %s %s %s %s #%d", v.DataElement, v.Period, v.OrgUnit, v.CategoryOptionCombo, v.AttributeOptionCombo, v.Value, v.Index)
	if v.Deleted {
		s += " deleted"
	}
	return s
}

func showUnmapped(u transform.Unmapped) string {
	return fmt.Sprintf("%d %s %s: %s", u.Index, u.Field, u.Value, u.Reason)
}

func problemsText(ps Problems) string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func showRefused(r transform.Refused) string {
	return fmt.Sprintf("%d %s %s: %s", r.Value.Index, r.Field, r.ErrorCode, r.Reason)
}

func refusedText(rs []transform.Refused) string {
	lines := make([]string, len(rs))
	for i, r := range rs {
		lines[i] = showRefused(r)
	}
	return strings.Join(lines, "\n")
}

func showDuplicate(d transform.Duplicate) string {
	return strings.TrimSpace(fmt.Sprintf("%s: %s %v %s", keyText(d.Key), d.Action, d.Indexes, d.Value))
}

// dupCheck checks the duplicates report, one showDuplicate line per key.
func dupCheck(want ...string) func(*testing.T, *transform.Mapped) {
	return func(t *testing.T, m *transform.Mapped) {
		t.Helper()
		got := make([]string, len(m.Duplicates))
		for i, d := range m.Duplicates {
			got[i] = showDuplicate(d)
		}
		for i := range want {
			want[i] = strings.TrimSpace(want[i])
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("duplicates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func showWarning(w transform.Warning) string {
	if w.Index < 0 {
		return "batch: " + w.Reason
	}
	return fmt.Sprintf("%d %s %s %s: %s", w.Index, w.Field, w.Value, w.ErrorCode, w.Reason)
}

// prefixes checks that got has as many lines as want, each starting with its want.
func prefixes(t *testing.T, what string, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("%s:\n%s\nwant prefixes:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// wantRecords checks m's refused values, unmapped values and warnings, each line against
// its want's prefix (prefixes).
func wantRecords(t *testing.T, m *transform.Mapped, refused, unmapped, warnings []string) {
	t.Helper()
	var r, u, w []string
	for _, x := range m.Refused {
		r = append(r, showRefused(x))
	}
	for _, x := range m.Unmapped {
		u = append(u, showUnmapped(x))
	}
	for _, x := range m.Warnings {
		w = append(w, showWarning(x))
	}
	prefixes(t, "refused", r, refused)
	prefixes(t, "unmapped", u, unmapped)
	prefixes(t, "warnings", w, warnings)
}

// wantValues compares the output values, show() each, with want.
func wantValues(t *testing.T, what string, m *transform.Mapped, want []string) {
	t.Helper()
	var got []string
	for _, v := range m.Batch.Values {
		got = append(got, show(v))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// withEPIQuarterly adds EPI_QUARTERLY, which also holds EPI_BCG, collected quarterly with
// the FUNDING attribute combo, while EPI_MONTHLY has none.
func withEPIQuarterly(md *metadata.Metadata) *metadata.Metadata {
	md.DataSets = append(md.DataSets,
		metadata.DataSet{Object: metadata.Object{ID: "DsEpiQuartr", Code: "EPI_QUARTERLY"}, PeriodType: "Quarterly", CategoryCombo: metadata.Ref{ID: "TCZWZYvRSZe"},
			DataSetElements: []metadata.DataSetElement{{DataElement: metadata.Ref{ID: "BYQ0DVbpag1"}}}})
	return md
}

// severalYAML is a roll-up set onto elements in several data sets.
const severalYAML = `  - name: several
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    periods: rollup
    rules:
      - {source: BCG, data_element: EPI_BCG}
      - {source: PENTA, data_element: EPI_PENTA1}
`
