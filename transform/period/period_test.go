package period_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform/period"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustParse(tb testing.TB, id string) period.Period {
	tb.Helper()
	p, err := period.Parse(id)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", id, err)
	}
	return p
}

func ids(ps []period.Period) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID()
	}
	return out
}

// Every id format, with the days DHIS2 gives it. The examples of the spec's
// period table (dhis2.md §11.1) are all here.
func TestParse(t *testing.T) {
	tests := []struct {
		id, canonical string
		typ           period.Type
		start, end    string
	}{
		{"20240315", "", period.Daily, "2024-03-15", "2024-03-15"},
		{"2024-03-15", "20240315", period.Daily, "2024-03-15", "2024-03-15"},
		{"20240229", "", period.Daily, "2024-02-29", "2024-02-29"},
		{"2004W10", "", period.Weekly, "2004-03-01", "2004-03-07"},
		{"2024W01", "2024W1", period.Weekly, "2024-01-01", "2024-01-07"},
		{"2015W1", "", period.Weekly, "2014-12-29", "2015-01-04"},
		{"2020W53", "", period.Weekly, "2020-12-28", "2021-01-03"},
		{"2026W53", "", period.Weekly, "2026-12-28", "2027-01-03"},
		{"2015WedW5", "", period.WeeklyWednesday, "2015-01-28", "2015-02-03"},
		{"2015ThuW6", "", period.WeeklyThursday, "2015-02-05", "2015-02-11"},
		{"2025FriW3", "", period.WeeklyFriday, "2025-01-17", "2025-01-23"},
		{"2015SatW7", "", period.WeeklySaturday, "2015-02-14", "2015-02-20"},
		{"2015SunW8", "", period.WeeklySunday, "2015-02-22", "2015-02-28"},
		{"2022WedW1", "", period.WeeklyWednesday, "2021-12-29", "2022-01-04"},
		{"2022SunW1", "", period.WeeklySunday, "2022-01-02", "2022-01-08"},
		{"2015BiW1", "", period.BiWeekly, "2014-12-29", "2015-01-11"},
		{"2022BiW2", "", period.BiWeekly, "2022-01-17", "2022-01-30"},
		{"2009BiW27", "", period.BiWeekly, "2009-12-28", "2010-01-10"}, // DHIS2 BiWeeklyPeriodTypeTest
		{"2010BiW1", "", period.BiWeekly, "2010-01-04", "2010-01-17"},
		{"200403", "", period.Monthly, "2004-03-01", "2004-03-31"},
		{"2004-03", "200403", period.Monthly, "2004-03-01", "2004-03-31"},
		{"202402", "", period.Monthly, "2024-02-01", "2024-02-29"},
		{"200401B", "", period.BiMonthly, "2004-01-01", "2004-02-29"},
		{"202402B", "", period.BiMonthly, "2024-03-01", "2024-04-30"},
		{"202406B", "", period.BiMonthly, "2024-11-01", "2024-12-31"},
		{"2004Q1", "", period.Quarterly, "2004-01-01", "2004-03-31"},
		{"2004Q4", "", period.Quarterly, "2004-10-01", "2004-12-31"},
		{"2018NovQ1", "", period.QuarterlyNov, "2017-11-01", "2018-01-31"},
		{"2018NovQ2", "", period.QuarterlyNov, "2018-02-01", "2018-04-30"},
		{"2018NovQ4", "", period.QuarterlyNov, "2018-08-01", "2018-10-31"},
		{"2004S1", "", period.SixMonthly, "2004-01-01", "2004-06-30"},
		{"2004S2", "", period.SixMonthly, "2004-07-01", "2004-12-31"},
		{"2004AprilS1", "", period.SixMonthlyApril, "2004-04-01", "2004-09-30"},
		{"2004AprilS2", "", period.SixMonthlyApril, "2004-10-01", "2005-03-31"},
		{"2018NovS1", "", period.SixMonthlyNov, "2017-11-01", "2018-04-30"},
		{"2018NovS2", "", period.SixMonthlyNov, "2018-05-01", "2018-10-31"},
		{"2004", "", period.Yearly, "2004-01-01", "2004-12-31"},
		{"2024Feb", "", period.FinancialFeb, "2024-02-01", "2025-01-31"},
		{"2004April", "", period.FinancialApril, "2004-04-01", "2005-03-31"},
		{"2004July", "", period.FinancialJuly, "2004-07-01", "2005-06-30"},
		{"2024Aug", "", period.FinancialAug, "2024-08-01", "2025-07-31"},
		{"2024Sep", "", period.FinancialSep, "2024-09-01", "2025-08-31"},
		{"2004Oct", "", period.FinancialOct, "2004-10-01", "2005-09-30"},
		{"2018Nov", "", period.FinancialNov, "2017-11-01", "2018-10-31"},
		{"0001", "", period.Yearly, "0001-01-01", "0001-12-31"},
		{"9999Nov", "", period.FinancialNov, "9998-11-01", "9999-10-31"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p := mustParse(t, tt.id)
			want := tt.canonical
			if want == "" {
				want = tt.id
			}
			if p.ID() != want || p.String() != want {
				t.Errorf("ID() = %q, String() = %q, want %q", p.ID(), p.String(), want)
			}
			if p.Type() != tt.typ {
				t.Errorf("Type() = %v, want %v", p.Type(), tt.typ)
			}
			if !p.Start().Equal(day(tt.start)) || !p.End().Equal(day(tt.end)) {
				t.Errorf("days %s..%s, want %s..%s", p.Start().Format(time.DateOnly), p.End().Format(time.DateOnly),
					tt.start, tt.end)
			}
			if p.Start().Location() != time.UTC || p.Start().Hour() != 0 {
				t.Errorf("Start() = %v, want midnight UTC", p.Start())
			}
			if got := p.Days(); got != int(p.End().Sub(p.Start()).Hours()/24)+1 {
				t.Errorf("Days() = %d for %v..%v", got, p.Start(), p.End())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		id   string
		hint string // a piece of the message saying what was expected
	}{
		{"", "expected a DHIS2 period id"},
		{"202", "expected a DHIS2 period id"},
		{"abcd", "yyyyMMdd"},
		{"24Q1", "yyyyQn"},
		{" 2024", "yyyy"},
		{"2024 ", "yyyy"},
		{"0000", "0001 to 9999"},
		{"0000W1", "0001 to 9999"},
		{"2024X1", "yyyyWn"},
		{"2024april", "April"},
		{"2024APRIL", "April"},
		{"2024w1", "yyyyWn"},
		{"2024April1", "April"},
		{"2024W", "yyyyWn"},
		{"2024W0", "weeks 1–52"},
		{"2024W53", "weeks 1–52"}, // 2024 has 52 ISO weeks: "Period not valid" in DHIS2
		{"2021W53", "weeks 1–52"},
		{"2024W123", "yyyyWn"},
		{"2024SunW53", "weeks 1–52"},
		{"2024BiW0", "bi-weeks 1–26"},
		{"2024BiW27", "bi-weeks 1–26"},
		{"2024Q0", "expected 1–4"},
		{"2024Q5", "expected 1–4"},
		{"2024Q12", "yyyyQn"},
		{"2024NovQ5", "expected 1–4"},
		{"2024S3", "expected 1–2"},
		{"2024AprilS0", "expected 1–2"},
		{"2024NovS3", "expected 1–2"},
		{"202400", "expected 01–12"},
		{"202413", "expected 01–12"},
		{"2024-13", "expected 01–12"},
		{"2024-1", "yyyy-MM"},
		{"2024-001", "yyyy-MM"},
		{"202400B", "bi-month index 01–06"},
		{"202407B", "bi-month index 01–06"},
		{"202412B", "bi-month index 01–06"},
		{"20240230", "not a calendar date"},
		{"2023-02-29", "not a calendar date"},
		{"20241301", "not a calendar date"},
		{"2024-03-1", "yyyy-MM-dd"},
		{"2024031", "yyyyMMdd"},
		{"202403151", "yyyyMMdd"},
		{"2024-01-01/P1M", "yyyyMMdd"},
		{"2024Q1\n", "yyyyQn"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, err := period.Parse(tt.id)
			if err == nil {
				t.Fatalf("Parse(%q) = %v (%v), want an error", tt.id, p, p.Type())
			}
			if !errors.Is(err, period.ErrInvalidID) {
				t.Errorf("error %q does not wrap ErrInvalidID", err)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", tt.id)) || !strings.Contains(msg, tt.hint) {
				t.Errorf("error %q should name %q and say %q", msg, tt.id, tt.hint)
			}
			if !p.IsZero() {
				t.Errorf("Parse returned %v with its error", p)
			}
		})
	}
}

func TestParseISO(t *testing.T) {
	tests := []struct{ in, id string }{
		{"2024-03-15/P1M", "202403"}, // the start need not be the period's first day (adx.md §6.1 rule 3)
		{"2024-03-15/P1D", "20240315"},
		{"2024-03-01/P2M", "202402B"},
		{"2004-07-01/P6M", "2004S2"},
		{"2004-10-01/P6M", "2004AprilS2"},
		{"2017-04-01/P6M", "2017AprilS1"},
		{"2017-11-01/P6M", "2018NovS1"},
		{"2018-05-01/P6M", "2018NovS2"},
		{"2017-10-02/P7D", "2017W40"},
		{"2017-10-04/P7D", "2017WedW40"},
		{"2025-01-17/P7D", "2025FriW3"},
		{"2024-01-10/P14D", "2024BiW1"},
		{"2004-01-01/P1Y", "2004"},
		{"2004-04-01/P1Y", "2004April"},
		{"2017-07-01/P1Y", "2017July"},
		{"2017-11-01/P1Y", "2018Nov"},
		{"2018-03-01/P1Y", ""}, // March: no yearly type
		{"2017-11-01/P3M", "2017Q4"},
	}
	for _, tt := range tests {
		p, err := period.ParseISO(tt.in)
		if tt.id == "" {
			if err == nil {
				t.Errorf("ParseISO(%q) = %v, want an error", tt.in, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseISO(%q): %v", tt.in, err)
			continue
		}
		if p.ID() != tt.id {
			t.Errorf("ParseISO(%q) = %v, want %v", tt.in, p, tt.id)
		}
	}
}

func TestParseISOErrors(t *testing.T) {
	tests := []struct{ in, hint string }{
		{"", "<yyyy-MM-dd>/<duration>"},
		{"2024-01-01", "<yyyy-MM-dd>/<duration>"},
		{"2024-01-01/P1D/P1D", "<yyyy-MM-dd>/<duration>"},
		{"/P1M", "not a valid yyyy-MM-dd date"},
		{"2024-1-01/P1M", "not a valid yyyy-MM-dd date"},
		{"2024-02-30/P1D", "not a valid yyyy-MM-dd date"},
		{"20240101/P1D", "not a valid yyyy-MM-dd date"},
		{"2024-01-01/", `duration "" is not supported`},
		{"2024-01-01/P1", `duration "P1" is not supported`},
		{"2024-01-01/p1m", `duration "p1m" is not supported`},
		{"2024-01-01/P1Q", `duration "P1Q" is not supported`},
		{"2024-01-01/P2Y", `duration "P2Y" is not supported`},
		{"2024-01-01/P1M ", `duration "P1M " is not supported`},
		{"2024-01-02/P7D", "is a Tuesday"},
		{"2014-02-01/P6M", "is in February"},
		{"2014-06-01/P1Y", "is in June"},
		{"0000-01-01/P1Y", "outside 0001–9999"},
	}
	for _, tt := range tests {
		p, err := period.ParseISO(tt.in)
		if err == nil {
			t.Errorf("ParseISO(%q) = %v, want an error", tt.in, p)
			continue
		}
		if !errors.Is(err, period.ErrInvalidISO) {
			t.Errorf("ParseISO(%q): %q does not wrap ErrInvalidISO", tt.in, err)
		}
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", tt.in)) || !strings.Contains(msg, tt.hint) {
			t.Errorf("ParseISO(%q): error %q should name the input and say %q", tt.in, msg, tt.hint)
		}
	}
}

func TestTypes(t *testing.T) {
	names := []string{"Daily", "Weekly", "WeeklyWednesday", "WeeklyThursday", "WeeklyFriday", "WeeklySaturday",
		"WeeklySunday", "BiWeekly", "Monthly", "BiMonthly", "Quarterly", "QuarterlyNov", "SixMonthly",
		"SixMonthlyApril", "SixMonthlyNov", "Yearly", "FinancialFeb", "FinancialApril", "FinancialJuly",
		"FinancialAug", "FinancialSep", "FinancialOct", "FinancialNov"}
	all := period.Types()
	if len(all) != len(names) {
		t.Fatalf("Types() has %d types, want %d", len(all), len(names))
	}
	for i, typ := range all {
		if typ.String() != names[i] {
			t.Errorf("Types()[%d] = %v, want %s", i, typ, names[i])
		}
		for _, n := range []string{names[i], strings.ToLower(names[i]), strings.ToUpper(names[i])} {
			if got, err := period.TypeByName(n); err != nil || got != typ {
				t.Errorf("TypeByName(%q) = %v, %v; want %v", n, got, err, typ)
			}
		}
		if i > 0 && typ.FrequencyOrder() < all[i-1].FrequencyOrder() {
			t.Errorf("%v is listed after the longer %v", typ, all[i-1])
		}
	}
	for _, n := range []string{"", "TwoYearly", "Month", "Financial April"} {
		if _, err := period.TypeByName(n); !errors.Is(err, period.ErrUnknownType) || !strings.Contains(err.Error(), fmt.Sprintf("%q", n)) {
			t.Errorf("TypeByName(%q): err = %v", n, err)
		}
	}
	order := []period.Type{period.Daily, period.WeeklySunday, period.BiWeekly, period.Monthly, period.BiMonthly,
		period.QuarterlyNov, period.SixMonthlyApril, period.FinancialNov}
	for i := 1; i < len(order); i++ {
		if order[i].FrequencyOrder() <= order[i-1].FrequencyOrder() {
			t.Errorf("%v should be longer than %v", order[i], order[i-1])
		}
	}
	if period.Yearly.FrequencyOrder() != period.FinancialApril.FrequencyOrder() {
		t.Error("Yearly and FinancialApril should have the same frequency order, as in DHIS2")
	}
	var zero period.Type
	if zero.String() != "Type(0)" || zero.FrequencyOrder() != 0 || !zero.PeriodOf(time.Now()).IsZero() {
		t.Error("the zero Type should be invalid")
	}
}

func TestTextMarshaling(t *testing.T) {
	type doc struct {
		Type   period.Type   `json:"type"`
		Period period.Period `json:"period"`
	}
	in := doc{period.SixMonthlyApril, mustParse(t, "2024AprilS2")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"type":"SixMonthlyApril","period":"2024AprilS2"}` {
		t.Fatalf("json = %s", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"period":"2024W53"}`), &out); !errors.Is(err, period.ErrInvalidID) {
		t.Errorf("bad period: err = %v", err)
	}
	if err := json.Unmarshal([]byte(`{"type":"Fortnightly"}`), &out); !errors.Is(err, period.ErrUnknownType) {
		t.Errorf("bad type: err = %v", err)
	}
	if _, err := json.Marshal(doc{}); err == nil {
		t.Error("marshaling the zero Type and Period should fail")
	}
}

