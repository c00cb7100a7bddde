package dhis2test

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GET /api/dataValueSets: exporting stored data values (spec dhis2.md §4.2).
//
// Parameters: dataSet, dataElement, dataElementGroup (what); period,
// startDate+endDate, lastUpdated, lastUpdatedDuration (when); orgUnit with
// children (where); attributeOptionCombo, includeDeleted, limit; output id
// schemes idScheme, dataElementIdScheme, orgUnitIdScheme,
// categoryOptionComboIdScheme (also used for attribute option combos, as
// DHIS2's SQL does), dataSetIdScheme; input id schemes inputIdScheme,
// inputDataSetIdScheme, inputDataElementIdScheme,
// inputDataElementGroupIdScheme, inputOrgUnitIdScheme. Repeated parameters
// and comma-separated lists both work. Identifiers that do not resolve are
// dropped, as DHIS2 does, which can then trigger E2001/E2006.
//
// Validation follows DefaultDataValueSetService: access first (E2012 for an
// org unit outside the user's hierarchy), then E2001, E2002, E2003, E2004,
// E2005, E2006, E2008, E2009, where the LAST failing check is reported (the
// service overwrites its error variable). orgUnitGroup is accepted but the
// emulator has no org unit groups, so it selects nothing.
//
// Formats: .json (default), .xml, .csv, or Accept on /api/dataValueSets.
// JSON values carry dataElement, period, orgUnit, categoryOptionCombo,
// attributeOptionCombo, value, storedBy, created, lastUpdated, comment (null
// when empty), followup, and deleted:true only on deleted rows. A request
// for exactly one data set, period and org unit gets the header
// dataSet/completeDate/period/orgUnit first. Rows come in store order
// (data element, period, org unit, combos by UID).

// DataElementGroup is a data element group (export's dataElementGroup
// parameter; GET /api/dataElementGroups is not served). DataElements may be
// written as UIDs, codes or names.
type DataElementGroup struct {
	ID              string          `json:"id" yaml:"id"`
	Code            string          `json:"code,omitempty" yaml:"code,omitempty"`
	Name            string          `json:"name" yaml:"name"`
	DataElements    []string        `json:"dataElements" yaml:"dataElements"`
	AttributeValues AttributeValues `json:"attributeValues,omitempty" yaml:"attributeValues,omitempty"`
}

func (s *Server) exportRoutes() []route {
	return []route{
		{pattern: "GET /dataValueSets", handler: s.handleExport("")},
		{pattern: "GET /dataValueSets.json", handler: s.handleExport("json")},
		{pattern: "GET /dataValueSets.xml", handler: s.handleExport("xml")},
		{pattern: "GET /dataValueSets.csv", handler: s.handleExport("csv")},
	}
}

// negotiate picks json, xml or csv from the Accept header.
func negotiate(r *http.Request) string {
	a := strings.ToLower(r.Header.Get("Accept"))
	switch {
	case strings.Contains(a, "json"):
		return "json"
	case strings.Contains(a, "csv"):
		return "csv"
	case strings.Contains(a, "xml"):
		return "xml"
	}
	return "json"
}

// exportParams is a parsed export request.
type exportParams struct {
	dataSets     []*DataSet
	dataElements map[string]bool // de UIDs named directly or through data sets and groups
	hasDE        bool            // dataElement given and resolved
	hasGroups    bool
	periods      map[string]bool
	periodList   []string
	start, end   time.Time
	hasStartEnd  bool
	lastUpdated  time.Time
	hasLastUpd   bool
	duration     string
	orgUnits     []string
	hasOUGroups  bool
	children     bool
	aocs         map[string]bool
	deleted      bool
	limit        int
	hasLimit     bool
	de, ou, coc  idScheme // output
	ds           idScheme
}

var reDuration = regexp.MustCompile(`^(\d+)([dhms])$`)

// parseDuration reads lastUpdatedDuration like DateUtils.getDuration:
// "10d", "12h", "30m", "45s".
func parseDuration(s string) (time.Duration, bool) {
	m := reDuration.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, false
	}
	unit := map[string]time.Duration{"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second}[m[2]]
	return time.Duration(n) * unit, true
}

