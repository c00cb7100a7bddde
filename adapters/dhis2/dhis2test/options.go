package dhis2test

import (
	"net/url"
	"strings"
)

const (
	schemeUID       = "UID"
	schemeCode      = "CODE"
	schemeName      = "NAME"
	schemeID        = "ID"
	schemeUUID      = "UUID"
	schemeAttribute = "ATTRIBUTE"
)

// idScheme is a DHIS2 IdScheme: UID, CODE, NAME, ID, UUID or ATTRIBUTE:<uid>.
type idScheme struct {
	kind string
	attr string
}

// parseIDScheme parses a scheme case-insensitively; ok is false when s is
// empty or not a scheme.
func parseIDScheme(s string) (idScheme, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return idScheme{}, false
	}
	up := strings.ToUpper(s)
	switch up {
	case schemeUID, schemeCode, schemeName, schemeID, schemeUUID:
		return idScheme{kind: up}, true
	}
	if strings.HasPrefix(up, "ATTRIBUTE:") && len(s) > len("ATTRIBUTE:") {
		return idScheme{kind: schemeAttribute, attr: s[len("ATTRIBUTE:"):]}, true
	}
	return idScheme{}, false
}

func (s idScheme) String() string {
	if s.kind == schemeAttribute {
		return "ATTRIBUTE:" + s.attr
	}
	if s.kind == "" {
		return schemeUID
	}
	return s.kind
}

// schemeSet holds the id schemes that can be set for an import. Empty kinds
// mean "not given here".
type schemeSet struct {
	id, dataElement, orgUnit, coc, aoc, dataSet, category, categoryOption idScheme
}

// effectiveSchemes combines the payload's and the query's schemes with the
// precedence of spec dhis2.md §1.3: payload-specific > query-specific >
// payload idScheme > query idScheme > default.
type effectiveSchemes struct {
	dataElement, orgUnit, coc, aoc, dataSet, category, categoryOption idScheme
}

func resolveSchemes(payload, query schemeSet, def idScheme) effectiveSchemes {
	pick := func(p, q idScheme) idScheme {
		for _, s := range []idScheme{p, q, payload.id, query.id, def} {
			if s.kind != "" {
				return s
			}
		}
		return idScheme{kind: schemeUID}
	}
	coc := pick(payload.coc, query.coc)
	aoc := coc // §1.2: the AOC is looked up with the COC scheme ...
	if payload.aoc.kind != "" {
		aoc = payload.aoc // ... unless a 2.43+ payload names its own
	}
	return effectiveSchemes{
		dataElement:    pick(payload.dataElement, query.dataElement),
		orgUnit:        pick(payload.orgUnit, query.orgUnit),
		coc:            coc,
		aoc:            aoc,
		dataSet:        pick(payload.dataSet, query.dataSet),
		category:       pick(payload.category, query.category),
		categoryOption: pick(payload.categoryOption, query.categoryOption),
	}
}

// importOptions are the query parameters of POST /api/dataValueSets that the
// emulator understands (spec dhis2.md §1.2). raw keeps every parameter for
// the importOptions echo.
type importOptions struct {
	schemes         schemeSet
	strategyName    string // as echoed (upper case, alias kept)
	strategy        string // normalised: CREATE, UPDATE, CREATE_AND_UPDATE, DELETE
	dryRun          bool
	async           bool
	skipAudit       bool
	skipExisting    bool
	strictPeriods   bool
	strictDE        bool
	strictCOC       bool
	strictAOC       bool
	strictOU        bool
	strictApproval  bool
	strictLocking   bool
	strictInput     bool
	requireCOC      bool
	requireAOC      bool
	force           bool
	firstRowHeader  bool
	atomic          bool
	dataSet         string // CSV only
	preheatCache    bool
	ignoreEmpty     bool
	skipPattern     bool
	skipLastUpdated bool
	mergeDataValues bool
	skipCache       bool
	skipNotify      bool
	sharing         bool
	mergeMode       string
	reportMode      string
	invalid         []string // parameters that could not be bound
}

// normaliseStrategy maps ImportStrategy names and their legacy aliases.
func normaliseStrategy(s string) (string, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CREATE", "NEW":
		return "CREATE", true
	case "UPDATE", "UPDATES":
		return "UPDATE", true
	case "CREATE_AND_UPDATE", "NEW_AND_UPDATES", "SYNC":
		return "CREATE_AND_UPDATE", true
	case "DELETE", "DELETES":
		return "DELETE", true
	}
	return "", false
}

