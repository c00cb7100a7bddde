package period

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Type is a DHIS2 period type. The zero Type is not a period type. Its numeric
// value is not stable across releases: store and exchange types by name
// ([Type.String], [TypeByName]); Type implements encoding.TextMarshaler and
// encoding.TextUnmarshaler for that.
type Type uint8

// The DHIS2 period types, in the order of DHIS2's PeriodTypeEnum. WeeklyFriday
// (yyyyFriWn) and FinancialFeb/Aug (yyyyFeb, yyyyAug) exist from DHIS2 2.43,
// FinancialSep (yyyySep) from 2.42 and QuarterlyNov (yyyyNovQn) from 2.41; older
// servers reject their ids (see [Type.Since]). DHIS2's internal TwoYearly type has no id format and
// is left out.
const (
	Daily           Type = iota + 1 // yyyyMMdd (yyyy-MM-dd accepted)
	Weekly                          // yyyyWn, weeks start on Monday (ISO 8601 weeks)
	WeeklyWednesday                 // yyyyWedWn
	WeeklyThursday                  // yyyyThuWn
	WeeklyFriday                    // yyyyFriWn
	WeeklySaturday                  // yyyySatWn
	WeeklySunday                    // yyyySunWn
	BiWeekly                        // yyyyBiWn
	Monthly                         // yyyyMM (yyyy-MM accepted)
	BiMonthly                       // yyyyMMB, MM = bi-month index 01–06
	Quarterly                       // yyyyQn
	QuarterlyNov                    // yyyyNovQn, Q1 = November (year−1) – January
	SixMonthly                      // yyyySn
	SixMonthlyApril                 // yyyyAprilSn, S1 = April – September
	SixMonthlyNov                   // yyyyNovSn, S1 = November (year−1) – April
	Yearly                          // yyyy
	FinancialFeb                    // yyyyFeb, February – January, named by start year
	FinancialApril                  // yyyyApril, April – March, named by start year
	FinancialJuly                   // yyyyJuly, July – June, named by start year
	FinancialAug                    // yyyyAug, August – July, named by start year
	FinancialSep                    // yyyySep, September – August, named by start year
	FinancialOct                    // yyyyOct, October – September, named by start year
	FinancialNov                    // yyyyNov, November (year−1) – October, named by END year
	numTypes
)

type kind uint8

const (
	kindDay    kind = iota + 1 // one day
	kindWeek                   // seven days from a fixed weekday
	kindBiWeek                 // fourteen days from the Monday of an odd ISO week
	kindMonth                  // a whole number of months from a fixed month
)

type typeInfo struct {
	name     string
	duration string // ISO 8601 duration used in ADX
	freq     int    // DHIS2 frequency order, roughly the length in days
	kind     kind
	weekday  int // kindWeek: the first weekday (time.Weekday numbering)
	months   int // kindMonth: length in months
	offset   int // kindMonth: month index (0 = January) on which periods start
	suffix   string
	since    int // the first DHIS2 release (minor number) that has the type; 0: all modelled
}

var types = [numTypes]typeInfo{
	Daily:           {name: "Daily", duration: "P1D", freq: 1, kind: kindDay},
	Weekly:          {name: "Weekly", duration: "P7D", freq: 7, kind: kindWeek, weekday: int(time.Monday), suffix: "W"},
	WeeklyWednesday: {name: "WeeklyWednesday", duration: "P7D", freq: 7, kind: kindWeek, weekday: int(time.Wednesday), suffix: "WedW"},
	WeeklyThursday:  {name: "WeeklyThursday", duration: "P7D", freq: 7, kind: kindWeek, weekday: int(time.Thursday), suffix: "ThuW"},
	WeeklyFriday:    {name: "WeeklyFriday", duration: "P7D", freq: 7, kind: kindWeek, weekday: int(time.Friday), suffix: "FriW", since: 43},
	WeeklySaturday:  {name: "WeeklySaturday", duration: "P7D", freq: 7, kind: kindWeek, weekday: int(time.Saturday), suffix: "SatW"},
	WeeklySunday:    {name: "WeeklySunday", duration: "P7D", freq: 7, kind: kindWeek, weekday: int(time.Sunday), suffix: "SunW"},
	BiWeekly:        {name: "BiWeekly", duration: "P14D", freq: 14, kind: kindBiWeek, weekday: int(time.Monday), suffix: "BiW"},
	Monthly:         {name: "Monthly", duration: "P1M", freq: 30, kind: kindMonth, months: 1},
	BiMonthly:       {name: "BiMonthly", duration: "P2M", freq: 61, kind: kindMonth, months: 2, suffix: "B"},
	Quarterly:       {name: "Quarterly", duration: "P3M", freq: 91, kind: kindMonth, months: 3, suffix: "Q"},
	QuarterlyNov:    {name: "QuarterlyNov", duration: "P3M", freq: 91, kind: kindMonth, months: 3, offset: 10, suffix: "NovQ", since: 41},
	SixMonthly:      {name: "SixMonthly", duration: "P6M", freq: 182, kind: kindMonth, months: 6, suffix: "S"},
	SixMonthlyApril: {name: "SixMonthlyApril", duration: "P6M", freq: 182, kind: kindMonth, months: 6, offset: 3, suffix: "AprilS"},
	SixMonthlyNov:   {name: "SixMonthlyNov", duration: "P6M", freq: 182, kind: kindMonth, months: 6, offset: 10, suffix: "NovS"},
	Yearly:          {name: "Yearly", duration: "P1Y", freq: 365, kind: kindMonth, months: 12},
	FinancialFeb:    {name: "FinancialFeb", duration: "P1Y", freq: 365, kind: kindMonth, months: 12, offset: 1, suffix: "Feb", since: 43},
	FinancialApril:  {name: "FinancialApril", duration: "P1Y", freq: 365, kind: kindMonth, months: 12, offset: 3, suffix: "April"},
	FinancialJuly:   {name: "FinancialJuly", duration: "P1Y", freq: 365, kind: kindMonth, months: 12, offset: 6, suffix: "July"},
	FinancialAug:    {name: "FinancialAug", duration: "P1Y", freq: 365, kind: kindMonth, months: 12, offset: 7, suffix: "Aug", since: 43},
	FinancialSep:    {name: "FinancialSep", duration: "P1Y", freq: 365, kind: kindMonth, months: 12, offset: 8, suffix: "Sep", since: 42},
	FinancialOct:    {name: "FinancialOct", duration: "P1Y", freq: 365, kind: kindMonth, months: 12, offset: 9, suffix: "Oct"},
	FinancialNov:    {name: "FinancialNov", duration: "P1Y", freq: 365, kind: kindMonth, months: 12, offset: 10, suffix: "Nov"},
}

