package mapping_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/metadata"
	"go.yaml.in/yaml/v3"
)

// A tracker instance's program indicators, pulled by code, become the national HMIS's data
// values. The HMIS is sent codes; a value no rule names is dropped and reported.
func Example() {
	// A caller decodes its configuration into SetConfig (Tally's mediator does, from its
	// YAML file with line numbers); here the set is decoded on its own.
	var section struct {
		Mappings []mapping.SetConfig `yaml:"mappings"`
	}
	err := yaml.Unmarshal([]byte(`
mappings:
  - name: tracker-to-hmis
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    rules:
      - {source: PI_BCG_F_LT1, data_element: EPI_BCG, coc: F_LT1}
      - {source: PI_MAL_TREATED, data_element: MAL_TREATED, aoc: GOV}
`), &section)
	if err != nil {
		fmt.Println(err)
		return
	}
	sets, probs := mapping.Compile(section.Mappings, nil, mapping.FileLocator("tally.yaml"))
	if len(probs) > 0 {
		fmt.Println(probs)
		return
	}
	// The lead's provider reads this from DHIS2 (see MetadataRequests) and caches it.
	data, err := os.ReadFile("testdata/kalima-hmis.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	var md metadata.Metadata
	if err := json.Unmarshal(data, &md); err != nil {
		fmt.Println(err)
		return
	}
	engine := mapping.NewEngine(sets, mapping.StaticMetadata{"hmis": &md})

	in := &transform.Batch{Source: "tracker", Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}, Values: []transform.DataValue{
		{DataElement: "PI_BCG_F_LT1", Period: "202401", OrgUnit: "KL_N_F1", Value: "5", Index: 0},
		{DataElement: "PI_MAL_TREATED", Period: "202401", OrgUnit: "KL_S_F2", Value: "7", Index: 1},
		{DataElement: "PI_ANC1", Period: "202401", OrgUnit: "KL_S_F2", Value: "3", Index: 2},
	}}
	source := &mapping.Source{Name: "tracker", Mapping: "tracker-to-hmis", Unmapped: "drop", Duplicates: "reject"}
	target := &mapping.Target{Name: "hmis", IDSchemes: mapping.Schemes{IDScheme: "CODE"}}
	m, err := engine.Map(context.Background(), in, source, target)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("data set:", m.Batch.DataSet, "schemes:", m.Batch.Schemes.DataElement, m.Batch.Schemes.CategoryOptionCombo)
	for _, v := range m.Batch.Values {
		fmt.Println(v.DataElement, v.Period, v.OrgUnit, v.CategoryOptionCombo, v.AttributeOptionCombo, v.Value)
	}
	for _, u := range m.Unmapped {
		fmt.Printf("unmapped value %d (%s %s): %s\n", u.Index, u.Field, u.Value, u.Reason)
	}
	// Output:
	// data set:  schemes: CODE CODE
	// EPI_BCG 202401 KL_N_F1 F_LT1 default 5
	// MAL_TREATED 202401 KL_S_F2 default GOV 7
	// unmapped value 2 (dataElement PI_ANC1): mapping set "tracker-to-hmis" has no rule for it
}
