package dhis2test

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// period is a parsed DHIS2 period id (spec dhis2.md §11.1).
type period struct {
	ID    string    // canonical ISO id (e.g. "202401" for "2024-01")
	Type  string    // period type name as in /api/periodTypes
	Start time.Time // first day, UTC midnight
	End   time.Time // last day, UTC midnight
}

var periodTypeNames = map[string]bool{
	"Daily": true, "Weekly": true, "WeeklyWednesday": true, "WeeklyThursday": true, "WeeklyFriday": true,
	"WeeklySaturday": true, "WeeklySunday": true, "BiWeekly": true, "Monthly": true, "BiMonthly": true,
	"Quarterly": true, "QuarterlyNov": true, "SixMonthly": true, "SixMonthlyApril": true, "SixMonthlyNov": true,
	"Yearly": true, "TwoYearly": true, "FinancialFeb": true, "FinancialApril": true, "FinancialJuly": true,
	"FinancialAug": true, "FinancialSep": true, "FinancialOct": true, "FinancialNov": true,
}

var (
	reDaily     = regexp.MustCompile(`^(\d{4})(\d{2})(\d{2})$`)
	reDailyDash = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})$`)
	reWeekly    = regexp.MustCompile(`^(\d{4})(W|WedW|ThuW|FriW|SatW|SunW|BiW)(\d{1,2})$`)
	reMonthly   = regexp.MustCompile(`^(\d{4})-?(\d{2})$`)
	reBiMonthly = regexp.MustCompile(`^(\d{4})(\d{2})B$`)
	reQuarterly = regexp.MustCompile(`^(\d{4})(Nov)?Q(\d)$`)
	reSix       = regexp.MustCompile(`^(\d{4})(April|Nov)?S(\d)$`)
	reYearly    = regexp.MustCompile(`^(\d{4})(Feb|April|July|Aug|Sep|Oct|Nov)?$`)
)

var weekStarts = map[string]struct {
	day  time.Weekday
	name string
}{
	"W": {time.Monday, "Weekly"}, "WedW": {time.Wednesday, "WeeklyWednesday"}, "ThuW": {time.Thursday, "WeeklyThursday"},
	"FriW": {time.Friday, "WeeklyFriday"}, "SatW": {time.Saturday, "WeeklySaturday"}, "SunW": {time.Sunday, "WeeklySunday"},
}

var financialStart = map[string]struct {
	month time.Month
	name  string
}{
	"Feb": {time.February, "FinancialFeb"}, "April": {time.April, "FinancialApril"}, "July": {time.July, "FinancialJuly"},
	"Aug": {time.August, "FinancialAug"}, "Sep": {time.September, "FinancialSep"}, "Oct": {time.October, "FinancialOct"},
	"Nov": {time.November, "FinancialNov"},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// week1Start returns the first day of week 1 of year y for weeks starting on
// day: the week that contains 4 January (WeekFields.of(day, 4)).
func week1Start(y int, day time.Weekday) time.Time {
	jan4 := date(y, time.January, 4)
	back := (int(jan4.Weekday()) - int(day) + 7) % 7
	return jan4.AddDate(0, 0, -back)
}

func weeksInYear(y int, day time.Weekday) int {
	return int(week1Start(y+1, day).Sub(week1Start(y, day)).Hours() / 24 / 7)
}

// parsePeriod parses a DHIS2 period id; ok is false for an invalid id.
func parsePeriod(id string) (period, bool) {
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	mk := func(canon, typ string, start, end time.Time) (period, bool) {
		return period{ID: canon, Type: typ, Start: start, End: end}, true
	}
	if m := reDaily.FindStringSubmatch(id); m != nil {
		return dailyPeriod(atoi(m[1]), atoi(m[2]), atoi(m[3]))
	}
	if m := reDailyDash.FindStringSubmatch(id); m != nil {
		return dailyPeriod(atoi(m[1]), atoi(m[2]), atoi(m[3]))
	}
	if m := reWeekly.FindStringSubmatch(id); m != nil {
		y, n := atoi(m[1]), atoi(m[3])
		if m[2] == "BiW" {
			w := 2*n - 1
			if n < 1 || w > weeksInYear(y, time.Monday) {
				return period{}, false
			}
			s := week1Start(y, time.Monday).AddDate(0, 0, 7*(w-1))
			return mk(fmt.Sprintf("%dBiW%d", y, n), "BiWeekly", s, s.AddDate(0, 0, 13))
		}
		ws := weekStarts[m[2]]
		if n < 1 || n > weeksInYear(y, ws.day) {
			return period{}, false
		}
		s := week1Start(y, ws.day).AddDate(0, 0, 7*(n-1))
		return mk(fmt.Sprintf("%d%s%d", y, m[2], n), ws.name, s, s.AddDate(0, 0, 6))
	}
	if m := reBiMonthly.FindStringSubmatch(id); m != nil {
		y, b := atoi(m[1]), atoi(m[2])
		if b < 1 || b > 6 {
			return period{}, false
		}
		s := date(y, time.Month(2*b-1), 1)
		return mk(id, "BiMonthly", s, s.AddDate(0, 2, -1))
	}
	if m := reMonthly.FindStringSubmatch(id); m != nil && len(id) >= 6 {
		y, mo := atoi(m[1]), atoi(m[2])
		if mo < 1 || mo > 12 {
			return period{}, false
		}
		s := date(y, time.Month(mo), 1)
		return mk(fmt.Sprintf("%d%02d", y, mo), "Monthly", s, s.AddDate(0, 1, -1))
	}
	if m := reQuarterly.FindStringSubmatch(id); m != nil {
		y, q := atoi(m[1]), atoi(m[3])
		if q < 1 || q > 4 {
			return period{}, false
		}
		if m[2] == "Nov" { // named after the year in which Q1..Q4 mostly fall: Q1 = Nov (y-1) – Jan y
			s := date(y-1, time.November, 1).AddDate(0, 3*(q-1), 0)
			return mk(id, "QuarterlyNov", s, s.AddDate(0, 3, -1))
		}
		s := date(y, time.Month(3*q-2), 1)
		return mk(id, "Quarterly", s, s.AddDate(0, 3, -1))
	}
	if m := reSix.FindStringSubmatch(id); m != nil {
		y, h := atoi(m[1]), atoi(m[3])
		if h < 1 || h > 2 {
			return period{}, false
		}
		var s time.Time
		typ := "SixMonthly"
		switch m[2] {
		case "":
			s = date(y, time.Month(6*h-5), 1)
		case "April":
			typ = "SixMonthlyApril"
			s = date(y, time.April, 1).AddDate(0, 6*(h-1), 0)
		case "Nov":
			typ = "SixMonthlyNov"
			s = date(y-1, time.November, 1).AddDate(0, 6*(h-1), 0)
		}
		return mk(id, typ, s, s.AddDate(0, 6, -1))
	}
	if m := reYearly.FindStringSubmatch(id); m != nil {
		y := atoi(m[1])
		if m[2] == "" {
			s := date(y, time.January, 1)
			return mk(id, "Yearly", s, s.AddDate(1, 0, -1))
		}
		f := financialStart[m[2]]
		startYear := y
		if m[2] == "Nov" { // FinancialNov is named by its END year
			startYear = y - 1
		}
		s := date(startYear, f.month, 1)
		return mk(id, f.name, s, s.AddDate(1, 0, -1))
	}
	return period{}, false
}

func dailyPeriod(y, m, d int) (period, bool) {
	t := date(y, time.Month(m), d)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return period{}, false
	}
	return period{ID: t.Format("20060102"), Type: "Daily", Start: t, End: t}, true
}

// periodContaining returns the period of type typ that contains t.
func periodContaining(typ string, t time.Time) (period, bool) {
	t = date(t.Year(), t.Month(), t.Day())
	y := t.Year()
	switch typ {
	case "Daily":
		return parsePeriod(t.Format("20060102"))
	case "Monthly":
		return parsePeriod(t.Format("200601"))
	case "BiMonthly":
		return parsePeriod(fmt.Sprintf("%d%02dB", y, (int(t.Month())+1)/2))
	case "Quarterly":
		return parsePeriod(fmt.Sprintf("%dQ%d", y, (int(t.Month())+2)/3))
	case "SixMonthly":
		return parsePeriod(fmt.Sprintf("%dS%d", y, (int(t.Month())+5)/6))
	case "Yearly":
		return parsePeriod(strconv.Itoa(y))
	case "BiWeekly":
		w, _ := weekContaining(t, time.Monday)
		var wy, wn int
		fmt.Sscanf(w.ID, "%dW%d", &wy, &wn)
		return parsePeriod(fmt.Sprintf("%dBiW%d", wy, (wn+1)/2))
	case "QuarterlyNov": // Q1 = Nov (y-1) – Jan y
		m := int(t.Month())
		if m >= 11 {
			return parsePeriod(fmt.Sprintf("%dNovQ1", y+1))
		}
		return parsePeriod(fmt.Sprintf("%dNovQ%d", y, (m+1)/3+1))
	case "SixMonthlyApril": // S1 = Apr–Sep, S2 = Oct – Mar
		switch m := t.Month(); {
		case m >= time.April && m <= time.September:
			return parsePeriod(fmt.Sprintf("%dAprilS1", y))
		case m >= time.October:
			return parsePeriod(fmt.Sprintf("%dAprilS2", y))
		default:
			return parsePeriod(fmt.Sprintf("%dAprilS2", y-1))
		}
	case "SixMonthlyNov": // S1 = Nov (y-1) – Apr y, S2 = May – Oct
		switch m := t.Month(); {
		case m >= time.November:
			return parsePeriod(fmt.Sprintf("%dNovS1", y+1))
		case m <= time.April:
			return parsePeriod(fmt.Sprintf("%dNovS1", y))
		default:
			return parsePeriod(fmt.Sprintf("%dNovS2", y))
		}
	}
	for _, ws := range weekStarts {
		if ws.name == typ {
			return weekContaining(t, ws.day)
		}
	}
	for suffix, f := range financialStart {
		if f.name == typ {
			sy := y
			if t.Month() < f.month {
				sy--
			}
			if suffix == "Nov" {
				sy++
			}
			return parsePeriod(fmt.Sprintf("%d%s", sy, suffix))
		}
	}
	return period{}, false
}

func weekContaining(t time.Time, day time.Weekday) (period, bool) {
	back := (int(t.Weekday()) - int(day) + 7) % 7
	start := t.AddDate(0, 0, -back)
	// the week belongs to the year of its fourth day
	y := start.AddDate(0, 0, 3).Year()
	n := int(start.Sub(week1Start(y, day)).Hours()/24/7) + 1
	for suffix, ws := range weekStarts {
		if ws.day == day {
			return parsePeriod(fmt.Sprintf("%d%s%d", y, suffix, n))
		}
	}
	return period{}, false
}

// shiftPeriod returns the period n periods after p (n may be negative).
func shiftPeriod(p period, n int) (period, bool) {
	if n == 0 {
		return p, true
	}
	cur := p
	for range abs(n) {
		var next period
		var ok bool
		if n > 0 {
			next, ok = periodContaining(p.Type, cur.End.AddDate(0, 0, 1))
		} else {
			next, ok = periodContaining(p.Type, cur.Start.AddDate(0, 0, -1))
		}
		if !ok {
			return period{}, false
		}
		cur = next
	}
	return cur, true
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// ---------------------------------------------------------------------------
// ADX periods (spec adx.md §6)

var reAdxDuration = regexp.MustCompile(`^P(\d+)([DMY])$`)

// adxPeriodToID converts "<start>/<duration>" to a DHIS2 period id. The error
// text follows AdxPeriod.java of the emulated version (adx.md §9; periods.tsv).
func adxPeriodToID(s string, v Version) (string, error) {
	parts := splitAll(s, '/')
	if len(parts) != 2 {
		return "", fmt.Errorf("%s not in valid <date>/<duration> format", s)
	}
	start, err := time.Parse("2006-01-02", parts[0])
	if err != nil {
		return "", fmt.Errorf("%s not in valid <date>/<duration> format", s)
	}
	dur := parts[1]
	invalid := func(what string) error {
		if v.Minor >= 42 {
			return fmt.Errorf("%s is not a supported duration type", dur)
		}
		return fmt.Errorf("%s is invalid %s type", s, what)
	}
	m := reAdxDuration.FindStringSubmatch(dur)
	if m == nil {
		return "", fmt.Errorf("%s is not a supported duration type", dur)
	}
	y, mo := start.Year(), start.Month()
	switch dur {
	case "P1D":
		return start.Format("20060102"), nil
	case "P7D":
		var suffix string
		switch start.Weekday() {
		case time.Monday:
			suffix = "W"
		case time.Wednesday:
			suffix = "WedW"
		case time.Thursday:
			suffix = "ThuW"
		case time.Friday:
			if v.Minor < 43 {
				return "", invalid("weekly")
			}
			suffix = "FriW"
		case time.Saturday:
			suffix = "SatW"
		case time.Sunday:
			suffix = "SunW"
		default:
			return "", invalid("weekly")
		}
		p, _ := weekContaining(start, weekStarts[suffix].day)
		return p.ID, nil
	case "P14D":
		w, _ := weekContaining(start, time.Monday)
		var wy, wn int
		fmt.Sscanf(w.ID, "%dW%d", &wy, &wn)
		return fmt.Sprintf("%dBiW%d", wy, (wn+1)/2), nil
	case "P1M":
		return start.Format("200601"), nil
	case "P2M":
		return fmt.Sprintf("%d%02dB", y, (int(mo)+1)/2), nil
	case "P3M":
		return fmt.Sprintf("%dQ%d", y, (int(mo)+2)/3), nil
	case "P6M":
		switch mo {
		case time.January, time.July:
			return fmt.Sprintf("%dS%d", y, (int(mo)+5)/6), nil
		case time.April:
			return fmt.Sprintf("%dAprilS1", y), nil
		case time.October:
			return fmt.Sprintf("%dAprilS2", y), nil
		case time.November:
			return fmt.Sprintf("%dNovS1", y+1), nil
		case time.May:
			return fmt.Sprintf("%dNovS2", y), nil
		}
		return "", invalid("sixmonthly")
	case "P1Y":
		switch mo {
		case time.January:
			return strconv.Itoa(y), nil
		case time.April:
			return fmt.Sprintf("%dApril", y), nil
		case time.July:
			return fmt.Sprintf("%dJuly", y), nil
		case time.October:
			return fmt.Sprintf("%dOct", y), nil
		case time.November:
			return fmt.Sprintf("%dNov", y+1), nil
		case time.February, time.August, time.September:
			if v.Minor >= 43 {
				return fmt.Sprintf("%d%s", y, map[time.Month]string{time.February: "Feb", time.August: "Aug", time.September: "Sep"}[mo]), nil
			}
		}
		return "", invalid("yearly")
	}
	return "", fmt.Errorf("%s is not a supported duration type", dur)
}

func splitAll(s string, sep byte) []string {
	var out []string
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			out = append(out, s[last:i])
			last = i + 1
		}
	}
	return append(out, s[last:])
}
