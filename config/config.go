package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole file. Every section has defaults, applied by Load.
type Config struct {
	HTTP      HTTP           `yaml:"http"`
	NATS      NATS           `yaml:"nats"`
	Admin     Admin          `yaml:"admin"`
	Sources   []Source       `yaml:"sources"`
	Targets   []Target       `yaml:"targets"`
	Mappings  []yaml.Node    `yaml:"mappings"`
	Exchanges []yaml.Node    `yaml:"exchanges"`
	OpenHIM   yaml.Node      `yaml:"openhim"`
	Notify    yaml.Node      `yaml:"notify"`
	Log       Log            `yaml:"log"`
	Delivery  Delivery       `yaml:"delivery"`
	lines     map[string]int `yaml:"-"`
	file      string         `yaml:"-"`
}

// HTTP is the one listener.
type HTTP struct {
	// Addr is host:port to listen on.
	Addr string `yaml:"addr"`
	// MaxBodyBytes bounds a request body after decompression; larger bodies get 413.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// StoreTimeout bounds how long an ingest waits for JetStream to store its payload
	// durably (a cluster that lost its quorum never confirms); past it the client gets 503
	// with Retry-After, and retrying the same request is safe.
	StoreTimeout Duration `yaml:"store_timeout"`
	// ReadHeaderTimeout bounds how long a client may take to send a request's headers.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// BodyTimeout is how long a request body may go without BodyProgress more bytes
	// arriving: a body must keep arriving, so that slow clients cannot hold connections.
	BodyTimeout Duration `yaml:"body_timeout"`
	// IdleTimeout closes a kept-alive connection unused this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConcurrentIngests bounds the payloads read at once (each may spool up to 32 MiB);
	// one more is answered 503 with Retry-After.
	MaxConcurrentIngests int `yaml:"max_concurrent_ingests"`
	// TLS, when cert_file and key_file are set, serves HTTPS; the files are read again when
	// they change, without a restart.
	TLS ListenerTLS `yaml:"tls"`
}

// ListenerTLS is the certificate and key the listener serves (PEM files).
type ListenerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// BodyProgress is how many bytes a request body must deliver within http.body_timeout.
const BodyProgress = 4 << 10

// NATS says where the streams live. An empty URL runs an embedded JetStream server that
// stores in StoreDir.
type NATS struct {
	URL             string `yaml:"url"`
	StoreDir        string `yaml:"store_dir"`
	Replicas        int    `yaml:"replicas"`
	CredentialsFile string `yaml:"credentials_file"`
	User            string `yaml:"user"`
	Password        string `yaml:"password"`
	Token           string `yaml:"token"`
	TLS             TLS    `yaml:"tls"`
	// DuplicateWindow is how long JetStream remembers message ids, so that a client that
	// retries the same payload within it does not create a second copy.
	DuplicateWindow Duration `yaml:"duplicate_window"`
	// MaxAge bounds how long an undelivered message stays in a stream; 0 keeps it forever.
	MaxAge Duration `yaml:"max_age"`
	// TxRetention is how long the transaction log keeps a record after its last write.
	// Default 720h (30 days); it may not be shorter than duplicate_window.
	TxRetention Duration `yaml:"tx_retention"`
}

// TLS for a client connection.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Admin guards /admin/v1: who may call it, and what each caller may do there.
type Admin struct {
	// Token is an operator credential named "admin", as before scoped credentials existed.
	Token string `yaml:"token"`
	// Credentials are named bearer tokens, each with a scope: read (look, never change)
	// or operate (also replay, discard, run exchanges, probe, refresh metadata).
	Credentials []AdminCredential `yaml:"credentials"`
}

// AdminCredential is one named bearer token of the admin API.
type AdminCredential struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	Scope string `yaml:"scope"`
}

// MaxTargetConcurrency bounds a target's concurrency in the YAML; the OpenHIM console's
// delivery_concurrency has the same bound (openhim.MaxDeliveryConcurrency), and a target's
// DHIS2 client keeps this many idle connections at most.
const MaxTargetConcurrency = 64

// Admin scopes.
const (
	ScopeRead    = "read"
	ScopeOperate = "operate"
)

// AdminCredentials lists every credential of the admin API: admin.token first, as an
// operator named "admin", then admin.credentials.
func (a Admin) AdminCredentials() []AdminCredential {
	var out []AdminCredential
	if a.Token != "" {
		out = append(out, AdminCredential{Name: "admin", Token: a.Token, Scope: ScopeOperate})
	}
	return append(out, a.Credentials...)
}

// Auth is how a source's clients authenticate: Basic with one of Users, or a bearer token.
// A source without auth accepts anyone, which Validate allows only when Public is set.
type Auth struct {
	Users  []User   `yaml:"users"`
	Tokens []string `yaml:"tokens"`
	Public bool     `yaml:"public"`
}

