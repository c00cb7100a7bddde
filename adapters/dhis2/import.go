package dhis2

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tally-hmis/tally/transform"
)

// ImportOptions are the query parameters of an import (§1.2). Only what is set is sent.
type ImportOptions struct {
	// Schemes are the id schemes the payload's identifiers are written in. The attribute
	// option combo scheme cannot be sent (see the package documentation).
	Schemes transform.IDSchemes
	// ImportStrategy is CREATE, UPDATE, CREATE_AND_UPDATE (DHIS2's default) or DELETE, or
	// a legacy alias (NEW, UPDATES, NEW_AND_UPDATES, DELETES).
	ImportStrategy string
	DryRun         bool
	// SkipAudit is honoured only for users with F_SKIP_DATA_IMPORT_AUDIT (§1.2).
	SkipAudit bool
	// Async starts an import job and waits for it (§3).
	Async bool
	// Extra holds further parameters (preheatCache, strictPeriods, force...). It may not
	// repeat a parameter the fields above control.
	Extra url.Values
}

// typed are the parameters ImportOptions' fields control.
func typedParam(k string) bool {
	switch k {
	case "idScheme", "dataElementIdScheme", "orgUnitIdScheme", "categoryOptionComboIdScheme",
		"attributeOptionComboIdScheme", "dataSetIdScheme", "categoryIdScheme", "categoryOptionIdScheme",
		"importStrategy", "strategy", "dryRun", "skipAudit", "async":
		return true
	}
	return false
}

// query renders o as query parameters, or explains what is wrong with it.
func (o ImportOptions) query() (url.Values, error) {
	q := url.Values{}
	schemes := []struct {
		param  string
		scheme transform.IDScheme
	}{
		{"idScheme", o.Schemes.IDScheme},
		{"dataElementIdScheme", o.Schemes.DataElement},
		{"orgUnitIdScheme", o.Schemes.OrgUnit},
		{"categoryOptionComboIdScheme", o.Schemes.CategoryOptionCombo},
		{"dataSetIdScheme", o.Schemes.DataSet},
		{"categoryIdScheme", o.Schemes.Category},
		{"categoryOptionIdScheme", o.Schemes.CategoryOption},
	}
	for _, s := range schemes {
		if s.scheme == "" {
			continue
		}
		v, err := transform.ParseIDScheme(string(s.scheme))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.param, err)
		}
		q.Set(s.param, string(v))
	}
	if o.ImportStrategy != "" {
		st := strings.ToUpper(strings.TrimSpace(o.ImportStrategy))
		switch st {
		case "CREATE", "UPDATE", "CREATE_AND_UPDATE", "DELETE", "NEW", "UPDATES", "NEW_AND_UPDATES", "DELETES":
		default:
			return nil, fmt.Errorf("importStrategy %q: want CREATE, UPDATE, CREATE_AND_UPDATE or DELETE", o.ImportStrategy)
		}
		q.Set("importStrategy", st)
	}
	if o.DryRun {
		q.Set("dryRun", "true")
	}
	if o.SkipAudit {
		q.Set("skipAudit", "true")
	}
	if o.Async {
		q.Set("async", "true")
	}
	keys := make([]string, 0, len(o.Extra))
	for k := range o.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if typedParam(k) {
			return nil, fmt.Errorf("Extra parameter %q: set it through ImportOptions' fields", k)
		}
		for _, v := range o.Extra[k] {
			q.Add(k, v)
		}
	}
	return q, nil
}

// checkContentType refuses what DHIS2 would answer 415 to (§1.1, §12).
func checkContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	switch mt {
	case ContentTypeJSON, ContentTypeXML, ContentTypeADX, ContentTypeCSV, "application/pdf":
		return nil
	case "text/csv":
		return fmt.Errorf("content type %q: DHIS2 refuses text/csv on POST; use application/csv", ct)
	case "application/xml+adx":
		return fmt.Errorf("content type %q: the ADX type is application/adx+xml", ct)
	}
	return fmt.Errorf("content type %q: DHIS2 accepts application/json, application/xml, application/adx+xml, application/csv", ct)
}

