package adx_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/tally-hmis/tally/adapters/adx"
	"github.com/tally-hmis/tally/transform"
)

// Decode an ADX message from a Kalima facility into batches of canonical values, then
// write them back as ADX.
func Example() {
	msg := `<adx xmlns="urn:ihe:qrph:adx:2015" exported="2024-02-01T10:00:00Z">
  <group dataSet="MAL_MONTHLY" orgUnit="KL_N_F1" period="2024-01-01/P1M" FUNDING="GOV">
    <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="LT1" value="12"/>
    <dataValue dataElement="MAL_REMARKS" value="0"><annotation>stock-out week 2</annotation></dataValue>
  </group>
</adx>`
	isText := func(de string) bool { return de == "MAL_REMARKS" }

	var values []transform.DataValue
	b := transform.NewBatcher(transform.BatcherConfig{Source: "kalima-adx", Emit: func(b *transform.Batch) error {
		fmt.Printf("batch: data set %s, idScheme %s\n", b.DataSet, b.Schemes.IDScheme)
		for _, v := range b.Values {
			fmt.Printf("  %s %s %s %v %v %q\n", v.DataElement, v.Period, v.OrgUnit, v.Categories, v.Attributes, v.Value)
		}
		values = append(values, b.Values...)
		return nil
	}})
	if err := adx.Decode(strings.NewReader(msg), b, adx.Options{IsText: isText}); err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Close(); err != nil {
		fmt.Println(err)
		return
	}

	enc := adx.NewEncoder(os.Stdout, adx.EncodeOptions{IsText: isText})
	if err := enc.WriteGroup(transform.Group{DataSet: "MAL_MONTHLY"}, values); err != nil {
		fmt.Println(err)
		return
	}
	if err := enc.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// batch: data set MAL_MONTHLY, idScheme CODE
	//   MAL_CONFIRMED 202401 KL_N_F1 [{SEX F} {AGE LT1}] [{FUNDING GOV}] "12"
	//   MAL_REMARKS 202401 KL_N_F1 [] [{FUNDING GOV}] "stock-out week 2"
	// <?xml version="1.0" encoding="UTF-8"?>
	// <adx xmlns="urn:ihe:qrph:adx:2015">
	//     <group dataSet="MAL_MONTHLY" period="2024-01-01/P1M" orgUnit="KL_N_F1" FUNDING="GOV">
	//         <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="LT1" value="12"/>
	//         <dataValue dataElement="MAL_REMARKS" value="0">
	//             <annotation>stock-out week 2</annotation>
	//         </dataValue>
	//     </group>
	// </adx>
}

// A message that DHIS2 would refuse as a whole ends Decode with an error naming the place.
func ExampleDecode_error() {
	msg := `<adx xmlns="urn:ihe:qrph:adx:2015">
  <group orgUnit="KL_N_F1" period="2024-01-02/P7D"/>
</adx>`
	b := transform.NewBatcher(transform.BatcherConfig{Emit: func(*transform.Batch) error { return nil }})
	err := adx.Decode(strings.NewReader(msg), b, adx.Options{})
	list, _ := transform.AsInputErrors(err)
	e := list.Errs[0]
	fmt.Println(e.Line, e.Column, e.Path, e.Field)
	// Output:
	// 2 3 /adx/group[1]@period period
}