// parseDateParam reads a date or date-time query parameter.
func parseDateParam(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04:05", "2006-01-02T15:04:05.000", time.RFC3339, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, strings.TrimSpace(v)); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func (s *Server) parseExport(m *Metadata, q url.Values, u *User) (*exportParams, *apiError) {
	in := schemeParam(q, "inputIdScheme")
	inDS := orScheme(schemeParam(q, "inputDataSetIdScheme"), in)
	inDE := orScheme(schemeParam(q, "inputDataElementIdScheme"), in)
	inDEG := orScheme(schemeParam(q, "inputDataElementGroupIdScheme"), in)
	inOU := orScheme(schemeParam(q, "inputOrgUnitIdScheme"), in)
	inAOC := orScheme(in)
	out := schemeParam(q, "idScheme")
	p := &exportParams{dataElements: map[string]bool{}, periods: map[string]bool{}, aocs: map[string]bool{},
		de: orScheme(schemeParam(q, "dataElementIdScheme"), out), ou: orScheme(schemeParam(q, "orgUnitIdScheme"), out),
		coc: orScheme(schemeParam(q, "categoryOptionComboIdScheme"), out), ds: orScheme(schemeParam(q, "dataSetIdScheme"), out)}

	for _, ref := range listParam(q, "dataSet") {
		if uid := m.find(kindDataSet, inDS, ref); uid != "" && !slices.ContainsFunc(p.dataSets, func(d *DataSet) bool { return d.ID == uid }) {
			ds := m.idx.ds[uid]
			p.dataSets = append(p.dataSets, ds)
			for _, de := range ds.DataElements {
				p.dataElements[de] = true
			}
		}
	}
	for _, ref := range listParam(q, "dataElementGroup") {
		if g := m.findDEGroup(inDEG, ref); g != nil {
			p.hasGroups = true
			for _, r := range g.DataElements {
				if de := m.DataElement(r); de != nil {
					p.dataElements[de.ID] = true
				}
			}
		}
	}
	for _, ref := range listParam(q, "dataElement") {
		if uid := m.find(kindDataElement, inDE, ref); uid != "" {
			p.hasDE = true
			p.dataElements[uid] = true
		}
	}
	for _, id := range listParam(q, "period") {
		if pe, ok := parsePeriod(id); ok && !p.periods[pe.ID] {
			p.periods[pe.ID] = true
			p.periodList = append(p.periodList, pe.ID)
		}
	}
	if len(p.periodList) == 0 && q.Get("startDate") != "" && q.Get("endDate") != "" {
		st, ok1 := parseDateParam(q.Get("startDate"))
		en, ok2 := parseDateParam(q.Get("endDate"))
		if ok1 && ok2 {
			p.start, p.end, p.hasStartEnd = st, en, true
		}
	}
	if v := q.Get("lastUpdated"); v != "" {
		if t, ok := parseDateParam(v); ok {
			p.lastUpdated, p.hasLastUpd = t, true
		}
	}
	p.duration = q.Get("lastUpdatedDuration")
	for _, ref := range listParam(q, "orgUnit") {
		if uid := m.find(kindOrgUnit, inOU, ref); uid != "" && !slices.Contains(p.orgUnits, uid) {
			p.orgUnits = append(p.orgUnits, uid)
		}
	}
	for _, ref := range listParam(q, "attributeOptionCombo") {
		if uid := m.find(kindCOC, inAOC, ref); uid != "" {
			p.aocs[uid] = true
		}
	}
	p.children = boolParam(q, "children")
	p.deleted = boolParam(q, "includeDeleted")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, &apiError{status: http.StatusBadRequest, message: "Value '" + v + "' is not valid for parameter limit"}
		}
		p.limit, p.hasLimit = n, true
	}

	// decideAccess (E2010/E2011 need data sharing, which is not modelled).
	for _, ou := range p.orgUnits {
		if !m.inUserHierarchy(u, ou) {
			return nil, conflictf("E2012", "User is not allowed to view org unit: `{0}`", ou)
		}
	}
	// validate: every check runs and the last failure wins.
	var e *apiError
	if !p.hasDE && len(p.dataSets) == 0 && !p.hasGroups {
		e = conflictf("E2001", "At least one data element, data set or data element group must be specified")
	}
	hasDuration := p.duration != ""
	if len(p.periodList) == 0 && !p.hasStartEnd && !p.hasLastUpd && !hasDuration {
		e = conflictf("E2002", "At least one period, start/end dates, last updated or last updated duration must be specified")
	}
	if len(p.periodList) > 0 && p.hasStartEnd {
		e = conflictf("E2003", "Both periods and start/end date cannot be specified")
	}
	if p.hasStartEnd && p.start.After(p.end) {
		e = conflictf("E2004", "Start date must be before end date")
	}
	if hasDuration {
		if _, ok := parseDuration(p.duration); !ok {
			e = conflictf("E2005", "Duration is not valid: `{0}`", p.duration)
		}
	}
	if len(p.orgUnits) == 0 { // orgUnitGroup: the emulator has no org unit groups
		e = conflictf("E2006", "At least one organisation unit or organisation unit group must be specified")
	}
	if p.children && len(p.orgUnits) == 0 {
		e = conflictf("E2008", "At least one organisation unit must be specified when children are included")
	}
	if p.hasLimit && p.limit < 0 {
		e = conflictf("E2009", "Limit cannot be less than zero: `{0}`", strconv.Itoa(p.limit))
	}
	if e != nil {
		return nil, e
	}
	return p, nil
}

