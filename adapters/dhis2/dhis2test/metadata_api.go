package dhis2test

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Metadata reads: GET /api/<resource>[.json] and /api/<resource>/{uid}[.json]
// for dataElements, dataElementGroups, categoryOptionCombos, categoryCombos,
// categories, categoryOptions, organisationUnits, dataSets,
// programIndicators, attributes, users, userGroups, aggregateDataExchanges
// (2.39+) and messageConversations (the caller's own; see messages.go).
//
// Lists answer {"pager":{"page","total","pageSize","pageCount"[,"prevPage"]
// [,"nextPage"]},"<resource>":[...]} (page, pageSize default 50;
// paging=false drops the pager and returns everything), ordered by name
// (case-insensitive, then id) unless order=<field>:asc|desc|iasc|idesc.
// Default fields are id,displayName for lists and * for a single object.
//
// fields: comma-separated names, nested selections name[sub,...] to any
// depth (references are followed: categoryCombo[id,code],
// dataSetElements[dataElement[id,code]], attributeValues[attribute[id],value]),
// "*" / ":all" (every field; references as {"id":…}), ":owner" (treated as
// "*": the emulator does not distinguish owned properties),
// ":identifiable" (id, code, name, created, lastUpdated) and ":nameable"
// (adds shortName, description), and "!name" to drop a field. Fields an
// object does not have are left out, as are null values; href, created,
// lastUpdated and sharing are not modelled. Transformers (~rename, ::size)
// are not supported.
//
// filter=<path>:<op>[:<value>] (repeatable; rootJunction=OR makes them
// alternatives; docs metadata.md "Metadata object filter"). path may cross
// references and collections (categoryCombo.id, dataSetElements.dataSet.id,
// attributeValues.value, parent.code), or be a custom attribute's UID (its
// value). Operators: eq, !eq (ne, neq), ieq, in/!in ([a,b,c]), like/!like
// (contains), ilike/!ilike (contains, ignoring case), $like, like$, $ilike,
// ilike$ (prefix/suffix, with ! forms), null, !null, empty, !empty, gt, ge,
// lt, le, token/!token; eq, ne and the comparisons count the elements of a
// collection (dataSetElements:eq:4). query=<text> matches names ignoring
// case. An unknown operator or property is a 400 WebMessage. Only JSON is
// produced.

// ref is a reference to another metadata object: rendered {"id":…} unless
// a nested field selection follows it.
type ref struct {
	res string // resource (plural), e.g. "categoryCombos"
	id  string
}

// mdResource describes one served resource.
type mdResource struct {
	plural  string
	klass   string // for "<klass> with id <uid> could not be found."
	minor   int    // first DHIS2 minor version serving it (0: all)
	objects func(pc *projector) []orderedMap
}

func (s *Server) metadataResources() []mdResource {
	return []mdResource{
		{plural: "dataElements", klass: "DataElement", objects: (*projector).dataElements},
		{plural: "dataElementGroups", klass: "DataElementGroup", objects: (*projector).dataElementGroups},
		{plural: "categoryOptionCombos", klass: "CategoryOptionCombo", objects: (*projector).categoryOptionCombos},
		{plural: "categoryCombos", klass: "CategoryCombo", objects: (*projector).categoryCombos},
		{plural: "categories", klass: "Category", objects: (*projector).categories},
		{plural: "categoryOptions", klass: "CategoryOption", objects: (*projector).categoryOptions},
		{plural: "organisationUnits", klass: "OrganisationUnit", objects: (*projector).organisationUnits},
		{plural: "dataSets", klass: "DataSet", objects: (*projector).dataSets},
		{plural: "programIndicators", klass: "ProgramIndicator", objects: (*projector).programIndicators},
		{plural: "attributes", klass: "Attribute", objects: (*projector).attributes},
		{plural: "users", klass: "User", objects: (*projector).users},
		{plural: "userGroups", klass: "UserGroup", objects: (*projector).userGroups},
		{plural: "aggregateDataExchanges", klass: "AggregateDataExchange", minor: 39, objects: (*projector).exchanges},
		{plural: "messageConversations", klass: "MessageConversation", objects: (*projector).messageConversations},
	}
}

