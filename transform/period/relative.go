package period

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnknownRelative is wrapped by the error [Relative] returns for a name that
// is not a DHIS2 relative period.
var ErrUnknownRelative = errors.New("unknown relative period")

// ErrInvalidOption is wrapped by the error [Relative] returns for a
// [RelativeOptions] field of the wrong kind of type.
var ErrInvalidOption = errors.New("invalid relative period option")

// RelativeOptions tune how [Relative] resolves names. The zero value is what
// DHIS2 does by default.
type RelativeOptions struct {
	// FinancialYear is the financial year type of the *_FINANCIAL_YEAR* names:
	// DHIS2's system setting analyticsFinancialYearStart. One of the Financial*
	// types; zero means FinancialOct, DHIS2's default.
	FinancialYear Type
	// Week is the weekly type of the *_WEEK* names. One of the weekly types;
	// zero means Weekly (weeks starting on Monday), which is what DHIS2 uses.
	Week Type
}

// relativeNames lists the DHIS2 relative periods (RelativePeriodEnum), grouped
// by period type as in the DHIS2 documentation.
var relativeNames = [...]string{
	"TODAY", "YESTERDAY", "LAST_3_DAYS", "LAST_7_DAYS", "LAST_14_DAYS", "LAST_30_DAYS", "LAST_60_DAYS",
	"LAST_90_DAYS", "LAST_180_DAYS",
	"THIS_WEEK", "LAST_WEEK", "WEEKS_THIS_YEAR", "LAST_4_WEEKS", "LAST_12_WEEKS", "LAST_52_WEEKS",
	"THIS_BIWEEK", "LAST_BIWEEK", "LAST_4_BIWEEKS",
	"THIS_MONTH", "LAST_MONTH", "MONTHS_THIS_YEAR", "MONTHS_LAST_YEAR", "LAST_12_MONTHS", "LAST_6_MONTHS",
	"LAST_3_MONTHS",
	"THIS_BIMONTH", "LAST_BIMONTH", "BIMONTHS_THIS_YEAR", "LAST_6_BIMONTHS",
	"THIS_QUARTER", "LAST_QUARTER", "QUARTERS_THIS_YEAR", "QUARTERS_LAST_YEAR", "LAST_4_QUARTERS",
	"THIS_SIX_MONTH", "LAST_SIX_MONTH", "LAST_2_SIXMONTHS",
	"THIS_YEAR", "LAST_YEAR", "LAST_5_YEARS", "LAST_10_YEARS",
	"THIS_FINANCIAL_YEAR", "LAST_FINANCIAL_YEAR", "LAST_5_FINANCIAL_YEARS", "LAST_10_FINANCIAL_YEARS",
}

// RelativeNames returns the names [Relative] accepts, in DHIS2's grouping
// (days, weeks, bi-weeks, months, bi-months, quarters, six-months, years,
// financial years).
func RelativeNames() []string {
	return append([]string(nil), relativeNames[:]...)
}

