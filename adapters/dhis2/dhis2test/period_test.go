package dhis2test

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
)

// spec dhis2.md §11.1: DHIS2 period ids, their types and date ranges.
func TestParsePeriod(t *testing.T) {
	cases := []struct{ id, canon, typ, start, end string }{
		{"20240315", "20240315", "Daily", "2024-03-15", "2024-03-15"},
		{"2024-03-15", "20240315", "Daily", "2024-03-15", "2024-03-15"},
		{"2004W10", "2004W10", "Weekly", "2004-03-01", "2004-03-07"},
		{"2024W1", "2024W1", "Weekly", "2024-01-01", "2024-01-07"},
		{"2020W53", "2020W53", "Weekly", "2020-12-28", "2021-01-03"},
		{"2015WedW5", "2015WedW5", "WeeklyWednesday", "2015-01-28", "2015-02-03"},
		{"2015ThuW6", "2015ThuW6", "WeeklyThursday", "2015-02-05", "2015-02-11"},
		{"2015SatW7", "2015SatW7", "WeeklySaturday", "2015-02-14", "2015-02-20"},
		{"2015SunW8", "2015SunW8", "WeeklySunday", "2015-02-22", "2015-02-28"},
		{"2015BiW1", "2015BiW1", "BiWeekly", "2014-12-29", "2015-01-11"},
		{"200403", "200403", "Monthly", "2004-03-01", "2004-03-31"},
		{"2004-03", "200403", "Monthly", "2004-03-01", "2004-03-31"},
		{"200401B", "200401B", "BiMonthly", "2004-01-01", "2004-02-29"},
		{"202402B", "202402B", "BiMonthly", "2024-03-01", "2024-04-30"},
		{"2004Q1", "2004Q1", "Quarterly", "2004-01-01", "2004-03-31"},
		{"2018NovQ1", "2018NovQ1", "QuarterlyNov", "2017-11-01", "2018-01-31"},
		{"2004S2", "2004S2", "SixMonthly", "2004-07-01", "2004-12-31"},
		{"2004AprilS2", "2004AprilS2", "SixMonthlyApril", "2004-10-01", "2005-03-31"},
		{"2018NovS1", "2018NovS1", "SixMonthlyNov", "2017-11-01", "2018-04-30"},
		{"2004", "2004", "Yearly", "2004-01-01", "2004-12-31"},
		{"2004April", "2004April", "FinancialApril", "2004-04-01", "2005-03-31"},
		{"2004July", "2004July", "FinancialJuly", "2004-07-01", "2005-06-30"},
		{"2004Oct", "2004Oct", "FinancialOct", "2004-10-01", "2005-09-30"},
		{"2018Nov", "2018Nov", "FinancialNov", "2017-11-01", "2018-10-31"},
		{"2024Sep", "2024Sep", "FinancialSep", "2024-09-01", "2025-08-31"},
	}
	for _, c := range cases {
		p, ok := parsePeriod(c.id)
		if !ok || p.ID != c.canon || p.Type != c.typ || p.Start.Format("2006-01-02") != c.start || p.End.Format("2006-01-02") != c.end {
			t.Errorf("%s: %+v %v", c.id, p, ok)
		}
	}
	for _, bad := range []string{"2024W53", "2024W0", "202413", "20240230", "2024Q5", "2024S3", "207B", "2024BiW27", "abc", ""} {
		if p, ok := parsePeriod(bad); ok {
			t.Errorf("%s accepted: %+v", bad, p)
		}
	}
}

// spec adx.md §6 and conformance periods.tsv: ADX start/duration → period
// id, including version-dependent rows and error texts.
func TestADXPeriodsTSV(t *testing.T) {
	data := readFixture(t, "periods.tsv")
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	n := 0
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 3 {
			continue
		}
		adxp, want, note := cols[0], cols[1], cols[2]
		if strings.Contains(note, "test:serialize]") && !strings.Contains(note, "parse") {
			continue
		}
		ver := "2.42"
		if strings.Contains(note, "[inferred:2.43+]") {
			ver = "2.43"
		}
		v, _ := ParseVersion(ver)
		got, err := adxPeriodToID(adxp, v)
		if want == "ERROR" {
			if err == nil {
				t.Errorf("%s: want error, got %s", adxp, got)
			}
		} else if err != nil || got != want {
			t.Errorf("%s (%s): %s %v, want %s", adxp, ver, got, err, want)
		}
		n++
	}
	if n < 45 {
		t.Errorf("only %d rows checked", n)
	}
	// version-dependent texts (periods.tsv notes; adx.md §9)
	v41, _ := ParseVersion("2.41")
	v42, _ := ParseVersion("2.42")
	if _, err := adxPeriodToID("2024-01-02/P7D", v41); err == nil || err.Error() != "2024-01-02/P7D is invalid weekly type" {
		t.Errorf("2.41: %v", err)
	}
	if _, err := adxPeriodToID("2024-01-02/P7D", v42); err == nil || err.Error() != "P7D is not a supported duration type" {
		t.Errorf("2.42: %v", err)
	}
	if _, err := adxPeriodToID("2024-01-01/P1D/P1D", v42); err == nil || err.Error() != "2024-01-01/P1D/P1D not in valid <date>/<duration> format" {
		t.Errorf("format: %v", err)
	}
	if _, err := adxPeriodToID("2024-02-01/P1Y", v42); err == nil {
		t.Error("FinancialFeb before 2.43 accepted")
	}
}

// periodContaining and shiftPeriod (used for open future periods, E7641)
// agree with parsePeriod for every period type.
func TestPeriodContaining(t *testing.T) {
	for typ := range periodTypeNames {
		if typ == "TwoYearly" {
			continue
		}
		for _, day := range []string{"2024-01-01", "2024-03-15", "2024-11-30", "2024-12-31", "2021-01-03"} {
			d, _ := time.Parse("2006-01-02", day)
			p, ok := periodContaining(typ, d)
			if !ok || p.Type != typ || d.Before(p.Start) || d.After(p.End) {
				t.Errorf("%s %s: %+v %v", typ, day, p, ok)
				continue
			}
			if q, ok := parsePeriod(p.ID); !ok || q != p {
				t.Errorf("%s: %s does not round-trip", typ, p.ID)
			}
			if strings.HasSuffix(p.ID, "BiW27") { // 53-week years: DHIS2's rule is unverified
				continue
			}
			next, ok := shiftPeriod(p, 1)
			if !ok || !next.Start.Equal(p.End.AddDate(0, 0, 1)) {
				t.Errorf("%s: next of %s is %+v", typ, p.ID, next)
			}
			if prev, ok := shiftPeriod(next, -1); !ok || prev.ID != p.ID {
				t.Errorf("%s: prev of %s is %s", typ, next.ID, prev.ID)
			}
		}
	}
}