// findDEGroup resolves a data element group written in scheme s.
func (m *Metadata) findDEGroup(s idScheme, ref string) *DataElementGroup {
	for _, g := range m.DataElementGroups {
		var v string
		switch s.kind {
		case "", schemeUID:
			v = g.ID
		case schemeCode:
			v = g.Code
		case schemeName:
			v = g.Name
		case schemeAttribute:
			v = g.AttributeValues[s.attr]
		}
		if v != "" && v == ref {
			return g
		}
	}
	return nil
}

// selectValues returns the stored rows the export selects.
func (s *Server) selectValues(m *Metadata, p *exportParams) []Value {
	var since time.Time
	switch {
	case p.hasLastUpd:
		since = p.lastUpdated
	case p.duration != "":
		d, _ := parseDuration(p.duration)
		since = s.now().Add(-d)
	}
	var out []Value
	for _, v := range s.store.AllValues() {
		if !p.dataElements[v.DataElement] || (v.Deleted && !p.deleted) {
			continue
		}
		if p.children {
			if !m.isDescendant(v.OrgUnit, p.orgUnits) {
				continue
			}
		} else if !slices.Contains(p.orgUnits, v.OrgUnit) {
			continue
		}
		if p.hasStartEnd {
			pe, ok := parsePeriod(v.Period)
			if !ok || pe.Start.Before(p.start) || pe.End.After(p.end) {
				continue
			}
		} else if len(p.periodList) > 0 && !p.periods[v.Period] {
			continue
		}
		if len(p.aocs) > 0 && !p.aocs[v.AttributeOptionCombo] {
			continue
		}
		if !since.IsZero() && v.LastUpdated.Before(since) {
			continue
		}
		out = append(out, v)
		if p.hasLimit && len(out) >= p.limit {
			break
		}
	}
	return out
}

// exportIdent renders an identifier of an exported value like DHIS2's SQL:
// an attribute scheme falls back to the UID, a missing code or name is null.
func (m *Metadata) exportIdent(k kind, sch idScheme, uid string) any {
	if v, ok := m.identOf(k, sch, uid); ok {
		return v
	}
	if sch.kind == schemeAttribute {
		return uid
	}
	return nil
}

