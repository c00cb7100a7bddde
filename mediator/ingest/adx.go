package ingest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tally-hmis/tally/adapters/adx"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/metadata"
)

// ADX as DHIS2 reads it, decided by the targets (spec adx.md §5, §7, §8):
//
//   - A value of a data element whose value type is not numeric is the text of its
//     <annotation>, which it must have; the value attribute is ignored. The value types are
//     the targets' (through the source's mapping rules when it has a set). From the 2.43 era
//     an annotation is the value of every data element, and the default id scheme is UID
//     rather than CODE (DataEntryInput.fromAdxXml).
//   - The categories and attributes of a value are resolved to option combos in the
//     target's metadata, by the mapper (a source without a mapping set gets the engine's
//     resolution through the target's own ids). So that a payload is never accepted and
//     then dead-lettered for what can be known now, a source without a mapping set has
//     each such value resolved at ingest too: a value that resolves in none of its targets
//     is refused there, with the reason, as DHIS2's ADX reader refuses it ({"object":
//     "ADX Error"}).
//
// The targets' metadata comes from the metadata cache (read once, kept in tally_state); a
// target whose metadata was never read and cannot be read now makes the request 503.

// adxSupport is what the ADX reader needs from a source's targets. The metadata is read
// when the first value needs it, so that an empty message needs none.
type adxSupport struct {
	s       *Ingester
	ctx     context.Context
	src     *config.Source
	targets []*config.Target
	loaded  bool
	err     error // a target's metadata could not be read: the request is 503
	ixs     []*mapping.Index
	// rules maps the source ids of the source's mapping set to target data elements (in
	// the set's target scheme); nil without a set.
	rules  map[string][]string
	scheme transform.IDScheme // the set's target scheme
}

func (s *Ingester) adxSupportFor(ctx context.Context, src *config.Source) *adxSupport {
	return &adxSupport{s: s, ctx: ctx, src: src, targets: s.cfg.TargetsOf(src)}
}

// load reads the targets' metadata once; the parser calls it from one goroutine.
func (a *adxSupport) load() error {
	if a.loaded {
		return a.err
	}
	a.loaded = true
	for _, t := range a.targets {
		ix, err := a.s.mapping.Metadata().Index(a.ctx, t.Name)
		if err != nil {
			a.err = &RequestError{Status: http.StatusServiceUnavailable, Reason: "unavailable",
				Msg: fmt.Sprintf("ADX is read with the target's metadata (value types, categories), and target %s's cannot be read: %v; retry later", t.Name, err)}
			return a.err
		}
		a.ixs = append(a.ixs, ix)
	}
	if set, ok := a.s.mapping.Engine().Sets().Set(a.src.Mapping); ok && a.src.Mapping != "" {
		a.rules, a.scheme = map[string][]string{}, set.TargetScheme
		for _, r := range set.Rules {
			a.rules[r.Source] = append(a.rules[r.Source], r.DataElement)
		}
	}
	return nil
}

// decode reads an ADX message into sink with the targets' rules: the value types, and for
// a source without a mapping set the resolution of each value's categories.
func (a *adxSupport) decode(r io.Reader, sink transform.Sink, o adx.Options) error {
	if a.src.Mapping == "" {
		sink = &adxResolver{Sink: sink, a: a, base: o.Schemes}
	}
	err := adx.Decode(r, sink, o)
	if a.err != nil {
		return a.err
	}
	return err
}

// isText returns adx.Options.IsText for data elements written in scheme: true when the
// first target that knows the element (through the rules, when the source has a set) gives
// it a value type that is not numeric.
func (a *adxSupport) isText(scheme transform.IDScheme) func(string) bool {
	return func(de string) bool {
		if a.load() != nil {
			return false
		}
		for _, ix := range a.ixs {
			if obj := a.targetElement(ix, scheme, de); obj != nil {
				return !mapping.IsNumericType(obj.ValueType)
			}
		}
		return false
	}
}

