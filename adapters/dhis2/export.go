package dhis2

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

// ExportRequest selects stored data values for GET /api/dataValueSets (§4.2). DHIS2 needs
// what (DataSets, DataElements or DataElementGroups), when (Periods, StartDate and
// EndDate, LastUpdated or LastUpdatedDuration) and where (OrgUnits or OrgUnitGroups);
// DataValueSets refuses a request without them rather than have DHIS2 answer 409 (E2001,
// E2002, E2006). JSON names are DHIS2's parameter names.
type ExportRequest struct {
	DataSets          []string `json:"dataSet,omitempty"`
	DataElements      []string `json:"dataElement,omitempty"`
	DataElementGroups []string `json:"dataElementGroup,omitempty"`
	// Periods are period ids ("202401"); StartDate and EndDate (yyyy-MM-dd) select the
	// periods between them instead.
	Periods   []string `json:"period,omitempty"`
	StartDate string   `json:"startDate,omitempty"`
	EndDate   string   `json:"endDate,omitempty"`
	OrgUnits  []string `json:"orgUnit,omitempty"`
	// Children includes the whole hierarchy below OrgUnits.
	Children      bool     `json:"children,omitempty"`
	OrgUnitGroups []string `json:"orgUnitGroup,omitempty"`
	// AttributeOptionCombos restricts the export to these attribute option combos.
	AttributeOptionCombos []string `json:"attributeOptionCombo,omitempty"`
	// IncludeDeleted adds soft-deleted values, marked deleted.
	IncludeDeleted bool `json:"includeDeleted,omitempty"`
	// LastUpdated (a date) or LastUpdatedDuration ("10d", "12h") select values changed
	// since.
	LastUpdated         string `json:"lastUpdated,omitempty"`
	LastUpdatedDuration string `json:"lastUpdatedDuration,omitempty"`
	// Limit bounds the number of values; 0 means no limit.
	Limit int `json:"limit,omitempty"`
	// Schemes are the output id schemes (idScheme, dataElementIdScheme, orgUnitIdScheme,
	// categoryOptionComboIdScheme, attributeOptionComboIdScheme, dataSetIdScheme, ...):
	// how the answer writes identifiers.
	Schemes transform.IDSchemes `json:"schemes,omitzero"`
	// Input id schemes: how the request's own identifiers are written (default UID).
	InputIDScheme                 transform.IDScheme `json:"inputIdScheme,omitempty"`
	InputDataSetIDScheme          transform.IDScheme `json:"inputDataSetIdScheme,omitempty"`
	InputDataElementIDScheme      transform.IDScheme `json:"inputDataElementIdScheme,omitempty"`
	InputDataElementGroupIDScheme transform.IDScheme `json:"inputDataElementGroupIdScheme,omitempty"`
	InputOrgUnitIDScheme          transform.IDScheme `json:"inputOrgUnitIdScheme,omitempty"`
	// Extra holds further parameters. It may not repeat a parameter the fields above
	// control.
	Extra url.Values `json:"-"`
}

func exportParam(k string) bool {
	switch k {
	case "dataSet", "dataElement", "dataElementGroup", "period", "startDate", "endDate", "orgUnit",
		"children", "orgUnitGroup", "attributeOptionCombo", "includeDeleted", "lastUpdated",
		"lastUpdatedDuration", "limit", "idScheme", "dataElementIdScheme", "orgUnitIdScheme",
		"categoryOptionComboIdScheme", "attributeOptionComboIdScheme", "dataSetIdScheme",
		"categoryIdScheme", "categoryOptionIdScheme", "inputIdScheme", "inputDataSetIdScheme",
		"inputDataElementIdScheme", "inputDataElementGroupIdScheme", "inputOrgUnitIdScheme":
		return true
	}
	return false
}