func TestZeroPeriod(t *testing.T) {
	var z period.Period
	if !z.IsZero() || z.ID() != "" || z.ISO() != "" || !z.Start().IsZero() || !z.End().IsZero() || z.Days() != 0 {
		t.Error("zero Period accessors")
	}
	if !z.Next().IsZero() || !z.Shift(-3).IsZero() {
		t.Error("shifting the zero Period")
	}
	m := mustParse(t, "202401")
	if z.Contains(m) || m.Contains(z) || z.ContainsDate(time.Now()) {
		t.Error("the zero Period contains nothing and is contained in nothing")
	}
	if _, ok := z.RollUp(period.Yearly); ok {
		t.Error("RollUp of the zero Period")
	}
	if _, ok := z.Within(period.Yearly); ok || z.Parts(period.Monthly) != nil {
		t.Error("Within/Parts of the zero Period")
	}
	if _, ok := m.RollUp(0); ok || m.Parts(0) != nil {
		t.Error("RollUp/Parts to the zero Type")
	}
}

func TestPeriodOfUsesTheDateInItsLocation(t *testing.T) {
	// 23:30 on 31 March in Nairobi is already 1 April in no zone at all, but
	// the reporting date is what the caller's clock says.
	nairobi := time.FixedZone("EAT", 3*3600)
	late := time.Date(2024, 3, 31, 23, 30, 0, 0, nairobi)
	if got := period.Monthly.PeriodOf(late).ID(); got != "202403" {
		t.Errorf("PeriodOf(%v) = %s, want 202403", late, got)
	}
	if got := period.Monthly.PeriodOf(late.UTC()).ID(); got != "202403" {
		t.Errorf("PeriodOf(%v) = %s, want 202403", late.UTC(), got)
	}
	early := time.Date(2024, 4, 1, 1, 0, 0, 0, nairobi) // 31 March in UTC
	if got := period.Monthly.PeriodOf(early).ID(); got != "202404" {
		t.Errorf("PeriodOf(%v) = %s, want 202404", early, got)
	}
	if !mustParse(t, "202404").ContainsDate(early) || mustParse(t, "202404").ContainsDate(early.UTC()) {
		t.Error("ContainsDate should read the date in the time's location")
	}
}

