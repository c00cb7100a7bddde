package mapping

import (
	"context"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// TestMapOrgUnitAssignment: CHT exports a row for a health worker's district too (cht.md
// §5, its ancestors carrying dhis.orgUnit); the Kalima data sets are assigned to the four
// facilities only, so the district's value is warned about, or left out. What DHIS2 does
// with it: 2.38-2.42 refuse it only under strict org unit checks (E7636, "Data element
// must be assigned through data sets to organisation unit", spec dhis2.md §1.5 and
// ErrorCode.java); 2.43's pipeline refuses the data set's group (E8022 "not usable with
// org unit(s)", spec dhis2.md §1.6).
func TestMapOrgUnitAssignment(t *testing.T) {
	sets, _ := compile(t, engineYAML, engineFiles)
	stale := kalima(t)
	for i := range stale.DataSets {
		stale.DataSets[i].OrganisationUnits = nil
	}
	for i := range stale.OrgUnits {
		stale.OrgUnits[i].Level = 0
	}
	at43 := kalima(t)
	at43.SystemRelease = 43
	e := NewEngine(sets, StaticMetadata{"hmis": kalima(t), "hmis-stale": stale, "hmis-43": at43})
	values := []transform.DataValue{
		dv("household-visits", "202401", "KL_N_F1", "", "", "11"),
		dv("household-visits", "202401", "KL_NORTH", "", "", "30"),
		dv("household-visits", "202401", "KL", "", "", "50"),
	}
	code := Schemes{IDScheme: "CODE"}
	tests := []struct {
		name, target string
		ou           SourceOrgUnits
		want         []string
		unmapped     []string
		warnings     []string
	}{
		{name: "keep all warns", ou: SourceOrgUnits{Keep: "all"},
			want: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 11 #0", "CHW_HOUSEHOLD_VISITS 202401 KL_NORTH default default 30 #1",
				"CHW_HOUSEHOLD_VISITS 202401 KL default default 50 #2"},
			warnings: []string{`1 orgUnit KL_NORTH E7636: org unit KL_NORTH is not assigned to data set CHW_MONTHLY in target "hmis"; DHIS2 before 2.43 stores it`,
				`2 orgUnit KL E7636: org unit KL is not assigned`}},
		{name: "2.43 refuses the group", target: "hmis-43",
			want: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 11 #0", "CHW_HOUSEHOLD_VISITS 202401 KL_NORTH default default 30 #1",
				"CHW_HOUSEHOLD_VISITS 202401 KL default default 50 #2"},
			warnings: []string{`1 orgUnit KL_NORTH E7636: org unit KL_NORTH is not assigned to data set CHW_MONTHLY in target "hmis-43"; DHIS2 2.43 refuses the data set's whole group for it (E8022)`,
				`2 orgUnit KL E7636`}},
		{name: "keep assigned", ou: SourceOrgUnits{Keep: "assigned"},
			want:     []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 11 #0"},
			unmapped: []string{`1 orgUnit KL_NORTH: org unit KL_NORTH is not assigned to data set CHW_MONTHLY in target "hmis" (org_units: keep: assigned on source "src")`, `2 orgUnit KL`}},
		{name: "a level", ou: SourceOrgUnits{Level: 2},
			want:     []string{"CHW_HOUSEHOLD_VISITS 202401 KL_NORTH default default 30 #1"},
			unmapped: []string{`0 orgUnit KL_N_F1: org unit KL_N_F1 is at level 3; source "src" keeps level 2 (org_units.level)`, `2 orgUnit KL: org unit KL is at level 1`},
			warnings: []string{`1 orgUnit KL_NORTH E7636`}},
		{name: "metadata that does not say keeps everything and says so", target: "hmis-stale", ou: SourceOrgUnits{Keep: "assigned", Level: 3},
			want: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 11 #0", "CHW_HOUSEHOLD_VISITS 202401 KL_NORTH default default 30 #1",
				"CHW_HOUSEHOLD_VISITS 202401 KL default default 50 #2"},
			warnings: []string{`batch: the metadata of target "hmis-stale" gives no org unit levels`,
				`batch: the metadata of target "hmis-stale" does not list the data sets' org units (read before Tally asked for them); org_units: keep: assigned is not applied`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := &Target{Name: "hmis", IDSchemes: code}
			if tt.target != "" {
				target.Name = tt.target
			}
			src := &Source{Name: "src", Mapping: "same-ou", OrgUnits: tt.ou}
			in := &transform.Batch{Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: indexed(values)}
			m, err := e.Map(context.Background(), in, src, target)
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, "values", m, tt.want)
			var unmapped, warnings []string
			for _, u := range m.Unmapped {
				unmapped = append(unmapped, showUnmapped(u))
			}
			for _, w := range m.Warnings {
				warnings = append(warnings, showWarning(w))
			}
			prefixes(t, "unmapped", unmapped, tt.unmapped)
			prefixes(t, "warnings", warnings, tt.warnings)
		})
	}
}
