package transform

import (
	"fmt"
	"time"
)

// Group carries what a run of values shares beyond the fields each value holds: the data set,
// the complete date, the id schemes and the import strategy the payload declared. A data
// value set is one group; an ADX message has one per <group> element.
type Group struct {
	DataSet      string
	CompleteDate string
	Schemes      IDSchemes
	// ImportStrategy is the payload's own strategy (a data value set's "strategy"); it
	// wins over BatcherConfig.ImportStrategy, as DHIS2 lets the payload win.
	ImportStrategy ImportStrategy
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

// Rejecter is a Sink that also takes the problems a parser finds with a value itself (a
// field of the wrong type, say), so that the parse can go on; Batcher is one. A parser
// whose sink is no Rejecter ends the parse with such a problem instead.
type Rejecter interface {
	Reject(e *InputError, at Locator) error
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
	// In PerValue mode it bounds the document-level problems only.
	MaxErrors int
	// Emit receives each full batch. It must not keep b or its values after it returns,
	// unless it takes the values over by setting b.Values to a slice of its own (empty, or
	// nil), which the batcher then fills with the next batch's values.
	Emit func(b *Batch) error

	// PerValue imports value by value, as DHIS2 2.38–2.42 does: a value that fails
	// validation (or that the parser rejects) is left out of the batches and recorded as
	// a value conflict, and the rest go on; Close then reports only document-level
	// problems and Report tells what was kept and what was not. The zero value refuses
	// the whole payload for any problem.
	PerValue bool
	// MaxConflicts bounds the value conflicts Report keeps in PerValue mode (DHIS2 keeps
	// all; Report counts the rest); 0 means DefaultMaxConflicts.
	MaxConflicts int
	// Release, when set, validates periods for that DHIS2 release (minor number: 41 for
	// 2.41): a period of a type the release does not know is not valid (E7611). 0
	// accepts every period type.
	Release int
	// ImportStrategy is the request's importStrategy (query parameter), carried into
	// every batch unless a group sets its own.
	ImportStrategy ImportStrategy
}

// DefaultBatchSize keeps an encoded batch far below the NATS payload limit.
const DefaultBatchSize = 1000

// DefaultMaxConflicts is how many value conflicts a PerValue Batcher keeps by default.
const DefaultMaxConflicts = 1000

// ValueReport is what a Batcher made of a payload's values: how many it read, kept in
// its batches and rejected, and the conflicts of the rejected ones (in PerValue mode),
// the first MaxConflicts of them in payload order. Unless Close reported a problem,
// Read == Kept + Rejected and Rejected == len(Conflicts) + More.
type ValueReport struct {
	Read, Kept, Rejected int
	// Conflicts are the rejected values' problems, each with its Index, place and, where
	// DHIS2 has one, Conflict; MergeConflicts turns them into DHIS2's conflict list.
	Conflicts []*InputError
	// More counts the rejected values whose conflicts were not kept.
	More int
}

// Batcher is the Sink at the end of every parser: it numbers values, validates them,
// collects every problem with its place, and cuts the stream into bounded batches.
type Batcher struct {
	cfg       BatcherConfig
	batch     Batch
	index     int
	batches   int
	kept      int
	errs      InputErrors
	conflicts InputErrors // PerValue: the rejected values
	periods   periodCheck
}

// NewBatcher returns a Batcher for one payload.
func NewBatcher(cfg BatcherConfig) *Batcher {
	if cfg.MaxValues <= 0 {
		cfg.MaxValues = DefaultBatchSize
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = 100
	}
	if cfg.MaxConflicts <= 0 {
		cfg.MaxConflicts = DefaultMaxConflicts
	}
	b := &Batcher{cfg: cfg}
	b.batch = Batch{
		TxID: cfg.TxID, Source: cfg.Source, Received: cfg.Received, Schemes: cfg.Schemes,
		ImportStrategy: string(cfg.ImportStrategy),
		Values:         make([]DataValue, 0, min(cfg.MaxValues, 1024)),
	}
	return b
}

// Group starts a new run of values; a batch never spans two groups.
func (b *Batcher) Group(g Group) error {
	schemes := b.cfg.Schemes.Overlay(g.Schemes)
	strategy := string(g.ImportStrategy.Or(b.cfg.ImportStrategy))
	if g.DataSet == b.batch.DataSet && g.CompleteDate == b.batch.CompleteDate && schemes == b.batch.Schemes &&
		strategy == b.batch.ImportStrategy {
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	b.batch.DataSet, b.batch.CompleteDate, b.batch.Schemes = g.DataSet, g.CompleteDate, schemes
	b.batch.ImportStrategy = strategy
	return nil
}

// Value validates v, numbers it and adds it to the current batch.
func (b *Batcher) Value(v *DataValue, at Locator) error {
	v.Index = b.index
	b.index++
	if bad := validate(v, b.cfg.Release, &b.periods); bad != nil && !b.deletes(bad) {
		return b.reject(bad, at)
	}
	if len(b.errs.Errs) > 0 {
		return nil // the payload will be refused; don't build batches for nothing
	}
	b.batch.Values = append(b.batch.Values, *v)
	b.kept++
	if len(b.batch.Values) >= b.cfg.MaxValues {
		return b.flush()
	}
	return nil
}

// deletes reports whether bad is only a missing value under the DELETE strategy, which
// DHIS2 accepts: the value names what to delete (validateDataValueIsDefined skips a
// value when context.getStrategy().isDelete(); conformance README §6.1,
// dataValueSetJDeleteNoValue.json).
func (b *Batcher) deletes(bad *InputError) bool {
	return bad.Conflict != nil && bad.Conflict.ErrorCode == CodeValueNotDefined &&
		ImportStrategy(b.batch.ImportStrategy).IsDelete()
}

// Reject records a problem the parser found itself (a field of the wrong type, say). A
// problem with a value (Index ≥ 0) uses up that value's index, so that the values after
// it keep their positions in the payload; in PerValue mode it leaves that value out and
// records its conflict. A problem with Index < 0 is document-level in either mode.
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
	if b.cfg.PerValue && e.Index >= 0 {
		return record(&b.conflicts, e, b.cfg.MaxConflicts, nil)
	}
	return record(&b.errs, e, b.cfg.MaxErrors, ErrTooManyErrors)
}

// record adds e to list unless it holds max already; then it counts e and returns full.
func record(list *InputErrors, e *InputError, max int, full error) error {
	if len(list.Errs) >= max {
		list.More++
		return full
	}
	list.Errs = append(list.Errs, e)
	return nil
}

// Close flushes the last batch and reports the collected problems, if any, as *InputErrors:
// every problem, or in PerValue mode the document-level ones only (see Report).
func (b *Batcher) Close() error {
	if len(b.errs.Errs) > 0 {
		return &b.errs
	}
	return b.flush()
}

// Values is how many values were read; Batches how many batches were emitted.
func (b *Batcher) Values() int  { return b.index }
func (b *Batcher) Batches() int { return b.batches }

// Report tells what became of the values read so far. Call it after Close: only then
// are the kept values all in emitted batches. A payload with a problem Close reports (any
// problem in whole-payload mode, a document-level one in PerValue mode) keeps nothing:
// every value read counts as rejected, and Conflicts holds only the value conflicts
// recorded before.
func (b *Batcher) Report() ValueReport {
	r := ValueReport{Read: b.index, Kept: b.kept, Rejected: len(b.conflicts.Errs) + b.conflicts.More,
		Conflicts: b.conflicts.Errs, More: b.conflicts.More}
	if len(b.errs.Errs) > 0 {
		r.Kept, r.Rejected = 0, b.index
	}
	return r
}

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
