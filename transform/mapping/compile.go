package mapping

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
	"go.yaml.in/yaml/v3"
)

// SetConfig is one entry of the mappings: section as written (see the package
// documentation for the meaning of each key). The caller decodes it from its configuration
// file (its YAML tags are the keys) and hands it to Sets.Add.
type SetConfig struct {
	Name             string         `yaml:"name"`
	Description      string         `yaml:"description"`
	SourceIDScheme   string         `yaml:"source_id_scheme"`
	TargetIDScheme   string         `yaml:"target_id_scheme"`
	OrgUnits         OrgUnitsConfig `yaml:"org_units"`
	Periods          string         `yaml:"periods"`
	SourcePeriodType string         `yaml:"source_period_type"`
	Rules            []RuleConfig   `yaml:"rules"`
	Tables           []string       `yaml:"tables"`
}

// RuleConfig is one inline rule of a set.
type RuleConfig struct {
	Source      string `yaml:"source"`
	SourceCOC   string `yaml:"source_coc"`
	DataElement string `yaml:"data_element"`
	COC         string `yaml:"coc"`
	AOC         string `yaml:"aoc"`
	DataSet     string `yaml:"data_set"`
	Scale       string `yaml:"scale"`
	Round       *int   `yaml:"round"`
}

// OrgUnitsConfig is "same", or a mapping with exactly one of scheme, table and map.
type OrgUnitsConfig struct {
	Scheme         string    `yaml:"scheme"`
	Table          string    `yaml:"table"`
	Map            yaml.Node `yaml:"map"`
	TargetIDScheme string    `yaml:"target_id_scheme"`
	same           bool
}

// UnmarshalYAML accepts the scalar "same" besides the mapping form.
func (o *OrgUnitsConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if !strings.EqualFold(n.Value, "same") {
			// A TypeError lets the decoder go on with the other keys, so their problems are
			// reported too.
			return &yaml.TypeError{Errors: []string{fmt.Sprintf(
				"line %d: org_units %q: want same, {scheme: CODE}, {table: FILE.csv} or {map: {...}}", n.Line, n.Value)}}
		}
		o.same = true
		return nil
	}
	type plain OrgUnitsConfig
	return n.Decode((*plain)(o))
}

// Origin is where a rule or a set is written: a file and a line, and for YAML the config
// path (mappings[0].rules[3]).
type Origin struct {
	File string
	Line int
	Path string
}

