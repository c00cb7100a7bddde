package dvs

import (
	"fmt"
	"strings"

	"github.com/tally-hmis/tally/transform"
)

// Limits applied when the matching Options field is zero.
const (
	// DefaultMaxHeldValues bounds the values DecodeJSON holds back while it waits for header
	// fields that may follow "dataValues" in the object.
	DefaultMaxHeldValues = 10_000
	// DefaultMaxTokenBytes bounds one string, number, attribute or CSV record.
	DefaultMaxTokenBytes = 1 << 20
	// DefaultMaxDepth bounds the nesting of objects, arrays and elements.
	DefaultMaxDepth = 64
)

// AggregatedComment is the comment DHIS2 analytics puts on every value it exports (and, up
// to 2.40, the storedBy too). Options.Analytics drops it.
const AggregatedComment = "[aggregated]"

// Options tunes DecodeJSON and DecodeXML. The zero value reads a DHIS2 data value set with
// the default limits.
type Options struct {
	// Analytics reads the payload as DHIS2 analytics output (/api/analytics/dataValueSet):
	// the "[aggregated]" comment and storedBy that analytics puts on every value are
	// dropped so that they are not written into the target. Totals keep their empty
	// combos (the target falls back to its defaults).
	Analytics bool
	// OnHeader, when set, receives the data value set's header once it is complete, just
	// before the Group call: everything the payload declared, including the fields
	// the canonical Group has no room for (dryRun, strategy, header period and org unit).
	OnHeader func(h *Header) error
	// MaxHeldValues bounds the values held back while header fields may still follow
	// "dataValues" (JSON only); 0 means DefaultMaxHeldValues.
	MaxHeldValues int
	// MaxTokenBytes bounds a single string, number or attribute value; 0 means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int
	// MaxDepth bounds nesting; 0 means DefaultMaxDepth.
	MaxDepth int
}

func (o Options) maxHeld() int  { return orDefault(o.MaxHeldValues, DefaultMaxHeldValues) }
func (o Options) maxToken() int { return orDefault(o.MaxTokenBytes, DefaultMaxTokenBytes) }
func (o Options) maxDepth() int { return orDefault(o.MaxDepth, DefaultMaxDepth) }

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// Header is what a data value set declares for all of its values. Period, OrgUnit and
// AttributeOptionCombo have already been applied to every value the sink receives (they
// replace the value's own, as in DHIS2); the rest travels in the transform.Group.
type Header struct {
	DataSet string
	// CompleteDate is passed on as written. DHIS2 registers the data set as complete when
	// it is set; CHT's export puts its own export date here, so whether a source's
	// completeDate means "complete" is decided by configuration, not by the parser.
	CompleteDate         string
	Period               string
	OrgUnit              string
	AttributeOptionCombo string
	// AttributeCategoryOptions are option ids that identify the attribute option combo
	// within the data set's attribute combo when AttributeOptionCombo is absent. They are
	// given to each value as Attributes with an empty Category.
	AttributeCategoryOptions []string
	Schemes                  transform.IDSchemes
	// DryRun is nil when the payload does not say.
	DryRun *bool
	// Strategy is the import strategy (JSON "strategy", XML "importStrategy"; each
	// format takes either name) under its current name: CREATE_AND_UPDATE, CREATE,
	// UPDATE or DELETE, a legacy alias read as its current name (see
	// transform.ParseImportStrategy); empty when absent. An unknown strategy ends the
	// parse, as DHIS2's ImportStrategy.valueOf fails the import.
	Strategy string
}

// Group returns the part of the header the canonical model carries.
func (h *Header) Group() transform.Group {
	return transform.Group{DataSet: h.DataSet, CompleteDate: h.CompleteDate, Schemes: h.Schemes,
		ImportStrategy: transform.ImportStrategy(h.Strategy)}
}

const strategyExpected = "an import strategy: CREATE_AND_UPDATE, CREATE, UPDATE or DELETE " +
	"(or NEW_AND_UPDATES, NEW, UPDATES, DELETES)"