func TestShift(t *testing.T) {
	tests := []struct {
		id   string
		n    int
		want string
	}{
		{"20241231", 1, "20250101"},
		{"20240301", -1, "20240229"},
		{"2020W53", 1, "2021W1"},
		{"2021W1", -1, "2020W53"},
		{"2024W52", 1, "2025W1"},
		{"2024SunW1", -1, "2023SunW52"},
		{"2009BiW26", 1, "2009BiW27"},
		{"2009BiW27", 1, "2010BiW1"},
		{"2010BiW1", -1, "2009BiW27"},
		{"2024BiW26", 1, "2025BiW1"},
		{"202412", 1, "202501"},
		{"202401", -13, "202212"},
		{"202406B", 1, "202501B"},
		{"2024Q1", -1, "2023Q4"},
		{"2024NovQ4", 1, "2025NovQ1"},
		{"2025NovQ1", -1, "2024NovQ4"},
		{"2024S2", 1, "2025S1"},
		{"2024AprilS2", 1, "2025AprilS1"},
		{"2024NovS2", 1, "2025NovS1"},
		{"2024", -10, "2014"},
		{"2024Nov", 1, "2025Nov"},
		{"2024April", 0, "2024April"},
	}
	for _, tt := range tests {
		got := mustParse(t, tt.id).Shift(tt.n)
		if got.ID() != tt.want {
			t.Errorf("%s.Shift(%d) = %s, want %s", tt.id, tt.n, got, tt.want)
		}
		if back := got.Shift(-tt.n); back != mustParse(t, tt.id) {
			t.Errorf("%s.Shift(%d).Shift(%d) = %s", tt.id, tt.n, -tt.n, back)
		}
	}
	// Long bi-week shifts (which skip whole 400-year cycles) agree with stepping.
	for _, n := range []int{26000, -1000, 10471, -10472, 123457} {
		start := mustParse(t, "2024BiW1")
		want := start
		for i := 0; i < n; i++ {
			want = want.Next()
		}
		for i := 0; i > n; i-- {
			want = want.Prev()
		}
		if got := start.Shift(n); got != want {
			t.Errorf("2024BiW1.Shift(%d) = %s, stepping gives %s", n, got, want)
		}
	}
}

