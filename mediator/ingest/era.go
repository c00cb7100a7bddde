package ingest

import (
	"context"

	"github.com/tally-hmis/tally/config"
)

// DHIS2 changed how POST /api/dataValueSets answers from one release to the next (spec
// dhis2.md §0.3, §2): a bare ImportSummary up to 2.37, a WebMessage with 409 on WARNING in
// 2.38–2.42, 200 on WARNING and the new counts from 2.43. The DHIS2-compatible endpoint
// answers as one release does, its era: the source's dhis2_version when set, else the
// lowest release among the source's targets (the oldest DHIS2 the payload reaches, whose
// answer a client written for it understands), else DefaultEra while no target's release
// has been read.

// DefaultEra is the release whose answers Tally gives while it knows none of a source's
// targets: 2.42, the last of the 2.38–2.42 engine that most installations run.
const DefaultEra = 42

// sourceReleases returns the known releases of a source's targets, lowest and highest (0,
// 0 when none is known), and whether every target's is known.
func (s *Ingester) sourceReleases(ctx context.Context, src *config.Source) (lowest, highest int, all bool) {
	all = true
	for _, t := range s.cfg.TargetsOf(src) {
		rel := s.mapping.Metadata().Release(ctx, t.Name)
		if rel == 0 {
			all = false
			continue
		}
		if lowest == 0 || rel < lowest {
			lowest = rel
		}
		highest = max(highest, rel)
	}
	return lowest, highest, all
}

// Era is the DHIS2 release whose answers the DHIS2-compatible endpoint gives a source.
func (s *Ingester) Era(ctx context.Context, src *config.Source) int {
	if rel := src.Release(); rel > 0 {
		return rel
	}
	if lowest, _, _ := s.sourceReleases(ctx, src); lowest > 0 {
		return lowest
	}
	return DefaultEra
}

// ingestRelease is the release periods are checked against at ingest: a period no target
// can read (a 2.43-only type, all targets older) is refused there, naming the period and
// the release. It is the highest release among the source's targets when every one is
// known, else 0 (any valid period): a target whose release is unknown may read it, and
// the mapper refuses it per target once the release is known
// (pipeline.Mapping.RefuseNewerPeriods).
func (s *Ingester) ingestRelease(ctx context.Context, src *config.Source) int {
	_, highest, all := s.sourceReleases(ctx, src)
	if !all {
		return 0
	}
	return highest
}
