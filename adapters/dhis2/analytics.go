package dhis2

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

// AnalyticsRequest is one analytics query whose answer is a data value set
// (GET /api/analytics/dataValueSet.json, §6). Its fields, and their JSON names, are those
// of a source request of an aggregate data exchange (§10.1), so that an exchange read with
// AggregateDataExchange runs as it is; the fields after DataSet are further analytics
// parameters that an exchange cannot hold.
type AnalyticsRequest struct {
	// Name names the request within an exchange (DHIS2 allows 50 characters). Not sent.
	Name string `json:"name,omitempty"`
	// Visualization is the uid of the visualization an exchange request was made from.
	// Not sent: the request's own dx, pe and ou are what is queried.
	Visualization string `json:"visualization,omitempty"`
	// DX are data items: data elements, data element operands ("de.coc"), indicators,
	// program indicators, reporting rates ("ds.REPORTING_RATE"), DE_GROUP-<id>, written
	// in InputIDScheme. At least one is required (E7117).
	DX []string `json:"dx"`
	// PE are fixed periods ("202401") or relative ones ("LAST_12_MONTHS", §11.2). At
	// least one is required (E7118).
	PE []string `json:"pe"`
	// OU are org units: ids, USER_ORGUNIT, USER_ORGUNIT_CHILDREN,
	// USER_ORGUNIT_GRANDCHILDREN, LEVEL-<n> and OU_GROUP-<id>. A level or group together
	// with ids selects the units at that level or in that group below those ids (the
	// children of KL are ["KL", "LEVEL-2"]). At least one is required (E7119).
	OU []string `json:"ou"`
	// Filters restrict the query without becoming dimensions of the answer.
	Filters []Filter `json:"filters,omitempty"`
	// AggregationType overrides the data items' own (SUM, AVERAGE, LAST, ...). 2.41+ in
	// exchanges; every version in analytics.
	AggregationType string `json:"aggregationType,omitempty"`
	// InputIDScheme is how DX, OU and filter items are written: UID (DHIS2's default),
	// CODE or ATTRIBUTE:<uid>.
	InputIDScheme transform.IDScheme `json:"inputIdScheme,omitempty"`
	// OutputDataElementIDScheme, OutputOrgUnitIDScheme, OutputDataItemIDScheme (2.41+:
	// data elements, indicators and program indicators) and OutputIDScheme (the rest)
	// choose how the answer writes identifiers: UID, CODE, NAME or ATTRIBUTE:<uid>.
	// Attribute schemes can produce duplicate values (DuplicatesOnly finds them).
	OutputDataElementIDScheme transform.IDScheme `json:"outputDataElementIdScheme,omitempty"`
	OutputOrgUnitIDScheme     transform.IDScheme `json:"outputOrgUnitIdScheme,omitempty"`
	OutputDataItemIDScheme    transform.IDScheme `json:"outputDataItemIdScheme,omitempty"`
	OutputIDScheme            transform.IDScheme `json:"outputIdScheme,omitempty"`
	// DataSet is an exchange request's data set (2.43+). Not sent to analytics.
	DataSet string `json:"dataSet,omitempty"`

	// ApprovalLevel limits the answer to data approved at least up to this approval
	// level (its uid).
	ApprovalLevel string `json:"approvalLevel,omitempty"`
	// RelativePeriodDate (yyyy-MM-dd) is the date relative periods are computed from;
	// empty means the server's today.
	RelativePeriodDate string `json:"relativePeriodDate,omitempty"`
	// UserOrgUnit replaces the calling user's org units for USER_ORGUNIT keywords.
	UserOrgUnit []string `json:"userOrgUnit,omitempty"`
	// DuplicatesOnly asks for the rows whose key was already seen, to debug attribute id
	// schemes (§6.2).
	DuplicatesOnly bool `json:"duplicatesOnly,omitempty"`
	// SkipRounding asks for full precision.
	SkipRounding bool `json:"skipRounding,omitempty"`
	// Extra holds further analytics parameters (measureCriteria, ...). It may not repeat
	// a parameter the fields above control.
	Extra url.Values `json:"-"`
}

// Filter is a dimension an analytics request filters by: a dimension id (a category,
// group set, "co", or dx/pe/ou) and its items, written in the input id scheme. No items
// means all of them.
type Filter struct {
	Dimension string   `json:"dimension"`
	Items     []string `json:"items,omitempty"`
}

