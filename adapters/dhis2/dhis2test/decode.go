package dhis2test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// rawValue is one data value as it arrived, identifiers still in the
// payload's id schemes (spec dhis2.md §4.1, §4.3, §4.4).
type rawValue struct {
	index       int
	dataElement string
	period      string
	orgUnit     string
	coc         string
	aoc         string
	value       *string
	comment     *string
	storedBy    string
	followup    *bool
	deleted     *bool
	created     string
	lastUpdated string
	// cocUID/aocUID are set when the combo was already resolved (ADX
	// category attributes); they bypass the id scheme lookup.
	cocUID string
	aocUID string
	// dataSetUID is the data set of the ADX group the value came from (used
	// by the 2.43 pipeline when the payload has no header data set).
	dataSetUID string
}

// deletionScope is the 2.43+ "deletion" block (spec dhis2.md §5).
type deletionScope struct {
	OrgUnits []string `json:"orgUnits"`
	Periods  []string `json:"periods"`
	Elements []struct {
		DataElement          string `json:"dataElement"`
		CategoryOptionCombo  string `json:"categoryOptionCombo"`
		AttributeOptionCombo string `json:"attributeOptionCombo"`
	} `json:"elements"`
}

// payload is a decoded data value set.
type payload struct {
	format       string // json, xml, csv, adx
	dataSet      string
	completeDate string
	period       string
	orgUnit      string
	aoc          string
	aocOptions   []string // attributeCategoryOptions
	schemes      schemeSet
	dryRun       *bool
	strategy     string
	deletion     *deletionScope
	values       []rawValue
	// informal conflicts raised while translating ADX (value level)
	adxConflicts []*conflict
}

// errNoContent mirrors Jackson's message for an empty JSON body (the e2e
// test of conformance README §9 looks for it).
var errNoContent = errors.New("No content to map due to end-of-input")

// decompress detects gzip and zip bodies by their magic bytes, like DHIS2's
// StreamUtils.wrapAndCheckCompressionFormat (spec dhis2.md §1.1).
func decompress(b []byte) ([]byte, error) {
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return out, nil
	case len(b) >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4:
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("zip: %w", err)
		}
		if len(zr.File) == 0 {
			return nil, nil
		}
		f, err := zr.File[0].Open()
		if err != nil {
			return nil, fmt.Errorf("zip: %w", err)
		}
		defer f.Close()
		out, err := io.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("zip: %w", err)
		}
		return out, nil
	}
	return b, nil
}

func strPtr(s string) *string { return &s }

// flexString accepts a JSON string, number or boolean ("value" may be a JSON
// number, spec dhis2.md §4.1 and §13 item 6).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	switch string(b) {
	case "true", "false":
		*f = flexString(b)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("cannot read %s as a string", b)
	}
	*f = flexString(n.String())
	return nil
}

// flexBool accepts true/false or their string forms.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "true":
		*f = true
	case "false", "":
		*f = false
	default:
		return fmt.Errorf("cannot read %s as a boolean", b)
	}
	return nil
}

type jsonValue struct {
	DataElement          string      `json:"dataElement"`
	Period               string      `json:"period"`
	OrgUnit              string      `json:"orgUnit"`
	CategoryOptionCombo  string      `json:"categoryOptionCombo"`
	AttributeOptionCombo string      `json:"attributeOptionCombo"`
	Value                *flexString `json:"value"`
	Comment              *flexString `json:"comment"`
	StoredBy             string      `json:"storedBy"`
	Followup             *flexBool   `json:"followup"`
	FollowUp             *flexBool   `json:"followUp"`
	Deleted              *flexBool   `json:"deleted"`
	Created              string      `json:"created"`
	LastUpdated          string      `json:"lastUpdated"`
}

type jsonSet struct {
	DataSet                      string         `json:"dataSet"`
	CompleteDate                 *flexString    `json:"completeDate"`
	Period                       string         `json:"period"`
	OrgUnit                      string         `json:"orgUnit"`
	AttributeOptionCombo         string         `json:"attributeOptionCombo"`
	AttributeCategoryOptions     []string       `json:"attributeCategoryOptions"`
	IDScheme                     string         `json:"idScheme"`
	DataElementIDScheme          string         `json:"dataElementIdScheme"`
	OrgUnitIDScheme              string         `json:"orgUnitIdScheme"`
	CategoryOptionComboIDScheme  string         `json:"categoryOptionComboIdScheme"`
	AttributeOptionComboIDScheme string         `json:"attributeOptionComboIdScheme"`
	DataSetIDScheme              string         `json:"dataSetIdScheme"`
	CategoryIDScheme             string         `json:"categoryIdScheme"`
	CategoryOptionIDScheme       string         `json:"categoryOptionIdScheme"`
	DryRun                       *flexBool      `json:"dryRun"`
	Strategy                     string         `json:"strategy"`
	Deletion                     *deletionScope `json:"deletion"`
	DataValues                   []jsonValue    `json:"dataValues"`
}