func TestContainment(t *testing.T) {
	p := func(id string) period.Period { return mustParse(t, id) }
	contains := []struct {
		outer, inner string
		want         bool
	}{
		{"2024Q1", "202402", true},
		{"2024Q1", "2024Q1", true},
		{"2024Q1", "2024W5", true}, // 29 Jan – 4 Feb
		{"202401", "2024W5", false},
		{"2024", "2024W1", true},
		{"2024", "2025W1", false}, // 30 Dec 2024 – 5 Jan 2025
		{"2024April", "2024Q2", true},
		{"2024April", "2024Q1", false},
		{"2018Nov", "2018NovQ1", true},
		{"2018Nov", "2018NovS2", true},
		{"2018NovS1", "201711", true},
		{"202402", "2024Q1", false},
		{"2009BiW27", "2010W1", true},
		{"2010BiW1", "2010W1", true},
	}
	for _, tt := range contains {
		if got := p(tt.outer).Contains(p(tt.inner)); got != tt.want {
			t.Errorf("%s.Contains(%s) = %v, want %v", tt.outer, tt.inner, got, tt.want)
		}
	}

	within := []struct {
		id   string
		typ  period.Type
		want string // "" = none
	}{
		{"202402", period.Quarterly, "2024Q1"},
		{"2024W1", period.Monthly, "202401"},
		{"2024W5", period.Monthly, ""},
		{"2024W5", period.Quarterly, "2024Q1"},
		{"2025W1", period.Yearly, ""},
		{"2024Q2", period.FinancialApril, "2024April"},
		{"2024Q1", period.FinancialApril, "2023April"},
		{"2024Q4", period.SixMonthlyNov, ""},
		{"2024Q4", period.Quarterly, "2024Q4"},
		{"2024", period.Monthly, ""},
		{"20240101", period.Weekly, "2024W1"},
	}
	for _, tt := range within {
		got, ok := p(tt.id).Within(tt.typ)
		if ok != (tt.want != "") || got.ID() != tt.want {
			t.Errorf("%s.Within(%v) = %v, %v; want %q", tt.id, tt.typ, got, ok, tt.want)
		}
	}

	rollup := []struct {
		id   string
		typ  period.Type
		want string // "" = not aggregated
	}{
		{"202402", period.Quarterly, "2024Q1"},
		{"202402", period.Monthly, "202402"},
		{"202402", period.Weekly, ""},
		{"2024W5", period.Monthly, "202402"},    // Thursday 1 February
		{"2024W9", period.Monthly, "202402"},    // 26 Feb – 3 Mar, Thursday 29 February
		{"2025W1", period.Yearly, "2025"},       // 30 Dec 2024 – 5 Jan 2025
		{"2020W53", period.Yearly, "2020"},      // 28 Dec 2020 – 3 Jan 2021
		{"2024SunW1", period.Monthly, "202401"}, // 31 Dec 2023 – 6 Jan 2024
		{"2024W1", period.WeeklySunday, ""},     // same frequency order: DHIS2 does not map
		{"2024", period.FinancialApril, ""},     // same frequency order
		{"2024BiW5", period.Monthly, "202402"},  // 26 Feb – 10 Mar: by its first day
		{"2009BiW27", period.Yearly, "2009"},
		{"2010BiW1", period.Yearly, "2010"},
		{"202411", period.FinancialNov, "2025Nov"},
		{"202411", period.QuarterlyNov, "2025NovQ1"},
		{"20241231", period.WeeklyWednesday, "2024WedW52"}, // 25–31 Dec 2024
		{"20250101", period.WeeklyWednesday, "2025WedW1"},
		{"2024NovQ1", period.SixMonthlyNov, "2024NovS1"},
	}
	for _, tt := range rollup {
		got, ok := p(tt.id).RollUp(tt.typ)
		if ok != (tt.want != "") || got.ID() != tt.want {
			t.Errorf("%s.RollUp(%v) = %v, %v; want %q", tt.id, tt.typ, got, ok, tt.want)
		}
	}

	parts := []struct {
		id   string
		typ  period.Type
		want string
	}{
		{"2024Q1", period.Monthly, "202401 202402 202403"},
		{"2024April", period.Quarterly, "2024Q2 2024Q3 2024Q4 2025Q1"},
		{"2018Nov", period.QuarterlyNov, "2018NovQ1 2018NovQ2 2018NovQ3 2018NovQ4"},
		{"2018Nov", period.SixMonthlyNov, "2018NovS1 2018NovS2"},
		{"2018Nov", period.SixMonthly, "2018S1 2018S2"}, // by first day: Jul–Dec 2017 belongs to 2017Nov
		{"2024", period.BiMonthly, "202401B 202402B 202403B 202404B 202405B 202406B"},
		{"202401", period.Weekly, "2024W1 2024W2 2024W3 2024W4"},
		{"202402", period.Weekly, "2024W5 2024W6 2024W7 2024W8 2024W9"},
		{"202402", period.BiWeekly, "2024BiW4 2024BiW5"}, // BiW3 starts on 29 January
		{"2024W5", period.Daily, "20240129 20240130 20240131 20240201 20240202 20240203 20240204"},
		{"2024Q1", period.Quarterly, "2024Q1"},
		{"202401", period.Quarterly, ""},
		{"2024", period.FinancialApril, ""},
	}
	for _, tt := range parts {
		if got := strings.Join(ids(p(tt.id).Parts(tt.typ)), " "); got != tt.want {
			t.Errorf("%s.Parts(%v) = %q, want %q", tt.id, tt.typ, got, tt.want)
		}
	}
	for y, n := range map[string]int{"2020": 53, "2024": 52, "2026": 53, "2021": 52} {
		if got := len(p(y).Parts(period.Weekly)); got != n {
			t.Errorf("%s has %d weeks, want %d", y, got, n)
		}
	}
	// Bi-weeks go by their first day (DHIS2 treats only weekly types by their
	// fourth day): 2009BiW1 starts on 29 December 2008.
	if got := ids(p("2009").Parts(period.BiWeekly)); len(got) != 26 || got[0] != "2009BiW2" || got[25] != "2009BiW27" {
		t.Errorf("2009.Parts(BiWeekly) = %v, want BiW2..BiW27", got)
	}
	if got := ids(p("2010").Parts(period.BiWeekly)); len(got) != 26 || got[0] != "2010BiW1" {
		t.Errorf("2010.Parts(BiWeekly) = %v, want BiW1..BiW26", got)
	}
}

