package ingest

import (
	"context"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/transform"
)

// A large payload is read by one goroutine, the request's, while nothing downstream can
// start: no batch is published before the whole payload proved valid. The parts of that
// reading that do not depend on the parser, hashing the body for the transaction id,
// encoding the parsed batches and mapping them for their targets, run beside it, each on a
// goroutine of its own behind a bounded hand-over, so that a large payload is read on two
// cores instead of one. What is stored and answered is unchanged.

// handOver runs stages of work on the items sent to it, in order, each stage on a goroutine
// of its own, an item passing from one to the next. Items are recycled: the last stage
// returns each one emptied, and next hands it out again, so at most n exist and the sender
// waits while all of them are taken.
type handOver[T any] struct {
	items chan T
	free  chan T
	done  chan struct{}
	once  sync.Once
}

func startHandOver[T any](n int, stages ...func(T) T) *handOver[T] {
	h := &handOver[T]{items: make(chan T, n), free: make(chan T, n), done: make(chan struct{})}
	var zero T
	for range n {
		h.free <- zero
	}
	in := h.items
	for i, work := range stages {
		out := h.free
		if i < len(stages)-1 {
			out = make(chan T, n)
		}
		go func(in <-chan T, out chan<- T, last bool) {
			if last {
				defer close(h.done)
			} else {
				defer close(out)
			}
			for it := range in {
				out <- work(it)
			}
		}(in, out, i == len(stages)-1)
		in = out
	}
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

// spooler stores the batches the parser emits, on two goroutines of its own beside the
// parser's: one encodes each batch, the next maps it for its targets where the mapper can
// (pipeline.Direct, whose delivery messages are then spooled instead of the batch's
// encoding) and writes it to the spool. Mapping was a third of the time a large payload
// took to be answered while it waited for the whole payload to be read; as a stage of its
// own it overlaps the parser, and encoding overlaps both. emit hands a batch over and gives
// the batcher another value slice to fill (transform.BatcherConfig.Emit allows that), so
// at most spoolerBatches batches exist beside the one being filled.
type spooler struct {
	*handOver[*spoolItem]
	direct *pipeline.Direct
	// mapped holds, per batch in order, its delivery messages without their bodies (which
	// are in the spool), or nil when the spool holds the batch's encoding.
	mapped [][]pipeline.Premapped
	failed chan struct{} // closed when err is set
	err    error
}

// spoolItem is a batch on its way through the spooler, with its encoding.
type spoolItem struct {
	b   transform.Batch
	enc []byte
}

// spoolerBatches is one batch being encoded, one being mapped and stored, one between.
const spoolerBatches = 3

func newSpooler(ctx context.Context, sp *spool, direct *pipeline.Direct) *spooler {
	w := &spooler{direct: direct, failed: make(chan struct{})}
	var x transform.Encoder
	encode := func(it *spoolItem) *spoolItem {
		if !w.stopped() {
			x.Encode(&it.b)
			it.enc = x.AppendTo(it.enc[:0])
		}
		return it
	}
	store := func(it *spoolItem) *spoolItem {
		if w.err == nil {
			if err := w.spool(ctx, sp, &it.b, it.enc); err != nil {
				w.err = err
				close(w.failed)
			}
		}
		clear(it.b.Values) // the slice is filled again: let go of the values' strings now
		it.b = transform.Batch{Values: it.b.Values[:0]}
		return it
	}
	w.handOver = startHandOver(spoolerBatches, encode, store)
	return w
}

// stopped reports whether the spool failed: what comes after is not stored.
func (w *spooler) stopped() bool {
	select {
	case <-w.failed:
		return true
	default:
		return false
	}
}

// spool stores batch b, encoded as enc: its delivery messages if it maps here, else enc.
func (w *spooler) spool(ctx context.Context, sp *spool, b *transform.Batch, enc []byte) error {
	pre := w.direct.Map(ctx, b, enc)
	w.mapped = append(w.mapped, pre)
	if pre == nil {
		return sp.add(enc)
	}
	for i := range pre {
		if err := sp.add(pre[i].Data); err != nil {
			return err
		}
		pre[i].Data = nil
	}
	return nil
}

// batches calls fn for each batch spooled, in order: with its encoding, or with its
// delivery messages (data nil), their bodies read back from the spool. Call it after finish.
func (w *spooler) batches(sp *spool, fn func(seq int, data []byte, pre []pipeline.Premapped) error) error {
	seq, got := 0, 0
	return sp.each(func(rec []byte) error {
		if seq >= len(w.mapped) {
			return fmt.Errorf("reading spool: more records than the %d batches spooled", len(w.mapped))
		}
		pre := w.mapped[seq]
		if pre == nil {
			seq++
			return fn(seq-1, rec, nil)
		}
		pre[got].Data = rec
		if got++; got < len(pre) {
			return nil
		}
		seq, got = seq+1, 0
		err := fn(seq-1, nil, pre)
		for i := range pre {
			pre[i].Data = nil // the publisher holds what it still needs: the rest is garbage now
		}
		return err
	})
}

// emit takes batch b's values over and hands the batcher an empty slice in their place.
func (w *spooler) emit(b *transform.Batch) error {
	if w.stopped() {
		return w.err
	}
	it := w.next()
	if it == nil {
		it = new(spoolItem) // the first time round
	}
	b.Values, it.b = it.b.Values, *b
	w.send(it)
	return nil
}

// finish waits until every batch emitted is in the spool, and returns the first error.
// It may be called more than once.
func (w *spooler) finish() error {
	w.handOver.finish()
	return w.err
}
