package dhis2test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Locked and closed periods of the 2.36–2.42 import engine (spec dhis2.md
// §1.5; dhis2-core DataValueSetImportValidator, DataValueImportConflict,
// ErrorCode E7640–E7644):
//
//   - E7640 the data set is locked: now is past the period's end plus the
//     data set's expiryDays (DataSet.isLocked), unless the user holds
//     F_EDIT_EXPIRED;
//   - E7642 the data is approved for the data set, period, org unit (or an
//     ancestor: approvals of higher levels cover the units below) and
//     attribute option combo;
//   - E7643 the data set has data input periods and none is for this period
//     with now between its opening and closing dates
//     (DataSet.isDataInputPeriodAndDateAllowed);
//   - E7644 none of the data element's data sets allows the period now
//     (DataElement.isDataInputAllowedForPeriodAndDate).
//
// E7640, E7642 and E7643 check the value's target data sets. From 2.39
// (ImportContext.getTargetDataSets) these are the header data set, or else
// every data set of the data element that is assigned to the org unit and
// whose attribute combo is the AOC's combo; one passing data set is enough
// unless strictDataSetLocking / strictDataSetApproval /
// strictDataSetInputPeriods ask for all, and a failure reports one conflict
// per failing data set. Up to 2.38 the one "approval data set" (header data
// set or the data element's first) is checked. force=true skips them all.

// DataInputPeriod opens a data set for one period between two dates
// (dhis2-core dataset/DataInputPeriod.java). OpeningDate and ClosingDate
// are yyyy-MM-dd or yyyy-MM-ddTHH:mm[:ss[.SSS]] in the server's time zone
// (UTC); either may be empty (open-ended).
type DataInputPeriod struct {
	Period      string `json:"period" yaml:"period"`
	OpeningDate string `json:"openingDate,omitempty" yaml:"openingDate,omitempty"`
	ClosingDate string `json:"closingDate,omitempty" yaml:"closingDate,omitempty"`
}

// inputPeriod is a DataInputPeriod with its period canonical and its dates
// parsed (zero when open-ended).
type inputPeriod struct {
	period        string
	opens, closes time.Time
}

// dateTimeLayouts are the layouts accepted for opening/closing dates.
var dateTimeLayouts = []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02T15:04:05.000"}

func parseDateTime(s string) (time.Time, error) {
	for _, l := range dateTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q: want yyyy-MM-dd or yyyy-MM-ddTHH:mm:ss", s)
}

// indexInputPeriods validates a data set's input periods (reindex).
func indexInputPeriods(d *DataSet) ([]inputPeriod, []error) {
	var out []inputPeriod
	var errs []error
	for i, dip := range d.DataInputPeriods {
		where := fmt.Sprintf("dataSet %q: dataInputPeriods[%d]", d.ID, i)
		pe, ok := parsePeriod(strings.TrimSpace(dip.Period))
		if !ok {
			errs = append(errs, fmt.Errorf("%s: invalid period %q", where, dip.Period))
			continue
		}
		ip := inputPeriod{period: pe.ID}
		var err error
		if dip.OpeningDate != "" {
			if ip.opens, err = parseDateTime(dip.OpeningDate); err != nil {
				errs = append(errs, fmt.Errorf("%s: openingDate: %w", where, err))
			}
		}
		if dip.ClosingDate != "" {
			if ip.closes, err = parseDateTime(dip.ClosingDate); err != nil {
				errs = append(errs, fmt.Errorf("%s: closingDate: %w", where, err))
			}
		}
		out = append(out, ip)
	}
	return out, errs
}

// inputAllowed: no input periods, or one for pe that is open at now
// (Period.isDateInTimeFrame: bounds inclusive).
func (m *Metadata) inputAllowed(d *DataSet, pe period, now time.Time) bool {
	ips := m.idx.inputPeriods[d.ID]
	if len(ips) == 0 {
		return true
	}
	for _, ip := range ips {
		if ip.period == pe.ID && (ip.opens.IsZero() || !now.Before(ip.opens)) && (ip.closes.IsZero() || !now.After(ip.closes)) {
			return true
		}
	}
	return false
}

// Approval records that data of a data set, period, org unit (and the units
// below it) and attribute option combo is approved.
type Approval struct {
	DataSet              string `json:"dataSet"`
	Period               string `json:"period"`
	OrgUnit              string `json:"orgUnit"`
	AttributeOptionCombo string `json:"attributeOptionCombo,omitempty"`
}

// Approve approves data. Identifiers may be UIDs or codes (names work too);
// an empty attribute option combo means the default.
func (s *Server) Approve(a Approval) error {
	k, err := s.approvalKey(a)
	if err != nil {
		return err
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	s.store.approvals[k] = true
	return nil
}

// Unapprove removes an approval; it reports whether one existed.
func (s *Server) Unapprove(a Approval) (bool, error) {
	k, err := s.approvalKey(a)
	if err != nil {
		return false, err
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	ok := s.store.approvals[k]
	delete(s.store.approvals, k)
	return ok, nil
}

// Approvals returns the approvals (UIDs), sorted.
func (s *Server) Approvals() []Approval {
	s.store.mu.RLock()
	out := make([]Approval, 0, len(s.store.approvals))
	for k := range s.store.approvals {
		out = append(out, Approval{DataSet: k[0], Period: k[1], OrgUnit: k[2], AttributeOptionCombo: k[3]})
	}
	s.store.mu.RUnlock()
	slices.SortFunc(out, func(a, b Approval) int {
		return cmp.Or(cmp.Compare(a.DataSet, b.DataSet), cmp.Compare(a.Period, b.Period),
			cmp.Compare(a.OrgUnit, b.OrgUnit), cmp.Compare(a.AttributeOptionCombo, b.AttributeOptionCombo))
	})
	return out
}

func (s *Server) approvalKey(a Approval) ([4]string, error) {
	m := s.metadataSnapshot()
	var errs []string
	ds := m.DataSet(a.DataSet)
	if ds == nil {
		errs = append(errs, fmt.Sprintf("unknown data set %q", a.DataSet))
	}
	pe, ok := s.version.parsePeriod(strings.TrimSpace(a.Period))
	if !ok {
		errs = append(errs, fmt.Sprintf("invalid period %q", a.Period))
	}
	ou := m.OrgUnit(a.OrgUnit)
	if ou == nil {
		errs = append(errs, fmt.Sprintf("unknown org unit %q", a.OrgUnit))
	}
	aoc := DefaultCategoryOptionComboUID
	if a.AttributeOptionCombo != "" {
		if c := m.CategoryOptionCombo(a.AttributeOptionCombo); c != nil {
			aoc = c.ID
		} else {
			errs = append(errs, fmt.Sprintf("unknown attribute option combo %q", a.AttributeOptionCombo))
		}
	}
	if len(errs) > 0 {
		return [4]string{}, fmt.Errorf("dhis2test: approval: %s", strings.Join(errs, "; "))
	}
	return [4]string{ds.ID, pe.ID, ou.ID, aoc}, nil
}

// approved: an approval for ds/pe/aoc exists at ou or one of its ancestors.
func (imp *importer) approved(ds *DataSet, pe period, ou, aoc string) bool {
	st := imp.srv.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	if len(st.approvals) == 0 {
		return false
	}
	for _, a := range imp.meta.idx.ouAncestors[ou] {
		if st.approvals[[4]string{ds.ID, pe.ID, a, aoc}] {
			return true
		}
	}
	return false
}

// serveApprovals answers /__sim/approvals: GET lists, POST adds one
// Approval (JSON, UIDs or codes), DELETE removes one (same body) or, with
// no body, all.
func (s *Server) serveApprovals(w http.ResponseWriter, r *http.Request, writeJSON func(int, any)) {
	if r.Method == http.MethodGet {
		writeJSON(http.StatusOK, s.Approvals())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if r.Method == http.MethodDelete && len(strings.TrimSpace(string(body))) == 0 {
		s.store.mu.Lock()
		s.store.approvals = map[[4]string]bool{}
		s.store.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var a Approval
	if err := json.Unmarshal(body, &a); err != nil {
		writeJSON(http.StatusBadRequest, map[string]string{"error": "approval: " + err.Error()})
		return
	}
	switch r.Method {
	case http.MethodPost:
		err = s.Approve(a)
	case http.MethodDelete:
		var ok bool
		if ok, err = s.Unapprove(a); err == nil && !ok {
			writeJSON(http.StatusNotFound, map[string]string{"error": "no such approval"})
			return
		}
	default:
		writeJSON(http.StatusMethodNotAllowed, map[string]string{"error": "use GET, POST or DELETE"})
		return
	}
	if err != nil {
		writeJSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// targetDataSets returns the data sets whose locks apply to a value (see
// the file comment).
func (imp *importer) targetDataSets(header *DataSet, de *DataElement, ou, aoc string) []*DataSet {
	if header != nil {
		return []*DataSet{header}
	}
	sets := imp.meta.idx.dsByDE[de.ID]
	if imp.v.Minor <= 38 {
		if len(sets) == 0 {
			return nil
		}
		return sets[:1]
	}
	aocCombo := ""
	if c := imp.meta.idx.coc[aoc]; c != nil {
		aocCombo = c.CategoryCombo
	}
	var out []*DataSet
	for _, d := range sets {
		if imp.meta.idx.dsOrgUnits[d.ID][ou] && d.CategoryCombo == aocCombo {
			out = append(out, d)
		}
	}
	return out
}

// checkTargets runs check on the target data sets: without strict one
// passing data set suffices (no conflicts); otherwise, or when none passes,
// it returns the conflict of every failing data set.
func checkTargets(targets []*DataSet, strict bool, check func(*DataSet) *conflict) []*conflict {
	var out []*conflict
	for _, d := range targets {
		c := check(d)
		if c == nil && !strict {
			return nil
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// lockConflicts runs E7640, E7641, E7642, E7643 and E7644 for a value whose
// other checks passed.
func (imp *importer) lockConflicts(rv rawValue, header *DataSet, de *DataElement, pe period, ou, aoc string) []*conflict {
	o, user, m := imp.req.opts, imp.req.user, imp.meta
	if o.force {
		return nil
	}
	targets := imp.targetDataSets(header, de, ou, aoc)
	if cs := checkTargets(targets, o.strictLocking, func(d *DataSet) *conflict {
		if d.ExpiryDays <= 0 || user.HasAuthority("F_EDIT_EXPIRED") || !imp.now.After(pe.End.AddDate(0, 0, d.ExpiryDays)) {
			return nil
		}
		return legacy(newConflict("E7640", "period", rv.index, orderedMap{{"period", rv.period}, {"dataSet", d.ID}}, rv.period, d.ID),
			rv.period, "Current date is past expiry days for period "+pe.ID+" and data set: "+d.ID)
	}); len(cs) > 0 {
		return cs
	}
	deSets := m.idx.dsByDE[de.ID]
	if len(targets) > 0 {
		if latest, ok := imp.latestOpenFuturePeriod(deSets); ok && pe.Start.After(latest.End) {
			return []*conflict{legacy(newConflict("E7641", "period", rv.index, orderedMap{{"period", rv.period}, {"dataElement", rv.dataElement}}, rv.period, rv.dataElement, latest.ID),
				rv.period, "Period: "+pe.ID+" is after latest open future period: "+latest.ID+" for data element: "+de.ID)}
		}
	}
	if cs := checkTargets(targets, o.strictApproval, func(d *DataSet) *conflict {
		if !imp.approved(d, pe, ou, aoc) {
			return nil
		}
		return legacy(imp.approvalConflict(rv, d), ou, "Data is already approved for data set: "+d.ID+" period: "+pe.ID+
			" organisation unit: "+ou+" attribute option combo: "+aoc)
	}); len(cs) > 0 {
		return cs
	}
	if cs := checkTargets(targets, o.strictInput, func(d *DataSet) *conflict {
		if m.inputAllowed(d, pe, imp.now) {
			return nil
		}
		return legacy(newConflict("E7643", "period", rv.index, orderedMap{{"period", rv.period}, {"dataSet", d.ID}}, rv.period, d.ID),
			ou, "Period: "+pe.ID+" is not open for this data set at this time: "+d.ID)
	}); len(cs) > 0 {
		return cs
	}
	allowed := len(deSets) == 0
	for _, d := range deSets {
		allowed = allowed || m.inputAllowed(d, pe, imp.now)
	}
	if !allowed {
		return []*conflict{legacy(newConflict("E7644", "period", rv.index, orderedMap{{"period", rv.period}}, rv.period),
			ou, "Period "+pe.ID+" does not conform to the open periods of associated data sets")}
	}
	return nil
}

// approvalConflict builds E7642 (DataValueImportConflict.VALUE_ALREADY_APPROVED:
// no property; objects org unit, period, AOC, data set as the payload gave
// them). Its text changed with 2.39: "Data already approved ... org unit:"
// (ErrorCode of the releases with the E77xx GeoJSON codes) against "Data is
// already approved ... organisation unit:" before.
func (imp *importer) approvalConflict(rv rawValue, d *DataSet) *conflict {
	aoc := rv.aoc
	if strings.TrimSpace(aoc) == "" {
		aoc = "null" // MessageFormat renders the absent argument as null
	}
	c := newConflict("E7642", "", rv.index, orderedMap{{"organisationUnit", rv.orgUnit}, {"period", rv.period},
		{"categoryOptionCombo", orNil(rv.aoc)}, {"dataSet", d.ID}}, rv.orgUnit, rv.period, aoc, d.ID)
	if imp.v.Minor <= 38 {
		c.message = strings.Replace(strings.Replace(c.message, "Data already approved", "Data is already approved", 1),
			" org unit: ", " organisation unit: ", 1)
	}
	return c
}

// legacy sets the ≤ 2.36 {object, value} form of a conflict.
func legacy(c *conflict, object, message string) *conflict {
	c.legacyObject, c.legacyMessage = object, message
	return c
}
