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
// the parser, each on a goroutine of its own behind a bounded hand-over, so that a large
// payload is read on two cores instead of one. What is stored and answered is unchanged.

// handOver runs work on the items sent to it, in order, on a goroutine of its own. Items
// are recycled: work returns each one emptied, and next hands it out again, so at most n
// exist and the sender waits while all of them are taken.
type handOver[T any] struct {
	items chan T
	free  chan T
	done  chan struct{}
	once  sync.Once
}

func startHandOver[T any](n int, work func(T) T) *handOver[T] {
	h := &handOver[T]{items: make(chan T, n), free: make(chan T, n), done: make(chan struct{})}
	var zero T
	for range n {
		h.free <- zero
	}
	go func() {
		defer close(h.done)
		for it := range h.items {
			h.free <- work(it)
		}
	}()
	return h
}

// next returns an item to fill, waiting until one is free.
func (h *handOver[T]) next() T { return <-h.free }

// send hands a filled item to the goroutine.
func (h *handOver[T]) send(it T) { h.items <- it }

// finish waits until every item sent was worked on. It may be called more than once.
func (h *handOver[T]) finish() {
	h.once.Do(func() { close(h.items) })
	<-h.done
}

// hashingReader feeds what is read through it to a hash on a goroutine of its own.
// finish must be called before the hash is read; it waits for every chunk read so far.
type hashingReader struct {
	r io.Reader
	*handOver[[]byte]
}

// hashChunks bounds the chunks read and not yet hashed (each as large as one read).
const hashChunks = 4

func newHashingReader(r io.Reader, h hash.Hash) *hashingReader {
	return &hashingReader{r: r, handOver: startHandOver(hashChunks, func(c []byte) []byte {
		h.Write(c)
		return c[:0]
	})}
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	if n > 0 {
		hr.send(append(hr.next(), p[:n]...)) // a copy: the reader reuses p
	}
	return n, err
}

// spooler encodes batches into a spool on a goroutine of its own. emit hands it a batch
// and gives the batcher another value slice to fill (transform.BatcherConfig.Emit allows
// that), so at most spoolerBatches batches exist beside the one being filled.
type spooler struct {
	*handOver[transform.Batch]
	failed chan struct{} // closed when err is set
	err    error
}

const spoolerBatches = 2

func newSpooler(sp *spool) *spooler {
	w := &spooler{failed: make(chan struct{})}
	var (
		enc []byte
		x   transform.Encoder
	)
	w.handOver = startHandOver(spoolerBatches, func(b transform.Batch) transform.Batch {
		if w.err == nil {
			x.Encode(&b)
			enc = x.AppendTo(enc[:0])
			if err := sp.add(enc); err != nil {
				w.err = err
				close(w.failed)
			}
		}
		clear(b.Values) // the slice is filled again: let go of the values' strings now
		return transform.Batch{Values: b.Values[:0]}
	})
	return w
}

// emit takes batch b's values over and hands the batcher an empty slice in their place.
func (w *spooler) emit(b *transform.Batch) error {
	select {
	case <-w.failed:
		return w.err
	default:
	}
	handed := *b
	b.Values = w.next().Values
	w.send(handed)
	return nil
}

// finish waits until every batch emitted is in the spool, and returns the first error.
// It may be called more than once.
func (w *spooler) finish() error {
	w.handOver.finish()
	return w.err
}
