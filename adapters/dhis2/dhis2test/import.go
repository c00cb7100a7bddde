package dhis2test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// importRequest is one POST /api/dataValueSets, already authenticated and
// decompressed.
type importRequest struct {
	body   []byte
	format string // json, xml, csv, adx
	opts   importOptions
	user   *User
	reqID  string
}

// importer carries the state of one import run.
type importer struct {
	srv   *Server
	meta  *Metadata
	v     Version
	req   importRequest
	p     *payload
	sch   effectiveSchemes
	sum   *summary
	now   time.Time
	today string

	strategy string
	dryRun   bool
	audited  bool

	// The values of one import repeat a few periods and data sets: what is worked out
	// from them alone is kept for the import (a regexp per value was half its cost).
	periods map[string]parsedPeriod
	latest  map[latestKey]parsedPeriod
}

type parsedPeriod struct {
	p  period
	ok bool
}

type latestKey struct {
	periodType string
	open       int
}

// period parses a period id as the target's release does, once per id and import.
func (imp *importer) period(id string) (period, bool) {
	if r, ok := imp.periods[id]; ok {
		return r.p, r.ok
	}
	p, ok := imp.v.parsePeriod(id)
	if imp.periods == nil {
		imp.periods = map[string]parsedPeriod{}
	}
	imp.periods[id] = parsedPeriod{p, ok}
	return p, ok
}

// runImport parses and imports a data value set and returns its summary.
// The body is parsed as requests arrive, concurrently, as DHIS2's request
// threads do; the import itself is serialised (one "transaction" at a
// time), which keeps counts deterministic when tests send requests
// concurrently. Parsing reads only the request and the metadata snapshot
// taken here, which the import then uses too.
func (s *Server) runImport(ctx context.Context, req importRequest) *summary {
	meta := s.metadataSnapshot()
	now := s.now()
	imp := &importer{srv: s, meta: meta, v: s.version, req: req, sum: newSummary(req.opts), now: now,
		today: now.Format("2006-01-02")}
	if err := ctx.Err(); err != nil {
		imp.fail(fmt.Errorf("request cancelled: %w", err))
		return imp.sum
	}
	if len(req.opts.invalid) > 0 {
		imp.fail(fmt.Errorf("invalid value for parameter(s): %s", strings.Join(req.opts.invalid, ", ")))
		return imp.sum
	}
	err := imp.decode()
	s.importMu.Lock()
	defer s.importMu.Unlock()
	if err != nil {
		var ge *adxGroupError
		switch {
		case errors.As(err, &ge):
			imp.sum.status = "ERROR"
			imp.sum.description = fmt.Sprintf("Data set import failed within group number: %d", ge.group)
			imp.sum.add(adxConflict("ADX Error", ge.msg))
		case req.format == "adx":
			imp.sum.status = "ERROR"
			imp.sum.description = "Data set import failed: " + err.Error()
		default:
			imp.fail(err)
		}
		return imp.sum
	}
	imp.strategy = req.opts.strategy
	if imp.p.strategy != "" {
		if st, ok := normaliseStrategy(imp.p.strategy); ok {
			imp.strategy = st
		}
	}
	imp.dryRun = req.opts.dryRun
	if imp.p.dryRun != nil {
		imp.dryRun = *imp.p.dryRun
	}
	if s.version.usesNewPipeline() {
		imp.audited = true // the 2.43 pipeline ignores skipAudit (§1.2)
		imp.runPipeline()
	} else {
		imp.audited = !(req.opts.skipAudit && req.user.HasAuthority("F_SKIP_DATA_IMPORT_AUDIT"))
		imp.runClassic()
	}
	return imp.sum
}

// fail turns an exception into the summary DHIS2 reports (§2.2).
func (imp *importer) fail(err error) {
	imp.sum.status = "ERROR"
	imp.sum.description = "The import process failed: " + err.Error()
}

