package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// The universe is the key space of the end-to-end, capacity and scale runs: a generated DHIS2
// instance large enough that every value a whole `tally bench` session sends has a key of
// its own, so a sink can tell "arrived once" from "arrived twice" or "never arrived". Value
// number i (0 ≤ i < UniverseSize) is one data value, and its key alone gives i back, which
// lets the counting sink keep one receipt counter per value instead of a map of keys.
//
// The index runs data element fastest, then option combo, org unit and month, so that any
// run of 80 consecutive values shares an org unit and a period (an ADX group), and any
// UniverseSize consecutive values have distinct keys. Values arrive in a source's own codes
// (PI_DE_07, as a tracker program indicator would name them) and are mapped by code rules to
// the target's data elements (BENCH_DE_07); org units and option combos keep their codes.
const (
	uElements = 20
	uCombos   = 4
	uOrgUnits = 5000
	uMonths   = 120 // 2015-01 … 2024-12: past periods every data set accepts
	// UniverseSize is the number of distinct keys (and so of values) the universe holds.
	UniverseSize = uElements * uCombos * uOrgUnits * uMonths

	universeDataSet = "BENCH_DS"
	universeRoot    = "BENCH_ROOT"
	firstYear       = 2015
)

// Option combos of the SEX_AGE combo, with their options (the ADX disaggregation).
var uComboCodes = [uCombos]string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"}

// names holds every code and UID the universe uses, built once per process (the 5,000 org
// unit codes are formatted once, not once per value).
type names struct {
	deCode, deSource, deUID [uElements]string
	cocUID                  [uCombos]string
	ouCode, ouUID           []string
	period                  [uMonths]string
}

func newNames() *names {
	n := &names{ouCode: make([]string, uOrgUnits), ouUID: make([]string, uOrgUnits)}
	for d := range uElements {
		n.deCode[d] = fmt.Sprintf("BENCH_DE_%02d", d)
		n.deSource[d] = fmt.Sprintf("PI_DE_%02d", d)
		n.deUID[d] = fmt.Sprintf("Bde%08d", d)
	}
	for c := range uCombos {
		n.cocUID[c] = fmt.Sprintf("Bcc%08d", c)
	}
	for o := range uOrgUnits {
		n.ouCode[o] = fmt.Sprintf("BENCH_OU_%04d", o)
		n.ouUID[o] = fmt.Sprintf("Bou%08d", o)
	}
	for m := range uMonths {
		n.period[m] = fmt.Sprintf("%04d%02d", firstYear+m/12, m%12+1)
	}
	return n
}

// key is a value's key as indexes into the universe's lists.
type key struct{ de, coc, ou, month int }

// keyOf returns the key of value number i (taken modulo UniverseSize).
func keyOf(i int) key {
	i %= UniverseSize
	return key{de: i % uElements, coc: (i / uElements) % uCombos,
		ou: (i / (uElements * uCombos)) % uOrgUnits, month: i / (uElements * uCombos * uOrgUnits)}
}

// index is the inverse of keyOf.
func (k key) index() int {
	return k.de + uElements*(k.coc+uCombos*(k.ou+uOrgUnits*k.month))
}

// expectedValue is the value the generator writes for value number i: never "0", which
// DHIS2 drops silently for data elements whose zero is not significant (spec dhis2.md §1.4).
func expectedValue(i int) string { return strconv.Itoa(i%97 + 1) }

// label names value number i's key in the target's codes, for messages.
func (n *names) label(i int) string {
	k := keyOf(i)
	return n.deCode[k.de] + "/" + n.period[k.month] + "/" + n.ouCode[k.ou] + "/" + uComboCodes[k.coc]
}

// UniverseMetadata is the universe as DHIS2 metadata, for the emulator (and the counting
// sink's metadata endpoints): one root with 5,000 facilities, 20 integer data elements
// disaggregated by sex and age, one monthly data set holding them all, assigned to every
// facility, never expiring; and the sample's admin user (dhis2test.SampleUser).
func UniverseMetadata() *dhis2test.Metadata {
	n := newNames()
	m := &dhis2test.Metadata{
		CategoryOptions: []*dhis2test.CategoryOption{
			{ID: "Bco00000000", Code: "F", Name: "Female"}, {ID: "Bco00000001", Code: "M", Name: "Male"},
			{ID: "Bco00000002", Code: "LT1", Name: "<1 year"}, {ID: "Bco00000003", Code: "1TO4", Name: "1-4 years"},
		},
		Categories: []*dhis2test.Category{
			{ID: "Bca00000000", Code: "SEX", Name: "Sex", Options: []string{"F", "M"}},
			{ID: "Bca00000001", Code: "AGE", Name: "Age", Options: []string{"LT1", "1TO4"}},
		},
		CategoryCombos: []*dhis2test.CategoryCombo{{ID: "Bcb00000000", Code: "SEX_AGE", Name: "Sex and age", Categories: []string{"SEX", "AGE"}}},
		Users: []*dhis2test.User{{ID: "Bus00000000", Username: dhis2test.SampleUser, Password: dhis2test.SamplePassword,
			Authorities: []string{"ALL"}, OrgUnits: []string{universeRoot}}},
	}
	for c, code := range uComboCodes {
		sex, age, _ := strings.Cut(code, "_")
		m.CategoryOptionCombos = append(m.CategoryOptionCombos, &dhis2test.CategoryOptionCombo{ID: n.cocUID[c], Code: code,
			Name: code, CategoryCombo: "SEX_AGE", Options: []string{sex, age}})
	}
	ds := &dhis2test.DataSet{ID: "Bds00000000", Code: universeDataSet, Name: "Bench monthly", PeriodType: "Monthly",
		OrgUnits: make([]string, 0, uOrgUnits)}
	for d := range uElements {
		m.DataElements = append(m.DataElements, &dhis2test.DataElement{ID: n.deUID[d], Code: n.deCode[d],
			Name: "Bench data element " + strconv.Itoa(d), ValueType: "INTEGER_ZERO_OR_POSITIVE", ZeroIsSignificant: true,
			CategoryCombo: "SEX_AGE"})
		ds.DataElements = append(ds.DataElements, n.deUID[d])
	}
	m.OrgUnits = append(m.OrgUnits, &dhis2test.OrgUnit{ID: "Bou99999999", Code: universeRoot, Name: "Bench country", OpeningDate: "2000-01-01"})
	for o := range uOrgUnits {
		m.OrgUnits = append(m.OrgUnits, &dhis2test.OrgUnit{ID: n.ouUID[o], Code: n.ouCode[o], Name: "Bench facility " + strconv.Itoa(o),
			Parent: universeRoot, OpeningDate: "2000-01-01"})
		ds.OrgUnits = append(ds.OrgUnits, n.ouUID[o])
	}
	m.DataSets = []*dhis2test.DataSet{ds}
	return m
}

