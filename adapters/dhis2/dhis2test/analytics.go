package dhis2test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	periods "github.com/tally-hmis/tally/transform/period"
)

// GET /api/analytics/dataValueSet(.json|.xml|.csv): aggregated data in the
// data value set format (spec dhis2.md §6), computed from the fact table
// (facts.go) and the store's live numeric data values, which count as facts
// of their data element and combos (what DHIS2's analytics data value table
// holds; the emulator reads them live, without waiting for an analytics
// table run).
//
// Request (§6.1): dimension=dx:…, dimension=pe:…, dimension=ou:… are
// required (E7117, E7118, E7119). dx items are program indicators, data
// elements (totals over all combos), data element operands "de.coc" and
// DE_GROUP-<id>; pe items are period ids of any type and relative periods
// (LAST_12_MONTHS, THIS_YEAR, ...) resolved by transform/period.Relative
// against the server clock or relativePeriodDate; ou items are org units,
// USER_ORGUNIT, USER_ORGUNIT_CHILDREN, USER_ORGUNIT_GRANDCHILDREN and LEVEL-n
// (with org units as boundaries: "ou:KL;LEVEL-3" is the level-3 units under
// KL; LEVEL-n alone uses the user's org units as boundary). Category
// dimensions and filter=<category>:<options> restrict the facts by the
// options of their combos (co and ao are ignored); filter on dx/pe/ou while also a dimension is E7103; an unknown
// dimension is E7125; a dimension left without valid items is E7124.
// inputIdScheme (UID, CODE, NAME, ATTRIBUTE:<uid>) applies to dx, ou and
// filter items; userOrgUnit replaces the user's org units. An org unit
// outside the user's hierarchy is E7120. approvalLevel and other analytics
// parameters are accepted and ignored.
//
// Aggregation: the facts of a dx item whose period rolls up into the
// requested period (transform/period RollUp: same period, or a shorter one
// that DHIS2 analytics counts in it) and whose org unit is the requested org
// unit or below it are combined with aggregationType: SUM (default), COUNT,
// AVERAGE, MIN or MAX (plain functions of the fact values; DHIS2's
// hierarchical AVERAGE_SUM_ORG_UNIT and the like are not modelled). Cells
// without facts, and cells whose value is zero, produce no row (§12).
//
// Rows (§6.2): dataElement is the dx item; program indicators carry their
// aggregateExportCategoryOptionCombo and aggregateExportAttributeOptionCombo
// verbatim (they are strings in DHIS2, untouched by output id schemes); plain
// data elements carry no combos; an operand carries its COC. value is a
// string: rounded like DHIS2 (1 decimal, 2 below 1, integers without
// decimals; skipRounding keeps 10 decimals and Java's "12.0" form), and
// truncated to an integer for integer data elements. comment is
// "[aggregated]", created and lastUpdated are today (yyyy-MM-dd), followup
// is false, and storedBy is "[aggregated]" on versions before the change of
// PR dhis2-core#16466 (≤ 2.38, 2.39.0–2.39.5, 2.40.0–2.40.3; the patch
// boundaries are assumed to be those of §10.5).
//
// Output id schemes (SchemeIdResponseMapper): outputIdScheme applies to
// every item; outputDataItemIdScheme (2.41+) to data elements and program
// indicators; outputDataElementIdScheme to data elements and operands (it
// wins over outputDataItemIdScheme); outputOrgUnitIdScheme to org units. An
// object without a value in the scheme (no code, no attribute value) keeps
// its UID. With outputIdScheme=ATTRIBUTE:<AGG_DE_CODE> the Kalima program
// indicators therefore come out as the codes of their aggregate data
// elements (EPI_BCG, ...) with COC/AOC UIDs and org unit UIDs, which is the
// tracker-to-aggregate pattern of §6.4. duplicatesOnly=true returns only the
// rows whose key (dataElement, period, orgUnit, combos) was already seen.
//
// Formats: .json ({"dataValues":[...]}), .xml (DXF2 dataValueSet with
// attributes), .csv (the grid headers of §6.3), or Accept on the path
// without suffix.

