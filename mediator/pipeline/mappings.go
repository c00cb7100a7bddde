package pipeline

import (
	"fmt"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/metadata"
)

// The mapping engine takes plain inputs (transform/mapping knows no configuration): these
// convert the configuration into them.

// CompileMappings decodes and compiles the mappings: section of cfg for its sources,
// reporting every problem with its file and line.
func CompileMappings(cfg *config.Config) (*mapping.Sets, config.Problems) {
	sets := mapping.NewSets()
	var probs config.Problems
	for i := range cfg.Mappings {
		path := fmt.Sprintf("mappings[%d]", i)
		var sc mapping.SetConfig
		probs = append(probs, cfg.DecodeSection(&cfg.Mappings[i], path, &sc)...)
		probs = append(probs, configProblems(sets.Add(&sc, path, cfg))...)
	}
	sources := make([]mapping.Source, len(cfg.Sources))
	for i := range cfg.Sources {
		sources[i] = *MappingSource(&cfg.Sources[i])
	}
	return sets, append(probs, configProblems(sets.CheckSources(sources, cfg))...)
}

// CheckMappings checks the sets against the targets' metadata (md, by target name) for
// every source of cfg (see mapping.Sets.Check).
func CheckMappings(sets *mapping.Sets, cfg *config.Config, md map[string]*metadata.Metadata) config.Problems {
	feeds := make([]mapping.Feed, len(cfg.Sources))
	for i := range cfg.Sources {
		feeds[i].Source = *MappingSource(&cfg.Sources[i])
		for _, t := range cfg.TargetsOf(&cfg.Sources[i]) {
			feeds[i].Targets = append(feeds[i].Targets, *MappingTarget(t))
		}
	}
	return configProblems(sets.Check(feeds, md, cfg))
}

// MappingSource is a configured source as the engine takes it.
func MappingSource(s *config.Source) *mapping.Source {
	return &mapping.Source{Name: s.Name, Mapping: s.Mapping, Unmapped: s.Unmapped, Duplicates: s.Duplicates,
		OrgUnits: mapping.SourceOrgUnits(s.OrgUnits), Format: s.Format, IDSchemes: mapping.Schemes(s.IDSchemes)}
}

// MappingTarget is a configured target as the engine takes it.
func MappingTarget(t *config.Target) *mapping.Target {
	return &mapping.Target{Name: t.Name, IDSchemes: mapping.Schemes(t.IDSchemes)}
}

func configProblems(ps mapping.Problems) config.Problems {
	out := make(config.Problems, len(ps))
	for i, p := range ps {
		out[i] = config.Problem{File: p.File, Line: p.Line, Path: p.Path, Msg: p.Msg}
	}
	return out
}
