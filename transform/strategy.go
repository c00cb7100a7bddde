package transform

import (
	"errors"
	"fmt"
	"strings"
)

// ImportStrategy is DHIS2's importStrategy for data values, under its current name.
// The empty strategy means "not stated": DHIS2 then uses CREATE_AND_UPDATE.
type ImportStrategy string

// The strategies a data value import takes (spec dhis2.md §1.2, §1.4).
const (
	StrategyCreateAndUpdate ImportStrategy = "CREATE_AND_UPDATE"
	StrategyCreate          ImportStrategy = "CREATE"
	StrategyUpdate          ImportStrategy = "UPDATE"
	StrategyDelete          ImportStrategy = "DELETE"
)

// ErrImportStrategy is wrapped by the error ParseImportStrategy returns.
var ErrImportStrategy = errors.New("unknown import strategy")

// ParseImportStrategy reads an importStrategy query parameter or a data value set's
// strategy field. DHIS2's ImportStrategy enum has the current names and the legacy
// aliases NEW_AND_UPDATES, NEW, UPDATES and DELETES, which mean the same
// (isCreateAndUpdate, isCreate, isUpdate and isDelete in dhis2-core's
// importexport/ImportStrategy.java); ParseImportStrategy returns the current name for
// either. DHIS2 reads the payload's strategy with Enum.valueOf, which wants the exact
// upper-case name; Tally also takes any case and surrounding spaces, as a strategy in
// another case has only one meaning. "" gives "" (not stated). Anything else, SYNC
// included (the enum has it for metadata imports; it has no defined effect on data
// values), is refused with an error that names the value and wraps ErrImportStrategy.
func ParseImportStrategy(s string) (ImportStrategy, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "CREATE_AND_UPDATE", "NEW_AND_UPDATES":
		return StrategyCreateAndUpdate, nil
	case "CREATE", "NEW":
		return StrategyCreate, nil
	case "UPDATE", "UPDATES":
		return StrategyUpdate, nil
	case "DELETE", "DELETES":
		return StrategyDelete, nil
	}
	return "", fmt.Errorf("importStrategy %q: %w; want CREATE_AND_UPDATE (the default), CREATE, UPDATE or DELETE, "+
		"or their legacy names NEW_AND_UPDATES, NEW, UPDATES, DELETES", s, ErrImportStrategy)
}

// IsDelete reports whether s deletes the values it names.
func (s ImportStrategy) IsDelete() bool { return s == StrategyDelete }

// Or returns s, or fallback when s is unset.
func (s ImportStrategy) Or(fallback ImportStrategy) ImportStrategy {
	if s == "" {
		return fallback
	}
	return s
}
