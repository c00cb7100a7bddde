package period_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform/period"
)

// span expands "first..last" of one type into every id from first to last.
func span(tb testing.TB, first, last string) []string {
	tb.Helper()
	p, end := mustParse(tb, first), mustParse(tb, last)
	var out []string
	for ; p != end; p = p.Next() {
		out = append(out, p.ID())
		if len(out) > 1000 {
			tb.Fatalf("span %s..%s does not end", first, last)
		}
	}
	return append(out, end.ID())
}

func list(s string) []string { return strings.Fields(s) }

type relCase struct {
	name string
	opts period.RelativeOptions
	want []string
}

func checkRelative(t *testing.T, now time.Time, cases []relCase) {
	t.Helper()
	for _, c := range cases {
		got, err := period.Relative(c.name, now, c.opts)
		if err != nil {
			t.Errorf("%s at %s: %v", c.name, now.Format(time.DateOnly), err)
			continue
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("%s at %s (%+v):\n got  %v\n want %v", c.name, now.Format(time.DateOnly), c.opts, ids(got), c.want)
		}
	}
}

// A Sunday late in 2026, a year with 53 ISO weeks.
func TestRelative20261122(t *testing.T) {
	now := time.Date(2026, 11, 22, 15, 4, 5, 0, time.UTC)
	april := period.RelativeOptions{FinancialYear: period.FinancialApril}
	nov := period.RelativeOptions{FinancialYear: period.FinancialNov}
	july := period.RelativeOptions{FinancialYear: period.FinancialJuly}
	sunday := period.RelativeOptions{Week: period.WeeklySunday}
	checkRelative(t, now, []relCase{
		{"TODAY", period.RelativeOptions{}, list("20261122")},
		{"YESTERDAY", period.RelativeOptions{}, list("20261121")},
		{"LAST_3_DAYS", period.RelativeOptions{}, list("20261119 20261120 20261121")},
		{"LAST_7_DAYS", period.RelativeOptions{}, span(t, "20261115", "20261121")},
		{"LAST_14_DAYS", period.RelativeOptions{}, span(t, "20261108", "20261121")},
		{"LAST_30_DAYS", period.RelativeOptions{}, span(t, "20261023", "20261121")},
		{"LAST_60_DAYS", period.RelativeOptions{}, span(t, "20260923", "20261121")},
		{"LAST_90_DAYS", period.RelativeOptions{}, span(t, "20260824", "20261121")},
		{"LAST_180_DAYS", period.RelativeOptions{}, span(t, "20260526", "20261121")},
		{"THIS_WEEK", period.RelativeOptions{}, list("2026W47")}, // 16–22 November
		{"LAST_WEEK", period.RelativeOptions{}, list("2026W46")},
		{"THIS_WEEK", sunday, list("2026SunW47")}, // 22–28 November; SunW1 starts on 4 January
		{"LAST_WEEK", sunday, list("2026SunW46")},
		{"WEEKS_THIS_YEAR", period.RelativeOptions{}, span(t, "2026W1", "2026W53")},
		{"LAST_4_WEEKS", period.RelativeOptions{}, list("2026W43 2026W44 2026W45 2026W46")},
		{"LAST_12_WEEKS", period.RelativeOptions{}, span(t, "2026W35", "2026W46")},
		{"LAST_52_WEEKS", period.RelativeOptions{}, span(t, "2025W47", "2026W46")},
		{"THIS_BIWEEK", period.RelativeOptions{}, list("2026BiW24")}, // weeks 47–48
		{"LAST_BIWEEK", period.RelativeOptions{}, list("2026BiW23")},
		{"LAST_4_BIWEEKS", period.RelativeOptions{}, list("2026BiW20 2026BiW21 2026BiW22 2026BiW23")},
		{"THIS_MONTH", period.RelativeOptions{}, list("202611")},
		{"LAST_MONTH", period.RelativeOptions{}, list("202610")},
		{"MONTHS_THIS_YEAR", period.RelativeOptions{}, span(t, "202601", "202612")},
		{"MONTHS_LAST_YEAR", period.RelativeOptions{}, span(t, "202501", "202512")},
		{"LAST_12_MONTHS", period.RelativeOptions{}, span(t, "202511", "202610")},
		{"LAST_6_MONTHS", period.RelativeOptions{}, span(t, "202605", "202610")},
		{"LAST_3_MONTHS", period.RelativeOptions{}, list("202608 202609 202610")},
		{"THIS_BIMONTH", period.RelativeOptions{}, list("202606B")},
		{"LAST_BIMONTH", period.RelativeOptions{}, list("202605B")},
		{"BIMONTHS_THIS_YEAR", period.RelativeOptions{}, list("202601B 202602B 202603B 202604B 202605B 202606B")},
		{"LAST_6_BIMONTHS", period.RelativeOptions{}, list("202506B 202601B 202602B 202603B 202604B 202605B")},
		{"THIS_QUARTER", period.RelativeOptions{}, list("2026Q4")},
		{"LAST_QUARTER", period.RelativeOptions{}, list("2026Q3")},
		{"QUARTERS_THIS_YEAR", period.RelativeOptions{}, list("2026Q1 2026Q2 2026Q3 2026Q4")},
		{"QUARTERS_LAST_YEAR", period.RelativeOptions{}, list("2025Q1 2025Q2 2025Q3 2025Q4")},
		{"LAST_4_QUARTERS", period.RelativeOptions{}, list("2025Q4 2026Q1 2026Q2 2026Q3")},
		{"THIS_SIX_MONTH", period.RelativeOptions{}, list("2026S2")},
		{"LAST_SIX_MONTH", period.RelativeOptions{}, list("2026S1")},
		{"LAST_2_SIXMONTHS", period.RelativeOptions{}, list("2025S2 2026S1")},
		{"THIS_YEAR", period.RelativeOptions{}, list("2026")},
		{"LAST_YEAR", period.RelativeOptions{}, list("2025")},
		{"LAST_5_YEARS", period.RelativeOptions{}, list("2021 2022 2023 2024 2025")},
		{"LAST_10_YEARS", period.RelativeOptions{}, span(t, "2016", "2025")},
		{"THIS_FINANCIAL_YEAR", period.RelativeOptions{}, list("2026Oct")}, // DHIS2's default: October
		{"LAST_FINANCIAL_YEAR", period.RelativeOptions{}, list("2025Oct")},
		{"LAST_5_FINANCIAL_YEARS", period.RelativeOptions{}, list("2021Oct 2022Oct 2023Oct 2024Oct 2025Oct")},
		{"LAST_10_FINANCIAL_YEARS", period.RelativeOptions{}, span(t, "2016Oct", "2025Oct")},
		{"THIS_FINANCIAL_YEAR", april, list("2026April")},
		{"LAST_FINANCIAL_YEAR", april, list("2025April")},
		{"THIS_FINANCIAL_YEAR", july, list("2026July")},
		{"THIS_FINANCIAL_YEAR", nov, list("2027Nov")}, // Nov 2026 – Oct 2027, named by its end
		{"LAST_FINANCIAL_YEAR", nov, list("2026Nov")},
		{"LAST_5_FINANCIAL_YEARS", nov, list("2022Nov 2023Nov 2024Nov 2025Nov 2026Nov")},
	})
}

