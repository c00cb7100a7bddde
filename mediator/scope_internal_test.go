package mediator

import (
	"context"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/transform"
)

// TestScopeSupported: delivery sends a deletion block only to a target that reports 2.43 or
// later; an older one, or one whose version cannot be read, gets deleted: true values.
func TestScopeSupported(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{{"2.40", false}, {"2.42", false}, {"2.43", true}} {
		srv := dhis2test.NewServer(dhis2test.WithT(t), dhis2test.WithVersion(tc.version))
		c, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: "admin", Password: "district"})
		if err != nil {
			t.Fatal(err)
		}
		if got := scopeSupported(context.Background(), &target{client: c}); got != tc.want {
			t.Errorf("%s: scopeSupported = %v, want %v", tc.version, got, tc.want)
		}
	}
	down := dhis2test.NewServer(dhis2test.WithT(t), dhis2test.WithVersion("2.43"))
	c, err := dhis2.New(dhis2.Config{BaseURL: down.URL, Username: "admin", Password: "district"})
	if err != nil {
		t.Fatal(err)
	}
	down.Close()
	if scopeSupported(context.Background(), &target{client: c}) {
		t.Error("a target whose version cannot be read gets a deletion scope")
	}
}

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
