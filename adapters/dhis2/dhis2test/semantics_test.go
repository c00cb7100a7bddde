package dhis2test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// value builds a one-value payload for MAL_TREATED at KL_N_F1/GOV (codes).
func treated(period, value string, extra ...string) string {
	fields := []string{`"dataElement":"MAL_TREATED"`, `"period":"` + period + `"`, `"orgUnit":"KL_N_F1"`, `"attributeOptionCombo":"GOV"`}
	if value != "-" {
		fields = append(fields, `"value":"`+value+`"`)
	}
	fields = append(fields, extra...)
	return `{"dataValues":[{` + strings.Join(fields, ",") + `}]}`
}

// spec dhis2.md §1.4 outcome table: every import strategy against an
// existing value, a missing value and a soft-deleted row (2.38–2.42 engine).
// Rejected indexes follow DefaultDataValueSetService.importDataValue (2.41+
// source): CREATE over a live value and UPDATE/DELETE without one are
// "ignored" and their index is added to rejectedIndexes.
func TestImportStrategies(t *testing.T) {
	cases := []struct {
		name     string
		strategy string
		state    string // "live", "none", "deleted"
		value    string
		want     [4]int // imported, updated, deleted, ignored
		stored   string // "" = no live value afterwards
		rejected bool
	}{
		{"C&U existing changed", "CREATE_AND_UPDATE", "live", "9", [4]int{0, 1, 0, 0}, "9", false},
		{"C&U existing unchanged", "CREATE_AND_UPDATE", "live", "5", [4]int{0, 0, 0, 1}, "5", false},
		{"C&U new", "CREATE_AND_UPDATE", "none", "9", [4]int{1, 0, 0, 0}, "9", false},
		{"C&U soft-deleted row", "CREATE_AND_UPDATE", "deleted", "9", [4]int{1, 0, 0, 0}, "9", false},
		{"UPDATE existing", "UPDATE", "live", "9", [4]int{0, 1, 0, 0}, "9", false},
		{"UPDATE missing", "UPDATE", "none", "9", [4]int{0, 0, 0, 1}, "", true},
		{"UPDATES alias", "UPDATES", "none", "9", [4]int{0, 0, 0, 1}, "", true},
		{"UPDATE soft-deleted row", "UPDATE", "deleted", "9", [4]int{0, 0, 0, 1}, "", true},
		{"CREATE existing", "CREATE", "live", "9", [4]int{0, 0, 0, 1}, "5", true},
		{"CREATE new", "CREATE", "none", "9", [4]int{1, 0, 0, 0}, "9", false},
		{"NEW alias", "NEW", "none", "9", [4]int{1, 0, 0, 0}, "9", false},
		{"NEW_AND_UPDATES alias", "NEW_AND_UPDATES", "live", "9", [4]int{0, 1, 0, 0}, "9", false},
		{"DELETE existing", "DELETE", "live", "5", [4]int{0, 0, 1, 0}, "", false},
		{"DELETES alias", "DELETES", "live", "1", [4]int{0, 0, 1, 0}, "", false},
		{"DELETE missing", "DELETE", "none", "5", [4]int{0, 0, 0, 1}, "", true},
		{"DELETE soft-deleted row", "DELETE", "deleted", "5", [4]int{0, 0, 0, 1}, "", true},
		{"CREATE soft-deleted row", "CREATE", "deleted", "9", [4]int{1, 0, 0, 0}, "9", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, WithVersion("2.41"))
			if tc.state != "none" {
				postJSON(t, srv, "?idScheme=CODE", treated("202401", "5"))
			}
			if tc.state == "deleted" {
				postJSON(t, srv, "?idScheme=CODE&importStrategy=DELETE", treated("202401", "5"))
			}
			sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE&importStrategy="+tc.strategy, treated("202401", tc.value)))
			if got := counts(t, sum); got != tc.want {
				t.Errorf("counts %v, want %v", got, tc.want)
			}
			if got := len(intsOf(sum["rejectedIndexes"])) > 0; got != tc.rejected {
				t.Errorf("rejectedIndexes %v", sum["rejectedIndexes"])
			}
			v, ok := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV")
			if (tc.stored == "" && ok) || (tc.stored != "" && v.Value != tc.stored) {
				t.Errorf("stored %q (%v), want %q", v.Value, ok, tc.stored)
			}
			if tc.state == "deleted" && tc.stored != "" {
				h := srv.Store().History(mustKey(t, srv, "MAL_TREATED", "202401", "KL_N_F1", "", "GOV"))
				if ops := opsOf(h); !slices.Equal(ops, []string{OpCreate, OpDelete, OpRestore}) {
					t.Errorf("history ops %v", ops)
				}
			}
		})
	}
}

