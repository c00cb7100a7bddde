package transform

import (
	"github.com/tally-hmis/tally/transform/period"
)

// Validate checks what every inbound value must satisfy once header fields are inherited:
// data element, period and org unit present, a period id DHIS2 accepts, and something to
// write — a value, a comment, or the deleted flag. It returns nil or the first problem; the
// error's Index is the value's and its position is left for the caller to fill.
func Validate(v *DataValue) *InputError {
	bad := func(field, value, expected string) *InputError {
		return &InputError{Index: v.Index, Field: field, Value: value, Expected: expected}
	}
	switch {
	case v.DataElement == "":
		return bad("dataElement", "", "missing: every value needs a data element")
	case v.Period == "":
		return bad("period", "", "missing: set it on the value or the data value set")
	case v.OrgUnit == "":
		return bad("orgUnit", "", "missing: set it on the value or the data value set")
	case v.Value == "" && v.Comment == "" && !v.Deleted:
		return bad("value", "", "missing: send a value, a comment, or deleted: true")
	}
	if _, err := period.Parse(v.Period); err != nil {
		return bad("period", v.Period, "a DHIS2 period id such as 202401, 2024Q1, 2024W5 or 2024")
	}
	return nil
}
