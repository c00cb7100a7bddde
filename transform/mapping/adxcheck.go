package mapping

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// maxComboProduct bounds the option combinations CheckADX enumerates for one category combo.
const maxComboProduct = 10000

// CheckADX reports what in the targets' metadata would keep an ADX source's categories from
// resolving, for every source with format: adx and a mapping set, against every target of
// it whose metadata md holds (by name). The category combos checked are those ADX values
// can name categories of: the target element's combo for each rule without coc, and the
// attribute combos of its data sets for each rule without aoc (the group's data set picks
// one); with unmapped: pass, those of every data set of the target. Each must have:
//
//   - categories and options with an id in the scheme the source writes them in (ADX reads
//     CODE unless the source's id_schemes.id_scheme says otherwise; adx.md §8), each id
//     naming one object only;
//   - category ids that are valid XML names, since ADX writes them as attribute names
//     (DHIS2 refuses the others, adx.md §7.1);
//   - an option combo for every combination of options: DHIS2 generates them, and a
//     missing one means its maintenance job has not run since an option was added.
//
// Problems are reported at the source's line (feeds[i] is the configuration's i-th source,
// written where loc says), once per combo. Sets.Check includes them.
func (s *Sets) CheckADX(feeds []Feed, md map[string]*metadata.Metadata, loc Locator) Problems {
	var probs Problems
	indexes := map[string]*Index{}
	for i := range feeds {
		src := &feeds[i].Source
		set, ok := s.Set(src.Mapping)
		passes := src.Unmapped == "pass"
		if src.Mapping == "" {
			// Without a set, the engine resolves ADX through the target's own ids, as a
			// set without rules under unmapped: pass does (Engine.MapWith).
			set, ok, passes = passThroughSet(), true, true
		}
		if src.Format != "adx" || !ok {
			continue
		}
		scheme, err := lookupScheme(src.IDSchemes.IDScheme)
		if err != nil {
			continue // config validation reports the scheme
		}
		scheme = scheme.Or(transform.SchemeCode)
		path := fmt.Sprintf("sources[%d]", i)
		for j := range feeds[i].Targets {
			t := &feeds[i].Targets[j]
			if md[t.Name] == nil {
				continue
			}
			ix := indexes[t.Name]
			if ix == nil {
				ix = NewIndex(md[t.Name])
				indexes[t.Name] = ix
			}
			p, err := newPlan(set, ix, t)
			if err != nil {
				continue // Check reports the target's schemes
			}
			for _, cc := range adxCombos(p, passes) {
				for _, msg := range checkADXCombo(ix, cc, scheme) {
					probs = append(probs, at(loc, path).problem("target %q: ADX source %q: category combo %s: %s", t.Name, src.Name, cc.Label(), msg))
				}
			}
		}
	}
	return probs
}

// adxCombos lists, once each, the non-default category combos whose categories ADX values
// mapped by p may name.
func adxCombos(p *plan, passes bool) []*metadata.CategoryCombo {
	ix := p.ix
	var out []*metadata.CategoryCombo
	seen := map[string]bool{}
	add := func(cc *metadata.CategoryCombo) {
		if cc != nil && !cc.IsDefault() && !seen[cc.ID] {
			seen[cc.ID] = true
			out = append(out, cc)
		}
	}
	attrCombo := func(ds *metadata.DataSet) *metadata.CategoryCombo {
		uid := ds.CategoryCombo.ID
		if uid == "" {
			uid = metadata.DefaultCategoryComboUID
		}
		cc, _ := ix.CategoryCombo(transform.SchemeUID, uid)
		return cc
	}
	for i := range p.rules {
		res := &p.rules[i]
		if res.err != "" {
			continue // Check reports the rule
		}
		dss := res.cands
		if res.ds != nil && res.rule.DataSet != "" {
			dss = []*metadata.DataSet{res.ds}
		}
		if res.rule.COC == "" {
			add(res.combo)
			for _, ds := range dss {
				add(ix.ElementCombo(res.deObj, ds))
			}
		}
		if res.rule.AOC == "" {
			for _, ds := range dss {
				add(attrCombo(ds))
			}
		}
	}
	if passes {
		for i := range ix.md.DataSets {
			ds := &ix.md.DataSets[i]
			add(attrCombo(ds))
			for _, dse := range ds.DataSetElements {
				if de, err := ix.DataElement(transform.SchemeUID, dse.DataElement.ID); err == nil {
					add(ix.ElementCombo(de, ds))
				}
			}
		}
	}
	return out
}