func decodeJSON(b []byte, v Version) (*payload, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errNoContent
	}
	var s jsonSet
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("Unable to parse JSON: %w", err)
	}
	p := &payload{format: "json", dataSet: s.DataSet, period: s.Period, orgUnit: s.OrgUnit,
		aoc: s.AttributeOptionCombo, aocOptions: s.AttributeCategoryOptions, strategy: s.Strategy}
	if s.CompleteDate != nil {
		p.completeDate = string(*s.CompleteDate)
	}
	if s.DryRun != nil {
		d := bool(*s.DryRun)
		p.dryRun = &d
	}
	p.schemes = schemeSet{}
	setScheme(&p.schemes.id, s.IDScheme)
	setScheme(&p.schemes.dataElement, s.DataElementIDScheme)
	setScheme(&p.schemes.orgUnit, s.OrgUnitIDScheme)
	setScheme(&p.schemes.coc, s.CategoryOptionComboIDScheme)
	setScheme(&p.schemes.dataSet, s.DataSetIDScheme)
	if v.usesNewPipeline() { // only the 2.43+ reader knows these (§1.3)
		setScheme(&p.schemes.aoc, s.AttributeOptionComboIDScheme)
		setScheme(&p.schemes.category, s.CategoryIDScheme)
		setScheme(&p.schemes.categoryOption, s.CategoryOptionIDScheme)
		p.deletion = s.Deletion
	}
	p.values = make([]rawValue, len(s.DataValues))
	for i, d := range s.DataValues {
		rv := rawValue{index: i, dataElement: d.DataElement, period: d.Period, orgUnit: d.OrgUnit,
			coc: d.CategoryOptionCombo, aoc: d.AttributeOptionCombo, storedBy: d.StoredBy,
			created: d.Created, lastUpdated: d.LastUpdated}
		if d.Value != nil {
			rv.value = strPtr(string(*d.Value))
		}
		if d.Comment != nil {
			rv.comment = strPtr(string(*d.Comment))
		}
		fu := d.Followup
		if d.FollowUp != nil {
			fu = d.FollowUp
		}
		if fu != nil {
			b := bool(*fu)
			rv.followup = &b
		}
		if d.Deleted != nil {
			b := bool(*d.Deleted)
			rv.deleted = &b
		}
		p.values[i] = rv
	}
	return p, nil
}

func setScheme(dst *idScheme, s string) {
	if sc, ok := parseIDScheme(s); ok {
		*dst = sc
	}
}

func parseBoolAttr(s string) *bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		b := true
		return &b
	case "false":
		b := false
		return &b
	}
	return nil
}

// decodeXML reads a DXF2 <dataValueSet> (spec dhis2.md §4.3). Header
// attributes, then every <dataValue> element's attributes (or simple child
// elements of the same names).
func decodeXML(b []byte, v Version) (*payload, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("Unexpected EOF in prolog")
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	p := &payload{format: "xml"}
	root := false
	var cur *rawValue
	var field string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case !root:
				if t.Name.Local != "dataValueSet" {
					return nil, fmt.Errorf("XML: expected root element dataValueSet, found %s", t.Name.Local)
				}
				root = true
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "dataSet":
						p.dataSet = a.Value
					case "completeDate":
						p.completeDate = a.Value
					case "period":
						p.period = a.Value
					case "orgUnit":
						p.orgUnit = a.Value
					case "attributeOptionCombo":
						p.aoc = a.Value
					case "idScheme":
						setScheme(&p.schemes.id, a.Value)
					case "dataElementIdScheme":
						setScheme(&p.schemes.dataElement, a.Value)
					case "orgUnitIdScheme":
						setScheme(&p.schemes.orgUnit, a.Value)
					case "categoryOptionComboIdScheme":
						setScheme(&p.schemes.coc, a.Value)
					case "dataSetIdScheme":
						setScheme(&p.schemes.dataSet, a.Value)
					case "attributeOptionComboIdScheme":
						if v.usesNewPipeline() {
							setScheme(&p.schemes.aoc, a.Value)
						}
					case "dryRun":
						p.dryRun = parseBoolAttr(a.Value)
					case "strategy", "importStrategy":
						p.strategy = a.Value
					}
				}
			case t.Name.Local == "dataValue":
				p.values = append(p.values, rawValue{index: len(p.values)})
				cur = &p.values[len(p.values)-1]
				for _, a := range t.Attr {
					setRawField(cur, a.Name.Local, a.Value)
				}
			case cur != nil:
				field = t.Name.Local
			}
		case xml.CharData:
			if cur != nil && field != "" {
				setRawField(cur, field, strings.TrimSpace(string(t)))
			}
		case xml.EndElement:
			if t.Name.Local == "dataValue" {
				cur = nil
			}
			field = ""
		}
	}
	if !root {
		return nil, errors.New("XML: no dataValueSet element")
	}
	return p, nil
}

