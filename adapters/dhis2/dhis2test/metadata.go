package dhis2test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// DHIS2's built-in default category objects. Their UIDs are fixed in DHIS2
// (DefaultCategoryService); conformance README §4.5.
const (
	DefaultCategoryOptionUID      = "xYerKDKCefk"
	DefaultCategoryUID            = "GLevLNI9wkl"
	DefaultCategoryComboUID       = "bjDvmb4bfuf"
	DefaultCategoryOptionComboUID = "HllvX50cXC0"
)

// Metadata is the emulator's model of a DHIS2 instance: everything an import
// is validated against. It is loaded from JSON or YAML (see LoadMetadata) and
// can be changed at run time with Server.UpdateMetadata.
//
// References between objects (a data element's categoryCombo, a data set's
// dataElements, an org unit's parent, ...) may be written as UID, code or
// name; they are resolved to UIDs when the metadata is indexed. The DHIS2
// default category, option, combo and option combo are added when missing.
type Metadata struct {
	Attributes           []*Attribute           `json:"attributes,omitempty" yaml:"attributes,omitempty"`
	CategoryOptions      []*CategoryOption      `json:"categoryOptions,omitempty" yaml:"categoryOptions,omitempty"`
	Categories           []*Category            `json:"categories,omitempty" yaml:"categories,omitempty"`
	CategoryCombos       []*CategoryCombo       `json:"categoryCombos,omitempty" yaml:"categoryCombos,omitempty"`
	CategoryOptionCombos []*CategoryOptionCombo `json:"categoryOptionCombos,omitempty" yaml:"categoryOptionCombos,omitempty"`
	DataElements         []*DataElement         `json:"dataElements,omitempty" yaml:"dataElements,omitempty"`
	DataSets             []*DataSet             `json:"dataSets,omitempty" yaml:"dataSets,omitempty"`
	OrgUnits             []*OrgUnit             `json:"organisationUnits,omitempty" yaml:"organisationUnits,omitempty"`
	UserGroups           []*UserGroup           `json:"userGroups,omitempty" yaml:"userGroups,omitempty"`
	Users                []*User                `json:"users,omitempty" yaml:"users,omitempty"`
	ProgramIndicators    []*ProgramIndicator    `json:"programIndicators,omitempty" yaml:"programIndicators,omitempty"`

	// Served by the analytics, exchange, export and messaging endpoints
	// (facts.go, exchanges.go, export.go, messages.go).
	DataElementGroups      []*DataElementGroup      `json:"dataElementGroups,omitempty" yaml:"dataElementGroups,omitempty"`
	AggregateDataExchanges []*AggregateDataExchange `json:"aggregateDataExchanges,omitempty" yaml:"aggregateDataExchanges,omitempty"`
	MessageConversations   []*MessageConversation   `json:"messageConversations,omitempty" yaml:"messageConversations,omitempty"`
	Facts                  FactTable                `json:"facts,omitempty" yaml:"facts,omitempty"`

	idx *metaIndex
}

// AttributeValues maps a custom attribute (UID, code or name in the source
// file; UID after indexing) to its value on an object.
type AttributeValues map[string]string

// Attribute is a custom attribute (used by the ATTRIBUTE:<uid> id scheme and
// by program indicators' AGG_DE_CODE).
type Attribute struct {
	ID        string `json:"id" yaml:"id"`
	Code      string `json:"code,omitempty" yaml:"code,omitempty"`
	Name      string `json:"name" yaml:"name"`
	ValueType string `json:"valueType,omitempty" yaml:"valueType,omitempty"`
	Unique    bool   `json:"unique,omitempty" yaml:"unique,omitempty"`
}