// Properties over many random dates and every type.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(20240101, 42)) // deterministic
	lo, hi := date(1900, 1, 1), date(2100, 12, 31)
	span := int(hi.Sub(lo).Hours() / 24)
	for i := range 2000 {
		d := lo.AddDate(0, 0, rng.IntN(span+1))
		for _, typ := range period.Types() {
			p := typ.PeriodOf(d)
			name := fmt.Sprintf("%v.PeriodOf(%s) = %s", typ, d.Format(time.DateOnly), p)
			if p.Type() != typ || p.Start().After(d) || p.End().Before(d) || !p.ContainsDate(d) {
				t.Fatalf("%s: %s..%s does not hold the date", name, p.Start(), p.End())
			}
			if q := period.Daily.PeriodOf(d); !p.Contains(q) {
				t.Fatalf("%s does not contain %s", name, q)
			}
			if q, err := period.Parse(p.ID()); err != nil || q != p {
				t.Fatalf("%s: Parse(ID()) = %v, %v", name, q, err)
			}
			q, err := period.ParseISO(p.ISO())
			if typ == period.QuarterlyNov { // not expressible in ADX: reads back as Quarterly
				if err != nil || q != period.Quarterly.PeriodOf(p.Start()) {
					t.Fatalf("%s: ParseISO(%s) = %v, %v", name, p.ISO(), q, err)
				}
			} else if err != nil || q != p {
				t.Fatalf("%s: ParseISO(%s) = %v, %v", name, p.ISO(), q, err)
			}
			if p.Next().Prev() != p || p.Prev().Next() != p || p.Shift(5).Shift(-5) != p {
				t.Fatalf("%s: Next/Prev/Shift are not inverse", name)
			}
			if typ.PeriodOf(p.Start()) != p {
				t.Fatalf("%s: PeriodOf(Start()) = %s", name, typ.PeriodOf(p.Start()))
			}
			if !p.Prev().End().AddDate(0, 0, 1).Equal(p.Start()) && !biWeek27(p.Prev()) {
				t.Fatalf("%s: previous period %s ends on %s", name, p.Prev(), p.Prev().End())
			}
			if typ == period.Weekly {
				y, w := p.Start().ISOWeek()
				if want := fmt.Sprintf("%dW%d", y, w); p.ID() != want {
					t.Fatalf("%s: time.ISOWeek says %s", name, want)
				}
			}
			if got := p.Start().Weekday(); weekStarts[typ] != nil && got != *weekStarts[typ] {
				t.Fatalf("%s starts on a %v", name, got)
			}
			for _, longer := range period.Types() {
				if i%8 != 0 {
					break // the Parts check is costly; a sample of dates is enough
				}
				r, ok := p.RollUp(longer)
				if ok != (longer == typ || longer.FrequencyOrder() > typ.FrequencyOrder()) {
					t.Fatalf("%s.RollUp(%v) ok = %v", name, longer, ok)
				}
				if ok && !containsPeriod(r.Parts(typ), p) {
					t.Fatalf("%s.RollUp(%v) = %s, whose Parts(%v) lack it", name, longer, r, typ)
				}
				if w, ok := p.Within(longer); ok && (!w.Contains(p) || w.Type() != longer) {
					t.Fatalf("%s.Within(%v) = %s", name, longer, w)
				}
			}
		}
	}
}

