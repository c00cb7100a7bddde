package dhis2test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// 2.43+ "data entry" pipeline (spec dhis2.md §1.6, §2.2, §2.4 D, §5;
// conformance README §3 and §6.2):
//   - the data set (header, or detected per data element, E8003) must be
//     usable with every data element, period, org unit, AOC and COC
//     (E8020–E8024), else the whole set is rejected;
//   - then duplicate keys in one payload reject the whole set (E8128);
//   - value-level problems (E8121–E8123) skip the value (WARNING/ERROR);
//   - atomic=true turns any value-level problem into a rejection (E8000);
//   - the deletion scope removes stored values first (counted as deleted);
//   - every written value counts as "updated" (DELETE strategy: "deleted");
//     strategy CREATE/UPDATE and zeroIsSignificant no longer matter.

type pipelineValue struct {
	raw      rawValue
	de       *DataElement
	pe       period
	peOK     bool
	ou       string
	coc, aoc string
	ds       *DataSet
}

func nullable(s string) string {
	if strings.TrimSpace(s) == "" {
		return "null"
	}
	return s
}

func javaList(items []string) string { return "[" + strings.Join(items, ", ") + "]" }

func (imp *importer) runPipeline() {
	m, p, sum := imp.meta, imp.p, imp.sum
	values := make([]rawValue, len(p.values))
	for i, rv := range p.values {
		if p.period != "" {
			rv.period = p.period
		}
		if p.orgUnit != "" {
			rv.orgUnit = p.orgUnit
		}
		if strings.TrimSpace(p.aoc) != "" {
			rv.aoc = p.aoc
		}
		values[i] = rv
	}

	// resolve identifiers
	pvs := make([]*pipelineValue, len(values))
	for i, rv := range values {
		pv := &pipelineValue{raw: rv}
		if uid := m.find(kindDataElement, imp.sch.dataElement, rv.dataElement); uid != "" {
			pv.de = m.idx.de[uid]
		}
		pv.pe, pv.peOK = imp.v.parsePeriod(strings.TrimSpace(rv.period))
		pv.ou = m.find(kindOrgUnit, imp.sch.orgUnit, rv.orgUnit)
		switch {
		case rv.cocUID != "":
			pv.coc = rv.cocUID
		case strings.TrimSpace(rv.coc) == "":
			pv.coc = DefaultCategoryOptionComboUID
		default:
			pv.coc = m.find(kindCOC, imp.sch.coc, rv.coc)
		}
		switch {
		case rv.aocUID != "":
			pv.aoc = rv.aocUID
		case strings.TrimSpace(rv.aoc) == "":
			pv.aoc = DefaultCategoryOptionComboUID
		default:
			pv.aoc = m.find(kindCOC, imp.sch.aoc, rv.aoc)
		}
		if pv.de != nil && pv.peOK && pv.ou != "" && pv.coc != "" && pv.aoc != "" {
			imp.receive(Key{pv.de.ID, pv.pe.ID, pv.ou, pv.coc, pv.aoc})
		}
		pvs[i] = pv
	}

	// data set: header, or detected per data element
	var groups [][]*pipelineValue
	var groupDS []*DataSet
	if strings.TrimSpace(p.dataSet) != "" {
		uid := m.find(kindDataSet, imp.sch.dataSet, p.dataSet)
		if uid == "" {
			imp.abortPipeline(imp.pipelineConflict("E8001", -1, p.dataSet), len(values))
			return
		}
		groups, groupDS = [][]*pipelineValue{pvs}, []*DataSet{m.idx.ds[uid]}
	} else if len(pvs) > 0 {
		var undetected []string
		byDS := map[string]int{}
		for _, pv := range pvs {
			d := m.idx.ds[pv.raw.dataSetUID] // ADX group data set
			if d == nil && pv.de != nil && len(m.idx.dsByDE[pv.de.ID]) > 0 {
				d = m.idx.dsByDE[pv.de.ID][0]
			}
			if d == nil {
				if !slices.Contains(undetected, pv.raw.dataElement) {
					undetected = append(undetected, pv.raw.dataElement)
				}
				continue
			}
			gi, ok := byDS[d.ID]
			if !ok {
				gi = len(groups)
				byDS[d.ID] = gi
				groups = append(groups, nil)
				groupDS = append(groupDS, d)
			}
			groups[gi] = append(groups[gi], pv)
		}
		if len(undetected) > 0 {
			imp.abortPipeline(imp.pipelineConflict("E8003", -1, javaList(undetected)), len(values))
			return
		}
	}
	for gi, g := range groups {
		if c := imp.checkGroup(groupDS[gi], g); c != nil {
			imp.abortPipeline(c, len(values))
			return
		}
	}

	// E8128: several values for the same key
	type dup struct {
		key     string
		indexes []int
	}
	seen := map[string]*dup{}
	var order []*dup
	for _, rv := range values {
		coc, aoc := rv.coc, rv.aoc
		if rv.cocUID != "" { // ADX category attributes, already resolved
			coc = rv.cocUID
		}
		if rv.aocUID != "" {
			aoc = rv.aocUID
		}
		k := fmt.Sprintf("DataValueKey[dataElement=%s, orgUnit=%s, categoryOptionCombo=%s, attributeOptionCombo=%s, period=%s]",
			nullable(rv.dataElement), nullable(rv.orgUnit), nullable(coc), nullable(aoc), nullable(rv.period))
		if d, ok := seen[k]; ok {
			d.indexes = append(d.indexes, rv.index)
			continue
		}
		d := &dup{key: k, indexes: []int{rv.index}}
		seen[k] = d
		order = append(order, d)
	}
	for _, d := range order {
		if len(d.indexes) > 1 {
			idx := make([]string, len(d.indexes))
			for i, n := range d.indexes {
				idx[i] = strconv.Itoa(n)
			}
			c := imp.pipelineConflict("E8128", -1, javaList(idx), d.key)
			c.indexes = d.indexes
			imp.abortPipeline(c, len(values))
			return
		}
	}

	// deletion scope (validated before any value is written)
	var scopeKeys []Key
	if p.deletion != nil {
		keys, c := imp.deletionScope(p.deletion)
		if c != nil {
			imp.abortPipeline(c, len(values))
			return
		}
		scopeKeys = keys
	}

	// value-level validation
	var valid []*pipelineValue
	for _, pv := range pvs {
		if c := imp.checkValue(pv); c != nil {
			sum.add(c)
			sum.count.ignored++
			sum.reject(pv.raw.index)
			continue
		}
		valid = append(valid, pv)
	}
	if imp.req.opts.atomic && sum.occurrences > 0 {
		n := sum.occurrences
		sum.add(imp.pipelineConflict("E8000", -1, strconv.Itoa(n)))
		sum.status = "ERROR"
		sum.description = "Import process was aborted"
		for _, pv := range pvs {
			sum.reject(pv.raw.index)
		}
		sum.count = importCount{ignored: len(values)}
		return
	}

	for _, k := range scopeKeys {
		if !imp.dryRun {
			if cur, ok := imp.srv.store.get(k); ok && !cur.Deleted {
				imp.del(k, cur)
			}
		}
		sum.count.deleted++
	}
	for _, pv := range valid {
		imp.upsert(pv)
	}
	switch {
	case sum.occurrences == 0:
		sum.status = "SUCCESS"
	case sum.count.updated+sum.count.deleted > 0:
		sum.status = "WARNING"
	default:
		sum.status = "ERROR"
	}
}

