package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

// The `exchanges:` section: scheduled pulls from a DHIS2 instance's analytics (the model
// of DHIS2's aggregate data exchange, spec dhis2.md §10) or from CHT's DHIS2 export API
// (spec cht.md §1–§11), delivered through Tally's pipeline. docs/exchanges.md describes
// every key with examples; Config.DecodeExchanges decodes and validates the section.

// Source types of an exchange.
const (
	ExchangeSourceDHIS2 = "dhis2"
	ExchangeSourceCHT   = "cht"
)

// Stale value modes.
const (
	StaleDelete = "delete" // send the value with deleted: true (DHIS2's DELETE strategy)
	StaleZero   = "zero"   // send an explicit "0"
	StaleOff    = "off"    // leave stale values alone, as DHIS2's exchange does up to 2.42
	// StaleScope removes them with DHIS2 2.43's deletion scope, one org unit and period per
	// request, narrowed to exactly the stale keys; a target that does not report 2.43 or
	// later gets deleted: true values instead, with a warning in the run summary.
	StaleScope = "scope"
	// StaleAuto is scope for a target that reports 2.43 or later, delete otherwise.
	StaleAuto = "auto"
)

// Defaults of an exchange.
const (
	DefaultExchangeAwait    = 10 * time.Minute
	DefaultExchangeTimeout  = 2 * time.Hour
	DefaultAnalyticsMaxWait = time.Hour
	DefaultAnalyticsPoll    = 5 * time.Second
	DefaultStaleRetention   = 400 * 24 * time.Hour
	DefaultExchangeMaxVals  = 1_000_000
	defaultSourceTimeout    = 2 * time.Minute
)

// Exchange is one entry of the `exchanges:` section.
type Exchange struct {
	// Name identifies the exchange in the API, the CLI and tally_state; its values reach the
	// pipeline as source "exchange:<name>".
	Name        string         `yaml:"name"`
	Description string         `yaml:"description,omitempty"`
	Source      ExchangeSource `yaml:"source"`
	// Schedule is a five-field cron expression ("0 2 * * *"); empty runs on demand only.
	Schedule string `yaml:"schedule,omitempty"`
	// Timezone (IANA name) reads the schedule and resolves relative periods; default UTC.
	Timezone string `yaml:"timezone,omitempty"`
	// FinancialYear is the period type of the *_FINANCIAL_YEAR relative periods, DHIS2's
	// analyticsFinancialYearStart (default FinancialOct).
	FinancialYear string `yaml:"financial_year,omitempty"`
	// Analytics, for a DHIS2 source, updates the analytics tables before pulling.
	Analytics *ExchangeAnalytics `yaml:"analytics,omitempty"`
	// Window adds the last periods of a type to every request: a run covers them again
	// because tracker data arrives late and gets corrected.
	Window   *ExchangeWindow   `yaml:"window,omitempty"`
	Requests []ExchangeRequest `yaml:"requests"`
	// IDSchemes say how the pulled values' ids are written (DHIS2's target.request schemes);
	// a request may override them. Unset fields are derived from the output id schemes.
	IDSchemes ExchangeSchemes `yaml:"id_schemes,omitempty"`
	// Mapping names a mapping set applied before delivery; empty delivers ids as pulled.
	Mapping string `yaml:"mapping,omitempty"`
	// Unmapped and MappedDuplicates are the mapping policies of a source (drop|pass|reject
	// and reject|sum|last).
	Unmapped         string `yaml:"unmapped,omitempty"`
	MappedDuplicates string `yaml:"mapped_duplicates,omitempty"`
	// Targets receive the values; empty means every target.
	Targets   []string `yaml:"targets,omitempty"`
	BatchSize int      `yaml:"batch_size,omitempty"`
	// Duplicates decides what a run does with pulled values that share a key (DHIS2's
	// duplicatesOnly finds them): reject (default: the request is not sent) or allow.
	Duplicates   string                `yaml:"duplicates,omitempty"`
	Stale        ExchangeStale         `yaml:"stale,omitempty"`
	Completeness *ExchangeCompleteness `yaml:"completeness,omitempty"`
	// Notify names the notification channels told about failures and recoveries; absent
	// means every channel of the notify section, [] none.
	Notify []string `yaml:"notify,omitempty"`
	// Await bounds how long a run waits for its deliveries before it registers completeness
	// and decides whether it failed (default 10m; 0 does not wait).
	Await *Duration `yaml:"await,omitempty"`
	// Timeout bounds a whole run (default 2h).
	Timeout Duration `yaml:"timeout,omitempty"`
	// MaxValues bounds the values a run holds (default 1000000).
	MaxValues int `yaml:"max_values,omitempty"`
}

