package mapping

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// run is the state of mapping one batch.
type run struct {
	p      *plan // nil for a source without a mapping set
	in     *transform.Batch
	pol    policies
	opts   Options
	target string
	// incoming schemes
	deIn, ouIn, cocIn, aocIn, catIn, optIn, dsIn transform.IDScheme
	ouScheme                                     transform.IDScheme // how source org units are read in the target
	out                                          transform.IDSchemes
	release                                      int // the target's DHIS2 release, 0 when unknown

	unmapped []transform.Unmapped
	refused  []transform.Refused
	warnings []transform.Warning
	dups     []transform.Duplicate
	after    []int           // earlier batches this one supersedes on a key (Mapped.After)
	warned   map[string]bool // batch-level warnings already given

	vals  []transform.DataValue // the output values
	slots []slot                // what else is known of each output value
	// byKey finds a key's slot by the key's id (keys.go): a batch's keys are hashed once,
	// and the payload's keys (acrossBatches) take the same id when they share its seeds.
	byKey *keyIndex
	seeds *[2]maphash.Seed
	idBuf []byte
	// pool and scratch are where slots and byKey come from and go back to (done).
	pool    *sync.Pool
	scratch *scratch

	pass     map[string]*resolved
	placed   map[placeKey]*resolved       // rules placed in the batch's data set
	batchDS  map[string]*metadata.DataSet // the batch's data sets by id; nil: not in the target
	periods  map[periodKey]rolled
	releases map[string]string // period id → why the target's release lacks it ("" has it)
	last     lastLookups
}

// lastLookups holds what the lookups of an earlier value of the batch found, where they
// found it without leaving a record. A payload's values come grouped (DHIS2 exports them by
// org unit and period, ADX by group, CHT by place), so a value mostly repeats its
// neighbour's org unit, option combo and period, and comparing two strings (the decoder
// gives a batch one copy of each) costs less than the map lookups behind them. A value that
// is refused, dropped or warned about never comes from here: it takes the full path and
// gets its own record.
type lastLookups struct {
	ouIn, ou, ouUID string // orgUnit: the value's org unit and what it maps to

	keptOU    string              // keepOrgUnit: an org unit (by uid) kept for...
	keptDS    *metadata.DataSet   // ...a rule's or a batch's data set, or...
	keptCands []*metadata.DataSet // ...the data sets that hold the element

	cocIn       string                  // coc: the value's option combo...
	cocCombo    *metadata.CategoryCombo // ...in the rule's category combo...
	coc, cocUID string                  // ...and what it maps to
	pe          string                  // inRelease: a period the target's release reads
}

type placeKey struct {
	res *resolved
	ds  *metadata.DataSet
}

// scratch is the part of a run's state that does not outlive it: the slots and the key
// index, as large as the batch. The engine keeps them in a pool, so that mapping a stream
// of batches does not allocate (and collect) a key table and slot array per batch, which
// was a fifth of what the mapper allocated.
type scratch struct {
	byKey keyIndex
	slots []slot
	seeds [2]maphash.Seed
	idBuf []byte
}