// String is file:line, as editors and compilers write it.
func (o Origin) String() string {
	if o.Line > 0 {
		return fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	return o.File
}

func (o Origin) problem(format string, args ...any) Problem {
	return Problem{Origin: o, Msg: fmt.Sprintf(format, args...)}
}

// Sets are the compiled mapping sets of a configuration, by name.
type Sets struct {
	list   []*Set
	byName map[string]*Set
}

// Set returns the set called name.
func (s *Sets) Set(name string) (*Set, bool) {
	if s == nil {
		return nil, false
	}
	set, ok := s.byName[name]
	return set, ok
}

// All returns the sets in the order the configuration lists them.
func (s *Sets) All() []*Set {
	if s == nil {
		return nil
	}
	return s.list
}

// Set is one compiled mapping set: how its rules name things, and the rules.
type Set struct {
	Name        string
	Description string
	// SourceScheme is how rules name source items; "" means ids are compared as written,
	// whatever scheme the batch declares.
	SourceScheme transform.IDScheme
	// TargetScheme is how rules name target objects (UID unless configured).
	TargetScheme transform.IDScheme
	OrgUnits     OrgUnitMapping
	// Rollup is periods: rollup; false keeps every period as it is.
	Rollup bool
	// SourcePeriodType is the declared period type of the source values (0 when not
	// declared); Check compares it with the target data sets.
	SourcePeriodType period.Type
	Rules            []*Rule
	Origin

	bySource map[string]*ruleGroup
}

// ruleGroup holds the rules of one source id: the one for any category option combo and
// those for a specific one.
type ruleGroup struct {
	any   *Rule
	byCOC map[string]*Rule
}

// Rule maps one source item (optionally with one source category option combo) to a target
// data element, combos and data set. Ids are written as the set's schemes say.
type Rule struct {
	Source      string
	SourceCOC   string
	DataElement string
	COC         string
	AOC         string
	DataSet     string
	// Scale multiplies numeric values; "" means no scaling. Kept as written.
	Scale string
	// Round is the number of decimals a transformed value is rounded to (half away from
	// zero); -1 means no rounding.
	Round int
	Origin

	ord   int // position in Set.Rules
	scale *big.Rat
}

// transforms reports whether the rule changes values.
func (r *Rule) transforms() bool { return r.scale != nil || r.Round >= 0 }

// OrgUnitMapping says how source org unit ids become target org units.
type OrgUnitMapping struct {
	// Scheme is the target id scheme the source ids are written in when there is no table:
	// "" means the source and the target share ids, read in the batch's org unit scheme.
	Scheme transform.IDScheme
	// Table maps source ids to target ids written in TableScheme; nil when Scheme applies.
	Table       []OrgUnitRule
	TableScheme transform.IDScheme

	byID map[string]*OrgUnitRule
}

// OrgUnitRule is one row of an org unit table.
type OrgUnitRule struct {
	Source string
	Target string
	Origin
}

// NewSets returns an empty list of sets, to Add the configuration's sets to.
func NewSets() *Sets { return &Sets{byName: map[string]*Set{}} }

// Compile compiles the sets of a configuration's mappings: section, sets[i] being its i-th
// entry (at path mappings[i]), reads the CSV tables they name (relative to loc.File()), and
// checks that every source's mapping names a set (sources[i] being the i-th source). It
// reports every problem with its file and line. When problems is not empty the sets are
// incomplete and must not be used to map.
func Compile(sets []SetConfig, sources []Source, loc Locator) (*Sets, Problems) {
	out := NewSets()
	var probs Problems
	for i := range sets {
		probs = append(probs, out.Add(&sets[i], fmt.Sprintf("mappings[%d]", i), loc)...)
	}
	return out, append(probs, out.CheckSources(sources, loc)...)
}

// Add compiles one set, written at path (mappings[i]) of the file loc describes, and adds
// it unless its name is missing or taken.
func (s *Sets) Add(sc *SetConfig, path string, loc Locator) Problems {
	set, probs := compileSet(loc, path, sc)
	if set.Name == "" {
		return probs
	}
	if old, dup := s.byName[set.Name]; dup {
		return append(probs, at(loc, path+".name").problem("mapping set %q is defined twice (also at line %d)", set.Name, old.Line))
	}
	s.byName[set.Name] = set
	s.list = append(s.list, set)
	return probs
}

// CheckSources checks that every source with a mapping names a set with rules (or passes
// its items through); sources[i] is the configuration's i-th source.
func (s *Sets) CheckSources(sources []Source, loc Locator) Problems {
	var probs Problems
	for i := range sources {
		src := &sources[i]
		if src.Mapping == "" {
			continue
		}
		set, ok := s.byName[src.Mapping]
		path := fmt.Sprintf("sources[%d].mapping", i)
		switch {
		case !ok:
			probs = append(probs, at(loc, path).problem("no mapping set is called %q%s", src.Mapping, knownNames(s)))
		case len(set.Rules) == 0 && src.Unmapped != "pass":
			// A set without rules only resolves what arrives (ADX categories, org
			// units) for a source that passes its items through; any other policy
			// would drop or reject everything.
			probs = append(probs, at(loc, path).problem(
				"mapping set %q has no rules, so source %q (unmapped: %s) would map nothing: add rules or tables, or set unmapped: pass",
				src.Mapping, src.Name, src.Unmapped))
		}
	}
	return probs
}

func knownNames(sets *Sets) string {
	if len(sets.list) == 0 {
		return " (the mappings section defines none)"
	}
	names := make([]string, len(sets.list))
	for i, s := range sets.list {
		names[i] = s.Name
	}
	return "; known sets: " + strings.Join(names, ", ")
}

var setNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func compileSet(loc Locator, path string, sc *SetConfig) (*Set, Problems) {
	var probs Problems
	add := func(p, format string, args ...any) { probs = append(probs, at(loc, p).problem(format, args...)) }
	set := &Set{
		Name: sc.Name, Description: sc.Description,
		Origin:   at(loc, path),
		bySource: map[string]*ruleGroup{},
	}
	if !setNameRE.MatchString(sc.Name) {
		add(path+".name", "%q: a mapping set needs a name of 1-64 letters, digits, '.', '-' or '_'", sc.Name)
		set.Name = ""
	}
	var err error
	if set.SourceScheme, err = lookupScheme(sc.SourceIDScheme); err != nil {
		add(path+".source_id_scheme", "%v", err)
	}
	if set.TargetScheme, err = lookupScheme(sc.TargetIDScheme); err != nil {
		add(path+".target_id_scheme", "%v", err)
	}
	set.TargetScheme = set.TargetScheme.Or(transform.SchemeUID)
	switch strings.ToLower(sc.Periods) {
	case "", "keep":
	case "rollup":
		set.Rollup = true
	default:
		add(path+".periods", "%q: want keep or rollup", sc.Periods)
	}
	if sc.SourcePeriodType != "" {
		if set.SourcePeriodType, err = period.TypeByName(sc.SourcePeriodType); err != nil {
			add(path+".source_period_type", "%q: not a DHIS2 period type such as Monthly, Quarterly or Yearly", sc.SourcePeriodType)
		}
	}
	probs = append(probs, compileOrgUnits(loc, path+".org_units", &sc.OrgUnits, set)...)

	seen := map[[2]string]*Rule{}
	addRule := func(rc *RuleConfig, o Origin) {
		r, ps := compileRule(rc, o)
		probs = append(probs, ps...)
		if r == nil {
			return
		}
		k := [2]string{r.Source, r.SourceCOC}
		if old, dup := seen[k]; dup {
			what := fmt.Sprintf("source %q", r.Source)
			if r.SourceCOC != "" {
				what += fmt.Sprintf(" with source_coc %q", r.SourceCOC)
			}
			probs = append(probs, o.problem("a second rule for %s (the first is at %s)", what, old.Origin))
			return
		}
		seen[k] = r
		r.ord = len(set.Rules)
		set.Rules = append(set.Rules, r)
		g := set.bySource[r.Source]
		if g == nil {
			g = &ruleGroup{}
			set.bySource[r.Source] = g
		}
		if r.SourceCOC == "" {
			g.any = r
		} else {
			if g.byCOC == nil {
				g.byCOC = map[string]*Rule{}
			}
			g.byCOC[r.SourceCOC] = r
		}
	}
	for i := range sc.Rules {
		p := fmt.Sprintf("%s.rules[%d]", path, i)
		addRule(&sc.Rules[i], at(loc, p))
	}
	for i, tbl := range sc.Tables {
		p := fmt.Sprintf("%s.tables[%d]", path, i)
		file := resolvePath(loc.File(), tbl)
		rows, ps := readTable(file, ruleColumns, []string{"source", "data_element"})
		if ps.fileErr != nil {
			add(p, "%v", ps.fileErr)
			continue
		}
		probs = append(probs, ps.probs...)
		for _, row := range rows {
			rc := RuleConfig{Source: row.get("source"), SourceCOC: row.get("source_coc"), DataElement: row.get("data_element"),
				COC: row.get("coc"), AOC: row.get("aoc"), DataSet: row.get("data_set"), Scale: row.get("scale")}
			o := Origin{File: file, Line: row.line}
			if s := row.get("round"); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil {
					probs = append(probs, o.problem("round %q: want a whole number of decimals", s))
					continue
				}
				rc.Round = &n
			}
			addRule(&rc, o)
		}
	}
	return set, probs
}

