package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/transform"
)

type noPos struct{}

func (noPos) Pos() transform.Pos { return transform.Pos{} }

// batchValues feeds n distinct values through a real Batcher whose batches go to emit.
func batchValues(t *testing.T, n, size int, emit func(*transform.Batch) error) *transform.Batcher {
	t.Helper()
	b := transform.NewBatcher(transform.BatcherConfig{Source: "cht", MaxValues: size, Emit: emit,
		Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}})
	for i := range n {
		v := transform.DataValue{DataElement: fmt.Sprintf("DE_%d", i%7), Period: "202401", OrgUnit: fmt.Sprintf("OU_%d", i),
			Value: fmt.Sprint(i)}
		if err := b.Value(&v, noPos{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return b
}

// The spooler encodes on its own goroutine while the batcher fills the next batch: every
// value must reach the spool once, in order, as it was, with no batch overwritten by the
// one after it (run with -race, the hand-over of the value slices is checked too).
func TestSpoolerKeepsEveryBatchWhileTheBatcherRefills(t *testing.T) {
	sp := newSpool(1<<20, nil)
	defer sp.close()
	w := newSpooler(context.Background(), sp, nil)
	b := batchValues(t, 95, 10, w.emit)
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	if b.Batches() != 10 {
		t.Fatalf("batches = %d, want 10", b.Batches())
	}
	next := 0
	seq := 0
	err := sp.each(func(data []byte) error {
		got, err := transform.DecodeBatch(data)
		if err != nil {
			return err
		}
		if got.Seq != seq {
			t.Errorf("batch %d has seq %d", seq, got.Seq)
		}
		seq++
		for _, v := range got.Values {
			if v.Index != next || v.OrgUnit != fmt.Sprintf("OU_%d", next) || v.Value != fmt.Sprint(next) {
				t.Fatalf("value %d arrived as %+v", next, v)
			}
			next++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != 95 {
		t.Errorf("the spool holds %d values, want 95", next)
	}
}

// A spool that cannot keep a batch (no temporary directory to spill to) stops the parse
// at the next batch, and finish reports why.
func TestSpoolerReportsAFailedSpool(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
	sp := newSpool(0, nil) // spills the first batch
	defer sp.close()
	w := newSpooler(context.Background(), sp, nil)
	b := transform.NewBatcher(transform.BatcherConfig{Source: "cht", MaxValues: 1, Emit: w.emit})
	var stopped error
	for i := 0; stopped == nil && i < 1000; i++ {
		v := transform.DataValue{DataElement: "DE", Period: "202401", OrgUnit: fmt.Sprintf("OU_%d", i), Value: "1"}
		stopped = b.Value(&v, noPos{})
	}
	if stopped == nil {
		t.Error("the batcher went on for 1000 batches after the spool failed")
	}
	if err := w.finish(); err == nil || !strings.Contains(err.Error(), "spilling payload to disk") {
		t.Errorf("finish = %v, want the spool's error", err)
	}
}

// The digest fed on another goroutine is the digest of every byte read, whatever the
// sizes of the reads.
func TestHashingReaderHashesEveryByte(t *testing.T) {
	body := make([]byte, 1<<20+17)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(r.IntN(256))
	}
	for name, rd := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(body[:4096])),
		"half":     iotest.HalfReader(bytes.NewReader(body)),
		"whole":    bytes.NewReader(body),
	} {
		h := sha256.New()
		hr := newHashingReader(rd, h)
		got, err := io.ReadAll(hr)
		hr.finish()
		hr.finish() // twice is harmless (read's defer)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(got); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("%s: the digest is not the body's", name)
		}
		if name != "one byte" && !bytes.Equal(got, body) {
			t.Errorf("%s: the reader changed what it passed on", name)
		}
	}
}

// batches hands each batch's records back in order: the encoding of a batch left to the
// mapper stage, or the bodies of a batch's delivery messages. Once a batch was handed over,
// its bodies are no longer held: keeping them retained every record read back from the
// spool until the payload was through (225 MB of a 10-million-value payload).
func TestSpoolerBatchesHandsEachRecordOverOnce(t *testing.T) {
	sp := newSpool(1<<20, nil)
	defer sp.close()
	w := newSpooler(context.Background(), sp, nil)
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	for _, rec := range []string{"batch 0", "batch 1 for a", "batch 1 for b", "batch 2"} {
		if err := sp.add([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	w.mapped = [][]pipeline.Premapped{nil, make([]pipeline.Premapped, 2), nil}
	var got []string
	err := w.batches(sp, func(seq int, data []byte, pre []pipeline.Premapped) error {
		if pre == nil {
			got = append(got, fmt.Sprintf("%d: %s", seq, data))
			return nil
		}
		for _, p := range pre {
			got = append(got, fmt.Sprintf("%d: %s (mapped)", seq, p.Data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0: batch 0", "1: batch 1 for a (mapped)", "1: batch 1 for b (mapped)", "2: batch 2"}
	if !slices.Equal(got, want) {
		t.Errorf("batches handed over %q, want %q", got, want)
	}
	for i, p := range w.mapped[1] {
		if p.Data != nil {
			t.Errorf("message %d of batch 1 still holds its body after it was handed over", i)
		}
	}
}