// pipelineConflict builds a 2.43 conflict; args become objects.args.
func (imp *importer) pipelineConflict(code string, index int, args ...string) *conflict {
	c := &conflict{errorCode: code, message: formatMessage(code, args...), args: args}
	if index >= 0 {
		c.indexes = []int{index}
	}
	return c
}

func (imp *importer) abortPipeline(c *conflict, n int) {
	sum := imp.sum
	sum.status = "ERROR"
	sum.description = "Import process was aborted"
	sum.add(c)
	sum.count = importCount{ignored: n}
	for i := range n {
		sum.reject(i)
	}
}

// checkGroup validates a group against its data set (E8020–E8024), in the
// order data elements, periods, org units, AOCs, COCs; the first failing
// check rejects the set.
func (imp *importer) checkGroup(ds *DataSet, g []*pipelineValue) *conflict {
	m := imp.meta
	var bad []string
	collect := func(ok func(*pipelineValue) bool, id func(*pipelineValue) string) []string {
		bad = nil
		for _, pv := range g {
			if !ok(pv) && !slices.Contains(bad, id(pv)) {
				bad = append(bad, id(pv))
			}
		}
		return bad
	}
	if b := collect(func(pv *pipelineValue) bool { return pv.de != nil && slices.Contains(ds.DataElements, pv.de.ID) },
		func(pv *pipelineValue) string { return pv.raw.dataElement }); len(b) > 0 {
		return imp.pipelineConflict("E8020", -1, ds.ID, javaList(b))
	}
	if b := collect(func(pv *pipelineValue) bool { return pv.peOK && pv.pe.Type == ds.PeriodType },
		func(pv *pipelineValue) string { return pv.raw.period }); len(b) > 0 {
		return imp.pipelineConflict("E8021", -1, ds.ID, javaList(b))
	}
	if b := collect(func(pv *pipelineValue) bool { return pv.ou != "" && m.idx.dsOrgUnits[ds.ID][pv.ou] },
		func(pv *pipelineValue) string { return pv.raw.orgUnit }); len(b) > 0 {
		return imp.pipelineConflict("E8022", -1, ds.ID, javaList(b))
	}
	if b := collect(func(pv *pipelineValue) bool {
		return pv.aoc != "" && slices.Contains(m.idx.cocByCombo[ds.CategoryCombo], pv.aoc)
	}, func(pv *pipelineValue) string { return nullable(pv.raw.aoc) }); len(b) > 0 {
		return imp.pipelineConflict("E8023", -1, ds.ID, javaList(b))
	}
	for _, deID := range ds.DataElements {
		de := m.idx.de[deID]
		var bad []string
		for _, pv := range g {
			if pv.de == nil || pv.de.ID != deID {
				continue
			}
			if pv.coc == "" || !slices.Contains(m.idx.cocByCombo[de.CategoryCombo], pv.coc) {
				if id := nullable(pv.raw.coc); !slices.Contains(bad, id) {
					bad = append(bad, id)
				}
			}
		}
		if len(bad) > 0 {
			return imp.pipelineConflict("E8024", -1, ds.ID, de.ID, javaList(bad))
		}
	}
	for _, pv := range g {
		pv.ds = ds
	}
	return nil
}