// User is a Basic credential.
type User struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Source is a configured inbound feed, mounted at POST /ingest/{name}.
type Source struct {
	Name string `yaml:"name"`
	// Format is what the source posts: auto (by Content-Type, then by sniffing), json, xml,
	// csv, adx, analytics or cht.
	Format string `yaml:"format"`
	Auth   Auth   `yaml:"auth"`
	// Targets receive the source's values; empty means every target.
	Targets []string `yaml:"targets"`
	// Mapping names the mapping set applied before delivery; empty is identity.
	Mapping string `yaml:"mapping"`
	// IDSchemes describe the incoming identifiers when the payload does not.
	IDSchemes Schemes `yaml:"id_schemes"`
	BatchSize int     `yaml:"batch_size"`
	// Unmapped says what happens to values the mapping set has no rule for: drop (and
	// report), pass (deliver as they are) or reject (dead-letter the batch).
	Unmapped string `yaml:"unmapped"`
	// Duplicates says what happens when two values map to the same target key in one
	// payload: reject, sum or last (last wins); or, for a source without a mapping set,
	// keep: every value is delivered as received and the target settles them as DHIS2
	// does (2.38–2.42 writes them in order, 2.43 refuses them with E8128).
	Duplicates string `yaml:"duplicates"`
	// OrgUnits filters values by their org unit once mapped (it needs a mapping set, whose
	// target metadata tells the data sets' org units and the levels).
	OrgUnits SourceOrgUnits `yaml:"org_units"`
	// WaitForDelivery makes ingest synchronous: the answer waits, up to this long, until
	// every target has the payload, and reports the outcome. 0 answers as soon as the
	// payload is stored (the default).
	WaitForDelivery Duration `yaml:"wait_for_delivery"`
	// AllowDelete lets the source delete values in DHIS2 (importStrategy=DELETE, or values
	// marked deleted). Off by default: Tally's DHIS2 account may delete anything, a
	// source should not.
	AllowDelete bool `yaml:"allow_delete"`
	// Allow, when a list is not empty, restricts what the source may send: data sets and
	// org units as the payload writes them (in its id scheme).
	Allow SourceAllow `yaml:"allow"`
	// RateLimit bounds the source's requests; past it the answer is 429 with Retry-After.
	RateLimit RateLimit `yaml:"rate_limit"`
	// StoredBy is the storedBy DHIS2 records for the source's values that name none
	// (DHIS2 records its own account's user name otherwise).
	StoredBy string `yaml:"stored_by"`
	// Validation is per_value (a bad value is refused on its own, with DHIS2's conflict,
	// and the rest of the payload goes on) or atomic (any bad value refuses the whole
	// payload). Empty means as the endpoint does: per_value on POST /api/dataValueSets,
	// as DHIS2 2.38+ imports, and atomic on POST /ingest/{source}.
	Validation string `yaml:"validation"`
	// DHIS2Version is the DHIS2 version ("2.40") whose answers POST /api/dataValueSets
	// imitates for this source: the era of the WebMessage, its HTTP status on WARNING and
	// its ADX reading rules. Empty means the lowest release among the source's targets,
	// as read from them, or 2.42 while none has been read.
	DHIS2Version string `yaml:"dhis2_version"`
	// CompleteDate says what a payload's header completeDate does: dhis2 registers the
	// data set complete at the target for the header's period and org unit once its
	// values are delivered, as DHIS2 does (a header without both is a conflict, as in
	// DHIS2); per_org_unit registers it for every period and org unit the delivered
	// values name (a CHT export, whose completeDate is the export date and whose header
	// has no org unit); ignore drops it. Empty means ignore for format cht, dhis2 for the
	// others.
	CompleteDate string `yaml:"complete_date"`
}

// SourceOrgUnits says which mapped values a source keeps by their org unit. CHT, for one,
// exports a row for every ancestor of a health worker that carries dhis.orgUnit, so a
// district's row lands beside its facilities' and DHIS2 analytics adds both up.
type SourceOrgUnits struct {
	// Keep is all (the default: deliver every value, and warn about each one whose org
	// unit is not assigned to the value's data set in the target) or assigned (leave such
	// values out, reported as unmapped).
	Keep string `yaml:"keep"`
	// Level, when set, also leaves out values whose org unit is not at this level of the
	// target's hierarchy (1 is the root).
	Level int `yaml:"level"`
}

// Schemes is the YAML form of transform.IDSchemes.
type Schemes struct {
	IDScheme             string `yaml:"id_scheme"`
	DataElement          string `yaml:"data_element"`
	OrgUnit              string `yaml:"org_unit"`
	CategoryOptionCombo  string `yaml:"category_option_combo"`
	AttributeOptionCombo string `yaml:"attribute_option_combo"`
	DataSet              string `yaml:"data_set"`
}

