package adx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

// EncodeOptions tunes an Encoder.
type EncodeOptions struct {
	// IsText reports whether a data element, identified as the values write it, has a
	// non-numeric value type. Its values are written as DHIS2 exports them: value="0" and
	// the text in <annotation> (adx.md §5, §11); a comment then goes in a comment
	// attribute. Nil writes every value in the value attribute, which DHIS2 refuses for
	// text data elements ("DataElement expects text annotation").
	IsText func(dataElement string) bool

	// CommentAsAnnotation writes the comment of a numeric value as <annotation>, the place
	// IHE ADX gives it, instead of as a comment attribute. Leave it off when the receiver
	// is DHIS2: 2.38–2.42 ignore the annotation of a numeric data element and 2.43 takes it
	// as the value, while both store a comment attribute as the comment.
	CommentAsAnnotation bool

	// Exported, when not zero, is written as the root's exported attribute (RFC 3339, UTC),
	// which the ADX profile requires and DHIS2 neither writes nor reads.
	Exported time.Time
}

// Encoder writes canonical values as one ADX message, a group at a time, so that memory
// stays bounded by the largest group. Call Close to finish the message.
type Encoder struct {
	w       *bufio.Writer
	opts    EncodeOptions
	ws      etree.WriteSettings
	started bool
	closed  bool
	err     error // sticky write error

	lastID, lastISO string
}

// ErrClosed is returned by an Encoder used after Close.
var ErrClosed = errors.New("adx: encoder is closed")

// NewEncoder returns an Encoder that writes to w. Nothing is written until the first
// WriteGroup or Close.
func NewEncoder(w io.Writer, opts EncodeOptions) *Encoder {
	return &Encoder{
		w:    bufio.NewWriterSize(w, 32<<10),
		opts: opts,
		// Canonical escaping writes tabs, line ends and carriage returns in attribute values
		// and carriage returns in text as character references, so that they survive
		// attribute-value and line-end normalisation on the way back in.
		ws: etree.WriteSettings{CanonicalAttrVal: true, CanonicalText: true},
	}
}

// Encode writes batches as one ADX message.
func Encode(w io.Writer, opts EncodeOptions, batches ...*transform.Batch) error {
	e := NewEncoder(w, opts)
	for _, b := range batches {
		if err := e.WriteBatch(b); err != nil {
			return err
		}
	}
	return e.Close()
}

// WriteBatch writes the values of a batch with its data set and complete date.
func (e *Encoder) WriteBatch(b *transform.Batch) error {
	return e.WriteGroup(transform.Group{DataSet: b.DataSet, CompleteDate: b.CompleteDate, Schemes: b.Schemes}, b.Values)
}

// WriteGroup writes values as ADX groups carrying g's data set and complete date: one
// <group> for each run of consecutive values that share period, org unit and attribute
// option combo (or attribute categories), so the order of values is kept; sort them first
// for fewer, larger groups. Identifiers are written as they are: g.Schemes is not
// consulted, and the receiver must be told the schemes (for DHIS2, ADX's default is CODE).
//
// Every value is checked before anything is written, so a value that cannot be written —
// a period that is not a DHIS2 period id, a category that is not an XML name or clashes
// with an ADX attribute, a character XML cannot carry — fails the call without output.
func (e *Encoder) WriteGroup(g transform.Group, values []transform.DataValue) error {
	if e.closed {
		return ErrClosed
	}
	if e.err != nil {
		return e.err
	}
	if len(values) == 0 {
		return nil
	}
	if err := e.check(g, values); err != nil {
		return fmt.Errorf("adx: %w", err)
	}
	if err := e.begin(); err != nil {
		return err
	}
	for start := 0; start < len(values); {
		end := start + 1
		for end < len(values) && sameGroup(&values[start], &values[end]) {
			end++
		}
		el, err := e.group(g, values[start:end])
		if err != nil {
			return fmt.Errorf("adx: %w", err)
		}
		e.w.WriteString("    ")
		el.WriteTo(e.w, &e.ws)
		if _, err := e.w.WriteString("\n"); err != nil {
			e.err = fmt.Errorf("adx: writing: %w", err)
			return e.err
		}
		start = end
	}
	return nil
}

