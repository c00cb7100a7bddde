package config

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultStoreDir        = "./data/nats"
	DefaultMaxBody         = 256 << 20
	DefaultDuplicateWindow = 2 * time.Hour
	DefaultTxRetention     = 30 * 24 * time.Hour
)

// applyDefaults fills the zero fields of every section the file's own schema holds.
func (c *Config) applyDefaults() {
	c.applyServiceDefaults()
	for i := range c.Sources {
		c.Sources[i].applyDefaults()
	}
	for i := range c.Targets {
		c.Targets[i].applyDefaults()
	}
}

// applyServiceDefaults fills the zero fields of the http:, nats:, delivery: and log:
// sections.
func (c *Config) applyServiceDefaults() {
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = DefaultAddr
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = DefaultMaxBody
	}
	if c.HTTP.StoreTimeout == 0 {
		c.HTTP.StoreTimeout = Duration(30 * time.Second)
	}
	if c.HTTP.ShutdownTimeout == 0 {
		c.HTTP.ShutdownTimeout = Duration(30 * time.Second)
	}
	if c.HTTP.ReadHeaderTimeout == 0 {
		c.HTTP.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if c.HTTP.BodyTimeout == 0 {
		c.HTTP.BodyTimeout = Duration(30 * time.Second)
	}
	if c.HTTP.IdleTimeout == 0 {
		c.HTTP.IdleTimeout = Duration(2 * time.Minute)
	}
	if c.HTTP.MaxConcurrentIngests == 0 {
		c.HTTP.MaxConcurrentIngests = DefaultMaxConcurrentIngests
	}
	if c.NATS.URL == "" && c.NATS.StoreDir == "" {
		c.NATS.StoreDir = DefaultStoreDir
	}
	if c.NATS.Replicas == 0 {
		c.NATS.Replicas = 1
	}
	if c.NATS.DuplicateWindow == 0 {
		c.NATS.DuplicateWindow = Duration(DefaultDuplicateWindow)
	}
	if c.NATS.TxRetention == 0 {
		c.NATS.TxRetention = Duration(DefaultTxRetention)
	}
	if c.Delivery.AckWait == 0 {
		c.Delivery.AckWait = Duration(2 * time.Minute)
	}
	if c.Delivery.UpgradeWait == 0 {
		c.Delivery.UpgradeWait = Duration(10 * time.Minute)
	}
	if c.Delivery.ProbeInterval == 0 {
		c.Delivery.ProbeInterval = Duration(5 * time.Second)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// applyDefaults fills a source's zero fields.
func (s *Source) applyDefaults() {
	if s.Format == "" {
		s.Format = "auto"
	}
	if s.BatchSize == 0 {
		s.BatchSize = 1000
	}
	if s.Unmapped == "" {
		s.Unmapped = "drop"
	}
	if s.Duplicates == "" {
		s.Duplicates = "reject"
	}
	if s.OrgUnits.Keep == "" {
		s.OrgUnits.Keep = "all"
	}
	if s.RateLimit.PerSecond > 0 && s.RateLimit.Burst == 0 {
		s.RateLimit.Burst = max(1, int(math.Ceil(s.RateLimit.PerSecond)))
	}
}

// applyDefaults fills a target's zero fields.
func (t *Target) applyDefaults() {
	if t.ImportStrategy == "" {
		t.ImportStrategy = "CREATE_AND_UPDATE"
	}
	if t.Timeout == 0 {
		t.Timeout = Duration(60 * time.Second)
	}
	if t.Concurrency == 0 {
		t.Concurrency = 2
	}
	if t.MaxValuesPerRequest == 0 {
		t.MaxValuesPerRequest = 1000
	}
	if t.MetadataRefresh == 0 {
		t.MetadataRefresh = Duration(time.Hour)
	}
	r := &t.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = 12
	}
	if r.MaxAge == 0 {
		r.MaxAge = Duration(24 * time.Hour)
	}
	if r.InitialDelay == 0 {
		r.InitialDelay = Duration(time.Second)
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = Duration(5 * time.Minute)
	}
	if t.RateLimit.PerSecond > 0 && t.RateLimit.Burst == 0 {
		t.RateLimit.Burst = max(1, int(math.Ceil(t.RateLimit.PerSecond)))
	}
}

// A name becomes part of NATS subjects and consumer names, so it is restricted to what both
// accept. A leading '_' is reserved for Tally's own subjects (the mapper's dead letters go to
// tally.dlq._ingest).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9-][A-Za-z0-9_-]{0,63}$`)

// knownFormat reports whether a source may post format f.
func knownFormat(f string) bool {
	return slices.Contains([]string{"auto", "json", "xml", "csv", "adx", "analytics", "cht"}, f)
}

// knownStrategy reports whether s is an import strategy DHIS2 takes.
func knownStrategy(s string) bool {
	return slices.Contains([]string{"CREATE", "UPDATE", "CREATE_AND_UPDATE", "DELETE"}, s)
}

// checker collects problems.
type checker struct {
	c  *Config
	ps Problems
}

func (k *checker) add(path, format string, args ...any) {
	k.ps = append(k.ps, k.c.Problem(path, format, args...))
}

// validate reports every problem of the file's own sections: the service's settings, the
// targets and the sources.
func (c *Config) validate() Problems {
	k := &checker{c: c}
	c.validateService(k)
	targets := map[string]bool{}
	for i := range c.Targets {
		c.validateTarget(k, fmt.Sprintf("targets[%d]", i), &c.Targets[i], targets)
	}
	sources := map[string]bool{}
	for i := range c.Sources {
		c.validateSource(k, fmt.Sprintf("sources[%d]", i), &c.Sources[i], sources, targets)
	}
	if len(c.Sources) > 0 && len(c.Targets) == 0 {
		k.add("targets", "sources are configured but no target to deliver to")
	}
	c.validateAdmin(k)
	c.validateShared(k)
	return k.ps
}

// DefaultMaxConcurrentIngests is http.max_concurrent_ingests' default: enough to keep two
// cores busy parsing while others wait on JetStream, few enough that their spools (up to
// 32 MiB each) stay far below a container's memory.
const DefaultMaxConcurrentIngests = 8

// validateService checks the nats:, http:, delivery: and log: sections.
func (c *Config) validateService(k *checker) {
	if c.HTTP.MaxConcurrentIngests < 0 {
		k.add("http.max_concurrent_ingests", "%d: want 1 or more", c.HTTP.MaxConcurrentIngests)
	}
	if (c.HTTP.TLS.CertFile == "") != (c.HTTP.TLS.KeyFile == "") {
		k.add("http.tls", "set both cert_file and key_file, or neither")
	}
	if c.NATS.URL != "" {
		if u, err := url.Parse(c.NATS.URL); err != nil || u.Host == "" {
			k.add("nats.url", "%q is not a NATS URL such as nats://nats-1:4222", c.NATS.URL)
		}
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		k.add("nats.replicas", "%d: JetStream supports 1 to 5 replicas", c.NATS.Replicas)
	}
	if c.NATS.URL == "" && c.NATS.Replicas > 1 {
		k.add("nats.replicas", "an embedded server is a single node: replicas > 1 need nats.url pointing at a cluster")
	}
	if c.NATS.TxRetention < c.NATS.DuplicateWindow {
		k.add("nats.tx_retention", "%s is shorter than duplicate_window %s: a retried payload must still find its transaction",
			c.NATS.TxRetention.D(), c.NATS.DuplicateWindow.D())
	}
	c.validateTimes(k)
	if c.HTTP.MaxBodyBytes < 1024 {
		k.add("http.max_body_bytes", "%d bytes is too small to hold a data value set", c.HTTP.MaxBodyBytes)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		k.add("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		k.add("log.format", "%q: want text or json", c.Log.Format)
	}
}

// validateTimes checks the bounds of the service's timeouts and intervals.
func (c *Config) validateTimes(k *checker) {
	if d := c.HTTP.StoreTimeout.D(); d < 100*time.Millisecond || d > 10*time.Minute {
		k.add("http.store_timeout", "%s: want 100ms to 10m", d)
	}
	if d := c.Delivery.AckWait.D(); d < 100*time.Millisecond || d > time.Hour {
		k.add("delivery.ack_wait", "%s: want 100ms to 1h", d)
	}
	if d := c.Delivery.UpgradeWait.D(); d <= 0 || d > 7*24*time.Hour {
		k.add("delivery.upgrade_wait", "%s: want a positive duration up to 168h", d)
	}
	if d := c.Delivery.ProbeInterval.D(); d < 100*time.Millisecond || d > 10*time.Minute {
		k.add("delivery.probe_interval", "%s: want 100ms to 10m", d)
	}
}

// validateTarget checks the target written at p; seen are the names met so far.
func (c *Config) validateTarget(k *checker, p string, t *Target, seen map[string]bool) {
	if !nameRE.MatchString(t.Name) {
		k.add(p+".name", "%q: a name is 1-64 letters, digits, '-' or '_', not starting with '_'", t.Name)
	} else if seen[t.Name] {
		k.add(p+".name", "%q is defined twice", t.Name)
	}
	seen[t.Name] = true
	if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		k.add(p+".url", "%q is not an http(s) URL of a DHIS2 instance", t.URL)
	} else if strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api") {
		k.add(p+".url", "%q: give the instance's base URL without /api", t.URL)
	} else if u.User != nil {
		// Logged, shown in errors and sent to OpenHIM as it stands, a URL must not carry a
		// secret; the client refuses one too (adapters/dhis2), and validate says so first.
		k.add(p+".url", "the URL carries a user name or password: remove them and set username and password, or token")
	}
	hasBasic, hasToken := t.Username != "" || t.Password != "", t.Token != ""
	switch {
	case hasBasic && hasToken:
		k.add(p, "set either username/password or token, not both")
	case !hasBasic && !hasToken:
		k.add(p, "no credentials: set username and password, or a personal access token")
	case hasBasic && (t.Username == "" || t.Password == ""):
		k.add(p, "Basic auth needs both username and password")
	}
	if !knownStrategy(t.ImportStrategy) {
		k.add(p+".import_strategy", "%q: want CREATE, UPDATE, CREATE_AND_UPDATE or DELETE", t.ImportStrategy)
	}
	k.ps = append(k.ps, c.checkSchemes(p+".id_schemes", t.IDSchemes)...)
	c.validateTargetBounds(k, p, t)
}

