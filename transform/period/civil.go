package period

import "time"

// Days are counted from 1970-01-01 (day 0) in the proleptic Gregorian calendar.
// The conversions are Howard Hinnant's civil-date algorithms, which are exact
// for every year and need no tables.

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int) int {
	return a - floorDiv(a, b)*b
}

// daysFromCivil returns the day number of y-m-d (m 1..12, d 1..31).
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400          // [0, 399]
	mp := (m + 9) % 12          // March = 0
	doy := (153*mp+2)/5 + d - 1 // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int) (y, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100) // [0, 365]
	mp := (5*doy + 2) / 153                  // March = 0
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
		y++
	}
	return y, m, d
}

// weekday returns the weekday of a day number, numbered as time.Weekday (Sunday = 0).
func weekday(z int) int {
	return floorMod(z+4, 7) // 1970-01-01 was a Thursday
}

func isLeap(y int) bool {
	return y%4 == 0 && (y%100 != 0 || y%400 == 0)
}

func daysInMonth(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// monthDay returns the day number of the first day of an absolute month
// (year*12 + month-1).
func monthDay(abs int) int {
	return daysFromCivil(floorDiv(abs, 12), floorMod(abs, 12)+1, 1)
}

// dayOf returns the day number of t's calendar date in t's own location.
func dayOf(t time.Time) int {
	y, m, d := t.Date()
	return daysFromCivil(y, int(m), d)
}

// timeOf returns a day as midnight UTC.
func timeOf(z int) time.Time {
	y, m, d := civilFromDays(z)
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
}

// Weeks. A week type is identified by the weekday it starts on. Week 1 of a
// week-based year is the week holding 4 January; equivalently a week belongs to
// the year of its fourth day, and its number is counted from there. This is
// java.time's WeekFields.of(startDay, 4), which DHIS2 uses for every weekly type.

// weekStartOf returns the first day of the week (starting on weekday ws) holding day z.
func weekStartOf(z, ws int) int {
	return z - floorMod(weekday(z)-ws, 7)
}

// weekOf returns the week-based year and week number of the week starting on day start.
func weekOf(start int) (year, week int) {
	fourth := start + 3
	year, _, _ = civilFromDays(fourth)
	return year, (fourth-daysFromCivil(year, 1, 1))/7 + 1
}

// firstWeek returns the first day of week 1 of week-based year y for weeks starting on ws.
func firstWeek(y, ws int) int {
	return weekStartOf(daysFromCivil(y, 1, 4), ws)
}

// weeksIn returns how many weeks (52 or 53) week-based year y has for weeks
// starting on ws. Each week is counted by its fourth day, so the count is the
// number of times that weekday occurs in the calendar year.
func weeksIn(y, ws int) int {
	fourth := (ws + 3) % 7
	jan1 := weekday(daysFromCivil(y, 1, 1))
	if jan1 == fourth || (isLeap(y) && (jan1+1)%7 == fourth) {
		return 53
	}
	return 52
}

// biWeeksIn returns how many bi-weeks (26 or 27) year y has.
func biWeeksIn(y int) int {
	return (weeksIn(y, monday) + 1) / 2
}

const (
	monday = int(time.Monday)

	// biWeeksPer400 is the number of bi-weeks in 400 years: the Gregorian cycle
	// repeats every 400 years and holds 71 years with 53 ISO weeks (27 bi-weeks).
	biWeeksPer400 = 400*26 + 71
)
