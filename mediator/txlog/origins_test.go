package txlog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/stream/streamtest"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// newBucket is a tally_tx-like key-value bucket on an in-process JetStream server.
func newBucket(t testing.TB) jetstream.KeyValue {
	t.Helper()
	kv, err := streamtest.JetStream(t).CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "tally_tx", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func keys(t *testing.T, kv jetstream.KeyValue, filter string) []string {
	t.Helper()
	lister, err := kv.ListKeysFiltered(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
	}
	return out
}

func TestIndexBatchWritesOncePerBatchAndPeriod(t *testing.T) {
	ctx := context.Background()
	kv := newBucket(t)
	l := txlog.New(kv)
	b := &transform.Batch{TxID: "tx1", Source: "cht", Seq: 3}
	for i := range 2500 { // 2500 values of 202401 (two parts) and one of 202402
		b.Values = append(b.Values, transform.DataValue{DataElement: "EPI_BCG", Period: "202401", OrgUnit: fmt.Sprintf("OU%d", i),
			CategoryOptionCombo: "F_LT1", Value: fmt.Sprint(i), Index: i})
	}
	b.Values = append(b.Values, transform.DataValue{DataElement: "EPI BCG/x", Period: "202402", OrgUnit: "OU1", Value: "7", Index: 2500})
	rec := &txlog.DeliveryRecord{Target: "hmis", Seq: 3, Outcome: txlog.OutcomePartial, Time: time.Unix(100, 0).UTC(), RejectedIndexes: []int{7}}
	if err := l.IndexBatch(ctx, b, nil, rec); err != nil {
		t.Fatal(err)
	}
	if ks := keys(t, kv, "_v.>"); len(ks) != 3 {
		t.Errorf("index keys = %v, want 3 (two parts of 202401, one of 202402)", ks)
	}
	// The values are stored in the stream's binary encoding, not as JSON objects (over 100
	// bytes a value): the index must cost little beside the streams' 12 bytes a value.
	if e, err := kv.Get(ctx, "_v.hmis.202401.tx1.3.0"); err != nil {
		t.Error(err)
	} else if perValue := len(e.Value()) / 2000; perValue > 30 {
		t.Errorf("the index takes %d bytes a value", perValue)
	} else {
		t.Logf("the index takes %d bytes a value", perValue)
	}
	// A batch of one period is stored from the bytes the delivery message holds.
	later := &transform.Batch{TxID: "tx2", Seq: 0, Values: []transform.DataValue{
		{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "OU7", CategoryOptionCombo: "F_LT1", Value: "70", Index: 0},
		{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "OU8", CategoryOptionCombo: "F_LT1", Value: "80", Index: 1}}}
	if err := l.IndexBatch(ctx, later, transform.EncodeBatch(later), &txlog.DeliveryRecord{Target: "hmis", Outcome: txlog.OutcomePartial,
		Time: time.Unix(200, 0).UTC(), RejectedIndexes: []int{1}}); err != nil {
		t.Fatal(err)
	}
	if ou8, err := l.Origins(ctx, txlog.OriginQuery{TxID: "tx2", Match: func(v txlog.OriginValue) bool { return v.OrgUnit == "OU8" }}); err != nil ||
		len(ou8) != 1 || len(ou8[0].Values) != 1 || ou8[0].Values[0].Value != "80" || !ou8[0].Values[0].Rejected {
		t.Errorf("tx2's rejected value = %+v, %v; want 80, rejected", ou8, err)
	}
	got, err := l.Origins(ctx, txlog.OriginQuery{Target: "hmis", Period: "202401", Match: func(v txlog.OriginValue) bool { return v.OrgUnit == "OU7" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].TxID != "tx2" || got[1].TxID != "tx1" {
		t.Fatalf("origins = %+v, want tx2 then tx1", got)
	}
	if v := got[1].Values; len(v) != 1 || v[0].Value != "7" || !v[0].Rejected || got[1].Source != "cht" || got[1].Seq != 3 {
		t.Errorf("tx1's value = %+v, want 7, rejected", got[1])
	}
	if v := got[0].Values; len(v) != 1 || v[0].Value != "70" || v[0].Rejected {
		t.Errorf("tx2's value = %+v, want 70, taken", v)
	}
	// A data element whose code is no key token is found by its period.
	odd, err := l.Origins(ctx, txlog.OriginQuery{Period: "202402", Match: func(v txlog.OriginValue) bool { return v.DataElement == "EPI BCG/x" }})
	if err != nil || len(odd) != 1 {
		t.Errorf("origins of 202402 = %v, %v", odd, err)
	}
	// The index is not taken for transactions.
	if recs, err := l.List(ctx, "", 0); err != nil || len(recs) != 0 {
		t.Errorf("List = %v, %v; want no transaction", recs, err)
	}
	if views, err := l.Search(ctx, txlog.TxFilter{Status: txlog.TxDelivered}); err != nil || len(views) != 0 {
		t.Errorf("Search = %v, %v; want no transaction", views, err)
	}
}

// Two workers that finish a transaction's last batches together may both register its
// completeness; the first record stands and only it says first, so the metric counts once.
func TestPutCompletionKeepsTheFirstRecord(t *testing.T) {
	ctx := context.Background()
	l := txlog.New(newBucket(t))
	first, err := l.PutCompletion(ctx, "tx1", &txlog.CompletionRecord{Target: "hmis", Registrations: 3})
	if err != nil || !first {
		t.Fatalf("first record: first=%v, %v", first, err)
	}
	again, err := l.PutCompletion(ctx, "tx1", &txlog.CompletionRecord{Target: "hmis", Registrations: 3, Error: "late"})
	if err != nil || again {
		t.Fatalf("second record: first=%v, %v; want false", again, err)
	}
	if other, err := l.PutCompletion(ctx, "tx1", &txlog.CompletionRecord{Target: "other", Registrations: 1}); err != nil || !other {
		t.Errorf("another target's record: first=%v, %v", other, err)
	}
	_, done, err := l.TargetDeliveries(ctx, "tx1", "hmis")
	if err != nil || done == nil || done.Error != "" {
		t.Errorf("the kept record = %+v, %v; want the first, without error", done, err)
	}
}