// CategoryOption is one option of a category. StartDate/EndDate (yyyy-MM-dd)
// and OrgUnits restrict where and when it may be used as an attribute option
// (E7638, E7639).
type CategoryOption struct {
	ID              string          `json:"id" yaml:"id"`
	Code            string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name            string          `json:"name" yaml:"name"`
	StartDate       string          `json:"startDate,omitempty" yaml:"startDate,omitempty"`
	EndDate         string          `json:"endDate,omitempty" yaml:"endDate,omitempty"`
	OrgUnits        []string        `json:"organisationUnits,omitempty" yaml:"organisationUnits,omitempty"`
	AttributeValues AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// Category groups options. DataDimensionType is DISAGGREGATION (default) or ATTRIBUTE.
type Category struct {
	ID                string          `json:"id" yaml:"id"`
	Code              string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name              string          `json:"name" yaml:"name"`
	DataDimensionType string          `json:"dataDimensionType,omitempty" yaml:"dataDimensionType,omitempty"`
	Options           []string        `json:"categoryOptions" yaml:"categoryOptions"`
	AttributeValues   AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// CategoryCombo is an ordered list of categories.
type CategoryCombo struct {
	ID                string          `json:"id" yaml:"id"`
	Code              string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name              string          `json:"name" yaml:"name"`
	DataDimensionType string          `json:"dataDimensionType,omitempty" yaml:"dataDimensionType,omitempty"`
	Categories        []string        `json:"categories" yaml:"categories"`
	AttributeValues   AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// CategoryOptionCombo is one combination of options of a category combo.
type CategoryOptionCombo struct {
	ID              string          `json:"id" yaml:"id"`
	Code            string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name            string          `json:"name" yaml:"name"`
	CategoryCombo   string          `json:"categoryCombo" yaml:"categoryCombo"`
	Options         []string        `json:"categoryOptions" yaml:"categoryOptions"`
	AttributeValues AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// DataElement is an aggregate data element.
type DataElement struct {
	ID                string          `json:"id" yaml:"id"`
	Code              string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name              string          `json:"name" yaml:"name"`
	ShortName         string          `json:"shortName,omitempty" yaml:"shortName,omitempty"`
	ValueType         string          `json:"valueType,omitempty" yaml:"valueType,omitempty"`
	AggregationType   string          `json:"aggregationType,omitempty" yaml:"aggregationType,omitempty"`
	ZeroIsSignificant bool            `json:"zeroIsSignificant,omitempty" yaml:"zeroIsSignificant,omitempty"`
	CategoryCombo     string          `json:"categoryCombo,omitempty" yaml:"categoryCombo,omitempty"`
	OptionSet         []string        `json:"optionSetValues,omitempty" yaml:"optionSetValues,omitempty"`
	AttributeValues   AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// DataSet is an aggregate data set. CategoryCombo is its attribute combo.
type DataSet struct {
	ID                string   `json:"id" yaml:"id"`
	Code              string   `json:"code,omitempty" yaml:"code,omitempty"`
	Name              string   `json:"name" yaml:"name"`
	PeriodType        string   `json:"periodType" yaml:"periodType"`
	CategoryCombo     string   `json:"categoryCombo,omitempty" yaml:"categoryCombo,omitempty"`
	DataElements      []string `json:"dataElements" yaml:"dataElements"`
	OrgUnits          []string `json:"organisationUnits,omitempty" yaml:"organisationUnits,omitempty"`
	ExpiryDays        int      `json:"expiryDays,omitempty" yaml:"expiryDays,omitempty"`
	OpenFuturePeriods int      `json:"openFuturePeriods,omitempty" yaml:"openFuturePeriods,omitempty"`
	// DataInputPeriods, when set, close the data set for every other period
	// and outside their dates (E7643, E7644; locks.go).
	DataInputPeriods []DataInputPeriod `json:"dataInputPeriods,omitempty" yaml:"dataInputPeriods,omitempty"`
	AttributeValues  AttributeValues   `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// OrgUnit is an organisation unit. Level and Path are computed from Parent
// when left empty.
type OrgUnit struct {
	ID              string          `json:"id" yaml:"id"`
	Code            string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name            string          `json:"name" yaml:"name"`
	ShortName       string          `json:"shortName,omitempty" yaml:"shortName,omitempty"`
	Parent          string          `json:"parent,omitempty" yaml:"parent,omitempty"`
	Level           int             `json:"level,omitempty" yaml:"level,omitempty"`
	Path            string          `json:"path,omitempty" yaml:"path,omitempty"`
	OpeningDate     string          `json:"openingDate,omitempty" yaml:"openingDate,omitempty"`
	AttributeValues AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// UserGroup is a DHIS2 user group.
type UserGroup struct {
	ID   string `json:"id" yaml:"id"`
	Code string `json:"code,omitempty" yaml:"code,omitempty"`
	Name string `json:"name" yaml:"name"`
}

// Token is a personal access token of a user. Expires (RFC 3339) is optional.
type Token struct {
	Key     string `json:"key" yaml:"key"`
	Expires string `json:"expires,omitempty" yaml:"expires,omitempty"`
}

// User is a DHIS2 user account. OrgUnits are the data capture org units
// (E7617 checks values against their subtrees; empty means everywhere).
// ReadOnlyDataSets lists data sets the user may read but not write (E7601).
type User struct {
	ID               string   `json:"id" yaml:"id"`
	Username         string   `json:"username" yaml:"username"`
	Password         string   `json:"password" yaml:"password"`
	FirstName        string   `json:"firstName,omitempty" yaml:"firstName,omitempty"`
	Surname          string   `json:"surname,omitempty" yaml:"surname,omitempty"`
	Tokens           []Token  `json:"tokens,omitempty" yaml:"tokens,omitempty"`
	Authorities      []string `json:"authorities,omitempty" yaml:"authorities,omitempty"`
	UserGroups       []string `json:"userGroups,omitempty" yaml:"userGroups,omitempty"`
	OrgUnits         []string `json:"organisationUnits,omitempty" yaml:"organisationUnits,omitempty"`
	ReadOnlyDataSets []string `json:"readOnlyDataSets,omitempty" yaml:"readOnlyDataSets,omitempty"`
	Disabled         bool     `json:"disabled,omitempty" yaml:"disabled,omitempty"`
}

// ProgramIndicator is a tracker program indicator with the aggregate export
// mapping used by analytics dataValueSet output (spec dhis2.md §6.2, §6.4).
type ProgramIndicator struct {
	ID                                  string          `json:"id" yaml:"id"`
	Code                                string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name                                string          `json:"name" yaml:"name"`
	AggregateExportCategoryOptionCombo  string          `json:"aggregateExportCategoryOptionCombo,omitempty" yaml:"aggregateExportCategoryOptionCombo,omitempty"`
	AggregateExportAttributeOptionCombo string          `json:"aggregateExportAttributeOptionCombo,omitempty" yaml:"aggregateExportAttributeOptionCombo,omitempty"`
	AttributeValues                     AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

// HasAuthority reports whether the user holds auth (or ALL).
func (u *User) HasAuthority(auth string) bool {
	return slices.Contains(u.Authorities, "ALL") || slices.Contains(u.Authorities, auth)
}

var uidPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{10}$`)

// IsUID reports whether s has the shape of a DHIS2 UID.
func IsUID(s string) bool { return uidPattern.MatchString(s) }

// LoadMetadata reads metadata from a .json, .yaml or .yml file.
func LoadMetadata(path string) (*Metadata, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dhis2test: read metadata: %w", err)
	}
	m, err := ParseMetadata(b, filepath.Ext(path))
	if err != nil {
		return nil, fmt.Errorf("dhis2test: %s: %w", path, err)
	}
	return m, nil
}

// ParseMetadata decodes metadata; format is ".json", ".yaml"/".yml" or ""
// (sniffed: JSON when the document starts with '{').
func ParseMetadata(b []byte, format string) (*Metadata, error) {
	m := &Metadata{}
	switch strings.ToLower(format) {
	case ".json", "json":
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(m); err != nil {
			return nil, fmt.Errorf("decode JSON metadata: %w", err)
		}
	case ".yaml", ".yml", "yaml":
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(m); err != nil {
			return nil, fmt.Errorf("decode YAML metadata: %w", err)
		}
	case "":
		if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
			return ParseMetadata(b, "json")
		}
		return ParseMetadata(b, "yaml")
	default:
		return nil, fmt.Errorf("unknown metadata format %q", format)
	}
	if err := m.reindex(); err != nil {
		return nil, err
	}
	return m, nil
}

// Clone returns a deep copy of the metadata.
func (m *Metadata) Clone() *Metadata {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("dhis2test: clone metadata: %v", err)) // all fields are plain data
	}
	c := &Metadata{}
	if err := json.Unmarshal(b, c); err != nil {
		panic(fmt.Sprintf("dhis2test: clone metadata: %v", err))
	}
	if err := c.reindex(); err != nil {
		panic(fmt.Sprintf("dhis2test: clone metadata: %v", err))
	}
	return c
}

// AddDataElement appends a data element (its references may be codes).
func (m *Metadata) AddDataElement(de DataElement) { m.DataElements = append(m.DataElements, &de) }

// AddOrgUnit appends an organisation unit.
func (m *Metadata) AddOrgUnit(ou OrgUnit) { m.OrgUnits = append(m.OrgUnits, &ou) }

// AddDataSet appends a data set.
func (m *Metadata) AddDataSet(ds DataSet) { m.DataSets = append(m.DataSets, &ds) }

// AddUser appends a user.
func (m *Metadata) AddUser(u User) { m.Users = append(m.Users, &u) }

// AddCategoryOptionCombo appends a category option combo.
func (m *Metadata) AddCategoryOptionCombo(c CategoryOptionCombo) {
	m.CategoryOptionCombos = append(m.CategoryOptionCombos, &c)
}

// DataElement finds a data element by UID, code or name (nil if absent).
func (m *Metadata) DataElement(ref string) *DataElement {
	return findRef(m.DataElements, ref, func(d *DataElement) (string, string, string) { return d.ID, d.Code, d.Name })
}

// DataSet finds a data set by UID, code or name.
func (m *Metadata) DataSet(ref string) *DataSet {
	return findRef(m.DataSets, ref, func(d *DataSet) (string, string, string) { return d.ID, d.Code, d.Name })
}

// OrgUnit finds an organisation unit by UID, code or name.
func (m *Metadata) OrgUnit(ref string) *OrgUnit {
	return findRef(m.OrgUnits, ref, func(d *OrgUnit) (string, string, string) { return d.ID, d.Code, d.Name })
}

// CategoryOptionCombo finds a category option combo by UID, code or name.
func (m *Metadata) CategoryOptionCombo(ref string) *CategoryOptionCombo {
	return findRef(m.CategoryOptionCombos, ref, func(d *CategoryOptionCombo) (string, string, string) { return d.ID, d.Code, d.Name })
}

// CategoryCombo finds a category combo by UID, code or name.
func (m *Metadata) CategoryCombo(ref string) *CategoryCombo {
	return findRef(m.CategoryCombos, ref, func(d *CategoryCombo) (string, string, string) { return d.ID, d.Code, d.Name })
}

// User finds a user by UID or username.
func (m *Metadata) User(ref string) *User {
	for _, u := range m.Users {
		if u.ID == ref || u.Username == ref {
			return u
		}
	}
	return nil
}

// ProgramIndicator finds a program indicator by UID, code or name.
func (m *Metadata) ProgramIndicator(ref string) *ProgramIndicator {
	return findRef(m.ProgramIndicators, ref, func(d *ProgramIndicator) (string, string, string) { return d.ID, d.Code, d.Name })
}

func findRef[T any](list []*T, ref string, ids func(*T) (string, string, string)) *T {
	for _, o := range list {
		if id, _, _ := ids(o); id == ref {
			return o
		}
	}
	for _, o := range list {
		if _, code, _ := ids(o); code != "" && code == ref {
			return o
		}
	}
	for _, o := range list {
		if _, _, name := ids(o); name == ref {
			return o
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Index

type kind int

const (
	kindDataElement kind = iota
	kindOrgUnit
	kindCOC
	kindDataSet
	kindCategory
	kindCategoryOption
	kindCategoryCombo
	numKinds
)

func (k kind) String() string {
	return [...]string{"dataElement", "orgUnit", "categoryOptionCombo", "dataSet", "category", "categoryOption", "categoryCombo"}[k]
}

type identity struct {
	id, code, name string
	attrs          AttributeValues
}

type metaIndex struct {
	byKind [numKinds]map[string]identity          // uid → identity
	byCode [numKinds]map[string]string            // code → uid
	byName [numKinds]map[string]string            // name → uid (first wins)
	byAttr [numKinds]map[string]map[string]string // attribute uid → value → uid

	de   map[string]*DataElement
	ou   map[string]*OrgUnit
	coc  map[string]*CategoryOptionCombo
	cc   map[string]*CategoryCombo
	cat  map[string]*Category
	opt  map[string]*CategoryOption
	ds   map[string]*DataSet
	pi   map[string]*ProgramIndicator
	attr map[string]*Attribute

	// derived
	dsByDE       map[string][]*DataSet      // de uid → data sets containing it (metadata order)
	cocByCombo   map[string][]string        // combo uid → COC uids
	cocByOpts    map[string]string          // combo uid + sorted option uids → COC uid
	dsOrgUnits   map[string]map[string]bool // ds uid → ou uids
	optOrgUnits  map[string]map[string]bool // option uid → ou uids
	ouAncestors  map[string][]string        // ou uid → path uids (root first, incl. self)
	inputPeriods map[string][]inputPeriod   // ds uid → data input periods
	tokenUser    map[string]*User           // token key → user
}

func (ix *metaIndex) add(k kind, i identity) {
	ix.byKind[k][i.id] = i
	if i.code != "" {
		if _, dup := ix.byCode[k][i.code]; !dup {
			ix.byCode[k][i.code] = i.id
		}
	}
	if _, dup := ix.byName[k][i.name]; !dup && i.name != "" {
		ix.byName[k][i.name] = i.id
	}
	for a, v := range i.attrs {
		if ix.byAttr[k][a] == nil {
			ix.byAttr[k][a] = map[string]string{}
		}
		if _, dup := ix.byAttr[k][a][v]; !dup {
			ix.byAttr[k][a][v] = i.id
		}
	}
}

// reindex validates references, resolves them to UIDs, adds DHIS2 defaults and
// builds lookup tables. It is called after loading and after every update.
func (m *Metadata) reindex() error {
	m.addDefaults()
	var errs []error
	ix := &metaIndex{
		de: map[string]*DataElement{}, ou: map[string]*OrgUnit{}, coc: map[string]*CategoryOptionCombo{},
		cc: map[string]*CategoryCombo{}, cat: map[string]*Category{}, opt: map[string]*CategoryOption{},
		ds: map[string]*DataSet{}, pi: map[string]*ProgramIndicator{}, attr: map[string]*Attribute{},
		dsByDE: map[string][]*DataSet{}, cocByCombo: map[string][]string{}, cocByOpts: map[string]string{},
		dsOrgUnits: map[string]map[string]bool{}, optOrgUnits: map[string]map[string]bool{},
		ouAncestors: map[string][]string{}, tokenUser: map[string]*User{}, inputPeriods: map[string][]inputPeriod{},
	}
	for k := range ix.byKind {
		ix.byKind[k] = map[string]identity{}
		ix.byCode[k] = map[string]string{}
		ix.byName[k] = map[string]string{}
		ix.byAttr[k] = map[string]map[string]string{}
	}
	seen := map[string]string{}
	addID := func(typ, id string) {
		if !IsUID(id) {
			errs = append(errs, fmt.Errorf("%s %q: id is not an 11-character DHIS2 UID", typ, id))
		}
		if prev, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("%s %q: UID already used by a %s", typ, id, prev))
		}
		seen[id] = typ
	}

	for _, a := range m.Attributes {
		addID("attribute", a.ID)
		ix.attr[a.ID] = a
	}
	attrRef := func(ref string) string {
		if _, ok := ix.attr[ref]; ok {
			return ref
		}
		for _, a := range m.Attributes {
			if a.Code == ref || a.Name == ref {
				return a.ID
			}
		}
		return ""
	}
	fixAttrs := func(typ, id string, av AttributeValues) AttributeValues {
		if len(av) == 0 {
			return av
		}
		out := AttributeValues{}
		for k, v := range av {
			uid := attrRef(k)
			if uid == "" {
				errs = append(errs, fmt.Errorf("%s %q: unknown attribute %q", typ, id, k))
				continue
			}
			out[uid] = v
		}
		return out
	}

	// register checks an identifiable object's id and attribute values and indexes it by
	// every scheme; it returns the attribute values with their attributes resolved.
	register := func(typ string, k kind, id, code, name string, av AttributeValues) AttributeValues {
		addID(typ, id)
		av = fixAttrs(typ, id, av)
		ix.add(k, identity{id, code, name, av})
		return av
	}
	for _, o := range m.CategoryOptions {
		o.AttributeValues = register("categoryOption", kindCategoryOption, o.ID, o.Code, o.Name, o.AttributeValues)
		ix.opt[o.ID] = o
	}
	for _, c := range m.Categories {
		c.AttributeValues = register("category", kindCategory, c.ID, c.Code, c.Name, c.AttributeValues)
		ix.cat[c.ID] = c
	}
	for _, c := range m.CategoryCombos {
		c.AttributeValues = register("categoryCombo", kindCategoryCombo, c.ID, c.Code, c.Name, c.AttributeValues)
		ix.cc[c.ID] = c
	}
	for _, c := range m.CategoryOptionCombos {
		c.AttributeValues = register("categoryOptionCombo", kindCOC, c.ID, c.Code, c.Name, c.AttributeValues)
		ix.coc[c.ID] = c
	}
	for _, o := range m.OrgUnits {
		o.AttributeValues = register("organisationUnit", kindOrgUnit, o.ID, o.Code, o.Name, o.AttributeValues)
		ix.ou[o.ID] = o
	}
	for _, d := range m.DataElements {
		d.AttributeValues = register("dataElement", kindDataElement, d.ID, d.Code, d.Name, d.AttributeValues)
		ix.de[d.ID] = d
	}
	for _, d := range m.DataSets {
		d.AttributeValues = register("dataSet", kindDataSet, d.ID, d.Code, d.Name, d.AttributeValues)
		ix.ds[d.ID] = d
	}
	for _, g := range m.UserGroups {
		addID("userGroup", g.ID)
	}
	for _, u := range m.Users {
		addID("user", u.ID)
	}
	for _, p := range m.ProgramIndicators {
		addID("programIndicator", p.ID)
		p.AttributeValues = fixAttrs("programIndicator", p.ID, p.AttributeValues)
		ix.pi[p.ID] = p
	}

	resolve := func(k kind, typ, owner, ref string) string {
		if ref == "" {
			return ""
		}
		if _, ok := ix.byKind[k][ref]; ok {
			return ref
		}
		if id, ok := ix.byCode[k][ref]; ok {
			return id
		}
		if id, ok := ix.byName[k][ref]; ok {
			return id
		}
		errs = append(errs, fmt.Errorf("%s %q: unknown %s %q", typ, owner, k, ref))
		return ref
	}

	for _, c := range m.Categories {
		if c.DataDimensionType == "" {
			c.DataDimensionType = "DISAGGREGATION"
		}
		for i, o := range c.Options {
			c.Options[i] = resolve(kindCategoryOption, "category", c.ID, o)
		}
	}
	for _, c := range m.CategoryCombos {
		if c.DataDimensionType == "" {
			c.DataDimensionType = "DISAGGREGATION"
		}
		for i, o := range c.Categories {
			c.Categories[i] = resolve(kindCategory, "categoryCombo", c.ID, o)
		}
	}
	for _, c := range m.CategoryOptionCombos {
		c.CategoryCombo = resolve(kindCategoryCombo, "categoryOptionCombo", c.ID, c.CategoryCombo)
		for i, o := range c.Options {
			c.Options[i] = resolve(kindCategoryOption, "categoryOptionCombo", c.ID, o)
		}
		ix.cocByCombo[c.CategoryCombo] = append(ix.cocByCombo[c.CategoryCombo], c.ID)
		ix.cocByOpts[optionKey(c.CategoryCombo, c.Options)] = c.ID
	}
	for _, o := range m.CategoryOptions {
		if len(o.OrgUnits) > 0 {
			set := map[string]bool{}
			for i, ref := range o.OrgUnits {
				o.OrgUnits[i] = resolve(kindOrgUnit, "categoryOption", o.ID, ref)
				set[o.OrgUnits[i]] = true
			}
			ix.optOrgUnits[o.ID] = set
		}
	}
	for _, d := range m.DataElements {
		if d.ValueType == "" {
			d.ValueType = "NUMBER"
		}
		if d.AggregationType == "" {
			d.AggregationType = "SUM"
		}
		if d.CategoryCombo == "" {
			d.CategoryCombo = DefaultCategoryComboUID
		}
		d.CategoryCombo = resolve(kindCategoryCombo, "dataElement", d.ID, d.CategoryCombo)
	}
	for _, d := range m.DataSets {
		if d.PeriodType == "" {
			d.PeriodType = "Monthly"
		}
		if _, ok := periodTypeNames[d.PeriodType]; !ok {
			errs = append(errs, fmt.Errorf("dataSet %q: unknown periodType %q", d.ID, d.PeriodType))
		}
		if d.CategoryCombo == "" {
			d.CategoryCombo = DefaultCategoryComboUID
		}
		d.CategoryCombo = resolve(kindCategoryCombo, "dataSet", d.ID, d.CategoryCombo)
		for i, ref := range d.DataElements {
			d.DataElements[i] = resolve(kindDataElement, "dataSet", d.ID, ref)
			ix.dsByDE[d.DataElements[i]] = append(ix.dsByDE[d.DataElements[i]], d)
		}
		set := map[string]bool{}
		for i, ref := range d.OrgUnits {
			d.OrgUnits[i] = resolve(kindOrgUnit, "dataSet", d.ID, ref)
			set[d.OrgUnits[i]] = true
		}
		ix.dsOrgUnits[d.ID] = set
		ips, ipErrs := indexInputPeriods(d)
		ix.inputPeriods[d.ID] = ips
		errs = append(errs, ipErrs...)
	}
	for _, o := range m.OrgUnits {
		o.Parent = resolve(kindOrgUnit, "organisationUnit", o.ID, o.Parent)
	}
	for _, o := range m.OrgUnits {
		var chain []string
		cur, hops := o, 0
		for cur != nil && hops <= len(m.OrgUnits) {
			chain = append([]string{cur.ID}, chain...)
			cur = ix.ou[cur.Parent]
			hops++
		}
		if hops > len(m.OrgUnits) {
			errs = append(errs, fmt.Errorf("organisationUnit %q: parent cycle", o.ID))
		}
		ix.ouAncestors[o.ID] = chain
		o.Level = len(chain)
		o.Path = "/" + strings.Join(chain, "/")
	}
	for _, u := range m.Users {
		for i, ref := range u.OrgUnits {
			u.OrgUnits[i] = resolve(kindOrgUnit, "user", u.Username, ref)
		}
		for i, ref := range u.ReadOnlyDataSets {
			u.ReadOnlyDataSets[i] = resolve(kindDataSet, "user", u.Username, ref)
		}
		for i, ref := range u.UserGroups {
			for _, g := range m.UserGroups {
				if g.ID == ref || g.Code == ref || g.Name == ref {
					u.UserGroups[i] = g.ID
				}
			}
		}
		for _, t := range u.Tokens {
			if prev, dup := ix.tokenUser[t.Key]; dup {
				errs = append(errs, fmt.Errorf("user %q: token already belongs to %q", u.Username, prev.Username))
			}
			ix.tokenUser[t.Key] = u
		}
	}
	for _, p := range m.ProgramIndicators {
		p.AggregateExportCategoryOptionCombo = resolve(kindCOC, "programIndicator", p.ID, p.AggregateExportCategoryOptionCombo)
		p.AggregateExportAttributeOptionCombo = resolve(kindCOC, "programIndicator", p.ID, p.AggregateExportAttributeOptionCombo)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid metadata: %w", err)
	}
	m.idx = ix
	return nil
}

func optionKey(combo string, opts []string) string {
	s := slices.Clone(opts)
	slices.Sort(s)
	return combo + "|" + strings.Join(s, ",")
}

// addDefaults adds DHIS2's default category objects when absent.
func (m *Metadata) addDefaults() {
	has := func(n int, f func(int) string, id string) bool {
		for i := range n {
			if f(i) == id {
				return true
			}
		}
		return false
	}
	if !has(len(m.CategoryOptions), func(i int) string { return m.CategoryOptions[i].ID }, DefaultCategoryOptionUID) {
		m.CategoryOptions = append([]*CategoryOption{{ID: DefaultCategoryOptionUID, Code: "default", Name: "default"}}, m.CategoryOptions...)
	}
	if !has(len(m.Categories), func(i int) string { return m.Categories[i].ID }, DefaultCategoryUID) {
		m.Categories = append([]*Category{{ID: DefaultCategoryUID, Code: "default", Name: "default",
			DataDimensionType: "DISAGGREGATION", Options: []string{DefaultCategoryOptionUID}}}, m.Categories...)
	}
	if !has(len(m.CategoryCombos), func(i int) string { return m.CategoryCombos[i].ID }, DefaultCategoryComboUID) {
		m.CategoryCombos = append([]*CategoryCombo{{ID: DefaultCategoryComboUID, Code: "default", Name: "default",
			DataDimensionType: "DISAGGREGATION", Categories: []string{DefaultCategoryUID}}}, m.CategoryCombos...)
	}
	if !has(len(m.CategoryOptionCombos), func(i int) string { return m.CategoryOptionCombos[i].ID }, DefaultCategoryOptionComboUID) {
		m.CategoryOptionCombos = append([]*CategoryOptionCombo{{ID: DefaultCategoryOptionComboUID, Code: "default", Name: "default",
			CategoryCombo: DefaultCategoryComboUID, Options: []string{DefaultCategoryOptionUID}}}, m.CategoryOptionCombos...)
	}
}

// ---------------------------------------------------------------------------
// Lookups by id scheme

// find resolves an identifier written in scheme to a UID ("" if not found).
func (m *Metadata) find(k kind, s idScheme, value string) string {
	if value == "" {
		return ""
	}
	ix := m.idx
	switch s.kind {
	case schemeUID, "":
		if _, ok := ix.byKind[k][value]; ok {
			return value
		}
		return ""
	case schemeCode:
		return ix.byCode[k][value]
	case schemeName:
		return ix.byName[k][value]
	case schemeAttribute:
		return ix.byAttr[k][s.attr][value]
	default: // ID (internal numeric id) and UUID are not modelled
		return ""
	}
}

// ident returns the identifier of uid in scheme (the code for CODE ...).
func (m *Metadata) ident(k kind, s idScheme, uid string) string {
	i, ok := m.idx.byKind[k][uid]
	if !ok {
		return ""
	}
	switch s.kind {
	case schemeCode:
		return i.code
	case schemeName:
		return i.name
	case schemeAttribute:
		return i.attrs[s.attr]
	default:
		return uid
	}
}

func (m *Metadata) defaultCOC() string { return DefaultCategoryOptionComboUID }

// isDescendant reports whether ou lies in the subtree of any of roots.
func (m *Metadata) isDescendant(ou string, roots []string) bool {
	for _, a := range m.idx.ouAncestors[ou] {
		if slices.Contains(roots, a) {
			return true
		}
	}
	return false
}