// Close ends the message and flushes it; it does not close the underlying writer.
func (e *Encoder) Close() error {
	if e.closed {
		return e.err
	}
	if e.err == nil {
		if err := e.begin(); err != nil {
			return err
		}
		e.w.WriteString("</adx>\n")
		if err := e.w.Flush(); err != nil {
			e.err = fmt.Errorf("adx: writing: %w", err)
		}
	}
	e.closed = true
	return e.err
}

func (e *Encoder) begin() error {
	if e.started {
		return nil
	}
	e.started = true
	e.w.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	root := etree.NewElement("adx")
	root.CreateAttr("xmlns", Namespace)
	if !e.opts.Exported.IsZero() {
		root.CreateAttr("exported", e.opts.Exported.UTC().Format(time.RFC3339))
	}
	// Write the start tag only: etree writes whole elements, so cut its empty-element form.
	var tag bufString
	root.WriteTo(&tag, &e.ws)
	e.w.WriteString(tag.String()[:len(tag.String())-2] + ">\n")
	return nil
}

func sameGroup(a, b *transform.DataValue) bool {
	return a.Period == b.Period && a.OrgUnit == b.OrgUnit && a.AttributeOptionCombo == b.AttributeOptionCombo &&
		slices.Equal(a.Attributes, b.Attributes)
}

// Attribute names ADX and DHIS2 give a meaning, which categories cannot take.
func reservedGroupAttr(name string) bool {
	switch name {
	case "orgUnit", "period", "dataSet", "completeDate", "attributeOptionCombo", "categoryOptionCombo",
		"comment", "storedBy", "followup", "deleted", "created", "lastUpdated", "dataElement", "value", "xmlns":
		return true
	}
	return false
}

func reservedValueAttr(name string) bool {
	switch name {
	case "dataElement", "value", "categoryOptionCombo", "comment", "storedBy", "followup", "deleted",
		"created", "lastUpdated", "orgUnit", "period", "attributeOptionCombo", "dataSet", "completeDate", "xmlns":
		return true
	}
	return false
}

// check validates everything WriteGroup will write.
func (e *Encoder) check(g transform.Group, values []transform.DataValue) error {
	if err := checkText("dataSet", g.DataSet); err != nil {
		return err
	}
	if err := checkText("completeDate", g.CompleteDate); err != nil {
		return err
	}
	for i := range values {
		v := &values[i]
		if err := e.checkValue(v); err != nil {
			return fmt.Errorf("value %d (index %d): %w", i, v.Index, err)
		}
	}
	return nil
}

func (e *Encoder) checkValue(v *transform.DataValue) error {
	switch {
	case v.DataElement == "":
		return errors.New("no data element")
	case v.OrgUnit == "":
		return errors.New("no org unit")
	}
	if _, err := e.iso(v.Period); err != nil {
		return err
	}
	for _, f := range [...]struct{ name, s string }{
		{"dataElement", v.DataElement}, {"orgUnit", v.OrgUnit}, {"categoryOptionCombo", v.CategoryOptionCombo},
		{"attributeOptionCombo", v.AttributeOptionCombo}, {"value", v.Value}, {"comment", v.Comment},
		{"storedBy", v.StoredBy},
	} {
		if err := checkText(f.name, f.s); err != nil {
			return err
		}
	}
	if err := checkCategories(v.Attributes, reservedGroupAttr); err != nil {
		return fmt.Errorf("attribute categories: %w", err)
	}
	if err := checkCategories(v.Categories, reservedValueAttr); err != nil {
		return fmt.Errorf("categories: %w", err)
	}
	return nil
}

func checkCategories(cats []transform.CategoryOption, reserved func(string) bool) error {
	for i, c := range cats {
		if !isNCName(c.Category) {
			return fmt.Errorf("category %q is not an XML name without colon, so it cannot be an ADX attribute", c.Category)
		}
		if reserved(c.Category) {
			return fmt.Errorf("category %q clashes with the ADX attribute of that name", c.Category)
		}
		if c.Option == "" {
			return fmt.Errorf("category %q has no option", c.Category)
		}
		if err := checkText(c.Category, c.Option); err != nil {
			return err
		}
		for _, d := range cats[:i] {
			if d.Category == c.Category {
				return fmt.Errorf("category %q appears twice", c.Category)
			}
		}
	}
	return nil
}