// ImportDataValues posts body to /api/dataValueSets.
//
// SUCCESS and WARNING come back as a result and a nil error: WARNING is a partial success
// whose Rejected lists the values DHIS2 refused. Everything else is an *Error (status
// ERROR with Error.Result), or the caller's context error. See the package documentation.
func (c *Client) ImportDataValues(ctx context.Context, body Payload, opts ImportOptions) (*ImportResult, error) {
	const op = "importing data values"
	if body == nil {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "no payload"}
	}
	if err := checkContentType(body.ContentType()); err != nil {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "refused before sending", Err: err}
	}
	q, err := opts.query()
	if err != nil {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "invalid import options", Err: err}
	}
	res, err := c.roundTrip(ctx, request{op: op, method: http.MethodPost, endpoint: "/dataValueSets", query: q, body: body})
	if err != nil {
		return nil, err
	}
	if opts.Async {
		if _, isSummary := parseImportBody(res.body); !isSummary && res.status == http.StatusOK {
			return c.awaitJob(ctx, res)
		}
		// A server that ignored async=true answered with the summary itself.
	}
	return c.importOutcome(op, res, eraHints{}, nil)
}

// importOutcome turns an import response into a result or a classified error.
func (c *Client) importOutcome(op string, res *response, h eraHints, job *Job) (*ImportResult, error) {
	p, ok := parseImportBody(res.body)
	if !ok {
		switch {
		case res.status >= 200 && res.status < 300:
			return nil, c.unexpectedBody(op, res)
		case res.status == http.StatusConflict:
			e := c.statusError(op, res, nil)
			e.Kind = KindPermanent
			if e.Message == "" {
				e.Message = "conflict without an import summary"
			}
			return nil, e
		}
		return nil, c.statusError(op, res, nil)
	}

	h.httpStatus = res.status
	h.server = c.server.Load()
	if h.apiVersion == 0 {
		h.apiVersion = c.apiVersion
	}
	r := p.summary.result()
	r.Era = detectEra(p, h)
	r.Job = job
	r.HTTPStatus = res.status
	r.Raw, r.RawTruncated = c.keep(res.body)
	for i := range r.Conflicts {
		r.Conflicts[i].Value = c.redact(r.Conflicts[i].Value)
	}
	r.Description = c.redact(r.Description)

	if res.status/100 != 2 && res.status != http.StatusConflict {
		// A summary under an unexpected status (a 5xx from a proxy that kept the body?):
		// the status decides, the summary travels along.
		e := c.statusError(op, res, r)
		if job != nil {
			e.JobID = job.ID
		}
		return nil, e
	}
	switch r.Status {
	case StatusSuccess, StatusWarning:
		return r, nil
	case StatusError:
		return nil, c.summaryError(op, r)
	}
	e := &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status, Result: r,
		Message: fmt.Sprintf("unknown import status %q", r.Status)}
	if job != nil {
		e.JobID = job.ID
	}
	return nil, e
}

// summaryError is the *Error for an ImportSummary with status ERROR: permanent, unless
// DHIS2 says its database was busy.
func (c *Client) summaryError(op string, r *ImportResult) *Error {
	e := &Error{Kind: KindPermanent, Op: op, HTTPStatus: r.HTTPStatus, Result: r, Message: r.Description}
	if r.Job != nil {
		e.JobID = r.Job.ID
	}
	texts := []string{r.Description}
	for _, cf := range r.Conflicts {
		texts = append(texts, cf.Value)
	}
	if len(r.Conflicts) > 0 {
		first := r.Conflicts[0]
		e.Code = first.ErrorCode
		if first.Value != "" {
			if e.Message != "" {
				e.Message += ": "
			}
			e.Message += first.Value
		}
		if n := len(r.Conflicts) - 1; n > 0 {
			e.Message += fmt.Sprintf(" (and %d more conflicts)", n)
		}
	}
	if e.Message == "" {
		e.Message = "import failed"
	}
	if looksBusy(strings.Join(texts, "\n")) {
		e.Kind = KindTransient
		e.Message = "DHIS2 is busy: " + e.Message
	}
	return e
}
