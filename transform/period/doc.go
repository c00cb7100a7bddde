// Package period converts between DHIS2 period identifiers ("202401", "2024W5",
// "2018NovS1", …), the ISO 8601 start/duration intervals that ADX carries
// ("2024-01-01/P1M"), and calendar dates, and resolves DHIS2 relative periods
// ("LAST_3_MONTHS") against a given day.
//
// A [Period] is a value: its [Type], its first and last day (inclusive, as DHIS2
// stores them) and its DHIS2 id. Periods are comparable with ==, so they work as
// map keys. Build one with [Parse] (a DHIS2 id), [ParseISO] (an ADX period) or
// [Type.PeriodOf] (the period of a type that holds a date).
//
// The rules follow DHIS2 (period types of 2.43, including WeeklyFriday,
// QuarterlyNov and FinancialFeb/Aug/Sep), and only the ISO 8601 (Gregorian)
// calendar is supported:
//
//   - Weeks start on the type's weekday; week 1 of a year is the week that holds
//     4 January, so a week belongs to the year that holds at least four of its days.
//     Week numbers are not zero-padded in ids ("2024W5"); "2024W05" is accepted.
//   - BiWeekly period n starts on the Monday of ISO week 2n−1 and lasts 14 days.
//     In a year with 53 ISO weeks, BiW27 starts in week 53 and overlaps BiW1 of
//     the next year by one week, exactly as in DHIS2.
//   - BiMonthly ids carry the bi-month index, not a month: "202402B" is March–April.
//   - FinancialNov, QuarterlyNov and SixMonthlyNov are named after the year in
//     which they end ("2018Nov" is November 2017 – October 2018); every other
//     financial type is named after the year in which it starts.
//   - Ids are defined for years 0001–9999.
//
// Aggregating shorter periods into longer ones follows DHIS2 analytics: a
// period belongs to the longer period that holds its first day, except that a
// week belongs to the one that holds its fourth day (see [Period.RollUp] and
// [Period.Parts]). [Period.Contains] and [Period.Within] test plain date
// containment instead.
//
// Newer DHIS2 releases know more period types (QuarterlyNov from 2.41,
// FinancialSep from 2.42, WeeklyFriday and FinancialFeb/Aug from 2.43); an older
// server refuses their ids. [Type.Since], [AvailableIn] and [ISOAvailableIn] tell
// which release accepts an id or an ADX period.
//
// The package is pure computation: no clock, no I/O, no global state.
package period
