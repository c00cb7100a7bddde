package dhis2test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// /api/completeDataSetRegistrations (spec dhis2.md §8), stored in the
// Store's registrations.
//
// POST (application/json or application/xml, gzip/zip accepted) imports
// registrations like DefaultCompleteDataSetRegistrationExchangeService:
// per item the data set, period and org unit must resolve ({object,value}
// conflicts "Data set not found or not accessible", "Period not valid",
// "Organisation unit not found or not accessible"); an attribute option
// combo that does not resolve falls back to the default one (unless
// requireAttributeOptionCombo); the org unit must be in the user's
// hierarchy; strictPeriods, strictAttributeOptionCombos and
// strictOrganisationUnits add their checks; completed defaults to true and
// date to today. Existing registrations are updated (CREATE_AND_UPDATE,
// UPDATE) or deleted (DELETE); new ones are imported (CREATE_AND_UPDATE,
// CREATE); everything else is ignored. dryRun writes nothing. Status is
// ERROR only when every registration was ignored (also for an empty list),
// otherwise SUCCESS even with conflicts; description "Import process
// complete.". Id schemes: dataSetIdScheme, orgUnitIdScheme,
// attributeOptionComboIdScheme, idScheme from the query, overridden by the
// same fields (and dryRun, strategy) on the payload root. The answer uses
// the data value import's wrapper rules (§2.1, §2.2): a bare ImportSummary
// on ≤ 2.37 paths, otherwise a WebMessage, 409 on ERROR. async=true is
// answered synchronously.
//
// GET lists registrations as {"completeDataSetRegistrations":[...]} with
// dataSet, period, orgUnit (and children), startDate/endDate, limit and the
// output schemes dataSetIdScheme, orgUnitIdScheme,
// attributeOptionComboIdScheme, idScheme (UID, CODE, NAME).
//
// DELETE ?ds=&pe=&ou=[&cc=&cp=&multiOu=true] removes registrations (204).

func (s *Server) completenessRoutes() []route {
	return []route{
		{pattern: "POST /completeDataSetRegistrations", handler: s.handlePostRegistrations},
		{pattern: "GET /completeDataSetRegistrations", handler: s.handleGetRegistrations},
		{pattern: "GET /completeDataSetRegistrations.json", handler: s.handleGetRegistrations},
		{pattern: "DELETE /completeDataSetRegistrations", handler: s.handleDeleteRegistrations},
	}
}

// registrationIn is one registration of a POST payload.
type registrationIn struct {
	DataSet              string `json:"dataSet" xml:"dataSet,attr"`
	Period               string `json:"period" xml:"period,attr"`
	OrganisationUnit     string `json:"organisationUnit" xml:"organisationUnit,attr"`
	AttributeOptionCombo string `json:"attributeOptionCombo" xml:"attributeOptionCombo,attr"`
	Date                 string `json:"date" xml:"date,attr"`
	StoredBy             string `json:"storedBy" xml:"storedBy,attr"`
	LastUpdatedBy        string `json:"lastUpdatedBy" xml:"lastUpdatedBy,attr"`
	LastUpdated          string `json:"lastUpdated" xml:"lastUpdated,attr"`
	Completed            *bool  `json:"completed" xml:"completed,attr"`
	CC                   string `json:"cc" xml:"cc,attr"`
	CP                   string `json:"cp" xml:"cp,attr"`
}

// registrationsIn is a POST payload.
type registrationsIn struct {
	IDScheme                     string           `json:"idScheme" xml:"idScheme,attr"`
	DataSetIDScheme              string           `json:"dataSetIdScheme" xml:"dataSetIdScheme,attr"`
	OrgUnitIDScheme              string           `json:"orgUnitIdScheme" xml:"orgUnitIdScheme,attr"`
	AttributeOptionComboIDScheme string           `json:"attributeOptionComboIdScheme" xml:"attributeOptionComboIdScheme,attr"`
	DryRun                       *bool            `json:"dryRun" xml:"dryRun,attr"`
	Strategy                     string           `json:"strategy" xml:"strategy,attr"`
	Registrations                []registrationIn `json:"completeDataSetRegistrations" xml:"completeDataSetRegistration"`
}