// MinRules is the smallest mapping set that maps every data element of the universe.
const MinRules = uElements

// mappingRules is the bench's mapping set as (source code, target data element code)
// pairs: first the universe's data elements, then padding rules that no value uses, so that
// a larger table costs what it costs in a real mapping set.
func mappingRules(n int) [][2]string {
	names := newNames()
	rules := make([][2]string, 0, n)
	for i := range n {
		if i < uElements {
			rules = append(rules, [2]string{names.deSource[i], names.deCode[i]})
			continue
		}
		rules = append(rules, [2]string{fmt.Sprintf("PI_PAD_%03d", i), names.deCode[i%uElements]})
	}
	return rules
}

// UniverseMappingYAML is the mapping set "bench" of n code rules, as Tally's configuration
// writes it.
func UniverseMappingYAML(n int) string {
	var b strings.Builder
	b.WriteString("mappings:\n  - name: bench\n    source_id_scheme: CODE\n    target_id_scheme: CODE\n    rules:\n")
	for _, r := range mappingRules(n) {
		fmt.Fprintf(&b, "      - {source: %s, data_element: %s}\n", r[0], r[1])
	}
	return b.String()
}

// mappingCSV is the same rules as the peer script reads them: "source,target" lines.
func mappingCSV(n int) string {
	var b strings.Builder
	for _, r := range mappingRules(n) {
		b.WriteString(r[0] + "," + r[1] + "\n")
	}
	return b.String()
}

// resolver turns a received key, written in codes or UIDs, back into a universe index.
type resolver struct {
	names                 *names
	deCode, deUID         map[string]int
	ouCode, ouUID         map[string]int
	cocCode, cocUID       map[string]int
	periods               map[string]int
	defaultAOC, aocByCode string
}

func newResolver() *resolver {
	n := newNames()
	r := &resolver{names: n, deCode: map[string]int{}, deUID: map[string]int{}, ouCode: map[string]int{}, ouUID: map[string]int{},
		cocCode: map[string]int{}, cocUID: map[string]int{}, periods: map[string]int{},
		defaultAOC: dhis2test.DefaultCategoryOptionComboUID, aocByCode: "default"}
	for d := range uElements {
		r.deCode[n.deCode[d]], r.deUID[n.deUID[d]] = d, d
	}
	for o := range uOrgUnits {
		r.ouCode[n.ouCode[o]], r.ouUID[n.ouUID[o]] = o, o
	}
	for c := range uCombos {
		r.cocCode[uComboCodes[c]], r.cocUID[n.cocUID[c]] = c, c
	}
	for m := range uMonths {
		r.periods[n.period[m]] = m
	}
	return r
}

// keyProblem says which part of a key the universe does not hold, as the DHIS2 error code
// an import would answer with (spec dhis2.md §1.5: E7610 data element, E7611 period, E7612
// org unit, E7613 category option combo, E7615 attribute option combo).
type keyProblem struct {
	code, property, object string
}

// resolve returns the universe index of a key written with codes (byCode) or UIDs.
func (r *resolver) resolve(de, pe, ou, coc, aoc string, byCode [3]bool) (int, *keyProblem) {
	pick := func(code bool, byCode, byUID map[string]int, id string) (int, bool) {
		if code {
			v, ok := byCode[id]
			return v, ok
		}
		v, ok := byUID[id]
		return v, ok
	}
	d, ok := pick(byCode[0], r.deCode, r.deUID, de)
	if !ok {
		return 0, &keyProblem{"E7610", "dataElement", de}
	}
	m, ok := r.periods[pe]
	if !ok {
		return 0, &keyProblem{"E7611", "period", pe}
	}
	o, ok := pick(byCode[1], r.ouCode, r.ouUID, ou)
	if !ok {
		return 0, &keyProblem{"E7612", "orgUnit", ou}
	}
	c, ok := pick(byCode[2], r.cocCode, r.cocUID, coc)
	if !ok {
		return 0, &keyProblem{"E7613", "categoryOptionCombo", coc}
	}
	if aoc != "" && aoc != r.defaultAOC && !(byCode[2] && aoc == r.aocByCode) {
		return 0, &keyProblem{"E7615", "attributeOptionCombo", aoc}
	}
	return key{de: d, coc: c, ou: o, month: m}.index(), nil
}
