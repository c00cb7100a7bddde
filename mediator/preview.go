package mediator

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/metadata"
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
	Diff   *Diff            `json:"diff,omitempty"`
}

// Diff compares the values a target would receive with those it holds for the same data
// elements, periods and org units.
type Diff struct {
	Added     int `json:"added"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	// Stale values are in the target but missing from the new data.
	Stale        int             `json:"stale"`
	ChangedItems []DiffItem      `json:"changedItems,omitempty"`
	StaleItems   []transform.Key `json:"staleItems,omitempty"`
	Error        string          `json:"error,omitempty"`
}

// DiffItem is a value that would change.
type DiffItem struct {
	transform.Key
	Old string `json:"old"`
	New string `json:"new"`
}

// maxDiffItems bounds the listed items; the counts are always complete.
const maxDiffItems = 500

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
		tp := &TargetPreview{Target: t.Name, Values: []transform.DataValue{}, Unmapped: []transform.Unmapped{}}
		previews = append(previews, tp)
		// Previews map as the mapper stage does, duplicates across the payload's batches
		// and roll-ups included, but read the roll-up store without writing to it.
		opts := mapping.Options{Rollup: s.rollupStore(), RollupReadOnly: true, Payload: mapping.NewPayloadKeys(payloadKeysLimit)}
		for _, b := range batches {
			m, err := s.engine.Load().MapWith(ctx, b, pipeline.MappingSource(src), pipeline.MappingTarget(t), opts)
			if err == nil {
				s.refuseNewerPeriods(ctx, src, t, m)
			}
			if err != nil {
				var re *mapping.RejectError
				if errors.As(err, &re) {
					tp.Rejected = append(tp.Rejected, re.Issues...)
				}
				tp.Error = err.Error()
				continue
			}
			tp.Values = append(tp.Values, m.Batch.Values...)
			tp.Unmapped = append(tp.Unmapped, m.Unmapped...)
			tp.Refused = append(tp.Refused, m.Refused...)
			tp.Warnings = append(tp.Warnings, m.Warnings...)
			tp.Duplicates = append(tp.Duplicates, m.Duplicates...)
			tp.Schemes, tp.DataSet = m.Batch.Schemes, m.Batch.DataSet
			tp.ImportStrategy = s.importOptions(s.targets[t.Name], m.Batch, nil).ImportStrategy
		}
		if tp.Error == "" && len(tp.Values) > 0 {
			tp.Diff = s.diffWithTarget(ctx, s.targets[t.Name], tp)
			tp.Locked = s.previewLocks(ctx, s.targets[t.Name], tp)
		}
	}
	out["targets"] = previews
	return c.JSON(http.StatusOK, out)
}

// previewLocks asks the target, with a dry-run import of the values as they would be
// sent, which of them it would refuse for a locked or closed period: DHIS2 runs every check
// of an import without writing anything under dryRun (spec dhis2.md §1.2). A target that
// cannot be asked leaves the list empty (the diff says why).
func (s *Service) previewLocks(ctx context.Context, t *target, tp *TargetPreview) []txlog.Conflict {
	b := &transform.Batch{Schemes: tp.Schemes, DataSet: tp.DataSet, ImportStrategy: tp.ImportStrategy, Values: tp.Values}
	opts := s.importOptions(t, b, nil)
	opts.DryRun, opts.Async = true, false
	var out []txlog.Conflict
	size := t.requestSize()
	for start := 0; start < len(b.Values); start += size {
		end := min(start+size, len(b.Values))
		res, err := t.client.ImportDataValues(ctx, dvsPayload{b: b, values: b.Values[start:end]}, opts)
		var de *dhis2.Error
		if errors.As(err, &de) && de.Result != nil {
			res = de.Result
		}
		if res == nil {
			return out
		}
		for _, c := range conflictsOf(res, b, start) {
			if isLockCode(c.ErrorCode) {
				out = append(out, c)
			}
		}
	}
	return out
}

// diffWithTarget reads the target's current values for the data elements, periods and org
// units the preview touches, in the same id schemes, and compares.
func (s *Service) diffWithTarget(ctx context.Context, t *target, tp *TargetPreview) *Diff {
	d := &Diff{}
	// Ask in the schemes the new values are written in, so that keys compare as they are.
	sc := tp.Schemes.Resolved(transform.SchemeUID)
	req := dhis2.ExportRequest{Schemes: sc, InputDataElementIDScheme: sc.DataElement, InputOrgUnitIDScheme: sc.OrgUnit}
	seen := map[string]map[string]bool{"de": {}, "pe": {}, "ou": {}}
	add := func(kind, v string, list *[]string) {
		if v != "" && !seen[kind][v] {
			seen[kind][v] = true
			*list = append(*list, v)
		}
	}
	newVals := make(map[transform.Key]string, len(tp.Values))
	for i := range tp.Values {
		v := &tp.Values[i]
		add("de", v.DataElement, &req.DataElements)
		add("pe", v.Period, &req.Periods)
		add("ou", v.OrgUnit, &req.OrgUnits)
		newVals[defaultCombos(v.Key())] = v.Value
	}
	cur := &collect{keys: map[transform.Key]string{}}
	if _, err := t.client.DataValueSets(ctx, req, cur); err != nil {
		d.Error = "reading the target's current values: " + err.Error()
		return d
	}
	for k, nv := range newVals {
		old, ok := cur.keys[k]
		switch {
		case !ok:
			d.Added++
		case old == nv:
			d.Unchanged++
		default:
			d.Changed++
			if len(d.ChangedItems) < maxDiffItems {
				d.ChangedItems = append(d.ChangedItems, DiffItem{Key: k, Old: old, New: nv})
			}
		}
	}
	for k := range cur.keys {
		if _, ok := newVals[k]; !ok {
			d.Stale++
			if len(d.StaleItems) < maxDiffItems {
				d.StaleItems = append(d.StaleItems, k)
			}
		}
	}
	return d
}

// collect is a sink that keeps the values of an export by key.
type collect struct{ keys map[transform.Key]string }

func (c *collect) Group(transform.Group) error { return nil }
func (c *collect) Value(v *transform.DataValue, _ transform.Locator) error {
	if !v.Deleted {
		c.keys[defaultCombos(v.Key())] = v.Value
	}
	return nil
}

// defaultCombos writes DHIS2's default category option combo as empty, the way a payload
// that omits it means it, so that the two compare equal. The default's code and name are
// "default" and its UID is the same in every DHIS2 instance.
func defaultCombos(k transform.Key) transform.Key {
	isDefault := func(id string) bool { return id == "default" || id == metadata.DefaultCategoryOptionComboUID }
	if isDefault(k.CategoryOptionCombo) {
		k.CategoryOptionCombo = ""
	}
	if isDefault(k.AttributeOptionCombo) {
		k.AttributeOptionCombo = ""
	}
	return k
}