// ExchangeSource is the instance an exchange pulls from.
type ExchangeSource struct {
	// Type is dhis2 (analytics; the default) or cht (the DHIS2 export API).
	Type string `yaml:"type,omitempty"`
	// URL is the base URL, without /api.
	URL string `yaml:"url"`
	// Username and Password authenticate with Basic; Token is a DHIS2 personal access token.
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	Token    string `yaml:"token,omitempty"`
	// APIVersion pins DHIS2's API path (/api/40/...).
	APIVersion string   `yaml:"api_version,omitempty"`
	Timeout    Duration `yaml:"timeout,omitempty"`
	// Retry bounds asking the source again within a run after a failure that may pass (a
	// timeout, a 5xx, a 429): max_attempts tries in all, backing off from initial_delay to
	// max_delay. Default {max_attempts: 4, initial_delay: 1s, max_delay: 30s}.
	Retry PullRetry `yaml:"retry,omitempty"`
}

// PullRetry bounds the tries of one source request within a run.
type PullRetry struct {
	MaxAttempts  int      `yaml:"max_attempts,omitempty"`
	InitialDelay Duration `yaml:"initial_delay,omitempty"`
	MaxDelay     Duration `yaml:"max_delay,omitempty"`
}

// ExchangeAnalytics starts DHIS2's analytics table update and waits for it.
type ExchangeAnalytics struct {
	Run                  bool     `yaml:"run"`
	LastYears            int      `yaml:"last_years,omitempty"`
	SkipResourceTables   bool     `yaml:"skip_resource_tables,omitempty"`
	SkipAggregate        bool     `yaml:"skip_aggregate,omitempty"`
	SkipEvents           bool     `yaml:"skip_events,omitempty"`
	SkipEnrollment       bool     `yaml:"skip_enrollment,omitempty"`
	SkipOrgUnitOwnership bool     `yaml:"skip_org_unit_ownership,omitempty"`
	SkipOutliers         bool     `yaml:"skip_outliers,omitempty"`
	SkipTrackedEntities  bool     `yaml:"skip_tracked_entities,omitempty"`
	SkipValidationResult bool     `yaml:"skip_validation_result,omitempty"`
	MaxWait              Duration `yaml:"max_wait,omitempty"`
	PollInterval         Duration `yaml:"poll_interval,omitempty"`
}

// ExchangeWindow is the last Last periods of Type before the current one, and the current
// one when Current is set.
type ExchangeWindow struct {
	Type    string `yaml:"type"`
	Last    int    `yaml:"last,omitempty"`
	Current bool   `yaml:"current,omitempty"`
}

// ExchangeRequest mirrors a source request of DHIS2's aggregate data exchange; for a CHT
// source it is one data set of the export API.
type ExchangeRequest struct {
	Name string `yaml:"name,omitempty"`
	// DX, PE and OU are analytics dimensions: data items, periods (fixed ids and relative
	// names such as LAST_6_MONTHS) and org units (ids, LEVEL-n, OU_GROUP-id, USER_ORGUNIT...).
	DX                        []string         `yaml:"dx,omitempty,flow"`
	PE                        []string         `yaml:"pe,omitempty,flow"`
	OU                        []string         `yaml:"ou,omitempty,flow"`
	Filters                   []ExchangeFilter `yaml:"filters,omitempty"`
	AggregationType           string           `yaml:"aggregation_type,omitempty"`
	InputIDScheme             string           `yaml:"input_id_scheme,omitempty"`
	OutputIDScheme            string           `yaml:"output_id_scheme,omitempty"`
	OutputDataElementIDScheme string           `yaml:"output_data_element_id_scheme,omitempty"`
	OutputOrgUnitIDScheme     string           `yaml:"output_org_unit_id_scheme,omitempty"`
	OutputDataItemIDScheme    string           `yaml:"output_data_item_id_scheme,omitempty"`
	ApprovalLevel             string           `yaml:"approval_level,omitempty"`
	SkipRounding              bool             `yaml:"skip_rounding,omitempty"`
	// DataSet is a DHIS2 request's data set (2.43, informational) or, for CHT, the id of
	// the app's dhis_data_sets entry to export.
	DataSet string `yaml:"data_set,omitempty"`
	// OrgUnit restricts a CHT export to the places mapped to this org unit.
	OrgUnit   string          `yaml:"org_unit,omitempty"`
	IDSchemes ExchangeSchemes `yaml:"id_schemes,omitempty"`
}