func (s *Server) analyticsRoutes() []route {
	return []route{
		{pattern: "GET /analytics/dataValueSet", handler: s.handleAnalyticsDVS("")},
		{pattern: "GET /analytics/dataValueSet.json", handler: s.handleAnalyticsDVS("json")},
		{pattern: "GET /analytics/dataValueSet.xml", handler: s.handleAnalyticsDVS("xml")},
		{pattern: "GET /analytics/dataValueSet.csv", handler: s.handleAnalyticsDVS("csv")},
	}
}

// dxItem is a resolved data dimension item.
type dxItem struct {
	pi  *ProgramIndicator
	de  *DataElement
	coc string // operand "de.coc"
}

// analyticsQuery is a parsed analytics request.
type analyticsQuery struct {
	dx      []dxItem
	pe      []periods.Period
	ou      []string
	filters []map[string]bool // per category: the option UIDs allowed

	out, outDE, outOU, outItem idScheme

	aggregation    string
	duplicatesOnly bool
	skipRounding   bool
}

// dimensionSpec is one dimension= or filter= parameter.
type dimensionSpec struct {
	name  string
	items []string
}

func parseDimensions(values []string) []dimensionSpec {
	var out []dimensionSpec
	for _, v := range values {
		name, items, _ := strings.Cut(v, ":")
		d := dimensionSpec{name: strings.TrimSpace(name)}
		for it := range strings.SplitSeq(items, ";") {
			if it = strings.TrimSpace(it); it != "" {
				d.items = append(d.items, it)
			}
		}
		out = append(out, d)
	}
	return out
}

var analyticsAggregations = []string{"SUM", "COUNT", "AVERAGE", "MIN", "MAX"}

