package mapping

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// engineYAML holds the sets the engine tests map with. Names of sources and codes follow the
// Kalima scenario; lines of some rules are looked up by the tests.
const engineYAML = `mappings:
  - name: tracker
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    rules:
      - {source: PI_BCG_F_LT1, data_element: EPI_BCG, coc: F_LT1}
      - {source: PI_BCG_M_LT1, data_element: EPI_BCG, coc: M_LT1}
      - {source: PI_MAL_TREATED, data_element: MAL_TREATED, aoc: GOV}
      - {source: PI_MAL_CONF, data_element: MAL_CONFIRMED}
      - {source: PI_PENTA1, source_coc: F_LT1, data_element: EPI_PENTA1, coc: M_LT1}
      - {source: PI_PENTA1, data_element: EPI_PENTA1}
      - {source: PI_ONLY, source_coc: F_LT1, data_element: EPI_MEASLES1, coc: F_LT1}
      - {source: HALF, data_element: CHW_HOUSEHOLD_VISITS, scale: 0.5, round: 0}
      - {source: TENTH, data_element: CHW_U5_ASSESSMENTS, scale: "0.1"}
      - {source: CHW_HH, data_element: CHW_HOUSEHOLD_VISITS}
      - {source: REMARKS, data_element: MAL_REMARKS, aoc: GOV}
      - {source: BAD_DE, data_element: NO_SUCH_DE}
      - {source: BAD_COC, data_element: EPI_BCG, coc: GOV}
      - {source: BAD_AOC, data_element: MAL_TREATED, aoc: F_LT1}
      - {source: BAD_DS, data_element: EPI_BCG, coc: F_LT1, data_set: MAL_MONTHLY}
  - name: adx
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    rules:
      - {source: BCG, data_element: EPI_BCG}
      - {source: MAL, data_element: MAL_CONFIRMED}
      - {source: TREATED, data_element: MAL_TREATED, data_set: MAL_MONTHLY}
      - {source: LLIN, data_element: CHW_HOUSEHOLD_VISITS}
  - name: rollup
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    periods: rollup
    rules:
      - {source: HH, data_element: CHW_HOUSEHOLD_VISITS}
      - {source: U5, data_element: CHW_U5_ASSESSMENTS}
      - {source: BCG, data_element: EPI_BCG, coc: F_LT1}
  - name: places
    target_id_scheme: CODE
    org_units: {scheme: ATTRIBUTE:AttrChtPlce}
    rules:
      - {source: household-visits, data_element: CHW_HOUSEHOLD_VISITS}
  - name: same-ou
    target_id_scheme: CODE
    rules:
      - {source: household-visits, data_element: CHW_HOUSEHOLD_VISITS}
  - name: tables
    org_units: {table: ou.csv}
    tables: [rules.csv]
  - name: inline-ou
    target_id_scheme: CODE
    org_units: {map: {north-1: KL_N_F1}}
    rules:
      - {source: household-visits, data_element: CHW_HOUSEHOLD_VISITS}
`

var engineFiles = map[string]string{
	"rules.csv": "source,data_element,coc\nPI_BCG_F_LT1,BYQ0DVbpag1,yx4Ag8SsaxT\n",
	"ou.csv":    "source,target\nnorth-1,muaptt0Azn0\nghost-1,NoSuchOrgU1\n",
}

type mapCase struct {
	name     string
	set      string
	unmapped string // source policy; "" is drop
	dups     string // source policy; "" is reject
	target   string // "" is hmis; hmis-q has a quarterly CHW_MONTHLY
	schemes  Schemes
	in       transform.IDSchemes // the batch's schemes; zero means {IDScheme: CODE}
	dataSet  string              // the batch's data set
	values   []transform.DataValue
	want     []string // show() of each output value
	unmapd   []string // showUnmapped() prefixes
	refused  []string // per refused value, substrings of showRefused() separated by "…"
	errs     []string // substrings of the error
	errIs    error
	check    func(t *testing.T, m *transform.Mapped)
}

