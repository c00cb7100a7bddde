package dhis2test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ADX import (spec adx.md §3–§10). ADX is translated into the same payload
// as a DXF2 data value set and then runs through the normal importer, as
// DHIS2 2.38–2.42 does (adx.md §10).

const adxNamespace = "urn:ihe:qrph:adx:2015"

type adxAttr struct{ name, value string }

type adxValue struct {
	attrs      []adxAttr
	annotation *string
}

type adxGroup struct {
	attrs  []adxAttr
	values []adxValue
}

func attrOf(as []adxAttr, name string) (string, bool) {
	for _, a := range as {
		if a.name == name {
			return a.value, true
		}
	}
	return "", false
}

// parseADX reads the ADX envelope into groups.
func parseADX(b []byte) ([]adxGroup, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("Premature end of file.")
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var groups []adxGroup
	root := false
	var curVal *adxValue
	inAnnotation := false
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ADX XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case !root:
				if t.Name.Local != "adx" {
					return nil, fmt.Errorf("ADX: root element must be adx, found %s", t.Name.Local)
				}
				root = true
			case t.Name.Local == "group":
				groups = append(groups, adxGroup{attrs: plainAttrs(t.Attr)})
			case t.Name.Local == "dataValue" && len(groups) > 0:
				g := &groups[len(groups)-1]
				g.values = append(g.values, adxValue{attrs: plainAttrs(t.Attr)})
				curVal = &g.values[len(g.values)-1]
			case t.Name.Local == "annotation" && curVal != nil:
				inAnnotation = true
				text.Reset()
			}
		case xml.CharData:
			if inAnnotation {
				text.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "annotation":
				if curVal != nil && inAnnotation {
					s := text.String()
					curVal.annotation = &s
				}
				inAnnotation = false
			case "dataValue":
				curVal = nil
			}
		}
	}
	if !root {
		return nil, errors.New("ADX: no adx element")
	}
	return groups, nil
}

// plainAttrs drops namespace declarations and namespaced attributes.
func plainAttrs(as []xml.Attr) []adxAttr {
	out := make([]adxAttr, 0, len(as))
	for _, a := range as {
		if a.Name.Space != "" || a.Name.Local == "xmlns" {
			continue
		}
		out = append(out, adxAttr{a.Name.Local, a.Value})
	}
	return out
}

// adxGroupError is a group-level AdxException: it replaces the whole summary.
type adxGroupError struct {
	group int
	msg   string
}

func (e *adxGroupError) Error() string { return e.msg }

var numericTypes = map[string]bool{"NUMBER": true, "INTEGER": true, "INTEGER_POSITIVE": true,
	"INTEGER_NEGATIVE": true, "INTEGER_ZERO_OR_POSITIVE": true, "PERCENTAGE": true, "UNIT_INTERVAL": true}

// reservedGroupAttrs are consumed by the translation (not copied onto values).
var reservedGroupAttrs = map[string]bool{"orgUnit": true, "period": true, "dataSet": true,
	"attributeOptionCombo": true, "completeDate": true}

var dxfValueAttrs = map[string]bool{"comment": true, "storedBy": true, "followup": true, "followUp": true, "deleted": true}