func (s *Server) metadataRoutes() []route {
	var out []route
	for _, res := range s.metadataResources() {
		out = append(out,
			route{pattern: "GET /" + res.plural, handler: s.handleMetadataList(res)},
			route{pattern: "GET /" + res.plural + ".json", handler: s.handleMetadataList(res)},
			route{pattern: "GET /" + res.plural + "/{uid}", handler: s.handleMetadataObject(res)},
		)
	}
	return out
}

// projector renders metadata objects for one request. It caches the full
// representation of every resource it has built.
type projector struct {
	s     *Server
	m     *Metadata
	user  *User
	cache map[string]map[string]orderedMap
	res   map[string]mdResource
}

func (s *Server) newProjector(m *Metadata, u *User) *projector {
	pc := &projector{s: s, m: m, user: u, cache: map[string]map[string]orderedMap{}, res: map[string]mdResource{}}
	for _, r := range s.metadataResources() {
		pc.res[r.plural] = r
	}
	return pc
}

// lookup returns the full representation of an object, or nil.
func (pc *projector) lookup(res, id string) orderedMap {
	byID, ok := pc.cache[res]
	if !ok {
		byID = map[string]orderedMap{}
		if r, ok := pc.res[res]; ok {
			for _, o := range r.objects(pc) {
				if v, _ := omGet(o, "id"); v != nil {
					byID[v.(string)] = o
				}
			}
		}
		pc.cache[res] = byID
	}
	return byID[id]
}

// ---------------------------------------------------------------------------
// Representations (DHIS2 property names; nil values are left out on output)