// ExchangeFilter is an analytics filter dimension.
type ExchangeFilter struct {
	Dimension string   `yaml:"dimension"`
	Items     []string `yaml:"items,omitempty,flow"`
}

// ExchangeSchemes say how pulled ids are written.
type ExchangeSchemes struct {
	IDScheme             string `yaml:"id_scheme,omitempty"`
	DataElement          string `yaml:"data_element,omitempty"`
	OrgUnit              string `yaml:"org_unit,omitempty"`
	CategoryOptionCombo  string `yaml:"category_option_combo,omitempty"`
	AttributeOptionCombo string `yaml:"attribute_option_combo,omitempty"`
}

// Parsed is the schemes as the pipeline reads them (an unknown name is empty: Validate
// reports it).
func (s ExchangeSchemes) Parsed() transform.IDSchemes {
	p := func(v string) transform.IDScheme { sc, _ := transform.ParseIDScheme(v); return sc }
	return transform.IDSchemes{IDScheme: p(s.IDScheme), DataElement: p(s.DataElement), OrgUnit: p(s.OrgUnit),
		CategoryOptionCombo: p(s.CategoryOptionCombo), AttributeOptionCombo: p(s.AttributeOptionCombo)}
}

// ExchangeStale says what happens to values an exchange delivered before and no longer
// produces.
type ExchangeStale struct {
	// Mode is delete (default), scope, auto, zero or off.
	Mode string `yaml:"mode,omitempty"`
	// AllowEmpty removes the values of a period even when the run produced nothing at all
	// for it; by default such a period is held, since an empty answer is more often a
	// source problem than every value falling to zero.
	AllowEmpty bool `yaml:"allow_empty,omitempty"`
	// Retention is how long after a period ends Tally keeps what it delivered for it
	// (default 400 days).
	Retention Duration `yaml:"retention,omitempty"`
}

// ExchangeCompleteness registers data sets as complete.
type ExchangeCompleteness struct {
	// DataSets are the target's data sets, written in IDScheme (UID, CODE or NAME).
	DataSets []string `yaml:"data_sets,flow"`
	IDScheme string   `yaml:"id_scheme,omitempty"`
	// Share is the fraction of the data set's data elements that must have a value for an
	// org unit and period (default 1: all of them).
	Share float64 `yaml:"share,omitempty"`
}

var exchangeNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// applyDefaults fills the zero fields of an exchange.
func (e *Exchange) applyDefaults() {
	e.Source.applyDefaults()
	if e.Timezone == "" {
		e.Timezone = "UTC"
	}
	if e.Unmapped == "" {
		e.Unmapped = "drop"
	}
	if e.MappedDuplicates == "" {
		e.MappedDuplicates = "reject"
	}
	if e.BatchSize == 0 {
		e.BatchSize = transform.DefaultBatchSize
	}
	if e.Duplicates == "" {
		e.Duplicates = "reject"
	}
	if e.Stale.Mode == "" {
		e.Stale.Mode = StaleDelete
	}
	if e.Stale.Retention == 0 {
		e.Stale.Retention = Duration(DefaultStaleRetention)
	}
	if e.Await == nil {
		d := Duration(DefaultExchangeAwait)
		e.Await = &d
	}
	if e.Timeout == 0 {
		e.Timeout = Duration(DefaultExchangeTimeout)
	}
	if e.MaxValues == 0 {
		e.MaxValues = DefaultExchangeMaxVals
	}
	e.applyPartDefaults()
}

