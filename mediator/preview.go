package mediator

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
)

// maxPreviewValues bounds a preview, which holds the payload and the target's current
// values in memory to compare them.
const maxPreviewValues = 200_000

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
	// data entry (locks.go), as a dry-run import at the target reports them: these values
	// would become dead letters of reason locked.
	Locked []txlog.Conflict `json:"locked,omitempty"`
	Error  string           `json:"error,omitempty"`
	Diff   *delivery.Diff   `json:"diff,omitempty"`
}

// handlePreview is POST /admin/v1/preview?source=NAME: the payload is read exactly as
// ingest reads it, mapped for every target of the source, and compared with the target's
// current values (GET /api/dataValueSets). Nothing is stored or sent.
func (s *Service) handlePreview(c echo.Context) error {
	name := c.QueryParam("source")
	src, ok := s.cfg.Source(name)
	if !ok {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: "source: no source is called " + strconv.Quote(name)})
	}
	var batches []*transform.Batch
	total := 0
	p, err := s.readPayload(c.Request().Context(), s.ingestRequestFrom(c, src), func(b *transform.Batch) error {
		total += len(b.Values)
		if total > maxPreviewValues {
			return errEmitStopped
		}
		cp := *b
		cp.Values = slices.Clone(b.Values)
		batches = append(batches, &cp)
		return nil
	}, nil)
	if errors.Is(err, errEmitStopped) {
		return c.JSON(http.StatusRequestEntityTooLarge, apiError{Status: "error",
			Message: "a preview holds at most " + strconv.Itoa(maxPreviewValues) + " values"})
	}
	if err != nil {
		return s.ingestError(c, src.Name, err)
	}
	ctx := c.Request().Context()
	out := map[string]any{"source": src.Name, "format": p.format, "values": p.values}
	var previews []*TargetPreview
	for _, t := range s.cfg.TargetsOf(src) {
		tg, _ := s.targets.Get(t.Name)
		tp := &TargetPreview{Target: t.Name, Values: []transform.DataValue{}, Unmapped: []transform.Unmapped{}}
		previews = append(previews, tp)
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
	}
	out["targets"] = previews
	return c.JSON(http.StatusOK, out)
}
