package conformance

import (
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// --- README §7: CHT DHIS2 exports imported into DHIS2 ------------------------
//
// No project asserts these imports; the outcomes follow from the spec
// (dhis2.md §1.4, §2.2) and M-CHT, on 2.40:
//   - CHT writes org units (and, for ds-1/ds-2, data sets and data
//     elements) as the ids a CHT contact carries, which M-CHT holds as codes;
//   - every export carries a header completeDate but no header orgUnit, so
//     DHIS2 adds the conflict {"object":"OrganisationUnit","value":"Must be
//     provided to complete data set"}: status WARNING (HTTP 409 on 2.38–2.42)
//     although every value is imported, and no registration is made;
//   - "value" is a JSON number, which the 2.38–2.42 reader accepts;
//   - a zero for a data element that does not store zeros is skipped and
//     counted nowhere (§1.4);
//   - extra keys from a target's dhis config ("arbitrary": "yes") are ignored.
// The human-readable exports and the bare dataValues arrays are CHT display
// output, not data value sets, and are not imported.

func mustProvideOrgUnit(t testing.TB, res Result) {
	t.Helper()
	if len(res.Conflicts) != 1 || res.Conflicts[0].Object != "OrganisationUnit" || res.Conflicts[0].Value != "Must be provided to complete data set" {
		t.Errorf("conflicts %+v, want the completeDate one", res.Conflicts)
	}
}

func chtValues(want map[[2]string]string) func(testing.TB, *dhis2test.Server) {
	return func(t testing.TB, srv *dhis2test.Server) {
		t.Helper()
		for k, value := range want {
			v, ok := srv.Lookup(k[0], "200002", k[1], "", "")
			if !ok || v.Value != value {
				t.Errorf("%s @ %s: stored %q (%v), want %q", k[0], k[1], v.Value, ok, value)
			}
		}
		if len(srv.Store().Registrations()) != 0 {
			t.Errorf("registrations %+v: the header has no orgUnit", srv.Store().Registrations())
		}
	}
}

func chtScenarios() []Scenario {
	const ouCode = "?orgUnitIdScheme=CODE"
	const allCode = "?idScheme=CODE"
	births, deliveries := "kB0ZBFisE0e", "e22tIwy1nKR"
	sc := []Scenario{
		{Name: "sums-all-dataElements", Steps: []Step{{File: cht("export-sums-all-dataElements.json"), Query: ouCode,
			Counts: Counts{4, 0, 0, 0}, Status: "WARNING", Stored: 4, CheckResponse: mustProvideOrgUnit,
			CheckStore: chtValues(map[[2]string]string{{births, "ou-chu1"}: "24", {deliveries, "ou-chu1"}: "8",
				{births, "ou-chu2"}: "12", {deliveries, "ou-chu2"}: "4"})}}},
		{Name: "filter-orgUnit-ou-chu1", Steps: []Step{{File: cht("export-filter-orgUnit-ou-chu1.json"), Query: ouCode,
			Counts: Counts{2, 0, 0, 0}, Status: "WARNING", Stored: 2, CheckResponse: mustProvideOrgUnit,
			CheckStore: chtValues(map[[2]string]string{{births, "ou-chu1"}: "24", {deliveries, "ou-chu1"}: "8"})}}},
		{Name: "zeros-without-target-docs", Steps: []Step{{File: cht("export-zeros-without-target-docs.json"), Query: ouCode,
			Counts: Counts{0, 0, 0, 0}, Status: "WARNING", Stored: 0, CheckResponse: mustProvideOrgUnit}}},
		{Name: "two-orgUnits-in-hierarchy", Steps: []Step{{File: cht("export-two-orgUnits-in-hierarchy.json"), Query: ouCode,
			Counts: Counts{4, 0, 0, 0}, Status: "WARNING", Stored: 4, CheckResponse: mustProvideOrgUnit,
			CheckStore: chtValues(map[[2]string]string{{births, "alt"}: "24", {deliveries, "alt"}: "8", {births, "ou-chu"}: "12", {deliveries, "ou-chu"}: "4"})}}},
		{Name: "multiple-orgUnits", Steps: []Step{
			{File: cht("export-multiple-orgUnits-ds-1.json"), Query: allCode, Counts: Counts{2, 0, 0, 0}, Status: "WARNING", Stored: 2,
				CheckResponse: mustProvideOrgUnit, CheckStore: chtValues(map[[2]string]string{{"de-1", "ou-1"}: "1", {"de-both", "ou-1"}: "100"})},
			{File: cht("export-multiple-orgUnits-ds-2.json"), Query: allCode, Counts: Counts{2, 0, 0, 0}, Status: "WARNING", Stored: 4,
				CheckResponse: mustProvideOrgUnit, CheckStore: chtValues(map[[2]string]string{{"de-2", "ou-2"}: "2", {"de-both", "ou-2"}: "100"})}}},
	}
	for i := range sc {
		sc[i].Name, sc[i].Metadata, sc[i].Version, sc[i].User = "cht/"+sc[i].Name, MetaCHT, "2.40", "admin"
	}
	return sc
}
