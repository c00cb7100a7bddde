package delivery

import (
	"context"
	"errors"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// What a preview asks of a target (mediator/ingest previews a payload): the strategy the
// values would be sent with, what the target holds for the same keys, and which values it
// would refuse for a locked or closed period. Nothing is written.

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
	// AddedItems and UnchangedItems are the keys of the values the target lacks, and of
	// those it holds as they are (at most maxDiffItems each), for a table of every kind.
	AddedItems     []transform.Key `json:"addedItems,omitempty"`
	UnchangedItems []transform.Key `json:"unchangedItems,omitempty"`
	Error          string          `json:"error,omitempty"`
}

// DiffItem is a value that would change.
type DiffItem struct {
	transform.Key
	Old string `json:"old"`
	New string `json:"new"`
}

// maxDiffItems bounds the listed items; the counts are always complete.
const maxDiffItems = 500

// ImportStrategy is the strategy b's values would be sent to the target with: the
// client's, else the target's own.
func (t *Target) ImportStrategy(b *transform.Batch) string {
	return t.importOptions(b, nil).ImportStrategy
}

// Locks asks the target, with a dry-run import of b's values as they would be sent, which
// of them it would refuse for a locked or closed period: DHIS2 runs every check of an
// import without writing anything under dryRun (spec dhis2.md §1.2). A target that cannot
// be asked leaves the list empty (Compare says why).
func (t *Target) Locks(ctx context.Context, b *transform.Batch) []txlog.Conflict {
	opts := t.importOptions(b, nil)
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

// Compare reads the target's current values for the data elements, periods and org units
// that values (written in schemes) touch, in the same id schemes, and compares.
func (t *Target) Compare(ctx context.Context, schemes transform.IDSchemes, values []transform.DataValue) *Diff {
	d := &Diff{}
	// Ask in the schemes the new values are written in, so that keys compare as they are.
	sc := schemes.Resolved(transform.SchemeUID)
	req := dhis2.ExportRequest{Schemes: sc, InputDataElementIDScheme: sc.DataElement, InputOrgUnitIDScheme: sc.OrgUnit}
	seen := map[string]map[string]bool{"de": {}, "pe": {}, "ou": {}}
	add := func(kind, v string, list *[]string) {
		if v != "" && !seen[kind][v] {
			seen[kind][v] = true
			*list = append(*list, v)
		}
	}
	newVals := make(map[transform.Key]string, len(values))
	for i := range values {
		v := &values[i]
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
			if len(d.AddedItems) < maxDiffItems {
				d.AddedItems = append(d.AddedItems, k)
			}
		case old == nv:
			d.Unchanged++
			if len(d.UnchangedItems) < maxDiffItems {
				d.UnchangedItems = append(d.UnchangedItems, k)
			}
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
