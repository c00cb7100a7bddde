package mapping

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// TestMapDuplicatesWithoutMappingSet: a source with no mapping set keeps its ids, and its
// duplicates policy still applies (ADX categories key by their category=option pairs).
// Refused duplicates carry DHIS2 2.43's code for values of one payload on the same key
// (E8128, spec dhis2.md §1.6).
func TestMapDuplicatesWithoutMappingSet(t *testing.T) {
	e := NewEngine(nil, nil)
	ctx := context.Background()
	twice := []transform.DataValue{
		dv("DE_A", "202401", "OU_A", "", "", "4"),
		dv("DE_A", "202401", "OU_B", "", "", "1"),
		dv("DE_A", "202401", "OU_A", "", "", "6"),
		{DataElement: "DE_C", Period: "202401", OrgUnit: "OU_A", Categories: cats("SEX=F", "AGE=LT1"), Value: "2"},
		{DataElement: "DE_C", Period: "202401", OrgUnit: "OU_A", Categories: cats("SEX=F", "AGE=LT1"), Value: "2"},
	}
	tests := []struct {
		dups    string
		want    []string
		refused []string
		report  []string
	}{
		{dups: "reject",
			want:    []string{"DE_A 202401 OU_B   1 #1", "DE_C 202401 OU_A   2 #3"},
			refused: []string{"0 key E8128: it and value 2 map to the same", "2 key E8128: it and value 0"},
			report:  []string{"DE_A 202401 OU_A  : refused [0 2]", "DE_C 202401 OU_A SEX=F;AGE=LT1 : identical [3 4] 2"}},
		{dups: "sum",
			want:   []string{"DE_A 202401 OU_A   10 #0", "DE_A 202401 OU_B   1 #1", "DE_C 202401 OU_A   4 #3"},
			report: []string{"DE_A 202401 OU_A  : sum [0 2] 10", "DE_C 202401 OU_A SEX=F;AGE=LT1 : sum [3 4] 4"}},
		{dups: "last",
			want:   []string{"DE_A 202401 OU_A   6 #2", "DE_A 202401 OU_B   1 #1", "DE_C 202401 OU_A   2 #4"},
			report: []string{"DE_A 202401 OU_A  : last [0 2] 6", "DE_C 202401 OU_A SEX=F;AGE=LT1 : last [3 4] 2"}},
		// keep: every value reaches the target as received, which settles them as DHIS2
		// does (conformance README §6.1 dataValueSetBooleanTest, §6.2 E8128).
		{dups: "keep",
			want: []string{"DE_A 202401 OU_A   4 #0", "DE_A 202401 OU_B   1 #1", "DE_A 202401 OU_A   6 #2",
				"DE_C 202401 OU_A   2 #3", "DE_C 202401 OU_A   2 #4"}},
	}
	for _, tt := range tests {
		t.Run(tt.dups, func(t *testing.T) {
			in := &transform.Batch{ID: "b", Source: "s", DataSet: "DS_A", Deletion: false, ImportStrategy: "CREATE", Values: indexed(twice)}
			m, err := e.MapWith(ctx, in, &Source{Name: "s", Duplicates: tt.dups}, &Target{Name: "hmis"}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, "values", m, tt.want)
			if len(m.Refused) != len(tt.refused) {
				t.Errorf("refused:\n%s", refusedText(m.Refused))
			}
			for i := range min(len(m.Refused), len(tt.refused)) {
				if s := showRefused(m.Refused[i]); !strings.HasPrefix(s, tt.refused[i]) {
					t.Errorf("refused[%d] = %s, want %s…", i, s, tt.refused[i])
				}
			}
			dupCheck(tt.report...)(t, m)
			b := m.Batch
			if b.Target != "hmis" || b.DataSet != "DS_A" || b.ImportStrategy != "CREATE" || b.Schemes != in.Schemes || len(in.Values) != 5 {
				t.Errorf("batch = %+v", b)
			}
		})
	}
}

func indexed(vs []transform.DataValue) []transform.DataValue {
	out := make([]transform.DataValue, len(vs))
	for i, v := range vs {
		v.Index = i
		out[i] = v
	}
	return out
}

