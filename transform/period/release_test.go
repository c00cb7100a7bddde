package period

import (
	"errors"
	"testing"
)

// The release each period type arrived in: spec dhis2.md §11.1 (QuarterlyNov 2.41+,
// FinancialSep 2.42+, WeeklyFriday and FinancialFeb/Aug 2.43+), consistent with
// dhis2-core's PeriodTypeEnum as stored before 2.43 (it lists FINANCIAL_SEP and
// QUARTERLY_NOV but no WEEKLY_FRIDAY, FINANCIAL_FEB or FINANCIAL_AUG) and with the ADX
// table of adx.md §6.2, where the Friday and Feb/Aug/Sep mappings are master (2.43) only.
func TestTypeSince(t *testing.T) {
	want := map[Type]int{QuarterlyNov: 41, FinancialSep: 42, WeeklyFriday: 43, FinancialFeb: 43, FinancialAug: 43}
	for _, typ := range Types() {
		if got := typ.Since(); got != want[typ] {
			t.Errorf("%v.Since() = %d, want %d", typ, got, want[typ])
		}
	}
	if Type(0).Since() != 0 || numTypes.Since() != 0 {
		t.Error("an invalid type has a release")
	}
}

func TestAvailableIn(t *testing.T) {
	tests := []struct {
		id      string
		release int
		ok      bool
		since   int
	}{
		{"202401", 36, true, 0},
		{"2018NovS1", 36, true, 0},
		{"2018Nov", 38, true, 0},
		{"2018NovQ1", 40, false, 41},
		{"2018NovQ1", 41, true, 41},
		{"2024Sep", 41, false, 42},
		{"2024Sep", 42, true, 42},
		{"2026FriW3", 42, false, 43},
		{"2026FriW3", 43, true, 43},
		{"2026Feb", 42, false, 43},
		{"2026Aug", 44, true, 43},
		{"2026Feb", 0, true, 43}, // no particular release
	}
	for _, tt := range tests {
		ok, since, err := AvailableIn(tt.id, tt.release)
		if err != nil || ok != tt.ok || since != tt.since {
			t.Errorf("AvailableIn(%q, %d) = %v, %d, %v; want %v, %d", tt.id, tt.release, ok, since, err, tt.ok, tt.since)
		}
	}
	if ok, _, err := AvailableIn("2024W53", 43); ok || !errors.Is(err, ErrInvalidID) {
		t.Errorf("2024W53: %v, %v", ok, err)
	}
}

// The ADX reader's own releases (adx.md §6.2): 2026-02-01/P1Y is FinancialFeb
// (2026Feb) and 2026-01-16, a Friday, with P7D is WeeklyFriday week 3 (2026FriW3), both
// from 2.43; a September P1Y names a FinancialSep id (2.42) that ADX maps from 2.43.
func TestISOAvailableIn(t *testing.T) {
	tests := []struct {
		iso, id string
		release int
		ok      bool
		since   int
	}{
		{"2026-02-01/P1Y", "2026Feb", 42, false, 43},
		{"2026-02-01/P1Y", "2026Feb", 43, true, 43},
		{"2026-01-16/P7D", "2026FriW3", 42, false, 43},
		{"2024-09-01/P1Y", "2024Sep", 42, false, 43},
		{"2024-09-01/P1Y", "2024Sep", 43, true, 43},
		{"2017-11-01/P1Y", "2018Nov", 38, true, 0},
		{"2024-01-01/P1M", "202401", 36, true, 0},
	}
	for _, tt := range tests {
		id, ok, since, err := ISOAvailableIn(tt.iso, tt.release)
		if err != nil || id != tt.id || ok != tt.ok || since != tt.since {
			t.Errorf("ISOAvailableIn(%q, %d) = %q, %v, %d, %v; want %q, %v, %d",
				tt.iso, tt.release, id, ok, since, err, tt.id, tt.ok, tt.since)
		}
	}
	if _, _, _, err := ISOAvailableIn("2024-01-02/P7D", 43); !errors.Is(err, ErrInvalidISO) {
		t.Errorf("a Tuesday P7D: %v", err)
	}
}