func parseImportOptions(q url.Values) importOptions {
	o := importOptions{strategy: "CREATE_AND_UPDATE", strategyName: "CREATE_AND_UPDATE", firstRowHeader: true,
		mergeMode: "REPLACE", reportMode: "FULL"}
	boolean := func(name string, dst *bool) {
		if v, ok := q[name]; ok && len(v) > 0 {
			switch strings.ToLower(strings.TrimSpace(v[0])) {
			case "true":
				*dst = true
			case "false":
				*dst = false
			default:
				o.invalid = append(o.invalid, name)
			}
		}
	}
	scheme := func(name string, dst *idScheme) {
		if v := q.Get(name); v != "" {
			if s, ok := parseIDScheme(v); ok {
				*dst = s
			} else {
				o.invalid = append(o.invalid, name)
			}
		}
	}
	scheme("idScheme", &o.schemes.id)
	scheme("dataElementIdScheme", &o.schemes.dataElement)
	scheme("orgUnitIdScheme", &o.schemes.orgUnit)
	scheme("categoryOptionComboIdScheme", &o.schemes.coc)
	scheme("dataSetIdScheme", &o.schemes.dataSet)
	scheme("categoryIdScheme", &o.schemes.category)
	scheme("categoryOptionIdScheme", &o.schemes.categoryOption)
	// attributeOptionComboIdScheme has no setter on ImportOptions (§1.2): ignored.
	if v := q.Get("importStrategy"); v != "" {
		if s, ok := normaliseStrategy(v); ok {
			o.strategy = s
			o.strategyName = strings.ToUpper(strings.TrimSpace(v))
		} else {
			o.invalid = append(o.invalid, "importStrategy")
		}
	}
	boolean("dryRun", &o.dryRun)
	boolean("async", &o.async)
	boolean("skipAudit", &o.skipAudit)
	boolean("skipExistingCheck", &o.skipExisting)
	boolean("strictPeriods", &o.strictPeriods)
	boolean("strictDataElements", &o.strictDE)
	boolean("strictCategoryOptionCombos", &o.strictCOC)
	boolean("strictAttributeOptionCombos", &o.strictAOC)
	boolean("strictOrganisationUnits", &o.strictOU)
	boolean("strictDataSetApproval", &o.strictApproval)
	boolean("strictDataSetLocking", &o.strictLocking)
	boolean("strictDataSetInputPeriods", &o.strictInput)
	boolean("requireCategoryOptionCombo", &o.requireCOC)
	boolean("requireAttributeOptionCombo", &o.requireAOC)
	boolean("force", &o.force)
	boolean("firstRowIsHeader", &o.firstRowHeader)
	boolean("atomic", &o.atomic)
	boolean("preheatCache", &o.preheatCache)
	boolean("ignoreEmptyCollection", &o.ignoreEmpty)
	boolean("skipPatternValidation", &o.skipPattern)
	boolean("skipLastUpdated", &o.skipLastUpdated)
	boolean("mergeDataValues", &o.mergeDataValues)
	boolean("skipCache", &o.skipCache)
	boolean("skipNotifications", &o.skipNotify)
	boolean("sharing", &o.sharing)
	if v := q.Get("mergeMode"); v != "" {
		o.mergeMode = strings.ToUpper(v)
	}
	if v := q.Get("reportMode"); v != "" {
		o.reportMode = strings.ToUpper(v)
	}
	o.dataSet = q.Get("dataSet")
	return o
}

// echo renders ImportOptions as DHIS2 serialises them in the summary
// (spec dhis2.md §2.3 "importOptions echo"), in DHIS2's field order.
func (o importOptions) echo(v Version) orderedMap {
	ids := orderedMap{}
	add := func(name string, s idScheme) {
		if s.kind == "" {
			return
		}
		obj := orderedMap{{"type", s.kind}}
		if s.kind == schemeAttribute {
			obj = append(obj, kv{"attribute", s.attr})
		}
		ids = append(ids, kv{name, obj})
	}
	add("dataElementIdScheme", o.schemes.dataElement)
	add("categoryOptionComboIdScheme", o.schemes.coc)
	add("categoryOptionIdScheme", o.schemes.categoryOption)
	add("categoryIdScheme", o.schemes.category)
	add("orgUnitIdScheme", o.schemes.orgUnit)
	add("dataSetIdScheme", o.schemes.dataSet)
	add("idScheme", o.schemes.id)
	m := orderedMap{
		{"idSchemes", ids}, {"dryRun", o.dryRun}, {"async", o.async}, {"importStrategy", o.strategyName},
		{"mergeMode", o.mergeMode}, {"reportMode", o.reportMode}, {"skipExistingCheck", o.skipExisting},
		{"sharing", o.sharing}, {"skipNotifications", o.skipNotify}, {"skipAudit", o.skipAudit},
		{"datasetAllowsPeriods", false}, {"strictPeriods", o.strictPeriods}, {"strictDataElements", o.strictDE},
		{"strictCategoryOptionCombos", o.strictCOC}, {"strictAttributeOptionCombos", o.strictAOC},
		{"strictOrganisationUnits", o.strictOU},
	}
	if v.Minor >= 39 {
		m = append(m, kv{"strictDataSetApproval", o.strictApproval}, kv{"strictDataSetLocking", o.strictLocking},
			kv{"strictDataSetInputPeriods", o.strictInput})
	}
	m = append(m, kv{"requireCategoryOptionCombo", o.requireCOC}, kv{"requireAttributeOptionCombo", o.requireAOC},
		kv{"skipPatternValidation", o.skipPattern}, kv{"ignoreEmptyCollection", o.ignoreEmpty}, kv{"force", o.force},
		kv{"firstRowIsHeader", o.firstRowHeader}, kv{"skipLastUpdated", o.skipLastUpdated},
		kv{"mergeDataValues", o.mergeDataValues}, kv{"skipCache", o.skipCache})
	if o.dataSet != "" {
		m = append(m, kv{"dataSet", o.dataSet})
	}
	if v.usesNewPipeline() {
		m = append(m, kv{"atomic", o.atomic})
	}
	return m
}