// Relative resolves a DHIS2 relative period (a RelativePeriodEnum name such as
// "LAST_3_MONTHS") against the calendar date of now, read in now's location, and
// returns its periods oldest first, as DHIS2 analytics does:
//
//   - THIS_X is the period of type X holding today; LAST_X is the one holding
//     today minus one period length (LAST_BIWEEK: today minus 14 days).
//   - LAST_N_DAYS are the N days ending yesterday; LAST_N_WEEKS, LAST_4_BIWEEKS,
//     LAST_N_MONTHS, LAST_6_BIMONTHS, LAST_4_QUARTERS and LAST_2_SIXMONTHS end
//     with the previous period; LAST_N_YEARS and LAST_N_FINANCIAL_YEARS end with
//     the previous year. None of them includes the current period.
//   - WEEKS_/MONTHS_/BIMONTHS_/QUARTERS_THIS_YEAR list every period of the
//     current calendar year, future ones included (the weeks are those numbered
//     in this year, W1 to W52 or W53); MONTHS_/QUARTERS_LAST_YEAR those of the
//     previous year.
//
// Bi-weeks are stepped back 14 days at a time as DHIS2 does, so at the end of a
// year with 53 weeks LAST_4_BIWEEKS can skip BiW27, like DHIS2's own list.
// Names are case-sensitive, as in DHIS2. Errors wrap [ErrUnknownRelative] or
// [ErrInvalidOption].
func Relative(name string, now time.Time, opts RelativeOptions) ([]Period, error) {
	fy := opts.FinancialYear
	if fy == 0 {
		fy = FinancialOct
	}
	if !fy.valid() || fy < FinancialFeb {
		return nil, fmt.Errorf("period: %w: FinancialYear must be a financial year type "+
			"(FinancialFeb, FinancialApril, FinancialJuly, FinancialAug, FinancialSep, FinancialOct or FinancialNov), not %v",
			ErrInvalidOption, fy)
	}
	wk := opts.Week
	if wk == 0 {
		wk = Weekly
	}
	if !wk.valid() || wk.info().kind != kindWeek {
		return nil, fmt.Errorf("period: %w: Week must be a weekly type (Weekly, WeeklyWednesday, "+
			"WeeklyThursday, WeeklyFriday, WeeklySaturday or WeeklySunday), not %v", ErrInvalidOption, wk)
	}

	today := dayOf(now)
	thisYear := Yearly.at(today)
	switch name {
	case "TODAY":
		return one(Daily.at(today)), nil
	case "YESTERDAY":
		return one(Daily.at(today - 1)), nil
	case "LAST_3_DAYS":
		return rolling(Daily.at(today-1), 3), nil
	case "LAST_7_DAYS":
		return rolling(Daily.at(today-1), 7), nil
	case "LAST_14_DAYS":
		return rolling(Daily.at(today-1), 14), nil
	case "LAST_30_DAYS":
		return rolling(Daily.at(today-1), 30), nil
	case "LAST_60_DAYS":
		return rolling(Daily.at(today-1), 60), nil
	case "LAST_90_DAYS":
		return rolling(Daily.at(today-1), 90), nil
	case "LAST_180_DAYS":
		return rolling(Daily.at(today-1), 180), nil

	case "THIS_WEEK":
		return one(wk.at(today)), nil
	case "LAST_WEEK":
		return one(wk.at(today - 7)), nil
	case "WEEKS_THIS_YEAR":
		return thisYear.Parts(wk), nil
	case "LAST_4_WEEKS":
		return rolling(wk.at(today-7), 4), nil
	case "LAST_12_WEEKS":
		return rolling(wk.at(today-7), 12), nil
	case "LAST_52_WEEKS":
		return rolling(wk.at(today-7), 52), nil

	case "THIS_BIWEEK":
		return one(BiWeekly.at(today)), nil
	case "LAST_BIWEEK":
		return one(BiWeekly.at(today - 14)), nil
	case "LAST_4_BIWEEKS":
		return rolling(BiWeekly.at(today-14), 4), nil

	case "THIS_MONTH":
		return one(Monthly.at(today)), nil
	case "LAST_MONTH":
		return one(Monthly.at(today).Prev()), nil
	case "MONTHS_THIS_YEAR":
		return thisYear.Parts(Monthly), nil
	case "MONTHS_LAST_YEAR":
		return thisYear.Prev().Parts(Monthly), nil
	case "LAST_12_MONTHS":
		return rolling(Monthly.at(today).Prev(), 12), nil
	case "LAST_6_MONTHS":
		return rolling(Monthly.at(today).Prev(), 6), nil
	case "LAST_3_MONTHS":
		return rolling(Monthly.at(today).Prev(), 3), nil

	case "THIS_BIMONTH":
		return one(BiMonthly.at(today)), nil
	case "LAST_BIMONTH":
		return one(BiMonthly.at(today).Prev()), nil
	case "BIMONTHS_THIS_YEAR":
		return thisYear.Parts(BiMonthly), nil
	case "LAST_6_BIMONTHS":
		return rolling(BiMonthly.at(today).Prev(), 6), nil

	case "THIS_QUARTER":
		return one(Quarterly.at(today)), nil
	case "LAST_QUARTER":
		return one(Quarterly.at(today).Prev()), nil
	case "QUARTERS_THIS_YEAR":
		return thisYear.Parts(Quarterly), nil
	case "QUARTERS_LAST_YEAR":
		return thisYear.Prev().Parts(Quarterly), nil
	case "LAST_4_QUARTERS":
		return rolling(Quarterly.at(today).Prev(), 4), nil

	case "THIS_SIX_MONTH":
		return one(SixMonthly.at(today)), nil
	case "LAST_SIX_MONTH":
		return one(SixMonthly.at(today).Prev()), nil
	case "LAST_2_SIXMONTHS":
		return rolling(SixMonthly.at(today).Prev(), 2), nil

	case "THIS_YEAR":
		return one(thisYear), nil
	case "LAST_YEAR":
		return one(thisYear.Prev()), nil
	case "LAST_5_YEARS":
		return rolling(thisYear.Prev(), 5), nil
	case "LAST_10_YEARS":
		return rolling(thisYear.Prev(), 10), nil

	case "THIS_FINANCIAL_YEAR":
		return one(fy.at(today)), nil
	case "LAST_FINANCIAL_YEAR":
		return one(fy.at(today).Prev()), nil
	case "LAST_5_FINANCIAL_YEARS":
		return rolling(fy.at(today).Prev(), 5), nil
	case "LAST_10_FINANCIAL_YEARS":
		return rolling(fy.at(today).Prev(), 10), nil
	}
	return nil, unknownRelative(name)
}

func one(p Period) []Period { return []Period{p} }

// rolling returns the n periods ending with last, oldest first. Bi-weeks are
// found by stepping back 14 days from last's first day, as DHIS2's
// generateRollingPeriods does; every other type steps by its ids, which is the
// same thing for types whose periods neither overlap nor leave gaps.
func rolling(last Period, n int) []Period {
	out := make([]Period, n)
	for i := range out {
		back := n - 1 - i
		if last.typ == BiWeekly {
			out[i] = BiWeekly.at(last.start - 14*back)
		} else {
			out[i] = last.Shift(-back)
		}
	}
	return out
}

func unknownRelative(name string) error {
	hint := ""
	switch {
	case name == "THIS_DAY":
		hint = "; DHIS2 calls today TODAY"
	default:
		for _, n := range relativeNames {
			if strings.EqualFold(n, name) {
				hint = "; names are upper case, did you mean " + n + "?"
				break
			}
		}
	}
	return fmt.Errorf("period: %w %q%s (see period.RelativeNames for the DHIS2 names)", ErrUnknownRelative, name, hint)
}