func runMapCases(t *testing.T, e *Engine, tests []mapCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &transform.Batch{ID: "b1", TxID: "tx1", Source: "src", Received: time.Unix(1700000000, 0).UTC(), Schemes: tt.in, DataSet: tt.dataSet}
			if in.Schemes.IsZero() {
				in.Schemes = transform.IDSchemes{IDScheme: transform.SchemeCode}
			}
			for i, v := range tt.values {
				v.Index = i
				in.Values = append(in.Values, v)
			}
			target := &Target{Name: "hmis", IDSchemes: tt.schemes}
			if tt.target != "" {
				target.Name = tt.target
			}
			src := &Source{Name: "src", Mapping: tt.set, Unmapped: tt.unmapped, Duplicates: tt.dups}
			m, err := e.MapWith(context.Background(), in, src, target, Options{})
			if len(tt.errs) > 0 || tt.errIs != nil {
				if err == nil {
					t.Fatalf("no error; mapped %v", m.Batch.Values)
				}
				for _, w := range tt.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				want := tt.errIs
				if want == nil {
					want = ErrRejected
				}
				if !errors.Is(err, want) {
					t.Errorf("error %v is not %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, "values", m, tt.want)
			if len(m.Unmapped) != len(tt.unmapd) {
				t.Errorf("unmapped = %v, want %v", m.Unmapped, tt.unmapd)
			}
			for i := 0; i < len(m.Unmapped) && i < len(tt.unmapd); i++ {
				if s := showUnmapped(m.Unmapped[i]); !strings.HasPrefix(s, tt.unmapd[i]) {
					t.Errorf("unmapped[%d] = %q, want prefix %q", i, s, tt.unmapd[i])
				}
			}
			if len(m.Refused) != len(tt.refused) {
				t.Errorf("refused:\n%s\nwant %d", refusedText(m.Refused), len(tt.refused))
			}
			for i := 0; i < len(m.Refused) && i < len(tt.refused); i++ {
				s := showRefused(m.Refused[i])
				for _, w := range strings.Split(tt.refused[i], "…") {
					if !strings.Contains(s, w) {
						t.Errorf("refused[%d] = %q, want it to contain %q", i, s, w)
					}
				}
			}
			if m.Batch.Target != target.Name || m.Batch.ID != "b1" || m.Batch.TxID != "tx1" || m.Batch.Source != "src" {
				t.Errorf("batch identity = %+v", m.Batch)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	sets, _ := compile(t, engineYAML, engineFiles)
	return NewEngine(sets, StaticMetadata{"hmis": kalima(t), "hmis-q": withPeriodType(kalima(t), "CHW_MONTHLY", "Quarterly")})
}

func TestMapRules(t *testing.T) {
	uid := transform.IDSchemes{DataElement: "UID", OrgUnit: "UID", CategoryOptionCombo: "UID", AttributeOptionCombo: "UID", DataSet: "UID"}
	code := transform.IDSchemes{DataElement: "CODE", OrgUnit: "CODE", CategoryOptionCombo: "CODE", AttributeOptionCombo: "CODE", DataSet: "CODE"}
	badDE := lineOf(t, engineYAML, "BAD_DE")
	runMapCases(t, newTestEngine(t), []mapCase{
		{name: "code rules become UIDs by default", set: "tracker",
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_N_F1", "", "", "5"), dv("PI_BCG_M_LT1", "202401", "KL_N_F1", "", "", "7")},
			want:   []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 5 #0", "BYQ0DVbpag1 202401 muaptt0Azn0 M2ewMuBY6rf HllvX50cXC0 7 #1"},
			check: func(t *testing.T, m *transform.Mapped) {
				if m.Batch.Schemes != uid || m.Batch.DataSet != "eRTpPWzUB4q" {
					t.Errorf("schemes %+v, data set %q", m.Batch.Schemes, m.Batch.DataSet)
				}
			}},
		{name: "target sent codes", set: "tracker", schemes: Schemes{IDScheme: "code"},
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_N_F1", "", "", "5")},
			want:   []string{"EPI_BCG 202401 KL_N_F1 F_LT1 default 5 #0"},
			check: func(t *testing.T, m *transform.Mapped) {
				if m.Batch.Schemes != code || m.Batch.DataSet != "EPI_MONTHLY" {
					t.Errorf("schemes %+v, data set %q", m.Batch.Schemes, m.Batch.DataSet)
				}
			}},
		{name: "per-field target schemes; the attribute combo follows the option combo scheme", set: "tracker",
			schemes: Schemes{DataElement: "NAME", CategoryOptionCombo: "CODE", AttributeOptionCombo: "UID"},
			values:  []transform.DataValue{dv("PI_MAL_TREATED", "202401", "KL_N_F1", "", "", "3")},
			want:    []string{"Malaria cases treated 202401 muaptt0Azn0 default GOV 3 #0"},
			check: func(t *testing.T, m *transform.Mapped) {
				s := m.Batch.Schemes
				if s.DataElement != "NAME" || s.OrgUnit != "UID" || s.CategoryOptionCombo != "CODE" || s.AttributeOptionCombo != "CODE" {
					t.Errorf("schemes %+v", s)
				}
			}},
		{name: "rule aoc with the default option combo", set: "tracker",
			values: []transform.DataValue{dv("PI_MAL_TREATED", "202401", "KL_S_F2", "", "", "3")},
			want:   []string{"rd0APsmYaUS 202401 nIj7BRd03Q2 HllvX50cXC0 pATIk27f4t3 3 #0"}},
		{name: "value option combos pass through checked", set: "tracker",
			values: []transform.DataValue{dv("PI_MAL_CONF", "202401", "KL_N_F1", "F_1TO4", "NGO", "2")},
			want:   []string{"YJ2gClNbc7H 202401 muaptt0Azn0 mknuj64AX6V tGolUByxRmX 2 #0"}},
		{name: "a rule with source_coc wins over the rule without", set: "tracker",
			values: []transform.DataValue{dv("PI_PENTA1", "202401", "KL_N_F1", "F_LT1", "", "1"), dv("PI_PENTA1", "202401", "KL_N_F1", "F_1TO4", "", "2")},
			want:   []string{"xYKiuMw7TpH 202401 muaptt0Azn0 M2ewMuBY6rf HllvX50cXC0 1 #0", "xYKiuMw7TpH 202401 muaptt0Azn0 mknuj64AX6V HllvX50cXC0 2 #1"}},
		{name: "scale and round", set: "tracker",
			values: []transform.DataValue{dv("HALF", "202401", "KL_N_F1", "", "", "7"), dv("HALF", "202401", "KL_N_F2", "", "", "-7"),
				dv("TENTH", "202401", "KL_N_F1", "", "", "3"), dv("TENTH", "202401", "KL_N_F2", "", "", "1.5e2")},
			want: []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 4 #0", "jsgJ0Wu8FxT 202401 DNRUQxA71p2 HllvX50cXC0 HllvX50cXC0 -4 #1",
				"wXqxni7z9Kw 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 0.3 #2", "wXqxni7z9Kw 202401 DNRUQxA71p2 HllvX50cXC0 HllvX50cXC0 15 #3"}},
		{name: "deletions and empty values are not transformed", set: "tracker",
			values: []transform.DataValue{{DataElement: "HALF", Period: "202401", OrgUnit: "KL_N_F1", Deleted: true}, dv("TENTH", "202401", "KL_N_F1", "", "", "")},
			want:   []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0  #0 deleted", "wXqxni7z9Kw 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0  #1"}},
		{name: "comment, stored by and follow-up are kept", set: "tracker",
			values: []transform.DataValue{{DataElement: "CHW_HH", Period: "202401", OrgUnit: "KL_N_F1", Value: "4", Comment: "c", StoredBy: "u", FollowUp: true}},
			want:   []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 4 #0"},
			check: func(t *testing.T, m *transform.Mapped) {
				if v := m.Batch.Values[0]; v.Comment != "c" || v.StoredBy != "u" || !v.FollowUp {
					t.Errorf("value = %+v", v)
				}
			}},
		{name: "rules from a CSV table and an org unit table", set: "tables", in: transform.IDSchemes{IDScheme: "UID"},
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "north-1", "", "", "5")},
			want:   []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 5 #0"}},
		{name: "inline org unit map", set: "inline-ou",
			values: []transform.DataValue{dv("household-visits", "202401", "north-1", "", "", "11")},
			want:   []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 11 #0"}},
		{name: "org units by attribute", set: "places",
			values: []transform.DataValue{dv("household-visits", "202401", "cht-place-s-f2", "", "", "11")},
			want:   []string{"jsgJ0Wu8FxT 202401 nIj7BRd03Q2 HllvX50cXC0 HllvX50cXC0 11 #0"}},
		{name: "same org unit ids in the batch's scheme", set: "same-ou", in: transform.IDSchemes{OrgUnit: "NAME"}, schemes: Schemes{OrgUnit: "CODE"},
			values: []transform.DataValue{dv("household-visits", "202401", "South Facility 1", "", "", "11")},
			want:   []string{"jsgJ0Wu8FxT 202401 KL_S_F1 HllvX50cXC0 HllvX50cXC0 11 #0"}},
		{name: "rule names an unknown data element", set: "tracker",
			values:  []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_N_F1", "", "", "5"), dv("BAD_DE", "202401", "KL_N_F1", "", "", "5")},
			want:    []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 5 #0"},
			refused: []string{`1 dataElement E7610: rule at …tally.yaml:` + strconv.Itoa(badDE) + `: no data element has code "NO_SUCH_DE" in target "hmis"`}},
		{name: "rule option combo outside the element's combo", set: "tracker",
			values:  []transform.DataValue{dv("BAD_COC", "202401", "KL_N_F1", "", "", "5")},
			refused: []string{"0 dataElement E7634: rule at …category option combo GOV is not in category combo SEX_AGE of data element EPI_BCG"}},
		{name: "rule attribute combo outside the data set's", set: "tracker",
			values:  []transform.DataValue{dv("BAD_AOC", "202401", "KL_N_F1", "", "", "5")},
			refused: []string{"0 dataElement E7635: …attribute option combo F_LT1 is not in attribute combo FUNDING of data set MAL_MONTHLY"}},
		{name: "rule data set without the element", set: "tracker",
			values:  []transform.DataValue{dv("BAD_DS", "202401", "KL_N_F1", "", "", "5")},
			refused: []string{"0 dataElement E7633: …data element EPI_BCG is not in data set MAL_MONTHLY"}},
		{name: "value option combo outside the element's combo", set: "tracker",
			values:  []transform.DataValue{dv("PI_MAL_CONF", "202401", "KL_N_F1", "GOV", "GOV", "5")},
			refused: []string{"0 categoryOptionCombo E7634: GOV is not in category combo SEX_AGE of data element MAL_CONFIRMED"}},
		{name: "value option combo unknown", set: "tracker",
			values:  []transform.DataValue{dv("PI_MAL_CONF", "202401", "KL_N_F1", "F_LT5", "GOV", "5")},
			refused: []string{`0 categoryOptionCombo E7613: no category option combo has code "F_LT5" in target "hmis"`}},
		{name: "value attribute combo outside the data set's", set: "tracker",
			values:  []transform.DataValue{dv("PI_MAL_CONF", "202401", "KL_N_F1", "F_LT1", "M_LT1", "5")},
			refused: []string{`0 attributeOptionCombo E7635: M_LT1 is not in attribute combo FUNDING of data set MAL_MONTHLY`}},
		{name: "value attribute combo unknown", set: "tracker",
			values:  []transform.DataValue{dv("PI_MAL_CONF", "202401", "KL_N_F1", "F_LT1", "DONOR", "5")},
			refused: []string{`0 attributeOptionCombo E7615: no category option combo has code "DONOR"`}},
		{name: "disaggregated element without an option combo", set: "tracker",
			values:  []transform.DataValue{dv("PI_MAL_CONF", "202401", "KL_N_F1", "", "GOV", "5")},
			refused: []string{"0 categoryOptionCombo E7630: data element MAL_CONFIRMED is disaggregated by category combo SEX_AGE (categories SEX, AGE), but the value gives no category option combo and no categories"}},
		{name: "data set with an attribute combo but no attribute option combo", set: "tracker",
			values:  []transform.DataValue{dv("PI_MAL_CONF", "202401", "KL_N_F1", "F_LT1", "", "5")},
			refused: []string{"0 attributeOptionCombo E7631: data set MAL_MONTHLY has attribute combo FUNDING (categories FUNDING), but neither the rule nor the value gives an attribute option combo"}},
		{name: "transform of a non-numeric value", set: "tracker",
			values:  []transform.DataValue{dv("HALF", "202401", "KL_N_F1", "", "", "many")},
			refused: []string{"0 value E7619: not a number, but the rule at …scales or rounds it"}},
		{name: "text values pass untouched", set: "tracker",
			values: []transform.DataValue{dv("REMARKS", "202401", "KL_N_F1", "", "", "stock-out in week 2")},
			want:   []string{"ZOkN8gaW18v 202401 muaptt0Azn0 HllvX50cXC0 pATIk27f4t3 stock-out in week 2 #0"}},
		{name: "org unit row naming an org unit the target lacks", set: "tables", in: transform.IDSchemes{IDScheme: "UID"},
			values:  []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "ghost-1", "", "", "5")},
			refused: []string{`0 orgUnit E7612: org unit row at …ou.csv:3: no org unit has uid "NoSuchOrgU1" in target "hmis"`}},
		{name: "org unit without an id in the output scheme", set: "tracker", schemes: Schemes{OrgUnit: "ATTRIBUTE:AttrChtPlce"},
			values:  []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_NORTH", "", "", "5")},
			refused: []string{`0 orgUnit E7612: org unit KL_NORTH has no attribute AttrChtPlce value, the scheme target "hmis" is sent org units in`}},
		{name: "rule target without an id in the output scheme", set: "tracker", schemes: Schemes{DataElement: "ATTRIBUTE:AttrChtPlce"},
			values:  []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_N_F1", "", "", "5")},
			refused: []string{`0 dataElement E7610: …data element EPI_BCG has no attribute AttrChtPlce value, the scheme target "hmis" is sent data elements in`}},
		{name: "batch scheme disagrees with the set's source scheme", set: "tracker", in: transform.IDSchemes{DataElement: "UID"},
			values: []transform.DataValue{dv("BYQ0DVbpag1", "202401", "KL_N_F1", "", "", "5")},
			errs:   []string{`dataElementIdScheme "UID": the batch writes data elements as UID, but mapping set "tracker" names its sources by CODE`}},
		{name: "each refused value is listed and the rest delivered", set: "tracker",
			values: []transform.DataValue{dv("BAD_COC", "202401", "KL_N_F1", "", "", "5"), dv("HALF", "202401", "KL_N_F1", "", "", "x"),
				dv("BAD_DS", "202401", "KL_N_F1", "", "", "5"), dv("CHW_HH", "202401", "KL_N_F1", "", "", "4")},
			want:    []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 4 #3"},
			refused: []string{"0 dataElement E7634", "1 value E7619", "2 dataElement E7633"},
			check: func(t *testing.T, m *transform.Mapped) {
				if r := m.Refused[1].Value; r.DataElement != "HALF" || r.Value != "x" || r.Index != 1 {
					t.Errorf("refused value is not the source value: %+v", r)
				}
			}},
	})
}

func TestMapUnmapped(t *testing.T) {
	values := []transform.DataValue{
		dv("PI_BCG_F_LT1", "202401", "KL_N_F1", "", "", "5"),
		dv("EPI_MEASLES1", "202401", "KL_N_F1", "F_LT1", "", "4"), // no rule, but the target knows the code
		dv("PI_UNKNOWN", "202401", "KL_N_F1", "", "", "1"),        // no rule, unknown to the target
		dv("PI_ONLY", "202401", "KL_N_F1", "M_LT1", "", "2"),      // rules for PI_ONLY, not for M_LT1
		dv("PI_BCG_M_LT1", "202401", "KL_GHOST", "", "", "3"),     // unknown org unit
	}
	runMapCases(t, newTestEngine(t), []mapCase{
		{name: "drop and report (default)", set: "tracker", values: values,
			want: []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 5 #0"},
			unmapd: []string{`1 dataElement EPI_MEASLES1: mapping set "tracker" has no rule for it`,
				`2 dataElement PI_UNKNOWN: mapping set "tracker" has no rule for it`,
				`3 categoryOptionCombo M_LT1: mapping set "tracker" has rules for "PI_ONLY", but none for its category option combo "M_LT1"`,
				`4 orgUnit KL_GHOST: no org unit has code "KL_GHOST" in target "hmis"`}},
		{name: "pass reads ids as the target's", set: "tracker", unmapped: "pass", values: values,
			want: []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 5 #0",
				"D8BHbNdZU0N 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 4 #1"},
			unmapd: []string{`2 dataElement PI_UNKNOWN: no rule, and the target does not know it: no data element has code "PI_UNKNOWN"`,
				`3 dataElement PI_ONLY: no rule, and the target does not know it`,
				`4 orgUnit KL_GHOST: no org unit has code "KL_GHOST" in target "hmis"`}},
		{name: "reject lists every unmapped value", set: "tracker", unmapped: "reject", values: values,
			want: []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 5 #0"},
			refused: []string{`1 dataElement E7610: mapping set "tracker" has no rule for it (unmapped: reject on source "src")`,
				"2 dataElement E7610", `3 categoryOptionCombo E7613: mapping set "tracker" has rules for "PI_ONLY"`, "4 orgUnit E7612"}},
		{name: "org unit table miss: drop", set: "tables", in: transform.IDSchemes{IDScheme: "UID"},
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "south-9", "", "", "5")},
			unmapd: []string{`0 orgUnit south-9: mapping set "tables" has no org unit row for it`}},
		{name: "org unit table miss: pass reads the id as the target's", set: "tables", unmapped: "pass", in: transform.IDSchemes{IDScheme: "UID"},
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "Td8VKqxryo1", "", "", "5"), dv("PI_BCG_F_LT1", "202401", "south-9", "", "", "6")},
			want:   []string{"BYQ0DVbpag1 202401 Td8VKqxryo1 yx4Ag8SsaxT HllvX50cXC0 5 #0"},
			unmapd: []string{`1 orgUnit south-9: no org unit row, and the target does not know it: no org unit has uid "south-9"`}},
		{name: "org unit table miss: reject", set: "tables", unmapped: "reject", in: transform.IDSchemes{IDScheme: "UID"},
			values:  []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "south-9", "", "", "5")},
			refused: []string{`0 orgUnit E7612: mapping set "tables" has no org unit row for it (unmapped: reject`}},
		{name: "everything unmapped leaves an empty batch", set: "tracker",
			values: []transform.DataValue{dv("PI_UNKNOWN", "202401", "KL_N_F1", "", "", "1")},
			unmapd: []string{"0 dataElement PI_UNKNOWN"},
			check: func(t *testing.T, m *transform.Mapped) {
				if len(m.Batch.Values) != 0 || m.Batch.DataSet != "" {
					t.Errorf("batch = %+v", m.Batch)
				}
			}},
	})
}

