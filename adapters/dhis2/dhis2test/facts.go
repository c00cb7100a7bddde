package dhis2test

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	periods "github.com/tally-hmis/tally/transform/period"
	yaml "go.yaml.in/yaml/v3"
)

// The analytics fact table (spec dhis2.md §6, §13 item 14).
//
// DHIS2 analytics answers from analytics tables built out of events,
// enrollments and aggregate data values. The emulator models those tables as
// a flat list of facts: a number for a data item (a program indicator or a
// data element, optionally with its category option combo and attribute
// option combo) in a period (daily, weekly, monthly, ...) at an org unit
// (normally a facility). Analytics aggregates facts up the org unit tree and
// into longer periods by summing them (see analytics.go).
//
// Facts live in Metadata.Facts, so they are part of what a server is seeded
// with (WithMetadata, UpdateMetadata) and are replaced atomically with it.
// Tests set them with Server.SetFacts and Server.AddFacts.

// Fact is one row of the analytics fact table.
type Fact struct {
	// DX is a program indicator or a data element, as UID, code or name.
	DX string `json:"dx" yaml:"dx"`
	// Period is a DHIS2 period id: "20240115" (daily), "202401" (monthly), ...
	Period string `json:"pe" yaml:"pe"`
	// OrgUnit is the org unit (UID, code or name), normally a facility.
	OrgUnit string `json:"ou" yaml:"ou"`
	// COC and AOC disaggregate data element facts (UID, code or name; empty
	// means the default combo). Program indicator facts leave them empty:
	// analytics takes a program indicator's combos from its aggregate export
	// properties.
	COC string `json:"coc,omitempty" yaml:"coc,omitempty"`
	AOC string `json:"aoc,omitempty" yaml:"aoc,omitempty"`
	// Value is the number (count, sum) for the cell.
	Value float64 `json:"value" yaml:"value"`
}

// FactTable is the list of facts held in Metadata.Facts. In YAML and JSON a
// row may also be a series, {dx, ou, pe, values: [v1, v2, ...]}, which stands
// for one fact per consecutive period of pe's type starting at pe (the
// bundled sample uses it for its monthly numbers).
type FactTable []Fact

// factRow is the wire form of a FactTable row.
type factRow struct {
	DX      string    `json:"dx" yaml:"dx"`
	Period  string    `json:"pe" yaml:"pe"`
	OrgUnit string    `json:"ou" yaml:"ou"`
	COC     string    `json:"coc,omitempty" yaml:"coc,omitempty"`
	AOC     string    `json:"aoc,omitempty" yaml:"aoc,omitempty"`
	Value   *float64  `json:"value,omitempty" yaml:"value,omitempty"`
	Values  []float64 `json:"values,omitempty" yaml:"values,omitempty"`
}

func expandFactRows(rows []factRow) (FactTable, error) {
	var out FactTable
	var errs []error
	for i, r := range rows {
		base := Fact{DX: r.DX, Period: r.Period, OrgUnit: r.OrgUnit, COC: r.COC, AOC: r.AOC}
		switch {
		case r.Value != nil && r.Values != nil:
			errs = append(errs, fmt.Errorf("fact %d: value and values are exclusive", i))
		case r.Value != nil:
			base.Value = *r.Value
			out = append(out, base)
		case len(r.Values) > 0:
			p, err := periods.Parse(r.Period)
			if err != nil {
				errs = append(errs, fmt.Errorf("fact %d: %w", i, err))
				continue
			}
			for _, v := range r.Values {
				f := base
				f.Period, f.Value = p.ID(), v
				out = append(out, f)
				p = p.Next()
			}
		default:
			errs = append(errs, fmt.Errorf("fact %d: needs value or values", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// UnmarshalJSON accepts plain facts and series rows.
func (t *FactTable) UnmarshalJSON(b []byte) error {
	var rows []factRow
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rows); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	out, err := expandFactRows(rows)
	if err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	*t = out
	return nil
}

// UnmarshalYAML accepts plain facts and series rows; unknown keys are errors.
func (t *FactTable) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		*t = nil
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("facts: line %d: want a list", n.Line)
	}
	known := []string{"dx", "pe", "ou", "coc", "aoc", "value", "values"}
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			return fmt.Errorf("facts: line %d: want a mapping", item.Line)
		}
		for i := 0; i < len(item.Content); i += 2 {
			if k := item.Content[i].Value; !slices.Contains(known, k) {
				return fmt.Errorf("facts: line %d: unknown field %q", item.Content[i].Line, k)
			}
		}
	}
	var rows []factRow
	if err := n.Decode(&rows); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	out, err := expandFactRows(rows)
	if err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	*t = out
	return nil
}

// resolvedFact is a fact with every reference resolved to a UID.
type resolvedFact struct {
	dx       string // program indicator or data element UID
	pi       bool
	pe       periods.Period
	ou       string
	coc, aoc string // "" for program indicator facts without combos
	value    float64
}

