package dvs

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform"
)

// TestStreamMillionValues streams a generated 1,000,000-value data value set (about 220
// MB, generated while it is read, never held) through DecodeJSON into a Batcher with a
// no-op Emit and samples the heap after every batch. Streaming keeps the heap to the
// buffers, one batch and the interned strings, whatever the payload's size.
func TestStreamMillionValues(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 220 MB")
	}
	const n = 1_000_000
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtime.GC()
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak uint64
	batches := 0
	bt := transform.NewBatcher(transform.BatcherConfig{Source: "kalima", Emit: func(b *transform.Batch) error {
		batches++
		metrics.Read(sample)
		peak = max(peak, sample[0].Value.Uint64())
		return nil
	}})
	start := time.Now()
	if err := DecodeJSON(newKalimaJSON(n), bt, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := bt.Close(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if bt.Values() != n || batches != n/transform.DefaultBatchSize {
		t.Fatalf("read %d values in %d batches", bt.Values(), batches)
	}
	t.Logf("1,000,000 values in %d batches, %v (%.0f values/s including generation); heap objects before %.1f MiB, peak %.1f MiB (live and not yet collected)",
		batches, elapsed.Round(time.Millisecond), n/elapsed.Seconds(), float64(base)/(1<<20), float64(peak)/(1<<20))
	// Not a timing assertion: a non-streaming decoder would need the 220 MB payload at least.
	if limit := base + 64<<20; peak > limit {
		t.Errorf("heap peaked at %d bytes, want under %d", peak, limit)
	}
}