// validateTargetBounds checks a target's concurrency, request size, retries and rate limit.
func (c *Config) validateTargetBounds(k *checker, p string, t *Target) {
	if t.Concurrency < 1 || t.Concurrency > MaxTargetConcurrency {
		k.add(p+".concurrency", "%d: want 1 to %d", t.Concurrency, MaxTargetConcurrency)
	}
	if t.MaxValuesPerRequest < 1 || t.MaxValuesPerRequest > 100_000 {
		k.add(p+".max_values_per_request", "%d: want 1 to 100000", t.MaxValuesPerRequest)
	}
	if t.Retry.MaxAttempts < 1 || t.Retry.MaxAttempts > 1000 {
		k.add(p+".retry.max_attempts", "%d: want 1 to 1000", t.Retry.MaxAttempts)
	}
	if t.RateLimit.PerSecond < 0 || t.RateLimit.Burst < 0 {
		k.add(p+".rate_limit", "per_second and burst may not be negative")
	}
	if t.Retry.InitialDelay > t.Retry.MaxDelay {
		k.add(p+".retry.initial_delay", "%s is longer than max_delay %s", t.Retry.InitialDelay.D(), t.Retry.MaxDelay.D())
	}
}

// validateSource checks the source written at p; seen are the source names met so far,
// targets the target names.
func (c *Config) validateSource(k *checker, p string, s *Source, seen, targets map[string]bool) {
	if !nameRE.MatchString(s.Name) {
		k.add(p+".name", "%q: a name is 1-64 letters, digits, '-' or '_', not starting with '_'", s.Name)
	} else if seen[s.Name] {
		k.add(p+".name", "%q is defined twice", s.Name)
	}
	seen[s.Name] = true
	if !knownFormat(s.Format) {
		k.add(p+".format", "%q: want auto, json, xml, csv, adx, analytics or cht", s.Format)
	}
	for j, tn := range s.Targets {
		if !targets[tn] {
			k.add(fmt.Sprintf("%s.targets[%d]", p, j), "no target is called %q", tn)
		}
	}
	validateAuth(k, p, &s.Auth)
	validatePolicies(k, p, s)
	k.ps = append(k.ps, c.checkSourceOrgUnits(p+".org_units", s)...)
	if s.WaitForDelivery < 0 || s.WaitForDelivery.D() > 10*time.Minute {
		k.add(p+".wait_for_delivery", "%s: want 0 (answer once stored) up to 10m", s.WaitForDelivery.D())
	}
	k.ps = append(k.ps, c.checkSourceImport(p, s)...)
	if s.BatchSize < 1 || s.BatchSize > 10_000 {
		k.add(p+".batch_size", "%d: want 1 to 10000", s.BatchSize)
	}
	k.ps = append(k.ps, c.checkSchemes(p+".id_schemes", s.IDSchemes)...)
	if s.RateLimit.PerSecond < 0 || s.RateLimit.Burst < 0 {
		k.add(p+".rate_limit", "per_second and burst may not be negative")
	}
}