// translateADX converts ADX groups into a payload. A group-level problem is
// returned as *adxGroupError; value-level problems become informal conflicts
// in payload.adxConflicts (adx.md §9).
func translateADX(groups []adxGroup, m *Metadata, sch effectiveSchemes, v Version) (*payload, error) {
	p := &payload{format: "adx"}
	newPipeline := v.usesNewPipeline()
	for gi, g := range groups {
		ou, ok := attrOf(g.attrs, "orgUnit")
		if !ok {
			return nil, &adxGroupError{gi, "orgUnit attribute is required on 'group'"}
		}
		pe, ok := attrOf(g.attrs, "period")
		if !ok {
			return nil, &adxGroupError{gi, "period attribute is required on 'group'"}
		}
		peID, err := adxPeriodToID(pe, v)
		if err != nil {
			return nil, &adxGroupError{gi, err.Error()}
		}
		var ds *DataSet
		if dsRef, ok := attrOf(g.attrs, "dataSet"); ok {
			uid := m.find(kindDataSet, sch.dataSet, dsRef)
			if uid == "" {
				return nil, &adxGroupError{gi, fmt.Sprintf("No data set matching %s '%s'", sch.dataSet, dsRef)}
			}
			ds = m.idx.ds[uid]
		}
		var aocRaw, aocUID string
		consumed := map[string]bool{}
		if a, ok := attrOf(g.attrs, "attributeOptionCombo"); ok {
			aocRaw = a
		} else if ds != nil || newPipeline {
			combo := DefaultCategoryComboUID
			if ds != nil {
				combo = ds.CategoryCombo
			}
			uid, used, err := comboFromAttrs(m, combo, g.attrs, sch, newPipeline)
			if err != nil {
				return nil, &adxGroupError{gi, err.Error()}
			}
			aocUID = uid
			for _, u := range used {
				consumed[u] = true
			}
		}
		for _, dv := range g.values {
			rv := rawValue{period: peID, orgUnit: ou, aoc: aocRaw, aocUID: aocUID}
			if ds != nil {
				rv.dataSetUID = ds.ID
			}
			// group attributes copied onto each value (≤ 2.42)
			for _, a := range g.attrs {
				if !reservedGroupAttrs[a.name] && !consumed[a.name] && dxfValueAttrs[a.name] {
					setRawField(&rv, a.name, a.value)
				}
			}
			deRef, ok := attrOf(dv.attrs, "dataElement")
			if !ok {
				p.adxConflicts = append(p.adxConflicts, adxConflict("ADX Error", "dataElement attribute is required on 'dataValue'"))
				continue
			}
			val, hasVal := attrOf(dv.attrs, "value")
			if !hasVal && !newPipeline {
				p.adxConflicts = append(p.adxConflicts, adxConflict("ADX Error", "value attribute is required on 'dataValue'"))
				continue
			}
			rv.dataElement = deRef
			deUID := m.find(kindDataElement, sch.dataElement, deRef)
			var de *DataElement
			if deUID != "" {
				de = m.idx.de[deUID]
			} else if !newPipeline {
				p.adxConflicts = append(p.adxConflicts, adxConflict("ADX Error",
					fmt.Sprintf("No data element matching %s '%s'", sch.dataElement, deRef)))
				continue
			}
			switch {
			case newPipeline && dv.annotation != nil:
				rv.value = strPtr(*dv.annotation)
			case de != nil && !numericTypes[de.ValueType]:
				if dv.annotation == nil {
					p.adxConflicts = append(p.adxConflicts, adxConflict(deRef, "DataElement expects text annotation"))
					continue
				}
				rv.value = strPtr(*dv.annotation)
			case hasVal:
				rv.value = strPtr(val)
			}
			for _, a := range dv.attrs {
				if dxfValueAttrs[a.name] {
					setRawField(&rv, a.name, a.value)
				}
			}
			if c, ok := attrOf(dv.attrs, "categoryOptionCombo"); ok {
				rv.coc = c
			} else if de != nil && (de.CategoryCombo != DefaultCategoryComboUID || newPipeline) {
				uid, _, err := comboFromAttrs(m, de.CategoryCombo, dv.attrs, sch, newPipeline)
				if err != nil {
					p.adxConflicts = append(p.adxConflicts, adxConflict("ADX Error", err.Error()))
					continue
				}
				rv.cocUID = uid
			}
			rv.index = len(p.values)
			p.values = append(p.values, rv)
		}
	}
	return p, nil
}

func adxConflict(object, msg string) *conflict {
	return &conflict{object: object, message: msg}
}

// comboFromAttrs resolves the option combo of combo from category attributes
// (adx.md §7). It returns the COC UID ("" for the default combo) and the
// attribute names it consumed. With lenient (2.43+) unknown attributes are
// ignored and a missing category leaves the combo unresolved.
func comboFromAttrs(m *Metadata, combo string, attrs []adxAttr, sch effectiveSchemes, lenient bool) (string, []string, error) {
	cc := m.idx.cc[combo]
	if cc == nil || combo == DefaultCategoryComboUID {
		return "", nil, nil
	}
	var opts, used []string
	given := map[string]string{}
	for _, catUID := range cc.Categories {
		cat := m.idx.cat[catUID]
		name := m.ident(kindCategory, sch.category, catUID)
		if name == "" || !isXMLName(name) {
			if lenient {
				return "", nil, nil
			}
			return "", nil, fmt.Errorf("Category %s for %s is missing or invalid: %s", sch.category, cat.Name, name)
		}
		val, ok := attrOf(attrs, name)
		if !ok {
			if lenient {
				return "", nil, nil
			}
			return "", nil, fmt.Errorf("Category combo %s must have %s", cc.Name, cat.Name)
		}
		used = append(used, name)
		given[name] = val
		opt := m.find(kindCategoryOption, sch.categoryOption, val)
		opts = append(opts, opt)
	}
	coc, ok := m.idx.cocByOpts[optionKey(combo, opts)]
	if !ok {
		return "", used, fmt.Errorf("Invalid attributes: %s", formatAttrMap(given))
	}
	return coc, used, nil
}

func formatAttrMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func isXMLName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || r == ':' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || r > 0x7f
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '-' && r != '.' {
			return false
		}
	}
	return true
}