// applyDefaults fills the zero fields of an exchange's source.
func (s *ExchangeSource) applyDefaults() {
	if s.Type == "" {
		s.Type = ExchangeSourceDHIS2
	}
	s.Type = strings.ToLower(s.Type)
	if s.Timeout == 0 {
		s.Timeout = Duration(defaultSourceTimeout)
	}
	if r := &s.Retry; r.MaxAttempts == 0 {
		r.MaxAttempts = 4
	}
	if r := &s.Retry; r.InitialDelay == 0 {
		r.InitialDelay = Duration(time.Second)
	}
	if r := &s.Retry; r.MaxDelay == 0 {
		r.MaxDelay = Duration(30 * time.Second)
	}
}

// applyPartDefaults fills the zero fields of the analytics and completeness sections and
// names the unnamed requests.
func (e *Exchange) applyPartDefaults() {
	if a := e.Analytics; a != nil {
		if a.MaxWait == 0 {
			a.MaxWait = Duration(DefaultAnalyticsMaxWait)
		}
		if a.PollInterval == 0 {
			a.PollInterval = Duration(DefaultAnalyticsPoll)
		}
	}
	if c := e.Completeness; c != nil {
		if c.Share == 0 {
			c.Share = 1
		}
		if c.IDScheme == "" {
			c.IDScheme = "UID"
		}
	}
	for i := range e.Requests {
		if e.Requests[i].Name == "" {
			e.Requests[i].Name = fmt.Sprintf("request %d", i+1)
		}
	}
}

// ExchangeRefs are what checking the exchanges: section needs to know of other sections,
// which other packages own: whether a mapping set exists, and whether a schedule parses.
type ExchangeRefs struct {
	HasMapping    func(name string) bool
	CheckSchedule func(expr string) error
}

// DecodeExchanges decodes and checks the exchanges: section against the rest of the
// configuration: the targets, the mapping sets and the notification channels (notify) it
// names. Defaults are applied.
func (c *Config) DecodeExchanges(notify *Notify, refs ExchangeRefs) ([]*Exchange, Problems) {
	var probs Problems
	var out []*Exchange
	seen := map[string]bool{}
	channels := notify.channelNames()
	for i := range c.Exchanges {
		path := fmt.Sprintf("exchanges[%d]", i)
		var e Exchange
		dp := c.DecodeSection(&c.Exchanges[i], path, &e)
		probs = append(probs, dp...)
		if len(dp) > 0 {
			continue
		}
		e.applyDefaults()
		probs = append(probs, e.check(c, path, refs, channels)...)
		if exchangeNameRE.MatchString(e.Name) {
			if seen[e.Name] {
				probs = append(probs, c.Problem(path+".name", "%q is defined twice", e.Name))
			}
			seen[e.Name] = true
		}
		out = append(out, &e)
	}
	return out, probs
}

// exchangeCheck collects the problems of one exchange, at paths under its own.
type exchangeCheck struct {
	cfg  *Config
	path string
	ps   Problems
}

func (c *exchangeCheck) add(p, format string, args ...any) {
	c.ps = append(c.ps, c.cfg.Problem(c.path+p, format, args...))
}

// check reports every problem of the exchange written at path, section by section.
func (e *Exchange) check(cfg *Config, path string, refs ExchangeRefs, channels map[string]bool) Problems {
	c := &exchangeCheck{cfg: cfg, path: path}
	if !exchangeNameRE.MatchString(e.Name) {
		c.add(".name", "%q: a name is 1-64 letters, digits, '-' or '_'", e.Name)
	}
	e.checkSource(c)
	e.checkWhen(c, refs)
	e.checkAnalytics(c)
	window := e.checkWindow(c)
	e.checkRequests(c, window)
	c.ps = append(c.ps, checkExchangeSchemes(cfg, path+".id_schemes", e.IDSchemes)...)
	e.checkMapping(c, refs)
	e.checkTargets(c)
	e.checkStale(c)
	e.checkCompleteness(c)
	for j, n := range e.Notify {
		if !channels[n] {
			c.add(fmt.Sprintf(".notify[%d]", j), "no notification channel is called %q", n)
		}
	}
	e.checkBounds(c)
	return c.ps
}

