package mapping

import (
	"fmt"
	"slices"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// keepOrgUnit applies the source's org_units filter to a value whose org unit is ou (by
// uid): a value at another level than org_units.level is left out, and one whose org unit
// is not assigned to its data set is left out under keep: assigned or delivered with a
// warning (DHIS2's E7636 under strict checks; it otherwise stores it beside the values of
// the org unit's children, and analytics adds both up). Its data set is the rule's or the
// batch's, else any data set holding the element. Where the target's metadata does not
// say, the value is kept and the batch carries one warning.
func (r *run) keepOrgUnit(v *transform.DataValue, res *resolved, ou string) bool {
	ix := r.p.ix
	if ix == nil || ou == "" {
		return true
	}
	m := &r.last
	if ou == m.keptOU && res.ds == m.keptDS && (res.ds != nil || slices.Equal(res.cands, m.keptCands)) {
		return true
	}
	dss := res.cands
	if res.ds != nil {
		dss = []*metadata.DataSet{res.ds}
	}
	keep, clean := r.checkOrgUnit(v, ou, dss)
	if clean {
		m.keptOU, m.keptDS, m.keptCands = ou, res.ds, res.cands
	}
	return keep
}

// checkOrgUnit is keepOrgUnit for data sets dss, without the memory of the last org unit
// kept. clean says that it kept the value without leaving it a record (a batch warning
// aside, given once per batch), so that a value with the same org unit and data sets may
// be kept without asking again.
func (r *run) checkOrgUnit(v *transform.DataValue, ou string, dss []*metadata.DataSet) (keep, clean bool) {
	ix := r.p.ix
	unit, err := ix.OrgUnit(transform.SchemeUID, ou)
	if err != nil {
		return true, true
	}
	if lvl := r.pol.level; lvl > 0 {
		switch {
		case unit.Level == 0:
			r.warnBatch("no-level", "the metadata of target %q gives no org unit levels (read before Tally asked for them); org_units.level is not applied until it is read again", r.target)
		case unit.Level != lvl:
			r.drop(v, "orgUnit", v.OrgUnit, fmt.Sprintf("org unit %s is at level %d; source %q keeps level %d (org_units.level)", unit.Label(), unit.Level, r.pol.source, lvl))
			return false, false
		}
	}
	if len(dss) == 0 {
		return true, true
	}
	for _, ds := range dss {
		assigned, known := ix.Assigned(ds, ou)
		if !known {
			if r.pol.keepAssigned {
				r.warnBatch("no-assignment", "the metadata of target %q does not list the data sets' org units (read before Tally asked for them); org_units: keep: assigned is not applied until it is read again", r.target)
			}
			return true, true
		}
		if assigned {
			return true, true
		}
	}
	reason := fmt.Sprintf("org unit %s is not assigned to data set %s in target %q", unit.Label(), dataSetNames(dss), r.target)
	if r.pol.keepAssigned {
		r.drop(v, "orgUnit", v.OrgUnit, reason+fmt.Sprintf(" (org_units: keep: assigned on source %q)", r.pol.source))
		return false, false
	}
	r.warnings = append(r.warnings, transform.Warning{Index: v.Index, Field: "orgUnit", Value: v.OrgUnit, ErrorCode: codeNotAssigned,
		Reason: reason + r.assignmentEffect() + " (org_units: keep: assigned leaves such values out)"})
	return true, false
}

// assignmentEffect says what the target's DHIS2 does with a value of an org unit its data
// set is not assigned to: 2.43's import pipeline refuses the data set's whole group
// (E8022, spec dhis2.md §1.6; the emulator's import243.go checkGroup); earlier releases
// refuse it only under strict org unit checks (E7636, §1.5), and store it otherwise.
func (r *run) assignmentEffect() string {
	switch {
	case r.release >= 43:
		return fmt.Sprintf("; DHIS2 2.%d refuses the data set's whole group for it (E8022)", r.release)
	case r.release > 0:
		return fmt.Sprintf("; DHIS2 2.%d stores it unless strict org unit checks are on, and analytics adds it to its children's values", r.release)
	}
	return "; DHIS2 before 2.43 stores it, and analytics adds it to its children's values; 2.43 refuses the data set's whole group (E8022)"
}

func dataSetNames(dss []*metadata.DataSet) string {
	if len(dss) == 1 {
		return dss[0].Label()
	}
	return "(any of) " + dataSetList(dss)
}