func opsOf(h []Write) []string {
	var out []string
	for _, w := range h {
		out = append(out, w.Operation)
	}
	return out
}

// spec dhis2.md §1.4: deleted flag, empty value, insignificant zero,
// significant zero, E7618 and follow-up changes on CREATE_AND_UPDATE.
func TestPerValueSemantics(t *testing.T) {
	srv := newTestServer(t)
	seed := func(de, value string) {
		body := fmt.Sprintf(`{"dataValues":[{"dataElement":%q,"period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":%q}]}`, de, value)
		postJSON(t, srv, "?idScheme=CODE", body)
	}
	one := func(de, fields string) [4]int {
		body := fmt.Sprintf(`{"dataValues":[{"dataElement":%q,"period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV"%s}]}`, de, fields)
		return counts(t, summaryOf(t, postJSON(t, srv, "?idScheme=CODE", body)))
	}
	// deleted:true on an existing value deletes it
	seed("MAL_TREATED", "5")
	if got := one("MAL_TREATED", `,"value":"5","deleted":true`); got != [4]int{0, 0, 1, 0} {
		t.Errorf("deleted flag: %v", got)
	}
	// an empty value (with a comment) deletes an existing value
	seed("MAL_TREATED", "5")
	if got := one("MAL_TREATED", `,"value":"","comment":"gone"`); got != [4]int{0, 0, 1, 0} {
		t.Errorf("empty value: %v", got)
	}
	// value and comment both missing: E7618
	sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE", treated("202401", "-")))
	if cs := conflictsOf(sum); len(cs) != 1 || cs[0]["errorCode"] != "E7618" ||
		cs[0]["value"] != "Data value or comment not specified for data element: `MAL_TREATED`" {
		t.Errorf("E7618: %v", cs)
	}
	// insignificant zero: new → dropped silently (no count); existing → deleted
	if got := one("MAL_LLIN_DISTRIBUTED", `,"value":"0"`); got != [4]int{} {
		t.Errorf("new insignificant zero counted %v", got)
	}
	if _, ok := srv.Lookup("MAL_LLIN_DISTRIBUTED", "202401", "KL_N_F1", "", "GOV"); ok {
		t.Error("insignificant zero stored")
	}
	seed("MAL_LLIN_DISTRIBUTED", "40")
	if got := one("MAL_LLIN_DISTRIBUTED", `,"value":"0"`); got != [4]int{0, 0, 1, 0} {
		t.Errorf("zero over existing: %v", got)
	}
	// significant zero is stored
	if got := one("MAL_TREATED", `,"value":"0"`); got != [4]int{1, 0, 0, 0} {
		t.Errorf("significant zero: %v", got)
	}
	// a follow-up change alone is an update; then unchanged is ignored
	if got := one("MAL_TREATED", `,"value":"0","followup":true`); got != [4]int{0, 1, 0, 0} {
		t.Errorf("followup change: %v", got)
	}
	if got := one("MAL_TREATED", `,"value":"0","followup":true`); got != [4]int{0, 0, 0, 1} {
		t.Errorf("unchanged: %v", got)
	}
	if v, _ := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); !v.FollowUp {
		t.Error("followup not stored")
	}
}

