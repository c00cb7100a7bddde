package dhis2test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a DHIS2 server version (2.Minor[.Patch]). Only the minor number
// selects behaviour; the patch number is reported by /api/system/info.
type Version struct {
	Minor int
	Patch int
}

// Supported version range. Anything above MaxVersion behaves like 2.43+.
const (
	minMinor = 36
	maxMinor = 44
)

// DefaultVersion is the version a server emulates when WithVersion is not given.
const DefaultVersion = "2.40"

const defaultMinor = 40 // keep in step with DefaultVersion

// ParseVersion parses "2.40", "2.40.3", "40" or "v2.40".
func ParseVersion(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.Split(t, ".")
	if len(parts) == 1 {
		parts = []string{"2", parts[0]}
	}
	if len(parts) < 2 || len(parts) > 4 || parts[0] != "2" {
		return Version{}, fmt.Errorf("dhis2test: version %q: want 2.NN[.P]", s)
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		return Version{}, fmt.Errorf("dhis2test: version %q: %w", s, err)
	}
	if minor < minMinor || minor > maxMinor {
		return Version{}, fmt.Errorf("dhis2test: version %q: supported 2.%d to 2.%d", s, minMinor, maxMinor)
	}
	v := Version{Minor: minor}
	if len(parts) >= 3 {
		p, err := strconv.Atoi(parts[2])
		if err != nil {
			return Version{}, fmt.Errorf("dhis2test: version %q: %w", s, err)
		}
		v.Patch = p
	}
	return v, nil
}

// String renders the version as DHIS2 reports it ("2.40.0").
func (v Version) String() string { return fmt.Sprintf("2.%d.%d", v.Minor, v.Patch) }

// Era helpers. Each names the spec section that fixes the behaviour.

// usesNewPipeline: 2.43+ data entry pipeline (spec dhis2.md §0.3, §1.6).
func (v Version) usesNewPipeline() bool { return v.Minor >= 43 }

// plainResponse reports whether POST /api/dataValueSets answers with the bare
// ImportSummary (always HTTP 200) for a request whose path carried the API
// version pathVersion (0 when absent). Spec dhis2.md §2.1.
func (v Version) plainResponse(pathVersion int) bool {
	switch {
	case v.Minor <= 36:
		return true
	case v.Minor == 37:
		return pathVersion == 0 || pathVersion < 38
	case v.Minor <= 41:
		return pathVersion != 0 && pathVersion < 38
	default:
		return false
	}
}

// legacyConflicts: ≤ 2.36 conflicts are {object,value} only (§2.3).
func (v Version) legacyConflicts() bool { return v.Minor <= 36 }

// hasRejectedIndexes: rejectedIndexes from 2.41 (§2.3).
func (v Version) hasRejectedIndexes() bool { return v.Minor >= 41 }

// warningIsConflict: a wrapped WARNING is HTTP 409 up to 2.42 and 200 from
// 2.43 (§2.2). (≤ 2.37 normally answers with the bare summary and 200.)
func (v Version) warningIsConflict() bool { return v.Minor <= 42 }

// adxDefaultCode: ADX id schemes default to CODE on ≤ 2.42 (§1.3, adx.md §8).
func (v Version) adxDefaultCode() bool { return v.Minor <= 42 }

// supportsPAT: personal access tokens exist from 2.37 (§9.2).
func (v Version) supportsPAT() bool { return v.Minor >= 37 }

// supportsPATv2: the d2p_ token format is understood from 2.41 (§9.2).
func (v Version) supportsPATv2() bool { return v.Minor >= 41 }

// checksTokenChecksum: 2.43 validates the checksum first (§9.2).
func (v Version) checksTokenChecksum() bool { return v.Minor >= 43 }

// periodTypeSince names the release that introduced each period type newer
// than the emulated range's floor (spec dhis2.md §11.1): QuarterlyNov 2.41,
// FinancialSep 2.42, WeeklyFriday/FinancialFeb/FinancialAug 2.43. The 2.42
// PeriodTypeEnum (dhis2-core dhis-api org/hisp/dhis/period/PeriodTypeEnum.java)
// lists QUARTERLY_NOV and FINANCIAL_SEP but no WEEKLY_FRIDAY, FINANCIAL_FEB or
// FINANCIAL_AUG.
var periodTypeSince = map[string]int{
	"QuarterlyNov": 41,
	"FinancialSep": 42,
	"WeeklyFriday": 43,
	"FinancialFeb": 43,
	"FinancialAug": 43,
}

// hasPeriodType reports whether this release knows the period type typ.
func (v Version) hasPeriodType(typ string) bool { return v.Minor >= periodTypeSince[typ] }

// parsePeriod parses a period id as this release does: an id of a type the
// release does not have yet matches none of its DateUnitType patterns, so
// the parser returns null and the import reports "Period not valid" (E7611).
func (v Version) parsePeriod(id string) (period, bool) {
	p, ok := parsePeriod(id)
	if !ok || !v.hasPeriodType(p.Type) {
		return period{}, false
	}
	return p, true
}

// checkPeriodTypes refuses metadata with a data set of a period type this
// release does not have: such a data set cannot exist on that DHIS2.
func (v Version) checkPeriodTypes(m *Metadata) error {
	var errs []error
	for _, d := range m.DataSets {
		if !v.hasPeriodType(d.PeriodType) {
			errs = append(errs, fmt.Errorf("dhis2test: dataSet %q: period type %s does not exist before 2.%d (emulating %s)",
				d.ID, d.PeriodType, periodTypeSince[d.PeriodType], v))
		}
	}
	return errors.Join(errs...)
}
