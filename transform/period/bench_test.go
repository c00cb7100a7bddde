package period_test

import (
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform/period"
)

var benchIDs = []string{"202401", "2024-03", "20240315", "2024W5", "2024SunW12", "2024BiW7", "202402B",
	"2024Q3", "2025NovQ1", "2024S2", "2024AprilS1", "2024", "2024April", "2025Nov"}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := period.Parse(benchIDs[i%len(benchIDs)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseISO(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := period.ParseISO("2024-03-01/P1M"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPeriodOf(b *testing.B) {
	d := time.Date(2024, 5, 17, 10, 0, 0, 0, time.UTC)
	types := period.Types()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if types[i%len(types)].PeriodOf(d).IsZero() {
			b.Fatal("zero period")
		}
	}
}

func BenchmarkID(b *testing.B) {
	p, _ := period.Parse("2024AprilS1")
	b.ReportAllocs()
	for b.Loop() {
		if p.ID() == "" {
			b.Fatal("empty id")
		}
	}
}