func (s *Server) handleExport(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callOf(r)
		m := s.metadataSnapshot()
		p, e := s.parseExport(m, queryOf(r), c.user)
		if e != nil {
			e.write(w, r)
			return
		}
		f := format
		if f == "" {
			f = negotiate(r)
		}
		values := s.selectValues(m, p)

		var header orderedMap
		if len(p.dataSets) == 1 && len(p.periodList) == 1 && len(p.orgUnits) == 1 && !p.hasGroups {
			ds := p.dataSets[0]
			var complete any
			for _, reg := range s.store.Registrations() {
				if reg.DataSet == ds.ID && reg.Period == p.periodList[0] && reg.OrgUnit == p.orgUnits[0] &&
					reg.AttributeOptionCombo == DefaultCategoryOptionComboUID {
					if t, err := time.Parse("2006-01-02", reg.Date); err == nil {
						complete = timestampUTC(t)
					}
				}
			}
			header = orderedMap{{"dataSet", m.exportIdent(kindDataSet, p.ds, ds.ID)}, {"completeDate", complete},
				{"period", p.periodList[0]}, {"orgUnit", m.exportIdent(kindOrgUnit, p.ou, p.orgUnits[0])}}
		}
		rows := make([]orderedMap, 0, len(values))
		for _, v := range values {
			row := orderedMap{
				{"dataElement", m.exportIdent(kindDataElement, p.de, v.DataElement)},
				{"period", v.Period},
				{"orgUnit", m.exportIdent(kindOrgUnit, p.ou, v.OrgUnit)},
				{"categoryOptionCombo", m.exportIdent(kindCOC, p.coc, v.CategoryOptionCombo)},
				{"attributeOptionCombo", m.exportIdent(kindCOC, p.coc, v.AttributeOptionCombo)},
				{"value", orNull(v.Value)},
				{"storedBy", orNull(v.StoredBy)},
				{"created", timestampUTC(v.Created)},
				{"lastUpdated", timestampUTC(v.LastUpdated)},
				{"comment", orNull(v.Comment)},
				{"followup", v.FollowUp},
			}
			if v.Deleted {
				row = append(row, kv{"deleted", true})
			}
			rows = append(rows, row)
		}
		switch f {
		case "xml":
			writeDataValueSetXML(w, header, rows)
		case "csv":
			s.writeExportCSV(w, rows)
		default:
			body := append(orderedMap{}, header...)
			list := make([]any, len(rows))
			for i, r := range rows {
				list[i] = r
			}
			body = append(body, kv{"dataValues", list})
			writeBody(w, r, http.StatusOK, "", body)
		}
	}
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// writeDataValueSetXML writes a DXF2 data value set: header and values as
// attributes, null fields left out.
func writeDataValueSetXML(w http.ResponseWriter, header orderedMap, rows []orderedMap) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString(`<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"`)
	writeXMLAttrs(&buf, header)
	buf.WriteString(">")
	for _, r := range rows {
		buf.WriteString("<dataValue")
		writeXMLAttrs(&buf, r)
		buf.WriteString("/>")
	}
	buf.WriteString("</dataValueSet>")
	w.Header().Set("Content-Type", contentTypeXML)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func writeXMLAttrs(buf *bytes.Buffer, m orderedMap) {
	for _, f := range m {
		if f.v == nil {
			continue
		}
		buf.WriteString(" " + f.k + `="`)
		_ = xml.EscapeText(buf, []byte(scalarText(f.v)))
		buf.WriteString(`"`)
	}
}

func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return ""
	}
	return strings.Trim(string(b), `"`)
}

// writeExportCSV writes the export CSV (spec dhis2.md §4.4): no created
// column; 2.43+ appends deleted.
func (s *Server) writeExportCSV(w http.ResponseWriter, rows []orderedMap) {
	cols := []string{"dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo", "value",
		"storedBy", "lastUpdated", "comment", "followup"}
	head := []string{"dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo", "value",
		"storedby", "lastupdated", "comment", "followup"}
	withDeleted := s.version.usesNewPipeline()
	if withDeleted {
		head = append(head, "deleted")
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write(head)
	for _, r := range rows {
		rec := make([]string, 0, len(head))
		for _, c := range cols {
			v, _ := omGet(r, c)
			if v == nil {
				rec = append(rec, "")
				continue
			}
			rec = append(rec, scalarText(v))
		}
		if withDeleted {
			d, _ := omGet(r, "deleted")
			rec = append(rec, strconv.FormatBool(d == true))
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	w.Header().Set("Content-Type", "application/csv;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