// checkSource checks the source: its type, URL, credentials, API version and retries.
func (e *Exchange) checkSource(c *exchangeCheck) {
	src := &e.Source
	switch src.Type {
	case ExchangeSourceDHIS2, ExchangeSourceCHT:
	default:
		c.add(".source.type", "%q: want dhis2 or cht", src.Type)
	}
	if u, err := url.Parse(src.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add(".source.url", "%q is not an http(s) URL", src.URL)
	} else if u.User != nil {
		c.add(".source.url", "put credentials in username/password or token, not in the URL")
	} else if strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api") {
		c.add(".source.url", "%q: give the instance's base URL without /api", src.URL)
	}
	e.checkCredentials(c)
	if src.APIVersion != "" && (len(src.APIVersion) != 2 || strings.Trim(src.APIVersion, "0123456789") != "") {
		c.add(".source.api_version", "%q: want two digits, e.g. \"40\"", src.APIVersion)
	}
	if src.Timeout < 0 {
		c.add(".source.timeout", "may not be negative")
	}
	if r := src.Retry; r.MaxAttempts < 1 || r.MaxAttempts > 20 {
		c.add(".source.retry.max_attempts", "%d: want 1 to 20", r.MaxAttempts)
	} else if r.InitialDelay <= 0 || r.MaxDelay < r.InitialDelay || r.MaxDelay.D() > 10*time.Minute {
		c.add(".source.retry", "want 0 < initial_delay <= max_delay <= 10m")
	}
}

// checkCredentials checks that the source has one kind of credentials, whole, and one its
// type takes.
func (e *Exchange) checkCredentials(c *exchangeCheck) {
	src := &e.Source
	basic, token := src.Username != "" || src.Password != "", src.Token != ""
	switch {
	case src.Type == ExchangeSourceCHT && token:
		c.add(".source.token", "CHT's export API takes Basic credentials: set username and password")
	case basic && token:
		c.add(".source", "set either username/password or token, not both")
	case !basic && !token:
		c.add(".source", "no credentials: set username and password, or a personal access token")
	case basic && (src.Username == "" || src.Password == ""):
		c.add(".source", "Basic auth needs both username and password")
	}
}

// checkWhen checks the schedule, the time zone and the financial year type.
func (e *Exchange) checkWhen(c *exchangeCheck, refs ExchangeRefs) {
	if e.Schedule != "" && refs.CheckSchedule != nil {
		if err := refs.CheckSchedule(e.Schedule); err != nil {
			c.add(".schedule", "%v", err)
		}
	}
	if _, err := time.LoadLocation(e.Timezone); err != nil {
		c.add(".timezone", "%q: want an IANA time zone such as Africa/Nairobi or UTC", e.Timezone)
	}
	if e.FinancialYear != "" {
		if t, err := period.TypeByName(e.FinancialYear); err != nil || !strings.HasPrefix(t.String(), "Financial") {
			c.add(".financial_year", "%q: want a financial year type such as FinancialApril, FinancialJuly or FinancialOct", e.FinancialYear)
		}
	}
}

// checkAnalytics checks the analytics table update.
func (e *Exchange) checkAnalytics(c *exchangeCheck) {
	a := e.Analytics
	if a == nil {
		return
	}
	if e.Source.Type == ExchangeSourceCHT && a.Run {
		c.add(".analytics", "only a DHIS2 source has analytics tables")
	}
	if a.LastYears < 0 {
		c.add(".analytics.last_years", "may not be negative")
	}
	if a.MaxWait < 0 || a.PollInterval < 0 {
		c.add(".analytics", "max_wait and poll_interval may not be negative")
	}
}

// checkWindow checks the window and returns its periods now (none without one).
func (e *Exchange) checkWindow(c *exchangeCheck) []period.Period {
	w := e.Window
	if w == nil {
		return nil
	}
	t, err := period.TypeByName(w.Type)
	switch {
	case err != nil:
		c.add(".window.type", "%q: want a DHIS2 period type such as Monthly, Quarterly or Weekly", w.Type)
	case w.Last < 0 || w.Last > 1000:
		c.add(".window.last", "%d: want 0 to 1000", w.Last)
	case w.Last == 0 && !w.Current:
		c.add(".window", "covers no period: set last, current or both")
	case e.Source.Type == ExchangeSourceCHT && t != period.Monthly:
		c.add(".window.type", "CHT exports months only: want Monthly")
	}
	window, _ := e.WindowPeriods(time.Now())
	return window
}

