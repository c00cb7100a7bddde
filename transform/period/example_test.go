package period_test

import (
	"fmt"
	"time"

	"github.com/tally-hmis/tally/transform/period"
)

func Example() {
	// A DHIS2 id, its days and its ADX form.
	p, err := period.Parse("2018NovS1")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Type(), p.Start().Format(time.DateOnly), p.End().Format(time.DateOnly), p.ISO())

	// An ADX period back to a DHIS2 id.
	q, _ := period.ParseISO("2024-03-01/P2M")
	fmt.Println(q.ID())

	// Monthly values rolled up to a quarter, the way DHIS2 analytics does.
	m, _ := period.Parse("202402")
	quarter, _ := m.RollUp(period.Quarterly)
	fmt.Println(quarter, quarter.Parts(period.Monthly))

	// The period of a type that holds a date, and its neighbours.
	w := period.Weekly.PeriodOf(time.Date(2021, 1, 1, 9, 0, 0, 0, time.UTC))
	fmt.Println(w.Prev(), w, w.Next())
	// Output:
	// SixMonthlyNov 2017-11-01 2018-04-30 2017-11-01/P6M
	// 202402B
	// 2024Q1 [202401 202402 202403]
	// 2020W52 2020W53 2021W1
}

func ExampleRelative() {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for _, name := range []string{"LAST_3_MONTHS", "LAST_4_QUARTERS", "THIS_FINANCIAL_YEAR"} {
		ps, err := period.Relative(name, now, period.RelativeOptions{FinancialYear: period.FinancialJuly})
		if err != nil {
			panic(err)
		}
		fmt.Println(name, ps)
	}
	_, err := period.Relative("THIS_DAY", now, period.RelativeOptions{})
	fmt.Println(err)
	// Output:
	// LAST_3_MONTHS [202608 202609 202610]
	// LAST_4_QUARTERS [2025Q4 2026Q1 2026Q2 2026Q3]
	// THIS_FINANCIAL_YEAR [2026July]
	// period: unknown relative period "THIS_DAY"; DHIS2 calls today TODAY (see period.RelativeNames for the DHIS2 names)
}

func ExampleParse_error() {
	_, err := period.Parse("2024W53")
	fmt.Println(err)
	// Output:
	// period: invalid DHIS2 period id "2024W53": week 53 does not exist: Weekly year 2024 has weeks 1–52
}

func ExampleAvailableIn() {
	// An ADX message's February financial year, and whether a DHIS2 2.42 target takes it.
	p, _ := period.ParseISO("2026-02-01/P1Y")
	ok, since, err := period.AvailableIn(p.ID(), 42)
	fmt.Println(p.ID(), p.Type(), ok, since, err)
	ok, _, _ = period.AvailableIn("2018NovQ1", 41)
	fmt.Println(ok)
	// Output:
	// 2026Feb FinancialFeb false 43 <nil>
	// true
}