// query renders r as query parameters, or explains what is wrong with it.
func (r ExportRequest) query() (url.Values, error) {
	switch {
	case len(r.DataSets)+len(r.DataElements)+len(r.DataElementGroups) == 0:
		return nil, fmt.Errorf("no data set, data element or data element group (DHIS2 would answer E2001)")
	case len(r.Periods) == 0 && (r.StartDate == "") != (r.EndDate == ""):
		return nil, fmt.Errorf("startDate and endDate go together")
	case len(r.Periods) == 0 && r.StartDate == "" && r.LastUpdated == "" && r.LastUpdatedDuration == "":
		return nil, fmt.Errorf("no period, start and end date, lastUpdated or lastUpdatedDuration (DHIS2 would answer E2002)")
	case len(r.OrgUnits)+len(r.OrgUnitGroups) == 0:
		return nil, fmt.Errorf("no org unit or org unit group (DHIS2 would answer E2006)")
	case r.Limit < 0:
		return nil, fmt.Errorf("limit is negative")
	}
	q := url.Values{}
	lists := []struct {
		name string
		ids  []string
	}{
		{"dataSet", r.DataSets}, {"dataElement", r.DataElements}, {"dataElementGroup", r.DataElementGroups},
		{"period", r.Periods}, {"orgUnit", r.OrgUnits}, {"orgUnitGroup", r.OrgUnitGroups},
		{"attributeOptionCombo", r.AttributeOptionCombos},
	}
	for _, l := range lists {
		if err := checkIDs(l.name, l.ids, ""); err != nil {
			return nil, err
		}
		for _, id := range l.ids {
			q.Add(l.name, id)
		}
	}
	for _, p := range []struct{ name, v string }{
		{"startDate", r.StartDate}, {"endDate", r.EndDate},
		{"lastUpdated", r.LastUpdated}, {"lastUpdatedDuration", r.LastUpdatedDuration},
	} {
		if p.v != "" {
			q.Set(p.name, p.v)
		}
	}
	if r.Children {
		q.Set("children", "true")
	}
	if r.IncludeDeleted {
		q.Set("includeDeleted", "true")
	}
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	s := r.Schemes
	for _, sc := range []struct {
		name   string
		scheme transform.IDScheme
	}{
		{"idScheme", s.IDScheme},
		{"dataElementIdScheme", s.DataElement},
		{"orgUnitIdScheme", s.OrgUnit},
		{"categoryOptionComboIdScheme", s.CategoryOptionCombo},
		{"attributeOptionComboIdScheme", s.AttributeOptionCombo},
		{"dataSetIdScheme", s.DataSet},
		{"categoryIdScheme", s.Category},
		{"categoryOptionIdScheme", s.CategoryOption},
		{"inputIdScheme", r.InputIDScheme},
		{"inputDataSetIdScheme", r.InputDataSetIDScheme},
		{"inputDataElementIdScheme", r.InputDataElementIDScheme},
		{"inputDataElementGroupIdScheme", r.InputDataElementGroupIDScheme},
		{"inputOrgUnitIdScheme", r.InputOrgUnitIDScheme},
	} {
		if err := setScheme(q, sc.name, sc.scheme); err != nil {
			return nil, err
		}
	}
	if err := addExtra(q, r.Extra, exportParam); err != nil {
		return nil, err
	}
	return q, nil
}

// DataValueSets reads stored values with GET /api/dataValueSets and streams them into
// sink through dvs.DecodeJSON: one Group (the data set header, if DHIS2 wrote one), then a
// Value per stored value, in the output schemes r asks for. Deleted values (with
// IncludeDeleted) arrive with Deleted set. It serves previews ("what would change") and
// the reconciliation of values a source no longer sends.
//
// It returns how many values the sink accepted. An error returned by the sink comes back
// wrapped and unclassified; the sink may have received values before any error. A request
// DHIS2 refuses (409 E2001...) is a permanent *Error carrying DHIS2's code.
func (c *Client) DataValueSets(ctx context.Context, r ExportRequest, sink transform.Sink) (int, error) {
	const op = "exporting data values"
	q, err := r.query()
	if err != nil {
		return 0, &Error{Kind: KindPermanent, Op: op, Message: "invalid export request", Err: err}
	}
	return c.getDataValueSet(ctx, op, "/dataValueSets", q, sink, dvs.Options{})
}