func refs(res string, ids []string) []ref {
	out := make([]ref, 0, len(ids))
	for _, id := range ids {
		out = append(out, ref{res, id})
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func attributeValuesOf(av AttributeValues) []orderedMap {
	keys := make([]string, 0, len(av))
	for k := range av {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]orderedMap, 0, len(keys))
	for _, k := range keys {
		out = append(out, orderedMap{{"value", av[k]}, {"attribute", ref{"attributes", k}}})
	}
	return out
}

func identifiable(id, code, name string) orderedMap {
	return orderedMap{{"id", id}, {"code", nilIfEmpty(code)}, {"name", name}, {"displayName", name}}
}

func (pc *projector) dataElements() []orderedMap {
	m := pc.m
	var out []orderedMap
	for _, d := range m.DataElements {
		short := cmp.Or(d.ShortName, d.Name)
		var dse []orderedMap
		for _, ds := range m.idx.dsByDE[d.ID] {
			dse = append(dse, orderedMap{{"dataSet", ref{"dataSets", ds.ID}}, {"dataElement", ref{"dataElements", d.ID}}})
		}
		var groups []string
		for _, g := range m.DataElementGroups {
			if slices.ContainsFunc(g.DataElements, func(r string) bool { de := m.DataElement(r); return de != nil && de.ID == d.ID }) {
				groups = append(groups, g.ID)
			}
		}
		o := identifiable(d.ID, d.Code, d.Name)
		o = append(o, kv{"shortName", short}, kv{"displayShortName", short}, kv{"valueType", d.ValueType},
			kv{"aggregationType", d.AggregationType}, kv{"domainType", "AGGREGATE"}, kv{"zeroIsSignificant", d.ZeroIsSignificant},
			kv{"optionSetValue", len(d.OptionSet) > 0}, kv{"categoryCombo", ref{"categoryCombos", d.CategoryCombo}},
			kv{"dataSetElements", orEmpty(dse)}, kv{"dataElementGroups", refs("dataElementGroups", groups)},
			kv{"attributeValues", attributeValuesOf(d.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func orEmpty(l []orderedMap) []orderedMap {
	if l == nil {
		return []orderedMap{}
	}
	return l
}

func (pc *projector) dataElementGroups() []orderedMap {
	var out []orderedMap
	for _, g := range pc.m.DataElementGroups {
		var des []string
		for _, r := range g.DataElements {
			if de := pc.m.DataElement(r); de != nil {
				des = append(des, de.ID)
			}
		}
		o := identifiable(g.ID, g.Code, g.Name)
		o = append(o, kv{"dataElements", refs("dataElements", des)}, kv{"attributeValues", attributeValuesOf(g.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func (pc *projector) categoryOptionCombos() []orderedMap {
	var out []orderedMap
	for _, c := range pc.m.CategoryOptionCombos {
		o := identifiable(c.ID, c.Code, c.Name)
		o = append(o, kv{"categoryCombo", ref{"categoryCombos", c.CategoryCombo}},
			kv{"categoryOptions", refs("categoryOptions", c.Options)}, kv{"ignoreApproval", false},
			kv{"attributeValues", attributeValuesOf(c.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func (pc *projector) categoryCombos() []orderedMap {
	var out []orderedMap
	for _, c := range pc.m.CategoryCombos {
		o := identifiable(c.ID, c.Code, c.Name)
		o = append(o, kv{"dataDimensionType", c.DataDimensionType}, kv{"isDefault", c.ID == DefaultCategoryComboUID},
			kv{"categories", refs("categories", c.Categories)},
			kv{"categoryOptionCombos", refs("categoryOptionCombos", pc.m.idx.cocByCombo[c.ID])},
			kv{"attributeValues", attributeValuesOf(c.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func (pc *projector) categories() []orderedMap {
	var out []orderedMap
	for _, c := range pc.m.Categories {
		var combos []string
		for _, cc := range pc.m.CategoryCombos {
			if slices.Contains(cc.Categories, c.ID) {
				combos = append(combos, cc.ID)
			}
		}
		o := identifiable(c.ID, c.Code, c.Name)
		o = append(o, kv{"dataDimensionType", c.DataDimensionType}, kv{"dataDimension", true},
			kv{"categoryOptions", refs("categoryOptions", c.Options)}, kv{"categoryCombos", refs("categoryCombos", combos)},
			kv{"attributeValues", attributeValuesOf(c.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func (pc *projector) categoryOptions() []orderedMap {
	var out []orderedMap
	for _, op := range pc.m.CategoryOptions {
		var cats, cocs []string
		for _, c := range pc.m.Categories {
			if slices.Contains(c.Options, op.ID) {
				cats = append(cats, c.ID)
			}
		}
		for _, c := range pc.m.CategoryOptionCombos {
			if slices.Contains(c.Options, op.ID) {
				cocs = append(cocs, c.ID)
			}
		}
		o := identifiable(op.ID, op.Code, op.Name)
		o = append(o, kv{"shortName", op.Name}, kv{"startDate", nilIfEmpty(op.StartDate)}, kv{"endDate", nilIfEmpty(op.EndDate)},
			kv{"categories", refs("categories", cats)}, kv{"categoryOptionCombos", refs("categoryOptionCombos", cocs)},
			kv{"organisationUnits", refs("organisationUnits", op.OrgUnits)},
			kv{"attributeValues", attributeValuesOf(op.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func (pc *projector) organisationUnits() []orderedMap {
	m := pc.m
	var out []orderedMap
	for _, u := range m.OrgUnits {
		var ds []string
		for _, d := range m.DataSets {
			if m.idx.dsOrgUnits[d.ID][u.ID] {
				ds = append(ds, d.ID)
			}
		}
		short := cmp.Or(u.ShortName, u.Name)
		o := identifiable(u.ID, u.Code, u.Name)
		var parent any
		if u.Parent != "" {
			parent = ref{"organisationUnits", u.Parent}
		}
		o = append(o, kv{"shortName", short}, kv{"displayShortName", short}, kv{"level", u.Level}, kv{"path", u.Path},
			kv{"parent", parent}, kv{"children", refs("organisationUnits", m.children(u.ID))},
			kv{"openingDate", nilIfEmpty(openingDate(u.OpeningDate))}, kv{"dataSets", refs("dataSets", ds)},
			kv{"attributeValues", attributeValuesOf(u.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func openingDate(d string) string {
	if d == "" {
		return ""
	}
	return d + "T00:00:00.000"
}

func (pc *projector) dataSets() []orderedMap {
	var out []orderedMap
	for _, d := range pc.m.DataSets {
		dse := make([]orderedMap, 0, len(d.DataElements))
		for _, de := range d.DataElements {
			dse = append(dse, orderedMap{{"dataSet", ref{"dataSets", d.ID}}, {"dataElement", ref{"dataElements", de}}})
		}
		o := identifiable(d.ID, d.Code, d.Name)
		o = append(o, kv{"periodType", d.PeriodType}, kv{"categoryCombo", ref{"categoryCombos", d.CategoryCombo}},
			kv{"expiryDays", d.ExpiryDays}, kv{"openFuturePeriods", d.OpenFuturePeriods},
			kv{"dataInputPeriods", dataInputPeriodsJSON(d.DataInputPeriods)}, kv{"dataSetElements", dse},
			kv{"organisationUnits", refs("organisationUnits", d.OrgUnits)},
			kv{"attributeValues", attributeValuesOf(d.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func (pc *projector) programIndicators() []orderedMap {
	var out []orderedMap
	for _, p := range pc.m.ProgramIndicators {
		o := identifiable(p.ID, p.Code, p.Name)
		o = append(o, kv{"shortName", p.Name},
			kv{"aggregateExportCategoryOptionCombo", nilIfEmpty(p.AggregateExportCategoryOptionCombo)},
			kv{"aggregateExportAttributeOptionCombo", nilIfEmpty(p.AggregateExportAttributeOptionCombo)},
			kv{"attributeValues", attributeValuesOf(p.AttributeValues)})
		out = append(out, o)
	}
	return out
}

func (pc *projector) attributes() []orderedMap {
	var out []orderedMap
	for _, a := range pc.m.Attributes {
		o := identifiable(a.ID, a.Code, a.Name)
		o = append(o, kv{"valueType", cmp.Or(a.ValueType, "TEXT")}, kv{"unique", a.Unique})
		out = append(out, o)
	}
	return out
}

func (pc *projector) users() []orderedMap {
	var out []orderedMap
	for _, u := range pc.m.Users {
		name := strings.TrimSpace(u.FirstName + " " + u.Surname)
		out = append(out, orderedMap{{"id", u.ID}, {"username", u.Username}, {"firstName", nilIfEmpty(u.FirstName)},
			{"surname", nilIfEmpty(u.Surname)}, {"name", name}, {"displayName", name}, {"disabled", u.Disabled},
			{"organisationUnits", refs("organisationUnits", u.OrgUnits)}, {"userGroups", refs("userGroups", u.UserGroups)}})
	}
	return out
}

func (pc *projector) userGroups() []orderedMap {
	var out []orderedMap
	for _, g := range pc.m.UserGroups {
		var members []string
		for _, u := range pc.m.Users {
			if slices.Contains(u.UserGroups, g.ID) {
				members = append(members, u.ID)
			}
		}
		o := identifiable(g.ID, g.Code, g.Name)
		o = append(o, kv{"users", refs("users", members)})
		out = append(out, o)
	}
	return out
}

// ---------------------------------------------------------------------------
// Field selection

type fieldSel struct {
	name    string
	exclude bool
	sub     []fieldSel // nil: none given
}

// parseFields parses a DHIS2 field filter such as
// "id,name,categoryCombo[id,code],dataSetElements[dataElement[id]]".
func parseFields(s string) ([]fieldSel, error) {
	sels, rest, err := parseFieldList(s)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("unexpected %q in fields", rest)
	}
	return sels, nil
}

func parseFieldList(s string) ([]fieldSel, string, error) {
	var out []fieldSel
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" || s[0] == ']' {
			return out, s, nil
		}
		i := strings.IndexAny(s, ",[]")
		if i < 0 {
			i = len(s)
		}
		name := strings.TrimSpace(s[:i])
		s = s[i:]
		f := fieldSel{name: name}
		if strings.HasPrefix(name, "!") {
			f.exclude, f.name = true, name[1:]
		}
		if strings.HasPrefix(s, "[") {
			sub, rest, err := parseFieldList(s[1:])
			if err != nil {
				return nil, "", err
			}
			if !strings.HasPrefix(rest, "]") {
				return nil, "", fmt.Errorf("missing ] after %s", name)
			}
			if sub == nil {
				sub = []fieldSel{}
			}
			f.sub, s = sub, rest[1:]
		}
		if f.name != "" {
			out = append(out, f)
		}
	}
}

var fieldPresets = map[string][]string{
	":identifiable": {"id", "code", "name", "created", "lastUpdated"},
	":nameable":     {"id", "code", "name", "shortName", "description", "created", "lastUpdated"},
}

// project renders obj with the field selection sel.
func (pc *projector) project(obj orderedMap, sel []fieldSel) orderedMap {
	var names []string
	subs := map[string][]fieldSel{}
	excluded := map[string]bool{}
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, f := range sel {
		switch {
		case f.exclude:
			excluded[f.name] = true
		case f.name == "*" || f.name == ":all" || f.name == ":owner":
			for _, field := range obj {
				add(field.k)
			}
		case fieldPresets[f.name] != nil:
			for _, n := range fieldPresets[f.name] {
				add(n)
			}
		default:
			add(f.name)
			if f.sub != nil {
				subs[f.name] = f.sub
			}
		}
	}
	out := orderedMap{}
	for _, n := range names {
		if excluded[n] {
			continue
		}
		v, ok := omGet(obj, n)
		if !ok || v == nil {
			continue
		}
		out = append(out, kv{n, pc.render(v, subs[n])})
	}
	return out
}

// render renders a field value with an optional nested selection.
func (pc *projector) render(v any, sub []fieldSel) any {
	switch x := v.(type) {
	case ref:
		if sub == nil {
			return orderedMap{{"id", x.id}}
		}
		if obj := pc.lookup(x.res, x.id); obj != nil {
			return pc.project(obj, sub)
		}
		return pc.project(orderedMap{{"id", x.id}}, sub)
	case []ref:
		out := make([]any, len(x))
		for i, r := range x {
			out[i] = pc.render(r, sub)
		}
		return out
	case orderedMap:
		if sub == nil {
			return pc.project(x, []fieldSel{{name: "*"}})
		}
		return pc.project(x, sub)
	case []orderedMap:
		out := make([]any, len(x))
		for i, o := range x {
			out[i] = pc.render(o, sub)
		}
		return out
	}
	return v
}

// ---------------------------------------------------------------------------
// Filters

type mdFilter struct {
	path  []string
	op    string
	value string
}

var filterOps = []string{"eq", "!eq", "ieq", "ne", "neq", "in", "!in", "like", "!like", "ilike", "!ilike", "$like", "!$like",
	"like$", "!like$", "$ilike", "!$ilike", "ilike$", "!ilike$", "null", "!null", "empty", "!empty", "gt", "ge", "lt", "le",
	"token", "!token"}

func parseFilter(s string) (mdFilter, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 {
		return mdFilter{}, fmt.Errorf("Invalid filter: %s", s)
	}
	f := mdFilter{path: strings.Split(parts[0], "."), op: parts[1]}
	if len(parts) == 3 {
		f.value = parts[2]
	}
	if !slices.Contains(filterOps, f.op) {
		return mdFilter{}, fmt.Errorf("Unsupported filter operator: %s", f.op)
	}
	return f, nil
}

// pathValues collects the values at path in obj, following references and
// flattening collections. known is false when the first step names no
// property of obj.
func (pc *projector) pathValues(obj orderedMap, path []string) (vals []any, known bool) {
	v, ok := omGet(obj, path[0])
	if !ok {
		return nil, false
	}
	var walk func(v any, rest []string)
	walk = func(v any, rest []string) {
		switch x := v.(type) {
		case nil:
		case ref:
			if len(rest) == 0 {
				vals = append(vals, x.id)
				return
			}
			if rest[0] == "id" {
				walk(x.id, rest[1:])
				return
			}
			if o := pc.lookup(x.res, x.id); o != nil {
				n, _ := omGet(o, rest[0])
				walk(n, rest[1:])
			}
		case []ref:
			for _, r := range x {
				walk(r, rest)
			}
		case orderedMap:
			if len(rest) == 0 {
				vals = append(vals, x)
				return
			}
			n, _ := omGet(x, rest[0])
			walk(n, rest[1:])
		case []orderedMap:
			for _, o := range x {
				walk(o, rest)
			}
		default:
			if len(rest) == 0 {
				vals = append(vals, x)
			}
		}
	}
	walk(v, path[1:])
	return vals, true
}

func (pc *projector) matches(obj orderedMap, f mdFilter) (bool, error) {
	vals, known := pc.pathValues(obj, f.path)
	if !known && len(f.path) == 1 && pc.m.idx.attr[f.path[0]] != nil {
		// a custom attribute's UID names its value
		known = true
		av, _ := omGet(obj, "attributeValues")
		if list, ok := av.([]orderedMap); ok {
			for _, a := range list {
				if r, _ := omGet(a, "attribute"); r == (ref{"attributes", f.path[0]}) {
					v, _ := omGet(a, "value")
					vals = append(vals, v)
				}
			}
		}
	}
	if !known {
		return false, fmt.Errorf("Unknown path property: %s", strings.Join(f.path, "."))
	}
	if size, isCollection := collectionSize(obj, f.path); isCollection {
		switch f.op { // collections compare by size
		case "eq", "!eq", "ne", "neq", "gt", "ge", "lt", "le":
			vals = []any{size}
		}
	}
	strs := make([]string, 0, len(vals))
	for _, v := range vals {
		strs = append(strs, scalarText(v))
	}
	neg := strings.HasPrefix(f.op, "!")
	op := strings.TrimPrefix(f.op, "!")
	anyOf := func(pred func(string) bool) bool { return slices.ContainsFunc(strs, pred) }
	var ok bool
	switch op {
	case "eq":
		ok = anyOf(func(s string) bool { return s == f.value })
	case "ieq":
		ok = anyOf(func(s string) bool { return strings.EqualFold(s, f.value) })
	case "token":
		ok = anyOf(func(s string) bool {
			for tok := range strings.FieldsSeq(strings.ToLower(f.value)) {
				if !strings.Contains(strings.ToLower(s), tok) {
					return false
				}
			}
			return true
		})
	case "ne", "neq":
		ok = !anyOf(func(s string) bool { return s == f.value })
	case "in":
		set := strings.Split(strings.Trim(f.value, "[]"), ",")
		ok = anyOf(func(s string) bool { return slices.Contains(set, s) })
	case "like":
		ok = anyOf(func(s string) bool { return strings.Contains(s, f.value) })
	case "ilike":
		ok = anyOf(func(s string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(f.value)) })
	case "$like":
		ok = anyOf(func(s string) bool { return strings.HasPrefix(s, f.value) })
	case "like$":
		ok = anyOf(func(s string) bool { return strings.HasSuffix(s, f.value) })
	case "$ilike":
		ok = anyOf(func(s string) bool { return strings.HasPrefix(strings.ToLower(s), strings.ToLower(f.value)) })
	case "ilike$":
		ok = anyOf(func(s string) bool { return strings.HasSuffix(strings.ToLower(s), strings.ToLower(f.value)) })
	case "null":
		ok = len(strs) == 0
	case "empty":
		ok = len(strs) == 0
	case "gt", "ge", "lt", "le":
		ok = anyOf(func(s string) bool {
			c := compareLoose(s, f.value)
			return map[string]bool{"gt": c > 0, "ge": c >= 0, "lt": c < 0, "le": c <= 0}[op]
		})
	}
	return ok != neg, nil
}

// collectionSize reports the size of a one-step path naming a collection.
func collectionSize(obj orderedMap, path []string) (int, bool) {
	if len(path) != 1 {
		return 0, false
	}
	switch v, _ := omGet(obj, path[0]); x := v.(type) {
	case []ref:
		return len(x), true
	case []orderedMap:
		return len(x), true
	case []any:
		return len(x), true
	}
	return 0, false
}

func compareLoose(a, b string) int {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 == nil && err2 == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

// ---------------------------------------------------------------------------
// Handlers

func (s *Server) handleMetadataList(res mdResource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if res.minor > s.version.Minor {
			writeError(w, r, http.StatusNotFound, "Not found: "+r.URL.Path)
			return
		}
		q := queryOf(r)
		pc := s.newProjector(s.metadataSnapshot(), callOf(r).user)
		fieldsSpec := strings.Join(q["fields"], ",")
		if fieldsSpec == "" {
			fieldsSpec = "id,displayName"
		}
		sel, err := parseFields(fieldsSpec)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		var filters []mdFilter
		for _, f := range q["filter"] {
			mf, err := parseFilter(f)
			if err != nil {
				writeError(w, r, http.StatusBadRequest, err.Error())
				return
			}
			filters = append(filters, mf)
		}
		if v := q.Get("query"); v != "" { // search in id, code and name
			filters = append(filters, mdFilter{path: []string{"name"}, op: "ilike", value: v})
		}
		or := strings.EqualFold(q.Get("rootJunction"), "OR")
		var objs []orderedMap
		for _, o := range res.objects(pc) {
			keep := !or || len(filters) == 0
			for _, f := range filters {
				ok, err := pc.matches(o, f)
				if err != nil {
					writeError(w, r, http.StatusBadRequest, err.Error())
					return
				}
				if or && ok {
					keep = true
					break
				}
				if !or && !ok {
					keep = false
					break
				}
			}
			if keep {
				objs = append(objs, o)
			}
		}
		sortObjects(objs, q.Get("order"))

		body := orderedMap{}
		if !strings.EqualFold(q.Get("paging"), "false") {
			page, size := intParam(q, "page", 1), intParam(q, "pageSize", 50)
			if page < 1 {
				page = 1
			}
			if size < 1 {
				size = 50
			}
			total := len(objs)
			count := int(math.Ceil(float64(total) / float64(size)))
			pager := orderedMap{{"page", page}, {"total", total}, {"pageSize", size}, {"pageCount", count}}
			link := func(p int) string {
				q2 := url.Values{}
				for k, v := range q {
					q2[k] = v
				}
				q2.Set("page", strconv.Itoa(p))
				return requestBase(r) + r.URL.Path + "?" + q2.Encode()
			}
			if page > 1 {
				pager = append(pager, kv{"prevPage", link(page - 1)})
			}
			if page < count {
				pager = append(pager, kv{"nextPage", link(page + 1)})
			}
			body = append(body, kv{"pager", pager})
			lo := min((page-1)*size, total)
			objs = objs[lo:min(lo+size, total)]
		}
		list := make([]any, len(objs))
		for i, o := range objs {
			list[i] = pc.project(o, sel)
		}
		body = append(body, kv{res.plural, list})
		writeBody(w, r, http.StatusOK, "", body)
	}
}

func intParam(q url.Values, name string, def int) int {
	if n, err := strconv.Atoi(q.Get(name)); err == nil {
		return n
	}
	return def
}

// sortObjects orders by the order parameter (field:asc|desc|iasc|idesc,
// comma-separated), by default by name ignoring case, then by id.
func sortObjects(objs []orderedMap, order string) {
	type key struct {
		field string
		desc  bool
		icase bool
	}
	var keys []key
	for o := range strings.SplitSeq(order, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		field, dir, _ := strings.Cut(o, ":")
		dir = strings.ToLower(dir)
		keys = append(keys, key{field: field, desc: strings.HasSuffix(dir, "desc"), icase: strings.HasPrefix(dir, "i")})
	}
	if len(keys) == 0 {
		keys = []key{{field: "name", icase: true}}
	}
	keys = append(keys, key{field: "id"})
	text := func(o orderedMap, k key) string {
		v, _ := omGet(o, k.field)
		if v == nil {
			return ""
		}
		s := scalarText(v)
		if k.icase {
			s = strings.ToLower(s)
		}
		return s
	}
	slices.SortStableFunc(objs, func(a, b orderedMap) int {
		for _, k := range keys {
			c := compareLoose(text(a, k), text(b, k))
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

func (s *Server) handleMetadataObject(res mdResource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if res.minor > s.version.Minor {
			writeError(w, r, http.StatusNotFound, "Not found: "+r.URL.Path)
			return
		}
		uid := strings.TrimSuffix(r.PathValue("uid"), ".json")
		q := queryOf(r)
		pc := s.newProjector(s.metadataSnapshot(), callOf(r).user)
		var obj orderedMap
		for _, o := range res.objects(pc) {
			if v, _ := omGet(o, "id"); v == uid {
				obj = o
				break
			}
		}
		if obj == nil {
			writeError(w, r, http.StatusNotFound, fmt.Sprintf("%s with id %s could not be found.", res.klass, uid))
			return
		}
		fieldsSpec := strings.Join(q["fields"], ",")
		if fieldsSpec == "" {
			fieldsSpec = "*"
		}
		sel, err := parseFields(fieldsSpec)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		writeBody(w, r, http.StatusOK, "", pc.project(obj, sel))
	}
}

// dataInputPeriodsJSON renders input periods as DHIS2 serves them: the
// period as {"id": iso} (JacksonPeriodSerializer), dates as
// yyyy-MM-ddTHH:mm:ss.SSS.
func dataInputPeriodsJSON(dips []DataInputPeriod) []orderedMap {
	out := make([]orderedMap, 0, len(dips))
	for _, d := range dips {
		o := orderedMap{{"period", orderedMap{{"id", d.Period}}}}
		for _, f := range []struct{ name, v string }{{"openingDate", d.OpeningDate}, {"closingDate", d.ClosingDate}} {
			if t, err := parseDateTime(f.v); err == nil {
				o = append(o, kv{f.name, t.Format("2006-01-02T15:04:05.000")})
			}
		}
		out = append(out, o)
	}
	return out
}
