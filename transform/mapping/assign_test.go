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
			wantRecords(t, m, nil, tt.unmapped, tt.warnings)
		})
	}
}

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
			wantRecords(t, m, tt.refused, tt.unmapped, tt.warnings)
		})
	}
}
