package delivery

import (
	"context"
	"errors"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// Importer is what delivery needs from a DHIS2 client.
type Importer interface {
	ImportDataValues(ctx context.Context, body dhis2.Payload, opts dhis2.ImportOptions) (*dhis2.ImportResult, error)
}

var _ Importer = (*dhis2.Client)(nil)

// dvsPayload is a batch's values as a DHIS2 data value set JSON body.
type dvsPayload struct {
	b      *transform.Batch
	values []transform.DataValue
	bufs   *sync.Pool // the chunk buffers the body is written with (*[]byte); nil: fresh ones
}

func (p dvsPayload) ContentType() string { return "application/json" }

func (p dvsPayload) WriteTo(w io.Writer) (int64, error) {
	part := *p.b
	part.Values = p.values
	cw := &countWriter{w: w}
	if p.bufs == nil {
		err := dvs.WriteJSON(cw, &part)
		return cw.n, err
	}
	buf, _ := p.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	var err error
	*buf, err = dvs.WriteJSONBuffer(cw, &part, *buf)
	p.bufs.Put(buf)
	return cw.n, err
}

// deletionPayload is a DHIS2 2.43+ request that removes a deletion scope and upserts
// nothing: {"deletion": {...}, "dataValues": []}, with the batch's id schemes.
type deletionPayload struct {
	b *transform.Batch
	d *dvs.Deletion
}

func (p deletionPayload) ContentType() string { return "application/json" }

func (p deletionPayload) WriteTo(w io.Writer) (int64, error) {
	part := *p.b
	part.Values = nil
	cw := &countWriter{w: w}
	err := dvs.WriteDeletionJSON(cw, &part, p.d)
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type importOutcome struct {
	counts    txlog.ImportCount
	conflicts []txlog.Conflict
	rejected  []int // positions in the batch's Values
	requests  int
}

// sendRequest posts one request of n values and counts it. When the target refuses it as
// too large (413), the request size is halved for this target and halved is true: the
// caller sends the same values again in smaller requests.
func (d *Deliverer) sendRequest(ctx context.Context, t *Target, body dhis2.Payload, opts dhis2.ImportOptions,
	n int, size *int, out *importOutcome) (res *dhis2.ImportResult, halved bool, err error) {
	began := time.Now()
	full := t.slots.begin()
	res, err = t.client.ImportDataValues(ctx, body, opts)
	took := time.Since(began)
	t.slots.end(took, answerOf(ctx, err), full)
	out.requests++
	d.metrics.Latency.WithLabelValues(t.cfg.Name).Observe(took.Seconds())
	if errors.Is(err, dhis2.ErrTooLarge) && n > 1 {
		*size = n / 2
		t.size.Store(int64(*size))
		d.metrics.RequestSplits.WithLabelValues(t.cfg.Name).Inc()
		d.log.Warn("target refused the request as too large; halving it", "target", t.cfg.Name,
			"values", n, "now", *size)
		return nil, true, nil
	}
	return res, false, err
}

// answerOf is what a request's outcome tells the adaptive limit: an import that ran is a
// latency to learn from; a transient failure (429, 5xx, DHIS2 busy, a timeout, no
// connection) says the target is overloaded; anything else (a refusal, a 413, refused
// credentials, our own cancellation) says nothing about its capacity.
func answerOf(ctx context.Context, err error) answer {
	switch {
	case err == nil:
		return answerServed
	case ctx.Err() == nil && dhis2.KindOf(err) == dhis2.KindTransient && !errors.Is(err, dhis2.ErrUnauthorized):
		return answerOverloaded
	}
	return answerNone
}

// importBatch posts the batch in requests of at most max_values_per_request values and adds
// up what the target reported. A 413 halves the request size and sends the same values again
// (down to one value, which is then a permanent failure); the smaller size is kept for the
// target's later batches. Every request after the first waits for the rate limit (the
// consume chain keeps the message's ack deadline alive meanwhile). Conflict indexes are translated from positions
// in each request to positions in the batch, then to the values' indexes in the original
// payload.
func (d *Deliverer) importBatch(ctx context.Context, t *Target, b *transform.Batch, flags url.Values) (importOutcome, error) {
	if b.Deletion {
		if scopeSupported(ctx, t) {
			return d.importDeletion(ctx, t, b, flags)
		}
		// Before 2.43 DHIS2 ignores a deletion block and would remove nothing: the
		// batch's values (all deleted: true) remove the same keys one by one.
		d.log.Warn("target does not report DHIS2 2.43 or later; deletion batch sent as deleted values",
			"target", t.cfg.Name, "tx", b.TxID, "seq", b.Seq)
		plain := *b
		plain.Deletion = false
		b = &plain
	}
	var out importOutcome
	size := t.requestSize()
	opts := t.importOptions(b, flags)
	for start := 0; start < len(b.Values); {
		end := min(start+size, len(b.Values))
		if out.requests > 0 {
			if err := t.wait(ctx); err != nil {
				return out, err
			}
		}
		res, halved, err := d.sendRequest(ctx, t, dvsPayload{b: b, values: b.Values[start:end], bufs: &d.bodies}, opts, end-start, &size, &out)
		if halved {
			continue
		}
		if err != nil {
			var de *dhis2.Error
			if errors.As(err, &de) && de.Result != nil {
				out.conflicts = append(out.conflicts, conflictsOf(de.Result, b, start)...)
			}
			return out, err
		}
		out.add(res, b, start, end)
		start = end
	}
	return out, nil
}

// add counts what the target made of the request of the batch's values start to end: its
// counts, conflicts and the values it rejected.
func (out *importOutcome) add(res *dhis2.ImportResult, b *transform.Batch, start, end int) {
	out.counts.Add(txlog.ImportCount{Imported: res.Counts.Imported, Updated: res.Counts.Updated,
		Ignored: res.Counts.Ignored, Deleted: res.Counts.Deleted})
	out.conflicts = append(out.conflicts, conflictsOf(res, b, start)...)
	if !res.IndexesKnown && len(res.Conflicts) > 0 {
		// An old server named conflicts without saying which values they hit: every
		// value of the request is suspect, and re-sending the accepted ones on replay
		// is harmless (DHIS2 upserts).
		for i := start; i < end; i++ {
			out.rejected = append(out.rejected, i)
		}
		return
	}
	for _, i := range res.Rejected {
		if i >= 0 && start+i < end {
			out.rejected = append(out.rejected, start+i)
		}
	}
}

// importOptions are the options of a batch's requests: the client's import strategy, when it
// asked for one, over the target's, so that the target applies it as DHIS2 does (CREATE
// leaves existing values alone, UPDATE creates none, DELETE deletes and counts deleted —
// a DELETE's values also carry deleted: true, which deletes on every version); and the
// import parameters the client asked the target to apply (mediator/ingest/flags.go).
func (t *Target) importOptions(b *transform.Batch, flags url.Values) dhis2.ImportOptions {
	strategy := t.cfg.ImportStrategy
	if b.ImportStrategy != "" {
		strategy = b.ImportStrategy
	}
	o := dhis2.ImportOptions{Schemes: b.Schemes, ImportStrategy: strategy,
		DryRun: t.dryRun(), SkipAudit: t.cfg.SkipAudit || flags.Get("skipAudit") == "true", Async: t.cfg.Async}
	for k, v := range flags {
		if k != "skipAudit" && len(v) > 0 {
			if o.Extra == nil {
				o.Extra = url.Values{}
			}
			o.Extra.Set(k, v[0])
		}
	}
	return o
}

// ScopeRelease is the first DHIS2 release that reads a deletion scope (spec dhis2.md §5).
const ScopeRelease = 43

// scopeSupported reports whether a target is known to be DHIS2 2.43 or later: from the
// version its client last read, else from asking it now. A target whose version cannot be
// read is treated as older, since deleted: true values work on every version.
func scopeSupported(ctx context.Context, t *Target) bool {
	v, ok := t.client.ServerVersion()
	if !ok {
		info, err := t.client.SystemInfo(ctx)
		if err != nil {
			return false
		}
		v = info.Release
	}
	return v.Release() >= ScopeRelease
}

// importDeletion sends a deletion batch to a 2.43+ target: its keys grouped by org unit
// and period, one request per group (split at max_values_per_request elements, halved on
// 413 as importBatch does), each a deletion scope of exactly those keys — one org unit,
// one period, every element narrowed by both combos — and no values. DHIS2 counts what a
// scope removed as deleted. A refused scope names, as conflict indexes, the values whose
// keys it held.
func (d *Deliverer) importDeletion(ctx context.Context, t *Target, b *transform.Batch, flags url.Values) (importOutcome, error) {
	var out importOutcome
	order, groups := deletionCells(b)
	size := t.requestSize()
	opts := t.importOptions(b, flags)
	for _, c := range order {
		idx := groups[c]
		for start := 0; start < len(idx); {
			end := min(start+size, len(idx))
			if out.requests > 0 {
				if err := t.wait(ctx); err != nil {
					return out, err
				}
			}
			del := deletionOf(b, c, idx[start:end])
			res, halved, err := d.sendRequest(ctx, t, deletionPayload{b: b, d: del}, opts, end-start, &size, &out)
			if halved {
				continue
			}
			if err != nil {
				var de *dhis2.Error
				if errors.As(err, &de) && de.Result != nil {
					out.conflicts = append(out.conflicts, scopeConflicts(de.Result, b, idx[start:end])...)
				}
				return out, err
			}
			out.counts.Add(txlog.ImportCount{Imported: res.Counts.Imported, Updated: res.Counts.Updated,
				Ignored: res.Counts.Ignored, Deleted: res.Counts.Deleted})
			if len(res.Conflicts) > 0 {
				// A scope is all or nothing; a conflict on it leaves its keys in doubt.
				out.conflicts = append(out.conflicts, scopeConflicts(res, b, idx[start:end])...)
				out.rejected = append(out.rejected, idx[start:end]...)
			}
			start = end
		}
	}
	return out, nil
}

// deletionCell is an org unit and period: the cell of a deletion scope.
type deletionCell struct{ ou, pe string }

// deletionCells groups a deletion batch's values by org unit and period, in the order the
// cells first appear.
func deletionCells(b *transform.Batch) ([]deletionCell, map[deletionCell][]int) {
	groups := map[deletionCell][]int{}
	var order []deletionCell
	for i := range b.Values {
		v := &b.Values[i]
		c := deletionCell{v.OrgUnit, v.Period}
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], i)
	}
	return order, groups
}