// analyticsParam reports whether an AnalyticsRequest field controls parameter k.
func analyticsParam(k string) bool {
	switch k {
	case "dimension", "filter", "aggregationType", "inputIdScheme", "outputIdScheme",
		"outputDataElementIdScheme", "outputOrgUnitIdScheme", "outputDataItemIdScheme",
		"approvalLevel", "relativePeriodDate", "userOrgUnit", "duplicatesOnly", "skipRounding":
		return true
	}
	return false
}

// query renders r as analytics query parameters, or explains what is wrong with it.
func (r AnalyticsRequest) query() (url.Values, error) {
	q := url.Values{}
	for _, d := range []struct {
		name  string
		items []string
		code  string
	}{{"dx", r.DX, "E7117"}, {"pe", r.PE, "E7118"}, {"ou", r.OU, "E7119"}} {
		if len(d.items) == 0 {
			return nil, fmt.Errorf("%s is empty: a data value set needs dx, pe and ou (DHIS2 would answer %s)", d.name, d.code)
		}
		if err := checkIDs(d.name, d.items, ";"); err != nil {
			return nil, err
		}
		q.Add("dimension", d.name+":"+strings.Join(d.items, ";"))
	}
	for i, f := range r.Filters {
		dim := strings.TrimSpace(f.Dimension)
		if dim == "" || strings.ContainsAny(dim, ":;") {
			return nil, fmt.Errorf("filters[%d]: dimension %q: want a dimension id", i, f.Dimension)
		}
		if err := checkIDs(fmt.Sprintf("filters[%d].items", i), f.Items, ";"); err != nil {
			return nil, err
		}
		if len(f.Items) == 0 {
			q.Add("filter", dim)
		} else {
			q.Add("filter", dim+":"+strings.Join(f.Items, ";"))
		}
	}
	schemes := []struct {
		name   string
		scheme transform.IDScheme
	}{
		{"inputIdScheme", r.InputIDScheme},
		{"outputIdScheme", r.OutputIDScheme},
		{"outputDataElementIdScheme", r.OutputDataElementIDScheme},
		{"outputOrgUnitIdScheme", r.OutputOrgUnitIDScheme},
		{"outputDataItemIdScheme", r.OutputDataItemIDScheme},
	}
	for _, s := range schemes {
		if err := setScheme(q, s.name, s.scheme); err != nil {
			return nil, err
		}
	}
	if r.AggregationType != "" {
		q.Set("aggregationType", strings.ToUpper(strings.TrimSpace(r.AggregationType)))
	}
	if r.ApprovalLevel != "" {
		q.Set("approvalLevel", r.ApprovalLevel)
	}
	if r.RelativePeriodDate != "" {
		q.Set("relativePeriodDate", r.RelativePeriodDate)
	}
	if len(r.UserOrgUnit) > 0 {
		if err := checkIDs("userOrgUnit", r.UserOrgUnit, ";"); err != nil {
			return nil, err
		}
		q.Set("userOrgUnit", strings.Join(r.UserOrgUnit, ";"))
	}
	if r.DuplicatesOnly {
		q.Set("duplicatesOnly", "true")
	}
	if r.SkipRounding {
		q.Set("skipRounding", "true")
	}
	if err := addExtra(q, r.Extra, analyticsParam); err != nil {
		return nil, err
	}
	return q, nil
}

// AnalyticsDataValueSet runs r as GET /api/analytics/dataValueSet.json and streams the
// answer into sink through dvs.DecodeJSON with Options.Analytics set: one Group, then a
// Value per row, without the "[aggregated]" comment analytics puts on every value. Values
// of plain data elements are totals and carry no combos; those of indicators and program
// indicators carry their aggregate export combos (§6.2). Identifiers are written in r's
// output schemes; values are strings, and zero rows are absent (§12).
//
// It returns how many values the sink accepted. An error returned by the sink comes back
// wrapped and unclassified; the sink may have received values before any error. Analytics
// reads what the last analytics table run saw: see StartAnalyticsTables.
func (c *Client) AnalyticsDataValueSet(ctx context.Context, r AnalyticsRequest, sink transform.Sink) (int, error) {
	const op = "reading analytics data value set"
	q, err := r.query()
	if err != nil {
		return 0, &Error{Kind: KindPermanent, Op: op, Message: "invalid analytics request", Err: err}
	}
	return c.getDataValueSet(ctx, op, "/analytics/dataValueSet.json", q, sink, dvs.Options{Analytics: true})
}