// New Year's Day 2024, a Monday: every "last" period is in the previous year.
func TestRelativeYearBoundary(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	checkRelative(t, now, []relCase{
		{"TODAY", period.RelativeOptions{}, list("20240101")},
		{"YESTERDAY", period.RelativeOptions{}, list("20231231")},
		{"LAST_3_DAYS", period.RelativeOptions{}, list("20231229 20231230 20231231")},
		{"THIS_WEEK", period.RelativeOptions{}, list("2024W1")},
		{"LAST_WEEK", period.RelativeOptions{}, list("2023W52")},
		{"LAST_4_WEEKS", period.RelativeOptions{}, list("2023W49 2023W50 2023W51 2023W52")},
		{"THIS_BIWEEK", period.RelativeOptions{}, list("2024BiW1")},
		{"LAST_BIWEEK", period.RelativeOptions{}, list("2023BiW26")},
		{"THIS_MONTH", period.RelativeOptions{}, list("202401")},
		{"LAST_MONTH", period.RelativeOptions{}, list("202312")},
		{"LAST_12_MONTHS", period.RelativeOptions{}, span(t, "202301", "202312")},
		{"MONTHS_LAST_YEAR", period.RelativeOptions{}, span(t, "202301", "202312")},
		{"LAST_BIMONTH", period.RelativeOptions{}, list("202306B")},
		{"LAST_6_BIMONTHS", period.RelativeOptions{}, list("202301B 202302B 202303B 202304B 202305B 202306B")},
		{"LAST_QUARTER", period.RelativeOptions{}, list("2023Q4")},
		{"QUARTERS_LAST_YEAR", period.RelativeOptions{}, list("2023Q1 2023Q2 2023Q3 2023Q4")},
		{"LAST_SIX_MONTH", period.RelativeOptions{}, list("2023S2")},
		{"THIS_YEAR", period.RelativeOptions{}, list("2024")},
		{"LAST_YEAR", period.RelativeOptions{}, list("2023")},
		{"LAST_10_YEARS", period.RelativeOptions{}, span(t, "2014", "2023")},
		{"WEEKS_THIS_YEAR", period.RelativeOptions{}, span(t, "2024W1", "2024W52")},
		{"THIS_FINANCIAL_YEAR", period.RelativeOptions{}, list("2023Oct")},
		{"LAST_FINANCIAL_YEAR", period.RelativeOptions{}, list("2022Oct")},
		{"LAST_5_FINANCIAL_YEARS", period.RelativeOptions{}, span(t, "2018Oct", "2022Oct")},
	})
}

