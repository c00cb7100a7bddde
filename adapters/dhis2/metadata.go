package dhis2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/tally-hmis/tally/transform/metadata"
)

// The metadata types below are plain DHIS2 objects as GET /api/<resource> writes them,
// with DHIS2's field names, reduced to what Tally's mapping reads.

// Ref is a reference to another object: {"id": "..."}.
type Ref struct {
	ID string `json:"id"`
}

// AttributeValue is an object's value of a custom attribute (the ATTRIBUTE:<uid> id
// scheme; the program indicators' AGG_DE_CODE).
type AttributeValue struct {
	Attribute Ref    `json:"attribute"`
	Value     string `json:"value"`
}

// DataElement is an aggregate data element.
type DataElement struct {
	ID                string           `json:"id"`
	Code              string           `json:"code,omitempty"`
	Name              string           `json:"name,omitempty"`
	ValueType         string           `json:"valueType,omitempty"`
	DomainType        string           `json:"domainType,omitempty"`
	AggregationType   string           `json:"aggregationType,omitempty"`
	ZeroIsSignificant bool             `json:"zeroIsSignificant,omitempty"`
	CategoryCombo     Ref              `json:"categoryCombo"`
	AttributeValues   []AttributeValue `json:"attributeValues,omitempty"`
}

// CategoryCombo is an ordered list of categories and the option combos they generate.
// DataDimensionType is DISAGGREGATION or ATTRIBUTE.
type CategoryCombo struct {
	ID                   string           `json:"id"`
	Code                 string           `json:"code,omitempty"`
	Name                 string           `json:"name,omitempty"`
	DataDimensionType    string           `json:"dataDimensionType,omitempty"`
	Categories           []Ref            `json:"categories"`
	CategoryOptionCombos []Ref            `json:"categoryOptionCombos,omitempty"`
	AttributeValues      []AttributeValue `json:"attributeValues,omitempty"`
}

// Category is an ordered list of options.
type Category struct {
	ID                string           `json:"id"`
	Code              string           `json:"code,omitempty"`
	Name              string           `json:"name,omitempty"`
	DataDimensionType string           `json:"dataDimensionType,omitempty"`
	CategoryOptions   []Ref            `json:"categoryOptions"`
	AttributeValues   []AttributeValue `json:"attributeValues,omitempty"`
}

// CategoryOption is one option of a category.
type CategoryOption struct {
	ID              string           `json:"id"`
	Code            string           `json:"code,omitempty"`
	Name            string           `json:"name,omitempty"`
	AttributeValues []AttributeValue `json:"attributeValues,omitempty"`
}

// CategoryOptionCombo is one combination of options, one of each category of its combo.
type CategoryOptionCombo struct {
	ID              string           `json:"id"`
	Code            string           `json:"code,omitempty"`
	Name            string           `json:"name,omitempty"`
	CategoryCombo   Ref              `json:"categoryCombo"`
	CategoryOptions []Ref            `json:"categoryOptions"`
	AttributeValues []AttributeValue `json:"attributeValues,omitempty"`
}

// DataSet is an aggregate data set; CategoryCombo is its attribute combo.
type DataSet struct {
	ID              string           `json:"id"`
	Code            string           `json:"code,omitempty"`
	Name            string           `json:"name,omitempty"`
	PeriodType      string           `json:"periodType,omitempty"`
	CategoryCombo   Ref              `json:"categoryCombo"`
	DataSetElements []DataSetElement `json:"dataSetElements,omitempty"`
	AttributeValues []AttributeValue `json:"attributeValues,omitempty"`
}

// DataSetElement is a data element's membership of a data set. A CategoryCombo overrides
// the data element's own within the data set.
type DataSetElement struct {
	DataElement   Ref  `json:"dataElement"`
	CategoryCombo *Ref `json:"categoryCombo,omitempty"`
}

