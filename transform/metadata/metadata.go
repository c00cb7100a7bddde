// Package metadata is the DHIS2 metadata model that the mapping engine and the DHIS2 client
// share: the data elements, category combos, categories, options, option combos, data sets
// and org units of one instance, in DHIS2's own JSON shape, and the API calls that read
// them. It holds data only: it must not read HTTP or NATS, and it knows neither the
// configuration nor the engine that uses it.
package metadata

import "github.com/tally-hmis/tally/transform"

// Metadata is a snapshot of the DHIS2 metadata of one target that mapping needs. Its JSON
// form is DHIS2's: each list decodes from the response of GET /api/<resource>?fields=...
// (see MetadataRequests), or all at once from GET /api/metadata with the same fields. A
// Metadata must not change once handed to the engine; build a new one to refresh.
type Metadata struct {
	DataElements         []DataElement         `json:"dataElements,omitempty"`
	CategoryCombos       []CategoryCombo       `json:"categoryCombos,omitempty"`
	Categories           []Category            `json:"categories,omitempty"`
	CategoryOptions      []CategoryOption      `json:"categoryOptions,omitempty"`
	CategoryOptionCombos []CategoryOptionCombo `json:"categoryOptionCombos,omitempty"`
	DataSets             []DataSet             `json:"dataSets,omitempty"`
	OrgUnits             []OrgUnit             `json:"organisationUnits,omitempty"`
	// SystemRelease is the target's DHIS2 release (40 for 2.40.x), from
	// GET /api/system/info: the caller sets it, as no metadata list carries it. 0 means
	// unknown, and then periods are not checked against the release.
	SystemRelease int `json:"systemRelease,omitempty"`
}

// Ref is a reference to another object, as DHIS2 writes it: {"id": "..."}.
type Ref struct {
	ID string `json:"id"`
}

// AttributeValue is the value of a custom attribute on an object, used by the
// ATTRIBUTE:<uid> id scheme.
type AttributeValue struct {
	Attribute Ref    `json:"attribute"`
	Value     string `json:"value"`
}

// Object is what every identifiable DHIS2 object has.
type Object struct {
	ID              string           `json:"id"`
	Code            string           `json:"code,omitempty"`
	Name            string           `json:"name,omitempty"`
	AttributeValues []AttributeValue `json:"attributeValues,omitempty"`
}

// Attr returns the object's value of the attribute with uid attr.
func (o *Object) Attr(attr string) (string, bool) {
	for _, av := range o.AttributeValues {
		if av.Attribute.ID == attr {
			return av.Value, true
		}
	}
	return "", false
}

// Label is how messages name the object: its code, else its name, else its uid.
func (o *Object) Label() string {
	switch {
	case o.Code != "":
		return o.Code
	case o.Name != "":
		return o.Name
	}
	return o.ID
}

// DataElement is an aggregate data element.
type DataElement struct {
	Object
	ValueType     string `json:"valueType,omitempty"`
	CategoryCombo Ref    `json:"categoryCombo"`
}

// CategoryCombo is an ordered list of categories and the option combos they generate.
type CategoryCombo struct {
	Object
	DataDimensionType    string `json:"dataDimensionType,omitempty"`
	Categories           []Ref  `json:"categories"`
	CategoryOptionCombos []Ref  `json:"categoryOptionCombos,omitempty"`
}

// Category is a list of options.
type Category struct {
	Object
	DataDimensionType string `json:"dataDimensionType,omitempty"`
	CategoryOptions   []Ref  `json:"categoryOptions"`
}

// CategoryOption is one option of a category.
type CategoryOption struct {
	Object
}

// CategoryOptionCombo is one combination of options, one of each category of its combo.
type CategoryOptionCombo struct {
	Object
	CategoryCombo   Ref   `json:"categoryCombo"`
	CategoryOptions []Ref `json:"categoryOptions"`
}

// DataSet is an aggregate data set. CategoryCombo is its attribute category combo.
type DataSet struct {
	Object
	PeriodType      string           `json:"periodType"`
	CategoryCombo   Ref              `json:"categoryCombo"`
	DataSetElements []DataSetElement `json:"dataSetElements"`
	// OrganisationUnits are the org units the data set is assigned to. nil means the
	// snapshot does not say (it was read without the field); an empty list means none.
	// No omitempty: a snapshot stored and read again must keep the difference.
	OrganisationUnits []Ref `json:"organisationUnits"`
}

// DataSetElement is a data element's membership of a data set. A non-empty CategoryCombo
// overrides the data element's own combo within that data set.
type DataSetElement struct {
	DataElement   Ref `json:"dataElement"`
	CategoryCombo Ref `json:"categoryCombo"`
}

// OrgUnit is an organisation unit. Level is its depth in the hierarchy (1 is a root; 0
// when the snapshot does not say); Path lists the uids from the root down, "/"-separated.
type OrgUnit struct {
	Object
	Level int    `json:"level,omitempty"`
	Path  string `json:"path,omitempty"`
}

// HasElement reports whether ds holds the data element with uid de.
func (ds *DataSet) HasElement(de string) bool {
	for _, dse := range ds.DataSetElements {
		if dse.DataElement.ID == de {
			return true
		}
	}
	return false
}

// IsDefault reports whether the combo is DHIS2's default (no disaggregation).
func (cc *CategoryCombo) IsDefault() bool {
	return cc.ID == DefaultCategoryComboUID || (cc.Name == "default" && len(cc.Categories) <= 1)
}

// IDIn returns the object's id in scheme, and false when it has none there (no code, no
// value of the attribute).
func (o *Object) IDIn(scheme transform.IDScheme) (string, bool) {
	switch scheme {
	case transform.SchemeUID, "":
		return o.ID, o.ID != ""
	case transform.SchemeCode:
		return o.Code, o.Code != ""
	case transform.SchemeName:
		return o.Name, o.Name != ""
	}
	if attr, ok := scheme.Attribute(); ok {
		v, ok := o.Attr(attr)
		return v, ok && v != ""
	}
	return "", false
}

// MetadataRequest is one DHIS2 API call that fills a part of Metadata.
type MetadataRequest struct {
	// Resource is the path under /api, and also the JSON key of the list in the response.
	Resource string
	// Fields is the value of the fields query parameter.
	Fields string
}

// MetadataRequests lists the calls whose responses, decoded one after the other into the
// same Metadata, fill it: GET /api/<Resource>?fields=<Fields>&paging=false.
func MetadataRequests() []MetadataRequest {
	const obj = "id,code,name,attributeValues[value,attribute[id]]"
	return []MetadataRequest{
		{"dataElements", obj + ",valueType,categoryCombo[id]"},
		{"categoryCombos", obj + ",dataDimensionType,categories[id],categoryOptionCombos[id]"},
		{"categories", obj + ",dataDimensionType,categoryOptions[id]"},
		{"categoryOptions", obj},
		{"categoryOptionCombos", obj + ",categoryCombo[id],categoryOptions[id]"},
		{"dataSets", obj + ",periodType,categoryCombo[id],dataSetElements[dataElement[id],categoryCombo[id]],organisationUnits[id]"},
		{"organisationUnits", obj + ",level,path"},
	}
}

// DHIS2's built-in default category objects have fixed UIDs.
const (
	DefaultCategoryComboUID       = "bjDvmb4bfuf"
	DefaultCategoryOptionComboUID = "HllvX50cXC0"
)
