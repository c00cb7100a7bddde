package period

import (
	"fmt"
	"strconv"
	"time"
)

// Period is one DHIS2 period: a type and the days from Start to End, both
// inclusive. The zero Period is "no period" (see [Period.IsZero]). Periods are
// comparable: two periods are == when they have the same type and days.
type Period struct {
	typ        Type
	start, end int // day numbers, 0 = 1970-01-01
}

// IsZero reports whether p is the zero Period.
func (p Period) IsZero() bool { return p.typ == 0 }

// Type returns the period's type.
func (p Period) Type() Type { return p.typ }

// Start returns the first day of the period as midnight UTC.
func (p Period) Start() time.Time {
	if p.IsZero() {
		return time.Time{}
	}
	return timeOf(p.start)
}

// End returns the last day of the period (inclusive, as DHIS2 stores it) as
// midnight UTC. The period ends when that day ends.
func (p Period) End() time.Time {
	if p.IsZero() {
		return time.Time{}
	}
	return timeOf(p.end)
}

// Days returns the number of days in the period.
func (p Period) Days() int {
	if p.IsZero() {
		return 0
	}
	return p.end - p.start + 1
}

// String returns the DHIS2 id, like [Period.ID].
func (p Period) String() string { return p.ID() }

// ID returns the period's DHIS2 id in canonical form ("202401", not "2024-01";
// "2024W5", not "2024W05"). It returns "" for the zero Period.
func (p Period) ID() string {
	if p.IsZero() {
		return ""
	}
	var buf [16]byte
	return string(p.appendID(buf[:0]))
}

// idYear returns the year written in the period's id and, for types with a
// number after the year, that number.
func (p Period) idYear() (year, n int) {
	ti := p.typ.info()
	switch ti.kind {
	case kindDay:
		y, _, _ := civilFromDays(p.start)
		return y, 0
	case kindWeek:
		return weekOf(p.start)
	case kindBiWeek:
		y, w := weekOf(p.start)
		return y, (w + 1) / 2
	}
	y, m, _ := civilFromDays(p.start)
	abs := y*12 + m - 1
	// Month-based periods are numbered within the 12 months that start on the
	// type's offset month: January for Quarterly, April for SixMonthlyApril,
	// November for the Nov types.
	yearStart := abs - floorMod(abs-ti.offset, 12)
	n = (abs-yearStart)/ti.months + 1
	year = floorDiv(yearStart, 12)
	if ti.offset == 10 { // the November types are named after the year they end in
		year++
	}
	return year, n
}

// append4 appends y as at least four digits.
func append4(b []byte, y int) []byte {
	if y >= 0 && y < 10000 {
		return append(b, '0'+byte(y/1000), '0'+byte(y/100%10), '0'+byte(y/10%10), '0'+byte(y%10))
	}
	return strconv.AppendInt(b, int64(y), 10)
}

func append2(b []byte, n int) []byte {
	return append(b, '0'+byte(n/10%10), '0'+byte(n%10))
}

func (p Period) appendID(b []byte) []byte {
	ti := p.typ.info()
	switch p.typ {
	case Daily:
		y, m, d := civilFromDays(p.start)
		return append2(append2(append4(b, y), m), d)
	case Monthly:
		y, m, _ := civilFromDays(p.start)
		return append2(append4(b, y), m)
	case BiMonthly:
		y, n := p.idYear()
		return append(append2(append4(b, y), n), 'B')
	case Yearly:
		y, _ := p.idYear()
		return append4(b, y)
	}
	y, n := p.idYear()
	b = append(append4(b, y), ti.suffix...)
	if ti.kind == kindMonth && ti.months == 12 {
		return b // financial years: no number
	}
	return strconv.AppendInt(b, int64(n), 10)
}

// ISO returns the period as an ADX (ISO 8601) interval: the first day and the
// type's duration, e.g. "2024-01-01/P1M" or, for "2018NovS1", "2017-11-01/P6M"
// (DHIS2's AdxPeriod.serialize). [ParseISO] reads it back to the same period for
// every type except QuarterlyNov, which ADX cannot express: its interval reads
// back as the Quarterly period holding its first day. It returns "" for the
// zero Period.
func (p Period) ISO() string {
	if p.IsZero() {
		return ""
	}
	y, m, d := civilFromDays(p.start)
	var buf [24]byte
	b := append4(buf[:0], y)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, '/')
	b = append(b, p.typ.info().duration...)
	return string(b)
}

// Next returns the period of the same type that follows p.
func (p Period) Next() Period { return p.Shift(1) }

// Prev returns the period of the same type that precedes p.
func (p Period) Prev() Period { return p.Shift(-1) }