func decodeRegistrations(body []byte, format string) (*registrationsIn, error) {
	p := &registrationsIn{}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errNoContent
	}
	var err error
	if format == "xml" {
		err = xml.Unmarshal(body, p)
	} else {
		err = json.Unmarshal(body, p)
	}
	if err != nil {
		return nil, fmt.Errorf("decode registrations: %w", err)
	}
	return p, nil
}

func (s *Server) handlePostRegistrations(w http.ResponseWriter, r *http.Request) {
	c := callOf(r)
	if !c.user.HasAuthority("F_DATAVALUE_ADD") {
		writeError(w, r, http.StatusForbidden, "Access is denied")
		return
	}
	ct := r.Header.Get("Content-Type")
	format, ok := formatFor(ct)
	if !ok || (format != "json" && format != "xml") {
		if ct == "" {
			ct = "application/octet-stream"
		}
		writeError(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content type '%s' not supported", ct))
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "Could not read request body: "+err.Error())
		return
	}
	q := queryOf(r)
	opts := parseImportOptions(q)
	body, err := decompress(raw)
	var payload *registrationsIn
	if err == nil {
		payload, err = decodeRegistrations(body, format)
	}
	var sum orderedMap
	var status string
	if err != nil {
		status = "ERROR"
		sum = registrationSummary(s.version, opts, status, "The import process failed: "+err.Error(), importCount{}, nil)
	} else {
		status, sum = s.importRegistrations(payload, q, opts, c.user)
	}
	s.writeRegistrationSummary(w, r, c, status, sum)
}

func registrationSummary(v Version, opts importOptions, status, desc string, n importCount, conflicts []any) orderedMap {
	if conflicts == nil {
		conflicts = []any{}
	}
	return orderedMap{
		{"responseType", "ImportSummary"},
		{"status", status},
		{"importOptions", opts.echo(v)},
		{"description", desc},
		{"importCount", orderedMap{{"imported", n.imported}, {"updated", n.updated}, {"ignored", n.ignored}, {"deleted", n.deleted}}},
		{"conflicts", conflicts},
	}
}

// writeRegistrationSummary applies the import wrapper rules (§2.1, §2.2).
func (s *Server) writeRegistrationSummary(w http.ResponseWriter, r *http.Request, c *call, status string, sum orderedMap) {
	if s.version.plainResponse(c.apiVersion) {
		writeBody(w, r, http.StatusOK, "importSummary", sum)
		return
	}
	if status == "ERROR" {
		writeBody(w, r, http.StatusConflict, "webMessage",
			webMessage(http.StatusConflict, "ERROR", "An error occurred, please check import summary.", sum))
		return
	}
	writeBody(w, r, http.StatusOK, "webMessage", webMessage(http.StatusOK, "OK", "Import was successful.", sum))
}