// parseAnalytics reads an analytics data value set request.
func (s *Server) parseAnalytics(m *Metadata, q url.Values, u *User) (*analyticsQuery, *apiError) {
	dims := parseDimensions(q["dimension"])
	filters := parseDimensions(q["filter"])
	find := func(list []dimensionSpec, name string) (dimensionSpec, bool) {
		for _, d := range list {
			if d.name == name {
				return d, true
			}
		}
		return dimensionSpec{}, false
	}
	dxDim, okDX := find(dims, "dx")
	peDim, okPE := find(dims, "pe")
	ouDim, okOU := find(dims, "ou")
	switch {
	case !okDX:
		return nil, conflictf("E7117", "A data dimension 'dx' must be specified when output format is DATA_VALUE_SET")
	case !okPE:
		return nil, conflictf("E7118", "A period dimension 'pe' must be specified when output format is DATA_VALUE_SET")
	case !okOU:
		return nil, conflictf("E7119", "An organisation unit dimension 'ou' must be specified when output format is DATA_VALUE_SET")
	}
	for _, f := range filters {
		if _, dup := find(dims, f.name); dup && (f.name == "dx" || f.name == "pe" || f.name == "ou") {
			return nil, conflictf("E7103", "Dimensions cannot be specified as dimension and filter simultaneously: `{0}`", f.name)
		}
	}

	in := orScheme(schemeParam(q, "inputIdScheme"))
	aq := &analyticsQuery{
		out:            schemeParam(q, "outputIdScheme"),
		outDE:          schemeParam(q, "outputDataElementIdScheme"),
		outOU:          schemeParam(q, "outputOrgUnitIdScheme"),
		duplicatesOnly: boolParam(q, "duplicatesOnly"),
		skipRounding:   boolParam(q, "skipRounding"),
		aggregation:    "SUM",
	}
	if s.version.Minor >= 41 {
		aq.outItem = schemeParam(q, "outputDataItemIdScheme")
	}
	if v := q.Get("aggregationType"); v != "" {
		v = strings.ToUpper(strings.TrimSpace(v))
		if !slices.Contains(analyticsAggregations, v) {
			return nil, &apiError{status: http.StatusConflict, message: "Aggregation type not supported by the emulator: " + v}
		}
		aq.aggregation = v
	}

	// dx
	for _, it := range dxDim.items {
		for _, d := range m.resolveDX(in, it) {
			if !slices.Contains(aq.dx, d) {
				aq.dx = append(aq.dx, d)
			}
		}
	}
	if len(aq.dx) == 0 {
		return nil, conflictf("E7124", "Dimension is present in query without any valid dimension options: `{0}`", "dx")
	}

	// pe
	now := s.now()
	if v := q.Get("relativePeriodDate"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return nil, &apiError{status: http.StatusConflict, message: "Relative period date is invalid: " + v}
		}
		now = t
	}
	seen := map[periods.Period]bool{}
	for _, it := range peDim.items {
		var ps []periods.Period
		if p, err := periods.Parse(it); err == nil {
			ps = []periods.Period{p}
		} else if rel, err := periods.Relative(it, now, periods.RelativeOptions{}); err == nil {
			ps = rel
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				aq.pe = append(aq.pe, p)
			}
		}
	}
	if len(aq.pe) == 0 {
		return nil, conflictf("E7124", "Dimension is present in query without any valid dimension options: `{0}`", "pe")
	}

	// ou
	userOUs := m.userRoots(u)
	if v := q.Get("userOrgUnit"); v != "" {
		userOUs = nil
		for it := range strings.SplitSeq(v, ";") {
			if o := m.idx.ou[strings.TrimSpace(it)]; o != nil {
				userOUs = append(userOUs, o.ID)
			}
		}
	}
	for _, it := range ouDim.items {
		if uid := m.find(kindOrgUnit, in, it); uid != "" && u != nil && !m.inUserHierarchy(u, uid) {
			return nil, conflictf("E7120", "User: `{0}` is not allowed to view org unit: `{1}`", u.Username, uid)
		}
	}
	aq.ou = m.resolveOrgUnitDimension(in, ouDim.items, userOUs)
	if len(aq.ou) == 0 {
		return nil, conflictf("E7124", "Dimension is present in query without any valid dimension options: `{0}`", "ou")
	}

	// further dimensions and filters restrict the facts by category options
	for _, d := range append(slices.Clone(dims), filters...) {
		switch d.name {
		case "dx", "pe", "ou", "co", "ao": // co and ao add nothing to a data value set
			continue
		}
		catUID := m.find(kindCategory, in, d.name)
		if catUID == "" {
			return nil, conflictf("E7125", "Dimension identifier does not reference any dimension: `{0}`", d.name)
		}
		cat := m.idx.cat[catUID]
		allowed := map[string]bool{}
		for _, it := range d.items {
			if opt := m.find(kindCategoryOption, in, it); opt != "" && slices.Contains(cat.Options, opt) {
				allowed[opt] = true
			}
		}
		if len(d.items) == 0 {
			for _, o := range cat.Options {
				allowed[o] = true
			}
		}
		if len(allowed) == 0 {
			return nil, conflictf("E7124", "Dimension is present in query without any valid dimension options: `{0}`", d.name)
		}
		aq.filters = append(aq.filters, allowed)
	}
	return aq, nil
}

// resolveDX resolves one dx item written in scheme in.
func (m *Metadata) resolveDX(in idScheme, it string) []dxItem {
	if g, ok := strings.CutPrefix(it, "DE_GROUP-"); ok {
		grp := m.findDEGroup(in, g)
		if grp == nil {
			return nil
		}
		var out []dxItem
		for _, ref := range grp.DataElements {
			if de := m.DataElement(ref); de != nil {
				out = append(out, dxItem{de: de})
			}
		}
		return out
	}
	if deRef, cocRef, ok := strings.Cut(it, "."); ok {
		de, coc := m.find(kindDataElement, in, deRef), m.find(kindCOC, in, cocRef)
		if de == "" || coc == "" {
			return nil
		}
		return []dxItem{{de: m.idx.de[de], coc: coc}}
	}
	if pi := m.findPI(in, it); pi != nil {
		return []dxItem{{pi: pi}}
	}
	if de := m.find(kindDataElement, in, it); de != "" {
		return []dxItem{{de: m.idx.de[de]}}
	}
	return nil
}

