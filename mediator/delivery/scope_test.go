package delivery

import (
	"context"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
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
		if got := scopeSupported(context.Background(), &Target{client: c}); got != tc.want {
			t.Errorf("%s: scopeSupported = %v, want %v", tc.version, got, tc.want)
		}
	}
	down := dhis2test.NewServer(dhis2test.WithT(t), dhis2test.WithVersion("2.43"))
	c, err := dhis2.New(dhis2.Config{BaseURL: down.URL, Username: "admin", Password: "district"})
	if err != nil {
		t.Fatal(err)
	}
	down.Close()
	if scopeSupported(context.Background(), &Target{client: c}) {
		t.Error("a target whose version cannot be read gets a deletion scope")
	}
}