// OrganisationUnit is an org unit. Path is "/<root uid>/.../<own uid>"; Level counts
// from 1 at the root.
type OrganisationUnit struct {
	ID              string           `json:"id"`
	Code            string           `json:"code,omitempty"`
	Name            string           `json:"name,omitempty"`
	Level           int              `json:"level,omitempty"`
	Path            string           `json:"path,omitempty"`
	Parent          *Ref             `json:"parent,omitempty"`
	AttributeValues []AttributeValue `json:"attributeValues,omitempty"`
}

// Attribute is a custom attribute definition. The *Attribute flags say which objects
// may carry it.
type Attribute struct {
	ID                           string `json:"id"`
	Code                         string `json:"code,omitempty"`
	Name                         string `json:"name,omitempty"`
	ValueType                    string `json:"valueType,omitempty"`
	Unique                       bool   `json:"unique,omitempty"`
	Mandatory                    bool   `json:"mandatory,omitempty"`
	DataElementAttribute         bool   `json:"dataElementAttribute,omitempty"`
	DataSetAttribute             bool   `json:"dataSetAttribute,omitempty"`
	OrganisationUnitAttribute    bool   `json:"organisationUnitAttribute,omitempty"`
	CategoryOptionAttribute      bool   `json:"categoryOptionAttribute,omitempty"`
	CategoryOptionComboAttribute bool   `json:"categoryOptionComboAttribute,omitempty"`
	ProgramIndicatorAttribute    bool   `json:"programIndicatorAttribute,omitempty"`
}

// ProgramIndicator is a tracker program indicator. The aggregate export combos (codes or
// uids, as the implementer wrote them) become the category and attribute option combos
// of its values in analytics data value sets (§6.2, §6.4).
type ProgramIndicator struct {
	ID                                  string           `json:"id"`
	Code                                string           `json:"code,omitempty"`
	Name                                string           `json:"name,omitempty"`
	Program                             *Ref             `json:"program,omitempty"`
	AggregateExportCategoryOptionCombo  string           `json:"aggregateExportCategoryOptionCombo,omitempty"`
	AggregateExportAttributeOptionCombo string           `json:"aggregateExportAttributeOptionCombo,omitempty"`
	AttributeValues                     []AttributeValue `json:"attributeValues,omitempty"`
}

// attrValue returns the value of the attribute with uid attr among avs.
func attrValue(avs []AttributeValue, attr string) (string, bool) {
	for _, av := range avs {
		if av.Attribute.ID == attr {
			return av.Value, true
		}
	}
	return "", false
}

// Attr returns the data element's value of the attribute with uid attr.
func (d *DataElement) Attr(attr string) (string, bool) { return attrValue(d.AttributeValues, attr) }

// Attr returns the org unit's value of the attribute with uid attr.
func (o *OrganisationUnit) Attr(attr string) (string, bool) {
	return attrValue(o.AttributeValues, attr)
}

// Attr returns the program indicator's value of the attribute with uid attr.
func (p *ProgramIndicator) Attr(attr string) (string, bool) {
	return attrValue(p.AttributeValues, attr)
}

// fields parameters of the metadata reads.
const (
	identFields              = "id,code,name,attributeValues[value,attribute[id]]"
	dataElementFields        = identFields + ",valueType,domainType,aggregationType,zeroIsSignificant,categoryCombo[id]"
	categoryComboFields      = identFields + ",dataDimensionType,categories[id],categoryOptionCombos[id]"
	categoryFields           = identFields + ",dataDimensionType,categoryOptions[id]"
	categoryOptionFields     = identFields
	categoryOptionComboField = identFields + ",categoryCombo[id],categoryOptions[id]"
	dataSetFields            = identFields + ",periodType,categoryCombo[id],dataSetElements[dataElement[id],categoryCombo[id]]"
	orgUnitFields            = identFields + ",level,path,parent[id]"
	attributeFields          = "id,code,name,valueType,unique,mandatory,dataElementAttribute,dataSetAttribute," +
		"organisationUnitAttribute,categoryOptionAttribute,categoryOptionComboAttribute,programIndicatorAttribute"
	programIndicatorFields = identFields + ",program[id],aggregateExportCategoryOptionCombo,aggregateExportAttributeOptionCombo"
)

