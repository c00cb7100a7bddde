package period

// DHIS2 added period types over its releases, and a server refuses the ids of a type it
// does not know ("Period not valid", E7611 in 2.37–2.42). A release is written here as
// DHIS2's minor number, 41 for 2.41.x, as dhis2.Version.Release reports it.
//
// The types and the release that brought each (spec dhis2.md §11.1, from the
// *PeriodType.java classes of dhis2-core at 2.41, 2.42, 2.43 and master):
//
//	QuarterlyNov                              2.41
//	FinancialSep                              2.42
//	WeeklyFriday, FinancialFeb, FinancialAug  2.43
//
// Every other type is older than 2.36, the oldest release this package models
// (FinancialNov and SixMonthlyNov came with DHIS2-5697, dhis2-core PR #2768).

// ADXSince is the release from which DHIS2's ADX reader (AdxPeriod.parse) maps a
// Friday P7D and a February, August or September P1Y; older servers refuse those
// periods with "... is invalid weekly type" or "... is invalid yearly type" (spec
// adx.md §6.2). FinancialSep ids exist from 2.42, but ADX reaches them from 2.43 only.
const ADXSince = 43

// Since returns the DHIS2 release (minor number: 41 for 2.41) from which DHIS2 knows
// the type, or 0 for a type every release this package models (2.36 on) has. It
// returns 0 for an invalid Type.
func (t Type) Since() int {
	if !t.valid() {
		return 0
	}
	return types[t].since
}

// AvailableIn reports whether DHIS2 release (minor number: 41 for 2.41) accepts the
// period id: ok is false when the id's type is newer than the release. since is the
// first release that accepts the id (0: every release). A release of 0 or less stands
// for no particular release, for which every valid id is ok. err, which wraps
// [ErrInvalidID], reports an id that is not a DHIS2 period at all.
func AvailableIn(id string, release int) (ok bool, since int, err error) {
	p, err := Parse(id)
	if err != nil {
		return false, 0, err
	}
	since = p.Type().Since()
	return available(since, release), since, nil
}

// ISOAvailableIn is AvailableIn for an ADX period ("2026-02-01/P1Y"): it reports
// whether the ADX reader of DHIS2 release accepts it, counting both the period type's
// release and the release from which ADX maps it (see [ADXSince]). id is the DHIS2
// period id the ADX period stands for, whatever the release; err wraps
// [ErrInvalidISO].
func ISOAvailableIn(s string, release int) (id string, ok bool, since int, err error) {
	p, err := ParseISO(s)
	if err != nil {
		return "", false, 0, err
	}
	since = p.Type().Since()
	switch p.Type() {
	case WeeklyFriday, FinancialFeb, FinancialAug, FinancialSep:
		since = max(since, ADXSince)
	}
	return p.ID(), available(since, release), since, nil
}

func available(since, release int) bool { return release <= 0 || since <= release }