// validateAuth checks a source's credentials.
func validateAuth(k *checker, p string, a *Auth) {
	if len(a.Users) == 0 && len(a.Tokens) == 0 && !a.Public {
		k.add(p+".auth", "no credentials: add users or tokens, or set public: true to accept anyone")
	}
	for j, u := range a.Users {
		switch {
		case u.Username == "" || u.Password == "":
			k.add(fmt.Sprintf("%s.auth.users[%d]", p, j), "a user needs username and password")
		case len(u.Password) < minPasswordLen:
			k.add(fmt.Sprintf("%s.auth.users[%d].password", p, j), "a password must be at least %d characters (DHIS2's own minimum, so a client set up for DHIS2 works unchanged)", minPasswordLen)
		}
	}
	for j, tok := range a.Tokens {
		if len(tok) < 16 {
			k.add(fmt.Sprintf("%s.auth.tokens[%d]", p, j), "a token must be at least 16 characters")
		}
	}
}

// minPasswordLen is the shortest Basic password a source may have: DHIS2's default minimum
// (its system setting keyMinPasswordLength is 8), since a source's Basic user is most often a
// DHIS2 client's. Tokens, which no person types, need 16.
const minPasswordLen = 8

// validateShared refuses one credential serving two principals: two sources with the same
// token or user name (a request could not say which one it is), or a source token that is
// also an admin credential's (a sender would hold the admin's power).
func (c *Config) validateShared(k *checker) {
	owner := map[string]string{} // token -> path of its first holder
	admin := map[string]string{}
	if c.Admin.Token != "" {
		admin[c.Admin.Token] = "admin.token"
	}
	for i, cr := range c.Admin.Credentials {
		if cr.Token != "" {
			admin[cr.Token] = fmt.Sprintf("admin.credentials[%d]", i)
		}
	}
	users := map[string]string{}
	for i := range c.Sources {
		s := &c.Sources[i]
		for j, tok := range s.Auth.Tokens {
			p := fmt.Sprintf("sources[%d].auth.tokens[%d]", i, j)
			switch {
			case tok == "":
			case admin[tok] != "":
				k.add(p, "the same token as %s: a source's token must not open the admin API", admin[tok])
			case owner[tok] != "" && !strings.HasPrefix(owner[tok], fmt.Sprintf("sources[%d].", i)):
				k.add(p, "the same token as %s: every source needs its own, so that a request says who sent it", owner[tok])
			default:
				owner[tok] = p
			}
		}
		for j, u := range s.Auth.Users {
			p := fmt.Sprintf("sources[%d].auth.users[%d].username", i, j)
			if prev := users[u.Username]; u.Username != "" && prev != "" {
				k.add(p, "%q is already a user of %s: every source needs its own users", u.Username, prev)
				continue
			}
			users[u.Username] = fmt.Sprintf("sources[%d] (%s)", i, s.Name)
		}
	}
}