// Target is a DHIS2 instance values are delivered to.
type Target struct {
	Name     string `yaml:"name"`
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Token is a DHIS2 personal access token, sent as "Authorization: ApiToken <token>".
	Token string `yaml:"token"`
	// APIVersion pins the path, e.g. "40" for /api/40/...; empty uses /api.
	APIVersion string `yaml:"api_version"`
	// IDSchemes are the schemes the target is sent (the query's *IdScheme parameters).
	IDSchemes      Schemes  `yaml:"id_schemes"`
	ImportStrategy string   `yaml:"import_strategy"`
	DryRun         bool     `yaml:"dry_run"`
	SkipAudit      bool     `yaml:"skip_audit"`
	Async          bool     `yaml:"async"`
	Timeout        Duration `yaml:"timeout"`
	// Concurrency bounds requests in flight to this target (1 to MaxTargetConcurrency).
	Concurrency int `yaml:"concurrency"`
	// AdaptiveConcurrency lets the requests in flight adapt to the target's answers (AIMD on
	// latency, 429, 5xx and timeouts), between 1 and Concurrency.
	AdaptiveConcurrency bool `yaml:"adaptive_concurrency"`
	// MaxValuesPerRequest splits larger batches.
	MaxValuesPerRequest int   `yaml:"max_values_per_request"`
	Retry               Retry `yaml:"retry"`
	// RateLimit bounds the requests per second sent to this target; unset means no limit.
	RateLimit RateLimit `yaml:"rate_limit"`
	// MetadataRefresh is how long the target's metadata, read for mapping, is used before
	// it is read again.
	MetadataRefresh Duration `yaml:"metadata_refresh"`
}

// SourceAllow lists what a source may send; an empty list allows anything.
type SourceAllow struct {
	DataSets []string `yaml:"data_sets"`
	OrgUnits []string `yaml:"org_units"`
}

// RateLimit is a token bucket: PerSecond requests per second on average, up to Burst at once.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	// Burst defaults to PerSecond rounded up (at least 1).
	Burst int `yaml:"burst"`
}

// Retry bounds redelivery of transient failures.
type Retry struct {
	MaxAttempts  int      `yaml:"max_attempts"`
	MaxAge       Duration `yaml:"max_age"`
	InitialDelay Duration `yaml:"initial_delay"`
	MaxDelay     Duration `yaml:"max_delay"`
}

// Delivery tunes the workers shared by all targets.
type Delivery struct {
	// AckWait is how long a worker may hold a message before JetStream redelivers it. A
	// worker extends it while it works (a slow import, a rate-limit wait), so it bounds how
	// soon the message of a worker that died is handed to another.
	AckWait Duration `yaml:"ack_wait"`
	// UpgradeWait is how long a message this replica cannot handle yet — written by a newer
	// Tally, or from a source its configuration lacks — waits for a replica that can, during a
	// rolling upgrade or configuration change, before it becomes a dead letter.
	UpgradeWait Duration `yaml:"upgrade_wait"`
	// ProbeInterval is how often a target whose circuit is open is asked whether it answers
	// again (GET /api/system/ping), so deliveries resume within this long of its recovery.
	ProbeInterval Duration `yaml:"probe_interval"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// File is the path the config was loaded from ("" when parsed from bytes).
func (c *Config) File() string { return c.file }

// Source returns the source called name.
func (c *Config) Source(name string) (*Source, bool) {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i], true
		}
	}
	return nil, false
}

// Target returns the target called name.
func (c *Config) Target(name string) (*Target, bool) {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i], true
		}
	}
	return nil, false
}

// TargetsOf returns the targets a source delivers to.
func (c *Config) TargetsOf(s *Source) []*Target {
	var out []*Target
	for i := range c.Targets {
		t := &c.Targets[i]
		if len(s.Targets) == 0 {
			out = append(out, t)
			continue
		}
		for _, n := range s.Targets {
			if n == t.Name {
				out = append(out, t)
			}
		}
	}
	return out
}

// TargetNames are the names of every target.
func (c *Config) TargetNames() []string {
	out := make([]string, len(c.Targets))
	for i := range c.Targets {
		out[i] = c.Targets[i].Name
	}
	return out
}

// TargetNamesOf are the names of the targets a source delivers to.
func (c *Config) TargetNamesOf(s *Source) []string {
	ts := c.TargetsOf(s)
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// Duration is a time.Duration written as "30s", "5m" or "24h".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// parseDuration reads Go duration syntax, saying what a good one looks like when it fails.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write a number and a unit (s, m or h), e.g. 30s, 5m, 24h or 1h30m", s)
	}
	return v, nil
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ByteSize is a size written as a number of bytes or with a unit: 512KiB, 64MiB, 1GiB, 10MB.
type ByteSize int64

// UnmarshalYAML parses a size with an optional unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// parseByteSize reads a size with an optional unit.
func parseByteSize(raw string) (int64, error) {
	s := strings.TrimSpace(raw)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	var v int64
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v < 0 || fmt.Sprint(v) != s {
		return 0, fmt.Errorf("%q is not a size: write a whole number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB, e.g. 64MiB", raw)
	}
	return v * mult, nil
}
