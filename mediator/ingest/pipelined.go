package ingest

import (
	"hash"
	"io"
	"sync"

	"github.com/tally-hmis/tally/transform"
)

// A large payload is read by one goroutine, the request's, while nothing downstream can
// start: no batch is published before the whole payload proved valid. Two parts of that
// reading do not depend on the parser, hashing the body for the transaction id and
// encoding the parsed batches into the spool, and were a third of it. They run beside
// the parser, each on a goroutine of its own with a bounded hand-over, so that a large
// payload is read on two cores instead of one. What is stored and answered is unchanged.

// hashingReader feeds what is read through it to a hash on a goroutine of its own.
// finish must be called before the hash is read; it waits for every chunk read so far.
type hashingReader struct {
	r      io.Reader
	h      hash.Hash
	chunks chan []byte
	free   chan []byte
	done   chan struct{}
	once   sync.Once
}

// hashChunks bounds the chunks read and not yet hashed (each as large as one read).
const hashChunks = 4

func newHashingReader(r io.Reader, h hash.Hash) *hashingReader {
	hr := &hashingReader{r: r, h: h, chunks: make(chan []byte, hashChunks), free: make(chan []byte, hashChunks),
		done: make(chan struct{})}
	for range hashChunks {
		hr.free <- nil
	}
	go hr.run()
	return hr
}

func (hr *hashingReader) run() {
	defer close(hr.done)
	for c := range hr.chunks {
		hr.h.Write(c)
		hr.free <- c[:0]
	}
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	if n > 0 {
		c := append(<-hr.free, p[:n]...) // a copy: the reader reuses p
		hr.chunks <- c
	}
	return n, err
}

// finish waits until everything read was hashed. It may be called more than once.
func (hr *hashingReader) finish() {
	hr.once.Do(func() { close(hr.chunks) })
	<-hr.done
}

// spooler encodes batches into a spool on a goroutine of its own. emit hands it a batch
// and gives the batcher another value slice to fill (transform.BatcherConfig.Emit allows
// that), so at most spoolerBatches batches wait beside the one being filled.
type spooler struct {
	sp     *spool
	work   chan *transform.Batch
	free   chan []transform.DataValue
	done   chan struct{}
	failed chan struct{} // closed when err is set
	err    error
	once   sync.Once
}

const spoolerBatches = 2

func newSpooler(sp *spool) *spooler {
	w := &spooler{sp: sp, work: make(chan *transform.Batch, spoolerBatches-1),
		free: make(chan []transform.DataValue, spoolerBatches), done: make(chan struct{}), failed: make(chan struct{})}
	for range spoolerBatches {
		w.free <- nil
	}
	go w.run()
	return w
}

func (w *spooler) run() {
	defer close(w.done)
	var enc []byte
	for b := range w.work {
		if w.err == nil {
			enc = transform.AppendBatch(enc[:0], b)
			if err := w.sp.add(enc); err != nil {
				w.err = err
				close(w.failed)
			}
		}
		clear(b.Values) // the slice is filled again: let go of the values' strings now
		w.free <- b.Values[:0]
	}
}

// emit takes batch b's values over and hands the batcher an empty slice in their place.
func (w *spooler) emit(b *transform.Batch) error {
	select {
	case <-w.failed:
		return w.err
	default:
	}
	handed := *b
	b.Values = <-w.free
	w.work <- &handed
	return nil
}

// finish waits until every batch emitted is in the spool, and returns the first error.
// It may be called more than once.
func (w *spooler) finish() error {
	w.once.Do(func() { close(w.work) })
	<-w.done
	return w.err
}
