package mapping

import (
	"context"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// TestMapJudgesEachValueThatRepeatsItsNeighbour: the mapper remembers the lookups of the
// value before (run.last), since values come grouped by org unit, option combo and period.
// Each case here gives a value the same org unit, option combo or period as its neighbour
// but something else that changes the verdict, or repeats a value that has a record of its
// own: none may inherit its neighbour's verdict.
func TestMapJudgesEachValueThatRepeatsItsNeighbour(t *testing.T) {
	sets, _ := compile(t, engineYAML, engineFiles)
	// KL_N_F1 reports EPI but not malaria: MAL_MONTHLY is not assigned to it.
	md := kalima(t)
	for i, ds := range md.DataSets {
		if ds.Code == "MAL_MONTHLY" {
			md.DataSets[i].OrganisationUnits = md.DataSets[i].OrganisationUnits[1:]
		}
	}
	e := NewEngine(sets, StaticMetadata{"hmis": md})
	target := &Target{Name: "hmis", IDSchemes: Schemes{IDScheme: "CODE"}}
	tests := []struct {
		name     string
		src      Source
		values   []transform.DataValue
		want     []string
		refused  []string
		unmapped []string
		warnings []string
	}{
		{name: "an option combo in one data element's combo and not in the next one's", src: Source{Name: "src", Mapping: "adx"},
			values: []transform.DataValue{
				dv("BCG", "202401", "KL_N_F2", "F_LT1", "", "1"),
				dv("TREATED", "202401", "KL_N_F2", "F_LT1", "GOV", "2"),
				dv("BCG", "202402", "KL_N_F2", "F_LT1", "", "3"),
			},
			want:    []string{"EPI_BCG 202401 KL_N_F2 F_LT1 default 1 #0", "EPI_BCG 202402 KL_N_F2 F_LT1 default 3 #2"},
			refused: []string{"1 categoryOptionCombo E7634: F_LT1 is not in category combo default"}},
		{name: "an org unit kept for one data set and left out of the next (keep: assigned)",
			src: Source{Name: "src", Mapping: "adx", OrgUnits: SourceOrgUnits{Keep: "assigned"}},
			values: []transform.DataValue{
				dv("BCG", "202401", "KL_N_F1", "F_LT1", "", "1"),
				dv("TREATED", "202401", "KL_N_F1", "", "GOV", "2"),
				dv("BCG", "202401", "KL_N_F1", "M_LT1", "", "3"),
			},
			want:     []string{"EPI_BCG 202401 KL_N_F1 F_LT1 default 1 #0", "EPI_BCG 202401 KL_N_F1 M_LT1 default 3 #2"},
			unmapped: []string{`1 orgUnit KL_N_F1: org unit KL_N_F1 is not assigned to data set MAL_MONTHLY`}},
		{name: "an org unit warned about twice in a row (keep: all)", src: Source{Name: "src", Mapping: "same-ou", OrgUnits: SourceOrgUnits{Keep: "all"}},
			values: []transform.DataValue{
				dv("household-visits", "202401", "KL_NORTH", "", "", "30"),
				dv("household-visits", "202402", "KL_NORTH", "", "", "31"),
			},
			want: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_NORTH default default 30 #0", "CHW_HOUSEHOLD_VISITS 202402 KL_NORTH default default 31 #1"},
			warnings: []string{`0 orgUnit KL_NORTH E7636: org unit KL_NORTH is not assigned`,
				`1 orgUnit KL_NORTH E7636: org unit KL_NORTH is not assigned`}},
		{name: "an org unit unknown twice in a row", src: Source{Name: "src", Mapping: "same-ou"},
			values: []transform.DataValue{
				dv("household-visits", "202401", "KL_N_F1", "", "", "1"),
				dv("household-visits", "202401", "NOWHERE", "", "", "2"),
				dv("household-visits", "202402", "NOWHERE", "", "", "3"),
				dv("household-visits", "202402", "KL_N_F1", "", "", "4"),
			},
			want:     []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 1 #0", "CHW_HOUSEHOLD_VISITS 202402 KL_N_F1 default default 4 #3"},
			unmapped: []string{`1 orgUnit NOWHERE`, `2 orgUnit NOWHERE`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			in := &transform.Batch{Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: indexed(tt.values)}
			m, err := e.MapWith(context.Background(), in, &src, target, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, "values", m, tt.want)
			var refused, unmapped, warnings []string
			for _, r := range m.Refused {
				refused = append(refused, showRefused(r))
			}
			for _, u := range m.Unmapped {
				unmapped = append(unmapped, showUnmapped(u))
			}
			for _, w := range m.Warnings {
				warnings = append(warnings, showWarning(w))
			}
			prefixes(t, "refused", refused, tt.refused)
			prefixes(t, "unmapped", unmapped, tt.unmapped)
			prefixes(t, "warnings", warnings, tt.warnings)
		})
	}
}
