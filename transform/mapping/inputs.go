package mapping

import "fmt"

// The engine's inputs are plain values. A caller converts its own configuration into them
// (Tally's mediator does, from config.Config), so that mapping depends on no configuration
// format: Source and Target say what the engine must know of a source and a target,
// SetConfig (compile.go) is one entry of the mappings: section as written, and a Locator
// tells where in the caller's file a path is, so that problems name their lines.

// Source is what the engine needs of a source: its name, its mapping set and its policies.
type Source struct {
	Name string
	// Mapping names the mapping set applied before delivery; empty keeps the ids.
	Mapping string
	// Unmapped is drop (the default), pass or reject: what happens to values no rule
	// names.
	Unmapped string
	// Duplicates is reject (the default), sum, last or keep: what happens to two values
	// that map to one target key.
	Duplicates string
	// OrgUnits filters values by their org unit once mapped.
	OrgUnits SourceOrgUnits
	// Format and IDSchemes are read by CheckADX only: which sources send ADX, and the
	// scheme their category and option ids are written in.
	Format    string
	IDSchemes Schemes
}

// SourceOrgUnits says which mapped values a source keeps by their org unit: Keep is all
// (the default) or assigned; Level, when set, keeps only org units at that level.
type SourceOrgUnits struct {
	Keep  string
	Level int
}

// Schemes are id scheme names as written (UID, CODE, NAME, ATTRIBUTE:<uid>, or empty),
// one per field; the engine parses them when it plans a target.
type Schemes struct {
	IDScheme             string
	DataElement          string
	OrgUnit              string
	CategoryOptionCombo  string
	AttributeOptionCombo string
	DataSet              string
}

// Target is what the engine needs of a target: its name (the key of its metadata) and the
// id schemes it is sent.
type Target struct {
	Name      string
	IDSchemes Schemes
}

// Feed is a source with the targets it delivers to, as Check and CheckADX see them.
type Feed struct {
	Source  Source
	Targets []Target
}

// Locator tells where a configuration path ("mappings[0].rules[3]") is written: the file
// and the line. A *config.Config is one.
type Locator interface {
	File() string
	Line(path string) int
}

// FileLocator is the Locator of sets decoded without line numbers: problems name the file.
type FileLocator string

// File is the file's name.
func (f FileLocator) File() string { return string(f) }

// Line is 0: unknown.
func (FileLocator) Line(string) int { return 0 }

// Problem is one thing wrong with a mapping set or a rule, at its origin.
type Problem struct {
	Origin
	Msg string
}

// String is "file:line: path: message", as the configuration's own problems read.
func (p Problem) String() string {
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", p.Origin, p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.Origin, p.Msg)
}

// Problems is every problem found.
type Problems []Problem

func (ps Problems) Error() string {
	s := fmt.Sprintf("%d mapping problems", len(ps))
	for _, p := range ps {
		s += "\n  " + p.String()
	}
	return s
}

// at is the origin of a configuration path.
func at(loc Locator, path string) Origin {
	return Origin{File: loc.File(), Line: loc.Line(path), Path: path}
}
