package mapping

import (
	"context"
	"fmt"
	"sync"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// MetadataProvider gives the current metadata snapshot of a target. The engine indexes a
// snapshot once and reuses the index for as long as the provider returns the same pointer,
// so a provider should cache and hand out one *Metadata until it refreshes. An error is
// treated as transient: Map returns it unwrapped, and the batch is retried.
type MetadataProvider interface {
	Metadata(ctx context.Context, target string) (*metadata.Metadata, error)
}

// StaticMetadata is a MetadataProvider over fixed snapshots, by target name: for tests,
// previews and checks against a file.
type StaticMetadata map[string]*metadata.Metadata

// Metadata returns the snapshot of target.
func (s StaticMetadata) Metadata(_ context.Context, target string) (*metadata.Metadata, error) {
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
	// pass is the set without rules that resolves, through the target's metadata, the ADX
	// categories of a source without a mapping set (see MapWith).
	pass *Set
	// scratch pools the runs' working state (run.go).
	scratch sync.Pool
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
	return &Engine{sets: sets, md: md, indexes: map[string]*Index{}, plans: map[planKey]*plan{}, pass: passThroughSet()}
}

// passThroughSet is a set without rules: under unmapped: pass it reads ids as the
// target's, in the batch's schemes.
func passThroughSet() *Set {
	return &Set{Name: "(the target's own ids)", TargetScheme: transform.SchemeUID, bySource: map[string]*ruleGroup{}}
}

// Sets returns the sets the engine maps with.
func (e *Engine) Sets() *Sets { return e.sets }

// Options carry the state a caller keeps beyond one batch. The zero Options map a batch on
// its own: periods roll up within the batch, and duplicates are found within the batch.
type Options struct {
	// Rollup keeps, for periods: rollup, what each constituent period contributed to a
	// rolled-up value, so that a longer period is the sum of every part received so far,
	// across batches and payloads (see RollupStore). nil adds up within the batch only.
	Rollup RollupStore
	// RollupReadOnly reads Rollup without writing to it, for a preview that must not
	// change what later payloads add up to.
	RollupReadOnly bool
	// Payload remembers the target keys of the payload's earlier batches, so that the
	// duplicates policy reaches across the batches of one payload (see PayloadKeys). nil
	// finds duplicates within the batch only.
	Payload *PayloadKeys
	// Values, when it has the capacity for the batch's values, is the array the mapped
	// values are written to (its length is ignored): a caller that is done with each
	// Mapped before it maps the next batch (pipeline.Direct encodes it at once) allocates
	// them once. nil allocates for each batch.
	Values []transform.DataValue
}

// Map maps one batch of a source for one target with the zero Options, for callers that do
// not read Mapped.Refused: when mapping refuses any value, Map returns no Mapped but a
// RejectError listing each refused value (wrapping ErrRejected), so that the batch goes to
// the dead-letter queue whole rather than losing those values unseen. The mapper stage
// should call MapWith, which delivers the rest and reports refusals value by value.
func (e *Engine) Map(ctx context.Context, in *transform.Batch, source *Source, target *Target) (*transform.Mapped, error) {
	m, err := e.MapWith(ctx, in, source, target, Options{})
	if err != nil || len(m.Refused) == 0 {
		return m, err
	}
	set := ""
	if source != nil {
		set = source.Mapping
	}
	rej := &RejectError{Set: set, Target: target.Name}
	for _, r := range m.Refused {
		rej.add(Issue{Indexes: []int{r.Value.Index}, Field: r.Field, Value: fieldValue(&r.Value, r.Field), Code: r.ErrorCode, Reason: r.Reason})
	}
	return nil, rej
}

// fieldValue is what a value writes in one field, for a message.
func fieldValue(v *transform.DataValue, field string) string {
	switch field {
	case "dataElement":
		return v.DataElement
	case "period":
		return v.Period
	case "orgUnit":
		return v.OrgUnit
	case "categoryOptionCombo":
		return v.CategoryOptionCombo
	case "attributeOptionCombo":
		return v.AttributeOptionCombo
	case "categories":
		return categoriesText(v.Categories)
	case "attributes":
		return categoriesText(v.Attributes)
	case "value":
		return v.Value
	}
	return ""
}

// MapWith maps one batch of a source for one target with the source's mapping set; a source
// without one keeps its ids (transform.Identity) but still gets its duplicates policy.
// When such a batch gives a disaggregation as ADX category or attribute pairs, which a
// target cannot read, and the engine has a MetadataProvider, the batch is mapped as a set
// without rules under unmapped: pass maps it: ids are read as the target's in the batch's
// schemes and written in the target's (its id_schemes, else UID), the pairs resolved to
// option combos (a group's dataSet choosing the attribute combo), periods checked against
// the target's release; a value whose ids the target does not know is left out as
// unmapped, one whose pairs name no combo refused.
//
// Values are refused one by one (Mapped.Refused) and the rest is delivered: the caller
// dead-letters the refused values. An error wrapping ErrRejected is left only for what
// concerns the whole batch: a batch whose declared data element scheme contradicts the
// set's source_id_scheme (see RejectError). Other errors are transient (metadata unreadable, the roll-up store unreachable, the
// context ended) and worth a retry; a retry is harmless, since the roll-up store and
// PayloadKeys record a batch's contributions by what they replace, not by adding.
func (e *Engine) MapWith(ctx context.Context, in *transform.Batch, source *Source, target *Target, opts Options) (*transform.Mapped, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if source == nil {
		source = &Source{}
	}
	pol, err := policiesOf(source)
	if err != nil {
		return nil, err
	}
	if source.Mapping == "" {
		if e.md != nil && hasPairs(in) {
			// ADX categories cannot be sent as they are: they are resolved through the
			// target's metadata as a set without rules under unmapped: pass resolves them.
			pol.unmapped = unmappedPass
			p, err := e.plan(ctx, e.pass, target)
			if err != nil {
				return nil, err
			}
			return p.run(ctx, &e.scratch, in, target.Name, pol, opts)
		}
		if pol.keep {
			// duplicates: keep: every value goes to the target as received, which then
			// does what DHIS2 does with two values on one key.
			return transform.Identity(in, target.Name), nil
		}
		return identity(ctx, &e.scratch, in, target.Name, pol, opts)
	}
	set, ok := e.sets.Set(source.Mapping)
	if !ok {
		return nil, fmt.Errorf("source %q: %w %q", source.Name, ErrUnknownSet, source.Mapping)
	}
	p, err := e.plan(ctx, set, target)
	if err != nil {
		return nil, err
	}
	return p.run(ctx, &e.scratch, in, target.Name, pol, opts)
}

func (e *Engine) plan(ctx context.Context, set *Set, t *Target) (*plan, error) {
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
	// keepAssigned leaves out values whose org unit is not assigned to their data set;
	// level > 0 leaves out values whose org unit is at another level.
	keepAssigned bool
	level        int
	// keep is duplicates: keep, which a source without a mapping set uses to leave
	// duplicates to the target; where values are mapped it settles them as last does.
	keep bool
}

func policiesOf(s *Source) (policies, error) {
	p := policies{source: s.Name, level: s.OrgUnits.Level}
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
	case "keep":
		p.dups, p.keep = dupLast, true
	default:
		return p, fmt.Errorf("source %q: duplicates %q: want reject, sum, last or keep", s.Name, s.Duplicates)
	}
	switch s.OrgUnits.Keep {
	case "", "all":
	case "assigned":
		p.keepAssigned = true
	default:
		return p, fmt.Errorf("source %q: org_units.keep %q: want all or assigned", s.Name, s.OrgUnits.Keep)
	}
	return p, nil
}

