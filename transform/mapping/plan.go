package mapping

import (
	"fmt"
	"strings"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
	"github.com/tally-hmis/tally/transform/period"
)

// plan is a set resolved against one target: every rule's target objects looked up once in
// the target's metadata and written in the target's id schemes, so that mapping a value is
// a few map lookups. A plan is immutable and shared by concurrent Map calls; it is rebuilt
// when the target's metadata snapshot or id schemes change.
type plan struct {
	set     *Set
	ix      *Index // nil: no metadata, rule ids are passed as written
	schemes Schemes
	out     transform.IDSchemes // output schemes; OrgUnit is empty when it depends on the batch
	rules   []resolved
	// defaultCOC is DHIS2's default option combo in the output scheme ("" when unknown).
	defaultCOC string
	ouTable    map[string]ouTarget
}

// resolved is a rule (or a passed-through source id) resolved for one target.
type resolved struct {
	rule *Rule
	// err says why the rule cannot be applied on this target; values that match it are
	// refused with this reason and errCode, and Check reports it at the rule's line.
	err     string
	errCode string

	de               string // output ids
	coc, aoc         string
	cocUID, aocUID   string // the rule's combos by uid, for roll-up keys
	dsOut            string
	deObj            *metadata.DataElement
	ds               *metadata.DataSet       // the rule's data set, the batch's, or the only one holding the element
	cands            []*metadata.DataSet     // every data set holding the element
	combo            *metadata.CategoryCombo // the element's category combo (in ds)
	attrCombo        *metadata.CategoryCombo // the attribute combo of ds, or of all the element's data sets alike
	attrWhy          string                  // why attrCombo is nil
	ptype            period.Type             // the period type values roll up to
	ptypeWhy         string                  // why ptype is 0
	fromBatchDataSet bool                    // ds is the one the batch (or value) names
	scheme           transform.IDScheme      // how the rule names target objects
}

type ouTarget struct {
	id, uid string
	err     string
}

// outputSchemes are the schemes the target is sent: its configured id_schemes, UID where
// none is configured. The attribute option combo is always written in the category option
// combo scheme, because DHIS2 reads it with that scheme (attributeOptionComboIdScheme
// cannot be sent as a query parameter).
func outputSchemes(s Schemes) (transform.IDSchemes, error) {
	parse := func(key, v string) (transform.IDScheme, error) {
		sc, err := lookupScheme(v)
		if err != nil {
			return "", fmt.Errorf("target id_schemes.%s: %w", key, err)
		}
		return sc, nil
	}
	var out transform.IDSchemes
	base, err := parse("id_scheme", s.IDScheme)
	if err != nil {
		return out, err
	}
	base = base.Or(transform.SchemeUID)
	for _, f := range []struct {
		key, v string
		dst    *transform.IDScheme
	}{
		{"data_element", s.DataElement, &out.DataElement},
		{"org_unit", s.OrgUnit, &out.OrgUnit},
		{"category_option_combo", s.CategoryOptionCombo, &out.CategoryOptionCombo},
		{"data_set", s.DataSet, &out.DataSet},
	} {
		sc, err := parse(f.key, f.v)
		if err != nil {
			return out, err
		}
		*f.dst = sc.Or(base)
	}
	out.AttributeOptionCombo = out.CategoryOptionCombo
	return out, nil
}

func newPlan(set *Set, ix *Index, t *Target) (*plan, error) {
	p := &plan{set: set, ix: ix, schemes: t.IDSchemes, rules: make([]resolved, len(set.Rules))}
	if ix == nil {
		ts := set.TargetScheme
		p.out = transform.IDSchemes{DataElement: ts, CategoryOptionCombo: ts, AttributeOptionCombo: ts, DataSet: ts}
		switch {
		case set.OrgUnits.Table != nil:
			p.out.OrgUnit = set.OrgUnits.TableScheme
		case set.OrgUnits.Scheme != "":
			p.out.OrgUnit = set.OrgUnits.Scheme
		}
		for i, r := range set.Rules {
			p.rules[i] = resolved{rule: r, de: r.DataElement, coc: r.COC, aoc: r.AOC, dsOut: r.DataSet,
				ptypeWhy: "periods: rollup needs the target's metadata to know the data set's period type"}
		}
		if set.OrgUnits.Table != nil {
			p.ouTable = make(map[string]ouTarget, len(set.OrgUnits.Table))
			for _, row := range set.OrgUnits.Table {
				p.ouTable[row.Source] = ouTarget{id: row.Target}
			}
		}
		return p, nil
	}
	out, err := outputSchemes(t.IDSchemes)
	if err != nil {
		return nil, err
	}
	p.out = out
	if coc, err := ix.CategoryOptionCombo(transform.SchemeUID, metadata.DefaultCategoryOptionComboUID); err == nil {
		p.defaultCOC, _ = coc.IDIn(out.CategoryOptionCombo)
	}
	for i, r := range set.Rules {
		p.rules[i] = p.resolve(r, set.TargetScheme, t.Name)
	}
	if set.OrgUnits.Table != nil {
		p.ouTable = make(map[string]ouTarget, len(set.OrgUnits.Table))
		for _, row := range set.OrgUnits.Table {
			var res ouTarget
			ou, err := ix.OrgUnit(set.OrgUnits.TableScheme, row.Target)
			switch {
			case err != nil:
				res.err = fmt.Sprintf("%v in target %q", err, t.Name)
			default:
				var ok bool
				res.uid = ou.ID
				if res.id, ok = ou.IDIn(out.OrgUnit); !ok {
					res.err = fmt.Sprintf("org unit %s has no %s, the scheme target %q is sent org units in", ou.Label(), schemeWord(out.OrgUnit), t.Name)
				}
			}
			p.ouTable[row.Source] = res
		}
	}
	return p, nil
}

