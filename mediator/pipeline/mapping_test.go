package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
)

// TestRefuseNewerPeriodsJudgesEveryValue: for a source without a mapping set, the values
// whose period the target's release does not have are refused, each with its own value,
// and the rest kept in order, whether the periods come in runs or interleaved (a period is
// judged once per run of values); a batch that keeps every value is left as it is.
func TestRefuseNewerPeriodsJudgesEveryValue(t *testing.T) {
	target := &config.Target{Name: "hmis"}
	batch := func(periods ...string) *transform.Mapped {
		b := &transform.Batch{}
		for i, pe := range periods {
			b.Values = append(b.Values, transform.DataValue{DataElement: "DE", Period: pe, OrgUnit: "OU", Value: "1", Index: i})
		}
		return &transform.Mapped{Batch: b}
	}

	m := batch("202401", "2024FriW3", "2024FriW3", "202402", "2024FriW3", "202403", "202403")
	in := m.Batch
	refuseNewerPeriods(target, 40, m)
	var kept, refused []int
	for _, v := range m.Batch.Values {
		kept = append(kept, v.Index)
	}
	for _, r := range m.Refused {
		refused = append(refused, r.Value.Index)
		if r.Value.Period != "2024FriW3" || r.ErrorCode != transform.CodePeriodNotValid ||
			!strings.Contains(r.Reason, "period 2024FriW3 is a type DHIS2 has from 2.43 on") {
			t.Errorf("refused %+v", r)
		}
	}
	if want := []int{0, 3, 5, 6}; !slices.Equal(kept, want) {
		t.Errorf("kept values %v, want %v", kept, want)
	}
	if want := []int{1, 2, 4}; !slices.Equal(refused, want) {
		t.Errorf("refused values %v, want %v", refused, want)
	}
	if len(in.Values) != 7 {
		t.Errorf("the input batch was changed: %d values", len(in.Values))
	}

	m = batch("202401", "202401", "2024W3")
	in = m.Batch
	refuseNewerPeriods(target, 40, m)
	if m.Batch != in || len(m.Refused) != 0 {
		t.Errorf("a batch whose periods 2.40 has: %d refused, copied %v", len(m.Refused), m.Batch != in)
	}
	m = batch("2024FriW3", "2024FriW3")
	refuseNewerPeriods(target, 43, m)
	if len(m.Refused) != 0 || len(m.Batch.Values) != 2 {
		t.Errorf("2.43 has WeeklyFriday: %d refused, %d kept", len(m.Refused), len(m.Batch.Values))
	}
}