// Types returns every supported period type, shortest first (in the order of
// DHIS2's PeriodTypeEnum).
func Types() []Type {
	out := make([]Type, 0, numTypes-1)
	for t := Daily; t < numTypes; t++ {
		out = append(out, t)
	}
	return out
}

// ErrUnknownType is wrapped by the error [TypeByName] returns for a name that is
// not a supported DHIS2 period type.
var ErrUnknownType = errors.New("unknown period type")

// TypeByName returns the period type DHIS2 calls name ("Monthly",
// "FinancialApril", …). Case is ignored, as DHIS2 does when it looks a type up.
func TypeByName(name string) (Type, error) {
	for t := Daily; t < numTypes; t++ {
		if strings.EqualFold(types[t].name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("period: %w %q; expected a DHIS2 period type name such as Daily, Weekly, Monthly, Quarterly, Yearly or FinancialApril", ErrUnknownType, name)
}

func (t Type) valid() bool { return t >= Daily && t < numTypes }

func (t Type) info() *typeInfo { return &types[t] }

// String returns the type's name as DHIS2 spells it, e.g. "SixMonthlyApril".
func (t Type) String() string {
	if !t.valid() {
		return fmt.Sprintf("Type(%d)", uint8(t))
	}
	return types[t].name
}

// FrequencyOrder returns DHIS2's frequency order of the type: roughly its length
// in days (Daily 1, weekly types 7, BiWeekly 14, Monthly 30, BiMonthly 61,
// quarterly types 91, six-monthly types 182, Yearly and financial years 365).
// A type with a larger order is longer; types with equal orders (Weekly and
// WeeklySunday, Yearly and FinancialApril) are not nested in one another.
// It is 0 for an invalid Type.
func (t Type) FrequencyOrder() int {
	if !t.valid() {
		return 0
	}
	return types[t].freq
}

// PeriodOf returns the period of type t that holds the calendar date of d, read
// in d's own location (pass a time in the reporting zone; the clock time is
// ignored). It returns the zero Period if t is not a valid type.
func (t Type) PeriodOf(d time.Time) Period {
	if !t.valid() {
		return Period{}
	}
	return t.at(dayOf(d))
}

// at returns the period of type t that holds day z.
func (t Type) at(z int) Period {
	ti := t.info()
	switch ti.kind {
	case kindDay:
		return Period{typ: t, start: z, end: z}
	case kindWeek:
		s := weekStartOf(z, ti.weekday)
		return Period{typ: t, start: s, end: s + 6}
	case kindBiWeek:
		s := weekStartOf(z, monday)
		if _, w := weekOf(s); w%2 == 0 {
			s -= 7
		}
		return Period{typ: t, start: s, end: s + 13}
	default:
		y, m, _ := civilFromDays(z)
		abs := y*12 + m - 1
		return t.fromMonth(abs - floorMod(abs-ti.offset, ti.months))
	}
}

// fromMonth returns the period of a month-based type that starts on absolute month abs.
func (t Type) fromMonth(abs int) Period {
	return Period{typ: t, start: monthDay(abs), end: monthDay(abs+t.info().months) - 1}
}

// MarshalText implements encoding.TextMarshaler with the DHIS2 name.
func (t Type) MarshalText() ([]byte, error) {
	if !t.valid() {
		return nil, fmt.Errorf("period: cannot marshal invalid %v", t)
	}
	return []byte(types[t].name), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with [TypeByName].
func (t *Type) UnmarshalText(b []byte) error {
	v, err := TypeByName(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
