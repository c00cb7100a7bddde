package mapping

import (
	"testing"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
	"github.com/tally-hmis/tally/transform/period"
)

// TestMapPeriodsByRelease: a period of a type the target's DHIS2 release does not have is
// refused per value, naming the period, its type, the release it exists from and the
// target's (spec dhis2.md §11.1: QuarterlyNov from 2.41, FinancialSep from 2.42,
// WeeklyFriday, FinancialFeb and FinancialAug from 2.43).
func TestMapPeriodsByRelease(t *testing.T) {
	sets, _ := compile(t, engineYAML, engineFiles)
	at := func(rel int) *metadata.Metadata {
		md := kalima(t)
		md.SystemRelease = rel
		return md
	}
	e := NewEngine(sets, StaticMetadata{"hmis": at(40), "hmis-42": at(42), "hmis-43": at(43), "hmis-unknown": at(0)})
	values := []transform.DataValue{
		dv("CHW_HH", "202401", "KL_N_F1", "", "", "1"),
		dv("CHW_HH", "2024FriW3", "KL_N_F1", "", "", "2"),
		dv("CHW_HH", "2024Sep", "KL_N_F1", "", "", "3"),
		dv("CHW_HH", "2025NovQ1", "KL_N_F1", "", "", "4"),
		dv("CHW_HH", "2024Feb", "KL_N_F1", "", "", "5"),
		dv("CHW_HH", "2024M13", "KL_N_F1", "", "", "6"), // not a period: left to DHIS2
	}
	code := Schemes{IDScheme: "CODE"}
	all := []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 1 #0", "CHW_HOUSEHOLD_VISITS 2024FriW3 KL_N_F1 default default 2 #1",
		"CHW_HOUSEHOLD_VISITS 2024Sep KL_N_F1 default default 3 #2", "CHW_HOUSEHOLD_VISITS 2025NovQ1 KL_N_F1 default default 4 #3",
		"CHW_HOUSEHOLD_VISITS 2024Feb KL_N_F1 default default 5 #4", "CHW_HOUSEHOLD_VISITS 2024M13 KL_N_F1 default default 6 #5"}
	runMapCases(t, e, []mapCase{
		{name: "2.40", set: "tracker", schemes: code, values: values,
			want: []string{all[0], all[5]},
			refused: []string{`1 period E7611: period 2024FriW3 is WeeklyFriday, a period type DHIS2 has from 2.43 on; target "hmis" runs 2.40`,
				`2 period E7611: period 2024Sep is FinancialSep, a period type DHIS2 has from 2.42 on; target "hmis" runs 2.40`,
				`3 period E7611: period 2025NovQ1 is QuarterlyNov, a period type DHIS2 has from 2.41 on; target "hmis" runs 2.40`,
				`4 period E7611: period 2024Feb is FinancialFeb, a period type DHIS2 has from 2.43 on`}},
		{name: "2.42", set: "tracker", target: "hmis-42", schemes: code, values: values,
			want:    []string{all[0], all[2], all[3], all[5]},
			refused: []string{`1 period E7611: period 2024FriW3 is WeeklyFriday`, `4 period E7611: period 2024Feb is FinancialFeb, a period type DHIS2 has from 2.43 on; target "hmis-42" runs 2.42`}},
		{name: "2.43", set: "tracker", target: "hmis-43", schemes: code, values: values, want: all},
		{name: "release unknown", set: "tracker", target: "hmis-unknown", schemes: code, values: values, want: all},
	})
}

// Mapping asks transform/period for the release of each type (the one table in the
// codebase), in which only the newer types start late (spec dhis2.md §11.1).
func TestPeriodTypeSince(t *testing.T) {
	late := map[period.Type]int{period.QuarterlyNov: 41, period.FinancialSep: 42, period.WeeklyFriday: 43, period.FinancialFeb: 43, period.FinancialAug: 43}
	for _, pt := range period.Types() {
		if got := pt.Since(); got != late[pt] {
			t.Errorf("%s: since %d, want %d", pt, got, late[pt])
		}
	}
}
