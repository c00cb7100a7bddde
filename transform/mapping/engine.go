package mapping

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

// MetadataProvider gives the current metadata snapshot of a target. The engine indexes a
// snapshot once and reuses the index for as long as the provider returns the same pointer,
// so a provider should cache and hand out one *Metadata until it refreshes. An error is
// treated as transient: Map returns it unwrapped, and the batch is retried.
type MetadataProvider interface {
	Metadata(ctx context.Context, target string) (*Metadata, error)
}

// StaticMetadata is a MetadataProvider over fixed snapshots, by target name: for tests,
// previews and checks against a file.
type StaticMetadata map[string]*Metadata

// Metadata returns the snapshot of target.
func (s StaticMetadata) Metadata(_ context.Context, target string) (*Metadata, error) {
	md, ok := s[target]
	if !ok || md == nil {
		return nil, fmt.Errorf("no metadata for target %q", target)
	}
	return md, nil
}

// Engine maps batches with compiled mapping sets. It implements the mediator's Mapper. It is
// safe for concurrent use. To apply a new configuration, build a new Engine.
type Engine struct {
	sets *Sets
	md   MetadataProvider

	mu      sync.Mutex
	indexes map[string]*Index // by target: the index of the last snapshot seen
	plans   map[planKey]*plan
}

type planKey struct {
	set    *Set
	target string
}

// NewEngine returns an engine for sets. With a nil provider the engine works without target
// metadata: rule ids are delivered as written, in the set's target_id_scheme, and what needs
// metadata (ADX categories, rollup, checks that a combo belongs to an element) fails the
// values that need it.
func NewEngine(sets *Sets, md MetadataProvider) *Engine {
	return &Engine{sets: sets, md: md, indexes: map[string]*Index{}, plans: map[planKey]*plan{}}
}

// Sets returns the sets the engine maps with.
func (e *Engine) Sets() *Sets { return e.sets }