// 1 January 2021 lies in 2020W53; 5 January 2021 in 2021W1, just after the
// 27th bi-week of 2020.
func TestRelativeWeek53(t *testing.T) {
	checkRelative(t, time.Date(2021, 1, 1, 12, 0, 0, 0, time.UTC), []relCase{
		{"THIS_WEEK", period.RelativeOptions{}, list("2020W53")},
		{"LAST_WEEK", period.RelativeOptions{}, list("2020W52")},
		{"LAST_4_WEEKS", period.RelativeOptions{}, list("2020W49 2020W50 2020W51 2020W52")},
		{"LAST_12_WEEKS", period.RelativeOptions{}, span(t, "2020W41", "2020W52")},
		{"LAST_52_WEEKS", period.RelativeOptions{}, span(t, "2020W1", "2020W52")},
		// The weeks numbered in 2021: 1 January itself is in 2020W53.
		{"WEEKS_THIS_YEAR", period.RelativeOptions{}, span(t, "2021W1", "2021W52")},
		{"THIS_BIWEEK", period.RelativeOptions{}, list("2020BiW27")}, // 28 Dec 2020 – 10 Jan 2021
		{"LAST_BIWEEK", period.RelativeOptions{}, list("2020BiW26")},
		{"THIS_YEAR", period.RelativeOptions{}, list("2021")},
		{"THIS_MONTH", period.RelativeOptions{}, list("202101")},
	})
	checkRelative(t, time.Date(2021, 1, 12, 12, 0, 0, 0, time.UTC), []relCase{
		{"THIS_BIWEEK", period.RelativeOptions{}, list("2021BiW1")},
		{"LAST_BIWEEK", period.RelativeOptions{}, list("2020BiW27")}, // 29 December
		{"LAST_4_BIWEEKS", period.RelativeOptions{}, list("2020BiW24 2020BiW25 2020BiW26 2020BiW27")},
	})
	// As in DHIS2, stepping back 14 days from 5 January lands in BiW26, so the
	// overlapping BiW27 is not listed.
	checkRelative(t, time.Date(2021, 1, 5, 12, 0, 0, 0, time.UTC), []relCase{
		{"THIS_BIWEEK", period.RelativeOptions{}, list("2021BiW1")},
		{"LAST_BIWEEK", period.RelativeOptions{}, list("2020BiW26")},
		{"LAST_4_BIWEEKS", period.RelativeOptions{}, list("2020BiW23 2020BiW24 2020BiW25 2020BiW26")},
	})
}