// checkValue runs the value-level checks (E8121–E8123) and normalises the value.
func (imp *importer) checkValue(pv *pipelineValue) *conflict {
	rv, i := pv.raw, pv.raw.index
	idx := strconv.Itoa(i)
	deleted := rv.deleted != nil && *rv.deleted
	value, comment := "", ""
	if rv.value != nil {
		value = strings.TrimSpace(*rv.value)
	}
	if rv.comment != nil {
		comment = strings.TrimSpace(*rv.comment)
	}
	if value == "" && comment == "" && !deleted && imp.strategy != "DELETE" {
		return imp.pipelineConflict("E8121", i, idx)
	}
	if value != "" {
		norm := normaliseValue(pv.de.ValueType, value)
		if valueError(pv.de.ValueType, norm) != "" {
			return imp.pipelineConflict("E8122", i, idx, value, pv.de.ValueType)
		}
		if len(pv.de.OptionSet) > 0 && !slices.Contains(pv.de.OptionSet, norm) {
			return imp.pipelineConflict("E8123", i, idx, value)
		}
		v := norm
		pv.raw.value = &v
	}
	return nil
}

// upsert writes one validated value with 2.43 counting.
func (imp *importer) upsert(pv *pipelineValue) {
	sum := imp.sum
	key := Key{pv.de.ID, pv.pe.ID, pv.ou, pv.coc, pv.aoc}
	existing, exists := imp.srv.store.get(key)
	live := exists && !existing.Deleted
	deleted := pv.raw.deleted != nil && *pv.raw.deleted
	if imp.strategy == "DELETE" || deleted {
		if live {
			imp.del(key, existing)
		}
		if imp.strategy == "DELETE" {
			sum.count.deleted++
		} else {
			sum.count.updated++
		}
		return
	}
	value, comment := "", ""
	if pv.raw.value != nil {
		value = *pv.raw.value
	}
	if pv.raw.comment != nil {
		comment = strings.TrimSpace(*pv.raw.comment)
	}
	storedBy := pv.raw.storedBy
	if strings.TrimSpace(storedBy) == "" {
		storedBy = imp.req.user.Username
	}
	followup := pv.raw.followup != nil && *pv.raw.followup
	nv := Value{Key: key, Value: value, Comment: comment, FollowUp: followup, StoredBy: storedBy,
		Created: imp.now, LastUpdated: imp.now}
	w := Write{Operation: OpCreate, Audited: true}
	switch {
	case live:
		nv.Created = existing.Created
		w = Write{Operation: OpUpdate, OldValue: existing.Value, OldComment: existing.Comment, Audited: true}
	case exists:
		nv.Created = existing.Created
		w = Write{Operation: OpRestore, OldValue: existing.Value, OldComment: existing.Comment, Audited: true}
	}
	imp.put(nv, w)
	sum.count.updated++
}