// validatePolicies checks what a source does with unmapped values and duplicates.
func validatePolicies(k *checker, p string, s *Source) {
	switch s.Unmapped {
	case "drop", "pass", "reject":
	default:
		k.add(p+".unmapped", "%q: want drop, pass or reject", s.Unmapped)
	}
	switch s.Duplicates {
	case "reject", "sum", "last":
	case "keep":
		if s.Mapping != "" {
			k.add(p+".duplicates", "keep: mapped values that meet on one key must be settled: want reject, sum or last "+
				"with a mapping set (keep is for a source whose values go to the target as they are)")
		}
	default:
		k.add(p+".duplicates", "%q: want reject, sum, last or keep", s.Duplicates)
	}
}

// checkSourceImport checks the keys that shape how a source's payloads are imported.
func (c *Config) checkSourceImport(path string, s *Source) Problems {
	var ps Problems
	switch s.Validation {
	case "", "per_value", "atomic":
	default:
		ps = append(ps, c.Problem(path+".validation", "%q: want per_value or atomic", s.Validation))
	}
	if s.DHIS2Version != "" && !dhis2VersionRE.MatchString(s.DHIS2Version) {
		ps = append(ps, c.Problem(path+".dhis2_version", "%q: want a DHIS2 version from 2.36 on, such as 2.40", s.DHIS2Version))
	}
	switch s.CompleteDate {
	case "", "dhis2", "per_org_unit", "ignore":
	default:
		ps = append(ps, c.Problem(path+".complete_date", "%q: want dhis2, per_org_unit or ignore", s.CompleteDate))
	}
	return ps
}