// ListOptions narrow and page a metadata read.
type ListOptions struct {
	// Filter are DHIS2 object filters, all of which must hold: "code:in:[KL_N_F1,KL_N_F2]",
	// "level:le:3", "path:like:KLxxxxxxxxx".
	Filter []string
	// PageSize > 0 reads pages of that many objects and follows the pager; 0 asks for
	// everything at once (paging=false). Page when a list would not fit in
	// Config.MaxResponseBytes (org units of a large country). Pages are separate
	// queries: an object changed meanwhile may be missed or read twice.
	PageSize int
}

// maxPages bounds how many pages one read follows.
const maxPages = 100_000

// wirePager is the pager DHIS2 puts beside a paged list.
type wirePager struct {
	Page      int    `json:"page"`
	PageCount int    `json:"pageCount"`
	Total     int    `json:"total"`
	PageSize  int    `json:"pageSize"`
	NextPage  string `json:"nextPage"`
}

// listPages reads GET /api/<resource>?fields=... page by page and gives each answer's
// body and list to page. An error from page means the list did not decode.
func (c *Client) listPages(ctx context.Context, op, resource, fields string, opts ListOptions,
	page func(body []byte, list json.RawMessage) error) error {
	if opts.PageSize < 0 {
		return &Error{Kind: KindPermanent, Op: op, Message: "PageSize is negative"}
	}
	if err := checkIDs("filter", opts.Filter, ""); err != nil {
		return &Error{Kind: KindPermanent, Op: op, Message: "invalid list options", Err: err}
	}
	q := url.Values{"fields": {fields}}
	for _, f := range opts.Filter {
		q.Add("filter", f)
	}
	if opts.PageSize > 0 {
		q.Set("pageSize", strconv.Itoa(opts.PageSize))
		q.Set("page", "1")
	} else {
		q.Set("paging", "false")
	}
	what := "a list of " + resource
	for n := 1; n <= maxPages; n++ {
		res, err := c.roundTrip(ctx, request{op: op, method: http.MethodGet, endpoint: "/" + resource, query: q})
		if err != nil {
			return err
		}
		var body map[string]json.RawMessage
		if err := c.decodeJSON(op, res, http.StatusOK, what, &body); err != nil {
			return err
		}
		list, ok := body[resource]
		if !ok {
			kept, _ := c.keep(res.body)
			return &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status, Body: kept,
				Message: fmt.Sprintf("the answer is not %s (no %q member); check BaseURL", what, resource)}
		}
		if err := page(bytes.TrimSpace(res.body), list); err != nil {
			kept, _ := c.keep(res.body)
			return &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status, Body: kept,
				Message: "the answer is not " + what, Err: err}
		}
		var p wirePager
		if raw, ok := body["pager"]; !ok || json.Unmarshal(raw, &p) != nil {
			return nil // not paged: everything is in
		}
		more := p.PageCount > p.Page || (p.PageCount == 0 && p.NextPage != "")
		if !more {
			return nil
		}
		if p.Page != n {
			return &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status,
				Message: fmt.Sprintf("asked for page %d of %s, got page %d", n, resource, p.Page)}
		}
		// Paged although paging=false was asked for, or the next page of a paged read.
		q.Del("paging")
		size := p.PageSize
		if size <= 0 {
			size = max(opts.PageSize, 50)
		}
		q.Set("pageSize", strconv.Itoa(size))
		q.Set("page", strconv.Itoa(n+1))
	}
	return &Error{Kind: KindPermanent, Op: op, Message: fmt.Sprintf("more than %d pages of %s", maxPages, resource)}
}

