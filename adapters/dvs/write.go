package dvs

import (
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/tally-hmis/tally/transform"
)

// WriteJSON writes b as the body of a DHIS2 POST /api/dataValueSets request: a data value
// set with the batch's data set and id schemes in the header (payload schemes override the
// query string in DHIS2) and every value in full. It writes in chunks as it goes, so the
// body is never held whole.
//
// What it writes, and why:
//   - The header comes first, so that streaming readers (Tally's own DecodeJSON among
//     them) see it before the values.
//   - CompleteDate is not written. DHIS2 can only register completion from a header that
//     also has a period and org unit; a batch has neither, so DHIS2 would answer with a
//     conflict. Completion is registered separately (/api/completeDataSetRegistrations).
//   - Empty fields are left out; DHIS2 reads a missing combo as its default.
//   - A follow-up flag is written both as "followup" (read by DHIS2 up to 2.42) and
//     "followUp" (2.43+); each version ignores the other.
//   - Combos still given as category → option pairs (not yet mapped) are written as an
//     object, DHIS2 2.43's form; older versions cannot read it, so map combos first.
//   - Strings are escaped per RFC 8259; invalid UTF-8 becomes U+FFFD.
func WriteJSON(w io.Writer, b *transform.Batch) error {
	_, err := writeJSON(w, b, nil, nil)
	return err
}

// WriteJSONBuffer writes what WriteJSON writes, in chunks built in buf, and returns buf (a
// chunk's worth of capacity or more) for the caller to reuse: a caller writing many bodies
// keeps a few buffers instead of allocating one per body. w must not keep what it is given,
// as io.Writer says.
func WriteJSONBuffer(w io.Writer, b *transform.Batch, buf []byte) ([]byte, error) {
	return writeJSON(w, b, nil, buf)
}

// Deletion is DHIS2 2.43's deletion scope (spec dhis2.md §5): before the payload's values
// are upserted, every stored value in OrgUnits × Periods × Elements is deleted. An element
// without a category option combo (or attribute option combo) covers every combo, so a
// scope that must remove exactly some keys names one org unit and one period and narrows
// every element by both combos. Identifiers are written in the payload's id schemes.
type Deletion struct {
	OrgUnits []string
	Periods  []string
	Elements []DeletionElement
}

// DeletionElement is a data element of a deletion scope, optionally narrowed by combos.
type DeletionElement struct {
	DataElement          string
	CategoryOptionCombo  string
	AttributeOptionCombo string
}

// WriteDeletionJSON writes the body of a DHIS2 2.43+ POST /api/dataValueSets request that
// carries the deletion scope d: the header of b (data set and id schemes, as WriteJSON
// writes them, which 2.43 also applies to the scope), then "deletion", then b's values
// (none, for a pure removal: {"deletion":{...},"dataValues":[]}).
//
// DHIS2 before 2.43 does not know the field and ignores it: such a request removes
// nothing there. Send deletions to older versions as values with deleted: true.
func WriteDeletionJSON(w io.Writer, b *transform.Batch, d *Deletion) error {
	_, err := writeJSON(w, b, d, nil)
	return err
}