// checkADXCombo says what keeps ADX values from naming an option combo of cc by categories
// and options written in scheme.
func checkADXCombo(ix *Index, cc *metadata.CategoryCombo, scheme transform.IDScheme) []string {
	var msgs []string
	word := schemeWord(scheme)
	options := make([][]string, 0, len(cc.Categories))
	for _, ref := range cc.Categories {
		cat, err := ix.Category(transform.SchemeUID, ref.ID)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("category %s is not in the metadata", ref.ID))
			return msgs
		}
		id, ok := cat.IDIn(scheme)
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("category %s has no %s, so ADX values cannot name it", nameAndUID(&cat.Object), word))
		case !isXMLName(id):
			msgs = append(msgs, fmt.Sprintf("category %s is written %q by %s, which is not an XML name, so it cannot be an ADX attribute", nameAndUID(&cat.Object), id, word))
		default:
			if found, err := ix.Category(scheme, id); err != nil || found.ID != cat.ID {
				msgs = append(msgs, fmt.Sprintf("category %s: %s %q names more than one category", nameAndUID(&cat.Object), word, id))
			}
		}
		var opts []string
		for _, oref := range cat.CategoryOptions {
			opts = append(opts, oref.ID)
			opt, err := ix.CategoryOption(transform.SchemeUID, oref.ID)
			if err != nil {
				msgs = append(msgs, fmt.Sprintf("option %s of category %s is not in the metadata", oref.ID, cat.Label()))
				continue
			}
			oid, ok := opt.IDIn(scheme)
			switch {
			case !ok:
				msgs = append(msgs, fmt.Sprintf("option %s of category %s has no %s, so ADX values cannot name it", nameAndUID(&opt.Object), cat.Label(), word))
			default:
				if found, err := ix.CategoryOption(scheme, oid); err != nil || found.ID != opt.ID {
					msgs = append(msgs, fmt.Sprintf("option %s of category %s: %s %q names more than one category option", nameAndUID(&opt.Object), cat.Label(), word, oid))
				}
			}
		}
		options = append(options, opts)
	}
	if missing, n := missingCombos(ix, cc, options); n > 0 {
		more := ""
		if n > len(missing) {
			more = fmt.Sprintf(" and %d more", n-len(missing))
		}
		msgs = append(msgs, fmt.Sprintf("no option combo has the options %s%s; DHIS2 generates them: run its category option combo update (Data Administration, Maintenance)",
			strings.Join(missing, "; "), more))
	}
	return msgs
}

// missingCombos walks every combination of options (one per category) and returns up to
// three, as option labels, that no option combo of cc has, and how many there are.
func missingCombos(ix *Index, cc *metadata.CategoryCombo, options [][]string) ([]string, int) {
	product := 1
	for _, opts := range options {
		if len(opts) == 0 {
			return nil, 0
		}
		if product *= len(opts); product > maxComboProduct {
			return nil, 0
		}
	}
	var missing []string
	n := 0
	pick := make([]int, len(options))
	uids := make([]string, len(options))
	for {
		for i, opts := range options {
			uids[i] = opts[pick[i]]
		}
		if ix.ComboOf(cc.ID, uids) == nil {
			n++
			if len(missing) < 3 {
				labels := make([]string, len(uids))
				for i, uid := range uids {
					labels[i] = uid
					if o, err := ix.CategoryOption(transform.SchemeUID, uid); err == nil {
						labels[i] = o.Label()
					}
				}
				missing = append(missing, strings.Join(labels, ", "))
			}
		}
		i := len(pick) - 1
		for ; i >= 0; i-- {
			if pick[i]++; pick[i] < len(options[i]) {
				break
			}
			pick[i] = 0
		}
		if i < 0 {
			return missing, n
		}
	}
}

// isXMLName reports whether s can be an XML attribute name (without a namespace prefix): a
// letter or '_' first, then letters, digits, '-', '.', '_' or combining marks. DHIS2 checks
// category identifiers with XMLChar.isValidName (adx.md §7.1).
func isXMLName(s string) bool {
	for i, c := range s {
		switch {
		case unicode.IsLetter(c) || c == '_':
		case i > 0 && (unicode.IsDigit(c) || c == '-' || c == '.' || unicode.Is(unicode.Mn, c) || c == '·'):
		default:
			return false
		}
	}
	return s != ""
}

// nameAndUID names an object whose code is in question: its name (or code) and uid.
func nameAndUID(o *metadata.Object) string {
	if o.Name != "" {
		return fmt.Sprintf("%s (%s)", o.Name, o.ID)
	}
	return fmt.Sprintf("%s (%s)", o.Label(), o.ID)
}
