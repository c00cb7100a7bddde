package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// spool holds a payload's encoded batches between parsing and publishing, because nothing may
// be published until the whole payload has proved valid. It keeps up to memLimit bytes in
// memory and spills the rest to a temporary file, so a million-value payload costs disk, not
// memory.
//
// The memory of all spools together is bounded too (spoolBudget): a hundred payloads posted
// at once each kept up to the per-payload limit in memory, which made their encoded batches
// the largest part of Tally's heap; past the shared budget a payload spills as a large one
// does.
//
// The in-memory part is a list of chunks, each twice the size of the one before up to
// spoolChunkMax, rather than one slice grown by append: growing a slice copies everything
// held so far, which was a few percent of Tally's CPU on large payloads, and a chunk is
// reserved from the budget exactly as allocated.
type spool struct {
	memLimit int
	budget   *spoolBudget // nil: only memLimit bounds it
	reserved int64        // bytes of budget this spool holds: the chunks' capacity
	chunks   [][]byte     // records in memory, in order; only the last one has room
	file     *os.File
	w        *bufio.Writer
	count    int
}

// The first chunk of a spool, and the largest a later one grows to (a larger record gets a
// chunk of its own size).
const (
	spoolChunkMin = 64 << 10
	spoolChunkMax = 1 << 20
)

// spoolFileBuffer is the buffer of a spool's file, written and then read: 32 KiB, since a
// hundred payloads spilling at once each hold one.
const spoolFileBuffer = 32 << 10

func newSpool(memLimit int, budget *spoolBudget) *spool {
	return &spool{memLimit: memLimit, budget: budget}
}

// spoolBudget is the memory the spools of concurrent ingests share.
type spoolBudget struct {
	used atomic.Int64
	max  int64
}

func newSpoolBudget(n int) *spoolBudget { return &spoolBudget{max: int64(n)} }

// take reserves n bytes if the budget has them.
func (b *spoolBudget) take(n int64) bool {
	if b == nil {
		return true
	}
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *spoolBudget) give(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

func (s *spool) add(data []byte) error {
	s.count++
	if s.file == nil && s.room(len(data)+binary.MaxVarintLen64) {
		c := &s.chunks[len(s.chunks)-1]
		*c = binary.AppendUvarint(*c, uint64(len(data)))
		*c = append(*c, data...)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "tally-spool-*")
		if err != nil {
			return fmt.Errorf("spilling payload to disk: %w", err)
		}
		s.file, s.w = f, bufio.NewWriterSize(f, spoolFileBuffer)
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(data)))
	if _, err := s.w.Write(hdr[:n]); err != nil {
		return fmt.Errorf("spilling payload to disk: %w", err)
	}
	if _, err := s.w.Write(data); err != nil {
		return fmt.Errorf("spilling payload to disk: %w", err)
	}
	return nil
}

// each calls fn for every spooled record in order; fn may keep the slice.
func (s *spool) each(fn func([]byte) error) error {
	for _, c := range s.chunks {
		for buf := c; len(buf) > 0; {
			l, k := binary.Uvarint(buf)
			if err := fn(buf[k : k+int(l)]); err != nil {
				return err
			}
			buf = buf[k+int(l):]
		}
	}
	if s.file == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flushing spool: %w", err)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding spool: %w", err)
	}
	r := bufio.NewReaderSize(s.file, spoolFileBuffer)
	for {
		l, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading spool: %w", err)
		}
		// A fresh slice per record: the publisher keeps it until JetStream acknowledges.
		rec := make([]byte, l)
		if _, err := io.ReadFull(r, rec); err != nil {
			return fmt.Errorf("reading spool: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// room makes sure the last chunk has need bytes free, adding a chunk when it has not, as
// long as the spool's memory limit and the shared budget allow the chunk.
func (s *spool) room(need int) bool {
	if n := len(s.chunks); n > 0 && cap(s.chunks[n-1])-len(s.chunks[n-1]) >= need {
		return true
	}
	size := spoolChunkMin
	if n := len(s.chunks); n > 0 {
		size = min(2*cap(s.chunks[n-1]), spoolChunkMax)
	}
	size = max(size, need)
	if s.reserved+int64(size) > int64(s.memLimit) {
		size = max(int(int64(s.memLimit)-s.reserved), need) // the rest of the limit, if it fits
		if s.reserved+int64(size) > int64(s.memLimit) {
			return false
		}
	}
	if !s.budget.take(int64(size)) {
		return false
	}
	s.reserved += int64(size)
	s.chunks = append(s.chunks, make([]byte, 0, size))
	return true
}

func (s *spool) close() {
	if s.file != nil {
		name := s.file.Name()
		_ = s.file.Close()
		_ = os.Remove(name)
		s.file = nil
	}
	s.chunks = nil
	s.budget.give(s.reserved)
	s.reserved = 0
}
