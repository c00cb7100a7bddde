package period

import (
	"errors"
	"strconv"
	"strings"
)

// Errors wrapped by what [Parse], [ParseISO] and [Relative] return, for use with
// errors.Is. The message of the returned error names the input and says what
// was expected.
var (
	// ErrInvalidID: the text is not a DHIS2 period id, or names a period that
	// does not exist (week 53 of a 52-week year, bi-month 07, month 13). DHIS2
	// answers such ids with "Period not valid".
	ErrInvalidID = errors.New("invalid DHIS2 period id")
	// ErrInvalidISO: the text is not an ADX period DHIS2 accepts.
	ErrInvalidISO = errors.New("invalid ADX period")
)

type inputError struct {
	kind   error
	input  string
	reason string
}

func (e *inputError) Error() string {
	return "period: " + e.kind.Error() + " " + strconv.Quote(e.input) + ": " + e.reason
}

func (e *inputError) Unwrap() error { return e.kind }

func badID(id, reason string) error {
	return &inputError{kind: ErrInvalidID, input: id, reason: reason}
}

func badISO(s, reason string) error {
	return &inputError{kind: ErrInvalidISO, input: s, reason: reason}
}

const idForms = "expected a DHIS2 period id: yyyyMMdd or yyyy-MM-dd (Daily), yyyyWn, yyyyWedWn, yyyyThuWn, " +
	"yyyyFriWn, yyyySatWn, yyyySunWn, yyyyBiWn, yyyyMM or yyyy-MM (Monthly), yyyyMMB (BiMonthly, MM = 01–06), " +
	"yyyyQn, yyyyNovQn, yyyySn, yyyyAprilSn, yyyyNovSn, yyyy (Yearly), or yyyy followed by Feb, April, July, " +
	"Aug, Sep, Oct or Nov (financial years)"

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits returns the value of s if it is one or more ASCII digits (at most 4).
func digits(s string) (int, bool) {
	if len(s) == 0 || len(s) > 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// Parse reads a DHIS2 period id, accepting every form DHIS2 accepts (see the
// [Type] constants) including "yyyy-MM-dd" and "yyyy-MM" and week numbers with
// a leading zero. It rejects periods that do not exist, such as week 53 of a
// year with 52 weeks, and years outside 0001–9999. Errors wrap [ErrInvalidID].
func Parse(id string) (Period, error) {
	if len(id) < 4 {
		return Period{}, badID(id, idForms)
	}
	y, ok := digits(id[:4])
	if !ok {
		return Period{}, badID(id, idForms)
	}
	if y == 0 {
		return Period{}, badID(id, "year 0000 is not supported; years run from 0001 to 9999")
	}
	rest := id[4:]
	switch {
	case rest == "":
		return Yearly.fromMonth(y * 12), nil
	case rest[0] == '-': // yyyy-MM or yyyy-MM-dd
		if len(rest) == 3 {
			if m, ok := digits(rest[1:3]); ok {
				return parseMonth(id, y, m)
			}
		}
		if len(rest) == 6 && rest[3] == '-' {
			m, ok1 := digits(rest[1:3])
			d, ok2 := digits(rest[4:6])
			if ok1 && ok2 {
				return parseDay(id, y, m, d)
			}
		}
		return Period{}, badID(id, idForms)
	case isDigit(rest[0]): // yyyyMM, yyyyMMB or yyyyMMdd
		switch {
		case len(rest) == 2:
			if m, ok := digits(rest); ok {
				return parseMonth(id, y, m)
			}
		case len(rest) == 3 && rest[2] == 'B':
			if b, ok := digits(rest[:2]); ok {
				if b < 1 || b > 6 {
					return Period{}, badID(id, "the two digits before B are the bi-month index 01–06 "+
						"(01B = January–February … 06B = November–December), not a month")
				}
				return BiMonthly.fromMonth(y*12 + 2*(b-1)), nil
			}
		case len(rest) == 4:
			m, ok1 := digits(rest[:2])
			d, ok2 := digits(rest[2:])
			if ok1 && ok2 {
				return parseDay(id, y, m, d)
			}
		}
		return Period{}, badID(id, idForms)
	}
	// yyyy + word + optional number: 2024W5, 2024NovQ1, 2024April, …
	i := 0
	for i < len(rest) && !isDigit(rest[i]) {
		i++
	}
	word, num := rest[:i], rest[i:]
	t := typeBySuffix(word)
	if t == 0 {
		return Period{}, badID(id, idForms)
	}
	ti := t.info()
	if ti.kind == kindMonth && ti.months == 12 { // financial year: no number
		if num != "" {
			return Period{}, badID(id, idForms)
		}
		if ti.offset == 10 { // FinancialNov is named after the year it ends in
			return t.fromMonth((y-1)*12 + ti.offset), nil
		}
		return t.fromMonth(y*12 + ti.offset), nil
	}
	maxDigits := 1
	if ti.kind != kindMonth {
		maxDigits = 2
	}
	n, ok := digits(num)
	if !ok || len(num) > maxDigits {
		return Period{}, badID(id, idForms)
	}
	switch ti.kind {
	case kindWeek:
		if w := weeksIn(y, ti.weekday); n < 1 || n > w {
			return Period{}, badID(id, "week "+strconv.Itoa(n)+" does not exist: "+t.String()+
				" year "+strconv.Itoa(y)+" has weeks 1–"+strconv.Itoa(w))
		}
		s := firstWeek(y, ti.weekday) + 7*(n-1)
		return Period{typ: t, start: s, end: s + 6}, nil
	case kindBiWeek:
		if b := biWeeksIn(y); n < 1 || n > b {
			return Period{}, badID(id, "bi-week "+strconv.Itoa(n)+" does not exist: year "+strconv.Itoa(y)+
				" has bi-weeks 1–"+strconv.Itoa(b))
		}
		s := firstWeek(y, monday) + 14*(n-1)
		return Period{typ: t, start: s, end: s + 13}, nil
	}
	per := 12 / ti.months // quarters or halves in a year
	if n < 1 || n > per {
		what := "quarter"
		if ti.months == 6 {
			what = "half-year"
		}
		return Period{}, badID(id, what+" "+strconv.Itoa(n)+" does not exist; expected 1–"+strconv.Itoa(per))
	}
	start := y*12 + ti.offset
	if ti.offset == 10 { // QuarterlyNov and SixMonthlyNov start in November of the year before
		start -= 12
	}
	return t.fromMonth(start + (n-1)*ti.months), nil
}

// typeBySuffix returns the type whose id has word between the year and the
// number, or 0.
func typeBySuffix(word string) Type {
	switch word {
	case "W":
		return Weekly
	case "WedW":
		return WeeklyWednesday
	case "ThuW":
		return WeeklyThursday
	case "FriW":
		return WeeklyFriday
	case "SatW":
		return WeeklySaturday
	case "SunW":
		return WeeklySunday
	case "BiW":
		return BiWeekly
	case "Q":
		return Quarterly
	case "NovQ":
		return QuarterlyNov
	case "S":
		return SixMonthly
	case "AprilS":
		return SixMonthlyApril
	case "NovS":
		return SixMonthlyNov
	case "Feb":
		return FinancialFeb
	case "April":
		return FinancialApril
	case "July":
		return FinancialJuly
	case "Aug":
		return FinancialAug
	case "Sep":
		return FinancialSep
	case "Oct":
		return FinancialOct
	case "Nov":
		return FinancialNov
	}
	return 0
}

func parseMonth(id string, y, m int) (Period, error) {
	if m < 1 || m > 12 {
		return Period{}, badID(id, "month "+strconv.Itoa(m)+" does not exist; expected 01–12")
	}
	return Monthly.fromMonth(y*12 + m - 1), nil
}

func parseDay(id string, y, m, d int) (Period, error) {
	if m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m) {
		return Period{}, badID(id, "not a calendar date")
	}
	z := daysFromCivil(y, m, d)
	return Period{typ: Daily, start: z, end: z}, nil
}

