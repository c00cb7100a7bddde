package schedule

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

func TestNext(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			panic(err)
		}
		return v
	}
	tests := []struct {
		expr, from string
		want       []string // successive firings
	}{
		{"* * * * *", "2024-01-01 00:00", []string{"2024-01-01 00:01", "2024-01-01 00:02"}},
		{"0 2 * * *", "2024-01-01 02:00", []string{"2024-01-02 02:00", "2024-01-03 02:00"}},
		{"0 2 * * *", "2024-01-01 01:59", []string{"2024-01-01 02:00"}},
		{"*/15 * * * *", "2024-01-01 00:07", []string{"2024-01-01 00:15", "2024-01-01 00:30", "2024-01-01 00:45", "2024-01-01 01:00"}},
		{"5/20 * * * *", "2024-01-01 00:00", []string{"2024-01-01 00:05", "2024-01-01 00:25", "2024-01-01 00:45", "2024-01-01 01:05"}},
		{"0 8-17/3 * * *", "2024-01-01 00:00", []string{"2024-01-01 08:00", "2024-01-01 11:00", "2024-01-01 14:00", "2024-01-01 17:00", "2024-01-02 08:00"}},
		{"30 6 1,15 * *", "2024-01-02 00:00", []string{"2024-01-15 06:30", "2024-02-01 06:30"}},
		{"0 0 * * MON-FRI", "2024-01-05 12:00", []string{"2024-01-08 00:00", "2024-01-09 00:00"}}, // Fri → Mon
		{"0 0 * * sun", "2024-01-01 00:00", []string{"2024-01-07 00:00"}},
		{"0 0 * * 7", "2024-01-01 00:00", []string{"2024-01-07 00:00"}},
		{"0 0 * * 5-7", "2024-01-01 00:00", []string{"2024-01-05 00:00", "2024-01-06 00:00", "2024-01-07 00:00", "2024-01-12 00:00"}},
		{"0 0 1 JAN,jul *", "2024-02-01 00:00", []string{"2024-07-01 00:00", "2025-01-01 00:00"}},
		{"0 0 29 2 *", "2024-03-01 00:00", []string{"2028-02-29 00:00"}},
		// Day of month and day of week both restricted: either matches.
		{"0 0 13 * FRI", "2024-09-01 00:00", []string{"2024-09-06 00:00", "2024-09-13 00:00", "2024-09-20 00:00", "2024-09-27 00:00", "2024-10-04 00:00"}},
		{"0 0 ? * MON", "2024-01-01 00:00", []string{"2024-01-08 00:00"}},
		{"@monthly", "2024-01-31 23:59", []string{"2024-02-01 00:00", "2024-03-01 00:00"}},
		{"@hourly", "2024-01-01 00:30", []string{"2024-01-01 01:00"}},
		{"@weekly", "2024-01-01 00:00", []string{"2024-01-07 00:00"}},
		{"@yearly", "2024-01-01 00:00", []string{"2025-01-01 00:00"}},
		{"59 23 31 12 *", "2024-12-31 23:59", []string{"2025-12-31 23:59"}},
	}
	for _, tc := range tests {
		t.Run(tc.expr+" from "+tc.from, func(t *testing.T) {
			s, err := Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			cur := at(tc.from)
			for i, w := range tc.want {
				next := s.Next(cur, utc)
				if !next.Equal(at(w)) {
					t.Fatalf("firing %d: got %s, want %s", i+1, next.Format("2006-01-02 15:04 Mon"), w)
				}
				cur = next
			}
		})
	}
}

func TestNextSeconds(t *testing.T) {
	s := MustParse("* * * * *")
	from := time.Date(2024, 1, 1, 10, 0, 30, 5, time.UTC)
	if got := s.Next(from, nil); !got.Equal(time.Date(2024, 1, 1, 10, 1, 0, 0, time.UTC)) {
		t.Errorf("got %s", got)
	}
}

func TestNextNever(t *testing.T) {
	s := MustParse("0 0 30 2 *")
	if got := s.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); !got.IsZero() {
		t.Errorf("30 February fired at %s", got)
	}
	var zero Schedule
	if !zero.Next(time.Now(), nil).IsZero() {
		t.Error("zero schedule fired")
	}
}

