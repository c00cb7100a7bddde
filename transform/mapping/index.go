package mapping

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// Index answers the lookups mapping makes in a Metadata: an object by UID, code, name or
// attribute value, the data sets of a data element, and the option combo of a category combo
// that has exactly a given set of options. Build it once per snapshot with NewIndex; it is
// read-only afterwards and safe for concurrent use.
type Index struct {
	md                   *metadata.Metadata
	dataElements         table[metadata.DataElement]
	categoryCombos       table[metadata.CategoryCombo]
	categories           table[metadata.Category]
	categoryOptions      table[metadata.CategoryOption]
	categoryOptionCombos table[metadata.CategoryOptionCombo]
	dataSets             table[metadata.DataSet]
	orgUnits             table[metadata.OrgUnit]
	// cocByOptions: combo uid → sorted option uids joined by "," → option combo.
	cocByOptions map[string]map[string]*metadata.CategoryOptionCombo
	// comboOfCOC: option combo uid → combo uid (from either side of the relation).
	comboOfCOC map[string]string
	dataSetsOf map[string][]*metadata.DataSet
	// assigned: data set uid → the uids of its org units; a data set whose snapshot does
	// not list them is absent.
	assigned map[string]map[string]struct{}
}

// NewIndex indexes md. md must not change afterwards.
func NewIndex(md *metadata.Metadata) *Index {
	ix := &Index{
		md:                   md,
		dataElements:         newTable("data element", md.DataElements, func(o *metadata.DataElement) *metadata.Object { return &o.Object }),
		categoryCombos:       newTable("category combo", md.CategoryCombos, func(o *metadata.CategoryCombo) *metadata.Object { return &o.Object }),
		categories:           newTable("category", md.Categories, func(o *metadata.Category) *metadata.Object { return &o.Object }),
		categoryOptions:      newTable("category option", md.CategoryOptions, func(o *metadata.CategoryOption) *metadata.Object { return &o.Object }),
		categoryOptionCombos: newTable("category option combo", md.CategoryOptionCombos, func(o *metadata.CategoryOptionCombo) *metadata.Object { return &o.Object }),
		dataSets:             newTable("data set", md.DataSets, func(o *metadata.DataSet) *metadata.Object { return &o.Object }),
		orgUnits:             newTable("org unit", md.OrgUnits, func(o *metadata.OrgUnit) *metadata.Object { return &o.Object }),
		cocByOptions:         map[string]map[string]*metadata.CategoryOptionCombo{},
		comboOfCOC:           map[string]string{},
		dataSetsOf:           map[string][]*metadata.DataSet{},
		assigned:             map[string]map[string]struct{}{},
	}
	for i := range md.CategoryCombos {
		cc := &md.CategoryCombos[i]
		for _, r := range cc.CategoryOptionCombos {
			ix.comboOfCOC[r.ID] = cc.ID
		}
	}
	for i := range md.CategoryOptionCombos {
		coc := &md.CategoryOptionCombos[i]
		if coc.CategoryCombo.ID != "" {
			ix.comboOfCOC[coc.ID] = coc.CategoryCombo.ID
		}
	}
	for i := range md.CategoryOptionCombos {
		coc := &md.CategoryOptionCombos[i]
		cc := ix.comboOfCOC[coc.ID]
		if cc == "" {
			continue
		}
		m := ix.cocByOptions[cc]
		if m == nil {
			m = map[string]*metadata.CategoryOptionCombo{}
			ix.cocByOptions[cc] = m
		}
		ids := make([]string, len(coc.CategoryOptions))
		for j, r := range coc.CategoryOptions {
			ids[j] = r.ID
		}
		m[optionSetKey(ids)] = coc
	}
	for i := range md.DataSets {
		ds := &md.DataSets[i]
		for _, dse := range ds.DataSetElements {
			ix.dataSetsOf[dse.DataElement.ID] = append(ix.dataSetsOf[dse.DataElement.ID], ds)
		}
		if ds.OrganisationUnits != nil {
			ous := make(map[string]struct{}, len(ds.OrganisationUnits))
			for _, r := range ds.OrganisationUnits {
				ous[r.ID] = struct{}{}
			}
			ix.assigned[ds.ID] = ous
		}
	}
	return ix
}

// Assigned reports whether data set ds is assigned to the org unit with uid ou, and
// whether the snapshot says (known is false when it was read without the data sets' org
// units).
func (ix *Index) Assigned(ds *metadata.DataSet, ou string) (assigned, known bool) {
	ous, known := ix.assigned[ds.ID]
	if !known {
		return false, false
	}
	_, assigned = ous[ou]
	return assigned, true
}

// Metadata returns the snapshot the index was built from.
func (ix *Index) Metadata() *metadata.Metadata { return ix.md }

// DataElement finds a data element by id in scheme (UID, CODE, NAME or ATTRIBUTE:<uid>).
func (ix *Index) DataElement(scheme transform.IDScheme, id string) (*metadata.DataElement, error) {
	return ix.dataElements.lookup(scheme, id)
}

// CategoryCombo finds a category combo by id in scheme.
func (ix *Index) CategoryCombo(scheme transform.IDScheme, id string) (*metadata.CategoryCombo, error) {
	return ix.categoryCombos.lookup(scheme, id)
}

// Category finds a category by id in scheme.
func (ix *Index) Category(scheme transform.IDScheme, id string) (*metadata.Category, error) {
	return ix.categories.lookup(scheme, id)
}