func (imp *importer) decode() error {
	var err error
	switch imp.req.format {
	case "json":
		imp.p, err = decodeJSON(imp.req.body, imp.v)
	case "xml":
		imp.p, err = decodeXML(imp.req.body, imp.v)
	case "csv":
		imp.p, err = decodeCSV(imp.req.body, imp.req.opts, imp.v)
	case "adx":
		var groups []adxGroup
		groups, err = parseADX(imp.req.body)
		if err != nil {
			return err
		}
		def := idScheme{kind: schemeUID}
		if imp.v.adxDefaultCode() {
			def = idScheme{kind: schemeCode}
		}
		sch := resolveSchemes(schemeSet{}, imp.req.opts.schemes, def)
		imp.p, err = translateADX(groups, imp.meta, sch, imp.v)
		if err == nil {
			imp.sch = sch
			for _, c := range imp.p.adxConflicts {
				imp.sum.add(c)
				imp.sum.count.ignored++
			}
		}
		return err
	default:
		return fmt.Errorf("unsupported format %q", imp.req.format)
	}
	if err != nil {
		return err
	}
	imp.sch = resolveSchemes(imp.p.schemes, imp.req.opts.schemes, idScheme{kind: schemeUID})
	return nil
}

// newConflict builds a formal conflict for a DataValueImportConflict /
// DataValueSetImportConflict descriptor: objects maps schema names to ids.
func newConflict(code, property string, index int, objects orderedMap, args ...string) *conflict {
	c := &conflict{errorCode: code, objects: objects, property: property, message: formatMessage(code, args...)}
	if len(objects) > 0 {
		if s, ok := objects[0].v.(string); ok {
			c.object = s
		}
	}
	if index >= 0 {
		c.indexes = []int{index}
	}
	return c
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ---------------------------------------------------------------------------
// 2.36–2.42 engine (DefaultDataValueSetService + DataValueSetImportValidator)

type classicValue struct {
	raw   rawValue
	de    *DataElement
	pe    period
	ou    string
	coc   string
	aoc   string
	value string // normalised, trimmed
}

func (imp *importer) runClassic() {
	m, p, sum := imp.meta, imp.p, imp.sum
	user := imp.req.user

	// --- data set level (§1.5) ---
	var ds *DataSet
	if strings.TrimSpace(p.dataSet) != "" {
		if uid := m.find(kindDataSet, imp.sch.dataSet, p.dataSet); uid != "" {
			ds = m.idx.ds[uid]
		} else {
			imp.addDS(newConflict("E7600", "dataSet", -1, orderedMap{{"dataSet", p.dataSet}}, p.dataSet),
				p.dataSet, "Data set not found or not accessible")
		}
	}
	if ds != nil && containsStr(user.ReadOnlyDataSets, ds.ID) {
		imp.addDS(newConflict("E7601", "dataSet", -1, orderedMap{{"dataSet", p.dataSet}}, p.dataSet),
			p.dataSet, "User does not have write access for DataSet: "+ds.ID)
	}
	outerOU := ""
	if strings.TrimSpace(p.orgUnit) != "" {
		outerOU = m.find(kindOrgUnit, imp.sch.orgUnit, p.orgUnit)
		if outerOU == "" {
			imp.addDS(newConflict("E7603", "orgUnit", -1,
				orderedMap{{"organisationUnit", p.orgUnit}, {"dataSet", orNil(p.dataSet)}}, p.orgUnit),
				p.orgUnit, "Org unit not found or not accessible")
		}
	}
	outerAOC := ""
	if strings.TrimSpace(p.aoc) != "" {
		outerAOC = m.find(kindCOC, imp.sch.aoc, p.aoc)
		if outerAOC == "" {
			imp.addDS(newConflict("E7604", "attributeOptionCombo", -1,
				orderedMap{{"categoryOptionCombo", p.aoc}, {"dataSet", orNil(p.dataSet)}}, p.aoc),
				p.aoc, "Attribute option combo not found or not accessible")
		}
	} else if len(p.aocOptions) > 0 && ds != nil {
		var opts []string
		for _, o := range p.aocOptions {
			opts = append(opts, m.find(kindCategoryOption, imp.sch.categoryOption, o))
		}
		outerAOC = m.idx.cocByOpts[optionKey(ds.CategoryCombo, opts)]
		if outerAOC == "" {
			ref := strings.Join(p.aocOptions, ",")
			imp.addDS(newConflict("E7604", "attributeOptionCombo", -1,
				orderedMap{{"categoryOptionCombo", ref}, {"dataSet", orNil(p.dataSet)}}, ref),
				ref, "Attribute option combo not found or not accessible")
		}
	}
	if sum.status == "ERROR" {
		sum.description = "Import process was aborted"
		return
	}

	// --- values ---
	for _, rv := range p.values {
		imp.classicValue(rv, ds, outerOU, outerAOC)
	}

	// --- completeDate (§1.4) ---
	imp.complete(ds, outerOU)

	if sum.occurrences > 0 {
		sum.status = "WARNING"
	}
}

// addDS records a data-set-level conflict and marks the import as aborted.
func (imp *importer) addDS(c *conflict, legacyObject, legacyMessage string) {
	imp.sum.status = "ERROR"
	c.legacyObject, c.legacyMessage = legacyObject, legacyMessage
	imp.sum.add(c)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// classicValue validates and writes one value.
func (imp *importer) classicValue(rv rawValue, ds *DataSet, outerOU, outerAOC string) {
	m, sum, o := imp.meta, imp.sum, imp.req.opts
	user := imp.req.user
	i := rv.index
	if imp.p.period != "" {
		rv.period = imp.p.period
	}
	if imp.p.orgUnit != "" {
		rv.orgUnit = imp.p.orgUnit
	}
	if strings.TrimSpace(imp.p.aoc) != "" {
		rv.aoc = imp.p.aoc
	}
	skip := func(c *conflict, legacyObject, legacyMessage string) {
		c.legacyObject, c.legacyMessage = legacyObject, legacyMessage
		sum.add(c)
		sum.count.ignored++
		sum.reject(i)
	}

	// E7610 data element
	var de *DataElement
	if uid := m.find(kindDataElement, imp.sch.dataElement, rv.dataElement); uid != "" {
		de = m.idx.de[uid]
	} else {
		skip(newConflict("E7610", "dataElement", i, orderedMap{{"dataElement", rv.dataElement}}, rv.dataElement),
			rv.dataElement, "Data element not found or not accessible")
		return
	}
	// E7611 period
	pe, ok := imp.period(strings.TrimSpace(rv.period))
	if !ok {
		skip(newConflict("E7611", "period", i, orderedMap{{"period", rv.period}}, rv.period),
			rv.period, "Period not valid")
		return
	}
	// E7612 org unit
	ou := outerOU
	if ou == "" {
		ou = m.find(kindOrgUnit, imp.sch.orgUnit, rv.orgUnit)
	}
	if ou == "" {
		skip(newConflict("E7612", "orgUnit", i, orderedMap{{"organisationUnit", rv.orgUnit}}, rv.orgUnit),
			rv.orgUnit, "Organisation unit not found or not accessible")
		return
	}
	// E7613 category option combo
	coc := rv.cocUID
	if coc == "" && strings.TrimSpace(rv.coc) != "" {
		coc = m.find(kindCOC, imp.sch.coc, rv.coc)
		if coc == "" {
			skip(newConflict("E7613", "categoryOptionCombo", i, orderedMap{{"categoryOptionCombo", rv.coc}}, rv.coc),
				rv.coc, "Category option combo not found or not accessible for writing data")
			return
		}
	}
	// E7615 attribute option combo
	aoc := outerAOC
	if aoc == "" {
		aoc = rv.aocUID
	}
	if aoc == "" && strings.TrimSpace(rv.aoc) != "" {
		aoc = m.find(kindCOC, imp.sch.aoc, rv.aoc)
		if aoc == "" {
			skip(newConflict("E7615", "attributeOptionCombo", i, orderedMap{{"categoryOptionCombo", rv.aoc}}, rv.aoc),
				rv.aoc, "Attribute option combo not found or not accessible for writing data")
			return
		}
	}
	imp.receive(Key{de.ID, pe.ID, ou, cmp.Or(coc, m.defaultCOC()), cmp.Or(aoc, m.defaultCOC())})
	// E7617 user hierarchy
	if len(user.OrgUnits) > 0 && !m.isDescendant(ou, user.OrgUnits) {
		skip(newConflict("E7617", "orgUnit", i, orderedMap{{"organisationUnit", rv.orgUnit}, {"user", user.ID}}, rv.orgUnit, user.ID),
			ou, "Organisation unit not in hierarchy of current user: "+user.Username)
		return
	}
	deleted := rv.deleted != nil && *rv.deleted
	value := ""
	if rv.value != nil {
		value = strings.TrimSpace(*rv.value)
	}
	comment := ""
	if rv.comment != nil {
		comment = strings.TrimSpace(*rv.comment)
	}
	// E7618 value or comment required
	if value == "" && comment == "" && !deleted && imp.strategy != "DELETE" {
		skip(newConflict("E7618", "value", i, orderedMap{{"dataElement", rv.dataElement}}, rv.dataElement),
			"Value", "Data value or comment not specified for data element: "+de.ID)
		return
	}
	// E7619 value type
	if value != "" {
		value = normaliseValue(de.ValueType, value)
		if key := valueError(de.ValueType, value); key != "" {
			skip(newConflict("E7619", "value", i, orderedMap{{"dataElement", rv.dataElement}, {"value", key}}, rv.dataElement, i18n(key)),
				value, i18n(key)+", must match data element type: "+de.ID)
			return
		}
	}
	// E7620 comment
	if len([]rune(comment)) > maxCommentLength {
		key := "comment_length_greater_than_max_length"
		skip(newConflict("E7620", "comment", i, orderedMap{{"comment", key}}, i18n(key)), comment, i18n(key))
		return
	}
	// E7621 option set
	if value != "" && len(de.OptionSet) > 0 && !containsStr(de.OptionSet, value) {
		skip(newConflict("E7621", "value", i, orderedMap{{"dataElement", rv.dataElement}}, rv.dataElement),
			value, "Data value is not a valid option of the data element option set: "+de.ID)
		return
	}
	// E7630 / E7631 required combos, else the default
	if coc == "" {
		if o.requireCOC {
			skip(newConflict("E7630", "categoryOptionCombo", i, orderedMap{}), "dataValueSet",
				formatMessage("E7630"))
			return
		}
		coc = m.defaultCOC()
	}
	if aoc == "" {
		if o.requireAOC {
			skip(newConflict("E7631", "attributeOptionCombo", i, orderedMap{}), "dataValueSet",
				formatMessage("E7631"))
			return
		}
		aoc = m.defaultCOC()
	}
	deSets := m.idx.dsByDE[de.ID]
	// E7632 strict periods
	if o.strictPeriods {
		okType := false
		for _, d := range deSets {
			okType = okType || d.PeriodType == pe.Type
		}
		if !okType {
			skip(newConflict("E7632", "", i, orderedMap{{"period", rv.period}, {"dataElement", rv.dataElement}}, rv.period, rv.dataElement),
				rv.period, "Period type of period: "+pe.ID+" not valid for data element: "+de.ID)
			return
		}
	}
	// E7633 strict data elements
	if o.strictDE {
		targets := deSets
		if ds != nil {
			targets = []*DataSet{ds}
		}
		in := false
		var ids []string
		for _, d := range targets {
			ids = append(ids, d.ID)
			in = in || containsStr(d.DataElements, de.ID)
		}
		if !in {
			skip(newConflict("E7633", "dataElement", i, orderedMap{{"dataElement", rv.dataElement}, {"dataSet", strings.Join(ids, ",")}},
				rv.dataElement, strings.Join(ids, ",")), rv.dataElement, "Data element not part of data set(s): "+strings.Join(ids, ","))
			return
		}
	}
	// E7634 strict COC
	if o.strictCOC && !containsStr(m.idx.cocByCombo[de.CategoryCombo], coc) {
		skip(newConflict("E7634", "categoryOptionCombo", i, orderedMap{{"categoryOptionCombo", orNil(rv.coc)}, {"dataElement", rv.dataElement}},
			rv.coc, rv.dataElement), rv.coc, "Category option combo: "+coc+" must be part of category combo of data element: "+de.ID)
		return
	}
	// E7635 strict AOC
	if o.strictAOC {
		in := false
		for _, d := range deSets {
			in = in || containsStr(m.idx.cocByCombo[d.CategoryCombo], aoc)
		}
		if !in {
			skip(newConflict("E7635", "attributeOptionCombo", i, orderedMap{{"categoryOptionCombo", orNil(rv.aoc)}, {"dataElement", rv.dataElement}},
				rv.aoc, rv.dataElement), rv.aoc, "Attribute option combo: "+aoc+" must be part of category combo of data sets of data element: "+de.ID)
			return
		}
	}
	// E7636 strict org units
	if o.strictOU {
		in := false
		for _, d := range deSets {
			in = in || m.idx.dsOrgUnits[d.ID][ou]
		}
		if !in {
			skip(newConflict("E7636", "orgUnit", i, orderedMap{{"organisationUnit", rv.orgUnit}, {"dataElement", rv.dataElement}},
				rv.orgUnit, rv.dataElement), rv.orgUnit, "Data element: "+de.ID+" must be assigned through data sets to organisation unit: "+ou)
			return
		}
	}
	// E7637 storedBy
	if len([]rune(rv.storedBy)) > maxStoredBy {
		key := "storedby_length_greater_than_max_length"
		skip(newConflict("E7637", "storedBy", i, orderedMap{{"storedBy", key}}, i18n(key)), rv.storedBy, i18n(key))
		return
	}
	// E7638 / E7639 attribute option constraints
	if aocObj := m.idx.coc[aoc]; aocObj != nil {
		for _, optID := range aocObj.Options {
			opt := m.idx.opt[optID]
			if opt == nil {
				continue
			}
			if (opt.StartDate != "" && opt.StartDate > pe.End.Format("2006-01-02")) ||
				(opt.EndDate != "" && opt.EndDate < pe.Start.Format("2006-01-02")) {
				skip(newConflict("E7638", "period", i, orderedMap{{"period", rv.period}, {"categoryOptionCombo", orNil(rv.aoc)}}, rv.period, rv.aoc),
					rv.period, "Period: "+pe.ID+" is not within date range of attribute option combo: "+aoc)
				return
			}
		}
		var allowed []string
		for _, optID := range aocObj.Options {
			for ouID := range m.idx.optOrgUnits[optID] {
				allowed = append(allowed, ouID)
			}
		}
		if len(allowed) > 0 && !m.isDescendant(ou, allowed) {
			skip(newConflict("E7639", "orgUnit", i, orderedMap{{"organisationUnit", rv.orgUnit}, {"categoryOptionCombo", orNil(rv.aoc)}}, rv.orgUnit, rv.aoc),
				rv.orgUnit, "Organisation unit: "+ou+" is not valid for attribute option combo: "+aoc)
			return
		}
	}
	// E7640–E7644 locked and closed periods (locks.go)
	if cs := imp.lockConflicts(rv, ds, de, pe, ou, aoc); len(cs) > 0 {
		for _, c := range cs {
			sum.add(c)
		}
		sum.count.ignored++
		sum.reject(i)
		return
	}

	imp.writeClassic(classicValue{raw: rv, de: de, pe: pe, ou: ou, coc: coc, aoc: aoc, value: value}, comment, deleted)
}

// latestOpenFuturePeriod follows DataElement.getLatestOpenFuturePeriod: the
// current period of the data element's period type, moved back one and then
// forward by the largest openFuturePeriods of its data sets.
func (imp *importer) latestOpenFuturePeriod(sets []*DataSet) (period, bool) {
	if len(sets) == 0 {
		return period{}, false
	}
	open := 0
	for _, d := range sets {
		open = max(open, d.OpenFuturePeriods)
	}
	k := latestKey{sets[0].PeriodType, open}
	if r, ok := imp.latest[k]; ok {
		return r.p, r.ok
	}
	r := parsedPeriod{}
	if cur, ok := periodContaining(sets[0].PeriodType, imp.now); ok {
		r.p, r.ok = shiftPeriod(cur, open-1)
	}
	if imp.latest == nil {
		imp.latest = map[latestKey]parsedPeriod{}
	}
	imp.latest[k] = r
	return r.p, r.ok
}

// writeClassic applies the strategy table of spec dhis2.md §1.4.
func (imp *importer) writeClassic(cv classicValue, comment string, deleted bool) {
	sum := imp.sum
	key := Key{cv.de.ID, cv.pe.ID, cv.ou, cv.coc, cv.aoc}
	var existing Value
	exists := false
	if !imp.req.opts.skipExisting {
		existing, exists = imp.srv.store.get(key)
	}
	live := exists && !existing.Deleted
	followup := cv.raw.followup != nil && *cv.raw.followup
	zero := cv.value != "" && zeroInsignificant(cv.de, cv.value)
	storedBy := cv.raw.storedBy
	if strings.TrimSpace(storedBy) == "" {
		storedBy = imp.req.user.Username
	}

	// DefaultDataValueSetService.importDataValue (2.38–2.42): an insignificant
	// zero is skipped (counted nowhere) when there is no row at all or the
	// strategy is CREATE; a soft-deleted row still counts as existing.
	if zero && (!exists || imp.strategy == "CREATE") {
		return
	}
	switch {
	case live && imp.strategy == "CREATE": // never overwrite
		sum.count.ignored++
		sum.reject(cv.raw.index)
		return
	case live && imp.strategy == "DELETE":
		imp.del(key, existing)
		sum.count.deleted++
		return
	case !live && (imp.strategy == "UPDATE" || imp.strategy == "DELETE"): // never create
		sum.count.ignored++
		sum.reject(cv.raw.index)
		return
	}

	if live { // update path (CREATE_AND_UPDATE or UPDATE)
		switch {
		case deleted || cv.value == "" || zero:
			imp.del(key, existing)
			sum.count.deleted++
		case existing.Value == cv.value && existing.Comment == comment && existing.FollowUp == followup:
			sum.count.ignored++
		default:
			nv := existing
			nv.Value, nv.Comment, nv.FollowUp, nv.StoredBy, nv.LastUpdated = cv.value, comment, followup, storedBy, imp.now
			imp.put(nv, Write{Operation: OpUpdate, OldValue: existing.Value, OldComment: existing.Comment, Audited: imp.audited})
			sum.count.updated++
		}
		return
	}

	// create path (no row, or a soft-deleted row)
	if cv.value == "" && !deleted {
		sum.count.ignored++
		return
	}
	nv := Value{Key: key, Value: cv.value, Comment: comment, FollowUp: followup, StoredBy: storedBy,
		Created: imp.now, LastUpdated: imp.now, Deleted: deleted}
	w := Write{Operation: OpCreate}
	if exists { // undelete the soft-deleted row, keeping its created date
		nv.Created = existing.Created
		w = Write{Operation: OpRestore, OldValue: existing.Value, OldComment: existing.Comment, Audited: imp.audited}
	}
	imp.put(nv, w)
	sum.count.imported++
}

func (imp *importer) put(v Value, w Write) {
	if imp.dryRun {
		return
	}
	w.Time, w.RequestID, w.NewValue, w.NewComment, w.StoredBy = imp.now, imp.req.reqID, v.Value, v.Comment, v.StoredBy
	imp.srv.store.write(v, w)
}

func (imp *importer) del(key Key, existing Value) {
	nv := existing
	nv.Deleted = true
	nv.LastUpdated = imp.now
	imp.put(nv, Write{Operation: OpDelete, OldValue: existing.Value, OldComment: existing.Comment, Audited: imp.audited})
}

// complete handles the header completeDate (spec dhis2.md §1.4).
func (imp *importer) complete(ds *DataSet, outerOU string) {
	cd := strings.TrimSpace(imp.p.completeDate)
	if ds == nil || cd == "" || strings.EqualFold(cd, "false") {
		return
	}
	date := imp.today
	if !strings.EqualFold(cd, "true") {
		d := cd
		if len(d) > 10 {
			d = d[:10]
		}
		t, err := time.Parse("2006-01-02", d)
		if err != nil {
			imp.sum.add(adxConflict(cd, "Complete date not valid"))
			return
		}
		if t.Before(imp.now) {
			date = t.Format("2006-01-02")
		}
	}
	pe, ok := imp.v.parsePeriod(strings.TrimSpace(imp.p.period))
	if outerOU == "" {
		imp.sum.add(adxConflict("OrganisationUnit", "Must be provided to complete data set"))
		return
	}
	if !ok {
		imp.sum.add(adxConflict("Period", "Must be provided to complete data set"))
		return
	}
	imp.srv.store.PutRegistration(Registration{DataSet: ds.ID, Period: pe.ID, OrgUnit: outerOU,
		AttributeOptionCombo: DefaultCategoryOptionComboUID, Date: date, StoredBy: imp.req.user.Username, Completed: true})
	imp.sum.dataSetComplete = date
}
