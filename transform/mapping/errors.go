package mapping

import (
	"errors"
	"fmt"
	"strings"
)

// ErrRejected is wrapped by the error MapWith returns when the batch as a whole cannot be
// mapped and retrying will not help. Since values are refused one by one (Mapped.Refused),
// one case remains: a batch whose declared data element scheme contradicts the set's
// source_id_scheme, so that no value of it can match a rule. Map also returns it when any
// value is refused (see Map). Such a batch belongs in the dead-letter queue; every other
// error is transient (metadata could not be fetched, the roll-up store is unreachable, the
// context ended) and worth a retry.
var ErrRejected = errors.New("mapping rejected the batch")

// ErrUnknownSet is wrapped by the error Map returns for a source whose mapping set is not
// among the compiled sets: the engine and the configuration disagree, which a reload fixes.
var ErrUnknownSet = errors.New("unknown mapping set")

// Issue is one reason a batch was rejected, and the values concerned if any.
type Issue struct {
	// Indexes are the 0-based positions of the culprit values in the original payload: one
	// value, or for a duplicate the earlier and the later value.
	Indexes []int `json:"indexes"`
	// Field is the field at fault (dataElement, orgUnit, period, value, categories,
	// attributes, categoryOptionCombo, attributeOptionCombo, key).
	Field string `json:"field"`
	// Value is the offending value of that field as the payload wrote it.
	Value string `json:"value,omitempty"`
	// Code is DHIS2's error code for the same failure, where it has one.
	Code   string `json:"errorCode,omitempty"`
	Reason string `json:"reason"`
}

func (is Issue) String() string {
	var b strings.Builder
	switch len(is.Indexes) {
	case 0:
	case 1:
		fmt.Fprintf(&b, "value %d: ", is.Indexes[0])
	default:
		b.WriteString("values ")
		for i, x := range is.Indexes {
			if i > 0 {
				b.WriteString(" and ")
			}
			fmt.Fprint(&b, x)
		}
		b.WriteString(": ")
	}
	if is.Field != "" {
		b.WriteString(is.Field)
		if is.Value != "" {
			fmt.Fprintf(&b, " %q", is.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(is.Reason)
	return b.String()
}

// maxIssues bounds the issues one RejectError keeps; More counts the rest.
const maxIssues = 100

// RejectError lists every reason a batch was rejected (at most maxIssues of them). It
// wraps ErrRejected.
type RejectError struct {
	Set    string
	Target string
	Issues []Issue
	// More counts issues past the bound that were not kept.
	More int
}

func (e *RejectError) Error() string {
	var b strings.Builder
	n := len(e.Issues) + e.More
	fmt.Fprintf(&b, "mapping set %q for target %q: %d problem", e.Set, e.Target, n)
	if n != 1 {
		b.WriteString("s")
	}
	for i, is := range e.Issues {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", n-10)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(is.String())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrRejected) hold.
func (e *RejectError) Unwrap() error { return ErrRejected }

func (e *RejectError) add(is Issue) {
	if len(e.Issues) >= maxIssues {
		e.More++
		return
	}
	e.Issues = append(e.Issues, is)
}