func (s *Server) importRegistrations(p *registrationsIn, q url.Values, opts importOptions, u *User) (string, orderedMap) {
	m := s.metadataSnapshot()
	scheme := func(payloadSpecific, querySpecific string) idScheme {
		a, _ := parseIDScheme(payloadSpecific)
		b, _ := parseIDScheme(p.IDScheme)
		return orScheme(a, b, schemeParam(q, querySpecific), schemeParam(q, "idScheme"))
	}
	dsScheme := scheme(p.DataSetIDScheme, "dataSetIdScheme")
	ouScheme := scheme(p.OrgUnitIDScheme, "orgUnitIdScheme")
	aocScheme := scheme(p.AttributeOptionComboIDScheme, "attributeOptionComboIdScheme")
	strategy := opts.strategy
	if st, ok := normaliseStrategy(p.Strategy); ok {
		strategy = st
	}
	dryRun := opts.dryRun
	if p.DryRun != nil {
		dryRun = *p.DryRun
	}
	today := s.now().Format("2006-01-02")

	var conflicts []any
	conflict := func(object, value string) {
		conflicts = append(conflicts, orderedMap{{"object", object}, {"value", value}})
	}
	var n importCount
	total := 0
	existing := map[[4]string]bool{}
	for _, reg := range s.store.Registrations() {
		existing[[4]string{reg.DataSet, reg.Period, reg.OrgUnit, reg.AttributeOptionCombo}] = true
	}
	for _, in := range p.Registrations {
		total++
		dsUID := m.find(kindDataSet, dsScheme, strings.TrimSpace(in.DataSet))
		if dsUID == "" {
			conflict(in.DataSet, "Data set not found or not accessible")
			continue
		}
		ds := m.idx.ds[dsUID]
		pe, ok := s.version.parsePeriod(strings.TrimSpace(in.Period))
		if !ok {
			conflict(in.Period, "Period not valid")
			continue
		}
		ouUID := m.find(kindOrgUnit, ouScheme, strings.TrimSpace(in.OrganisationUnit))
		if ouUID == "" {
			conflict(in.OrganisationUnit, "Organisation unit not found or not accessible")
			continue
		}
		aoc := m.find(kindCOC, aocScheme, strings.TrimSpace(in.AttributeOptionCombo))
		if aoc == "" && in.AttributeOptionCombo == "" && in.CC != "" && in.CP != "" {
			aoc = m.aocFromOptions(in.CC, in.CP)
		}
		if aoc == "" {
			if opts.requireAOC {
				conflict("Attribute option combo", "Attribute option combo is required but is not specified")
				continue
			}
			aoc = DefaultCategoryOptionComboUID
		}
		if !m.inUserHierarchy(u, ouUID) {
			conflict(ouUID, "Organisation unit is not in hierarchy of user: "+u.Username)
			continue
		}
		if opts.strictAOC && m.idx.coc[aoc].CategoryCombo != ds.CategoryCombo {
			combo := m.idx.coc[aoc].CategoryCombo
			conflict(combo, fmt.Sprintf("Attribute option combo: %s must have category combo: %s", combo, ds.CategoryCombo))
			continue
		}
		if msg := m.aocRangeProblem(aoc, pe, ouUID); msg != "" {
			conflict(ouUID, msg)
			continue
		}
		if opts.strictPeriods && pe.Type != ds.PeriodType {
			conflict(pe.ID, fmt.Sprintf("Period type of period: %s is not equal to the period type of data set: %s", pe.ID, ds.PeriodType))
			continue
		}
		if opts.strictOU && !m.idx.dsOrgUnits[ds.ID][ouUID] {
			conflict(ds.ID, fmt.Sprintf("Data set %s is not assigned to organisation unit %s", ds.ID, ouUID))
			continue
		}
		completed := true
		if in.Completed != nil {
			completed = *in.Completed
		}
		date := today
		if in.Date != "" {
			if t, ok := parseDateParam(in.Date); ok {
				date = t.Format("2006-01-02")
			}
		}
		storedBy := in.StoredBy
		if strings.TrimSpace(storedBy) == "" {
			storedBy = u.Username
		}
		reg := Registration{DataSet: ds.ID, Period: pe.ID, OrgUnit: ouUID, AttributeOptionCombo: aoc, Date: date,
			StoredBy: storedBy, Completed: completed}
		key := [4]string{reg.DataSet, reg.Period, reg.OrgUnit, reg.AttributeOptionCombo}
		switch {
		case existing[key] && (strategy == "CREATE_AND_UPDATE" || strategy == "UPDATE"):
			n.updated++
			if !dryRun {
				s.store.PutRegistration(reg)
			}
		case existing[key] && strategy == "DELETE":
			n.deleted++
			if !dryRun {
				s.store.DeleteRegistration(reg.DataSet, reg.Period, reg.OrgUnit, reg.AttributeOptionCombo)
				delete(existing, key)
			}
		case !existing[key] && (strategy == "CREATE_AND_UPDATE" || strategy == "CREATE"):
			n.imported++
			if !dryRun {
				s.store.PutRegistration(reg)
				existing[key] = true
			}
		}
	}
	n.ignored = total - n.imported - n.updated - n.deleted
	status := "SUCCESS"
	if total == n.ignored {
		status = "ERROR"
	}
	return status, registrationSummary(s.version, opts, status, "Import process complete.", n, conflicts)
}

