package mapping

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform/metadata"
)

const checkYAML = `sources:
  - {name: tracker, auth: {public: true}, targets: [hmis], mapping: checked}
  - {name: summing, auth: {public: true}, targets: [hmis], mapping: summed, duplicates: sum}
  - {name: attr, auth: {public: true}, targets: [hmis-attr], mapping: clean}
  - {name: offline, auth: {public: true}, targets: [elsewhere], mapping: checked}
targets:
  - {name: hmis, url: https://hmis.example.org, token: d2pat_0123456789abcdef}
  - {name: hmis-attr, url: https://hmis.example.org, token: d2pat_0123456789abcdef, id_schemes: {data_element: "ATTRIBUTE:AttrChtPlce"}}
  - {name: elsewhere, url: https://other.example.org, token: d2pat_0123456789abcdef}
mappings:
  - name: checked
    target_id_scheme: CODE
    source_period_type: Monthly
    org_units: {table: ou.csv, target_id_scheme: CODE}
    rules:
      - {source: A, data_element: EPI_BCGG, coc: F_LT1}
      - {source: B, data_element: EPI_BCG, coc: F_LT1, data_set: MAL_MONTHLY}
      - {source: C, data_element: EPI_BCG, coc: GOV}
      - {source: D, data_element: MAL_TREATED, aoc: M_LT1}
      - {source: E, data_element: EPI_BCG, coc: F_LT1, data_set: EPI_WEEKLY}
      - {source: F, data_element: CHW_HOUSEHOLD_VISITS}
      - {source: G, data_element: MAL_REMARKS, aoc: GOV, scale: 2}
      - {source: H, data_element: MAL_TREATED, aoc: GOV, scale: 0.5}
      - {source: I, data_element: MAL_LLIN_DISTRIBUTED, aoc: GOV, scale: 0.5, round: 0}
      - {source: J, data_element: ORPHAN}
      - {source: K, data_element: EPI_BCG, coc: NOPE}
      - {source: L, data_element: MAL_TREATED, aoc: NOPE}
      - {source: M, data_element: EPI_PENTA1, coc: F_LT1}
      - {source: N, source_coc: X, data_element: EPI_PENTA1, coc: F_LT1}
      - {source: O, data_element: EPI_PENTA1, coc: M_LT1}
    tables: [rules.csv]
  - name: summed
    target_id_scheme: CODE
    periods: rollup
    source_period_type: Yearly
    rules:
      - {source: M, data_element: EPI_PENTA1, coc: F_LT1}
      - {source: N, data_element: EPI_PENTA1, coc: F_LT1}
      - {source: J, data_element: ORPHAN}
  - name: clean
    target_id_scheme: CODE
    rules:
      - {source: P, data_element: EPI_BCG, coc: F_LT1}
  - name: unused
    target_id_scheme: CODE
    rules:
      - {source: Q, data_element: NOTHING}
`