var weekStarts = func() map[period.Type]*time.Weekday {
	w := func(d time.Weekday) *time.Weekday { return &d }
	return map[period.Type]*time.Weekday{
		period.Weekly: w(time.Monday), period.WeeklyWednesday: w(time.Wednesday),
		period.WeeklyThursday: w(time.Thursday), period.WeeklyFriday: w(time.Friday),
		period.WeeklySaturday: w(time.Saturday), period.WeeklySunday: w(time.Sunday),
		period.BiWeekly: w(time.Monday),
	}
}()

// biWeek27 reports whether p is the 27th bi-week of a 53-week year, which
// overlaps the next year's first bi-week.
func biWeek27(p period.Period) bool {
	return p.Type() == period.BiWeekly && strings.HasSuffix(p.ID(), "BiW27")
}

func containsPeriod(ps []period.Period, p period.Period) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// Walking every type through fifty years: ids strictly increase and parse
// back, periods tile the calendar, and the parts of consecutive years are
// exactly the walk.
func TestWalk(t *testing.T) {
	perYear := map[period.Type]int{period.Monthly: 12, period.BiMonthly: 6, period.Quarterly: 4,
		period.QuarterlyNov: 4, period.SixMonthly: 2, period.SixMonthlyApril: 2, period.SixMonthlyNov: 2}
	for _, typ := range period.Types() {
		var walk []period.Period
		seen := map[string]bool{}
		for p := typ.PeriodOf(date(1990, 1, 1)); p.Start().Year() < 2040; p = p.Next() {
			if seen[p.ID()] {
				t.Fatalf("%v: %s twice", typ, p)
			}
			seen[p.ID()] = true
			if n := len(walk); n > 0 && !walk[n-1].End().AddDate(0, 0, 1).Equal(p.Start()) && !biWeek27(walk[n-1]) {
				t.Fatalf("%v: gap or overlap between %s and %s", typ, walk[n-1], p)
			}
			walk = append(walk, p)
		}
		if typ != period.Yearly && typ.FrequencyOrder() >= period.Yearly.FrequencyOrder() {
			continue // financial years are not parts of calendar years
		}
		var fromParts []period.Period
		for y := period.Yearly.PeriodOf(date(1991, 1, 1)); y.Start().Year() < 2039; y = y.Next() {
			parts := y.Parts(typ)
			if n, ok := perYear[typ]; ok && len(parts) != n {
				t.Fatalf("%v: %s has %d parts, want %d", typ, y, len(parts), n)
			}
			fromParts = append(fromParts, parts...)
		}
		// fromParts must be a contiguous stretch of the walk.
		i := 0
		for i < len(walk) && walk[i] != fromParts[0] {
			i++
		}
		for j, p := range fromParts {
			if i+j >= len(walk) || walk[i+j] != p {
				t.Fatalf("%v: parts of years diverge from the walk at %s", typ, p)
			}
		}
	}
}