// spec dhis2.md §1.4: header period, orgUnit and attributeOptionCombo replace
// the per-value fields; missing COC/AOC fall back to the default.
func TestHeaderOverridesAndDefaults(t *testing.T) {
	srv := newTestServer(t)
	body := `{"period":"202402","orgUnit":"KL_S_F1","attributeOptionCombo":"NGO","dataValues":[
	  {"dataElement":"MAL_TREATED","period":"199901","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"3"}]}`
	if got := counts(t, summaryOf(t, postJSON(t, srv, "?idScheme=CODE", body))); got != [4]int{1, 0, 0, 0} {
		t.Fatalf("counts %v", got)
	}
	if _, ok := srv.Lookup("MAL_TREATED", "202402", "KL_S_F1", "", "NGO"); !ok {
		t.Errorf("header overrides not applied: %+v", srv.Store().Values())
	}
	postJSON(t, srv, "", `{"dataValues":[{"dataElement":"D8BHbNdZU0N","period":"202401","orgUnit":"muaptt0Azn0","value":"2"}]}`)
	if _, ok := srv.Store().Get(Key{SampleDEEPIMeasles1, "202401", SampleOrgUnitKLNF1, DefaultCategoryOptionComboUID, DefaultCategoryOptionComboUID}); !ok {
		t.Errorf("default COC/AOC not applied: %+v", srv.Store().Values())
	}
}

// spec dhis2.md §1.3: payload strategy and dryRun win over the query.
func TestPayloadOverridesStrategyAndDryRun(t *testing.T) {
	srv := newTestServer(t)
	body := `{"dryRun":true,"dataValues":[{"dataElement":"rd0APsmYaUS","period":"202401","orgUnit":"muaptt0Azn0","attributeOptionCombo":"pATIk27f4t3","value":"1"}]}`
	if got := counts(t, summaryOf(t, postJSON(t, srv, "?dryRun=false", body))); got != [4]int{1, 0, 0, 0} || srv.Store().Len() != 0 {
		t.Errorf("payload dryRun: %v, %d stored", got, srv.Store().Len())
	}
	postJSON(t, srv, "", strings.Replace(body, `"dryRun":true,`, "", 1))
	del := strings.Replace(body, `"dryRun":true`, `"strategy":"DELETE"`, 1)
	if got := counts(t, summaryOf(t, postJSON(t, srv, "?importStrategy=CREATE", del))); got != [4]int{0, 0, 1, 0} {
		t.Errorf("payload strategy: %v", got)
	}
}

// spec dhis2.md §1.4 completeDate: "true" → today, future → today, a date is
// kept; without header orgUnit the summary gets a conflict.
func TestCompleteDate(t *testing.T) {
	srv := newTestServer(t)
	for _, tc := range []struct{ given, want string }{{"true", "2024-03-15"}, {"2030-01-01", "2024-03-15"}, {"2024-02-03", "2024-02-03"}} {
		body := `{"dataSet":"CHW_MONTHLY","period":"202402","orgUnit":"KL_N_F1","completeDate":"` + tc.given + `",
		  "dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","value":"10"}]}`
		sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE", body))
		if sum["dataSetComplete"] != tc.want {
			t.Errorf("%s: dataSetComplete %v", tc.given, sum["dataSetComplete"])
		}
	}
	regs := srv.Store().Registrations()
	if len(regs) != 1 || regs[0].DataSet != SampleDataSetCHW || regs[0].Date != "2024-02-03" ||
		regs[0].AttributeOptionCombo != DefaultCategoryOptionComboUID {
		t.Errorf("registrations %+v", regs)
	}
	sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE", `{"dataSet":"CHW_MONTHLY","completeDate":"true","dataValues":[]}`))
	if cs := conflictsOf(sum); len(cs) != 1 || cs[0]["object"] != "OrganisationUnit" || cs[0]["value"] != "Must be provided to complete data set" {
		t.Errorf("conflicts %v", cs)
	}
}

