package transform

import (
	"fmt"

	"github.com/tally-hmis/tally/transform/period"
)

// The DHIS2 2.38–2.42 error codes of the value checks Tally can make without DHIS2's
// metadata (ErrorCode.java and DataValueImportConflict.java of dhis2-core; spec
// dhis2.md §1.5). DHIS2 runs its checks in this order and reports the first that fails.
const (
	CodeDataElementNotFound = "E7610" // Data element not found or not accessible
	CodePeriodNotValid      = "E7611" // Period not valid
	CodeOrgUnitNotFound     = "E7612" // Organisation unit not found or not accessible
	CodeValueNotDefined     = "E7618" // Data value or comment not specified for data element
)

// Validate checks what every inbound value must satisfy once header fields are inherited:
// data element, period and org unit present, a period id DHIS2 accepts, and something to
// write — a value, a comment, or the deleted flag. It returns nil or the first problem, in
// DHIS2's order, with the conflict DHIS2 2.38–2.42 reports for it; the error's Index is
// the value's and its position is left for the caller to fill.
func Validate(v *DataValue) *InputError { return ValidateFor(v, 0) }

// ValidateFor is Validate for a DHIS2 release (minor number, 41 for 2.41; 0 for none in
// particular): a period of a type that release does not know is not valid there (see
// period.AvailableIn).
func ValidateFor(v *DataValue, release int) *InputError { return validate(v, release, nil) }

// periodCheck remembers the period last checked against a release: a payload's values
// mostly share their neighbour's period, and reading it again cost a tenth of a value's
// parse (the Batcher checks every value).
type periodCheck struct {
	id      string
	release int
	ok      bool
	since   int
	err     error
	filled  bool
}

// availableIn is period.AvailableIn through the check's memory (nil: none).
func (c *periodCheck) availableIn(id string, release int) (bool, int, error) {
	if c == nil {
		return period.AvailableIn(id, release)
	}
	if !c.filled || c.id != id || c.release != release {
		c.ok, c.since, c.err = period.AvailableIn(id, release)
		c.id, c.release, c.filled = id, release, true
	}
	return c.ok, c.since, c.err
}

// validate is ValidateFor, the period checked through periods.
func validate(v *DataValue, release int, periods *periodCheck) *InputError {
	bad := func(field, value, expected, code, id string) *InputError {
		return &InputError{Index: v.Index, Field: field, Value: value, Expected: expected, Conflict: dhis2Conflict(code, id)}
	}
	if v.DataElement == "" {
		return bad("dataElement", "", "missing: every value needs a data element", CodeDataElementNotFound, "")
	}
	if v.Period == "" {
		return bad("period", "", "missing: set it on the value or the data value set", CodePeriodNotValid, "")
	}
	if ok, since, err := periods.availableIn(v.Period, release); err != nil {
		return bad("period", v.Period, "a DHIS2 period id such as 202401, 2024Q1, 2024W5 or 2024", CodePeriodNotValid, v.Period)
	} else if !ok {
		return bad("period", v.Period, fmt.Sprintf("a period DHIS2 2.%d accepts: this type exists from 2.%d", release, since),
			CodePeriodNotValid, v.Period)
	}
	if v.OrgUnit == "" {
		return bad("orgUnit", "", "missing: set it on the value or the data value set", CodeOrgUnitNotFound, "")
	}
	if v.Value == "" && v.Comment == "" && !v.Deleted {
		return bad("value", "", "missing: send a value, a comment, or deleted: true", CodeValueNotDefined, v.DataElement)
	}
	return nil
}

// dhis2Conflict builds the conflict DHIS2 reports for one of the codes above about id,
// as ImportConflict.createConflict does: the descriptor's property, objects keyed by the
// schema name of the object's type, and ErrorCode's message with the id in backquotes.
// A missing id reads "null", as Java's MessageFormat writes it.
func dhis2Conflict(code, id string) *ImportConflict {
	var property, object, message string
	switch code {
	case CodeDataElementNotFound:
		property, object, message = "dataElement", "dataElement", "Data element not found or not accessible"
	case CodePeriodNotValid:
		property, object, message = "period", "period", "Period not valid"
	case CodeOrgUnitNotFound:
		property, object, message = "orgUnit", "organisationUnit", "Organisation unit not found or not accessible"
	case CodeValueNotDefined:
		property, object, message = "value", "dataElement", "Data value or comment not specified for data element"
	}
	shown := id
	if shown == "" {
		shown = "null"
	}
	return &ImportConflict{Object: id, Objects: map[string]string{object: id}, ErrorCode: code, Property: property,
		Value: message + ": `" + shown + "`"}
}
