package transform

import (
	"errors"
	"fmt"
	"strings"
)

// Pos is where in a payload something was found. Text formats give Line and Column (1-based);
// XML formats add the element Path; every format gives the value Index when there is one.
type Pos struct {
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Path   string `json:"path,omitempty"`
}

func (p Pos) String() string {
	var parts []string
	if p.Line > 0 {
		if p.Column > 0 {
			parts = append(parts, fmt.Sprintf("line %d, column %d", p.Line, p.Column))
		} else {
			parts = append(parts, fmt.Sprintf("line %d", p.Line))
		}
	}
	if p.Path != "" {
		parts = append(parts, p.Path)
	}
	return strings.Join(parts, ", ")
}

// InputError is one problem with an inbound payload, naming the place, the field, the value
// found and what was expected.
type InputError struct {
	Pos
	// Index is the data value's 0-based position in the payload, or -1 when the problem is
	// not in a value (a malformed document, a bad header).
	Index    int    `json:"index"`
	Field    string `json:"field,omitempty"`
	Value    string `json:"value,omitempty"`
	Expected string `json:"expected"`
	// Conflict, when set, is how DHIS2 2.38–2.42 reports this problem with a value: its
	// error code, objects and message. Nil for a problem DHIS2 has no conflict for (one
	// only Tally refuses); InputError.DHIS2 then makes a plain one.
	Conflict *ImportConflict `json:"conflict,omitempty"`
}

func (e *InputError) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Index >= 0 {
		fmt.Fprintf(&b, "data value %d: ", e.Index)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, " %q", truncate(e.Value, 80))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Expected)
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// InputErrors is every problem found in one payload, in order, up to a bound.
type InputErrors struct {
	Errs []*InputError
	// More counts the problems past the bound that were not kept.
	More int
}

func (e *InputErrors) Error() string {
	if len(e.Errs) == 0 {
		return "invalid input"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid", len(e.Errs)+e.More)
	if len(e.Errs)+e.More == 1 {
		b.WriteString(" item: ")
	} else {
		b.WriteString(" items, first: ")
	}
	b.WriteString(e.Errs[0].Error())
	return b.String()
}

// AsInputErrors returns the input errors err carries: the list of an *InputErrors, or a
// single *InputError as a list of one.
func AsInputErrors(err error) (*InputErrors, bool) {
	var list *InputErrors
	if errors.As(err, &list) {
		return list, true
	}
	var one *InputError
	if errors.As(err, &one) {
		return &InputErrors{Errs: []*InputError{one}}, true
	}
	return nil, false
}

// ErrTooManyErrors ends a parse once the error bound is reached; the caller reports the
// errors collected so far.
var ErrTooManyErrors = errors.New("too many invalid values")
