package mapping

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tally-hmis/tally/transform/metadata"
)

// Check compares the sets with the live metadata of the targets they deliver to: every set a
// source uses, against every target of that source whose metadata md holds (by target name).
// It reports unknown codes, data elements outside the rule's data set, option combos outside
// the element's category combo, attribute option combos outside the data set's attribute
// combo, period types that do not fit, transforms on non-numeric elements, objects that have
// no id in the scheme the target is sent, and rules that map onto the same target key while
// a source rejects duplicates — each at the rule's file and line — and, for ADX sources,
// what would keep their categories from resolving (CheckADX). Targets missing from md are
// skipped (the caller reports why their metadata could not be read).
//
// feeds[i] is the configuration's i-th source with its targets, and loc tells where the
// sources are written.
func (s *Sets) Check(feeds []Feed, md map[string]*metadata.Metadata, loc Locator) Problems {
	type use struct {
		set       *Set
		target    *Target
		dupReject []string // sources using the pair that reject duplicates
	}
	var uses []*use
	byPair := map[planKey]*use{}
	for i := range feeds {
		src := &feeds[i].Source
		set, ok := s.Set(src.Mapping)
		if !ok {
			continue
		}
		for j := range feeds[i].Targets {
			t := &feeds[i].Targets[j]
			if md[t.Name] == nil {
				continue
			}
			k := planKey{set, t.Name}
			u := byPair[k]
			if u == nil {
				u = &use{set: set, target: t}
				byPair[k] = u
				uses = append(uses, u)
			}
			if src.Duplicates == "" || src.Duplicates == "reject" {
				u.dupReject = append(u.dupReject, src.Name)
			}
		}
	}
	indexes := map[string]*Index{}
	var probs Problems
	for _, u := range uses {
		ix := indexes[u.target.Name]
		if ix == nil {
			ix = NewIndex(md[u.target.Name])
			indexes[u.target.Name] = ix
		}
		probs = append(probs, u.set.check(ix, u.target, u.dupReject)...)
	}
	probs = append(probs, s.CheckADX(feeds, md, loc)...)
	slices.SortStableFunc(probs, func(a, b Problem) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	return probs
}

// Check compares one set with the metadata of one target (see Sets.Check). It does not look
// for rules that share a target key, which depends on the sources' duplicates policy.
func (set *Set) Check(md *metadata.Metadata, target *Target) Problems {
	return set.check(NewIndex(md), target, nil)
}

var numericTypes = map[string]bool{
	"NUMBER": true, "INTEGER": true, "INTEGER_POSITIVE": true, "INTEGER_NEGATIVE": true,
	"INTEGER_ZERO_OR_POSITIVE": true, "PERCENTAGE": true, "UNIT_INTERVAL": true,
}

func (set *Set) check(ix *Index, t *Target, dupReject []string) Problems {
	var probs Problems
	p, err := newPlan(set, ix, t)
	if err != nil {
		return Problems{set.problem("target %q: %v", t.Name, err)}
	}
	at := func(r *Rule, format string, args ...any) {
		probs = append(probs, r.problem("target %q: rule %q: %s", t.Name, r.Source, fmt.Sprintf(format, args...)))
	}
	type targetKey struct{ de, coc, aoc string }
	seen := map[targetKey]*Rule{}
	for i := range p.rules {
		res := &p.rules[i]
		r := res.rule
		if res.err != "" {
			at(r, "%s", res.err)
			continue
		}
		if r.DataSet == "" && len(ix.DataSetsOf(res.deObj.ID)) == 0 {
			at(r, "data element %s is in no data set of the target", res.deObj.Label())
		}
		if set.Rollup && res.ptype == 0 {
			at(r, "cannot roll up: %s", res.ptypeWhy)
		}
		if res.ptype != 0 && set.SourcePeriodType != 0 && res.ptype != set.SourcePeriodType {
			sample := set.SourcePeriodType.PeriodOf(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
			_, ok := sample.RollUp(res.ptype)
			switch {
			case !set.Rollup && ok:
				at(r, "the source sends %s periods but data set %s is %s: set periods: rollup to sum them", set.SourcePeriodType, dataSetLabel(res.ds), res.ptype)
			case !set.Rollup:
				at(r, "the source sends %s periods but data set %s is %s", set.SourcePeriodType, dataSetLabel(res.ds), res.ptype)
			case !ok:
				at(r, "%s periods do not roll up into data set %s, which is %s", set.SourcePeriodType, dataSetLabel(res.ds), res.ptype)
			}
		}
		if r.transforms() {
			vt := res.deObj.ValueType
			switch {
			case vt != "" && !numericTypes[vt]:
				at(r, "scale/round on data element %s, whose value type %s is not a number", res.deObj.Label(), vt)
			case strings.HasPrefix(vt, "INTEGER") && (r.Round < 0 || r.Round > 0) && r.scale != nil && !r.scale.IsInt():
				at(r, "scale %s can make decimals, but data element %s takes %s values: add round: 0", r.Scale, res.deObj.Label(), vt)
			}
		}
		if len(dupReject) > 0 {
			k := targetKey{de: res.de, coc: "?", aoc: "?"}
			if r.COC != "" {
				k.coc = res.coc
			} else if res.combo.IsDefault() {
				k.coc = p.defaultCOC
			}
			if r.AOC != "" {
				k.aoc = res.aoc
			} else if res.attrCombo != nil && res.attrCombo.IsDefault() {
				k.aoc = p.defaultCOC
			}
			if k.coc != "?" && k.aoc != "?" {
				if first, dup := seen[k]; dup {
					at(r, "maps to the same data element and option combos as the rule at %s; two such values in one payload are refused as duplicates (source %s: set duplicates: sum or last to add them up or keep the last)",
						first.Origin, strings.Join(dupReject, ", "))
				} else {
					seen[k] = r
				}
			}
		}
	}
	for _, row := range set.OrgUnits.Table {
		if res := p.ouTable[row.Source]; res.err != "" {
			probs = append(probs, row.problem("target %q: org unit %q: %s", t.Name, row.Source, res.err))
		}
	}
	return probs
}

// IsNumericType reports whether a DHIS2 value type is numeric (ValueType.isNumeric):
// NUMBER, INTEGER and its signed variants, PERCENTAGE, UNIT_INTERVAL. An ADX value of any
// other type (TEXT, BOOLEAN, DATE, ...) is the text of its annotation (spec adx.md §5).
func IsNumericType(valueType string) bool { return numericTypes[valueType] }
