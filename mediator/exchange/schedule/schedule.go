// Package schedule parses standard five-field cron expressions and computes when they fire
// next, in a given time zone.
//
// An expression has five fields separated by spaces: minute (0-59), hour (0-23), day of
// month (1-31), month (1-12 or JAN-DEC) and day of week (0-7 or SUN-SAT; 0 and 7 are both
// Sunday). Each field is "*", a value, a range "a-b", a list "a,b,c-d", or any of these
// with a step: "*/15", "1-30/2", "5/10" (from 5 to the field's maximum, every 10). Names are
// case-insensitive. The macros @yearly (@annually), @monthly, @weekly, @daily (@midnight)
// and @hourly stand for their usual expressions.
//
// As in Vixie cron, when both the day of month and the day of week are restricted (neither
// is "*"), a day matches when either does: "0 0 1,15 * MON" fires on the 1st, the 15th and
// every Monday. Times are wall-clock times in the location passed to Next: a time that does
// not exist on a day the clocks go forward fires at the first instant after the gap, and a
// time that occurs twice when they go back fires once, at its first occurrence.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("invalid cron expression")

// Schedule is a parsed cron expression. The zero value never fires.
type Schedule struct {
	expr                    string
	minute, hour, dom, mon  uint64 // bit i set: value i matches
	dow                     uint64
	domStar, dowStar, valid bool
}

type field struct {
	name     string
	min, max int
	names    map[string]int
}

func fields() [5]field {
	months := map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
		"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	weekdays := map[string]int{"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
	return [5]field{
		{name: "minute", min: 0, max: 59},
		{name: "hour", min: 0, max: 23},
		{name: "day of month", min: 1, max: 31},
		{name: "month", min: 1, max: 12, names: months},
		{name: "day of week", min: 0, max: 7, names: weekdays},
	}
}

// macro returns the expression a macro stands for.
func macro(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "@yearly", "@annually":
		return "0 0 1 1 *", true
	case "@monthly":
		return "0 0 1 * *", true
	case "@weekly":
		return "0 0 * * 0", true
	case "@daily", "@midnight":
		return "0 0 * * *", true
	case "@hourly":
		return "0 * * * *", true
	}
	return "", false
}

// Parse reads a five-field cron expression or a macro.
func Parse(expr string) (*Schedule, error) {
	text := strings.TrimSpace(expr)
	if m, ok := macro(text); ok {
		text = m
	} else if strings.HasPrefix(text, "@") {
		return nil, fmt.Errorf("%w %q: unknown macro; want @yearly, @monthly, @weekly, @daily or @hourly", ErrSyntax, expr)
	}
	parts := strings.Fields(text)
	if len(parts) != 5 {
		return nil, fmt.Errorf("%w %q: want 5 fields (minute hour day-of-month month day-of-week), got %d",
			ErrSyntax, expr, len(parts))
	}
	s := &Schedule{expr: strings.Join(parts, " "), valid: true}
	fs := fields()
	dst := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.mon, &s.dow}
	for i, p := range parts {
		bits, err := parseField(p, fs[i])
		if err != nil {
			return nil, fmt.Errorf("%w %q: %s field %q: %v", ErrSyntax, expr, fs[i].name, p, err)
		}
		*dst[i] = bits
	}
	// Sunday is 0 and 7.
	if s.dow&(1<<7) != 0 {
		s.dow = s.dow&^(1<<7) | 1
	}
	s.domStar = parts[2] == "*" || parts[2] == "?"
	s.dowStar = parts[4] == "*" || parts[4] == "?"
	return s, nil
}

// MustParse is Parse for expressions known to be valid; it panics otherwise.
func MustParse(expr string) *Schedule {
	s, err := Parse(expr)
	if err != nil {
		panic(err)
	}
	return s
}

func parseField(text string, f field) (uint64, error) {
	var bits uint64
	for item := range strings.SplitSeq(text, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max {
				return 0, fmt.Errorf("step %q: want a number from 1 to %d", stepText, f.max)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*" || rng == "?":
			if rng == "?" && f.name != "day of month" && f.name != "day of week" {
				return 0, errors.New(`"?" is allowed only in the day fields`)
			}
			if f.name == "day of week" {
				hi = 6 // "*" covers each day once
			}
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, f); err != nil {
				return 0, err
			}
			switch {
			case isRange:
				if hi, err = value(b, f); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("range %s-%s runs backwards", a, b)
				}
			case hasStep:
				hi = f.max // "5/10": from 5 to the maximum
			default:
				hi = lo
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func value(s string, f field) (int, error) {
	if n, ok := f.names[strings.ToUpper(s)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%q is neither a number from %d to %d nor a name", s, f.min, f.max)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, f.min, f.max)
	}
	return n, nil
}

// String returns the expression as parsed (macros expanded, spaces normalised).
func (s *Schedule) String() string {
	if s == nil {
		return ""
	}
	return s.expr
}

// maxSearchYears bounds the search for an expression that fires rarely or never (30 February).
const maxSearchYears = 5

// Next returns the first time after t, at a whole minute, at which the schedule fires,
// reading the expression in loc (nil means t's location). It returns the zero time when the
// schedule does not fire within five years (an impossible date such as 30 February).
func (s *Schedule) Next(t time.Time, loc *time.Location) time.Time {
	if s == nil || !s.valid {
		return time.Time{}
	}
	if loc == nil {
		loc = t.Location()
	}
	t = t.In(loc)
	// Walk the wall clock of loc in civil terms (a UTC time stands for the wall time), so
	// that daylight saving shifts cannot make the search loop or skip a day; each match is
	// then converted to an instant in loc and must lie after t.
	w := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC).Add(time.Minute)
	limit := w.AddDate(maxSearchYears, 0, 0)
	for w.Before(limit) {
		switch {
		case s.mon&(1<<uint(w.Month())) == 0:
			w = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(w):
			w = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(w.Hour())) == 0:
			w = time.Date(w.Year(), w.Month(), w.Day(), w.Hour()+1, 0, 0, 0, time.UTC)
		case s.minute&(1<<uint(w.Minute())) == 0:
			w = w.Add(time.Minute)
		default:
			at := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, loc)
			if !wallOf(at).Equal(w) {
				// The wall time does not exist: the clocks went forward over it. Fire at
				// the first instant after the gap.
				for wallOf(at).Before(w) {
					at = at.Add(time.Minute)
				}
			}
			// A wall time that occurs twice (the clocks went back) is taken at its first
			// occurrence, which lies before t when t is in the repeated hour.
			if at.After(t) {
				return at
			}
			w = w.Add(time.Minute)
		}
	}
	return time.Time{}
}

// wallOf returns the wall-clock time of t in its location, as a UTC time.
func wallOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
}

func (s *Schedule) dayMatches(w time.Time) bool {
	dom := s.dom&(1<<uint(w.Day())) != 0
	dow := s.dow&(1<<uint(w.Weekday())) != 0
	switch {
	case s.domStar && s.dowStar:
		return true
	case s.domStar:
		return dow
	case s.dowStar:
		return dom
	}
	return dom || dow
}
