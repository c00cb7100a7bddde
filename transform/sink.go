package transform

import (
	"fmt"
	"time"
)

// Group carries what a run of values shares beyond the fields each value holds: the data set,
// the complete date and the id schemes the payload declared. A data value set is one group;
// an ADX message has one per <group> element.
type Group struct {
	DataSet      string
	CompleteDate string
	Schemes      IDSchemes
}

// Locator tells where a parser is, asked only when something is wrong so that parsers need
// not track lines on the hot path.
type Locator interface {
	Pos() Pos
}

// Sink receives what a parser reads, as it reads it. Parsers apply header inheritance before
// calling Value. The DataValue itself is only valid for the duration of the call, but a
// sink may keep the Categories and Attributes slices it references, so a parser must not
// reuse them.
type Sink interface {
	Group(g Group) error
	Value(v *DataValue, at Locator) error
}

// BatcherConfig configures a Batcher.
type BatcherConfig struct {
	Source   string
	TxID     string
	Received time.Time
	// Schemes are the schemes the request declared (query parameters); a payload's own
	// schemes are overlaid on them group by group.
	Schemes IDSchemes
	// MaxValues bounds a batch; 0 means DefaultBatchSize.
	MaxValues int
	// MaxErrors bounds the problems collected before the parse is stopped; 0 means 100.
	MaxErrors int
	// Emit receives each full batch. It must not keep b or its values after it returns.
	Emit func(b *Batch) error
}

// DefaultBatchSize keeps an encoded batch far below the NATS payload limit.
const DefaultBatchSize = 1000

// Batcher is the Sink at the end of every parser: it numbers values, validates them,
// collects every problem with its place, and cuts the stream into bounded batches.
type Batcher struct {
	cfg     BatcherConfig
	batch   Batch
	index   int
	batches int
	errs    InputErrors
}

// NewBatcher returns a Batcher for one payload.
func NewBatcher(cfg BatcherConfig) *Batcher {
	if cfg.MaxValues <= 0 {
		cfg.MaxValues = DefaultBatchSize
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = 100
	}
	b := &Batcher{cfg: cfg}
	b.batch = Batch{
		TxID: cfg.TxID, Source: cfg.Source, Received: cfg.Received, Schemes: cfg.Schemes,
		Values: make([]DataValue, 0, min(cfg.MaxValues, 1024)),
	}
	return b
}

// Group starts a new run of values; a batch never spans two groups.
func (b *Batcher) Group(g Group) error {
	schemes := b.cfg.Schemes.Overlay(g.Schemes)
	if g.DataSet == b.batch.DataSet && g.CompleteDate == b.batch.CompleteDate && schemes == b.batch.Schemes {
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	b.batch.DataSet, b.batch.CompleteDate, b.batch.Schemes = g.DataSet, g.CompleteDate, schemes
	return nil
}

// Value validates v, numbers it and adds it to the current batch.
func (b *Batcher) Value(v *DataValue, at Locator) error {
	v.Index = b.index
	b.index++
	if bad := Validate(v); bad != nil {
		return b.reject(bad, at)
	}
	if len(b.errs.Errs) > 0 {
		return nil // the payload will be refused; don't build batches for nothing
	}
	b.batch.Values = append(b.batch.Values, *v)
	if len(b.batch.Values) >= b.cfg.MaxValues {
		return b.flush()
	}
	return nil
}

// Reject records a problem the parser found itself (a field of the wrong type, say). A
// problem with a value (Index ≥ 0) uses up that value's index, so that the values after
// it keep their positions in the payload.
func (b *Batcher) Reject(e *InputError, at Locator) error {
	if e.Index >= 0 {
		e.Index = b.index
		b.index++
	}
	return b.reject(e, at)
}

func (b *Batcher) reject(e *InputError, at Locator) error {
	if at != nil && e.Pos == (Pos{}) {
		e.Pos = at.Pos()
	}
	if len(b.errs.Errs) >= b.cfg.MaxErrors {
		b.errs.More++
		return ErrTooManyErrors
	}
	b.errs.Errs = append(b.errs.Errs, e)
	return nil
}

// Close flushes the last batch and reports the collected problems, if any, as *InputErrors.
func (b *Batcher) Close() error {
	if len(b.errs.Errs) > 0 {
		return &b.errs
	}
	return b.flush()
}

// Values is how many values were read; Batches how many batches were emitted.
func (b *Batcher) Values() int  { return b.index }
func (b *Batcher) Batches() int { return b.batches }

func (b *Batcher) flush() error {
	if len(b.batch.Values) == 0 || len(b.errs.Errs) > 0 {
		return nil
	}
	b.batch.Seq = b.batches
	b.batches++
	if err := b.cfg.Emit(&b.batch); err != nil {
		return fmt.Errorf("emitting batch %d: %w", b.batch.Seq, err)
	}
	b.batch.Values = b.batch.Values[:0]
	return nil
}
