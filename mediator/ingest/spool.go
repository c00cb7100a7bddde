package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// spool holds a payload's encoded batches between parsing and publishing, because nothing may
// be published until the whole payload has proved valid. It keeps up to memLimit bytes in
// memory and spills the rest to a temporary file, so a million-value payload costs disk, not
// memory.
type spool struct {
	memLimit int
	mem      []byte
	file     *os.File
	w        *bufio.Writer
	count    int
}

func newSpool(memLimit int) *spool { return &spool{memLimit: memLimit} }

func (s *spool) add(data []byte) error {
	s.count++
	if s.file == nil && len(s.mem)+len(data)+binary.MaxVarintLen64 <= s.memLimit {
		s.mem = binary.AppendUvarint(s.mem, uint64(len(data)))
		s.mem = append(s.mem, data...)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "tally-spool-*")
		if err != nil {
			return fmt.Errorf("spilling payload to disk: %w", err)
		}
		s.file, s.w = f, bufio.NewWriterSize(f, 256<<10)
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
	for buf := s.mem; len(buf) > 0; {
		l, k := binary.Uvarint(buf)
		if err := fn(buf[k : k+int(l)]); err != nil {
			return err
		}
		buf = buf[k+int(l):]
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
	r := bufio.NewReaderSize(s.file, 256<<10)
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

func (s *spool) close() {
	if s.file != nil {
		name := s.file.Name()
		_ = s.file.Close()
		_ = os.Remove(name)
		s.file = nil
	}
	s.mem = nil
}
