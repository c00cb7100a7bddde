package period

import (
	"testing"
	"time"
)

// The day arithmetic is checked against the standard library, which is an
// independent implementation of the same proleptic Gregorian calendar.
func TestCivilMatchesTime(t *testing.T) {
	for _, y := range []int{-401, -400, -1, 0, 1, 4, 100, 1582, 1899, 1900, 1970, 2000, 2024, 2100, 9999} {
		for m := 1; m <= 12; m++ {
			for _, d := range []int{1, 15, daysInMonth(y, m)} {
				tm := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
				want := floorDiv(int(tm.Unix()), 86400)
				z := daysFromCivil(y, m, d)
				if z != want {
					t.Fatalf("daysFromCivil(%d,%d,%d) = %d, want %d", y, m, d, z, want)
				}
				if gy, gm, gd := civilFromDays(z); gy != y || gm != m || gd != d {
					t.Fatalf("civilFromDays(%d) = %d-%d-%d, want %d-%d-%d", z, gy, gm, gd, y, m, d)
				}
				if wd := weekday(z); wd != int(tm.Weekday()) {
					t.Fatalf("weekday(%d-%d-%d) = %d, want %d", y, m, d, wd, tm.Weekday())
				}
			}
		}
	}
}

// weeksIn and weekOf for Monday weeks must agree with time.ISOWeek, and
// biWeeksPer400 with a direct count.
func TestISOWeeks(t *testing.T) {
	total := 0
	for y := 1600; y < 2000; y++ {
		total += biWeeksIn(y)
		dec28 := time.Date(y, 12, 28, 0, 0, 0, 0, time.UTC) // always in the last ISO week
		if _, w := dec28.ISOWeek(); w != weeksIn(y, monday) {
			t.Fatalf("weeksIn(%d) = %d, time says %d", y, weeksIn(y, monday), w)
		}
	}
	if total != biWeeksPer400 {
		t.Fatalf("bi-weeks in 400 years = %d, constant says %d", total, biWeeksPer400)
	}
	for z := daysFromCivil(1999, 12, 1); z < daysFromCivil(2031, 2, 1); z++ {
		s := weekStartOf(z, monday)
		y, w := weekOf(s)
		ty, tw := timeOf(z).ISOWeek()
		if y != ty || w != tw {
			t.Fatalf("%v: weekOf = %dW%d, time.ISOWeek = %dW%d", timeOf(z), y, w, ty, tw)
		}
	}
}
