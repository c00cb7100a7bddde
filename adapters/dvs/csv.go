package dvs

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/tally-hmis/tally/transform"
)

// CSVOptions tunes DecodeCSV.
type CSVOptions struct {
	// FirstRowIsHeader mirrors DHIS2's firstRowIsHeader parameter; nil means true, DHIS2's
	// default. Write new(false) for a file without a header row.
	FirstRowIsHeader *bool
	// DataSet is the data set of the whole file (DHIS2's dataSet parameter for CSV).
	DataSet string
	// Analytics drops the "[aggregated]" comment of DHIS2 analytics output, as for JSON.
	Analytics bool
	// MaxTokenBytes bounds one record; 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int
}

// The CSV columns, in DHIS2's positional order (CsvDataValueSetReader, 2.38–2.42; 2.43
// appends deleted, which 2.42 also reads at index 10).
const (
	colDataElement = iota
	colPeriod
	colOrgUnit
	colCOC
	colAOC
	colValue
	colStoredBy
	colLastUpdated
	colComment
	colFollowUp
	colDeleted
	nColumns
	colIgnored = -1
)

// csvColumnNames is a read-only table of the columns' names.
var csvColumnNames = [nColumns]string{"dataelement", "period", "orgunit", "categoryoptioncombo",
	"attributeoptioncombo", "value", "storedby", "lastupdated", "comment", "followup", "deleted"}

// csvColumn recognises a header cell, written as DHIS2 exports it (dataelement), as its
// analytics output does (data_element, organisation_unit) or with other spacing and case.
func csvColumn(name string) (int, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	switch b.String() {
	case "dataelement", "de":
		return colDataElement, true
	case "period", "pe":
		return colPeriod, true
	case "orgunit", "organisationunit", "organizationunit", "ou":
		return colOrgUnit, true
	case "categoryoptioncombo", "catoptcombo", "coc":
		return colCOC, true
	case "attributeoptioncombo", "attroptcombo", "aoc":
		return colAOC, true
	case "value":
		return colValue, true
	case "storedby":
		return colStoredBy, true
	case "lastupdated", "timestamp":
		return colLastUpdated, true
	case "comment":
		return colComment, true
	case "followup":
		return colFollowUp, true
	case "deleted":
		return colDeleted, true
	case "created":
		return colIgnored, true
	}
	return colIgnored, false
}

// DecodeCSV reads a DHIS2 data value set in CSV and pushes it into sink: one Group (with
// opts.DataSet), then one Value per row.
//
// DHIS2 2.42 reads columns by position (dataelement, period, orgunit, categoryoptioncombo,
// attributeoptioncombo, value, storedby, lastupdated, comment, followup, deleted) and skips
// the header row unread; 2.43 maps columns by header name. DecodeCSV does both: when the
// header row names at least the data element, period, org unit and value columns (in any
// order, in DHIS2's or analytics' spelling) the columns are taken by name, otherwise by
// position. Missing trailing columns are empty. Problems are reported as
// *transform.InputError with the line, the column and its name.
func DecodeCSV(r io.Reader, sink transform.Sink, opts CSVOptions) error {
	br, err := skipBOM(r)
	if err != nil {
		return fmt.Errorf("dvs: reading CSV: %w", err)
	}
	max := orDefault(opts.MaxTokenBytes, DefaultMaxTokenBytes)
	lr := &limitReader{r: br, max: int64(max)}
	cr := csv.NewReader(lr)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	d := csvDecoder{cr: cr, lr: lr, em: emitter{sink: sink, opts: Options{Analytics: opts.Analytics}}}
	d.em.hdr.DataSet = opts.DataSet
	for i := range d.cols {
		d.cols[i] = i
		d.names[i] = csvColumnNames[i]
	}
	d.loc.d = &d
	header := opts.FirstRowIsHeader == nil || *opts.FirstRowIsHeader
	return d.decode(header)
}

type csvDecoder struct {
	cr    *csv.Reader
	lr    *limitReader
	em    emitter
	cols  [nColumns]int    // record index of each column, -1 when absent
	names [nColumns]string // the column's name, as the header wrote it
	line  int              // of the record being handled
	// endLine is the last line of the last record read
	endLine int
	v       transform.DataValue
	loc     csvValueLoc
}