// deletionOf is the deletion scope of the values at idx, all in cell c: exactly their keys.
func deletionOf(b *transform.Batch, c deletionCell, idx []int) *dvs.Deletion {
	del := &dvs.Deletion{OrgUnits: []string{c.ou}, Periods: []string{c.pe},
		Elements: make([]dvs.DeletionElement, 0, len(idx))}
	for _, i := range idx {
		v := &b.Values[i]
		del.Elements = append(del.Elements, dvs.DeletionElement{DataElement: v.DataElement,
			CategoryOptionCombo: v.CategoryOptionCombo, AttributeOptionCombo: v.AttributeOptionCombo})
	}
	return del
}

// scopeConflicts reports a deletion request's conflicts against the values whose keys its
// scope held.
func scopeConflicts(res *dhis2.ImportResult, b *transform.Batch, held []int) []txlog.Conflict {
	out := make([]txlog.Conflict, 0, len(res.Conflicts))
	for _, c := range res.Conflicts {
		cc := txlog.Conflict{ErrorCode: c.ErrorCode, Object: c.Object, Objects: c.Objects, Property: c.Property, Message: c.Value}
		for _, i := range held {
			cc.Indexes = append(cc.Indexes, b.Values[i].Index)
		}
		out = append(out, cc)
	}
	return out
}

func conflictsOf(res *dhis2.ImportResult, b *transform.Batch, offset int) []txlog.Conflict {
	out := make([]txlog.Conflict, 0, len(res.Conflicts))
	for _, c := range res.Conflicts {
		cc := txlog.Conflict{ErrorCode: c.ErrorCode, Object: c.Object, Objects: c.Objects, Property: c.Property, Message: c.Value}
		for _, i := range c.Indexes {
			if p := offset + i; p >= 0 && p < len(b.Values) {
				cc.Indexes = append(cc.Indexes, b.Values[p].Index)
			}
		}
		out = append(out, cc)
	}
	return out
}