func (a *adxSupport) targetElement(ix *mapping.Index, scheme transform.IDScheme, de string) *metadata.DataElement {
	if a.rules != nil {
		for _, id := range a.rules[de] {
			if obj, err := ix.DataElement(a.scheme, id); err == nil {
				return obj
			}
		}
		if a.src.Unmapped != "pass" {
			return nil
		}
	}
	obj, err := ix.DataElement(scheme, de)
	if err != nil {
		return nil
	}
	return obj
}

// adxOptions are the ADX reader's options for a request of the given era.
func (a *adxSupport) adxOptions(schemes transform.IDSchemes, release int) adx.Options {
	o := adx.Options{Schemes: schemes}
	if release >= 43 {
		o.AnnotationIsValue = true
		o.Schemes.IDScheme = o.Schemes.IDScheme.Or(transform.SchemeUID)
	}
	o.IsText = a.isText(o.Schemes.DataElement.Or(o.Schemes.IDScheme).Or(transform.SchemeCode))
	return o
}

// adxResolver refuses, at ingest, the values of a source without a mapping set whose
// categories or attributes resolve in none of its targets.
type adxResolver struct {
	transform.Sink
	a     *adxSupport
	base  transform.IDSchemes
	group transform.Group
}

func (r *adxResolver) Group(g transform.Group) error {
	r.group = g
	return r.Sink.Group(g)
}

func (r *adxResolver) Value(v *transform.DataValue, at transform.Locator) error {
	if len(v.Categories) == 0 && len(v.Attributes) == 0 {
		return r.Sink.Value(v, at)
	}
	field, id, why := r.unresolved(v)
	if why == "" {
		return r.Sink.Value(v, at)
	}
	bad := &transform.InputError{Index: 0, Field: field, Value: id, Expected: why,
		Conflict: &transform.ImportConflict{Object: "ADX Error", Value: why}}
	return r.Reject(bad, at)
}

// Reject passes a parser's own findings on, as deleting does.
func (r *adxResolver) Reject(e *transform.InputError, at transform.Locator) error {
	if rj, ok := r.Sink.(transform.Rejecter); ok {
		return rj.Reject(e, at)
	}
	return e
}

// unresolved maps the value alone for each target and says why it resolves in none, or
// "" when it resolves in one.
func (r *adxResolver) unresolved(v *transform.DataValue) (field, id, why string) {
	if r.a.load() != nil {
		return "", "", "" // the request is refused as a whole (adxSupport.decode)
	}
	one := *v
	one.Index = 0
	b := &transform.Batch{Source: r.a.src.Name, Schemes: r.base.Overlay(r.group.Schemes), DataSet: r.group.DataSet,
		Values: []transform.DataValue{one}}
	var reasons []string
	for _, t := range r.a.targets {
		m, err := r.a.s.mapping.Engine().MapWith(r.a.ctx, b, pipeline.MappingSource(r.a.src), pipeline.MappingTarget(t), mapping.Options{})
		switch {
		case err != nil:
			reasons = append(reasons, fmt.Sprintf("target %s: %v", t.Name, err))
		case len(m.Batch.Values) > 0:
			return "", "", ""
		case len(m.Refused) > 0:
			field, id = m.Refused[0].Field, mapping.FieldValue(&one, m.Refused[0].Field)
			reasons = append(reasons, fmt.Sprintf("target %s: %s", t.Name, m.Refused[0].Reason))
		case len(m.Unmapped) > 0:
			field, id = m.Unmapped[0].Field, m.Unmapped[0].Value
			reasons = append(reasons, fmt.Sprintf("target %s: %s", t.Name, m.Unmapped[0].Reason))
		}
	}
	if field == "" {
		field, id = "categories", mapping.FieldValue(&one, "categories")
	}
	return field, id, strings.Join(reasons, "; ")
}