// emitter applies the header to values and feeds the sink. It is shared by every format.
type emitter struct {
	sink    transform.Sink
	opts    Options
	hdr     Header
	attrs   []transform.CategoryOption
	grouped bool
}

// group announces the header once, before the first value.
func (e *emitter) group() error {
	if e.grouped {
		return nil
	}
	e.grouped = true
	if len(e.hdr.AttributeCategoryOptions) > 0 && e.hdr.AttributeOptionCombo == "" {
		e.attrs = make([]transform.CategoryOption, len(e.hdr.AttributeCategoryOptions))
		for i, o := range e.hdr.AttributeCategoryOptions {
			e.attrs[i].Option = o
		}
	}
	if e.opts.OnHeader != nil {
		if err := e.opts.OnHeader(&e.hdr); err != nil {
			return fmt.Errorf("dvs: header: %w", err)
		}
	}
	if err := e.sink.Group(e.hdr.Group()); err != nil {
		return fmt.Errorf("dvs: group: %w", err)
	}
	return nil
}

// value applies the header (DHIS2: header period, org unit and attribute option combo
// replace the value's) and the analytics clean-up, then hands v to the sink.
func (e *emitter) value(v *transform.DataValue, at transform.Locator) error {
	h := &e.hdr
	if h.Period != "" {
		v.Period = h.Period
	}
	if h.OrgUnit != "" {
		v.OrgUnit = h.OrgUnit
	}
	if h.AttributeOptionCombo != "" {
		v.AttributeOptionCombo = h.AttributeOptionCombo
		v.Attributes = nil
	} else if e.attrs != nil {
		v.AttributeOptionCombo = ""
		v.Attributes = e.attrs
	}
	if e.opts.Analytics {
		if v.Comment == AggregatedComment {
			v.Comment = ""
		}
		if v.StoredBy == AggregatedComment {
			v.StoredBy = ""
		}
	}
	if err := e.sink.Value(v, at); err != nil {
		return fmt.Errorf("dvs: data value %d: %w", v.Index, err)
	}
	return nil
}

// reject passes a problem the parser found with one value to the sink, when it is a
// transform.Rejecter, and the parse goes on (a PerValue Batcher leaves the value out);
// otherwise the problem ends the parse.
func (e *emitter) reject(bad *transform.InputError, at transform.Locator) error {
	r, ok := e.sink.(transform.Rejecter)
	if !ok {
		return bad
	}
	if err := r.Reject(bad, at); err != nil {
		return fmt.Errorf("dvs: data value %d: %w", bad.Index, err)
	}
	return nil
}

// setScheme parses an id scheme header field into the matching IDSchemes field.
func setScheme(s *transform.IDSchemes, field, value string) error {
	sc, err := transform.ParseIDScheme(value)
	if err != nil {
		return err
	}
	switch field {
	case "idScheme":
		s.IDScheme = sc
	case "dataElementIdScheme":
		s.DataElement = sc
	case "orgUnitIdScheme":
		s.OrgUnit = sc
	case "categoryOptionComboIdScheme":
		s.CategoryOptionCombo = sc
	case "attributeOptionComboIdScheme":
		s.AttributeOptionCombo = sc
	case "dataSetIdScheme":
		s.DataSet = sc
	case "categoryIdScheme":
		s.Category = sc
	case "categoryOptionIdScheme":
		s.CategoryOption = sc
	}
	return nil
}

func isSchemeField(name string) bool {
	switch name {
	case "idScheme", "dataElementIdScheme", "orgUnitIdScheme", "categoryOptionComboIdScheme",
		"attributeOptionComboIdScheme", "dataSetIdScheme", "categoryIdScheme", "categoryOptionIdScheme":
		return true
	}
	return false
}

// parseBool reads a boolean written as text. DHIS2 reads these leniently (anything but
// "true" is false); Tally refuses what is neither, so that a typo in "deleted" does not
// silently keep a value.
func parseBool(s string) (bool, bool) {
	switch {
	case s == "":
		return false, true
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

const boolExpected = "true or false"

// splitOptions splits a comma-separated attributeCategoryOptions value.
func splitOptions(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