// aocFromOptions resolves an attribute option combo from a category combo
// and ';'-separated option UIDs (the cc/cp form).
func (m *Metadata) aocFromOptions(cc, cp string) string {
	combo := m.find(kindCategoryCombo, idScheme{kind: schemeUID}, cc)
	if combo == "" {
		return ""
	}
	var opts []string
	for o := range strings.SplitSeq(cp, ";") {
		if o = strings.TrimSpace(o); o != "" {
			opts = append(opts, o)
		}
	}
	return m.idx.cocByOpts[optionKey(combo, opts)]
}

// aocRangeProblem checks an attribute option combo's option dates and org
// units against a registration.
func (m *Metadata) aocRangeProblem(aoc string, pe period, ou string) string {
	coc := m.idx.coc[aoc]
	if coc == nil {
		return ""
	}
	for _, o := range coc.Options {
		opt := m.idx.opt[o]
		if opt == nil {
			continue
		}
		start, errS := time.Parse("2006-01-02", opt.StartDate)
		end, errE := time.Parse("2006-01-02", opt.EndDate)
		if (errS == nil && start.After(pe.Start)) || (errE == nil && end.Before(pe.End)) {
			return fmt.Sprintf("Period: %s is not within range of attribute option combo: %s", pe.ID, aoc)
		}
		if set := m.idx.optOrgUnits[o]; len(set) > 0 {
			roots := make([]string, 0, len(set))
			for id := range set {
				roots = append(roots, id)
			}
			if !m.isDescendant(ou, roots) {
				return fmt.Sprintf("Organisation unit: %s is not valid for attribute option combo %s", ou, aoc)
			}
		}
	}
	return ""
}