func TestCheck(t *testing.T) {
	files := map[string]string{
		"rules.csv": "source,data_element,coc\nR,EPI_MEASLES1,F_LT1\nS,EPI_MEASLES1,NGO\n",
		"ou.csv":    "source,target\nn1,KL_N_F1\nx1,KL_NOWHERE\n",
	}
	sets, cfg := compile(t, checkYAML, files)
	md := withPeriodType(kalima(t), "CHW_MONTHLY", "Quarterly")
	md.DataElements = append(md.DataElements, metadata.DataElement{Object: metadata.Object{ID: "DeOrphan001", Code: "ORPHAN", Name: "Orphan"},
		ValueType: "NUMBER", CategoryCombo: metadata.Ref{ID: metadata.DefaultCategoryComboUID}})
	probs := checkConfig(sets, cfg, map[string]*metadata.Metadata{"hmis": md, "hmis-attr": kalima(t)})
	text := strings.ReplaceAll(problemsText(probs), filepath.Dir(cfg.File())+"/", "")
	line := func(s string) string { return "tally.yaml:" + strconv.Itoa(lineOf(t, checkYAML, s)) + ": " }
	want := []string{
		line("source: A,") + `mappings[0].rules[0]: target "hmis": rule "A": no data element has code "EPI_BCGG" in target "hmis"`,
		line("source: B,") + `mappings[0].rules[1]: target "hmis": rule "B": data element EPI_BCG is not in data set MAL_MONTHLY`,
		line("source: C,") + `target "hmis": rule "C": category option combo GOV is not in category combo SEX_AGE of data element EPI_BCG`,
		line("source: D,") + `target "hmis": rule "D": attribute option combo M_LT1 is not in attribute combo FUNDING of data set MAL_MONTHLY`,
		line("source: E,") + `target "hmis": rule "E": no data set has code "EPI_WEEKLY" in target "hmis"`,
		line("source: F,") + `target "hmis": rule "F": the source sends Monthly periods but data set CHW_MONTHLY is Quarterly: set periods: rollup to sum them`,
		line("source: G,") + `target "hmis": rule "G": scale/round on data element MAL_REMARKS, whose value type TEXT is not a number`,
		line("source: H,") + `target "hmis": rule "H": scale 0.5 can make decimals, but data element MAL_TREATED takes INTEGER_ZERO_OR_POSITIVE values: add round: 0`,
		line("source: J,") + `target "hmis": rule "J": data element ORPHAN is in no data set of the target`,
		line("source: K,") + `target "hmis": rule "K": no category option combo has code "NOPE"`,
		line("source: L,") + `target "hmis": rule "L": no category option combo has code "NOPE"`,
		line("source: N, source_coc") + `target "hmis": rule "N": maps to the same data element and option combos as the rule at tally.yaml:` + strconv.Itoa(lineOf(t, checkYAML, "source: M,")) + `; two such values in one payload are refused as duplicates (source tracker: set duplicates: sum or last`,
		`rules.csv:3: target "hmis": rule "S": category option combo NGO is not in category combo SEX_AGE of data element EPI_MEASLES1`,
		`ou.csv:3: target "hmis": org unit "x1": no org unit has code "KL_NOWHERE" in target "hmis"`,
	}
	// summed: rollup from a yearly source, an orphan without a period type; no duplicate report.
	summed := lineOf(t, checkYAML, "name: summed")
	want = append(want,
		"tally.yaml:"+strconv.Itoa(summed+5)+`: mappings[1].rules[0]: target "hmis": rule "M": Yearly periods do not roll up into data set EPI_MONTHLY, which is Monthly`,
		"tally.yaml:"+strconv.Itoa(summed+6)+`: mappings[1].rules[1]: target "hmis": rule "N": Yearly periods do not roll up into data set EPI_MONTHLY, which is Monthly`,
		"tally.yaml:"+strconv.Itoa(summed+7)+`: mappings[1].rules[2]: target "hmis": rule "J": data element ORPHAN is in no data set of the target`,
		"tally.yaml:"+strconv.Itoa(summed+7)+`: mappings[1].rules[2]: target "hmis": rule "J": cannot roll up: data element ORPHAN is in no data set, so there is no period type to roll up to`,
		line("source: P,")+`mappings[2].rules[0]: target "hmis-attr": rule "P": data element EPI_BCG has no attribute AttrChtPlce value, the scheme target "hmis-attr" is sent data elements in`,
	)
	lines := strings.Split(text, "\n")
	for _, w := range want {
		loc, msg, _ := strings.Cut(w, " target ")
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, loc) && strings.Contains(l, "target "+msg) }) {
			t.Errorf("problems lack\n  %s\nin:\n%s", w, text)
		}
	}
	for _, not := range []string{`rule "I"`, `rule "O"`, `rule "R"`, `"n1"`, `NOTHING`, `elsewhere`, `rule "N": maps to the same data element and option combos as the rule at tally.yaml:` + strconv.Itoa(summed+5)} {
		if strings.Contains(text, not) {
			t.Errorf("problems mention %s:\n%s", not, text)
		}
	}
	if len(probs) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(probs), len(want), text)
	}
	for i := 1; i < len(probs); i++ {
		if probs[i-1].File == probs[i].File && probs[i-1].Line > probs[i].Line {
			t.Errorf("problems not sorted by line: %s before %s", probs[i-1], probs[i])
		}
	}
}

func TestSetCheck(t *testing.T) {
	sets, _ := compile(t, checkYAML, map[string]string{"rules.csv": "source,data_element\n", "ou.csv": "source,target\n"})
	set, _ := sets.Set("summed")
	// Set.Check leaves out the duplicate-key check, which depends on the sources.
	probs := set.Check(kalima(t), &Target{Name: "hmis"})
	text := problemsText(probs)
	if len(probs) != 3 || !strings.Contains(text, `rule "J": no data element has code "ORPHAN"`) || !strings.Contains(text, `rule "M": Yearly periods do not roll up`) {
		t.Errorf("problems:\n%s", text)
	}
	probs = set.Check(kalima(t), &Target{Name: "hmis", IDSchemes: Schemes{DataElement: "ID"}})
	if len(probs) != 1 || !strings.Contains(problemsText(probs), `target "hmis": target id_schemes.data_element: id scheme "ID"`) {
		t.Errorf("problems:\n%s", problemsText(probs))
	}
}
