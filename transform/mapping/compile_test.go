package mapping

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

func TestCompileValid(t *testing.T) {
	yml := `mappings:
  - name: tracker-to-hmis
    description: program indicators to HMIS
    source_id_scheme: code
    target_id_scheme: CODE
    org_units: {table: tables/ou.csv}
    periods: rollup
    source_period_type: monthly
    rules:
      - {source: PI_BCG_F_LT1, data_element: EPI_BCG, coc: F_LT1}
      - source: PI_MAL_TREATED
        data_element: MAL_TREATED
        aoc: GOV
        data_set: MAL_MONTHLY
        scale: 0.5
        round: 0
    tables: [tables/pi.csv]
  - name: cht
    org_units: {map: {north-1: KL_N_F1, south-1: KL_S_F1}, target_id_scheme: CODE}
    rules:
      - {source: household-visits, data_element: CHW_HOUSEHOLD_VISITS}
  - name: attr
    org_units: {scheme: ATTRIBUTE:AttrChtPlce}
    rules: [{source: a, data_element: b}]
  - name: same
    org_units: same
    rules: [{source: a, data_element: b}]
`
	files := map[string]string{
		// A spreadsheet export: byte order mark, semicolons, upper-case header, comments, blank rows.
		"tables/pi.csv": "\xef\xbb\xbf# program indicators\nSource;Source_COC;Data_Element;COC;Scale;Round\n\nPI_PENTA1;F_LT1;EPI_PENTA1;F_LT1;;\n;;;;;\nPI_PENTA1;;EPI_PENTA1;;2;1\n",
		"tables/ou.csv": "source,target\nn1,KL_N_F1\ns1,KL_S_F1\n",
	}
	sets, cfg := compile(t, yml, files)
	if got := len(sets.All()); got != 4 {
		t.Fatalf("%d sets", got)
	}
	s, ok := sets.Set("tracker-to-hmis")
	if !ok {
		t.Fatal("set missing")
	}
	if s.SourceScheme != transform.SchemeCode || s.TargetScheme != transform.SchemeCode || !s.Rollup || s.SourcePeriodType != period.Monthly {
		t.Errorf("set = %+v", s)
	}
	if s.Origin.String() != cfg.File()+":2" || s.Description != "program indicators to HMIS" {
		t.Errorf("set origin %s, description %q", s.Origin, s.Description)
	}
	var got []string
	for _, r := range s.Rules {
		got = append(got, strings.Join([]string{r.Source, r.SourceCOC, r.DataElement, r.COC, r.AOC, r.DataSet, r.Scale,
			strings.TrimPrefix(r.Origin.String(), filepath.Dir(cfg.File())+"/")}, "|")+"|"+strconv.Itoa(r.Round))
	}
	want := []string{
		"PI_BCG_F_LT1||EPI_BCG|F_LT1||||tally.yaml:10|-1",
		"PI_MAL_TREATED||MAL_TREATED||GOV|MAL_MONTHLY|0.5|tally.yaml:11|0",
		"PI_PENTA1|F_LT1|EPI_PENTA1|F_LT1||||tables/pi.csv:4|-1",
		"PI_PENTA1||EPI_PENTA1||||2|tables/pi.csv:6|1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ou := s.OrgUnits; len(ou.Table) != 2 || ou.TableScheme != transform.SchemeCode || ou.Table[1].Target != "KL_S_F1" || ou.Table[1].Line != 3 {
		t.Errorf("org units = %+v", ou)
	}
	cht, _ := sets.Set("cht")
	if ou := cht.OrgUnits; len(ou.Table) != 2 || ou.TableScheme != transform.SchemeCode || ou.Table[0].Origin.String() != cfg.File()+":19" {
		t.Errorf("cht org units = %+v", ou)
	}
	if cht.TargetScheme != transform.SchemeUID {
		t.Errorf("target scheme default = %q", cht.TargetScheme)
	}
	attr, _ := sets.Set("attr")
	if attr.OrgUnits.Scheme != "ATTRIBUTE:AttrChtPlce" {
		t.Errorf("attr scheme = %q", attr.OrgUnits.Scheme)
	}
	same, _ := sets.Set("same")
	if same.OrgUnits.Scheme != "" || same.OrgUnits.Table != nil {
		t.Errorf("same = %+v", same.OrgUnits)
	}
	if _, ok := sets.Set("nope"); ok {
		t.Error("found a set that does not exist")
	}
}