// Shift returns the period n periods of p's type after p (before it if n < 0).
// Periods are counted by their ids, so for BiWeekly the period after 2020BiW27
// is 2021BiW1 and the one before 2021BiW1 is 2020BiW27, although the two
// overlap by a week (see the package documentation). Shift of the zero Period
// is the zero Period.
func (p Period) Shift(n int) Period {
	if p.IsZero() || n == 0 {
		return p
	}
	ti := p.typ.info()
	switch ti.kind {
	case kindDay:
		return Period{typ: p.typ, start: p.start + n, end: p.end + n}
	case kindWeek:
		return Period{typ: p.typ, start: p.start + 7*n, end: p.end + 7*n}
	case kindBiWeek:
		y, idx := p.idYear()
		k := idx - 1 + n // 0-based index counted from the first bi-week of year y
		cycles := floorDiv(k, biWeeksPer400)
		y += 400 * cycles
		k -= cycles * biWeeksPer400
		for k >= biWeeksIn(y) {
			k -= biWeeksIn(y)
			y++
		}
		s := firstWeek(y, monday) + 14*k
		return Period{typ: p.typ, start: s, end: s + 13}
	default:
		y, m, _ := civilFromDays(p.start)
		return p.typ.fromMonth(y*12 + m - 1 + n*ti.months)
	}
}

// Contains reports whether every day of q lies within p. A period contains
// itself; the zero Period contains nothing and is contained in nothing.
func (p Period) Contains(q Period) bool {
	return !p.IsZero() && !q.IsZero() && p.start <= q.start && q.end <= p.end
}

// ContainsDate reports whether the calendar date of d, read in d's location, lies
// within p.
func (p Period) ContainsDate(d time.Time) bool {
	if p.IsZero() {
		return false
	}
	z := dayOf(d)
	return p.start <= z && z <= p.end
}

// Within returns the period of type t that contains all of p, and false when
// there is none: a week that spans two months is within no Monthly period.
// For the period that p is aggregated into in any case, use [Period.RollUp].
func (p Period) Within(t Type) (Period, bool) {
	if p.IsZero() || !t.valid() {
		return Period{}, false
	}
	c := t.at(p.start)
	if c.end < p.end {
		return Period{}, false
	}
	return c, true
}

// RollUp returns the period of type t that DHIS2 analytics aggregates p into:
// the period of type t holding p's first day or, when p is a week of any weekly
// type, p's fourth day, so that a week counts for the month or year that holds
// most of its days. BiWeekly periods go by their first day, as in DHIS2, so
// 2009BiW1 (29 December 2008 – 11 January 2009) counts for 2008. It is p itself
// when t is p's type. It reports false when t
// is not longer than p's type (a larger [Type.FrequencyOrder]), for DHIS2 does
// not aggregate between types of equal order such as Weekly and WeeklySunday
// or Yearly and FinancialApril.
func (p Period) RollUp(t Type) (Period, bool) {
	switch {
	case p.IsZero() || !t.valid():
		return Period{}, false
	case t == p.typ:
		return p, true
	case t.FrequencyOrder() <= p.typ.FrequencyOrder():
		return Period{}, false
	}
	anchor := p.start
	if p.typ.info().kind == kindWeek {
		anchor += 3
	}
	return t.at(anchor), true
}

// Parts returns, oldest first, the periods of the shorter type t that roll up
// into p (see [Period.RollUp]): the months of a quarter, the quarters of a
// financial year, the weeks whose fourth day falls in a month. Summing values
// over Parts(t) gives what DHIS2 analytics reports for p. Every period of type t
// is among the parts of exactly one period of p's type. Parts returns []Period{p}
// when t is p's type and nil when t is not shorter.
func (p Period) Parts(t Type) []Period {
	switch {
	case p.IsZero() || !t.valid():
		return nil
	case t == p.typ:
		return []Period{p}
	case t.FrequencyOrder() >= p.typ.FrequencyOrder():
		return nil
	}
	out := make([]Period, 0, p.Days()/t.FrequencyOrder()+1)
	// A part's anchor day is at most three days after its start, so the period
	// before the one holding p's first day is the earliest candidate.
	for q := t.at(p.start).Prev(); q.start <= p.end; q = q.Next() {
		if r, _ := q.RollUp(p.typ); r == p {
			out = append(out, q)
		}
	}
	return out
}

// MarshalText implements encoding.TextMarshaler with the DHIS2 id.
func (p Period) MarshalText() ([]byte, error) {
	if p.IsZero() {
		return nil, fmt.Errorf("period: cannot marshal the zero Period")
	}
	return p.appendID(nil), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with [Parse].
func (p *Period) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
