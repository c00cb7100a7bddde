package delivery_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
)

// The backlog is counted from the real TALLY_DELIVER stream, as Tally opens it: batches per
// target, values from each message's header (or its body, for a message written before the
// header existed), and only "at least" when more batches wait than it may read.
func TestBacklogCountsValuesWithoutTakingThem(t *testing.T) {
	ctx := context.Background()
	conn, err := stream.Open(ctx, stream.Config{StoreDir: t.TempDir(), DuplicateWindow: time.Minute}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pub := stream.NewPublisher(conn.JS, 16)
	batch := func(target string, n int) *transform.Batch {
		b := &transform.Batch{TxID: "tx", Target: target}
		for i := range n {
			b.Values = append(b.Values, transform.DataValue{DataElement: "DE", Period: "202401", OrgUnit: fmt.Sprint("OU", i), Value: "1"})
		}
		return b
	}
	for i, n := range []int{3, 5, 7} {
		if err := pub.Publish(ctx, pipeline.DeliverMessage(fmt.Sprint("hmis-", i), nil, batch("hmis", n), 0, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// A message of an older Tally: no value count in its headers.
	old := stream.Msg{Subject: stream.DeliverPrefix + "hmis", ID: "old", Data: transform.EncodeBatch(batch("hmis", 11)),
		Header: nats.Header{pipeline.HeaderTx: []string{"tx"}}}
	if err := pub.Publish(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, pipeline.DeliverMessage("other-0", nil, batch("other", 100), 0, nil)); err != nil {
		t.Fatal(err)
	}
	b := delivery.Backlog{JS: conn.JS}
	w, err := b.Waiting(ctx)
	if err != nil || w["hmis"] != 4 || w["other"] != 1 {
		t.Fatalf("batches waiting = %v, %v; want hmis 4, other 1", w, err)
	}
	if n, complete, err := b.Values(ctx, "hmis", 10); err != nil || n != 26 || !complete {
		t.Errorf("values waiting for hmis = %d (complete %v), %v; want 26", n, complete, err)
	}
	if n, complete, err := b.Values(ctx, "hmis", 2); err != nil || n != 8 || complete {
		t.Errorf("the oldest two batches = %d (complete %v), %v; want at least 8", n, complete, err)
	}
	if n, complete, err := b.Values(ctx, "none", 10); err != nil || n != 0 || !complete {
		t.Errorf("a target with nothing waiting = %d (complete %v), %v", n, complete, err)
	}
	if again, _ := b.Waiting(ctx); again["hmis"] != 4 {
		t.Errorf("counting took messages: %v", again)
	}
}