// checkRequests checks every request, and that their names differ.
func (e *Exchange) checkRequests(c *exchangeCheck, window []period.Period) {
	if len(e.Requests) == 0 {
		c.add(".requests", "an exchange needs at least one request")
	}
	names := map[string]bool{}
	for i := range e.Requests {
		c.ps = append(c.ps, e.checkRequest(c.cfg, fmt.Sprintf("%s.requests[%d]", c.path, i), &e.Requests[i], len(window) > 0)...)
		n := e.Requests[i].Name
		if names[n] {
			c.add(fmt.Sprintf(".requests[%d].name", i), "%q is used by another request of this exchange", n)
		}
		names[n] = true
	}
}

// checkMapping checks the mapping set and the mapping policies.
func (e *Exchange) checkMapping(c *exchangeCheck, refs ExchangeRefs) {
	if e.Mapping != "" && (refs.HasMapping == nil || !refs.HasMapping(e.Mapping)) {
		c.add(".mapping", "no mapping set is called %q", e.Mapping)
	}
	switch e.Unmapped {
	case "drop", "pass", "reject":
	default:
		c.add(".unmapped", "%q: want drop, pass or reject", e.Unmapped)
	}
	switch e.MappedDuplicates {
	case "reject", "sum", "last":
	default:
		c.add(".mapped_duplicates", "%q: want reject, sum or last", e.MappedDuplicates)
	}
}

// checkTargets checks that the targets exist and that there is one, and the batch size.
func (e *Exchange) checkTargets(c *exchangeCheck) {
	for j, t := range e.Targets {
		if _, ok := c.cfg.Target(t); !ok {
			c.add(fmt.Sprintf(".targets[%d]", j), "no target is called %q", t)
		}
	}
	if len(c.cfg.Targets) == 0 {
		c.add(".targets", "an exchange needs a target to deliver to; none is configured")
	}
	if e.BatchSize < 1 || e.BatchSize > 10_000 {
		c.add(".batch_size", "%d: want 1 to 10000", e.BatchSize)
	}
}

// checkStale checks what happens to duplicate pulled values and to stale values.
func (e *Exchange) checkStale(c *exchangeCheck) {
	switch e.Duplicates {
	case "reject", "allow":
	default:
		c.add(".duplicates", "%q: want reject or allow", e.Duplicates)
	}
	switch e.Stale.Mode {
	case StaleDelete, StaleScope, StaleAuto, StaleZero, StaleOff:
	default:
		c.add(".stale.mode", "%q: want delete, scope, auto, zero or off", e.Stale.Mode)
	}
	if e.Stale.Retention < 0 {
		c.add(".stale.retention", "may not be negative")
	}
}

// checkCompleteness checks the data sets to register complete.
func (e *Exchange) checkCompleteness(c *exchangeCheck) {
	cc := e.Completeness
	if cc == nil {
		return
	}
	if len(cc.DataSets) == 0 {
		c.add(".completeness.data_sets", "name at least one data set")
	}
	switch strings.ToUpper(cc.IDScheme) {
	case "UID", "CODE", "NAME":
	default:
		c.add(".completeness.id_scheme", "%q: want UID, CODE or NAME", cc.IDScheme)
	}
	if cc.Share <= 0 || cc.Share > 1 || math.IsNaN(cc.Share) {
		c.add(".completeness.share", "%v: want a fraction above 0 and at most 1", cc.Share)
	}
}

// checkBounds checks the run's bounds: await, timeout and max_values.
func (e *Exchange) checkBounds(c *exchangeCheck) {
	if *e.Await < 0 {
		c.add(".await", "may not be negative")
	}
	if e.Timeout < 0 {
		c.add(".timeout", "may not be negative")
	}
	if e.MaxValues < 1 {
		c.add(".max_values", "%d: want at least 1", e.MaxValues)
	}
}

// checkRequest checks the request written at path: its periods (or the exchange's window),
// and the options of its source's kind.
func (e *Exchange) checkRequest(cfg *Config, path string, r *ExchangeRequest, window bool) Problems {
	c := &exchangeCheck{cfg: cfg, path: path}
	if len(r.Name) > 50 && e.Source.Type == ExchangeSourceDHIS2 {
		c.add(".name", "at most 50 characters, as in DHIS2")
	}
	cht := e.Source.Type == ExchangeSourceCHT
	if len(r.PE) == 0 && !window {
		c.add(".pe", "no periods: list pe or set the exchange's window")
	}
	for j, pe := range r.PE {
		c.ps = append(c.ps, e.checkPeriod(cfg, fmt.Sprintf("%s.pe[%d]", path, j), pe, cht)...)
	}
	if cht {
		checkCHTRequest(c, r)
	} else {
		e.checkAnalyticsRequest(c, r)
	}
	c.ps = append(c.ps, checkExchangeSchemes(cfg, path+".id_schemes", r.IDSchemes)...)
	return c.ps
}