// Expectations asserted by DHIS2's RelativePeriodsTest (dhis2-core,
// dhis-2/dhis-api/src/test/java/org/hisp/dhis/period/RelativePeriodsTest.java).
func TestRelativeDHIS2Tests(t *testing.T) {
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		now time.Time
		relCase
	}{
		{at(2001, 7, 1), relCase{"TODAY", period.RelativeOptions{}, list("20010701")}},
		{at(2001, 7, 2), relCase{"YESTERDAY", period.RelativeOptions{}, list("20010701")}},
		{at(2001, 7, 4), relCase{"LAST_3_DAYS", period.RelativeOptions{}, list("20010701 20010702 20010703")}},
		{at(2001, 7, 15), relCase{"LAST_30_DAYS", period.RelativeOptions{}, span(t, "20010615", "20010714")}},
		{at(2001, 7, 15), relCase{"THIS_MONTH", period.RelativeOptions{}, list("200107")}},
		{at(2001, 7, 15), relCase{"LAST_MONTH", period.RelativeOptions{}, list("200106")}},
		{at(2001, 1, 15), relCase{"THIS_BIWEEK", period.RelativeOptions{}, list("2001BiW2")}}, // 15–28 Jan
		{at(2001, 1, 15), relCase{"LAST_BIWEEK", period.RelativeOptions{}, list("2001BiW1")}}, // 1–14 Jan
		{at(2001, 7, 15), relCase{"THIS_BIMONTH", period.RelativeOptions{}, list("200104B")}},
		{at(2001, 7, 15), relCase{"LAST_BIMONTH", period.RelativeOptions{}, list("200103B")}},
		{at(2001, 7, 15), relCase{"THIS_QUARTER", period.RelativeOptions{}, list("2001Q3")}},
		{at(2001, 7, 15), relCase{"LAST_QUARTER", period.RelativeOptions{}, list("2001Q2")}},
		{at(2001, 7, 15), relCase{"THIS_SIX_MONTH", period.RelativeOptions{}, list("2001S2")}},
		{at(2001, 7, 15), relCase{"LAST_SIX_MONTH", period.RelativeOptions{}, list("2001S1")}},
		{at(2001, 1, 1), relCase{"LAST_12_MONTHS", period.RelativeOptions{}, span(t, "200001", "200012")}},
		{at(2001, 1, 1), relCase{"LAST_10_YEARS", period.RelativeOptions{}, span(t, "1991", "2000")}},
		{at(2001, 1, 1), relCase{"LAST_10_FINANCIAL_YEARS", period.RelativeOptions{}, span(t, "1990Oct", "1999Oct")}},
		{at(2001, 4, 1), relCase{"MONTHS_THIS_YEAR", period.RelativeOptions{}, span(t, "200101", "200112")}},
		{at(2001, 4, 1), relCase{"BIMONTHS_THIS_YEAR", period.RelativeOptions{}, span(t, "200101B", "200106B")}},
		{at(2001, 4, 1), relCase{"QUARTERS_THIS_YEAR", period.RelativeOptions{}, list("2001Q1 2001Q2 2001Q3 2001Q4")}},
		{at(2012, 1, 20), relCase{"LAST_WEEK", period.RelativeOptions{}, list("2012W2")}},                            // 9–15 Jan
		{at(2010, 5, 4), relCase{"LAST_4_WEEKS", period.RelativeOptions{}, list("2010W14 2010W15 2010W16 2010W17")}}, // 5 Apr – 2 May
		{at(2010, 5, 4), relCase{"LAST_12_WEEKS", period.RelativeOptions{}, span(t, "2010W6", "2010W17")}},           // from 8 Feb
		{at(2020, 10, 15), relCase{"THIS_YEAR", period.RelativeOptions{}, list("2020")}},
		{at(2020, 1, 15), relCase{"THIS_QUARTER", period.RelativeOptions{}, list("2020Q1")}},
	}
	for _, c := range cases {
		checkRelative(t, c.now, []relCase{c.relCase})
	}
	// The spec's example: LAST_3_MONTHS from 2021-08-15 (dhis2.md §11.2).
	checkRelative(t, at(2021, 8, 15), []relCase{{"LAST_3_MONTHS", period.RelativeOptions{}, list("202105 202106 202107")}})
}