// checkText reports a string that XML cannot carry.
func checkText(field, s string) error {
	if bad := validText([]byte(s)); bad >= 0 {
		return fmt.Errorf("%s %q: %s is not allowed in XML", field, s, describe([]byte(s[bad:])))
	}
	return nil
}

// isNCName reports whether s is an XML name without colons.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r < utf8.RuneSelf {
			f := charClass[byte(r)]
			if r == ':' || i == 0 && f&cNameStart == 0 || f&cName == 0 {
				return false
			}
			continue
		}
		if i == 0 && !isNameStart(r) || !isNameChar(r) {
			return false
		}
	}
	return true
}

// iso converts a DHIS2 period id to an ADX period, remembering the last one.
func (e *Encoder) iso(id string) (string, error) {
	if id == e.lastID && id != "" {
		return e.lastISO, nil
	}
	p, err := period.Parse(id)
	if err != nil {
		return "", err
	}
	e.lastID, e.lastISO = id, p.ISO()
	return e.lastISO, nil
}

const (
	indentValue      = "\n        "
	indentAnnotation = "\n            "
	indentGroupEnd   = "\n    "
)

// group builds the element for a run of values that share the group attributes.
func (e *Encoder) group(g transform.Group, values []transform.DataValue) (*etree.Element, error) {
	first := &values[0]
	iso, err := e.iso(first.Period)
	if err != nil {
		return nil, err
	}
	el := etree.NewElement("group")
	if g.DataSet != "" {
		el.CreateAttr("dataSet", g.DataSet)
	}
	el.CreateAttr("period", iso)
	el.CreateAttr("orgUnit", first.OrgUnit)
	if first.AttributeOptionCombo != "" {
		el.CreateAttr("attributeOptionCombo", first.AttributeOptionCombo)
	}
	for _, a := range first.Attributes {
		el.CreateAttr(a.Category, a.Option)
	}
	if g.CompleteDate != "" {
		el.CreateAttr("completeDate", g.CompleteDate)
	}
	for i := range values {
		v := &values[i]
		el.CreateText(indentValue)
		dv := el.CreateElement("dataValue")
		dv.CreateAttr("dataElement", v.DataElement)
		if v.CategoryOptionCombo != "" {
			dv.CreateAttr("categoryOptionCombo", v.CategoryOptionCombo)
		}
		for _, c := range v.Categories {
			dv.CreateAttr(c.Category, c.Option)
		}
		text := e.opts.IsText != nil && e.opts.IsText(v.DataElement)
		annotation, hasAnn := "", false
		switch {
		case text:
			dv.CreateAttr("value", "0")
			annotation, hasAnn = v.Value, true
		default:
			dv.CreateAttr("value", v.Value)
		}
		if v.Comment != "" {
			if !text && e.opts.CommentAsAnnotation {
				annotation, hasAnn = v.Comment, true
			} else {
				dv.CreateAttr("comment", v.Comment)
			}
		}
		if v.FollowUp {
			dv.CreateAttr("followup", "true")
		}
		if v.Deleted {
			dv.CreateAttr("deleted", "true")
		}
		if v.StoredBy != "" {
			dv.CreateAttr("storedBy", v.StoredBy)
		}
		if hasAnn {
			dv.CreateText(indentAnnotation)
			ann := dv.CreateElement("annotation")
			if annotation != "" {
				ann.CreateText(annotation)
			}
			dv.CreateText(indentValue)
		}
	}
	el.CreateText(indentGroupEnd)
	return el, nil
}

// bufString is a minimal etree.Writer over a byte slice.
type bufString struct{ b []byte }

func (w *bufString) Write(p []byte) (int, error)       { w.b = append(w.b, p...); return len(p), nil }
func (w *bufString) WriteString(s string) (int, error) { w.b = append(w.b, s...); return len(s), nil }
func (w *bufString) WriteByte(c byte) error            { w.b = append(w.b, c); return nil }
func (w *bufString) String() string                    { return string(w.b) }
