package mapping

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// kalimaExamples compiles examples/mappings/kalima.yaml as the mappings: section of
// examples/tally.yaml, where it is written to sit, with one source per set.
func kalimaExamples(t *testing.T) (*Sets, *config.Config) {
	t.Helper()
	data, err := os.ReadFile("../../examples/mappings/kalima.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join("..", "..", "examples", "tally.yaml"), data, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sources = []config.Source{{Name: "tracker", Mapping: "tracker-to-hmis"}, {Name: "cht", Mapping: "cht-to-hmis"}}
	cfg.Targets = []config.Target{{Name: "hmis"}}
	sets, probs := compileConfig(cfg)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return sets, cfg
}

func TestExampleMappings(t *testing.T) {
	sets, cfg := kalimaExamples(t)
	md := kalima(t)
	if probs := checkConfig(sets, cfg, map[string]*metadata.Metadata{"hmis": md}); len(probs) > 0 {
		t.Errorf("the example mappings do not check against the Kalima HMIS:\n%s", problemsText(probs))
	}

	// Every program indicator of the scenario has a rule, and nothing else does.
	var want, got []string
	for _, pi := range []string{"PI_BCG_", "PI_PENTA1_", "PI_MAL_CONF_"} {
		for _, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
			want = append(want, pi+coc)
		}
	}
	want = append(want, "PI_MAL_TREATED")
	tracker, _ := sets.Set("tracker-to-hmis")
	for _, r := range tracker.Rules {
		got = append(got, r.Source)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("tracker rules for %v\nwant %v", got, want)
	}

	e := NewEngine(sets, StaticMetadata{"hmis": md})
	target := &Target{Name: "hmis", IDSchemes: Schemes{IDScheme: "CODE"}}
	t.Run("tracker analytics output", func(t *testing.T) {
		in := &transform.Batch{Source: "tracker", Schemes: transform.IDSchemes{IDScheme: "CODE"}}
		for _, ou := range []string{"KL_N_F1", "KL_N_F2", "KL_S_F1", "KL_S_F2"} {
			for _, pi := range want {
				in.Values = append(in.Values, transform.DataValue{DataElement: pi, Period: "202401", OrgUnit: ou, Value: "3",
					Comment: "[aggregated]", Index: len(in.Values)})
			}
		}
		m, err := e.Map(context.Background(), in, sourceOf(&cfg.Sources[0]), target)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Batch.Values) != len(in.Values) || len(m.Unmapped) != 0 {
			t.Fatalf("%d of %d values mapped, unmapped %v", len(m.Batch.Values), len(in.Values), m.Unmapped)
		}
		counts := map[string]int{}
		for _, v := range m.Batch.Values {
			counts[fmt.Sprintf("%s/%s", v.DataElement, v.AttributeOptionCombo)]++
		}
		wantCounts := map[string]int{"EPI_BCG/default": 16, "EPI_PENTA1/default": 16, "MAL_CONFIRMED/GOV": 16, "MAL_TREATED/GOV": 4}
		if fmt.Sprint(counts) != fmt.Sprint(wantCounts) {
			t.Errorf("counts %v, want %v", counts, wantCounts)
		}
	})
	t.Run("CHT targets", func(t *testing.T) {
		in := &transform.Batch{Source: "cht", DataSet: "CHW_MONTHLY", CompleteDate: "2024-02-03"}
		for _, tg := range []string{"household-visits", "u5-assessments", "pregnancies-registered"} {
			in.Values = append(in.Values, transform.DataValue{DataElement: tg, Period: "202401", OrgUnit: "KL_N_F1", Value: "11", Index: len(in.Values)})
		}
		m, err := e.Map(context.Background(), in, sourceOf(&cfg.Sources[1]), target)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range m.Batch.Values {
			got = append(got, show(v))
		}
		want := []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 11 #0", "CHW_U5_ASSESSMENTS 202401 KL_N_F1 default default 11 #1",
			"CHW_PREGNANCIES_REGISTERED 202401 KL_N_F1 default default 11 #2"}
		if !slices.Equal(got, want) || m.Batch.DataSet != "CHW_MONTHLY" || m.Batch.CompleteDate != "2024-02-03" {
			t.Errorf("mapped %v to %s (%s)", got, m.Batch.DataSet, m.Batch.CompleteDate)
		}
	})
}