func newRun(pool *sync.Pool, in *transform.Batch, target string, pol policies, opts Options) *run {
	sc, _ := pool.Get().(*scratch)
	if sc == nil {
		sc = &scratch{slots: make([]slot, 0, len(in.Values)), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	}
	sc.byKey.reset(len(in.Values))
	vals := opts.Values[:0]
	if cap(vals) < len(in.Values) {
		vals = make([]transform.DataValue, 0, len(in.Values))
	}
	r := &run{in: in, pol: pol, opts: opts, target: target, pool: pool, scratch: sc,
		vals:  vals,
		slots: sc.slots[:0],
		byKey: &sc.byKey,
		seeds: &sc.seeds,
		idBuf: sc.idBuf,
	}
	if opts.Payload != nil {
		r.seeds = &opts.Payload.seeds // ids the payload's keys take as they are
	}
	return r
}

// keyID is k's id for byKey (and, with a payload, for its keys).
func (r *run) keyID(k transform.Key) keyID {
	var id keyID
	id, r.idBuf = idOf(r.seeds, r.idBuf, k)
	return id
}

// done gives the run's scratch back to the pool, emptied so that it holds no value of the
// batch. The run must not be used after.
func (r *run) done() {
	clear(r.slots)
	r.scratch.slots, r.scratch.idBuf = r.slots[:0], r.idBuf
	r.pool.Put(r.scratch)
	r.byKey, r.slots, r.scratch = nil, nil, nil
}

func (p *plan) run(ctx context.Context, pool *sync.Pool, in *transform.Batch, target string, pol policies, opts Options) (*transform.Mapped, error) {
	s := in.Schemes
	base := s.IDScheme.Or(transform.SchemeUID)
	r := newRun(pool, in, target, pol, opts)
	defer r.done()
	r.p, r.out = p, p.out
	r.deIn = s.DataElement.Or(base)
	r.ouIn = s.OrgUnit.Or(base)
	r.cocIn = s.CategoryOptionCombo.Or(base)
	r.dsIn = s.DataSet.Or(base)
	r.catIn = s.Category.Or(s.IDScheme).Or(transform.SchemeCode)
	r.optIn = s.CategoryOption.Or(s.IDScheme).Or(transform.SchemeCode)
	r.aocIn = s.AttributeOptionCombo.Or(r.cocIn)
	r.ouScheme = p.set.OrgUnits.Scheme.Or(r.ouIn)
	if p.ix != nil {
		r.release = p.ix.md.SystemRelease
	}
	if r.out.OrgUnit == "" {
		r.out.OrgUnit = r.ouIn // no metadata and the same org unit ids: as the batch writes them
	}
	if sc := p.set.SourceScheme; sc != "" {
		if declared := s.DataElement.Or(s.IDScheme); declared != "" && declared != sc {
			// The batch as a whole is written in other ids than the rules: no value of it
			// can be matched, and the fix is the source's configuration.
			rej := &RejectError{Set: p.set.Name, Target: target}
			rej.add(Issue{Field: "dataElementIdScheme", Value: string(declared), Reason: fmt.Sprintf(
				"the batch writes data elements as %s, but mapping set %q names its sources by %s; declare the source's id_schemes to match",
				declared, p.set.Name, sc)})
			return nil, rej
		}
	}
	for i := range in.Values {
		r.value(i)
	}
	if err := r.finish(ctx); err != nil {
		return nil, err
	}
	out := &transform.Batch{
		ID: in.ID, TxID: in.TxID, Seq: in.Seq, Part: in.Part, Source: in.Source, Received: in.Received,
		Target: target, Schemes: r.out, Replays: in.Replays, Values: r.vals, ImportStrategy: in.ImportStrategy,
		Deletion: in.Deletion && r.allDeleted(),
	}
	out.DataSet = r.dataSet()
	if out.DataSet != "" && in.DataSet != "" {
		out.CompleteDate = in.CompleteDate
	}
	m := &transform.Mapped{Batch: out}
	r.result(m)
	return m, nil
}

// result hands what the run reported to m.
func (r *run) result(m *transform.Mapped) {
	m.Unmapped, m.Refused, m.Warnings, m.Duplicates = r.unmapped, r.refused, r.warnings, r.dups
	slices.Sort(r.after)
	m.After = slices.Compact(r.after)
}

// refuse refuses one source value: it goes to the dead-letter queue on its own.
func (r *run) refuse(v *transform.DataValue, field, code, format string, args ...any) {
	r.refused = append(r.refused, transform.Refused{Value: *v, Field: field, ErrorCode: code, Reason: fmt.Sprintf(format, args...)})
}

func (r *run) drop(v *transform.DataValue, field, value, reason string) {
	r.unmapped = append(r.unmapped, transform.Unmapped{Index: v.Index, Field: field, Value: value, Reason: reason})
}

// warnBatch gives a warning about the whole batch, once.
func (r *run) warnBatch(key, format string, args ...any) {
	if r.warned[key] {
		return
	}
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	r.warned[key] = true
	r.warnings = append(r.warnings, transform.Warning{Index: -1, Reason: fmt.Sprintf(format, args...)})
}

// miss applies the unmapped policy to a value nothing maps. It reports whether the value
// should go on as passed through.
func (r *run) miss(v *transform.DataValue, field, value, code, reason string) bool {
	switch r.pol.unmapped {
	case unmappedPass:
		return true
	case unmappedReject:
		r.refuse(v, field, code, "%s (unmapped: reject on source %q)", reason, r.pol.source)
	default:
		r.drop(v, field, value, reason)
	}
	return false
}

func (r *run) value(pos int) {
	v := &r.in.Values[pos]
	res := r.ruleFor(v)
	if res == nil {
		return
	}
	res = r.inBatchDataSet(v, res)
	if res.err != "" {
		r.refuse(v, "dataElement", res.errCode, "rule at %s: %s", res.rule.Origin, res.err)
		return
	}
	ou, ouUID, ok := r.orgUnit(v)
	if !ok || !r.keepOrgUnit(v, res, ouUID) {
		return
	}
	coc, cocUID, ok := r.coc(v, res)
	if !ok {
		return
	}
	aoc, aocUID, ok := r.aoc(v, res)
	if !ok {
		return
	}
	pe, from, ok := r.period(v, res)
	if !ok || !r.inRelease(v, pe) {
		return
	}
	val := v.Value
	if res.rule.transforms() && !v.Deleted && val != "" {
		if val, ok = transformValue(val, res.rule.scale, res.rule.Round); !ok {
			r.refuse(v, "value", codeValueType, "not a number, but the rule at %s scales or rounds it", res.rule.Origin)
			return
		}
	}
	mv := transform.DataValue{
		DataElement: res.de, Period: pe, OrgUnit: ou, CategoryOptionCombo: coc, AttributeOptionCombo: aoc,
		Value: val, Comment: v.Comment, StoredBy: v.StoredBy, FollowUp: v.FollowUp, Deleted: v.Deleted, Index: v.Index,
	}
	so := slotOf{from: from, dsOut: res.dsOut}
	if from != "" {
		so.uids = rollUIDs{de: res.deObj.ID, ou: ouUID, coc: cocUID, aoc: aocUID}
	}
	r.put(mv, pos, mv.Key(), so)
}

// ruleFor finds the rule of a value, or, under unmapped: pass, reads its data element as
// the target's. It returns nil when the value goes no further.
func (r *run) ruleFor(v *transform.DataValue) *resolved {
	set := r.p.set
	if g := set.bySource[v.DataElement]; g != nil {
		var rule *Rule
		if v.CategoryOptionCombo != "" && g.byCOC != nil {
			rule = g.byCOC[v.CategoryOptionCombo]
		}
		if rule == nil {
			rule = g.any
		}
		if rule != nil {
			return &r.p.rules[rule.ord]
		}
		if !r.miss(v, "categoryOptionCombo", v.CategoryOptionCombo, codeCOC,
			fmt.Sprintf("mapping set %q has rules for %q, but none for its category option combo %q", set.Name, v.DataElement, v.CategoryOptionCombo)) {
			return nil
		}
	} else if !r.miss(v, "dataElement", v.DataElement, codeDataElement, fmt.Sprintf("mapping set %q has no rule for it", set.Name)) {
		return nil
	}
	res := r.passRule(v.DataElement)
	if res.err != "" {
		r.drop(v, "dataElement", v.DataElement, res.err)
		return nil
	}
	return res
}

// passRule resolves a source data element id that no rule names, for unmapped: pass: the
// id is taken to be the target's, written in the batch's data element scheme.
func (r *run) passRule(id string) *resolved {
	if res, ok := r.pass[id]; ok {
		return res
	}
	if r.pass == nil {
		r.pass = map[string]*resolved{}
	}
	rule := &Rule{Source: id, DataElement: id, Round: -1}
	var res resolved
	if r.p.ix == nil {
		res = resolved{rule: rule, de: id, ptypeWhy: "periods: rollup needs the target's metadata"}
		if declared := r.in.Schemes.DataElement.Or(r.in.Schemes.IDScheme); declared != "" && declared != r.out.DataElement {
			res.err = fmt.Sprintf("no rule, and without target metadata an id written as %s cannot be passed to a target read as %s", declared, r.out.DataElement)
		}
	} else {
		res = r.p.resolve(rule, r.deIn, r.target)
		if res.err != "" {
			res.err = "no rule, and the target does not know it: " + res.err
		}
	}
	r.pass[id] = &res
	return &res
}

// inBatchDataSet returns the rule placed in the data set the value or its batch names (an
// ADX group's dataSet), when the rule names none and that data set holds the element: the
// data set then decides the attribute combo, the element's category combo and the period
// type, as DHIS2 decides them for the group (adx.md §7.1). Otherwise the rule stays as the
// element's data sets place it.
func (r *run) inBatchDataSet(v *transform.DataValue, res *resolved) *resolved {
	if r.p.ix == nil || res.err != "" || res.rule.DataSet != "" {
		return res
	}
	ds := r.batchDataSet(v)
	if ds == nil || ds == res.ds {
		return res
	}
	k := placeKey{res, ds}
	if x, ok := r.placed[k]; ok {
		return x
	}
	x := res
	if ds.HasElement(res.deObj.ID) {
		placed := r.p.place(*res, ds, res.scheme, r.target)
		placed.fromBatchDataSet = true
		x = &placed
	}
	if r.placed == nil {
		r.placed = map[placeKey]*resolved{}
	}
	r.placed[k] = x
	return x
}

// batchDataSet is the target's data set that the value (or else its batch) names, or nil.
func (r *run) batchDataSet(v *transform.DataValue) *metadata.DataSet {
	id := v.DataSet
	if id == "" {
		id = r.in.DataSet
	}
	if id == "" {
		return nil
	}
	ds, seen := r.batchDS[id]
	if !seen {
		ds, _ = r.p.ix.DataSet(r.dsIn, id)
		if r.batchDS == nil {
			r.batchDS = map[string]*metadata.DataSet{}
		}
		r.batchDS[id] = ds
	}
	return ds
}

// batchDataSetNote says, for a refusal that a data set would have avoided, what the batch
// said about its data set.
func (r *run) batchDataSetNote(v *transform.DataValue, res *resolved) string {
	id := v.DataSet
	if id == "" {
		id = r.in.DataSet
	}
	switch ds := r.batchDataSet(v); {
	case id == "":
		return " (the batch names no data set; an ADX group's dataSet would decide)"
	case ds == nil:
		return fmt.Sprintf(" (the batch's data set %q is not in target %q)", id, r.target)
	case !ds.HasElement(res.deObj.ID):
		return fmt.Sprintf(" (the batch's data set %s does not hold it)", ds.Label())
	}
	return ""
}

func (r *run) orgUnit(v *transform.DataValue) (id, uid string, ok bool) {
	if m := &r.last; m.ouIn != "" && v.OrgUnit == m.ouIn {
		return m.ou, m.ouUID, true
	}
	if id, uid, ok = r.lookupOrgUnit(v); ok {
		r.last.ouIn, r.last.ou, r.last.ouUID = v.OrgUnit, id, uid
	}
	return id, uid, ok
}

// lookupOrgUnit finds a value's org unit through the mapping set's rows and the target's
// metadata. It leaves a record only when it answers !ok.
func (r *run) lookupOrgUnit(v *transform.DataValue) (id, uid string, ok bool) {
	p := r.p
	if p.ouTable != nil {
		t, ok := p.ouTable[v.OrgUnit]
		switch {
		case ok && t.err != "":
			r.refuse(v, "orgUnit", codeOrgUnit, "org unit row at %s: %s", p.set.OrgUnits.byID[v.OrgUnit].Origin, t.err)
			return "", "", false
		case ok:
			return t.id, t.uid, true
		}
		if !r.miss(v, "orgUnit", v.OrgUnit, codeOrgUnit, fmt.Sprintf("mapping set %q has no org unit row for it", p.set.Name)) {
			return "", "", false
		}
		if p.ix == nil {
			if declared := r.in.Schemes.OrgUnit.Or(r.in.Schemes.IDScheme); declared != "" && declared != r.out.OrgUnit {
				r.drop(v, "orgUnit", v.OrgUnit, fmt.Sprintf(
					"no org unit row, and without target metadata an id written as %s cannot be passed to a target read as %s", declared, r.out.OrgUnit))
				return "", "", false
			}
			return v.OrgUnit, "", true
		}
		// Passed through: read it as the target's, in the batch's scheme.
		ou, err := p.ix.OrgUnit(r.ouIn, v.OrgUnit)
		if err != nil {
			r.drop(v, "orgUnit", v.OrgUnit, fmt.Sprintf("no org unit row, and the target does not know it: %v", err))
			return "", "", false
		}
		return r.orgUnitID(v, ou)
	}
	if p.ix == nil {
		return v.OrgUnit, "", true
	}
	ou, err := p.ix.OrgUnit(r.ouScheme, v.OrgUnit)
	if err != nil {
		reason := fmt.Sprintf("%v in target %q", err, r.target)
		if r.miss(v, "orgUnit", v.OrgUnit, codeOrgUnit, reason) {
			// pass: there is nothing else to read it as.
			r.drop(v, "orgUnit", v.OrgUnit, reason)
		}
		return "", "", false
	}
	return r.orgUnitID(v, ou)
}

func (r *run) orgUnitID(v *transform.DataValue, ou *metadata.OrgUnit) (string, string, bool) {
	id, ok := ou.IDIn(r.out.OrgUnit)
	if !ok {
		r.refuse(v, "orgUnit", codeOrgUnit, "org unit %s has no %s, the scheme target %q is sent org units in", ou.Label(), schemeWord(r.out.OrgUnit), r.target)
	}
	return id, ou.ID, ok
}

// coc returns the value's category option combo in the output scheme and by uid ("" when
// there is no metadata), or refuses the value.
func (r *run) coc(v *transform.DataValue, res *resolved) (id, uid string, ok bool) {
	if res.rule.COC != "" {
		return res.coc, res.cocUID, true
	}
	ix := r.p.ix
	if ix == nil {
		return r.asWritten(v, comboSide{field: "categoryOptionCombo", pairsField: "categories", what: "a category option combo", code: codeCOC,
			id: v.CategoryOptionCombo, pairs: v.Categories, out: r.out.CategoryOptionCombo,
			declared: r.in.Schemes.CategoryOptionCombo.Or(r.in.Schemes.IDScheme)})
	}
	var coc *metadata.CategoryOptionCombo
	field := "categoryOptionCombo"
	switch {
	case v.CategoryOptionCombo != "":
		m := &r.last
		if v.CategoryOptionCombo == m.cocIn && res.combo == m.cocCombo {
			return m.coc, m.cocUID, true
		}
		var err error
		if coc, err = ix.CategoryOptionCombo(r.cocIn, v.CategoryOptionCombo); err != nil {
			r.refuse(v, field, codeCOC, "%v in target %q", err, r.target)
			return "", "", false
		}
		if !ix.InCombo(coc, res.combo.ID) {
			r.refuse(v, field, codeCOCNotInCC, "%s is not in category combo %s of data element %s",
				coc.Label(), res.combo.Label(), res.deObj.Label())
			return "", "", false
		}
		if id, uid, ok = r.outID(v, field, codeCOC, "option combo", coc, r.out.CategoryOptionCombo); ok {
			m.cocIn, m.cocCombo, m.coc, m.cocUID = v.CategoryOptionCombo, res.combo, id, uid
		}
		return id, uid, ok
	case len(v.Categories) > 0:
		field = "categories"
		var why string
		if coc, why = r.combo(res.combo, v.Categories, "data element ", res.deObj.Label()); coc == nil {
			r.refuse(v, field, codeCOC, "%s", why)
			return "", "", false
		}
	case res.combo.IsDefault():
		return r.p.defaultCOC, metadata.DefaultCategoryOptionComboUID, true
	default:
		r.refuse(v, field, codeCOCRequired, "data element %s is disaggregated by category combo %s (categories %s), but the value gives no category option combo and no categories",
			res.deObj.Label(), res.combo.Label(), r.categoryList(res.combo))
		return "", "", false
	}
	return r.outID(v, field, codeCOC, "option combo", coc, r.out.CategoryOptionCombo)
}

// comboSide is what coc and aoc look at on a value: the combo or its ADX pairs.
type comboSide struct {
	field, pairsField, what, code string
	id                            string
	pairs                         []transform.CategoryOption
	declared, out                 transform.IDScheme
}

// asWritten is a combo without target metadata: an id passes when the batch writes it in
// the scheme the target is sent; ADX pairs cannot be resolved.
func (r *run) asWritten(v *transform.DataValue, c comboSide) (id, uid string, ok bool) {
	switch {
	case c.id != "":
		if c.declared != "" && c.declared != c.out {
			r.refuse(v, c.field, c.code, "written as %s, the target is sent %s, and without target metadata it cannot be translated", c.declared, c.out)
			return "", "", false
		}
		return c.id, "", true
	case len(c.pairs) > 0:
		r.refuse(v, c.pairsField, c.code, "resolving %s to %s needs the target's metadata", c.pairsField, c.what)
		return "", "", false
	}
	return "", "", true
}

// outID writes an option combo in the output scheme sc, or refuses the value.
func (r *run) outID(v *transform.DataValue, field, code, what string, coc *metadata.CategoryOptionCombo, sc transform.IDScheme) (id, uid string, ok bool) {
	id, ok = coc.IDIn(sc)
	if !ok {
		r.refuse(v, field, code, "%s %s has no %s, the scheme target %q is sent option combos in", what, coc.Label(), schemeWord(sc), r.target)
	}
	return id, coc.ID, ok
}

// aoc returns the value's attribute option combo in the output scheme and by uid, or
// refuses the value. An attribute option combo the value gives is honoured as given, as
// an ADX group's attributeOptionCombo suppresses deriving one from attributes (adx.md §7.1).
func (r *run) aoc(v *transform.DataValue, res *resolved) (id, uid string, ok bool) {
	if res.rule.AOC != "" {
		return res.aoc, res.aocUID, true
	}
	ix := r.p.ix
	if ix == nil {
		return r.asWritten(v, comboSide{field: "attributeOptionCombo", pairsField: "attributes", what: "an attribute option combo", code: codeAOC,
			id: v.AttributeOptionCombo, pairs: v.Attributes, out: r.out.AttributeOptionCombo,
			declared: r.in.Schemes.AttributeOptionCombo.Or(r.in.Schemes.CategoryOptionCombo).Or(r.in.Schemes.IDScheme)})
	}
	var aoc *metadata.CategoryOptionCombo
	field := "attributeOptionCombo"
	switch {
	case v.AttributeOptionCombo != "":
		var err error
		if aoc, err = ix.CategoryOptionCombo(r.aocIn, v.AttributeOptionCombo); err != nil {
			r.refuse(v, field, codeAOC, "%v in target %q", err, r.target)
			return "", "", false
		}
		if why := r.aocOutside(aoc, res); why != "" {
			r.refuse(v, field, codeAOCNotInCC, "%s", why)
			return "", "", false
		}
	case len(v.Attributes) > 0:
		field = "attributes"
		if res.attrCombo == nil {
			r.refuse(v, field, codeAOC, "cannot tell which attribute combo applies: %s%s", res.attrWhy, r.batchDataSetNote(v, res))
			return "", "", false
		}
		var why string
		if aoc, why = r.combo(res.attrCombo, v.Attributes, "data set ", dataSetLabel(res.ds)); aoc == nil {
			r.refuse(v, field, codeAOC, "%s", why)
			return "", "", false
		}
	case res.attrCombo != nil && !res.attrCombo.IsDefault():
		r.refuse(v, field, codeAOCRequired, "data set %s has attribute combo %s (categories %s), but neither the rule nor the value gives an attribute option combo",
			dataSetLabel(res.ds), res.attrCombo.Label(), r.categoryList(res.attrCombo))
		return "", "", false
	default:
		return r.p.defaultCOC, metadata.DefaultCategoryOptionComboUID, true
	}
	return r.outID(v, field, codeAOC, "attribute option combo", aoc, r.out.AttributeOptionCombo)
}

// aocOutside says why an attribute option combo does not fit the value's data set: not in
// its attribute combo, or, when the element's data sets do not agree on one, in none of
// theirs. DHIS2 checks the same (E7635).
func (r *run) aocOutside(aoc *metadata.CategoryOptionCombo, res *resolved) string {
	ix := r.p.ix
	if res.attrCombo != nil {
		if ix.InCombo(aoc, res.attrCombo.ID) {
			return ""
		}
		return fmt.Sprintf("%s is not in attribute combo %s of data set %s", aoc.Label(), res.attrCombo.Label(), dataSetLabel(res.ds))
	}
	if len(res.cands) == 0 {
		return "" // an element in no data set: nothing to compare with
	}
	for _, ds := range res.cands {
		uid := ds.CategoryCombo.ID
		if uid == "" {
			uid = metadata.DefaultCategoryComboUID
		}
		if ix.InCombo(aoc, uid) {
			return ""
		}
	}
	return fmt.Sprintf("%s is in the attribute combo of no data set of data element %s (%s)", aoc.Label(), res.deObj.Label(), dataSetList(res.cands))
}

// combo finds the option combo of cc that a list of category → option pairs (ADX's
// disaggregation) names, or says why there is none. ofKind and ofName name what cc
// disaggregates, for messages (kept apart so that the happy path builds no string).
func (r *run) combo(cc *metadata.CategoryCombo, pairs []transform.CategoryOption, ofKind, ofName string) (*metadata.CategoryOptionCombo, string) {
	ix := r.p.ix
	var optsBuf [8]string
	var seenBuf [8]bool
	opts, seen := optsBuf[:0], seenBuf[:0]
	if n := len(cc.Categories); n > len(seenBuf) {
		opts, seen = make([]string, 0, n), make([]bool, n)
	} else {
		seen = seenBuf[:n]
	}
	for _, pr := range pairs {
		cat, err := ix.Category(r.catIn, pr.Category)
		if err != nil {
			return nil, fmt.Sprintf("%v in target %q", err, r.target)
		}
		pos := slices.IndexFunc(cc.Categories, func(ref metadata.Ref) bool { return ref.ID == cat.ID })
		if pos < 0 {
			return nil, fmt.Sprintf("category %s is not in category combo %s of %s (its categories: %s)", cat.Label(), cc.Label(), ofKind+ofName, r.categoryList(cc))
		}
		if seen[pos] {
			return nil, fmt.Sprintf("category %s is given twice", cat.Label())
		}
		seen[pos] = true
		opt, err := ix.CategoryOption(r.optIn, pr.Option)
		if err != nil {
			return nil, fmt.Sprintf("category %s: %v in target %q", cat.Label(), err, r.target)
		}
		if !slices.ContainsFunc(cat.CategoryOptions, func(ref metadata.Ref) bool { return ref.ID == opt.ID }) {
			return nil, fmt.Sprintf("%s is not an option of category %s (its options: %s)", opt.Label(), cat.Label(), optionList(ix, cat))
		}
		opts = append(opts, opt.ID)
	}
	if len(opts) != len(cc.Categories) {
		var missing []string
		for i, ref := range cc.Categories {
			if !seen[i] {
				missing = append(missing, categoryLabel(ix, ref.ID))
			}
		}
		return nil, fmt.Sprintf("%s is disaggregated by category combo %s (categories %s); the value gives %s, missing %s",
			ofKind+ofName, cc.Label(), r.categoryList(cc), categoriesText(pairs), strings.Join(missing, ", "))
	}
	coc := ix.ComboOf(cc.ID, opts)
	if coc == nil {
		return nil, fmt.Sprintf("no option combo of category combo %s (%s) has the options %s", cc.Label(), ofKind+ofName, categoriesText(pairs))
	}
	return coc, ""
}

func categoryLabel(ix *Index, uid string) string {
	if c, err := ix.Category(transform.SchemeUID, uid); err == nil {
		return c.Label()
	}
	return uid
}

func (r *run) categoryList(cc *metadata.CategoryCombo) string { return categoryList(r.p.ix, cc) }

func categoryList(ix *Index, cc *metadata.CategoryCombo) string {
	names := make([]string, len(cc.Categories))
	for i, ref := range cc.Categories {
		names[i] = categoryLabel(ix, ref.ID)
	}
	return strings.Join(names, ", ")
}

func optionList(ix *Index, cat *metadata.Category) string {
	names := make([]string, len(cat.CategoryOptions))
	for i, ref := range cat.CategoryOptions {
		names[i] = ref.ID
		if o, err := ix.CategoryOption(transform.SchemeUID, ref.ID); err == nil {
			names[i] = o.Label()
		}
	}
	return strings.Join(names, ", ")
}

func categoriesText(pairs []transform.CategoryOption) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Category)
		b.WriteByte('=')
		b.WriteString(p.Option)
	}
	return b.String()
}