// resolveFact resolves the references of f against m.
func (m *Metadata) resolveFact(f Fact) (resolvedFact, error) {
	var errs []error
	r := resolvedFact{value: f.Value}
	if pi := m.ProgramIndicator(f.DX); pi != nil {
		r.dx, r.pi = pi.ID, true
	} else if de := m.DataElement(f.DX); de != nil {
		r.dx = de.ID
	} else {
		errs = append(errs, fmt.Errorf("dx %q is neither a program indicator nor a data element", f.DX))
	}
	p, err := periods.Parse(f.Period)
	if err != nil {
		errs = append(errs, err)
	}
	r.pe = p
	if ou := m.OrgUnit(f.OrgUnit); ou != nil {
		r.ou = ou.ID
	} else {
		errs = append(errs, fmt.Errorf("unknown org unit %q", f.OrgUnit))
	}
	combo := func(name, ref string) string {
		if ref == "" {
			if r.pi {
				return ""
			}
			return DefaultCategoryOptionComboUID
		}
		if c := m.CategoryOptionCombo(ref); c != nil {
			return c.ID
		}
		errs = append(errs, fmt.Errorf("unknown %s %q", name, ref))
		return ""
	}
	r.coc = combo("category option combo", f.COC)
	r.aoc = combo("attribute option combo", f.AOC)
	if err := errors.Join(errs...); err != nil {
		return resolvedFact{}, fmt.Errorf("fact %s/%s/%s: %w", f.DX, f.Period, f.OrgUnit, err)
	}
	return r, nil
}

// resolvedFacts resolves every fact of m; facts that no longer resolve (the
// metadata changed under them) are left out.
func (m *Metadata) resolvedFacts() []resolvedFact {
	out := make([]resolvedFact, 0, len(m.Facts))
	for _, f := range m.Facts {
		if r, err := m.resolveFact(f); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// normaliseFacts checks facts against m and rewrites their references as
// UIDs and their periods in canonical form.
func (m *Metadata) normaliseFacts(facts []Fact) ([]Fact, error) {
	out := make([]Fact, 0, len(facts))
	var errs []error
	for _, f := range facts {
		r, err := m.resolveFact(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n := Fact{DX: r.dx, Period: r.pe.ID(), OrgUnit: r.ou, Value: r.value}
		if f.COC != "" {
			n.COC = r.coc
		}
		if f.AOC != "" {
			n.AOC = r.aoc
		}
		out = append(out, n)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// SetFacts replaces the analytics fact table. References may be UIDs, codes
// or names; they are checked and stored as UIDs. SetFacts() empties the
// table.
func (s *Server) SetFacts(facts ...Fact) error {
	err := s.UpdateMetadata(func(m *Metadata) error {
		n, err := m.normaliseFacts(facts)
		if err != nil {
			return err
		}
		m.Facts = n
		return nil
	})
	if err != nil {
		return fmt.Errorf("set facts: %w", err)
	}
	return nil
}

// AddFacts appends facts to the analytics fact table (see SetFacts).
func (s *Server) AddFacts(facts ...Fact) error {
	err := s.UpdateMetadata(func(m *Metadata) error {
		n, err := m.normaliseFacts(facts)
		if err != nil {
			return err
		}
		m.Facts = append(m.Facts, n...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("add facts: %w", err)
	}
	return nil
}

// Facts returns a copy of the analytics fact table.
func (s *Server) Facts() []Fact { return slices.Clone(s.metadataSnapshot().Facts) }

// ---------------------------------------------------------------------------
// The bundled sample's analytics side (sample/kalima-analytics.yaml)

//go:embed sample/kalima-analytics.yaml
var sampleAnalyticsYAML []byte

// UIDs of the sample's analytics side (stable; see sample/kalima-analytics.yaml).
const (
	SampleDataElementGroupEPI = "QMo807c6j0V"
	SampleDataElementGroupMAL = "naoWIUuHyre"
	SampleDataElementGroupCHW = "gEkXxZjZPFY"

	// SampleExchangeTrackerToHMIS is an EXTERNAL aggregate data exchange that
	// pushes the Kalima program indicators (LAST_12_MONTHS, facilities) to
	// the national HMIS with outputIdScheme ATTRIBUTE:<AGG_DE_CODE>.
	SampleExchangeTrackerToHMIS = "vvmGaZ0eHVX"
	// SampleExchangePIToAggregate is the INTERNAL variant (January–March
	// 2024): it stores the program indicators as this instance's aggregate
	// values.
	SampleExchangePIToAggregate = "HQwwN1cUsTL"
)

// SampleAnalyticsYAML returns sample/kalima-analytics.yaml: the data element
// groups, aggregate data exchanges and analytics facts of the Kalima sample.
func SampleAnalyticsYAML() []byte { return bytes.Clone(sampleAnalyticsYAML) }

// sampleAnalytics is the document shape of sample/kalima-analytics.yaml.
type sampleAnalytics struct {
	DataElementGroups      []*DataElementGroup      `yaml:"dataElementGroups"`
	AggregateDataExchanges []*AggregateDataExchange `yaml:"aggregateDataExchanges"`
	Facts                  FactTable                `yaml:"facts"`
}

// AddSampleAnalytics adds the Kalima sample's data element groups,
// aggregate data exchanges and analytics facts to m, which must hold the
// Kalima sample metadata (SampleMetadata). A server whose metadata is the
// Kalima sample without facts, exchanges and groups of its own (the default)
// gets them at start.
func AddSampleAnalytics(m *Metadata) error {
	var doc sampleAnalytics
	dec := yaml.NewDecoder(bytes.NewReader(sampleAnalyticsYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("dhis2test: sample analytics: %w", err)
	}
	if m.idx == nil {
		if err := m.reindex(); err != nil {
			return fmt.Errorf("dhis2test: sample analytics: %w", err)
		}
	}
	for _, f := range doc.Facts {
		if _, err := m.resolveFact(f); err != nil {
			return fmt.Errorf("dhis2test: sample analytics needs the Kalima sample metadata: %w", err)
		}
	}
	m.DataElementGroups = append(m.DataElementGroups, doc.DataElementGroups...)
	m.AggregateDataExchanges = append(m.AggregateDataExchanges, doc.AggregateDataExchanges...)
	m.Facts = append(m.Facts, doc.Facts...)
	return nil
}