func setRawField(rv *rawValue, name, val string) {
	switch name {
	case "dataElement":
		rv.dataElement = val
	case "period":
		rv.period = val
	case "orgUnit":
		rv.orgUnit = val
	case "categoryOptionCombo":
		rv.coc = val
	case "attributeOptionCombo":
		rv.aoc = val
	case "value":
		rv.value = strPtr(val)
	case "comment":
		rv.comment = strPtr(val)
	case "storedBy":
		rv.storedBy = val
	case "followup", "followUp":
		rv.followup = parseBoolAttr(val)
	case "deleted":
		rv.deleted = parseBoolAttr(val)
	case "created":
		rv.created = val
	case "lastUpdated", "timestamp":
		rv.lastUpdated = val
	}
}

// errCSVNoHeader is the 2.43+ failure for firstRowIsHeader=false (§1.2).
var errCSVNoHeader = errors.New("CSV without header row is no longer supported.")

var csvColumns = []string{"dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo",
	"value", "storedby", "lastupdated", "comment", "followup", "deleted"}

// decodeCSV reads CSV (spec dhis2.md §4.4): positional columns with the
// first row skipped (≤ 2.42), or columns matched by header name (2.43+).
func decodeCSV(b []byte, o importOptions, v Version) (*payload, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.TrimLeadingSpace = true
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("CSV: %w", err)
	}
	p := &payload{format: "csv", dataSet: o.dataSet}
	col := map[string]int{}
	for i, c := range csvColumns {
		col[c] = i
	}
	if v.usesNewPipeline() {
		if !o.firstRowHeader {
			return nil, errCSVNoHeader
		}
		col = map[string]int{}
		if len(rows) > 0 {
			for i, h := range rows[0] {
				h = strings.ToLower(strings.TrimSpace(h))
				if h == "timestamp" {
					h = "lastupdated"
				}
				if h == "catoptcombo" {
					h = "categoryoptioncombo"
				}
				if h == "attroptcombo" {
					h = "attributeoptioncombo"
				}
				col[h] = i
			}
		}
	}
	if o.firstRowHeader && len(rows) > 0 {
		rows = rows[1:]
	}
	cell := func(row []string, name string) (string, bool) {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return "", false
		}
		return row[i], true
	}
	for _, row := range rows {
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		rv := rawValue{index: len(p.values)}
		rv.dataElement, _ = cell(row, "dataelement")
		rv.period, _ = cell(row, "period")
		rv.orgUnit, _ = cell(row, "orgunit")
		rv.coc, _ = cell(row, "categoryoptioncombo")
		rv.aoc, _ = cell(row, "attributeoptioncombo")
		if s, ok := cell(row, "value"); ok && s != "" {
			rv.value = strPtr(s)
		}
		rv.storedBy, _ = cell(row, "storedby")
		rv.lastUpdated, _ = cell(row, "lastupdated")
		if s, ok := cell(row, "comment"); ok && s != "" {
			rv.comment = strPtr(s)
		}
		if s, ok := cell(row, "followup"); ok {
			rv.followup = parseBoolAttr(s)
		}
		if s, ok := cell(row, "deleted"); ok {
			rv.deleted = parseBoolAttr(s)
		}
		p.values = append(p.values, rv)
	}
	return p, nil
}