func TestNextTimeZone(t *testing.T) {
	nairobi := mustLoad(t, "Africa/Nairobi") // UTC+3, no daylight saving
	s := MustParse("0 2 * * *")
	from := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) // 03:00 in Nairobi
	got := s.Next(from, nairobi)
	want := time.Date(2024, 6, 1, 23, 0, 0, 0, time.UTC) // 02:00 on 2 June in Nairobi
	if !got.Equal(want) {
		t.Errorf("got %s, want %s", got.UTC(), want)
	}
	if got.Location() != nairobi {
		t.Errorf("location %s", got.Location())
	}
}

func TestNextDaylightSaving(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	// 10 March 2024: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist.
	s := MustParse("30 2 * * *")
	got := s.Next(time.Date(2024, 3, 10, 0, 0, 0, 0, ny), ny)
	if got.Day() != 10 || got.Before(time.Date(2024, 3, 10, 3, 0, 0, 0, ny)) {
		t.Errorf("spring forward: got %s", got)
	}
	if next := s.Next(got, ny); next.Day() != 11 || next.Hour() != 2 || next.Minute() != 30 {
		t.Errorf("after the gap: got %s", next)
	}
	// 3 November 2024: 01:30 happens twice; it fires once.
	s = MustParse("30 1 * * *")
	first := s.Next(time.Date(2024, 11, 3, 0, 0, 0, 0, ny), ny)
	if first.Hour() != 1 || first.Minute() != 30 {
		t.Fatalf("fall back: got %s", first)
	}
	second := s.Next(first, ny)
	if second.Day() != 4 {
		t.Errorf("fired twice: %s then %s", first, second)
	}
	// Every 30 minutes through the repeated hour: each wall time once, in order.
	s = MustParse("*/30 * * * *")
	cur := time.Date(2024, 11, 3, 0, 45, 0, 0, ny)
	for range 6 {
		next := s.Next(cur, ny)
		if !next.After(cur) {
			t.Fatalf("went backwards: %s after %s", next, cur)
		}
		cur = next
	}
}

func TestParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 13 *",
		"* * * * 8", "5-1 * * * *", "*/0 * * * *", "*/61 * * * *", "a * * * *", "* * * FOO *", "1,,2 * * * *",
		"? * * * *", "@often", "* * * JAN-XYZ *",
	} {
		if _, err := Parse(expr); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax", expr, err)
		}
	}
}

func TestString(t *testing.T) {
	if got := MustParse("  0   2 * * *").String(); got != "0 2 * * *" {
		t.Errorf("got %q", got)
	}
	if got := MustParse("@daily").String(); got != "0 0 * * *" {
		t.Errorf("got %q", got)
	}
}

// A brute-force check: for random expressions, Next agrees with walking minute by minute.
func TestNextAgreesWithBruteForce(t *testing.T) {
	exprs := []string{"*/7 3-5 * * *", "0 0 1-7 * MON", "15 10 * 2,4 *", "0 12 L * *"}
	for _, expr := range exprs {
		s, err := Parse(expr)
		if err != nil {
			continue // "L" is not standard: refused
		}
		cur := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		for range 50 {
			want := cur.Add(time.Minute)
			for !s.matches(want) {
				want = want.Add(time.Minute)
			}
			got := s.Next(cur, time.UTC)
			if !got.Equal(want) {
				t.Fatalf("%s after %s: got %s, want %s", expr, cur, got, want)
			}
			cur = got
		}
	}
}

func (s *Schedule) matches(t time.Time) bool {
	return s.minute&(1<<uint(t.Minute())) != 0 && s.hour&(1<<uint(t.Hour())) != 0 &&
		s.mon&(1<<uint(t.Month())) != 0 && s.dayMatches(t)
}

func ExampleSchedule_Next() {
	s, err := Parse("0 2 * * MON-FRI")
	if err != nil {
		panic(err)
	}
	from := time.Date(2024, 6, 7, 12, 0, 0, 0, time.UTC) // a Friday
	fmt.Println(s.Next(from, time.UTC).Format("Mon 2006-01-02 15:04"))
	// Output: Mon 2024-06-10 02:00
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/5 1-3 1,15 JAN-MAR MON-FRI", "@daily", "5/10 * * * 7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr)
		if err != nil {
			return
		}
		from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		if next := s.Next(from, time.UTC); !next.IsZero() && (!next.After(from) || !s.matches(next)) {
			t.Fatalf("%q: Next = %s", expr, next)
		}
	})
}