// listAll reads every object of a resource.
func listAll[T any](ctx context.Context, c *Client, resource, fields string, opts ListOptions) ([]T, error) {
	var out []T
	err := c.listPages(ctx, "reading "+resource, resource, fields, opts, func(_ []byte, list json.RawMessage) error {
		var page []T
		if err := json.Unmarshal(list, &page); err != nil {
			return err
		}
		out = append(out, page...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DataElements reads GET /api/dataElements.
func (c *Client) DataElements(ctx context.Context, opts ListOptions) ([]DataElement, error) {
	return listAll[DataElement](ctx, c, "dataElements", dataElementFields, opts)
}

// CategoryCombos reads GET /api/categoryCombos.
func (c *Client) CategoryCombos(ctx context.Context, opts ListOptions) ([]CategoryCombo, error) {
	return listAll[CategoryCombo](ctx, c, "categoryCombos", categoryComboFields, opts)
}

// Categories reads GET /api/categories.
func (c *Client) Categories(ctx context.Context, opts ListOptions) ([]Category, error) {
	return listAll[Category](ctx, c, "categories", categoryFields, opts)
}

// CategoryOptions reads GET /api/categoryOptions.
func (c *Client) CategoryOptions(ctx context.Context, opts ListOptions) ([]CategoryOption, error) {
	return listAll[CategoryOption](ctx, c, "categoryOptions", categoryOptionFields, opts)
}

// CategoryOptionCombos reads GET /api/categoryOptionCombos.
func (c *Client) CategoryOptionCombos(ctx context.Context, opts ListOptions) ([]CategoryOptionCombo, error) {
	return listAll[CategoryOptionCombo](ctx, c, "categoryOptionCombos", categoryOptionComboField, opts)
}

// DataSets reads GET /api/dataSets.
func (c *Client) DataSets(ctx context.Context, opts ListOptions) ([]DataSet, error) {
	return listAll[DataSet](ctx, c, "dataSets", dataSetFields, opts)
}

// OrganisationUnits reads GET /api/organisationUnits.
func (c *Client) OrganisationUnits(ctx context.Context, opts ListOptions) ([]OrganisationUnit, error) {
	return listAll[OrganisationUnit](ctx, c, "organisationUnits", orgUnitFields, opts)
}

// Attributes reads GET /api/attributes.
func (c *Client) Attributes(ctx context.Context, opts ListOptions) ([]Attribute, error) {
	return listAll[Attribute](ctx, c, "attributes", attributeFields, opts)
}

// ProgramIndicators reads GET /api/programIndicators.
func (c *Client) ProgramIndicators(ctx context.Context, opts ListOptions) ([]ProgramIndicator, error) {
	return listAll[ProgramIndicator](ctx, c, "programIndicators", programIndicatorFields, opts)
}

// FetchMappingMetadata reads the snapshot Tally's mapping engine indexes: each call of
// metadata.MetadataRequests, with the fields mapping asks for, decoded into one
// metadata.Metadata. opts (a Filter applies to every list: leave it empty) pages large
// lists. The snapshot is new on every call; cache it in a mapping.MetadataProvider.
func (c *Client) FetchMappingMetadata(ctx context.Context, opts ListOptions) (*metadata.Metadata, error) {
	md := &metadata.Metadata{}
	for _, mr := range metadata.MetadataRequests() {
		op := "reading " + mr.Resource + " for mapping"
		err := c.listPages(ctx, op, strings.Trim(mr.Resource, "/"), mr.Fields, opts, func(body []byte, _ json.RawMessage) error {
			var page metadata.Metadata
			if err := json.Unmarshal(body, &page); err != nil {
				return err
			}
			appendLists(md, &page)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return md, nil
}

// appendLists appends every slice field of *src to the same field of *dst (both pointers
// to the same struct type): the pages of a metadata read, whichever lists they fill.
func appendLists(dst, src any) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range d.NumField() {
		if f := d.Field(i); f.Kind() == reflect.Slice && f.CanSet() && s.Field(i).Len() > 0 {
			f.Set(reflect.AppendSlice(f, s.Field(i)))
		}
	}
}