// DHIS2's error codes for the failures mapping refuses values for (ErrorCode.java, spec
// dhis2.md §1.5 and §1.6).
const (
	codeDataElement  = "E7610" // data element not found
	codePeriod       = "E7611" // period not valid
	codeOrgUnit      = "E7612" // org unit not found
	codeCOC          = "E7613" // category option combo not found
	codeAOC          = "E7615" // attribute option combo not found
	codeValueType    = "E7619" // value does not match the value type
	codeCOCRequired  = "E7630" // category option combo required
	codeAOCRequired  = "E7631" // attribute option combo required
	codePeriodType   = "E7632" // period type not valid for the data element
	codeNotInDataSet = "E7633" // data element not part of the data set
	codeCOCNotInCC   = "E7634" // option combo not in the element's category combo
	codeAOCNotInCC   = "E7635" // attribute option combo not in the data sets' combo
	codeNotAssigned  = "E7636" // org unit not assigned to a data set of the element
	codeSameKey      = "E8128" // values of one payload affect the same data value (2.43+)
)

// resolve looks up what a rule names, in scheme, in the target's metadata. Failures are
// kept in resolved.err: a rule the target cannot take fails the values that match it, not
// the others.
func (p *plan) resolve(r *Rule, scheme transform.IDScheme, target string) resolved {
	ix, out := p.ix, p.out
	res := resolved{rule: r}
	de, err := ix.DataElement(scheme, r.DataElement)
	if err != nil {
		return failed(r, codeDataElement, "%v in target %q", err, target)
	}
	res.deObj = de
	var ok bool
	if res.de, ok = de.IDIn(out.DataElement); !ok {
		return noID(r, codeDataElement, "data element", &de.Object, out.DataElement, target)
	}
	var ds *metadata.DataSet
	if r.DataSet != "" {
		if ds, err = ix.DataSet(scheme, r.DataSet); err != nil {
			return failed(r, codeNotInDataSet, "%v in target %q", err, target)
		}
		if !ds.HasElement(de.ID) {
			return failed(r, codeNotInDataSet, "data element %s is not in data set %s", de.Label(), ds.Label())
		}
	}
	return p.place(res, ds, scheme, target)
}

func failed(r *Rule, code, format string, args ...any) resolved {
	return resolved{rule: r, errCode: code, err: fmt.Sprintf(format, args...)}
}

func noID(r *Rule, code, kind string, o *metadata.Object, sc transform.IDScheme, target string) resolved {
	return failed(r, code, "%s %s has no %s, the scheme target %q is sent %ss in", kind, o.Label(), schemeWord(sc), target, kind)
}