type csvValueLoc struct{ d *csvDecoder }

func (l *csvValueLoc) Pos() transform.Pos { return transform.Pos{Line: l.d.line} }

func (d *csvDecoder) decode(header bool) error {
	if err := d.em.group(); err != nil {
		return err
	}
	for index := 0; ; {
		d.lr.start = d.cr.InputOffset()
		rec, err := d.cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return d.readErr(err, index)
		}
		d.line, _ = d.cr.FieldPos(0)
		last, _ := d.cr.FieldPos(len(rec) - 1)
		d.endLine = last + strings.Count(rec[len(rec)-1], "\n")
		if header {
			header = false
			d.header(rec)
			continue
		}
		if err := d.row(rec, index); err != nil {
			return err
		}
		index++
	}
}

func (d *csvDecoder) readErr(err error, index int) error {
	if errors.Is(err, errTokenTooLong) {
		// FieldPos is not usable after a failed Read: the record starts after the last one
		return &transform.InputError{Pos: transform.Pos{Line: d.endLine + 1}, Index: index,
			Expected: fmt.Sprintf("a record shorter than %d bytes", d.lr.max)}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &transform.InputError{Pos: transform.Pos{Line: pe.Line, Column: pe.Column}, Index: index,
			Expected: "well-formed CSV: " + pe.Err.Error()}
	}
	return fmt.Errorf("dvs: reading CSV: %w", err)
}

// header maps the columns by name when the header row names the essential ones.
func (d *csvDecoder) header(rec []string) {
	var cols [nColumns]int
	var names [nColumns]string
	for i := range cols {
		cols[i] = -1
	}
	for i, name := range rec {
		if c, ok := csvColumn(name); ok && c != colIgnored && cols[c] < 0 {
			cols[c] = i
			names[c] = strings.TrimSpace(name)
		}
	}
	if cols[colDataElement] < 0 || cols[colPeriod] < 0 || cols[colOrgUnit] < 0 || cols[colValue] < 0 {
		return // positional, as DHIS2 2.42 reads it
	}
	d.cols, d.names = cols, names
}

func (d *csvDecoder) field(rec []string, c int) string {
	if i := d.cols[c]; i >= 0 && i < len(rec) {
		return rec[i]
	}
	return ""
}

func (d *csvDecoder) row(rec []string, index int) error {
	for i, f := range rec {
		if !utf8.ValidString(f) {
			line, col := d.cr.FieldPos(i)
			name := ""
			for c, at := range d.cols {
				if at == i {
					name = d.names[c]
				}
			}
			bad := f[strings.IndexFunc(f, func(r rune) bool { return r == utf8.RuneError }):]
			return &transform.InputError{Pos: transform.Pos{Line: line, Column: col, Path: name}, Index: index,
				Field: name, Value: found([]byte(bad)), Expected: "UTF-8 text"}
		}
	}
	v := &d.v
	*v = transform.DataValue{
		DataElement:          d.field(rec, colDataElement),
		Period:               d.field(rec, colPeriod),
		OrgUnit:              d.field(rec, colOrgUnit),
		CategoryOptionCombo:  d.field(rec, colCOC),
		AttributeOptionCombo: d.field(rec, colAOC),
		Value:                d.field(rec, colValue),
		StoredBy:             d.field(rec, colStoredBy),
		Comment:              d.field(rec, colComment),
		Index:                index,
	}
	for _, c := range [...]int{colFollowUp, colDeleted} {
		s := d.field(rec, c)
		b, ok := parseBool(s)
		if !ok {
			// DHIS2 reads anything but "true" as false; Tally refuses the value alone
			line, col := d.cr.FieldPos(d.cols[c])
			return d.em.reject(&transform.InputError{Pos: transform.Pos{Line: line, Column: col, Path: d.names[c]},
				Index: index, Field: csvColumnNames[c], Value: s, Expected: boolExpected}, &d.loc)
		}
		if c == colDeleted {
			v.Deleted = b
		} else {
			v.FollowUp = b
		}
	}
	return d.em.value(v, &d.loc)
}
