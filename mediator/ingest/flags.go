package ingest

import (
	"net/url"
	"strings"
)

// A client posting to DHIS2 may ask for stricter checks or no audit with query parameters
// (spec dhis2.md §1.2). Tally cannot apply them itself — they need the target's metadata
// and data — so it carries them with the payload to the targets, which apply them as DHIS2
// does: the ingest messages, and from them the delivery messages, carry them in the
// Tally-Import-Options header (url-encoded), and a dead letter keeps them for its replay.
// They are part of the payload's identity: the same body with strictPeriods=true is
// another import.

// forwardedParams are the import parameters a target applies for the client: the strict
// and require checks (E7630–E7636, E7640, E7642, E7643), skipAudit (honoured by DHIS2 only
// for a user with F_SKIP_DATA_IMPORT_AUDIT) and skipExistingCheck. force is not among them:
// it bypasses locks for a superuser, and Tally's target account is not the client.
var forwardedParams = []string{
	"skipAudit", "skipExistingCheck",
	"strictPeriods", "strictDataElements", "strictCategoryOptionCombos", "strictAttributeOptionCombos",
	"strictOrganisationUnits", "strictDataSetApproval", "strictDataSetLocking", "strictDataSetInputPeriods",
	"requireCategoryOptionCombo", "requireAttributeOptionCombo",
}

// importFlags returns the forwarded parameters a request sets to true, url-encoded in a
// fixed order ("" when none). DHIS2 reads them as booleans; a parameter that is not true
// changes nothing there, so it is not carried.
func importFlags(q map[string][]string) string {
	v := url.Values{}
	for _, k := range forwardedParams {
		if strings.EqualFold(first(q, k), "true") {
			v.Set(k, "true")
		}
	}
	return v.Encode()
}