func TestMapADX(t *testing.T) {
	runMapCases(t, newTestEngine(t), []mapCase{
		{name: "categories resolve to the option combo, in any order", set: "adx",
			values: []transform.DataValue{
				{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F", "AGE=LT1"), Value: "5"},
				{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("AGE=1TO4", "SEX=M"), Value: "6"}},
			want: []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 5 #0", "BYQ0DVbpag1 202401 muaptt0Azn0 NcAKEIOUttY HllvX50cXC0 6 #1"}},
		{name: "categories and options by uid", set: "adx", in: transform.IDSchemes{IDScheme: "CODE", Category: "UID", CategoryOption: "UID"},
			values: []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("XYqaNUDqN9N=QA6TCvY4dhK", "ifp28uwCDyd=MlRdZQ9QsTX"), Value: "5"}},
			want:   []string{"BYQ0DVbpag1 202401 muaptt0Azn0 M2ewMuBY6rf HllvX50cXC0 5 #0"}},
		{name: "attributes resolve to the attribute option combo", set: "adx",
			values: []transform.DataValue{{DataElement: "MAL", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F", "AGE=LT1"), Attributes: cats("FUNDING=NGO"), Value: "2"},
				{DataElement: "TREATED", Period: "202401", OrgUnit: "KL_N_F1", Attributes: cats("FUNDING=GOV"), Value: "3"}},
			want: []string{"YJ2gClNbc7H 202401 muaptt0Azn0 yx4Ag8SsaxT tGolUByxRmX 2 #0", "rd0APsmYaUS 202401 muaptt0Azn0 HllvX50cXC0 pATIk27f4t3 3 #1"},
			check: func(t *testing.T, m *transform.Mapped) {
				if v := m.Batch.Values[0]; v.Categories != nil || v.Attributes != nil {
					t.Errorf("categories kept: %+v", v)
				}
			}},
		{name: "a missing category is named", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F"), Value: "5"}},
			refused: []string{`0 categories E7613: data element EPI_BCG is disaggregated by category combo SEX_AGE (categories SEX, AGE); the value gives SEX=F, missing AGE`}},
		{name: "an option of another category", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=LT1", "AGE=LT1"), Value: "5"}},
			refused: []string{"0 categories E7613: LT1 is not an option of category SEX (its options: F, M)"}},
		{name: "an unknown option", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F", "AGE=5TO9"), Value: "5"}},
			refused: []string{`0 categories E7613: category AGE: no category option has code "5TO9" in target "hmis"`}},
		{name: "an unknown category", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F", "AGEGROUP=LT1"), Value: "5"}},
			refused: []string{`0 categories E7613: no category has code "AGEGROUP"`}},
		{name: "a category outside the combo", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F", "AGE=LT1", "FUNDING=GOV"), Value: "5"}},
			refused: []string{"0 categories E7613: category FUNDING is not in category combo SEX_AGE of data element EPI_BCG (its categories: SEX, AGE)"}},
		{name: "a category given twice", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F", "SEX=M"), Value: "5"}},
			refused: []string{"0 categories E7613: category SEX is given twice"}},
		{name: "categories on an element without disaggregation", set: "adx",
			values:  []transform.DataValue{{DataElement: "LLIN", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F"), Value: "5"}},
			refused: []string{"0 categories E7613: category SEX is not in category combo default of data element CHW_HOUSEHOLD_VISITS"}},
		{name: "missing attributes are named", set: "adx",
			values:  []transform.DataValue{{DataElement: "TREATED", Period: "202401", OrgUnit: "KL_N_F1", Attributes: cats("DONOR=X"), Value: "5"}},
			refused: []string{`0 attributes E7615: no category has code "DONOR" in target "hmis"`}},
		{name: "an attribute option outside the category", set: "adx",
			values:  []transform.DataValue{{DataElement: "TREATED", Period: "202401", OrgUnit: "KL_N_F1", Attributes: cats("FUNDING=F"), Value: "5"}},
			refused: []string{"0 attributes E7615: F is not an option of category FUNDING (its options: GOV, NGO)"}},
	})
}

func TestMapADXNoCombo(t *testing.T) {
	// Metadata whose SEX_AGE combo lacks the M_1TO4 option combo (not yet generated).
	md := kalima(t)
	for i := range md.CategoryOptionCombos {
		if md.CategoryOptionCombos[i].Code == "M_1TO4" {
			md.CategoryOptionCombos = append(md.CategoryOptionCombos[:i], md.CategoryOptionCombos[i+1:]...)
			break
		}
	}
	for i := range md.CategoryCombos {
		cc := &md.CategoryCombos[i]
		if cc.Code == "SEX_AGE" {
			cc.CategoryOptionCombos = cc.CategoryOptionCombos[:3]
		}
	}
	sets, _ := compile(t, engineYAML, engineFiles)
	runMapCases(t, NewEngine(sets, StaticMetadata{"hmis": md}), []mapCase{
		{name: "no combo has the options", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=M", "AGE=1TO4"), Value: "5"}},
			refused: []string{"0 categories E7613: no option combo of category combo SEX_AGE (data element EPI_BCG) has the options SEX=M, AGE=1TO4"}},
	})
}

func TestMapDuplicatesAndRollup(t *testing.T) {
	twice := []transform.DataValue{
		dv("CHW_HH", "202401", "KL_N_F1", "", "", "4"),
		dv("CHW_HH", "202401", "KL_N_F2", "", "", "1"),
		dv("CHW_HH", "202401", "KL_N_F1", "", "", "6"),
	}
	months := []transform.DataValue{
		dv("HH", "202401", "KL_N_F1", "", "", "4"),
		dv("HH", "202402", "KL_N_F1", "", "", "5"),
		dv("HH", "202403", "KL_N_F1", "", "", "6.5"),
		dv("HH", "202404", "KL_N_F1", "", "", "1"),
		dv("U5", "202401", "KL_N_F1", "", "", "2"),
	}
	runMapCases(t, newTestEngine(t), []mapCase{
		{name: "duplicates rejected with both culprits", set: "tracker", values: twice,
			want: []string{"jsgJ0Wu8FxT 202401 DNRUQxA71p2 HllvX50cXC0 HllvX50cXC0 1 #1"},
			refused: []string{`0 key E8128: it and value 2 map to the same data element, period, org unit and option combos (jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0); duplicates: reject on source "src" refuses both`,
				"2 key E8128: it and value 0"},
			check: dupCheck("jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0: refused [0 2] ")},
		{name: "two sources onto one target key", set: "tracker",
			values:  []transform.DataValue{dv("PI_PENTA1", "202401", "KL_N_F1", "F_LT1", "", "1"), dv("PI_PENTA1", "202401", "KL_N_F1", "M_LT1", "", "2")},
			refused: []string{"0 key E8128: it and value 1", "1 key E8128: it and value 0"}},
		{name: "duplicates summed", set: "tracker", dups: "sum", values: twice,
			want: []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 10 #0", "jsgJ0Wu8FxT 202401 DNRUQxA71p2 HllvX50cXC0 HllvX50cXC0 1 #1"}},
		{name: "last duplicate wins", set: "tracker", dups: "last", values: twice,
			want: []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 6 #2", "jsgJ0Wu8FxT 202401 DNRUQxA71p2 HllvX50cXC0 HllvX50cXC0 1 #1"}},
		{name: "summing a non-number", set: "tracker", dups: "sum",
			values:  []transform.DataValue{dv("REMARKS", "202401", "KL_N_F1", "", "", "a"), dv("REMARKS", "202401", "KL_N_F1", "", "", "b")},
			refused: []string{`0 value E7619: not a number, but the values of ZOkN8gaW18v 202401 muaptt0Azn0 HllvX50cXC0 pATIk27f4t3 are added up (duplicates: sum)`, "1 value E7619"}},
		{name: "summing a deletion keeps the other value", set: "tracker", dups: "sum",
			values: []transform.DataValue{dv("CHW_HH", "202401", "KL_N_F1", "", "", "4"), {DataElement: "CHW_HH", Period: "202401", OrgUnit: "KL_N_F1", Deleted: true}},
			want:   []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 4 #0"}},
		{name: "summing deletions only deletes", set: "tracker", dups: "sum",
			values: []transform.DataValue{{DataElement: "CHW_HH", Period: "202401", OrgUnit: "KL_N_F1", Deleted: true}, dv("CHW_HH", "202401", "KL_N_F1", "", "", "")},
			want:   []string{"jsgJ0Wu8FxT 202401 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0  #0 deleted"}},
		{name: "rollup: months summed into quarters", set: "rollup", target: "hmis-q", values: months,
			want: []string{"CHW_HOUSEHOLD_VISITS 2024Q1 KL_N_F1 default default 15.5 #0", "CHW_HOUSEHOLD_VISITS 2024Q2 KL_N_F1 default default 1 #3",
				"CHW_U5_ASSESSMENTS 2024Q1 KL_N_F1 default default 2 #4"}, schemes: Schemes{IDScheme: "CODE"},
			check: func(t *testing.T, m *transform.Mapped) {
				if m.Batch.DataSet != "CHW_MONTHLY" {
					t.Errorf("data set %q", m.Batch.DataSet)
				}
			}},
		{name: "rollup: a monthly data set keeps months", set: "rollup", values: months[:2], schemes: Schemes{IDScheme: "CODE"},
			want: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 4 #0", "CHW_HOUSEHOLD_VISITS 202402 KL_N_F1 default default 5 #1"}},
		{name: "rollup: the same month twice is a duplicate", set: "rollup", target: "hmis-q",
			values:  []transform.DataValue{months[0], months[1], dv("HH", "202401", "KL_N_F1", "", "", "9")},
			want:    []string{"jsgJ0Wu8FxT 2024Q1 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 5 #1"},
			refused: []string{"0 key E8128: it and value 2 …(jsgJ0Wu8FxT 2024Q1 muaptt0Azn0", "2 key E8128: it and value 0"}},
		{name: "rollup: the same month twice, summed", set: "rollup", target: "hmis-q", dups: "sum", schemes: Schemes{IDScheme: "CODE"},
			values: []transform.DataValue{months[0], months[1], dv("HH", "202401", "KL_N_F1", "", "", "9")},
			want:   []string{"CHW_HOUSEHOLD_VISITS 2024Q1 KL_N_F1 default default 18 #0"}},
		{name: "rollup: the same month twice, last wins", set: "rollup", target: "hmis-q", dups: "last", schemes: Schemes{IDScheme: "CODE"},
			values: []transform.DataValue{months[0], months[1], dv("HH", "202401", "KL_N_F1", "", "", "9")},
			want:   []string{"CHW_HOUSEHOLD_VISITS 2024Q1 KL_N_F1 default default 14 #1"}},
		{name: "rollup: a quarter and its month collide", set: "rollup", target: "hmis-q",
			values:  []transform.DataValue{months[0], dv("HH", "2024Q1", "KL_N_F1", "", "", "9")},
			refused: []string{"0 key E8128: it and value 1", "1 key E8128: it and value 0"}},
		{name: "rollup: a quarter replaces its months when last wins", set: "rollup", target: "hmis-q", dups: "last", schemes: Schemes{IDScheme: "CODE"},
			values: []transform.DataValue{months[0], months[1], dv("HH", "2024Q1", "KL_N_F1", "", "", "9")},
			want:   []string{"CHW_HOUSEHOLD_VISITS 2024Q1 KL_N_F1 default default 9 #2"}},
		{name: "rollup: a deleted month is left out of the sum", set: "rollup", target: "hmis-q", schemes: Schemes{IDScheme: "CODE"},
			values: []transform.DataValue{months[0], {DataElement: "HH", Period: "202402", OrgUnit: "KL_N_F1", Deleted: true}},
			want:   []string{"CHW_HOUSEHOLD_VISITS 2024Q1 KL_N_F1 default default 4 #0"}},
		{name: "rollup: a non-number", set: "rollup", target: "hmis-q",
			values:  []transform.DataValue{months[0], dv("HH", "202402", "KL_N_F1", "", "", "n/a")},
			want:    []string{"jsgJ0Wu8FxT 2024Q1 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 4 #0"},
			refused: []string{`1 value E7619: not a number, but the values of jsgJ0Wu8FxT 2024Q1 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 are added up (periods: rollup)`}},
		{name: "rollup: a longer period does not roll down", set: "rollup",
			values:  []transform.DataValue{dv("BCG", "2024Q1", "KL_N_F1", "", "", "9")},
			refused: []string{`0 period E7632: a Quarterly period does not roll up into Monthly (target data set EPI_MONTHLY)`}},
		{name: "rollup: not a period", set: "rollup",
			values:  []transform.DataValue{dv("BCG", "2024M13", "KL_N_F1", "", "", "9")},
			refused: []string{`0 period E7611: `}},
	})
}

func TestMapEngine(t *testing.T) {
	sets, _ := compile(t, engineYAML, engineFiles)
	in := &transform.Batch{ID: "b", Schemes: transform.IDSchemes{IDScheme: "CODE"}, DataSet: "EPI", CompleteDate: "2024-02-03",
		Values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_N_F1", "", "", "5")}}
	hmis := &Target{Name: "hmis"}
	ctx := context.Background()

	t.Run("no mapping set is identity", func(t *testing.T) {
		m, err := NewEngine(sets, nil).Map(ctx, in, &Source{Name: "s"}, hmis)
		if err != nil || m.Batch.Target != "hmis" || m.Batch.Values[0].DataElement != "PI_BCG_F_LT1" || m.Batch.Schemes != in.Schemes {
			t.Errorf("%+v, %v", m, err)
		}
	})
	t.Run("unknown set", func(t *testing.T) {
		_, err := NewEngine(sets, nil).Map(ctx, in, &Source{Name: "s", Mapping: "gone"}, hmis)
		if !errors.Is(err, ErrUnknownSet) || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `source "s": unknown mapping set "gone"`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad policies", func(t *testing.T) {
		for _, src := range []*Source{{Name: "s", Mapping: "tracker", Unmapped: "keep"}, {Name: "s", Mapping: "tracker", Duplicates: "first"}} {
			if _, err := NewEngine(sets, nil).Map(ctx, in, src, hmis); err == nil || errors.Is(err, ErrRejected) {
				t.Errorf("%+v: err = %v", src, err)
			}
		}
	})
	t.Run("metadata errors are transient", func(t *testing.T) {
		_, err := NewEngine(sets, StaticMetadata{}).Map(ctx, in, &Source{Name: "s", Mapping: "tracker"}, hmis)
		if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `metadata of target "hmis": no metadata for target "hmis"`) {
			t.Errorf("err = %v", err)
		}
		_, err = NewEngine(sets, nilProvider{}).Map(ctx, in, &Source{Name: "s", Mapping: "tracker"}, hmis)
		if err == nil || errors.Is(err, ErrRejected) {
			t.Errorf("nil metadata: err = %v", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := NewEngine(sets, nil).Map(c, in, &Source{Name: "s", Mapping: "tracker"}, hmis); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("complete date kept with one data set, dropped with several", func(t *testing.T) {
		e := NewEngine(sets, StaticMetadata{"hmis": kalima(t)})
		src := &Source{Name: "s", Mapping: "tracker"}
		m, err := e.Map(ctx, in, src, hmis)
		if err != nil || m.Batch.DataSet != "eRTpPWzUB4q" || m.Batch.CompleteDate != "2024-02-03" {
			t.Fatalf("%+v, %v", m.Batch, err)
		}
		mixed := *in
		mixed.Values = append(mixed.Values[:1:1], dv("PI_MAL_TREATED", "202401", "KL_N_F1", "", "", "3"))
		m, err = e.Map(ctx, &mixed, src, hmis)
		if err != nil || m.Batch.DataSet != "" || m.Batch.CompleteDate != "" {
			t.Fatalf("%+v, %v", m.Batch, err)
		}
	})
	t.Run("plans follow metadata and target schemes", func(t *testing.T) {
		p := &swapProvider{md: kalima(t)}
		e := NewEngine(sets, p)
		src := &Source{Name: "s", Mapping: "tracker"}
		m1, _ := e.Map(ctx, in, src, hmis)
		// A new snapshot where EPI_BCG has another UID.
		md := kalima(t)
		for i := range md.DataElements {
			if md.DataElements[i].Code == "EPI_BCG" {
				md.DataElements[i].ID = "BYQ0DVbpNew"
			}
		}
		for i := range md.DataSets {
			for j := range md.DataSets[i].DataSetElements {
				if md.DataSets[i].DataSetElements[j].DataElement.ID == "BYQ0DVbpag1" {
					md.DataSets[i].DataSetElements[j].DataElement.ID = "BYQ0DVbpNew"
				}
			}
		}
		p.md = md
		m2, _ := e.Map(ctx, in, src, hmis)
		m3, _ := e.Map(ctx, in, src, &Target{Name: "hmis", IDSchemes: Schemes{IDScheme: "CODE"}})
		if m1.Batch.Values[0].DataElement != "BYQ0DVbpag1" || m2.Batch.Values[0].DataElement != "BYQ0DVbpNew" || m3.Batch.Values[0].DataElement != "EPI_BCG" {
			t.Errorf("%v / %v / %v", m1.Batch.Values, m2.Batch.Values, m3.Batch.Values)
		}
	})
	t.Run("input batch is not changed", func(t *testing.T) {
		before := show(in.Values[0])
		if _, err := NewEngine(sets, StaticMetadata{"hmis": kalima(t)}).Map(ctx, in, &Source{Name: "s", Mapping: "tracker"}, hmis); err != nil {
			t.Fatal(err)
		}
		if show(in.Values[0]) != before || in.Target != "" {
			t.Errorf("input changed: %s", show(in.Values[0]))
		}
	})
}

type nilProvider struct{}

func (nilProvider) Metadata(context.Context, string) (*metadata.Metadata, error) { return nil, nil }

type swapProvider struct{ md *metadata.Metadata }

func (p *swapProvider) Metadata(context.Context, string) (*metadata.Metadata, error) {
	return p.md, nil
}

func TestMapWithoutMetadata(t *testing.T) {
	sets, _ := compile(t, engineYAML, engineFiles)
	e := NewEngine(sets, nil)
	runMapCases(t, e, []mapCase{
		{name: "rule ids as written, in the set's target scheme", set: "tracker",
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_N_F1", "", "", "5"), dv("PI_MAL_CONF", "202401", "KL_N_F1", "F_LT1", "GOV", "2"),
				dv("HALF", "202401", "KL_N_F1", "", "", "3")},
			want: []string{"EPI_BCG 202401 KL_N_F1 F_LT1  5 #0", "MAL_CONFIRMED 202401 KL_N_F1 F_LT1 GOV 2 #1", "CHW_HOUSEHOLD_VISITS 202401 KL_N_F1   2 #2"},
			check: func(t *testing.T, m *transform.Mapped) {
				want := transform.IDSchemes{DataElement: "CODE", OrgUnit: "CODE", CategoryOptionCombo: "CODE", AttributeOptionCombo: "CODE", DataSet: "CODE"}
				if m.Batch.Schemes != want || m.Batch.DataSet != "" {
					t.Errorf("schemes %+v, data set %q", m.Batch.Schemes, m.Batch.DataSet)
				}
			}},
		{name: "the data set of the rules", set: "tracker",
			values: []transform.DataValue{dv("BAD_DS", "202401", "KL_N_F1", "", "", "5")},
			want:   []string{"EPI_BCG 202401 KL_N_F1 F_LT1  5 #0"},
			check: func(t *testing.T, m *transform.Mapped) {
				if m.Batch.DataSet != "MAL_MONTHLY" {
					t.Errorf("data set %q", m.Batch.DataSet)
				}
			}},
		{name: "org units as the batch writes them", set: "same-ou", in: transform.IDSchemes{OrgUnit: "UID"},
			values: []transform.DataValue{dv("household-visits", "202401", "muaptt0Azn0", "", "", "5")},
			want:   []string{"CHW_HOUSEHOLD_VISITS 202401 muaptt0Azn0   5 #0"},
			check: func(t *testing.T, m *transform.Mapped) {
				if m.Batch.Schemes.OrgUnit != "UID" {
					t.Errorf("org unit scheme %q", m.Batch.Schemes.OrgUnit)
				}
			}},
		{name: "org unit table", set: "tables", unmapped: "pass", in: transform.IDSchemes{IDScheme: "UID"},
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "north-1", "", "", "5"), dv("PI_BCG_F_LT1", "202401", "Td8VKqxryo1", "", "", "6")},
			want:   []string{"BYQ0DVbpag1 202401 muaptt0Azn0 yx4Ag8SsaxT  5 #0", "BYQ0DVbpag1 202401 Td8VKqxryo1 yx4Ag8SsaxT  6 #1"}},
		{name: "org unit table: pass cannot translate schemes", set: "tables", unmapped: "pass", in: transform.IDSchemes{IDScheme: "UID", OrgUnit: "CODE"},
			values: []transform.DataValue{dv("PI_BCG_F_LT1", "202401", "KL_S_F1", "", "", "6")},
			unmapd: []string{"0 orgUnit KL_S_F1: no org unit row, and without target metadata an id written as CODE cannot be passed to a target read as UID"}},
		{name: "pass with matching schemes", set: "tracker", unmapped: "pass",
			values: []transform.DataValue{dv("EPI_MEASLES1", "202401", "KL_N_F1", "F_LT1", "", "4")},
			want:   []string{"EPI_MEASLES1 202401 KL_N_F1 F_LT1  4 #0"}},
		{name: "pass cannot translate schemes", set: "adx", unmapped: "pass", in: transform.IDSchemes{DataElement: "UID"},
			values: []transform.DataValue{dv("D8BHbNdZU0N", "202401", "KL_N_F1", "", "", "4")},
			unmapd: []string{"0 dataElement D8BHbNdZU0N: no rule, and without target metadata an id written as UID cannot be passed to a target read as CODE"}},
		{name: "value option combo in another scheme", set: "adx", in: transform.IDSchemes{DataElement: "CODE", CategoryOptionCombo: "UID"},
			values:  []transform.DataValue{dv("BCG", "202401", "KL_N_F1", "yx4Ag8SsaxT", "", "4")},
			refused: []string{`0 categoryOptionCombo E7613: written as UID, the target is sent CODE, and without target metadata it cannot be translated`}},
		{name: "value attribute combo in another scheme", set: "adx", in: transform.IDSchemes{DataElement: "CODE", CategoryOptionCombo: "UID"},
			values:  []transform.DataValue{dv("MAL", "202401", "KL_N_F1", "", "pATIk27f4t3", "4")},
			refused: []string{`0 attributeOptionCombo E7615: written as UID`}},
		{name: "categories need metadata", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=F", "AGE=LT1"), Attributes: cats("FUNDING=GOV"), Value: "5"}},
			refused: []string{"0 categories E7613: resolving categories to a category option combo needs the target's metadata"}},
		{name: "attributes need metadata", set: "adx",
			values:  []transform.DataValue{{DataElement: "MAL", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1", Attributes: cats("FUNDING=GOV"), Value: "5"}},
			refused: []string{"0 attributes E7615: resolving attributes to an attribute option combo needs the target's metadata"}},
		{name: "rollup needs metadata", set: "rollup",
			values:  []transform.DataValue{dv("HH", "202401", "KL_N_F1", "", "", "4")},
			refused: []string{`0 period E7632: cannot roll up: periods: rollup needs the target's metadata`}},
	})
}

func TestMapConcurrent(t *testing.T) {
	e := newTestEngine(t)
	src := &Source{Name: "src", Mapping: "tracker", Duplicates: "sum"}
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			in := &transform.Batch{Schemes: transform.IDSchemes{IDScheme: "CODE"}}
			for i := range 200 {
				in.Values = append(in.Values, transform.DataValue{DataElement: "CHW_HH", Period: "202401", OrgUnit: "KL_N_F1", Value: "1", Index: i})
			}
			target := &Target{Name: "hmis"}
			if g%2 == 1 {
				target.IDSchemes.IDScheme = "CODE"
			}
			m, err := e.Map(context.Background(), in, src, target)
			if err == nil && (len(m.Batch.Values) != 1 || m.Batch.Values[0].Value != "200") {
				err = errors.New(show(m.Batch.Values[0]))
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestMapElementInSeveralDataSets(t *testing.T) {
	// EPI_BCG is also collected quarterly with a funding attribute, in EPI_QUARTERLY; a
	// second monthly data set, EPI_EXTRA, agrees with EPI_MONTHLY on everything.
	md := withEPIQuarterly(kalima(t))
	md.DataSets = append(md.DataSets, metadata.DataSet{Object: metadata.Object{ID: "DsEpiExtra1", Code: "EPI_EXTRA"}, PeriodType: "Monthly",
		DataSetElements: []metadata.DataSetElement{{DataElement: metadata.Ref{ID: "xYKiuMw7TpH"}}}})
	sets, _ := compile(t, engineYAML+severalYAML, engineFiles)
	runMapCases(t, NewEngine(sets, StaticMetadata{"hmis": md}), []mapCase{
		{name: "data sets that agree give a period type but no header", set: "several",
			values: []transform.DataValue{dv("PENTA", "202401", "KL_N_F1", "F_LT1", "", "1")},
			want:   []string{"xYKiuMw7TpH 202401 muaptt0Azn0 yx4Ag8SsaxT HllvX50cXC0 1 #0"},
			check: func(t *testing.T, m *transform.Mapped) {
				if m.Batch.DataSet != "" {
					t.Errorf("data set %q", m.Batch.DataSet)
				}
			}},
		{name: "data sets with different period types", set: "several",
			values:  []transform.DataValue{dv("BCG", "202401", "KL_N_F1", "F_LT1", "", "1")},
			refused: []string{"0 period E7632: cannot roll up: data element EPI_BCG is in data sets EPI_MONTHLY (Monthly), EPI_QUARTERLY (Quarterly) with different period types; name one with data_set"}},
		{name: "data sets with different attribute combos", set: "adx",
			values:  []transform.DataValue{{DataElement: "BCG", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1", Attributes: cats("FUNDING=GOV"), Value: "1"}},
			refused: []string{"0 attributes E7615: cannot tell which attribute combo applies: data element EPI_BCG is in data sets EPI_MONTHLY (Monthly), EPI_QUARTERLY (Quarterly) with different attribute combos; name one with data_set (the batch names no data set"}},
	})
}

func TestMapRefusesEveryValueAndBoundsRejectError(t *testing.T) {
	e := newTestEngine(t)
	in := &transform.Batch{Schemes: transform.IDSchemes{IDScheme: "CODE"}}
	for i := range 150 {
		in.Values = append(in.Values, transform.DataValue{DataElement: "HALF", Period: "202401", OrgUnit: "KL_N_F1", Value: "x", Index: i})
	}
	src := &Source{Name: "s", Mapping: "tracker"}
	m, err := e.MapWith(context.Background(), in, src, &Target{Name: "hmis"}, Options{})
	if err != nil || len(m.Refused) != 150 || len(m.Batch.Values) != 0 || m.Refused[149].Value.Index != 149 {
		t.Fatalf("m = %+v, err = %v", m, err)
	}
	// Map, for callers that do not read Refused, rejects the batch with a bounded list.
	_, err = e.Map(context.Background(), in, src, &Target{Name: "hmis"})
	var re *RejectError
	if !errors.As(err, &re) || len(re.Issues) != maxIssues || re.More != 50 || re.Set != "tracker" || re.Target != "hmis" {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `150 problems: value 0: value "x": not a number, but the rule at `) || !strings.HasSuffix(msg, "; and 140 more") {
		t.Errorf("message = %s", msg)
	}
	if is := re.Issues[0]; is.Code != "E7619" || is.Field != "value" {
		t.Errorf("issue = %+v", is)
	}
}

// TestMapRejectsTheBatchForCallersWithoutRefusals: Map keeps the whole-batch contract, so a
// caller that does not read Mapped.Refused dead-letters the batch instead of losing values.
func TestMapRejectsTheBatchForCallersWithoutRefusals(t *testing.T) {
	e := newTestEngine(t)
	in := &transform.Batch{Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: indexed([]transform.DataValue{
		dv("CHW_HH", "202401", "KL_N_F1", "", "", "4"),
		{DataElement: "MAL", Period: "202401", OrgUnit: "KL_N_F1", Categories: cats("SEX=X", "AGE=LT1"), Attributes: cats("FUNDING=GOV"), Value: "2"},
	})}
	m, err := e.Map(context.Background(), in, &Source{Name: "s", Mapping: "adx"}, &Target{Name: "hmis"})
	if m != nil || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `value 1: categories "SEX=X, AGE=LT1": category SEX: no category option has code "X"`) {
		t.Fatalf("m = %v, err = %v", m, err)
	}
	// Nothing refused: Map and MapWith agree.
	in.Values = in.Values[:1]
	m, err = e.Map(context.Background(), in, &Source{Name: "s", Mapping: "tracker"}, &Target{Name: "hmis"})
	if err != nil || len(m.Batch.Values) != 1 {
		t.Fatalf("m = %v, err = %v", m, err)
	}
}