func TestCompileProblems(t *testing.T) {
	const head = "mappings:\n  - name: s\n"
	rules := "    rules: [{source: a, data_element: b}]\n"
	tests := []struct {
		name  string
		yml   string
		files map[string]string
		want  []string // each "file:line: text" where file is tally.yaml or a table
	}{
		{"unknown key", head + "    sourc_id_scheme: CODE\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].sourc_id_scheme: unknown key (did you mean "source_id_scheme"?)`}},
		{"unknown rule key", head + "    rules: [{source: a, data_element: b, cocc: F}]\n",
			nil, []string{`tally.yaml:3: mappings[0].rules[0].cocc: unknown key`}},
		{"missing name", "mappings:\n  - rules: [{source: a, data_element: b}]\n",
			nil, []string{`tally.yaml:2: mappings[0].name: "": a mapping set needs a name`}},
		{"duplicate set", head + rules + "  - name: s\n" + rules,
			nil, []string{`tally.yaml:4: mappings[1].name: mapping set "s" is defined twice (also at line 2)`}},
		{"bad source scheme", head + "    source_id_scheme: LABEL\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].source_id_scheme: id scheme "LABEL"`}},
		{"ID scheme", head + "    target_id_scheme: ID\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].target_id_scheme: id scheme "ID": want UID, CODE, NAME or ATTRIBUTE:<uid>`}},
		{"bad periods", head + "    periods: sum\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].periods: "sum": want keep or rollup`}},
		{"bad period type", head + "    source_period_type: Fortnightly\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].source_period_type: "Fortnightly": not a DHIS2 period type`}},
		{"org units scalar", head + "    org_units: codes\n" + rules,
			nil, []string{`tally.yaml:3: line 3: org_units "codes": want same`}},
		{"org units two ways", head + "    org_units: {scheme: CODE, table: ou.csv}\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].org_units: give one of scheme, table and map`}},
		{"org units bad scheme", head + "    org_units: {scheme: LABEL}\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].org_units.scheme: id scheme "LABEL"`}},
		{"org units target scheme without table", head + "    org_units: {scheme: CODE, target_id_scheme: CODE}\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].org_units.target_id_scheme: applies to a table or map only`}},
		{"org units map not a mapping", head + "    org_units: {map: [a, b]}\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].org_units.map: want a mapping`}},
		{"org units map duplicate and empty", head + "    org_units:\n      map:\n        a: X\n        a: Y\n        b: \"\"\n" + rules,
			nil, []string{`tally.yaml:6: mappings[0].org_units.map.a: org unit "a" is mapped twice (the first is at `,
				`tally.yaml:7: mappings[0].org_units.map.b: an org unit row needs both source and target`}},
		{"org unit table missing", head + "    org_units: {table: ou.csv}\n" + rules,
			nil, []string{`tally.yaml:3: mappings[0].org_units.table: reading mapping table: open `}},
		{"org unit table rows", head + "    org_units: {table: ou.csv}\n" + rules,
			map[string]string{"ou.csv": "source,target\na,X\na,Y\nb,\n"},
			[]string{`ou.csv:3: org unit "a" is mapped twice (the first is at `, `ou.csv:4: an org unit row needs both source and target`}},
		{"rule without source and element", head + "    rules:\n      - {coc: F_LT1}\n",
			nil, []string{`tally.yaml:4: mappings[0].rules[0]: a rule needs source`, `tally.yaml:4: mappings[0].rules[0]: rule "" needs data_element`}},
		{"bad scale", head + "    rules:\n      - {source: a, data_element: b, scale: 1/3}\n",
			nil, []string{`tally.yaml:4: mappings[0].rules[0]: rule "a": scale "1/3" is not a number`}},
		{"zero scale", head + "    rules:\n      - {source: a, data_element: b, scale: 0.0}\n",
			nil, []string{`tally.yaml:4: mappings[0].rules[0]: rule "a": scale 0 would turn every value into 0`}},
		{"round out of range", head + "    rules:\n      - {source: a, data_element: b, round: 13}\n",
			nil, []string{`tally.yaml:4: mappings[0].rules[0]: rule "a": round 13: want 0 to 12 decimals`}},
		{"round not a number", head + "    rules:\n      - {source: a, data_element: b, round: two}\n",
			nil, []string{`tally.yaml:4: mappings[0].rules[0].round: want a whole number, e.g. 4, not "two"`}},
		{"duplicate rule", head + "    rules:\n      - {source: a, data_element: b}\n      - {source: a, source_coc: F, data_element: b}\n      - {source: a, data_element: c}\n",
			nil, []string{`tally.yaml:6: mappings[0].rules[2]: a second rule for source "a" (the first is at `}},
		{"duplicate rule with source coc across yaml and table", head + "    rules:\n      - {source: a, source_coc: F, data_element: b}\n    tables: [r.csv]\n",
			map[string]string{"r.csv": "source,source_coc,data_element\na,F,c\n"},
			[]string{`r.csv:2: a second rule for source "a" with source_coc "F" (the first is at `}},
		{"table missing", head + "    tables: [r.csv]\n",
			nil, []string{`tally.yaml:3: mappings[0].tables[0]: reading mapping table: open `}},
		{"table empty", head + "    tables: [r.csv]\n",
			map[string]string{"r.csv": "# nothing yet\n"}, []string{`r.csv:1: empty table: want a header row naming the columns (source,source_coc,data_element,coc,aoc,data_set,scale,round)`}},
		{"table header", head + "    tables: [r.csv]\n",
			map[string]string{"r.csv": "source,element,coc,coc\na,b,c,d\n"},
			[]string{`r.csv:1: unknown column "element"; known columns: source, source_coc`, `r.csv:1: column "coc" appears twice`,
				`r.csv:1: missing column "data_element"; the header must name source and data_element`}},
		{"table rows", head + "    tables: [r.csv]\n",
			map[string]string{"r.csv": "source,data_element,round,scale\na,b,x,\nc,d,1,2,3\ne,,,\nf,g,,abc\n\"h,i\n"},
			[]string{`r.csv:2: round "x": want a whole number of decimals`, `r.csv:3: 5 fields, but the header names 4 columns`,
				`r.csv:4: rule "e" needs data_element`, `r.csv:5: rule "f": scale "abc" is not a number`, `r.csv:6: column 6: extraneous or missing " in quoted-field`}},
		{"source names an unknown set", "sources:\n  - {name: tracker, auth: {public: true}, targets: [hmis], mapping: trakcer}\n" +
			"targets:\n  - {name: hmis, url: https://hmis.example.org, token: d2pat_0123456789abcdef}\n" + head + rules,
			nil, []string{`tally.yaml:2: sources[0].mapping: no mapping set is called "trakcer"; known sets: s`}},
		{"source names a set when there are none", "sources:\n  - {name: tracker, auth: {public: true}, targets: [hmis], mapping: x}\n" +
			"targets:\n  - {name: hmis, url: https://hmis.example.org, token: d2pat_0123456789abcdef}\n",
			nil, []string{`sources[0].mapping: no mapping set is called "x" (the mappings section defines none)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(t, tt.yml, tt.files)
			if err != nil {
				t.Fatal(err)
			}
			_, probs := compileConfig(cfg)
			text := strings.ReplaceAll(problemsText(probs), filepath.Dir(cfg.File())+"/", "")
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("problems lack %q:\n%s", w, text)
				}
			}
			if len(probs) < len(tt.want) {
				t.Errorf("%d problems, want %d:\n%s", len(probs), len(tt.want), text)
			}
		})
	}
}
