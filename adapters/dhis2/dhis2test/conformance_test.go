package dhis2test_test

import (
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test/conformance"
)

// TestConformance imports every fixture of the shared conformance table
// (package conformance: README §5–§7 of shared/conformance) straight into
// the emulator and checks DHIS2's expected answer and the stored values.
func TestConformance(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range conformance.Scenarios() {
		if seen[sc.Name] {
			t.Fatalf("duplicate scenario name %s", sc.Name)
		}
		seen[sc.Name] = true
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			conformance.Run(t, sc)
		})
	}
}