// spec dhis2.md §1.5: value type validation (E7619) and boolean
// normalisation (§1.4), option sets (E7621), comment length (E7620).
func TestValueTypes(t *testing.T) {
	cases := []struct {
		valueType, value, stored string // stored "" = rejected
	}{
		{"NUMBER", "12.5", "12.5"}, {"NUMBER", "-3", "-3"}, {"NUMBER", "1e3", "1e3"}, {"NUMBER", "abc", ""}, {"NUMBER", "01", ""},
		{"INTEGER", "-7", "-7"}, {"INTEGER", "7.0", ""}, {"INTEGER", "99999999999", ""},
		{"INTEGER_POSITIVE", "3", "3"}, {"INTEGER_POSITIVE", "0", ""},
		{"INTEGER_NEGATIVE", "-3", "-3"}, {"INTEGER_NEGATIVE", "3", ""},
		{"INTEGER_ZERO_OR_POSITIVE", "0", "0"}, {"INTEGER_ZERO_OR_POSITIVE", "-1", ""},
		{"PERCENTAGE", "100", "100"}, {"PERCENTAGE", "100.5", ""},
		{"UNIT_INTERVAL", "0.5", "0.5"}, {"UNIT_INTERVAL", "2", ""},
		{"BOOLEAN", "True", "true"}, {"BOOLEAN", "1", "true"}, {"BOOLEAN", "F", "false"}, {"BOOLEAN", "0", "false"}, {"BOOLEAN", "yes", ""},
		{"TRUE_ONLY", "t", "true"}, {"TRUE_ONLY", "1", "true"}, {"TRUE_ONLY", "false", ""},
		{"TEXT", "free text", "free text"}, {"LONG_TEXT", strings.Repeat("x", 60000), strings.Repeat("x", 60000)},
		{"TEXT", strings.Repeat("x", 50001), ""},
		{"DATE", "2024-02-29", "2024-02-29"}, {"DATE", "2023-02-29", ""},
		{"DATETIME", "2024-02-29T10:00:00", "2024-02-29T10:00:00"}, {"DATETIME", "yesterday", ""},
		{"TIME", "23:59", "23:59"}, {"TIME", "24:00", ""},
		{"EMAIL", "a@b.org", "a@b.org"}, {"EMAIL", "nope", ""},
		{"URL", "https://dhis2.org", "https://dhis2.org"}, {"URL", "dhis2", ""},
		{"LETTER", "a", "a"}, {"LETTER", "ab", ""},
		{"COORDINATE", "[-11.2,8.4]", "[-11.2,8.4]"}, {"COORDINATE", "x", ""},
	}
	srv := newTestServer(t, WithVersion("2.40"))
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		for i, tc := range cases {
			m.AddDataElement(DataElement{ID: fmt.Sprintf("VtDe%07d", i), Code: fmt.Sprintf("VT_%d", i), Name: "vt " + tc.valueType, ValueType: tc.valueType, ZeroIsSignificant: true})
		}
		m.AddDataElement(DataElement{ID: "OptSetDe001", Code: "OPT", Name: "with options", ValueType: "TEXT", OptionSet: []string{"A", "B"}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		body := fmt.Sprintf(`{"dataValues":[{"dataElement":"VT_%d","period":"202401","orgUnit":"KL_N_F1","value":%q}]}`, i, tc.value)
		sum := summaryOf(t, postJSON(t, srv, "?dataElementIdScheme=CODE&orgUnitIdScheme=CODE", body))
		v, ok := srv.Lookup(fmt.Sprintf("VT_%d", i), "202401", "KL_N_F1", "", "")
		switch {
		case tc.stored == "" && ok:
			t.Errorf("%s %.20q accepted", tc.valueType, tc.value)
		case tc.stored == "" && (len(conflictsOf(sum)) != 1 || !slices.Contains([]any{"E7619"}, conflictsOf(sum)[0]["errorCode"])):
			t.Errorf("%s %.20q: conflicts %v", tc.valueType, tc.value, sum["conflicts"])
		case tc.stored != "" && v.Value != tc.stored:
			t.Errorf("%s %.20q stored %.20q (%v): %v", tc.valueType, tc.value, v.Value, ok, sum["conflicts"])
		}
	}
	sum := summaryOf(t, postJSON(t, srv, "?dataElementIdScheme=CODE&orgUnitIdScheme=CODE",
		`{"dataValues":[{"dataElement":"OPT","period":"202401","orgUnit":"KL_N_F1","value":"C"}]}`))
	if cs := conflictsOf(sum); len(cs) != 1 || cs[0]["errorCode"] != "E7621" {
		t.Errorf("option set: %v", cs)
	}
	sum = summaryOf(t, postJSON(t, srv, "?dataElementIdScheme=CODE&orgUnitIdScheme=CODE",
		`{"dataValues":[{"dataElement":"OPT","period":"202401","orgUnit":"KL_N_F1","value":"A","comment":"`+strings.Repeat("c", 50001)+`"}]}`))
	if cs := conflictsOf(sum); len(cs) != 1 || cs[0]["errorCode"] != "E7620" {
		t.Errorf("comment: %v", cs)
	}
}

// spec dhis2.md §1.5: E7611 period, E7612 org unit, E7613/E7615 combos,
// E7617 hierarchy (district user), E7632–E7636 strict flags, with the sample.
func TestValidationCodes(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	v := func(fields string) string {
		return `{"dataValues":[{"dataElement":"MAL_CONFIRMED","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1","attributeOptionCombo":"GOV","value":"1"` + fields + `}]}`
	}
	cases := []struct {
		name, query, body, code, message string
		opts                             []reqOpt
	}{
		{"E7611", "", v(`,"period":"2024W54"`), "E7611", "Period not valid: `2024W54`", nil},
		{"E7612", "", v(`,"orgUnit":"NOWHERE"`), "E7612", "Organisation unit not found or not accessible: `NOWHERE`", nil},
		{"E7613", "", v(`,"categoryOptionCombo":"X_LT1"`), "E7613", "Category option combo not found or not accessible for writing data: `X_LT1`", nil},
		{"E7615", "", v(`,"attributeOptionCombo":"UNKNOWN"`), "E7615", "Attribute option combo not found or not accessible for writing data: `UNKNOWN`", nil},
		{"E7617", "", v(`,"orgUnit":"KL_S_F1"`), "E7617", "Organisation unit: `KL_S_F1` not in hierarchy of current user: `lnhG2BqxLHm`",
			[]reqOpt{withBasic(SampleDistrictUser, SampleDistrictPassword)}},
		{"E7632", "&strictPeriods=true", v(`,"period":"2024Q1"`), "E7632", "Period type of period: `2024Q1` not valid for data element: `MAL_CONFIRMED`", nil},
		{"E7633", "&strictDataElements=true", `{"dataSet":"EPI_MONTHLY","dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`,
			"E7633", "Data element: `MAL_TREATED` is not part of dataset(s): `eRTpPWzUB4q`", nil},
		{"E7634", "&strictCategoryOptionCombos=true", v(`,"categoryOptionCombo":"NGO"`), "E7634",
			"Category option combo: `NGO` must be part of category combo of data element: `MAL_CONFIRMED`", nil},
		{"E7635", "&strictAttributeOptionCombos=true", v(`,"attributeOptionCombo":"M_LT1"`), "E7635",
			"Attribute option combo: `M_LT1` must be part of category combo of data sets of data element: `MAL_CONFIRMED`", nil},
		{"E7636", "&strictOrganisationUnits=true", v(`,"orgUnit":"KL_NORTH"`), "E7636",
			"Data element: `MAL_CONFIRMED` must be assigned through data sets to organisation unit: `KL_NORTH`", nil},
		{"E7630", "&requireCategoryOptionCombo=true", v(`,"categoryOptionCombo":""`), "E7630", "Category option combo is required but is not specified", nil},
		{"E7641", "", v(`,"period":"202406"`), "E7641", "Period: `202406` is after latest open future period: `202403` for data element: `MAL_CONFIRMED`", nil},
	}
	for _, tc := range cases {
		r := postJSON(t, srv, "?idScheme=CODE"+tc.query, tc.body, tc.opts...)
		cs := conflictsOf(summaryOf(t, r))
		if len(cs) != 1 || cs[0]["errorCode"] != tc.code || cs[0]["value"] != tc.message {
			t.Errorf("%s: %v", tc.name, cs)
		}
	}
	if srv.Store().Len() != 0 {
		t.Errorf("stored %+v", srv.Store().Values())
	}
	// the district user may write in its own subtree
	r := postJSON(t, srv, "?idScheme=CODE", v(""), withBasic(SampleDistrictUser, SampleDistrictPassword))
	if r.status != http.StatusOK {
		t.Errorf("district user in KL_NORTH: %d %s", r.status, r.raw)
	}
}

// An insignificant zero (MAL_LLIN_DISTRIBUTED does not store zeros) is
// skipped, counted nowhere and not rejected, when no row exists or the
// strategy is CREATE; a soft-deleted row counts as existing, so
// CREATE_AND_UPDATE restores it with "0" (DefaultDataValueSetService
// .importDataValue: zeroAndInsignificant && (existingValue == null ||
// strategy.isCreate())).
func TestInsignificantZeroByStrategy(t *testing.T) {
	llin := func(v string) string {
		return `{"dataValues":[{"dataElement":"MAL_LLIN_DISTRIBUTED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"` + v + `"}]}`
	}
	cases := []struct {
		name, strategy, state string
		want                  [4]int
		stored                string
	}{
		{"C&U no row", "CREATE_AND_UPDATE", "none", [4]int{}, ""},
		{"UPDATE no row", "UPDATE", "none", [4]int{}, ""},
		{"DELETE no row", "DELETE", "none", [4]int{}, ""},
		{"CREATE over live", "CREATE", "live", [4]int{}, "5"},
		{"C&U over live deletes", "CREATE_AND_UPDATE", "live", [4]int{0, 0, 1, 0}, ""},
		{"C&U soft-deleted row restored", "CREATE_AND_UPDATE", "deleted", [4]int{1, 0, 0, 0}, "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, WithVersion("2.41"))
			if tc.state != "none" {
				postJSON(t, srv, "?idScheme=CODE", llin("5"))
			}
			if tc.state == "deleted" {
				postJSON(t, srv, "?idScheme=CODE&importStrategy=DELETE", llin("5"))
			}
			sum := summaryOf(t, postJSON(t, srv, "?idScheme=CODE&importStrategy="+tc.strategy, llin("0")))
			if got := counts(t, sum); got != tc.want || len(intsOf(sum["rejectedIndexes"])) != 0 {
				t.Errorf("counts %v rejected %v, want %v and none", got, sum["rejectedIndexes"], tc.want)
			}
			v, ok := srv.Lookup("MAL_LLIN_DISTRIBUTED", "202401", "KL_N_F1", "", "GOV")
			if (tc.stored == "" && ok) || (tc.stored != "" && v.Value != tc.stored) {
				t.Errorf("stored %q (%v), want %q", v.Value, ok, tc.stored)
			}
		})
	}
}

