package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
)

// MaxPreviewValues bounds a preview, which holds the payload and the target's current
// values in memory to compare them.
const MaxPreviewValues = 200_000

// ErrPreviewTooLarge refuses a payload of more than MaxPreviewValues values.
var ErrPreviewTooLarge = fmt.Errorf("a preview holds at most %d values", MaxPreviewValues)

// Preview is what a payload would become: the format it was read as, the values kept, and
// per target what it would receive compared with what it holds.
type Preview struct {
	Source  string
	Format  string
	Values  int
	Targets []*TargetPreview
}

// TargetPreview is what one target would receive from a payload, compared with what it
// holds now.
type TargetPreview struct {
	Target  string              `json:"target"`
	DataSet string              `json:"dataSet,omitempty"`
	Schemes transform.IDSchemes `json:"idSchemes"`
	// ImportStrategy is the strategy the target would be sent (the client's, else the
	// target's own).
	ImportStrategy string                `json:"importStrategy"`
	Values         []transform.DataValue `json:"dataValues"`
	Unmapped       []transform.Unmapped  `json:"unmapped"`
	// Refused lists the values mapping would refuse one by one (they would become dead
	// letters of reason mapping), with the reason and DHIS2's error code; Warnings and
	// Duplicates what it would report about the values it delivers.
	Refused    []transform.Refused   `json:"refused,omitempty"`
	Warnings   []transform.Warning   `json:"warnings,omitempty"`
	Duplicates []transform.Duplicate `json:"duplicates,omitempty"`
	// Rejected lists why mapping would refuse a batch whole (it would become a dead
	// letter).
	Rejected []mapping.Issue `json:"rejected,omitempty"`
	// Locked are the target's conflicts for values whose period is locked or closed for
	// data entry (mediator/delivery), as a dry-run import at the target reports them: these values
	// would become dead letters of reason locked.
	Locked []txlog.Conflict `json:"locked,omitempty"`
	Error  string           `json:"error,omitempty"`
	Diff   *delivery.Diff   `json:"diff,omitempty"`
}

// Preview reads a payload exactly as Ingest reads it, maps it for every target of its
// source as the mapper would, and compares it with each target's current values (GET
// /api/dataValueSets). Nothing is stored or sent. A refusal is a *RequestError, or
// ErrPreviewTooLarge.
func (s *Ingester) Preview(ctx context.Context, req Request) (*Preview, error) {
	src := req.Source
	var batches []*transform.Batch
	total := 0
	p, err := s.read(ctx, req, func(b *transform.Batch) error {
		total += len(b.Values)
		if total > MaxPreviewValues {
			return errEmitStopped
		}
		cp := *b
		cp.Values = slices.Clone(b.Values)
		batches = append(batches, &cp)
		return nil
	}, nil)
	if errors.Is(err, errEmitStopped) {
		return nil, ErrPreviewTooLarge
	}
	if err != nil {
		return nil, err
	}
	out := &Preview{Source: src.Name, Format: p.format, Values: p.values}
	for _, t := range s.cfg.TargetsOf(src) {
		out.Targets = append(out.Targets, s.previewTarget(ctx, batches, src, t))
	}
	return out, nil
}

// previewTarget maps the batches for one target and asks it what it holds and would refuse.
func (s *Ingester) previewTarget(ctx context.Context, batches []*transform.Batch, src *config.Source, t *config.Target) *TargetPreview {
	tg, _ := s.targets.Get(t.Name)
	tp := &TargetPreview{Target: t.Name, Values: []transform.DataValue{}, Unmapped: []transform.Unmapped{}}
	// Previews map as the mapper stage does, duplicates across the payload's batches
	// and roll-ups included, but read the roll-up store without writing to it.
	s.mapping.Preview(ctx, batches, src, t, func(m *transform.Mapped, err error) {
		if err != nil {
			var re *mapping.RejectError
			if errors.As(err, &re) {
				tp.Rejected = append(tp.Rejected, re.Issues...)
			}
			tp.Error = err.Error()
			return
		}
		tp.Values = append(tp.Values, m.Batch.Values...)
		tp.Unmapped = append(tp.Unmapped, m.Unmapped...)
		tp.Refused = append(tp.Refused, m.Refused...)
		tp.Warnings = append(tp.Warnings, m.Warnings...)
		tp.Duplicates = append(tp.Duplicates, m.Duplicates...)
		tp.Schemes, tp.DataSet = m.Batch.Schemes, m.Batch.DataSet
		tp.ImportStrategy = tg.ImportStrategy(m.Batch)
	})
	if tp.Error == "" && len(tp.Values) > 0 {
		tp.Diff = tg.Compare(ctx, tp.Schemes, tp.Values)
		tp.Locked = tg.Locks(ctx, &transform.Batch{Schemes: tp.Schemes, DataSet: tp.DataSet,
			ImportStrategy: tp.ImportStrategy, Values: tp.Values})
	}
	return tp
}