func (p policies) dupWord() string {
	switch p.dups {
	case dupSum:
		return "sum"
	case dupLast:
		return "last"
	}
	return "reject"
}

// hasPairs reports whether a value of the batch gives its disaggregation as ADX category
// or attribute pairs.
func hasPairs(in *transform.Batch) bool {
	for i := range in.Values {
		if len(in.Values[i].Categories) > 0 || len(in.Values[i].Attributes) > 0 {
			return true
		}
	}
	return false
}

// identity maps the batch of a source without a mapping set: ids stay as they arrived,
// and only the duplicates policy applies, within the batch and across the payload.
func identity(ctx context.Context, pool *sync.Pool, in *transform.Batch, target string, pol policies, opts Options) (*transform.Mapped, error) {
	r := newRun(pool, in, target, pol, opts)
	defer r.done()
	for i := range in.Values {
		v := in.Values[i]
		ds := v.DataSet
		if ds == "" {
			ds = in.DataSet
		}
		r.put(v, i, v.Key(), slotOf{dsOut: ds})
	}
	if err := r.finish(ctx); err != nil {
		return nil, err
	}
	m := transform.Identity(in, target)
	m.Batch.Values = r.vals
	m.Batch.Deletion = in.Deletion && r.allDeleted()
	r.result(m)
	return m, nil
}

// FieldValue is what a value writes in one of the fields a Refused or an Unmapped names
// (dataElement, period, orgUnit, categoryOptionCombo, attributeOptionCombo, categories,
// attributes, value), for a message or a conflict's object.
func FieldValue(v *transform.DataValue, field string) string { return fieldValue(v, field) }
