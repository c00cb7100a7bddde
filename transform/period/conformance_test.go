package period_test

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform/period"
)

// periodsTSV is the shared conformance corpus: ADX period / DHIS2 id pairs from
// DHIS2's own tests. CI checks shared/ out beside the repository.
const periodsTSV = "../../../shared/conformance/periods.tsv"

type tsvRow struct {
	line    int
	adx, id string
	note    string
	tag     string // the note's first tag: "[test:parse]", "[test:error]", …
}

func readPeriodsTSV(tb testing.TB) []tsvRow {
	tb.Helper()
	f, err := os.Open(periodsTSV)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("%s not found; the conformance corpus lives in shared/ beside the repository", periodsTSV)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var rows []tsvRow
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if n == 1 || strings.TrimSpace(sc.Text()) == "" {
			continue // header
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 3 {
			tb.Fatalf("%s:%d: want 3 tab-separated columns, got %d", periodsTSV, n, len(cols))
		}
		r := tsvRow{line: n, adx: cols[0], id: cols[1], note: cols[2]}
		if i := strings.IndexByte(r.note, ']'); strings.HasPrefix(r.note, "[") && i > 0 {
			r.tag = r.note[:i+1]
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return rows
}

// versionDependent holds the outcome this package implements (DHIS2 2.43 and
// later) for rows whose note is tagged [version-dependent]. A new such row must
// be added here deliberately.
var versionDependent = map[string]string{
	// Asserted as an error up to 2.42; from 2.43 AdxPeriod maps a February start
	// to FinancialFeb (the note says so, and the [inferred:2.43+] row for
	// 2024-02-01/P1Y agrees).
	"2014-02-01/P1Y": "2014Feb",
}

func TestConformancePeriodsTSV(t *testing.T) {
	rows := readPeriodsTSV(t)
	if len(rows) < 70 {
		t.Fatalf("read %d rows from %s; the corpus has 78", len(rows), periodsTSV)
	}
	for _, r := range rows {
		t.Run(strings.ReplaceAll(r.adx, "/", "_"), func(t *testing.T) {
			want := r.id
			if strings.Contains(r.note, "[version-dependent]") {
				v, ok := versionDependent[r.adx]
				if !ok {
					t.Fatalf("line %d: version-dependent row %q has no entry in versionDependent", r.line, r.adx)
				}
				want = v
			}
			if want == "ERROR" {
				p, err := period.ParseISO(r.adx)
				if err == nil {
					t.Fatalf("line %d: ParseISO(%q) = %v, want an error (%s)", r.line, r.adx, p, r.tag)
				}
				if !errors.Is(err, period.ErrInvalidISO) || !strings.Contains(err.Error(), r.adx) {
					t.Fatalf("line %d: error %q does not wrap ErrInvalidISO or name the input", r.line, err)
				}
				return
			}
			parse := strings.Contains(r.tag, "parse") || strings.HasPrefix(r.tag, "[inferred") ||
				r.tag == "[test:error]" // a version-dependent error row whose current outcome is a period
			serialize := strings.Contains(r.tag, "serialize")
			if !parse && !serialize {
				t.Fatalf("line %d: unknown tag %q", r.line, r.tag)
			}

			got, err := period.ParseISO(r.adx)
			if err != nil {
				t.Fatalf("line %d: ParseISO(%q): %v", r.line, r.adx, err)
			}
			fromID, err := period.Parse(want)
			if err != nil {
				t.Fatalf("line %d: Parse(%q): %v", r.line, want, err)
			}
			if parse && got.ID() != want {
				t.Errorf("line %d: ParseISO(%q).ID() = %q, want %q", r.line, r.adx, got.ID(), want)
			}
			if serialize && fromID.ISO() != r.adx {
				t.Errorf("line %d: Parse(%q).ISO() = %q, want %q", r.line, want, fromID.ISO(), r.adx)
			}
			// The other direction holds too whenever the ADX date is the period's first day.
			if got.ISO() == r.adx && got != fromID {
				t.Errorf("line %d: ParseISO(%q) = %v %v, Parse(%q) = %v %v", r.line, r.adx, got.Type(), got,
					want, fromID.Type(), fromID)
			}
		})
	}
}