// resolveOrgUnitDimension resolves the items of an ou dimension: org units
// and USER_ORGUNIT* keywords are boundaries; LEVEL-n selects the units at
// level n under the boundaries (the user's org units when none are given)
// and then replaces the boundaries in the answer, as DHIS2 does.
func (m *Metadata) resolveOrgUnitDimension(in idScheme, items []string, userOUs []string) []string {
	var bounds, levels []string
	var levelNums []int
	add := func(list *[]string, ids ...string) {
		for _, id := range ids {
			if !slices.Contains(*list, id) {
				*list = append(*list, id)
			}
		}
	}
	for _, it := range items {
		switch {
		case it == "USER_ORGUNIT":
			add(&bounds, userOUs...)
		case it == "USER_ORGUNIT_CHILDREN":
			for _, o := range userOUs {
				add(&bounds, m.children(o)...)
			}
		case it == "USER_ORGUNIT_GRANDCHILDREN":
			for _, o := range userOUs {
				for _, c := range m.children(o) {
					add(&bounds, m.children(c)...)
				}
			}
		case strings.HasPrefix(it, "LEVEL-"):
			if n, err := strconv.Atoi(strings.TrimPrefix(it, "LEVEL-")); err == nil && n > 0 {
				levelNums = append(levelNums, n)
			}
		default:
			if uid := m.find(kindOrgUnit, in, it); uid != "" {
				add(&bounds, uid)
			}
		}
	}
	if len(levelNums) == 0 {
		return bounds
	}
	boundary := bounds
	if len(boundary) == 0 {
		boundary = userOUs
	}
	for _, o := range m.OrgUnits {
		if slices.Contains(levelNums, o.Level) && m.isDescendant(o.ID, boundary) {
			add(&levels, o.ID)
		}
	}
	return levels
}

// analyticsValue is one aggregated cell, before output id schemes.
type analyticsValue struct {
	item  dxItem
	pe    periods.Period
	ou    string
	value float64
}

// analyticsFacts returns what analytics reads: the fact table of m and the
// live numeric values of the store (aggregate data, as DHIS2's analytics
// data value table holds them).
func (s *Server) analyticsFacts(m *Metadata) []resolvedFact {
	facts := m.resolvedFacts()
	for _, v := range s.store.Values() {
		de := m.idx.de[v.DataElement]
		if de == nil || !numericValueType(de.ValueType) || de.AggregationType == "NONE" {
			continue
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(v.Value), 64)
		if err != nil {
			continue
		}
		pe, err := periods.Parse(v.Period)
		if err != nil {
			continue
		}
		facts = append(facts, resolvedFact{dx: de.ID, pe: pe, ou: v.OrgUnit, coc: v.CategoryOptionCombo,
			aoc: v.AttributeOptionCombo, value: x})
	}
	return facts
}

func numericValueType(t string) bool {
	switch t {
	case "NUMBER", "INTEGER", "INTEGER_POSITIVE", "INTEGER_NEGATIVE", "INTEGER_ZERO_OR_POSITIVE", "PERCENTAGE",
		"UNIT_INTERVAL":
		return true
	}
	return false
}