// lookupScheme parses an id scheme the engine can look objects up by.
func lookupScheme(s string) (transform.IDScheme, error) {
	sc, err := transform.ParseIDScheme(s)
	if err != nil {
		return "", err
	}
	if sc == "ID" || sc == "UUID" {
		return "", fmt.Errorf("id scheme %q: want UID, CODE, NAME or ATTRIBUTE:<uid>", s)
	}
	return sc, nil
}

// resolvePath reads a table's path relative to the configuration file.
func resolvePath(configFile, p string) string {
	if filepath.IsAbs(p) || configFile == "" {
		return p
	}
	return filepath.Join(filepath.Dir(configFile), p)
}

func compileRule(rc *RuleConfig, at Origin) (*Rule, Problems) {
	var probs Problems
	r := &Rule{
		Source: strings.TrimSpace(rc.Source), SourceCOC: strings.TrimSpace(rc.SourceCOC),
		DataElement: strings.TrimSpace(rc.DataElement), COC: strings.TrimSpace(rc.COC),
		AOC: strings.TrimSpace(rc.AOC), DataSet: strings.TrimSpace(rc.DataSet),
		Scale: strings.TrimSpace(rc.Scale), Round: -1, Origin: at,
	}
	if r.Source == "" {
		probs = append(probs, at.problem("a rule needs source: the source item it matches"))
	}
	if r.DataElement == "" {
		probs = append(probs, at.problem("rule %q needs data_element: the target data element", r.Source))
	}
	if r.Scale != "" {
		x, ok := parseDecimal(r.Scale)
		switch {
		case !ok:
			probs = append(probs, at.problem("rule %q: scale %q is not a number", r.Source, r.Scale))
		case x.Sign() == 0:
			probs = append(probs, at.problem("rule %q: scale 0 would turn every value into 0", r.Source))
		default:
			r.scale = x
		}
	}
	if rc.Round != nil {
		if *rc.Round < 0 || *rc.Round > maxRound {
			probs = append(probs, at.problem("rule %q: round %d: want 0 to %d decimals", r.Source, *rc.Round, maxRound))
		} else {
			r.Round = *rc.Round
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return r, nil
}

func compileOrgUnits(loc Locator, path string, oc *OrgUnitsConfig, set *Set) Problems {
	var probs Problems
	add := func(p, format string, args ...any) { probs = append(probs, at(loc, p).problem(format, args...)) }
	n := 0
	for _, given := range []bool{oc.same, oc.Scheme != "", oc.Table != "", oc.Map.Kind != 0} {
		if given {
			n++
		}
	}
	if n > 1 {
		add(path, "give one of scheme, table and map")
		return probs
	}
	ou := &set.OrgUnits
	var err error
	if ou.TableScheme, err = lookupScheme(oc.TargetIDScheme); err != nil {
		add(path+".target_id_scheme", "%v", err)
	}
	if oc.TargetIDScheme != "" && oc.Table == "" && oc.Map.Kind == 0 {
		add(path+".target_id_scheme", "applies to a table or map only")
	}
	ou.TableScheme = ou.TableScheme.Or(set.TargetScheme)
	if oc.Scheme != "" && !strings.EqualFold(oc.Scheme, "same") {
		if ou.Scheme, err = lookupScheme(oc.Scheme); err != nil {
			add(path+".scheme", "%v", err)
		}
	}
	addRow := func(r OrgUnitRule) {
		if r.Source == "" || r.Target == "" {
			probs = append(probs, r.problem("an org unit row needs both source and target"))
			return
		}
		if old, dup := ou.byID[r.Source]; dup {
			probs = append(probs, r.problem("org unit %q is mapped twice (the first is at %s)", r.Source, old.Origin))
			return
		}
		ou.Table = append(ou.Table, r)
		ou.byID[r.Source] = &r
	}
	switch {
	case oc.Table != "":
		ou.byID = map[string]*OrgUnitRule{}
		file := resolvePath(loc.File(), oc.Table)
		rows, ps := readTable(file, []string{"source", "target"}, []string{"source", "target"})
		if ps.fileErr != nil {
			add(path+".table", "%v", ps.fileErr)
			break
		}
		probs = append(probs, ps.probs...)
		for _, row := range rows {
			addRow(OrgUnitRule{Source: row.get("source"), Target: row.get("target"), Origin: Origin{File: file, Line: row.line}})
		}
	case oc.Map.Kind == yaml.MappingNode:
		ou.byID = map[string]*OrgUnitRule{}
		for i := 0; i+1 < len(oc.Map.Content); i += 2 {
			k, v := oc.Map.Content[i], oc.Map.Content[i+1]
			addRow(OrgUnitRule{Source: strings.TrimSpace(k.Value), Target: strings.TrimSpace(v.Value),
				Origin: Origin{File: loc.File(), Line: k.Line, Path: path + ".map." + k.Value}})
		}
	case oc.Map.Kind != 0:
		add(path+".map", "want a mapping of source org unit ids to target ids")
	}
	// Rows point into ou.Table only after it stops growing.
	for i := range ou.Table {
		ou.byID[ou.Table[i].Source] = &ou.Table[i]
	}
	return probs
}

var ruleColumns = []string{"source", "source_coc", "data_element", "coc", "aoc", "data_set", "scale", "round"}

type tableRow struct {
	line   int
	cols   map[string]int
	fields []string
}

func (r *tableRow) get(col string) string {
	i, ok := r.cols[col]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

type tableProblems struct {
	probs   Problems
	fileErr error
}

// readTable reads a CSV table with a header row naming its columns. Columns are matched
// case-insensitively, blank rows and rows starting with # are skipped, a UTF-8 byte order
// mark is ignored, and a header with semicolons and no comma switches the delimiter to ';'
// (what spreadsheets write in many locales).
func readTable(file string, known, required []string) ([]tableRow, tableProblems) {
	var tp tableProblems
	data, err := os.ReadFile(file)
	if err != nil {
		tp.fileErr = fmt.Errorf("reading mapping table: %w", err)
		return nil, tp
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	if h := headerLine(data); bytes.Contains(h, []byte(";")) && !bytes.Contains(h, []byte(",")) {
		r.Comma = ';'
	}
	prob := func(line int, format string, args ...any) {
		tp.probs = append(tp.probs, Problem{Origin: Origin{File: file, Line: line}, Msg: fmt.Sprintf(format, args...)})
	}
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			prob(1, "empty table: want a header row naming the columns (%s)", strings.Join(known, ","))
		} else {
			csvProblem(prob, err)
		}
		return nil, tp
	}
	headerLine, _ := r.FieldPos(0)
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
			continue
		case !slices.Contains(known, h):
			prob(headerLine, "unknown column %q; known columns: %s", h, strings.Join(known, ", "))
		case hasKey(cols, h):
			prob(headerLine, "column %q appears twice", h)
		default:
			cols[h] = i
		}
	}
	for _, req := range required {
		if !hasKey(cols, req) {
			prob(headerLine, "missing column %q; the header must name %s", req, strings.Join(required, " and "))
		}
	}
	if len(tp.probs) > 0 {
		return nil, tp
	}
	var rows []tableRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			csvProblem(prob, err)
			return rows, tp
		}
		line, _ := r.FieldPos(0)
		if len(rec) > len(header) {
			prob(line, "%d fields, but the header names %d columns", len(rec), len(header))
			continue
		}
		if !slices.ContainsFunc(rec, func(s string) bool { return strings.TrimSpace(s) != "" }) {
			continue
		}
		rows = append(rows, tableRow{line: line, cols: cols, fields: rec})
	}
	return rows, tp
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func csvProblem(prob func(int, string, ...any), err error) {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		prob(pe.Line, "column %d: %v", pe.Column, pe.Err)
		return
	}
	prob(0, "%v", err)
}

// headerLine is the first line that is neither blank nor a comment.
func headerLine(data []byte) []byte {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return line
		}
	}
	return nil
}

// Files lists every file the sets were read from (the config file and each CSV table), so a
// caller can notice when one changes.
func (s *Sets) Files() []string {
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, set := range s.All() {
		add(set.File)
		for _, r := range set.Rules {
			add(r.File)
		}
		for _, r := range set.OrgUnits.Table {
			add(r.File)
		}
	}
	return out
}
