package txlog_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/txlog"
)

// A retry learns that an earlier attempt began storing the payload split the same way, and
// which batches that attempt settled: a batch whose first delivery has a final outcome, not one still retrying, waiting
// for mapping, or settled only by a replay from the dead-letter queue. The mark itself is no
// transaction: lists and views do not show it.
func TestARetryLearnsWhatItsEarlierAttemptSettled(t *testing.T) {
	ctx := context.Background()
	l := txlog.New(newBucket(t))
	if again, err := l.BeginStoring(ctx, "tx1", "7×1000"); err != nil || again {
		t.Fatalf("first attempt: again %v, %v", again, err)
	}
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []txlog.DeliveryRecord{
		{Target: "hmis", Seq: 0, Outcome: txlog.OutcomeDelivered},
		{Target: "hmis", Seq: 1, Outcome: txlog.OutcomePartial},
		{Target: "hmis", Seq: 2, Outcome: txlog.OutcomeRetrying},
		{Target: "hmis", Seq: 3, Outcome: txlog.OutcomeRetrying, Stage: "mapping"},
		{Target: "hmis", Seq: 4, Outcome: txlog.OutcomeDelivered, Replay: 1},
		{Target: "dw", Seq: 0, Outcome: txlog.OutcomeDeadLettered},
		{Target: "dw", Seq: 5, Outcome: txlog.OutcomeEmpty},
	} {
		d.Time = now
		if err := l.PutDelivery(ctx, "tx1", &d); err != nil {
			t.Fatal(err)
		}
	}
	// The same request split otherwise (batch_size changed in between): its batches are
	// not the earlier attempt's.
	if again, err := l.BeginStoring(ctx, "tx1", "4×2000"); err != nil || again {
		t.Fatalf("retry split otherwise: again %v, %v", again, err)
	}
	again, err := l.BeginStoring(ctx, "tx1", "7×1000")
	if err != nil || !again {
		t.Fatalf("retry: again %v, %v", again, err)
	}
	s, err := l.Settled(ctx, "tx1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]string{0: {"dw", "hmis"}, 1: {"hmis"}, 5: {"dw"}}
	for seq := range 7 {
		got := slices.Sorted(slices.Values(s.Targets(seq)))
		if !slices.Equal(got, want[seq]) {
			t.Errorf("batch %d settled at %v, want %v", seq, got, want[seq])
		}
	}
	if recs, err := l.List(ctx, "", 0); err != nil || len(recs) != 0 {
		t.Errorf("List = %v, %v; the mark is not a transaction", recs, err)
	}
	if _, err := l.View(ctx, "tx1"); err == nil {
		t.Error("View found a transaction that has only a mark and deliveries")
	}
}
