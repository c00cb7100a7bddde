package pipeline

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestPayloadKeysForgetAPayloadOnceEveryBatchWasMapped: the keys of a payload of three
// batches stay while any batch is still to be mapped (a batch whose mapping failed will be
// retried and must see the others), and are dropped once all three were mapped, so that
// the mapper's memory does not grow with every payload it has seen.
func TestPayloadKeysForgetAPayloadOnceEveryBatchWasMapped(t *testing.T) {
	p := newPayloadKeys()
	h := nats.Header{}
	h.Set(HeaderBatches, "3")
	ctx := context.Background()
	map1 := func(seq int, ok bool) {
		t.Helper()
		keys, done := p.begin(ctx, "tx1", "hmis", seq, 1000, h)
		if keys == nil {
			t.Fatalf("batch %d of a payload of 3 got no keys", seq)
		}
		done(ok)
	}
	map1(0, true)
	map1(1, false) // failed: it comes back
	map1(2, true)
	if len(p.entries) != 1 || len(p.order) != 1 {
		t.Fatalf("%d payloads remembered while batch 1 is still to be mapped, want 1", len(p.entries))
	}
	keys, _ := p.begin(ctx, "tx1", "hmis", 1, 1000, h)
	if keys != p.entries["tx1\x00hmis"].keys {
		t.Fatal("the retried batch did not get the payload's keys")
	}
	map1(1, true)
	if len(p.entries) != 0 || len(p.order) != 0 {
		t.Fatalf("%d payloads (%d in order) remembered after every batch was mapped, want 0", len(p.entries), len(p.order))
	}
	one := nats.Header{}
	one.Set(HeaderBatches, "1")
	if keys, _ := p.begin(ctx, "tx2", "hmis", 0, 1000, one); keys != nil || len(p.entries) != 0 {
		t.Fatal("a payload of one batch needs no memory")
	}
}