// deletionScope validates a deletion block and returns the stored keys in
// scope (spec dhis2.md §5).
func (imp *importer) deletionScope(d *deletionScope) ([]Key, *conflict) {
	m := imp.meta
	var ous, pes []string
	for _, ref := range d.OrgUnits {
		uid := m.find(kindOrgUnit, imp.sch.orgUnit, ref)
		if uid == "" {
			return nil, imp.pipelineConflict("E8034", -1, "org unit", ref)
		}
		ous = append(ous, uid)
	}
	for _, ref := range d.Periods {
		pe, ok := imp.v.parsePeriod(ref)
		if !ok {
			return nil, imp.pipelineConflict("E8034", -1, "period", ref)
		}
		pes = append(pes, pe.ID)
	}
	type elem struct{ de, coc, aoc string }
	var elems []elem
	for _, e := range d.Elements {
		el := elem{de: m.find(kindDataElement, imp.sch.dataElement, e.DataElement)}
		if el.de == "" {
			return nil, imp.pipelineConflict("E8034", -1, "data element", e.DataElement)
		}
		if e.CategoryOptionCombo != "" {
			if el.coc = m.find(kindCOC, imp.sch.coc, e.CategoryOptionCombo); el.coc == "" {
				return nil, imp.pipelineConflict("E8034", -1, "category option combo", e.CategoryOptionCombo)
			}
		}
		if e.AttributeOptionCombo != "" {
			if el.aoc = m.find(kindCOC, imp.sch.aoc, e.AttributeOptionCombo); el.aoc == "" {
				return nil, imp.pipelineConflict("E8034", -1, "attribute option combo", e.AttributeOptionCombo)
			}
		}
		elems = append(elems, el)
	}
	var keys []Key
	for _, v := range imp.srv.store.Values() {
		if !slices.Contains(ous, v.OrgUnit) || !slices.Contains(pes, v.Period) {
			continue
		}
		for _, e := range elems {
			if e.de == v.DataElement && (e.coc == "" || e.coc == v.CategoryOptionCombo) && (e.aoc == "" || e.aoc == v.AttributeOptionCombo) {
				keys = append(keys, v.Key)
				break
			}
		}
	}
	return keys, nil
}