// 2.43+: the pipeline upserts whatever the strategy (conformance README
// §6.2 "B UPDATES: 0/12/0/0, 12 stored"); DELETE counts every value as
// deleted, present or not (spec dhis2.md §2.4 D).
func TestImportStrategies243(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		seed     bool
		want     [4]int
		stored   bool
	}{
		{"CREATE", true, [4]int{0, 1, 0, 0}, true},
		{"NEW", false, [4]int{0, 1, 0, 0}, true},
		{"UPDATE", false, [4]int{0, 1, 0, 0}, true},
		{"DELETE", false, [4]int{0, 0, 1, 0}, false},
		{"DELETE", true, [4]int{0, 0, 1, 0}, false},
	} {
		srv := newTestServer(t, WithVersion("2.43"))
		if tc.seed {
			postJSON(t, srv, "?idScheme=CODE", treated("202401", "5"))
		}
		r := postJSON(t, srv, "?idScheme=CODE&importStrategy="+tc.strategy, treated("202401", "9"))
		if got := counts(t, summaryOf(t, r)); got != tc.want {
			t.Errorf("%s (seeded %v): counts %v, want %v", tc.strategy, tc.seed, got, tc.want)
		}
		if _, ok := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); ok != tc.stored {
			t.Errorf("%s (seeded %v): stored %v", tc.strategy, tc.seed, ok)
		}
	}
}