// TestMapDuplicatesAcrossBatches: with PayloadKeys the policy reaches the payload's earlier
// batches; mapping a batch again does not count it twice.
func TestMapDuplicatesAcrossBatches(t *testing.T) {
	sets, _ := compile(t, engineYAML, engineFiles)
	e := NewEngine(sets, StaticMetadata{"hmis": kalima(t)})
	ctx := context.Background()
	target := &Target{Name: "hmis", IDSchemes: Schemes{IDScheme: "CODE"}}
	batch := func(seq int, values ...transform.DataValue) *transform.Batch {
		b := &transform.Batch{ID: "p", Seq: seq, Schemes: transform.IDSchemes{IDScheme: "CODE"}}
		for i, v := range values {
			v.Index = seq*10 + i
			b.Values = append(b.Values, v)
		}
		return b
	}
	first := batch(0, dv("CHW_HH", "202401", "KL_N_F1", "", "", "4"), dv("CHW_HH", "202401", "KL_N_F2", "", "", "7"))
	second := batch(1, dv("CHW_HH", "202401", "KL_N_F1", "", "", "6"), dv("CHW_HH", "202401", "KL_N_F2", "", "", "7"),
		dv("CHW_HH", "202402", "KL_N_F1", "", "", "1"))
	tests := []struct {
		dups    string
		want    []string // the second batch's values
		refused []string
		report  []string
		after   []int // the earlier batches the second must reach the target after
	}{
		{dups: "reject",
			want:    []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F2 default default 7 #11", "CHW_HOUSEHOLD_VISITS 202402 KL_N_F1 default default 1 #12"},
			refused: []string{"10 key E8128: value 0, in an earlier batch of the payload, maps to the same data element"},
			report: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default: refused [0 10]",
				"CHW_HOUSEHOLD_VISITS 202401 KL_N_F2 default default: identical [1 11] 7"}},
		{dups: "sum",
			want: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 10 #10", "CHW_HOUSEHOLD_VISITS 202401 KL_N_F2 default default 14 #11",
				"CHW_HOUSEHOLD_VISITS 202402 KL_N_F1 default default 1 #12"},
			report: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default: sum [0 10] 10",
				"CHW_HOUSEHOLD_VISITS 202401 KL_N_F2 default default: sum [1 11] 14"},
			after: []int{0}},
		{dups: "last",
			want: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default 6 #10", "CHW_HOUSEHOLD_VISITS 202401 KL_N_F2 default default 7 #11",
				"CHW_HOUSEHOLD_VISITS 202402 KL_N_F1 default default 1 #12"},
			report: []string{"CHW_HOUSEHOLD_VISITS 202401 KL_N_F1 default default: last [0 10] 6",
				"CHW_HOUSEHOLD_VISITS 202401 KL_N_F2 default default: last [1 11] 7"},
			after: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.dups, func(t *testing.T) {
			src := &Source{Name: "s", Mapping: "tracker", Duplicates: tt.dups}
			pk := NewPayloadKeys(100)
			opts := Options{Payload: pk}
			m1, err := e.MapWith(ctx, first, src, target, opts)
			if err != nil || len(m1.Batch.Values) != 2 || len(m1.Duplicates) != 0 {
				t.Fatalf("first batch: %+v, %v", m1, err)
			}
			// The second batch is mapped twice (a retry): the answer is the same.
			for try := range 2 {
				m, err := e.MapWith(ctx, second, src, target, opts)
				if err != nil {
					t.Fatal(err)
				}
				wantValues(t, fmt.Sprintf("try %d: values", try), m, tt.want)
				if len(m.Refused) != len(tt.refused) || (len(m.Refused) > 0 && !strings.HasPrefix(showRefused(m.Refused[0]), tt.refused[0])) {
					t.Errorf("try %d: refused:\n%s", try, refusedText(m.Refused))
				}
				dupCheck(tt.report...)(t, m)
				// With reject the later value is refused, so nothing needs to follow batch 0.
				if !slices.Equal(m.After, tt.after) {
					t.Errorf("try %d: after %v, want %v", try, m.After, tt.after)
				}
			}
			// The first batch mapped again (a replay) sees no earlier batch.
			if m, err := e.MapWith(ctx, first, src, target, opts); err != nil || len(m.Batch.Values) != 2 || len(m.Duplicates) != 0 {
				t.Errorf("first batch again: %+v, %v", m, err)
			}
			if pk.Len() != 3 {
				t.Errorf("%d keys remembered, want 3", pk.Len())
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		pk := NewPayloadKeys(1)
		m, err := e.MapWith(ctx, first, &Source{Name: "s", Mapping: "tracker"}, target, Options{Payload: pk})
		if err != nil || len(m.Batch.Values) != 2 || len(m.Warnings) != 1 || m.Warnings[0].Index != -1 ||
			!strings.Contains(m.Warnings[0].Reason, "more than 1 target keys") || pk.Len() != 1 {
			t.Fatalf("%+v, %v", m, err)
		}
	})
	// Two payloads mapped at once share a budget of three keys: the first takes two, the
	// second one (and says so); once the first is released the second remembers again, and
	// the budget counts only what is remembered.
	t.Run("budget", func(t *testing.T) {
		budget := NewKeyBudget(3)
		a, b := NewPayloadKeysWithin(100, 0, budget), NewPayloadKeysWithin(100, 0, budget)
		src := &Source{Name: "s", Mapping: "tracker"}
		if m, err := e.MapWith(ctx, first, src, target, Options{Payload: a}); err != nil || len(m.Warnings) != 0 || a.Len() != 2 {
			t.Fatalf("first payload: %+v, %v", m, err)
		}
		m, err := e.MapWith(ctx, second, src, target, Options{Payload: b})
		if err != nil || len(m.Batch.Values) != 3 || b.Len() != 1 || budget.Used() != 3 || len(m.Warnings) != 1 ||
			!strings.Contains(m.Warnings[0].Reason, "payloads being mapped together have more than 3 target keys") {
			t.Fatalf("second payload over the budget: %+v, %v (remembers %d, budget %d)", m, err, b.Len(), budget.Used())
		}
		a.Release()
		if budget.Used() != 1 || a.Len() != 0 {
			t.Fatalf("after release the budget holds %d, the payload %d", budget.Used(), a.Len())
		}
		if m, err := e.MapWith(ctx, second, src, target, Options{Payload: b}); err != nil || len(m.Warnings) != 0 || b.Len() != 3 {
			t.Fatalf("second payload again: %+v, %v (remembers %d)", m, err, b.Len())
		}
		b.Release()
		if budget.Used() != 0 {
			t.Fatalf("budget holds %d after both were released", budget.Used())
		}
	})
	// A payload reserves the keys it expects up front, up to its limit; the next one gets
	// what is left, and takes one key at a time past its reservation while the budget
	// lasts. Release gives back everything taken, reserved or not.
	t.Run("reserved", func(t *testing.T) {
		budget := NewKeyBudget(4)
		a := NewPayloadKeysWithin(2, 5, budget) // expects 5, limited to 2
		b := NewPayloadKeysWithin(100, 1, budget)
		if budget.Used() != 3 {
			t.Fatalf("reserved %d keys, want 2 + 1", budget.Used())
		}
		src := &Source{Name: "s", Mapping: "tracker"}
		// second brings three keys: one reserved, one taken, one over the budget.
		m, err := e.MapWith(ctx, second, src, target, Options{Payload: b})
		if err != nil || b.Len() != 2 || budget.Used() != 4 || len(m.Warnings) != 1 {
			t.Fatalf("past the reservation: %+v, %v (remembers %d, budget %d)", m, err, b.Len(), budget.Used())
		}
		b.Release()
		b.Release() // twice gives back nothing more
		if budget.Used() != 2 {
			t.Fatalf("after releasing the second the budget holds %d, want a's 2", budget.Used())
		}
		a.Release()
		if budget.Used() != 0 {
			t.Fatalf("budget holds %d after both were released", budget.Used())
		}
	})
}
