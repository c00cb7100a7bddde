package dhis2

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tally-hmis/tally/transform"
)

// AggregateDataExchange is DHIS2's aggregate data exchange (2.39+, §10.1): analytics
// source requests whose answers are pushed to a target DHIS2. Tally reads exchanges so
// that it can run the same source requests itself (AnalyticsDataValueSet takes each
// request as it is) and deliver with its own retries and dead letters.
type AggregateDataExchange struct {
	ID     string         `json:"id"`
	Code   string         `json:"code,omitempty"`
	Name   string         `json:"name"`
	Source ExchangeSource `json:"source"`
	Target ExchangeTarget `json:"target"`
}

// ExchangeSource is an exchange's source: its analytics requests, and the period types
// a run may override their periods with.
type ExchangeSource struct {
	Params   *ExchangeSourceParams `json:"params,omitempty"`
	Requests []AnalyticsRequest    `json:"requests"`
}

// ExchangeSourceParams holds the period types ("MONTHLY") allowed to override the
// requests' periods.
type ExchangeSourceParams struct {
	PeriodTypes []string `json:"periodTypes,omitempty"`
}

// Exchange target types.
const (
	TargetInternal = "INTERNAL"
	TargetExternal = "EXTERNAL"
)

// ExchangeTarget is where an exchange pushes: this instance (INTERNAL) or another
// (EXTERNAL, with API).
type ExchangeTarget struct {
	Type    string                `json:"type"`
	API     *ExchangeAPI          `json:"api,omitempty"`
	Request ExchangeTargetRequest `json:"request"`
}

// ExchangeAPI is an EXTERNAL target's address. DHIS2 never returns the access token or
// password (§10.1), so this type has no room for them.
type ExchangeAPI struct {
	// URL is the target's base URL, without /api.
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
}

// ExchangeTargetRequest are the import options of an exchange's push (§10.1, §10.4).
type ExchangeTargetRequest struct {
	DataElementIDScheme         transform.IDScheme `json:"dataElementIdScheme,omitempty"`
	OrgUnitIDScheme             transform.IDScheme `json:"orgUnitIdScheme,omitempty"`
	CategoryOptionComboIDScheme transform.IDScheme `json:"categoryOptionComboIdScheme,omitempty"`
	IDScheme                    transform.IDScheme `json:"idScheme,omitempty"`
	// ImportStrategy, SkipAudit and DryRun: 2.41+. SkipAudit nil means true (2.41.1+).
	ImportStrategy string `json:"importStrategy,omitempty"`
	SkipAudit      *bool  `json:"skipAudit,omitempty"`
	DryRun         *bool  `json:"dryRun,omitempty"`
}

// ImportOptions are the options DHIS2's exchange client would import with (§10.4): the
// target request's schemes (the attribute option combo goes with the category option
// combo), strategy, dry run, and skipAudit, true unless set false. DHIS2 honours
// skipAudit only for users with F_SKIP_DATA_IMPORT_AUDIT.
func (r ExchangeTargetRequest) ImportOptions() ImportOptions {
	o := ImportOptions{
		Schemes: transform.IDSchemes{
			IDScheme:            r.IDScheme,
			DataElement:         r.DataElementIDScheme,
			OrgUnit:             r.OrgUnitIDScheme,
			CategoryOptionCombo: r.CategoryOptionComboIDScheme,
		},
		ImportStrategy: r.ImportStrategy,
		SkipAudit:      r.SkipAudit == nil || *r.SkipAudit,
		DryRun:         r.DryRun != nil && *r.DryRun,
	}
	return o
}

// exchangeFields asks for every field: the source and target are embedded objects that
// DHIS2 writes whole.
const exchangeFields = "*"

// AggregateDataExchanges reads every aggregate data exchange the user may see
// (GET /api/aggregateDataExchanges, 2.39+). A server without the endpoint answers 404: a
// permanent *Error.
func (c *Client) AggregateDataExchanges(ctx context.Context) ([]AggregateDataExchange, error) {
	return listAll[AggregateDataExchange](ctx, c, "aggregateDataExchanges", exchangeFields, ListOptions{})
}

// AggregateDataExchange reads one aggregate data exchange by uid.
func (c *Client) AggregateDataExchange(ctx context.Context, uid string) (*AggregateDataExchange, error) {
	const op = "reading aggregate data exchange"
	uid = strings.TrimSpace(uid)
	if uid == "" || strings.ContainsAny(uid, "/?#") {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: fmt.Sprintf("invalid uid %q", uid)}
	}
	var ade AggregateDataExchange
	err := c.getJSON(ctx, op, "/aggregateDataExchanges/"+url.PathEscape(uid),
		url.Values{"fields": {exchangeFields}}, "an aggregate data exchange", &ade)
	if err != nil {
		if e, ok := err.(*Error); ok && e.HTTPStatus == http.StatusNotFound && e.Message == "" {
			e.Message = "no aggregate data exchange " + uid
		}
		return nil, err
	}
	if ade.ID == "" {
		return nil, &Error{Kind: KindPermanent, Op: op, HTTPStatus: http.StatusOK,
			Message: "the answer is not an aggregate data exchange; check BaseURL"}
	}
	return &ade, nil
}