// aggregate computes the cells of q from facts.
func (q *analyticsQuery) aggregate(m *Metadata, facts []resolvedFact) []analyticsValue {
	byDX := map[string][]resolvedFact{}
	for _, f := range facts {
		if q.passesFilters(m, f) {
			byDX[f.dx] = append(byDX[f.dx], f)
		}
	}
	var out []analyticsValue
	for _, item := range q.dx {
		var facts []resolvedFact
		if item.pi != nil {
			facts = byDX[item.pi.ID]
		} else {
			for _, f := range byDX[item.de.ID] {
				if !f.pi && (item.coc == "" || f.coc == item.coc) {
					facts = append(facts, f)
				}
			}
		}
		for _, pe := range q.pe {
			for _, ou := range q.ou {
				var vals []float64
				for _, f := range facts {
					if !rollsInto(f.pe, pe) || !m.isDescendant(f.ou, []string{ou}) {
						continue
					}
					vals = append(vals, f.value)
				}
				if len(vals) == 0 {
					continue
				}
				v := combine(q.aggregation, vals)
				if v == 0 {
					continue // analytics leaves zero rows out (§12)
				}
				out = append(out, analyticsValue{item: item, pe: pe, ou: ou, value: v})
			}
		}
	}
	return out
}

func (q *analyticsQuery) passesFilters(m *Metadata, f resolvedFact) bool {
	if len(q.filters) == 0 {
		return true
	}
	var opts []string
	for _, c := range []string{f.coc, f.aoc} {
		if coc := m.idx.coc[c]; coc != nil {
			opts = append(opts, coc.Options...)
		}
	}
	for _, allowed := range q.filters {
		if !slices.ContainsFunc(opts, func(o string) bool { return allowed[o] }) {
			return false
		}
	}
	return true
}

// rollsInto reports whether facts of period f count in period p.
func rollsInto(f, p periods.Period) bool {
	if f == p {
		return true
	}
	r, ok := f.RollUp(p.Type())
	return ok && r == p
}

func combine(agg string, vals []float64) float64 {
	switch agg {
	case "COUNT":
		return float64(len(vals))
	case "MIN":
		return slices.Min(vals)
	case "MAX":
		return slices.Max(vals)
	}
	var sum float64
	for _, v := range vals {
		sum += v
	}
	if agg == "AVERAGE" {
		return sum / float64(len(vals))
	}
	return sum
}