// For many dates: LAST_ names and YESTERDAY end before today, THIS_ names and
// TODAY hold today, lists are ordered and have the length their name says.
func TestRelativeInvariants(t *testing.T) {
	counts := map[string]int{"LAST_3_DAYS": 3, "LAST_7_DAYS": 7, "LAST_14_DAYS": 14, "LAST_30_DAYS": 30,
		"LAST_60_DAYS": 60, "LAST_90_DAYS": 90, "LAST_180_DAYS": 180, "LAST_4_WEEKS": 4, "LAST_12_WEEKS": 12,
		"LAST_52_WEEKS": 52, "LAST_4_BIWEEKS": 4, "LAST_12_MONTHS": 12, "LAST_6_MONTHS": 6, "LAST_3_MONTHS": 3,
		"MONTHS_THIS_YEAR": 12, "MONTHS_LAST_YEAR": 12, "BIMONTHS_THIS_YEAR": 6, "LAST_6_BIMONTHS": 6,
		"QUARTERS_THIS_YEAR": 4, "QUARTERS_LAST_YEAR": 4, "LAST_4_QUARTERS": 4, "LAST_2_SIXMONTHS": 2,
		"LAST_5_YEARS": 5, "LAST_10_YEARS": 10, "LAST_5_FINANCIAL_YEARS": 5, "LAST_10_FINANCIAL_YEARS": 10}
	names := period.RelativeNames()
	if len(names) != 45 {
		t.Fatalf("RelativeNames() has %d names, want the 45 of DHIS2's RelativePeriodEnum", len(names))
	}
	rng := rand.New(rand.NewPCG(7, 11))
	weekOpts := []period.Type{period.Weekly, period.WeeklyWednesday, period.WeeklyThursday, period.WeeklyFriday,
		period.WeeklySaturday, period.WeeklySunday}
	fyOpts := []period.Type{period.FinancialFeb, period.FinancialApril, period.FinancialJuly, period.FinancialAug,
		period.FinancialSep, period.FinancialOct, period.FinancialNov}
	for range 300 {
		now := date(1995, 1, 1).AddDate(0, 0, rng.IntN(40*366)).Add(time.Duration(rng.IntN(86400)) * time.Second)
		today := period.Daily.PeriodOf(now)
		opts := period.RelativeOptions{Week: weekOpts[rng.IntN(len(weekOpts))], FinancialYear: fyOpts[rng.IntN(len(fyOpts))]}
		for _, name := range names {
			ps, err := period.Relative(name, now, opts)
			if err != nil {
				t.Fatalf("%s at %v: %v", name, now, err)
			}
			if n, ok := counts[name]; ok && len(ps) != n {
				t.Fatalf("%s at %v: %d periods, want %d", name, now, len(ps), n)
			}
			if name == "WEEKS_THIS_YEAR" && (len(ps) < 52 || len(ps) > 53) {
				t.Fatalf("%s at %v: %d weeks", name, now, len(ps))
			}
			for i := 1; i < len(ps); i++ {
				if ps[i].Type() != ps[0].Type() || !ps[i-1].Start().Before(ps[i].Start()) {
					t.Fatalf("%s at %v: not one type in order: %v", name, now, ids(ps))
				}
			}
			last := ps[len(ps)-1]
			switch {
			case strings.HasPrefix(name, "LAST_") || name == "YESTERDAY" || strings.HasSuffix(name, "_LAST_YEAR"):
				if !last.End().Before(today.Start()) {
					t.Fatalf("%s at %v includes the current period: %v", name, now, ids(ps))
				}
			case name == "WEEKS_THIS_YEAR":
				// Early January can still be in the last week of the previous year.
			default: // TODAY, THIS_*, *_THIS_YEAR
				if !slices.ContainsFunc(ps, func(p period.Period) bool { return p.Contains(today) }) {
					t.Fatalf("%s at %v does not hold today: %v", name, now, ids(ps))
				}
			}
			switch {
			case strings.Contains(name, "WEEK") && !strings.Contains(name, "BIWEEK"):
				if ps[0].Type() != opts.Week {
					t.Fatalf("%s with %+v gave %v periods", name, opts, ps[0].Type())
				}
			case strings.Contains(name, "FINANCIAL"):
				if ps[0].Type() != opts.FinancialYear {
					t.Fatalf("%s with %+v gave %v periods", name, opts, ps[0].Type())
				}
			}
		}
	}
}

func TestRelativeErrors(t *testing.T) {
	now := time.Date(2024, 5, 5, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ name, hint string }{
		{"", `""`},
		{"THIS_DAY", "TODAY"},
		{"last_month", "did you mean LAST_MONTH?"},
		{"Last_3_Months", "did you mean LAST_3_MONTHS?"},
		{"LAST_CHRISTMAS", `"LAST_CHRISTMAS"`},
		{"LAST_2_YEARS", `"LAST_2_YEARS"`},
		{" THIS_YEAR", `" THIS_YEAR"`},
	} {
		ps, err := period.Relative(tt.name, now, period.RelativeOptions{})
		if !errors.Is(err, period.ErrUnknownRelative) || ps != nil {
			t.Errorf("Relative(%q) = %v, %v; want ErrUnknownRelative", tt.name, ps, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.hint) || len(err.Error()) > 200 {
			t.Errorf("Relative(%q): error %q should be short and say %q", tt.name, err, tt.hint)
		}
	}
	for _, opts := range []period.RelativeOptions{
		{FinancialYear: period.Yearly},
		{FinancialYear: period.Monthly},
		{FinancialYear: period.Type(200)},
		{Week: period.BiWeekly},
		{Week: period.Daily},
	} {
		if _, err := period.Relative("THIS_YEAR", now, opts); !errors.Is(err, period.ErrInvalidOption) {
			t.Errorf("Relative with %+v: err = %v, want ErrInvalidOption", opts, err)
		}
	}
	names := period.RelativeNames()
	names[0] = "changed"
	if period.RelativeNames()[0] != "TODAY" {
		t.Error("RelativeNames must return a copy")
	}
}