// Map maps one batch of a source for one target with the source's mapping set. A source
// without a mapping set gets the identity mapping. Errors wrapping ErrRejected mean the
// batch cannot be mapped as it is (see RejectError); others are transient.
func (e *Engine) Map(ctx context.Context, in *transform.Batch, source *config.Source, target *config.Target) (*transform.Mapped, error) {
	if source == nil || source.Mapping == "" {
		return transform.Identity(in, target.Name), nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	set, ok := e.sets.Set(source.Mapping)
	if !ok {
		return nil, fmt.Errorf("source %q: %w %q", source.Name, ErrUnknownSet, source.Mapping)
	}
	pol, err := policiesOf(source)
	if err != nil {
		return nil, err
	}
	p, err := e.plan(ctx, set, target)
	if err != nil {
		return nil, err
	}
	return p.run(in, target.Name, pol)
}

func (e *Engine) plan(ctx context.Context, set *Set, t *config.Target) (*plan, error) {
	var ix *Index
	if e.md != nil {
		md, err := e.md.Metadata(ctx, t.Name)
		if err != nil {
			return nil, fmt.Errorf("metadata of target %q: %w", t.Name, err)
		}
		if md == nil {
			return nil, fmt.Errorf("metadata of target %q: the provider returned none", t.Name)
		}
		e.mu.Lock()
		ix = e.indexes[t.Name]
		if p := e.plans[planKey{set, t.Name}]; p != nil && p.ix != nil && p.ix.md == md && p.schemes == t.IDSchemes {
			e.mu.Unlock()
			return p, nil
		}
		e.mu.Unlock()
		if ix == nil || ix.md != md {
			ix = NewIndex(md) // outside the lock; a concurrent duplicate is harmless
			e.mu.Lock()
			e.indexes[t.Name] = ix
			e.mu.Unlock()
		}
	} else {
		e.mu.Lock()
		p := e.plans[planKey{set, t.Name}]
		e.mu.Unlock()
		if p != nil && p.schemes == t.IDSchemes {
			return p, nil
		}
	}
	p, err := newPlan(set, ix, t)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.plans[planKey{set, t.Name}] = p
	e.mu.Unlock()
	return p, nil
}

type unmappedPolicy uint8

const (
	unmappedDrop unmappedPolicy = iota
	unmappedPass
	unmappedReject
)

type dupPolicy uint8

const (
	dupReject dupPolicy = iota
	dupSum
	dupLast
)

type policies struct {
	source   string
	unmapped unmappedPolicy
	dups     dupPolicy
}

func policiesOf(s *config.Source) (policies, error) {
	p := policies{source: s.Name}
	switch s.Unmapped {
	case "", "drop":
	case "pass":
		p.unmapped = unmappedPass
	case "reject":
		p.unmapped = unmappedReject
	default:
		return p, fmt.Errorf("source %q: unmapped %q: want drop, pass or reject", s.Name, s.Unmapped)
	}
	switch s.Duplicates {
	case "", "reject":
	case "sum":
		p.dups = dupSum
	case "last":
		p.dups = dupLast
	default:
		return p, fmt.Errorf("source %q: duplicates %q: want reject, sum or last", s.Name, s.Duplicates)
	}
	return p, nil
}

// run is the state of mapping one batch.
type run struct {
	p      *plan
	in     *transform.Batch
	pol    policies
	target string
	// incoming schemes
	deIn, ouIn, cocIn, aocIn, catIn, optIn transform.IDScheme
	ouScheme                               transform.IDScheme // how source org units are read in the target
	out                                    transform.IDSchemes

	rej      RejectError
	unmapped []transform.Unmapped
	vals     []transform.DataValue // the output values
	slots    []slot                // what else is known of each output value
	byKey    map[transform.Key]int32
	pass     map[string]*resolved
	periods  map[periodKey]rolled
}

// slot is what the engine knows of an output value beyond its fields: once a second value
// lands on its key, every contribution.
type slot struct {
	period string // the source period, when it was rolled up
	dsOut  string // the data set the value belongs to in the target, "" when unknown or mixed
	parts  []part
}

type part struct {
	period  string
	value   string
	deleted bool
	index   int
}

type periodKey struct {
	id string
	t  period.Type
}

type rolled struct {
	id  string
	err string
}

func (p *plan) run(in *transform.Batch, target string, pol policies) (*transform.Mapped, error) {
	s := in.Schemes
	base := s.IDScheme.Or(transform.SchemeUID)
	r := &run{
		p: p, in: in, pol: pol, target: target, out: p.out,
		deIn:  s.DataElement.Or(base),
		ouIn:  s.OrgUnit.Or(base),
		cocIn: s.CategoryOptionCombo.Or(base),
		catIn: s.Category.Or(s.IDScheme).Or(transform.SchemeCode),
		optIn: s.CategoryOption.Or(s.IDScheme).Or(transform.SchemeCode),
		vals:  make([]transform.DataValue, 0, len(in.Values)),
		slots: make([]slot, 0, len(in.Values)),
		byKey: make(map[transform.Key]int32, len(in.Values)),
	}
	r.aocIn = s.AttributeOptionCombo.Or(r.cocIn)
	r.rej.Set, r.rej.Target = p.set.Name, target
	r.ouScheme = p.set.OrgUnits.Scheme.Or(r.ouIn)
	if r.out.OrgUnit == "" {
		r.out.OrgUnit = r.ouIn // no metadata and the same org unit ids: as the batch writes them
	}
	if sc := p.set.SourceScheme; sc != "" {
		if declared := s.DataElement.Or(s.IDScheme); declared != "" && declared != sc {
			r.rej.add(Issue{Field: "dataElementIdScheme", Value: string(declared), Reason: fmt.Sprintf(
				"the batch writes data elements as %s, but mapping set %q names its sources by %s; declare the source's id_schemes to match",
				declared, p.set.Name, sc)})
			return nil, &r.rej
		}
	}
	for i := range in.Values {
		r.value(&in.Values[i])
	}
	r.finish()
	if len(r.rej.Issues) > 0 {
		return nil, &r.rej
	}
	out := &transform.Batch{
		ID: in.ID, TxID: in.TxID, Seq: in.Seq, Part: in.Part, Source: in.Source, Received: in.Received,
		Target: target, Schemes: r.out, Replays: in.Replays, Values: r.vals,
	}
	out.DataSet = r.dataSet()
	if out.DataSet != "" && in.DataSet != "" {
		out.CompleteDate = in.CompleteDate
	}
	return &transform.Mapped{Batch: out, Unmapped: r.unmapped}, nil
}

func (r *run) issue(v *transform.DataValue, field, value, format string, args ...any) {
	r.rej.add(Issue{Indexes: []int{v.Index}, Field: field, Value: value, Reason: fmt.Sprintf(format, args...)})
}

// miss applies the unmapped policy to a value nothing maps. It reports whether the value
// should go on as passed through.
func (r *run) miss(v *transform.DataValue, field, value, reason string) bool {
	switch r.pol.unmapped {
	case unmappedPass:
		return true
	case unmappedReject:
		r.issue(v, field, value, "%s (unmapped: reject on source %q)", reason, r.pol.source)
	default:
		r.unmapped = append(r.unmapped, transform.Unmapped{Index: v.Index, Field: field, Value: value, Reason: reason})
	}
	return false
}

func (r *run) value(v *transform.DataValue) {
	set := r.p.set
	var res *resolved
	if g := set.bySource[v.DataElement]; g != nil {
		var rule *Rule
		if v.CategoryOptionCombo != "" && g.byCOC != nil {
			rule = g.byCOC[v.CategoryOptionCombo]
		}
		if rule == nil {
			rule = g.any
		}
		if rule != nil {
			res = &r.p.rules[rule.ord]
		} else if !r.miss(v, "categoryOptionCombo", v.CategoryOptionCombo,
			fmt.Sprintf("mapping set %q has rules for %q, but none for its category option combo %q", set.Name, v.DataElement, v.CategoryOptionCombo)) {
			return
		}
	} else if !r.miss(v, "dataElement", v.DataElement, fmt.Sprintf("mapping set %q has no rule for it", set.Name)) {
		return
	}
	if res == nil {
		if res = r.passRule(v.DataElement); res.err != "" {
			r.unmapped = append(r.unmapped, transform.Unmapped{Index: v.Index, Field: "dataElement", Value: v.DataElement, Reason: res.err})
			return
		}
	}
	if res.err != "" {
		r.issue(v, "dataElement", v.DataElement, "rule at %s: %s", res.rule.Origin, res.err)
		return
	}
	ou, ok := r.orgUnit(v)
	if !ok {
		return
	}
	coc, ok := r.coc(v, res)
	if !ok {
		return
	}
	aoc, ok := r.aoc(v, res)
	if !ok {
		return
	}
	pe, from, ok := r.period(v, res)
	if !ok {
		return
	}
	val := v.Value
	if res.rule.transforms() && !v.Deleted && val != "" {
		if val, ok = transformValue(val, res.rule.scale, res.rule.Round); !ok {
			r.issue(v, "value", v.Value, "not a number, but the rule at %s scales or rounds it", res.rule.Origin)
			return
		}
	}
	r.put(transform.DataValue{
		DataElement: res.de, Period: pe, OrgUnit: ou, CategoryOptionCombo: coc, AttributeOptionCombo: aoc,
		Value: val, Comment: v.Comment, StoredBy: v.StoredBy, FollowUp: v.FollowUp, Deleted: v.Deleted, Index: v.Index,
	}, from, res)
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

func (r *run) orgUnit(v *transform.DataValue) (string, bool) {
	p := r.p
	if p.ouTable != nil {
		t, ok := p.ouTable[v.OrgUnit]
		switch {
		case ok && t.err != "":
			r.issue(v, "orgUnit", v.OrgUnit, "org unit row at %s: %s", p.set.OrgUnits.byID[v.OrgUnit].Origin, t.err)
			return "", false
		case ok:
			return t.id, true
		}
		if !r.miss(v, "orgUnit", v.OrgUnit, fmt.Sprintf("mapping set %q has no org unit row for it", p.set.Name)) {
			return "", false
		}
		if p.ix == nil {
			if declared := r.in.Schemes.OrgUnit.Or(r.in.Schemes.IDScheme); declared != "" && declared != r.out.OrgUnit {
				r.unmapped = append(r.unmapped, transform.Unmapped{Index: v.Index, Field: "orgUnit", Value: v.OrgUnit, Reason: fmt.Sprintf(
					"no org unit row, and without target metadata an id written as %s cannot be passed to a target read as %s", declared, r.out.OrgUnit)})
				return "", false
			}
			return v.OrgUnit, true
		}
		// Passed through: read it as the target's, in the batch's scheme.
		ou, err := p.ix.OrgUnit(r.ouIn, v.OrgUnit)
		if err != nil {
			r.unmapped = append(r.unmapped, transform.Unmapped{Index: v.Index, Field: "orgUnit", Value: v.OrgUnit,
				Reason: fmt.Sprintf("no org unit row, and the target does not know it: %v", err)})
			return "", false
		}
		return r.orgUnitID(v, ou)
	}
	if p.ix == nil {
		return v.OrgUnit, true
	}
	ou, err := p.ix.OrgUnit(r.ouScheme, v.OrgUnit)
	if err != nil {
		reason := fmt.Sprintf("%v in target %q", err, r.target)
		if r.miss(v, "orgUnit", v.OrgUnit, reason) {
			// pass: there is nothing else to read it as.
			r.unmapped = append(r.unmapped, transform.Unmapped{Index: v.Index, Field: "orgUnit", Value: v.OrgUnit, Reason: reason})
		}
		return "", false
	}
	return r.orgUnitID(v, ou)
}

func (r *run) orgUnitID(v *transform.DataValue, ou *OrgUnit) (string, bool) {
	id, ok := ou.IDIn(r.out.OrgUnit)
	if !ok {
		r.issue(v, "orgUnit", v.OrgUnit, "org unit %s has no %s, the scheme target %q is sent org units in", ou.Label(), schemeWord(r.out.OrgUnit), r.target)
	}
	return id, ok
}

func (r *run) coc(v *transform.DataValue, res *resolved) (string, bool) {
	if res.rule.COC != "" {
		return res.coc, true
	}
	ix := r.p.ix
	if ix == nil {
		switch {
		case v.CategoryOptionCombo != "":
			if declared := r.in.Schemes.CategoryOptionCombo.Or(r.in.Schemes.IDScheme); declared != "" && declared != r.out.CategoryOptionCombo {
				r.issue(v, "categoryOptionCombo", v.CategoryOptionCombo, "written as %s, the target is sent %s, and without target metadata it cannot be translated", declared, r.out.CategoryOptionCombo)
				return "", false
			}
			return v.CategoryOptionCombo, true
		case len(v.Categories) > 0:
			r.issue(v, "categories", categoriesText(v.Categories), "resolving categories to a category option combo needs the target's metadata")
			return "", false
		}
		return "", true
	}
	switch {
	case v.CategoryOptionCombo != "":
		coc, err := ix.CategoryOptionCombo(r.cocIn, v.CategoryOptionCombo)
		if err != nil {
			r.issue(v, "categoryOptionCombo", v.CategoryOptionCombo, "%v in target %q", err, r.target)
			return "", false
		}
		if !ix.InCombo(coc, res.combo.ID) {
			r.issue(v, "categoryOptionCombo", v.CategoryOptionCombo, "%s is not in category combo %s of data element %s",
				coc.Label(), res.combo.Label(), res.deObj.Label())
			return "", false
		}
		id, ok := coc.IDIn(r.out.CategoryOptionCombo)
		if !ok {
			r.issue(v, "categoryOptionCombo", v.CategoryOptionCombo, "it has no %s, the scheme target %q is sent option combos in",
				schemeWord(r.out.CategoryOptionCombo), r.target)
		}
		return id, ok
	case len(v.Categories) > 0:
		coc, why := r.combo(res.combo, v.Categories, "data element ", res.deObj.Label())
		if coc == nil {
			r.issue(v, "categories", categoriesText(v.Categories), "%s", why)
			return "", false
		}
		id, ok := coc.IDIn(r.out.CategoryOptionCombo)
		if !ok {
			r.issue(v, "categories", categoriesText(v.Categories), "option combo %s has no %s, the scheme target %q is sent option combos in",
				coc.Label(), schemeWord(r.out.CategoryOptionCombo), r.target)
		}
		return id, ok
	case res.combo.IsDefault():
		return r.p.defaultCOC, true
	}
	r.issue(v, "categoryOptionCombo", "", "data element %s is disaggregated by category combo %s (categories %s), but the value gives no category option combo and no categories",
		res.deObj.Label(), res.combo.Label(), r.categoryList(res.combo))
	return "", false
}

func (r *run) aoc(v *transform.DataValue, res *resolved) (string, bool) {
	if res.rule.AOC != "" {
		return res.aoc, true
	}
	ix := r.p.ix
	if ix == nil {
		switch {
		case v.AttributeOptionCombo != "":
			if declared := r.in.Schemes.AttributeOptionCombo.Or(r.in.Schemes.CategoryOptionCombo).Or(r.in.Schemes.IDScheme); declared != "" && declared != r.out.AttributeOptionCombo {
				r.issue(v, "attributeOptionCombo", v.AttributeOptionCombo, "written as %s, the target is sent %s, and without target metadata it cannot be translated", declared, r.out.AttributeOptionCombo)
				return "", false
			}
			return v.AttributeOptionCombo, true
		case len(v.Attributes) > 0:
			r.issue(v, "attributes", categoriesText(v.Attributes), "resolving attributes to an attribute option combo needs the target's metadata")
			return "", false
		}
		return "", true
	}
	switch {
	case v.AttributeOptionCombo != "":
		aoc, err := ix.CategoryOptionCombo(r.aocIn, v.AttributeOptionCombo)
		if err != nil {
			r.issue(v, "attributeOptionCombo", v.AttributeOptionCombo, "%v in target %q", err, r.target)
			return "", false
		}
		if res.attrCombo != nil && !ix.InCombo(aoc, res.attrCombo.ID) {
			r.issue(v, "attributeOptionCombo", v.AttributeOptionCombo, "%s is not in attribute combo %s of data set %s",
				aoc.Label(), res.attrCombo.Label(), dataSetLabel(res.ds))
			return "", false
		}
		id, ok := aoc.IDIn(r.out.AttributeOptionCombo)
		if !ok {
			r.issue(v, "attributeOptionCombo", v.AttributeOptionCombo, "it has no %s, the scheme target %q is sent option combos in",
				schemeWord(r.out.AttributeOptionCombo), r.target)
		}
		return id, ok
	case len(v.Attributes) > 0:
		if res.attrCombo == nil {
			r.issue(v, "attributes", categoriesText(v.Attributes), "cannot tell which attribute combo applies: %s", res.attrWhy)
			return "", false
		}
		aoc, why := r.combo(res.attrCombo, v.Attributes, "data set ", dataSetLabel(res.ds))
		if aoc == nil {
			r.issue(v, "attributes", categoriesText(v.Attributes), "%s", why)
			return "", false
		}
		id, ok := aoc.IDIn(r.out.AttributeOptionCombo)
		if !ok {
			r.issue(v, "attributes", categoriesText(v.Attributes), "attribute option combo %s has no %s, the scheme target %q is sent option combos in",
				aoc.Label(), schemeWord(r.out.AttributeOptionCombo), r.target)
		}
		return id, ok
	case res.attrCombo != nil && !res.attrCombo.IsDefault():
		r.issue(v, "attributeOptionCombo", "", "data set %s has attribute combo %s (categories %s), but neither the rule nor the value gives an attribute option combo",
			dataSetLabel(res.ds), res.attrCombo.Label(), r.categoryList(res.attrCombo))
		return "", false
	}
	return r.p.defaultCOC, true
}

// combo finds the option combo of cc that a list of category → option pairs (ADX's
// disaggregation) names, or says why there is none. ofKind and ofName name what cc
// disaggregates, for messages (kept apart so that the happy path builds no string).
func (r *run) combo(cc *CategoryCombo, pairs []transform.CategoryOption, ofKind, ofName string) (*CategoryOptionCombo, string) {
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
		pos := slices.IndexFunc(cc.Categories, func(ref Ref) bool { return ref.ID == cat.ID })
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
		if !slices.ContainsFunc(cat.CategoryOptions, func(ref Ref) bool { return ref.ID == opt.ID }) {
			return nil, fmt.Sprintf("%s is not an option of category %s (its options: %s)", opt.Label(), cat.Label(), r.optionList(cat))
		}
		opts = append(opts, opt.ID)
	}
	if len(opts) != len(cc.Categories) {
		var missing []string
		for i, ref := range cc.Categories {
			if !seen[i] {
				missing = append(missing, r.categoryLabel(ref.ID))
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

func (r *run) categoryLabel(uid string) string {
	if c, err := r.p.ix.Category(transform.SchemeUID, uid); err == nil {
		return c.Label()
	}
	return uid
}

func (r *run) categoryList(cc *CategoryCombo) string {
	names := make([]string, len(cc.Categories))
	for i, ref := range cc.Categories {
		names[i] = r.categoryLabel(ref.ID)
	}
	return strings.Join(names, ", ")
}

func (r *run) optionList(cat *Category) string {
	names := make([]string, len(cat.CategoryOptions))
	for i, ref := range cat.CategoryOptions {
		names[i] = ref.ID
		if o, err := r.p.ix.CategoryOption(transform.SchemeUID, ref.ID); err == nil {
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

// period returns the value's period in the target and, when it was rolled up, the source
// period it came from.
func (r *run) period(v *transform.DataValue, res *resolved) (pe, from string, ok bool) {
	if !r.p.set.Rollup {
		return v.Period, "", true
	}
	if res.ptype == 0 {
		r.issue(v, "period", v.Period, "cannot roll up: %s", res.ptypeWhy)
		return "", "", false
	}
	key := periodKey{v.Period, res.ptype}
	ro, seen := r.periods[key]
	if !seen {
		ro = rollUp(v.Period, res.ptype)
		if r.periods == nil {
			r.periods = map[periodKey]rolled{}
		}
		r.periods[key] = ro
	}
	if ro.err != "" {
		r.issue(v, "period", v.Period, "%s (target data set %s)", ro.err, dataSetLabel(res.ds))
		return "", "", false
	}
	if ro.id == v.Period {
		return v.Period, "", true
	}
	return ro.id, v.Period, true
}

func rollUp(id string, t period.Type) rolled {
	p, err := period.Parse(id)
	if err != nil {
		return rolled{err: err.Error()}
	}
	if p.Type() == t {
		return rolled{id: id}
	}
	up, ok := p.RollUp(t)
	if !ok {
		return rolled{err: fmt.Sprintf("a %s period does not roll up into %s", p.Type(), t)}
	}
	return rolled{id: up.ID()}
}

// put adds a mapped value, applying the duplicates policy when another value already maps to
// its key. Values rolled up from different source periods are parts of one sum, not
// duplicates.
func (r *run) put(v transform.DataValue, from string, res *resolved) {
	k := transform.Key{DataElement: v.DataElement, Period: v.Period, OrgUnit: v.OrgUnit,
		CategoryOptionCombo: v.CategoryOptionCombo, AttributeOptionCombo: v.AttributeOptionCombo}
	j, exists := r.byKey[k]
	if !exists {
		r.byKey[k] = int32(len(r.slots))
		r.vals = append(r.vals, v)
		r.slots = append(r.slots, slot{period: from, dsOut: res.dsOut})
		return
	}
	s, sv := &r.slots[j], &r.vals[j]
	if s.parts == nil {
		s.parts = []part{{period: s.period, value: sv.Value, deleted: sv.Deleted, index: sv.Index}}
	}
	np := part{period: from, value: v.Value, deleted: v.Deleted, index: v.Index}
	if s.dsOut != res.dsOut {
		s.dsOut = ""
	}
	// The part this value collides with: the same source period, or any part when a value
	// of the target's own period type meets rolled-up ones.
	hit := -1
	for i, pt := range s.parts {
		if pt.period == from || pt.period == "" || from == "" {
			hit = i
			break
		}
	}
	if hit < 0 {
		s.parts = append(s.parts, np) // another period of the same rollup
		return
	}
	switch r.pol.dups {
	case dupSum:
		s.parts = append(s.parts, np)
	case dupLast:
		if from == "" || s.parts[hit].period == "" {
			s.parts = s.parts[:0]
			s.parts = append(s.parts, np)
		} else {
			s.parts[hit] = np
		}
		first := sv.Index
		*sv = v
		if len(s.parts) > 1 {
			sv.Index = first
		}
	default:
		r.rej.add(Issue{Indexes: []int{s.parts[hit].index, v.Index}, Field: "key", Value: keyText(k), Reason: fmt.Sprintf(
			"both map to the same data element, period, org unit and option combos (duplicates: reject on source %q; choose sum or last to allow)", r.pol.source)})
	}
}

func keyText(k transform.Key) string {
	return strings.Join([]string{k.DataElement, k.Period, k.OrgUnit, k.CategoryOptionCombo, k.AttributeOptionCombo}, " ")
}

// finish adds up the output values that have several parts.
func (r *run) finish() {
	out := r.vals
	for i := range r.slots {
		s := &r.slots[i]
		if len(s.parts) <= 1 {
			if len(s.parts) == 1 {
				out[i].Value, out[i].Deleted = s.parts[0].value, s.parts[0].deleted
			}
			continue
		}
		var sum accum
		live := 0
		for _, pt := range s.parts {
			if pt.deleted || pt.value == "" {
				continue
			}
			if !sum.add(pt.value) {
				r.rej.add(Issue{Indexes: partIndexes(s.parts), Field: "value", Value: pt.value, Reason: fmt.Sprintf(
					"not a number, but the values of %s are added up (%s)", keyText(out[i].Key()), r.why(s))})
				live = -1
				break
			}
			live++
		}
		switch {
		case live < 0:
		case live == 0:
			out[i].Value, out[i].Deleted = "", true
		default:
			out[i].Value, out[i].Deleted = sum.String(), false
		}
	}
}

func (r *run) why(s *slot) string {
	for _, p := range s.parts {
		if p.period != "" {
			return "periods: rollup"
		}
	}
	return "duplicates: sum"
}

func partIndexes(parts []part) []int {
	idx := make([]int, len(parts))
	for i, p := range parts {
		idx[i] = p.index
	}
	return idx
}

// dataSet is the output batch's data set: the one every value belongs to, or "".
func (r *run) dataSet() string {
	ds := ""
	for i := range r.slots {
		s := &r.slots[i]
		if s.dsOut == "" || (ds != "" && s.dsOut != ds) {
			return ""
		}
		ds = s.dsOut
	}
	return ds
}
