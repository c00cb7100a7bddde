package dvs_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

// A script posts a month of Kalima's malaria data; the ingest detects the format, then
// streams the body into a Batcher, which numbers, validates and batches the values.
func Example() {
	body, head, err := dvs.Peek(strings.NewReader(`{
  "dataSet": "MAL_MONTHLY", "period": "202401", "orgUnit": "KL_N_F1", "attributeOptionCombo": "GOV",
  "dataValues": [
    {"dataElement": "MAL_CONFIRMED", "categoryOptionCombo": "F_LT1", "value": 12},
    {"dataElement": "MAL_TREATED", "value": "9", "comment": "stock-out in week 2"},
    {"dataElement": "MAL_LLIN_DISTRIBUTED", "period": "202312", "value": "40"}
  ]
}`))
	if err != nil {
		panic(err)
	}
	format, err := dvs.DetectFormat("application/json; charset=UTF-8", head)
	fmt.Println("format:", format, err)

	b := transform.NewBatcher(transform.BatcherConfig{
		Source:  "kalima-hmis",
		Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}, // ?idScheme=CODE
		Emit: func(b *transform.Batch) error {
			fmt.Printf("batch %d of data set %s, ids in %s:\n", b.Seq, b.DataSet, b.Schemes.IDScheme)
			for _, v := range b.Values {
				fmt.Printf("  #%d %s %s/%s %s/%s = %q\n", v.Index, v.DataElement, v.CategoryOptionCombo,
					v.AttributeOptionCombo, v.OrgUnit, v.Period, v.Value)
			}
			return nil
		},
	})
	if err := dvs.DecodeJSON(body, b, dvs.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// format: json <nil>
	// batch 0 of data set MAL_MONTHLY, ids in CODE:
	//   #0 MAL_CONFIRMED F_LT1/GOV KL_N_F1/202401 = "12"
	//   #1 MAL_TREATED /GOV KL_N_F1/202401 = "9"
	//   #2 MAL_LLIN_DISTRIBUTED /GOV KL_N_F1/202401 = "40"
}

// Problems come back with their place in the payload.
func ExampleDecodeXML_errors() {
	body := strings.NewReader(`<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" period="202401" orgUnit="KL_S_F2">
  <dataValue dataElement="EPI_BCG" categoryOptionCombo="M_LT1" value="3"/>
  <dataValue dataElement="EPI_PENTA1" categoryOptionCombo="M_LT1" value="4" deleted="maybe"/>
</dataValueSet>`)
	b := transform.NewBatcher(transform.BatcherConfig{Emit: func(*transform.Batch) error { return nil }})
	err := dvs.DecodeXML(body, b, dvs.Options{}) // the parse goes on after a bad value
	fmt.Println(err)
	fmt.Println(b.Close()) // and the Batcher refuses the payload with every problem
	// Output:
	// <nil>
	// 1 invalid item: line 3, column 3, /dataValueSet/dataValue[2]/@deleted: data value 1: deleted "maybe": true or false
}

// In per-value mode, as DHIS2 2.38–2.42 imports, the good values are kept and each bad one
// becomes a conflict with DHIS2's error code.
func ExampleDecodeXML_perValue() {
	body := strings.NewReader(`<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" period="202401" orgUnit="KL_S_F2">
  <dataValue dataElement="EPI_BCG" categoryOptionCombo="M_LT1" value="3"/>
  <dataValue dataElement="EPI_PENTA1" categoryOptionCombo="M_LT1" value="" comment=""/>
  <dataValue dataElement="EPI_PENTA1" categoryOptionCombo="F_LT1" value="4" deleted="maybe"/>
</dataValueSet>`)
	kept := 0
	b := transform.NewBatcher(transform.BatcherConfig{PerValue: true,
		Emit: func(b *transform.Batch) error { kept += len(b.Values); return nil }})
	if err := dvs.DecodeXML(body, b, dvs.Options{}); err != nil {
		panic(err)
	}
	if err := b.Close(); err != nil {
		panic(err)
	}
	r := b.Report()
	fmt.Println(r.Read, r.Kept, r.Rejected, kept)
	for _, c := range transform.MergeConflicts(r.Conflicts) {
		fmt.Printf("%s %v %s\n", c.ErrorCode, c.Indexes, c.Value)
	}
	// Output:
	// 3 1 2 1
	// E7618 [1] Data value or comment not specified for data element: `EPI_PENTA1`
	//  [2] deleted "maybe": true or false
}

// The delivery client writes a batch as the body of a POST to DHIS2.
func ExampleWriteJSON() {
	b := &transform.Batch{
		DataSet: "CHW_MONTHLY",
		Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode},
		Values: []transform.DataValue{
			{DataElement: "CHW_HOUSEHOLD_VISITS", Period: "202401", OrgUnit: "KL_N_F2", Value: "57"},
			{DataElement: "CHW_U5_ASSESSMENTS", Period: "202401", OrgUnit: "KL_N_F2", Value: "12", Comment: `counted "twice"?`, FollowUp: true},
		},
	}
	if err := dvs.WriteJSON(os.Stdout, b); err != nil {
		panic(err)
	}
	// Output:
	// {"dataSet":"CHW_MONTHLY","idScheme":"CODE","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","period":"202401","orgUnit":"KL_N_F2","value":"57"},{"dataElement":"CHW_U5_ASSESSMENTS","period":"202401","orgUnit":"KL_N_F2","value":"12","comment":"counted \"twice\"?","followup":true,"followUp":true}]}
}