// checkCHTRequest checks a request of CHT's export API: one data set, and none of the
// analytics options.
func checkCHTRequest(c *exchangeCheck, r *ExchangeRequest) {
	if r.DataSet == "" {
		c.add(".data_set", "a CHT request exports one data set: name its dhis_data_sets id")
	}
	if len(r.DX)+len(r.OU)+len(r.Filters) > 0 {
		c.add("", "dx, ou and filters are analytics dimensions; a CHT request has data_set, pe and org_unit")
	}
	for _, f := range []struct{ key, v string }{{"aggregation_type", r.AggregationType}, {"input_id_scheme", r.InputIDScheme},
		{"output_id_scheme", r.OutputIDScheme}, {"output_data_element_id_scheme", r.OutputDataElementIDScheme},
		{"output_org_unit_id_scheme", r.OutputOrgUnitIDScheme}, {"output_data_item_id_scheme", r.OutputDataItemIDScheme},
		{"approval_level", r.ApprovalLevel}} {
		if f.v != "" {
			c.add("."+f.key, "not a CHT export option")
		}
	}
}

// checkAnalyticsRequest checks a request of DHIS2's analytics: its dimensions, its id
// schemes, and that the target is told how to read ids written by an attribute.
func (e *Exchange) checkAnalyticsRequest(c *exchangeCheck, r *ExchangeRequest) {
	if len(r.DX) == 0 {
		c.add(".dx", "no data items (DHIS2 would answer E7117)")
	}
	if len(r.OU) == 0 {
		c.add(".ou", "no org units (DHIS2 would answer E7119)")
	}
	if r.OrgUnit != "" {
		c.add(".org_unit", "org_unit is for CHT requests; use ou")
	}
	for j, f := range r.Filters {
		if d := strings.TrimSpace(f.Dimension); d == "" || strings.ContainsAny(d, ":;") {
			c.add(fmt.Sprintf(".filters[%d].dimension", j), "%q: want a dimension id", f.Dimension)
		}
	}
	for _, f := range []struct{ key, v string }{{"input_id_scheme", r.InputIDScheme}, {"output_id_scheme", r.OutputIDScheme},
		{"output_data_element_id_scheme", r.OutputDataElementIDScheme}, {"output_org_unit_id_scheme", r.OutputOrgUnitIDScheme},
		{"output_data_item_id_scheme", r.OutputDataItemIDScheme}} {
		if _, err := transform.ParseIDScheme(f.v); err != nil {
			c.add("."+f.key, "%q: want UID, CODE, NAME or ATTRIBUTE:<uid>", f.v)
		}
	}
	if explicit := e.IDSchemes.Parsed().Overlay(r.IDSchemes.Parsed()); explicit.IsZero() {
		if _, attr := e.RequestSchemes(r).DataElement.Attribute(); attr {
			c.add(".id_schemes", "the answer names data elements by an attribute's values (the tracker-to-aggregate "+
				"pattern): say how the target reads them, e.g. id_schemes: {data_element: CODE, org_unit: UID, "+
				"category_option_combo: UID} as in the exchange's target request")
		}
	}
	for _, lists := range [][]string{r.DX, r.OU} {
		for _, id := range lists {
			if strings.TrimSpace(id) == "" || strings.ContainsAny(id, ";") {
				c.add("", "%q is not an analytics item", id)
			}
		}
	}
}

func (e *Exchange) checkPeriod(cfg *Config, path, pe string, cht bool) Problems {
	if p, err := period.Parse(pe); err == nil {
		if cht && p.Type() != period.Monthly {
			return Problems{cfg.Problem(path, "%q: CHT exports months only", pe)}
		}
		return nil
	}
	ps, err := period.Relative(pe, time.Now(), period.RelativeOptions{})
	if err != nil {
		return Problems{cfg.Problem(path, "%q is neither a period id (202401, 2024Q1) nor a relative period (LAST_6_MONTHS)", pe)}
	}
	if cht && len(ps) > 0 && ps[0].Type() != period.Monthly {
		return Problems{cfg.Problem(path, "%q: CHT exports months only; use a monthly relative period", pe)}
	}
	return nil
}

