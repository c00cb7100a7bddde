package dhis2

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/tally-hmis/tally/transform"
)

// Registration marks a data set complete (or not) for a period, org unit and attribute
// option combo (§8). JSON names are DHIS2's: the org unit is "organisationUnit".
type Registration struct {
	DataSet string `json:"dataSet"`
	Period  string `json:"period"`
	OrgUnit string `json:"organisationUnit"`
	// AttributeOptionCombo empty means the default combo.
	AttributeOptionCombo string `json:"attributeOptionCombo,omitempty"`
	// Date (yyyy-MM-dd) is when the data set was completed; empty means now.
	Date     string `json:"date,omitempty"`
	StoredBy string `json:"storedBy,omitempty"`
	// Completed nil means true; false records the data set as not complete.
	Completed *bool `json:"completed,omitempty"`
}

// CompletenessOptions are the query parameters of a registration import.
type CompletenessOptions struct {
	// Schemes are the id schemes of the registrations' identifiers. idScheme,
	// dataSetIdScheme, orgUnitIdScheme and attributeOptionComboIdScheme are sent; an unset
	// attribute option combo scheme takes the category option combo scheme, as for data
	// values (transform.IDSchemes.Resolved), so that a batch's schemes can be passed as
	// they are.
	Schemes transform.IDSchemes
	// ImportStrategy is CREATE, UPDATE, CREATE_AND_UPDATE (default) or DELETE.
	ImportStrategy    string
	DryRun            bool
	SkipExistingCheck bool
}

func (o CompletenessOptions) query() (url.Values, error) {
	q := url.Values{}
	s := o.Schemes
	for _, sc := range []struct {
		name   string
		scheme transform.IDScheme
	}{
		{"idScheme", s.IDScheme},
		{"dataSetIdScheme", s.DataSet},
		{"orgUnitIdScheme", s.OrgUnit},
		{"attributeOptionComboIdScheme", s.AttributeOptionCombo.Or(s.CategoryOptionCombo)},
	} {
		if err := setScheme(q, sc.name, sc.scheme); err != nil {
			return nil, err
		}
	}
	if o.ImportStrategy != "" {
		st := strings.ToUpper(strings.TrimSpace(o.ImportStrategy))
		switch st {
		case "CREATE", "UPDATE", "CREATE_AND_UPDATE", "DELETE":
		default:
			return nil, fmt.Errorf("importStrategy %q: want CREATE, UPDATE, CREATE_AND_UPDATE or DELETE", o.ImportStrategy)
		}
		q.Set("importStrategy", st)
	}
	if o.DryRun {
		q.Set("dryRun", "true")
	}
	if o.SkipExistingCheck {
		q.Set("skipExistingCheck", "true")
	}
	return q, nil
}

// RegisterCompleteness posts regs to /api/completeDataSetRegistrations (§8). The answer
// is an import summary in the same eras, wrappers and status codes as a data value
// import, read into an ImportResult with the same decisions: DHIS2 reports ERROR only when
// every registration was ignored, and SUCCESS otherwise, even with conflicts (these carry
// no indexes: IndexesKnown is then false). An empty list is refused before sending (DHIS2
// would answer ERROR).
func (c *Client) RegisterCompleteness(ctx context.Context, regs []Registration, opts CompletenessOptions) (*ImportResult, error) {
	const op = "registering complete data sets"
	if len(regs) == 0 {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "no registrations"}
	}
	for i, r := range regs {
		if r.DataSet == "" || r.Period == "" || r.OrgUnit == "" {
			return nil, &Error{Kind: KindPermanent, Op: op, Message: "refused before sending",
				Err: fmt.Errorf("registration %d: dataSet, period and organisationUnit are required", i)}
		}
	}
	q, err := opts.query()
	if err != nil {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "invalid options", Err: err}
	}
	res, err := c.postJSON(ctx, op, "/completeDataSetRegistrations", q,
		struct {
			Registrations []Registration `json:"completeDataSetRegistrations"`
		}{regs})
	if err != nil {
		return nil, err
	}
	return c.importOutcome(op, res, eraHints{}, nil)
}