const isoForm = "expected <yyyy-MM-dd>/<duration> with duration P1D, P7D, P14D, P1M, P2M, P3M, P6M or P1Y, " +
	"e.g. 2024-01-01/P1M"

// ParseISO reads an ADX period, a start date and an ISO 8601 duration such as
// "2024-01-01/P1M", the way DHIS2's AdxPeriod.parse does. The duration picks
// the family of period types; for P7D the weekday of the start date and for P6M
// and P1Y its month pick the exact type:
//
//	P1D  Daily
//	P7D  Monday Weekly, Wednesday WeeklyWednesday, Thursday WeeklyThursday,
//	     Friday WeeklyFriday, Saturday WeeklySaturday, Sunday WeeklySunday
//	P14D BiWeekly
//	P1M  Monthly
//	P2M  BiMonthly
//	P3M  Quarterly (QuarterlyNov cannot be expressed in ADX)
//	P6M  January/July SixMonthly, April/October SixMonthlyApril,
//	     November/May SixMonthlyNov
//	P1Y  January Yearly, February FinancialFeb, April FinancialApril,
//	     July FinancialJuly, August FinancialAug, September FinancialSep,
//	     October FinancialOct, November FinancialNov
//
// The result is the period of that type holding the start date, which need not
// be the period's first day ("2024-03-15/P1M" is 202403). Errors wrap
// [ErrInvalidISO]: a Tuesday P7D, a P6M or P1Y in a month no type starts in,
// any other duration.
//
// This follows DHIS2 2.43 and later; DHIS2 2.42 and earlier reject a Friday P7D
// and a February, August or September P1Y.
func ParseISO(s string) (Period, error) {
	slash := strings.IndexByte(s, '/')
	if slash < 0 || strings.IndexByte(s[slash+1:], '/') >= 0 {
		return Period{}, badISO(s, isoForm)
	}
	date, dur := s[:slash], s[slash+1:]
	z, ok := parseDate(date)
	if !ok {
		return Period{}, badISO(s, "start date "+strconv.Quote(date)+" is not a valid yyyy-MM-dd date")
	}
	var t Type
	switch dur {
	case "P1D":
		t = Daily
	case "P7D":
		switch weekday(z) {
		case 1:
			t = Weekly
		case 3:
			t = WeeklyWednesday
		case 4:
			t = WeeklyThursday
		case 5:
			t = WeeklyFriday
		case 6:
			t = WeeklySaturday
		case 0:
			t = WeeklySunday
		default:
			return Period{}, badISO(s, "a P7D period must start on a Monday, Wednesday, Thursday, Friday, "+
				"Saturday or Sunday (the weekly period types); "+date+" is a Tuesday")
		}
	case "P14D":
		t = BiWeekly
	case "P1M":
		t = Monthly
	case "P2M":
		t = BiMonthly
	case "P3M":
		t = Quarterly
	case "P6M":
		switch _, m, _ := civilFromDays(z); m {
		case 1, 7:
			t = SixMonthly
		case 4, 10:
			t = SixMonthlyApril
		case 5, 11:
			t = SixMonthlyNov
		default:
			return Period{}, badISO(s, "a P6M period must start in January or July (SixMonthly), April or "+
				"October (SixMonthlyApril), or May or November (SixMonthlyNov); "+date+" is in "+monthName(m))
		}
	case "P1Y":
		switch _, m, _ := civilFromDays(z); m {
		case 1:
			t = Yearly
		case 2:
			t = FinancialFeb
		case 4:
			t = FinancialApril
		case 7:
			t = FinancialJuly
		case 8:
			t = FinancialAug
		case 9:
			t = FinancialSep
		case 10:
			t = FinancialOct
		case 11:
			t = FinancialNov
		default:
			return Period{}, badISO(s, "a P1Y period must start in January (Yearly) or in February, April, "+
				"July, August, September, October or November (financial years); "+date+" is in "+monthName(m))
		}
	default:
		return Period{}, badISO(s, "duration "+strconv.Quote(dur)+" is not supported; "+isoForm)
	}
	p := t.at(z)
	if y, _ := p.idYear(); y < 1 || y > 9999 {
		return Period{}, badISO(s, "the period's id year "+strconv.Itoa(y)+" is outside 0001–9999")
	}
	return p, nil
}

// parseDate reads a strict yyyy-MM-dd date.
func parseDate(s string) (int, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(s[:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func monthName(m int) string {
	return [...]string{"January", "February", "March", "April", "May", "June", "July", "August",
		"September", "October", "November", "December"}[m-1]
}