func checkExchangeSchemes(cfg *Config, path string, s ExchangeSchemes) Problems {
	var ps Problems
	for _, f := range []struct{ key, v string }{{"id_scheme", s.IDScheme}, {"data_element", s.DataElement}, {"org_unit", s.OrgUnit},
		{"category_option_combo", s.CategoryOptionCombo}, {"attribute_option_combo", s.AttributeOptionCombo}} {
		if _, err := transform.ParseIDScheme(f.v); err != nil {
			ps = append(ps, cfg.Problem(path+"."+f.key, "%q: want UID, CODE, NAME or ATTRIBUTE:<uid>", f.v))
		}
	}
	return ps
}

// RequestSchemes returns the schemes of a request's pulled values. Like the target
// request of DHIS2's exchange, configured id_schemes (the request's over the exchange's)
// say how the target reads the ids; without any, they follow from the output id schemes.
func (ec *Exchange) RequestSchemes(r *ExchangeRequest) transform.IDSchemes {
	if explicit := ec.IDSchemes.Parsed().Overlay(r.IDSchemes.Parsed()); !explicit.IsZero() {
		return explicit
	}
	derived := transform.IDSchemes{}
	if ec.Source.Type == ExchangeSourceDHIS2 {
		p := func(v string) transform.IDScheme { sc, _ := transform.ParseIDScheme(v); return sc }
		out := p(r.OutputIDScheme)
		derived.DataElement = p(r.OutputDataElementIDScheme).Or(p(r.OutputDataItemIDScheme)).Or(out)
		derived.OrgUnit = p(r.OutputOrgUnitIDScheme).Or(out)
		// Program indicators carry their aggregate export combos verbatim (UIDs); data
		// element operands are written in the output scheme. An attribute scheme, the
		// tracker-to-aggregate pattern, leaves the combos as UIDs.
		if _, attr := out.Attribute(); !attr {
			derived.CategoryOptionCombo = out
		}
		derived.AttributeOptionCombo = derived.CategoryOptionCombo
	}
	return derived
}

// Location returns the exchange's time zone.
func (e *Exchange) Location() *time.Location {
	if loc, err := time.LoadLocation(e.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

func (e *Exchange) relativeOptions() period.RelativeOptions {
	var o period.RelativeOptions
	if t, err := period.TypeByName(e.FinancialYear); err == nil && e.FinancialYear != "" {
		o.FinancialYear = t
	}
	return o
}

// WindowPeriods returns the periods of the exchange's window at now, oldest first.
func (e *Exchange) WindowPeriods(now time.Time) ([]period.Period, error) {
	w := e.Window
	if w == nil {
		return nil, nil
	}
	t, err := period.TypeByName(w.Type)
	if err != nil {
		return nil, err
	}
	cur := t.PeriodOf(now.In(e.Location()))
	var out []period.Period
	for i := w.Last; i >= 1; i-- {
		out = append(out, cur.Shift(-i))
	}
	if w.Current {
		out = append(out, cur)
	}
	return out, nil
}

// RequestPeriods resolves a request's periods at now: its fixed ids, its relative periods
// read in the exchange's time zone, and the exchange's window, without repeats, oldest
// first.
func (e *Exchange) RequestPeriods(r *ExchangeRequest, now time.Time) ([]period.Period, error) {
	local := now.In(e.Location())
	var out []period.Period
	seen := map[period.Period]bool{}
	add := func(ps ...period.Period) {
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	var errs []error
	for _, pe := range r.PE {
		if p, err := period.Parse(pe); err == nil {
			add(p)
			continue
		}
		ps, err := period.Relative(pe, local, e.relativeOptions())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		add(ps...)
	}
	w, err := e.WindowPeriods(now)
	if err != nil {
		errs = append(errs, err)
	}
	add(w...)
	slices.SortStableFunc(out, func(a, b period.Period) int {
		if c := a.Start().Compare(b.Start()); c != 0 {
			return c
		}
		return a.End().Compare(b.End())
	})
	return out, errors.Join(errs...)
}