// formatAnalyticsValue renders a value as DHIS2 does (§6.2): rounded with
// MathUtils.getRounded (2 decimals below 1, else 1), integral values without
// decimals (getRoundedValueObject); integer data elements truncated
// (getIntegerOrValue); skipRounding keeps 10 decimals and Java's Double form.
func formatAnalyticsValue(v float64, skipRounding, integer bool) string {
	round := func(x float64, d int) float64 {
		f := math.Pow(10, float64(d))
		return math.Round(x*f) / f
	}
	if skipRounding {
		v = round(v, 10)
	} else if v < 1 && v > -1 {
		v = round(v, 2)
	} else {
		v = round(v, 1)
	}
	if integer || (!skipRounding && v == math.Trunc(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0" // Java's Double.toString
	}
	return s
}

func integerValueType(t string) bool {
	switch t {
	case "INTEGER", "INTEGER_POSITIVE", "INTEGER_NEGATIVE", "INTEGER_ZERO_OR_POSITIVE":
		return true
	}
	return false
}

// analyticsStoredBy reports whether analytics data values carry storedBy
// "[aggregated]" (removed by dhis2-core PR #16466 and its backports).
func analyticsStoredBy(v Version) bool {
	switch {
	case v.Minor <= 38:
		return true
	case v.Minor == 39:
		return v.Patch < 6
	case v.Minor == 40:
		return v.Patch < 4
	}
	return false
}

const aggregatedMarker = "[aggregated]"

// dataValues renders the cells as analytics data values (§6.2, §6.3).
func (q *analyticsQuery) dataValues(m *Metadata, v Version, cells []analyticsValue, today string) []orderedMap {
	deScheme := orScheme(q.outDE, q.outItem, q.out)
	opScheme := orScheme(q.outDE, q.out)
	piScheme := orScheme(q.outItem, q.out)
	ouScheme := orScheme(q.outOU, q.out)
	seen := map[string]bool{}
	var out []orderedMap
	for _, c := range cells {
		var de string
		var coc, aoc any
		integer := false
		switch {
		case c.item.pi != nil:
			de = c.item.pi.ID
			if id, ok := piIdent(c.item.pi, piScheme); ok {
				de = id
			}
			if x := c.item.pi.AggregateExportCategoryOptionCombo; x != "" {
				coc = x
			}
			if x := c.item.pi.AggregateExportAttributeOptionCombo; x != "" {
				aoc = x
			}
		case c.item.coc != "":
			de = m.identOrUID(kindDataElement, opScheme, c.item.de.ID)
			coc = m.identOrUID(kindCOC, opScheme, c.item.coc)
			integer = integerValueType(c.item.de.ValueType)
		default:
			de = m.identOrUID(kindDataElement, deScheme, c.item.de.ID)
			integer = integerValueType(c.item.de.ValueType)
		}
		ou := m.identOrUID(kindOrgUnit, ouScheme, c.ou)
		row := orderedMap{{"dataElement", de}, {"period", c.pe.ID()}, {"orgUnit", ou}}
		if coc != nil {
			row = append(row, kv{"categoryOptionCombo", coc})
		}
		if aoc != nil {
			row = append(row, kv{"attributeOptionCombo", aoc})
		}
		row = append(row, kv{"value", formatAnalyticsValue(c.value, q.skipRounding, integer)})
		if analyticsStoredBy(v) {
			row = append(row, kv{"storedBy", aggregatedMarker})
		}
		row = append(row, kv{"created", today}, kv{"lastUpdated", today}, kv{"comment", aggregatedMarker},
			kv{"followup", false})
		if q.duplicatesOnly {
			key := fmt.Sprint(de, "|", c.pe.ID(), "|", ou, "|", coc, "|", aoc)
			if !seen[key] {
				seen[key] = true
				continue
			}
		}
		out = append(out, row)
	}
	return out
}

// analyticsDataValues runs an analytics data value set request.
func (s *Server) analyticsDataValues(m *Metadata, q url.Values, u *User) ([]orderedMap, *apiError) {
	aq, e := s.parseAnalytics(m, q, u)
	if e != nil {
		return nil, e
	}
	cells := aq.aggregate(m, s.analyticsFacts(m))
	return aq.dataValues(m, s.version, cells, s.now().Format("2006-01-02")), nil
}

func (s *Server) handleAnalyticsDVS(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := s.metadataSnapshot()
		rows, e := s.analyticsDataValues(m, queryOf(r), callOf(r).user)
		if e != nil {
			e.write(w, r)
			return
		}
		f := format
		if f == "" {
			f = negotiate(r)
		}
		switch f {
		case "xml":
			writeDataValueSetXML(w, nil, rows)
		case "csv":
			writeAnalyticsCSV(w, rows)
		default:
			list := make([]any, len(rows))
			for i, row := range rows {
				list[i] = row
			}
			writeBody(w, r, http.StatusOK, "", orderedMap{{"dataValues", list}})
		}
	}
}

// writeAnalyticsCSV writes the data value set grid of §6.3
// (AnalyticsUtils.getDataValueSetAsGrid).
func writeAnalyticsCSV(w http.ResponseWriter, rows []orderedMap) {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write([]string{"data_element", "period", "organisation_unit", "category_option_combo",
		"attribute_option_combo", "value", "stored_by", "created", "last_updated", "comment", "follow_up"})
	for _, r := range rows {
		get := func(k string) string {
			v, _ := omGet(r, k)
			if v == nil {
				return ""
			}
			return scalarText(v)
		}
		_ = cw.Write([]string{get("dataElement"), get("period"), get("orgUnit"), get("categoryOptionCombo"),
			get("attributeOptionCombo"), get("value"), aggregatedMarker, get("created"), get("lastUpdated"),
			aggregatedMarker, "false"})
	}
	cw.Flush()
	w.Header().Set("Content-Type", "application/csv;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