func writeJSON(w io.Writer, b *transform.Batch, d *Deletion, buf []byte) ([]byte, error) {
	if cap(buf) < writeChunk+1024 {
		buf = make([]byte, 0, writeChunk+1024)
	}
	buf = appendHeader(buf[:0], b, d)
	for i := range b.Values {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendValue(buf, &b.Values[i])
		if len(buf) >= writeChunk {
			if _, err := w.Write(buf); err != nil {
				return buf[:0], fmt.Errorf("dvs: writing JSON: %w", err)
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, "]}"...)
	if _, err := w.Write(buf); err != nil {
		return buf[:0], fmt.Errorf("dvs: writing JSON: %w", err)
	}
	return buf[:0], nil
}

const writeChunk = 32 << 10

// AppendJSON appends what WriteJSON writes to dst and returns the extended slice, for
// callers that reuse buffers.
func AppendJSON(dst []byte, b *transform.Batch) []byte {
	dst = appendHeader(dst, b, nil)
	for i := range b.Values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendValue(dst, &b.Values[i])
	}
	return append(dst, "]}"...)
}

func appendHeader(dst []byte, b *transform.Batch, d *Deletion) []byte {
	dst = append(dst, '{')
	sep := false
	member := func(name, value string) {
		if value == "" {
			return
		}
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
		dst = appendString(dst, value)
	}
	member("dataSet", b.DataSet)
	s := b.Schemes
	member("idScheme", string(s.IDScheme))
	member("dataElementIdScheme", string(s.DataElement))
	member("orgUnitIdScheme", string(s.OrgUnit))
	member("categoryOptionComboIdScheme", string(s.CategoryOptionCombo))
	member("attributeOptionComboIdScheme", string(s.AttributeOptionCombo))
	member("dataSetIdScheme", string(s.DataSet))
	member("categoryIdScheme", string(s.Category))
	member("categoryOptionIdScheme", string(s.CategoryOption))
	if sep {
		dst = append(dst, ',')
	}
	if d != nil {
		dst = appendDeletion(dst, d)
		dst = append(dst, ',')
	}
	return append(dst, `"dataValues":[`...)
}

func appendDeletion(dst []byte, d *Deletion) []byte {
	list := func(name string, ids []string) {
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":[`...)
		for i, id := range ids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `"deletion":{`...)
	list("orgUnits", d.OrgUnits)
	dst = append(dst, ',')
	list("periods", d.Periods)
	dst = append(dst, `,"elements":[`...)
	for i, e := range d.Elements {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"dataElement":`...)
		dst = appendString(dst, e.DataElement)
		if e.CategoryOptionCombo != "" {
			dst = append(dst, `,"categoryOptionCombo":`...)
			dst = appendString(dst, e.CategoryOptionCombo)
		}
		if e.AttributeOptionCombo != "" {
			dst = append(dst, `,"attributeOptionCombo":`...)
			dst = appendString(dst, e.AttributeOptionCombo)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendValue(dst []byte, v *transform.DataValue) []byte {
	dst = append(dst, `{"dataElement":`...)
	dst = appendString(dst, v.DataElement)
	dst = append(dst, `,"period":`...)
	dst = appendString(dst, v.Period)
	dst = append(dst, `,"orgUnit":`...)
	dst = appendString(dst, v.OrgUnit)
	dst = appendCombo(dst, `,"categoryOptionCombo":`, v.CategoryOptionCombo, v.Categories)
	dst = appendCombo(dst, `,"attributeOptionCombo":`, v.AttributeOptionCombo, v.Attributes)
	if v.Value != "" {
		dst = append(dst, `,"value":`...)
		dst = appendString(dst, v.Value)
	}
	if v.Comment != "" {
		dst = append(dst, `,"comment":`...)
		dst = appendString(dst, v.Comment)
	}
	if v.StoredBy != "" {
		dst = append(dst, `,"storedBy":`...)
		dst = appendString(dst, v.StoredBy)
	}
	if v.FollowUp {
		dst = append(dst, `,"followup":true,"followUp":true`...)
	}
	if v.Deleted {
		dst = append(dst, `,"deleted":true`...)
	}
	return append(dst, '}')
}

func appendCombo(dst []byte, member, id string, pairs []transform.CategoryOption) []byte {
	switch {
	case id != "":
		dst = append(dst, member...)
		return appendString(dst, id)
	case len(pairs) > 0:
		dst = append(dst, member...)
		dst = append(dst, '{')
		for i, p := range pairs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, p.Category)
			dst = append(dst, ':')
			dst = appendString(dst, p.Option)
		}
		return append(dst, '}')
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if strPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
