package exchange

import (
	"testing"

	"github.com/tally-hmis/tally/transform"
)

func TestScopeable(t *testing.T) {
	vals := []transform.DataValue{
		{DataElement: "A", Period: "202401", OrgUnit: "o", CategoryOptionCombo: "c", AttributeOptionCombo: "a", Deleted: true},
		{DataElement: "B", Period: "202401", OrgUnit: "o", Deleted: true},
	}
	scoped, plain := scopeable(transform.IDSchemes{DataElement: transform.SchemeCode}, vals)
	if len(plain) != 0 || len(scoped) != 2 || scoped[1].CategoryOptionCombo != "HllvX50cXC0" ||
		scoped[1].AttributeOptionCombo != "HllvX50cXC0" || vals[1].CategoryOptionCombo != "" {
		t.Fatalf("UID: scoped %+v plain %+v", scoped, plain)
	}
	scoped, _ = scopeable(transform.IDSchemes{IDScheme: transform.SchemeCode}, vals)
	if scoped[1].CategoryOptionCombo != "default" || scoped[1].AttributeOptionCombo != "default" {
		t.Fatalf("CODE: %+v", scoped)
	}
	scoped, plain = scopeable(transform.IDSchemes{CategoryOptionCombo: "ATTRIBUTE:abcdefghijk"}, vals)
	if len(scoped) != 1 || scoped[0].DataElement != "A" || len(plain) != 1 || plain[0].DataElement != "B" {
		t.Fatalf("attribute scheme: scoped %+v plain %+v", scoped, plain)
	}
}
