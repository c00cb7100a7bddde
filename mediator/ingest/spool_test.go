package ingest

import (
	"bytes"
	"fmt"
	"testing"
)

// TestSpoolsShareTheirMemoryBudget: two payloads spooled at once under a budget that holds
// about one of them: the first stays in memory, the second spills to a file once the budget
// is spent; both read back every record in order, and closing gives the memory back.
func TestSpoolsShareTheirMemoryBudget(t *testing.T) {
	budget := newSpoolBudget(64 << 10)
	a, b := newSpool(1<<20, budget), newSpool(1<<20, budget)
	defer a.close()
	defer b.close()
	rec := func(p, i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%d:%04d|", p, i)), 100) } // 700 bytes
	for i := range 40 {
		if err := a.add(rec(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		if err := b.add(rec(1, i)); err != nil {
			t.Fatal(err)
		}
	}
	if a.file != nil {
		t.Error("the first payload spilled though the budget held it")
	}
	if b.file == nil {
		t.Error("the second payload stayed in memory past the shared budget")
	}
	if used := budget.used.Load(); used > budget.max {
		t.Errorf("the spools hold %d bytes of a %d-byte budget", used, budget.max)
	}
	for p, s := range []*spool{a, b} {
		i := 0
		if err := s.each(func(got []byte) error {
			if want := rec(p, i); !bytes.Equal(got, want) {
				return fmt.Errorf("record %d of payload %d: %.20q, want %.20q", i, p, got, want)
			}
			i++
			return nil
		}); err != nil || i != 40 {
			t.Fatalf("payload %d: %d records read back, %v", p, i, err)
		}
	}
	a.close()
	b.close()
	if used := budget.used.Load(); used != 0 {
		t.Errorf("%d bytes of the budget still held after both spools closed", used)
	}
}

// TestSpoolKeepsRecordsInOrderAcrossChunks: records of every size, some larger than a chunk
// grows to, fill several chunks and then spill past the spool's memory limit; they read back
// in order, and the memory reserved never passes the limit.
func TestSpoolKeepsRecordsInOrderAcrossChunks(t *testing.T) {
	const limit = 4 << 20
	budget := newSpoolBudget(64 << 20)
	s := newSpool(limit, budget)
	defer s.close()
	sizes := []int{1, 700, spoolChunkMin - 20, spoolChunkMin, 3 * spoolChunkMin, spoolChunkMax + 1, 50_000}
	var recs [][]byte
	for i := range 120 {
		rec := bytes.Repeat([]byte{byte(i)}, sizes[i%len(sizes)])
		recs = append(recs, rec)
		if err := s.add(rec); err != nil {
			t.Fatal(err)
		}
		if s.reserved > limit {
			t.Fatalf("after record %d the spool reserved %d bytes, past its limit of %d", i, s.reserved, limit)
		}
		if got := budget.used.Load(); got != s.reserved {
			t.Fatalf("after record %d the budget counts %d bytes, the spool holds %d", i, got, s.reserved)
		}
	}
	if len(s.chunks) < 3 || s.file == nil {
		t.Fatalf("%d chunks in memory, spilled %v: the test wants several chunks and a spill", len(s.chunks), s.file != nil)
	}
	i := 0
	if err := s.each(func(got []byte) error {
		if !bytes.Equal(got, recs[i]) {
			return fmt.Errorf("record %d: %d bytes of %d, want %d of %d", i, len(got), got[0], len(recs[i]), recs[i][0])
		}
		i++
		return nil
	}); err != nil || i != len(recs) {
		t.Fatalf("%d of %d records read back: %v", i, len(recs), err)
	}
}
