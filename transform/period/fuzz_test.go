package period_test

import (
	"os"
	"testing"

	"github.com/tally-hmis/tally/transform/period"
)

// FuzzParse feeds arbitrary text to Parse and ParseISO. Neither may panic, and
// whatever they accept must survive a round trip: Parse(p.ID()) and, for every
// type ADX can express, ParseISO(p.ISO()) give p back.
func FuzzParse(f *testing.F) {
	if _, err := os.Stat(periodsTSV); err == nil {
		for _, r := range readPeriodsTSV(f) {
			f.Add(r.adx)
			if r.id != "ERROR" {
				f.Add(r.id)
			}
		}
	}
	for _, s := range []string{"2024-03", "2024-03-15", "2024W01", "2020W53", "2009BiW27", "2018NovQ1",
		"2018NovS1", "2018Nov", "202402B", "9999", "0001Nov", "2024W53", "202407B", "2024-01-01/P1M/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := period.Parse(s)
		if err == nil {
			checkAccepted(t, "Parse", s, p)
		} else if !p.IsZero() {
			t.Fatalf("Parse(%q) returned %v with error %v", s, p, err)
		}
		// AvailableIn accepts what Parse accepts, from the type's release on.
		for _, release := range []int{0, 40, 43} {
			ok, since, aerr := period.AvailableIn(s, release)
			if (aerr == nil) != (err == nil) || err == nil && (since != p.Type().Since() || ok != (release == 0 || since <= release)) {
				t.Fatalf("AvailableIn(%q, %d) = %v, %d, %v; Parse: %v, %v", s, release, ok, since, aerr, p, err)
			}
		}
		if p, err := period.ParseISO(s); err == nil {
			checkAccepted(t, "ParseISO", s, p)
		} else if !p.IsZero() {
			t.Fatalf("ParseISO(%q) returned %v with error %v", s, p, err)
		}
	})
}

func checkAccepted(t *testing.T, fn, s string, p period.Period) {
	t.Helper()
	if p.IsZero() || p.End().Before(p.Start()) {
		t.Fatalf("%s(%q) = %v..%v", fn, s, p.Start(), p.End())
	}
	q, err := period.Parse(p.ID())
	if err != nil || q != p {
		t.Fatalf("%s(%q) = %v, but Parse(%q) = %v, %v", fn, s, p.Type(), p.ID(), q, err)
	}
	if p.Type() == period.QuarterlyNov {
		return // ADX has no QuarterlyNov
	}
	q, err = period.ParseISO(p.ISO())
	if err != nil || q != p {
		t.Fatalf("%s(%q) = %v, but ParseISO(%q) = %v, %v", fn, s, p, p.ISO(), q, err)
	}
}