// dhis2VersionRE matches the DHIS2 versions an answer can imitate: 2.36 and later.
var dhis2VersionRE = regexp.MustCompile(`^2\.(3[6-9]|[4-9][0-9])(\.[0-9]+)*$`)

// Release returns the DHIS2 release of s's dhis2_version (40 for "2.40"), 0 when unset.
func (s *Source) Release() int {
	m := dhis2VersionRE.FindStringSubmatch(s.DHIS2Version)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// CompleteDateMode is s's complete_date with its default applied.
func (s *Source) CompleteDateMode() string {
	switch {
	case s.CompleteDate != "":
		return s.CompleteDate
	case s.Format == "cht":
		return "ignore"
	}
	return "dhis2"
}

func (c *Config) checkSourceOrgUnits(path string, s *Source) Problems {
	var ps Problems
	ou := s.OrgUnits
	switch ou.Keep {
	case "all", "assigned":
	default:
		ps = append(ps, c.Problem(path+".keep", "%q: want all or assigned", ou.Keep))
	}
	if ou.Level < 0 || ou.Level > 20 {
		ps = append(ps, c.Problem(path+".level", "%d: want an org unit level from 1 (the root) down, or 0 for any level", ou.Level))
	}
	if (ou.Keep == "assigned" || ou.Level > 0) && s.Mapping == "" {
		ps = append(ps, c.Problem(path, "filtering by org unit needs the target's metadata, which only a mapping set reads: "+
			"name one with mapping: (a set without rules and unmapped: pass keeps the ids as they are)"))
	}
	return ps
}

func (c *Config) checkSchemes(path string, s Schemes) Problems {
	var ps Problems
	for key, v := range map[string]string{"id_scheme": s.IDScheme, "data_element": s.DataElement, "org_unit": s.OrgUnit,
		"category_option_combo": s.CategoryOptionCombo, "attribute_option_combo": s.AttributeOptionCombo, "data_set": s.DataSet} {
		if v == "" {
			continue
		}
		up := strings.ToUpper(v)
		if up != "UID" && up != "CODE" && up != "NAME" && !(strings.HasPrefix(up, "ATTRIBUTE:") && len(v) > 10) {
			ps = append(ps, c.Problem(path+"."+key, "%q: want UID, CODE, NAME or ATTRIBUTE:<uid>", v))
		}
	}
	return ps
}

// adminNameRE is what a credential's name may look like: it appears in records and logs.
var adminNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// validateAdmin checks admin.token and admin.credentials: names unique and plain, tokens long
// enough and never shared between two credentials (a token must say who is calling).
func (c *Config) validateAdmin(k *checker) {
	if c.Admin.Token != "" && len(c.Admin.Token) < 16 {
		k.add("admin.token", "an admin token must be at least 16 characters")
	}
	names := map[string]string{}
	tokens := map[string]string{}
	if c.Admin.Token != "" {
		names["admin"], tokens[c.Admin.Token] = "admin.token", "admin.token"
	}
	for i, cr := range c.Admin.Credentials {
		path := fmt.Sprintf("admin.credentials[%d]", i)
		switch {
		case cr.Name == "":
			k.add(path+".name", "a credential needs a name: it is what records and logs say did it")
		case !adminNameRE.MatchString(cr.Name):
			k.add(path+".name", "%q: use letters, digits and _ . @ - (at most 64)", cr.Name)
		case names[cr.Name] != "":
			k.add(path+".name", "%q is already the name of %s", cr.Name, names[cr.Name])
		default:
			names[cr.Name] = path
		}
		switch {
		case len(cr.Token) < 16:
			k.add(path+".token", "an admin token must be at least 16 characters")
		case tokens[cr.Token] != "":
			k.add(path+".token", "the same token as %s: every credential needs its own", tokens[cr.Token])
		default:
			tokens[cr.Token] = path
		}
		if cr.Scope != ScopeRead && cr.Scope != ScopeOperate {
			k.add(path+".scope", "%q: want read or operate", cr.Scope)
		}
	}
}