func (s *Server) handleGetRegistrations(w http.ResponseWriter, r *http.Request) {
	m := s.metadataSnapshot()
	q := queryOf(r)
	u := callOf(r).user
	in := schemeParam(q, "inputIdScheme")
	var dataSets, orgUnits []string
	for _, ref := range listParam(q, "dataSet") {
		if uid := m.find(kindDataSet, orScheme(in), ref); uid != "" {
			dataSets = append(dataSets, uid)
		}
	}
	for _, ref := range listParam(q, "orgUnit") {
		if uid := m.find(kindOrgUnit, orScheme(in), ref); uid != "" {
			orgUnits = append(orgUnits, uid)
		}
	}
	periods := map[string]bool{}
	for _, id := range listParam(q, "period") {
		if pe, ok := parsePeriod(id); ok {
			periods[pe.ID] = true
		}
	}
	start, okS := parseDateParam(q.Get("startDate"))
	end, okE := parseDateParam(q.Get("endDate"))
	hasStartEnd := okS && okE
	children := boolParam(q, "children")
	limit := -1
	if v := q.Get("limit"); v != "" {
		if _, err := fmt.Sscan(v, &limit); err != nil {
			limit = -1
		}
	}
	fail := func(msg string) { (&apiError{status: http.StatusConflict, message: msg}).write(w, r) }
	switch {
	case len(dataSets) == 0:
		fail("At least one data set must be specified")
		return
	case len(periods) == 0 && !hasStartEnd && q.Get("created") == "" && q.Get("createdDuration") == "":
		fail("At least one valid period, start/end dates, created or created duration must be specified")
		return
	case len(periods) > 0 && hasStartEnd:
		fail("Both periods and start/end date cannot be specified")
		return
	case hasStartEnd && start.After(end):
		fail("Start date must be before end date")
		return
	case len(orgUnits) == 0:
		fail("At least one valid organisation unit or organisation unit group must be specified")
		return
	}
	for _, ou := range orgUnits {
		if !m.inUserHierarchy(u, ou) {
			fail("User is not allowed to view org unit: " + ou)
			return
		}
	}
	out := schemeParam(q, "idScheme")
	dsScheme := orScheme(schemeParam(q, "dataSetIdScheme"), out)
	ouScheme := orScheme(schemeParam(q, "orgUnitIdScheme"), out)
	aocScheme := orScheme(schemeParam(q, "attributeOptionComboIdScheme"), out)
	list := []any{}
	for _, reg := range s.store.Registrations() {
		if !slices.Contains(dataSets, reg.DataSet) {
			continue
		}
		if children {
			if !m.isDescendant(reg.OrgUnit, orgUnits) {
				continue
			}
		} else if !slices.Contains(orgUnits, reg.OrgUnit) {
			continue
		}
		pe, ok := parsePeriod(reg.Period)
		if !ok {
			continue
		}
		if hasStartEnd && (pe.Start.Before(start) || pe.End.After(end)) {
			continue
		}
		if len(periods) > 0 && !periods[pe.ID] {
			continue
		}
		list = append(list, orderedMap{
			{"dataSet", m.identOrUID(kindDataSet, dsScheme, reg.DataSet)},
			{"period", reg.Period},
			{"organisationUnit", m.identOrUID(kindOrgUnit, ouScheme, reg.OrgUnit)},
			{"attributeOptionCombo", m.identOrUID(kindCOC, aocScheme, reg.AttributeOptionCombo)},
			{"date", reg.Date},
			{"storedBy", reg.StoredBy},
			{"completed", reg.Completed},
		})
		if limit >= 0 && len(list) >= limit {
			break
		}
	}
	writeBody(w, r, http.StatusOK, "", orderedMap{{"completeDataSetRegistrations", list}})
}

func (s *Server) handleDeleteRegistrations(w http.ResponseWriter, r *http.Request) {
	c := callOf(r)
	if !c.user.HasAuthority("F_DATAVALUE_DELETE") && !c.user.HasAuthority("F_DATAVALUE_ADD") {
		writeError(w, r, http.StatusForbidden, "Access is denied")
		return
	}
	m := s.metadataSnapshot()
	q := queryOf(r)
	fail := func(msg string) { (&apiError{status: http.StatusConflict, message: msg}).write(w, r) }
	dsRefs := listParam(q, "ds")
	var dataSets []string
	for _, ref := range dsRefs {
		if ds := m.idx.ds[ref]; ds != nil {
			dataSets = append(dataSets, ds.ID)
		}
	}
	if len(dsRefs) == 0 || len(dataSets) != len(dsRefs) {
		fail("Illegal data set identifier in this list: [" + strings.Join(dsRefs, ", ") + "]")
		return
	}
	pe, ok := parsePeriod(q.Get("pe"))
	if !ok {
		fail("Illegal period identifier: " + q.Get("pe"))
		return
	}
	ou := m.idx.ou[q.Get("ou")]
	if ou == nil {
		fail("Illegal organisation unit identifier: " + q.Get("ou"))
		return
	}
	aoc := DefaultCategoryOptionComboUID
	if cc, cp := q.Get("cc"), q.Get("cp"); cc != "" && cp != "" {
		if aoc = m.aocFromOptions(cc, cp); aoc == "" {
			fail("Illegal attribute option combo identifier: " + cc + " " + cp)
			return
		}
	}
	units := []string{ou.ID}
	if boolParam(q, "multiOu") {
		for _, o := range m.OrgUnits {
			if o.ID != ou.ID && m.isDescendant(o.ID, []string{ou.ID}) {
				units = append(units, o.ID)
			}
		}
	}
	for _, ds := range dataSets {
		for _, unit := range units {
			s.store.DeleteRegistration(ds, pe.ID, unit, aoc)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