// place completes a rule whose data element res has found, in data set ds: nil lets the
// element's data sets decide (the only one, or what they all share). The batch's data set
// calls it again with that data set, which is how DHIS2 chooses the attribute combo of an
// ADX group (adx.md §7.1). The rule's own combos are checked against the combos ds gives.
func (p *plan) place(res resolved, ds *metadata.DataSet, scheme transform.IDScheme, target string) resolved {
	ix, out, r, de := p.ix, p.out, res.rule, res.deObj
	res.scheme = scheme
	res.cands = ix.DataSetsOf(de.ID)
	if ds == nil && len(res.cands) == 1 {
		ds = res.cands[0]
	}
	res.ds = ds
	var err error
	if ds == nil {
		res.attrCombo, res.attrWhy = p.sharedAttrCombo(de, res.cands)
		res.ptype, res.ptypeWhy = sharedPeriodType(de, res.cands)
	} else {
		res.dsOut, _ = ds.IDIn(out.DataSet)
		uid := ds.CategoryCombo.ID
		if uid == "" {
			uid = metadata.DefaultCategoryComboUID
		}
		if res.attrCombo, err = ix.CategoryCombo(transform.SchemeUID, uid); err != nil {
			res.attrWhy = fmt.Sprintf("the attribute category combo of data set %s is not in the metadata of target %q", ds.Label(), target)
		}
		if res.ptype, err = period.TypeByName(ds.PeriodType); err != nil {
			res.ptypeWhy = fmt.Sprintf("data set %s has period type %q, which Tally does not know", ds.Label(), ds.PeriodType)
		}
	}
	if res.combo = ix.ElementCombo(de, ds); res.combo == nil {
		return failed(r, codeCOC, "the category combo of data element %s is not in the metadata of target %q", de.Label(), target)
	}
	var ok bool
	if r.COC != "" {
		coc, err := ix.CategoryOptionCombo(scheme, r.COC)
		if err != nil {
			return failed(r, codeCOC, "%v in target %q", err, target)
		}
		if !ix.InCombo(coc, res.combo.ID) {
			return failed(r, codeCOCNotInCC, "category option combo %s is not in category combo %s of data element %s", coc.Label(), res.combo.Label(), de.Label())
		}
		if res.coc, ok = coc.IDIn(out.CategoryOptionCombo); !ok {
			return noID(r, codeCOC, "category option combo", &coc.Object, out.CategoryOptionCombo, target)
		}
		res.cocUID = coc.ID
	}
	if r.AOC != "" {
		aoc, err := ix.CategoryOptionCombo(scheme, r.AOC)
		if err != nil {
			return failed(r, codeAOC, "%v in target %q", err, target)
		}
		if res.attrCombo != nil && !ix.InCombo(aoc, res.attrCombo.ID) {
			return failed(r, codeAOCNotInCC, "attribute option combo %s is not in attribute combo %s of data set %s", aoc.Label(), res.attrCombo.Label(), dataSetLabel(res.ds))
		}
		if res.aoc, ok = aoc.IDIn(out.AttributeOptionCombo); !ok {
			return noID(r, codeAOC, "category option combo", &aoc.Object, out.AttributeOptionCombo, target)
		}
		res.aocUID = aoc.ID
	}
	return res
}

func dataSetLabel(ds *metadata.DataSet) string {
	if ds == nil {
		return "(the element's data sets)"
	}
	return ds.Label()
}

// sharedAttrCombo is the attribute combo of a data element that is in several data sets
// (or none): the one they all share, or nil with the reason.
func (p *plan) sharedAttrCombo(de *metadata.DataElement, cands []*metadata.DataSet) (*metadata.CategoryCombo, string) {
	if len(cands) == 0 {
		return nil, fmt.Sprintf("data element %s is in no data set, so no attribute combo applies", de.Label())
	}
	uid := ""
	for i, ds := range cands {
		c := ds.CategoryCombo.ID
		if c == "" {
			c = metadata.DefaultCategoryComboUID
		}
		if i > 0 && c != uid {
			return nil, fmt.Sprintf("data element %s is in data sets %s with different attribute combos; name one with data_set", de.Label(), dataSetList(cands))
		}
		uid = c
	}
	cc, err := p.ix.CategoryCombo(transform.SchemeUID, uid)
	if err != nil {
		return nil, fmt.Sprintf("attribute category combo %s is not in the metadata", uid)
	}
	return cc, ""
}

func sharedPeriodType(de *metadata.DataElement, cands []*metadata.DataSet) (period.Type, string) {
	if len(cands) == 0 {
		return 0, fmt.Sprintf("data element %s is in no data set, so there is no period type to roll up to", de.Label())
	}
	var t period.Type
	for i, ds := range cands {
		pt, err := period.TypeByName(ds.PeriodType)
		if err != nil {
			return 0, fmt.Sprintf("data set %s has period type %q, which Tally does not know", ds.Label(), ds.PeriodType)
		}
		if i > 0 && pt != t {
			return 0, fmt.Sprintf("data element %s is in data sets %s with different period types; name one with data_set", de.Label(), dataSetList(cands))
		}
		t = pt
	}
	return t, ""
}

func dataSetList(dss []*metadata.DataSet) string {
	names := make([]string, len(dss))
	for i, ds := range dss {
		names[i] = fmt.Sprintf("%s (%s)", ds.Label(), ds.PeriodType)
	}
	return strings.Join(names, ", ")
}