// CategoryOption finds a category option by id in scheme.
func (ix *Index) CategoryOption(scheme transform.IDScheme, id string) (*metadata.CategoryOption, error) {
	return ix.categoryOptions.lookup(scheme, id)
}

// CategoryOptionCombo finds a category (or attribute) option combo by id in scheme.
func (ix *Index) CategoryOptionCombo(scheme transform.IDScheme, id string) (*metadata.CategoryOptionCombo, error) {
	return ix.categoryOptionCombos.lookup(scheme, id)
}

// DataSet finds a data set by id in scheme.
func (ix *Index) DataSet(scheme transform.IDScheme, id string) (*metadata.DataSet, error) {
	return ix.dataSets.lookup(scheme, id)
}

// OrgUnit finds an org unit by id in scheme.
func (ix *Index) OrgUnit(scheme transform.IDScheme, id string) (*metadata.OrgUnit, error) {
	return ix.orgUnits.lookup(scheme, id)
}

// DataSetsOf returns the data sets that hold the data element with uid de.
func (ix *Index) DataSetsOf(de string) []*metadata.DataSet { return ix.dataSetsOf[de] }

// ComboOf returns the option combo of the category combo with uid combo whose options are
// exactly optionUIDs, in any order, or nil.
func (ix *Index) ComboOf(combo string, optionUIDs []string) *metadata.CategoryOptionCombo {
	m := ix.cocByOptions[combo]
	if m == nil {
		return nil
	}
	// Build the key on the stack: this runs for every ADX value.
	var sorted [8]string
	ids := append(sorted[:0], optionUIDs...)
	slices.Sort(ids)
	var buf [128]byte
	key := buf[:0]
	for i, id := range ids {
		if i > 0 {
			key = append(key, ',')
		}
		key = append(key, id...)
	}
	return m[string(key)]
}

// InCombo reports whether the option combo coc belongs to the category combo with uid combo.
func (ix *Index) InCombo(coc *metadata.CategoryOptionCombo, combo string) bool {
	return ix.comboOfCOC[coc.ID] == combo
}

// ElementCombo returns the category combo of de's values in data set ds: the data set's
// override when it has one, else the data element's own. ds may be nil.
func (ix *Index) ElementCombo(de *metadata.DataElement, ds *metadata.DataSet) *metadata.CategoryCombo {
	uid := de.CategoryCombo.ID
	if ds != nil {
		for _, dse := range ds.DataSetElements {
			if dse.DataElement.ID == de.ID && dse.CategoryCombo.ID != "" {
				uid = dse.CategoryCombo.ID
			}
		}
	}
	if uid == "" {
		uid = metadata.DefaultCategoryComboUID
	}
	cc, _ := ix.categoryCombos.lookup(transform.SchemeUID, uid)
	return cc
}

func optionSetKey(ids []string) string {
	if len(ids) == 1 {
		return ids[0]
	}
	s := slices.Clone(ids)
	slices.Sort(s)
	return strings.Join(s, ",")
}

// table indexes one kind of object by every scheme. An id that names two objects (names
// and attribute values need not be unique) maps to amb, so a lookup reports it instead of
// picking one.
type table[T any] struct {
	kind            string
	uid, code, name map[string]*T
	attr            map[string]map[string]*T
	amb             *T
}

func newTable[T any](kind string, objs []T, objectOf func(*T) *metadata.Object) table[T] {
	t := table[T]{
		kind: kind, amb: new(T),
		uid:  make(map[string]*T, len(objs)),
		code: make(map[string]*T, len(objs)),
		name: make(map[string]*T, len(objs)),
		attr: map[string]map[string]*T{},
	}
	put := func(m map[string]*T, k string, v *T) {
		if k == "" {
			return
		}
		if old, ok := m[k]; ok && old != v {
			m[k] = t.amb
			return
		}
		m[k] = v
	}
	for i := range objs {
		p := &objs[i]
		o := objectOf(p)
		put(t.uid, o.ID, p)
		put(t.code, o.Code, p)
		put(t.name, o.Name, p)
		for _, av := range o.AttributeValues {
			m := t.attr[av.Attribute.ID]
			if m == nil {
				m = map[string]*T{}
				t.attr[av.Attribute.ID] = m
			}
			put(m, av.Value, p)
		}
	}
	return t
}

func (t *table[T]) lookup(scheme transform.IDScheme, id string) (*T, error) {
	var m map[string]*T
	switch scheme {
	case transform.SchemeUID, "":
		m = t.uid
	case transform.SchemeCode:
		m = t.code
	case transform.SchemeName:
		m = t.name
	default:
		attr, ok := scheme.Attribute()
		if !ok {
			return nil, fmt.Errorf("id scheme %s is not supported for lookups (want UID, CODE, NAME or ATTRIBUTE:<uid>)", scheme)
		}
		m = t.attr[attr]
	}
	p := m[id]
	switch {
	case p == nil:
		return nil, fmt.Errorf("no %s has %s %q", t.kind, schemeWord(scheme), id)
	case p == t.amb:
		return nil, fmt.Errorf("%s %q names more than one %s", schemeWord(scheme), id, t.kind)
	}
	return p, nil
}

// schemeWord names a scheme in a message: uid, code, name, attribute <uid>.
func schemeWord(s transform.IDScheme) string {
	if a, ok := s.Attribute(); ok {
		return "attribute " + a + " value"
	}
	if s == "" {
		return "uid"
	}
	return strings.ToLower(string(s))
}
