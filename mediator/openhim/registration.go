package openhim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"

	"github.com/tally-hmis/tally/mediator/openhim/internal/semver"
)

// Registration is the body of POST /mediators (the core's mediator object, spec §3.1).
type Registration struct {
	URN                  string         `json:"urn"`
	Version              string         `json:"version"`
	Name                 string         `json:"name"`
	Description          string         `json:"description,omitempty"`
	Endpoints            []RouteDef     `json:"endpoints"`
	DefaultChannelConfig []ChannelDef   `json:"defaultChannelConfig"`
	ConfigDefs           []ConfigDef    `json:"configDefs"`
	Config               map[string]any `json:"config,omitempty"`
}

// RouteDef is a route toward a mediator (spec §3.3), used for endpoints and channel routes.
type RouteDef struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	Path    string `json:"path,omitempty"`
	Secured bool   `json:"secured,omitempty"`
	Primary bool   `json:"primary"`
}

// ChannelDef is a channel the console can install from the mediator (spec §3.4).
type ChannelDef struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// URLPattern is a JavaScript RegExp source matched against the request path.
	URLPattern string     `json:"urlPattern"`
	Type       string     `json:"type"`
	Methods    []string   `json:"methods"`
	AuthType   string     `json:"authType"`
	Allow      []string   `json:"allow"`
	Routes     []RouteDef `json:"routes"`
	// RequestBody and ResponseBody make the core store bodies; a POST whose body was not
	// stored cannot be rerun.
	RequestBody  bool `json:"requestBody"`
	ResponseBody bool `json:"responseBody"`
}

// ConfigType is the type of a console-editable setting (spec §3.2).
type ConfigType string

// Config types known to the core.
const (
	ConfigString    ConfigType = "string"
	ConfigBigString ConfigType = "bigstring"
	ConfigBool      ConfigType = "bool"
	ConfigNumber    ConfigType = "number"
	ConfigOption    ConfigType = "option"
	ConfigMap       ConfigType = "map"
	ConfigStruct    ConfigType = "struct"
	ConfigPassword  ConfigType = "password"
)

// ConfigDef declares one setting an operator may change from the console.
type ConfigDef struct {
	Param       string      `json:"param"`
	DisplayName string      `json:"displayName,omitempty"`
	Description string      `json:"description,omitempty"`
	Type        ConfigType  `json:"type"`
	Values      []string    `json:"values,omitempty"`
	Template    []ConfigDef `json:"template,omitempty"`
	Array       bool        `json:"array,omitempty"`
}

// Source is one of Tally's ingest endpoints, offered to the core as a channel.
type Source struct {
	// Name identifies the source; it becomes part of the channel and endpoint names.
	Name string
	// Path is Tally's own URL path, e.g. "/ingest/cht" or "/api/dataValueSets".
	Path string
	// Description is shown in the console (optional).
	Description string
}

// IngestSource is the native endpoint of a configured source, POST /ingest/{name}.
func IngestSource(name string) Source {
	return Source{Name: name, Path: "/ingest/" + name, Description: "Tally native ingest for source " + name}
}

// DataValueSetsSource is Tally's DHIS2-compatible endpoint, POST /api/dataValueSets.
func DataValueSetsSource() Source {
	return Source{Name: "dataValueSets", Path: "/api/dataValueSets",
		Description: "DHIS2-compatible data value set ingest (JSON, XML, ADX, CSV)"}
}

// Sources returns the DHIS2-compatible source followed by the native one of each name.
func Sources(names ...string) []Source {
	out := []Source{DataValueSetsSource()}
	for _, n := range names {
		out = append(out, IngestSource(n))
	}
	return out
}

// Keys of the console-editable settings. A pushed config is an overlay on Tally's YAML:
// the registered defaults ("default", 0, []) mean "keep the configured value".
const (
	// KeyLogLevel is an option: default, debug, info, warn, error.
	KeyLogLevel = "log_level"
	// KeyDryRunTargets is a string array: targets whose deliveries are mapped and logged but
	// not sent.
	KeyDryRunTargets = "dry_run_targets"
	// KeyDeliveryConcurrency is a number: parallel deliveries per target; 0 keeps the YAML value.
	KeyDeliveryConcurrency = "delivery_concurrency"
	// KeyBatchSize is a number: maximum data values per batch; 0 keeps the YAML value.
	KeyBatchSize = "batch_size"
)

// MaxDeliveryConcurrency bounds KeyDeliveryConcurrency, as config.MaxTargetConcurrency
// bounds a target's concurrency in the YAML (this package imports nothing of Tally's, so
// the mediator's tests check that the two agree).
const MaxDeliveryConcurrency = 64

// logLevelDefault is the option value of KeyLogLevel that keeps the YAML log level.
const logLevelDefault = "default"

// ConfigDefs returns the settings Tally offers in the console.
func ConfigDefs() []ConfigDef {
	return []ConfigDef{
		{Param: KeyLogLevel, DisplayName: "Log level", Type: ConfigOption,
			Values:      []string{logLevelDefault, "debug", "info", "warn", "error"},
			Description: "Overrides the configured log level; \"default\" keeps the configured one."},
		{Param: KeyDryRunTargets, DisplayName: "Dry-run targets", Type: ConfigString, Array: true,
			Description: "Target names whose deliveries are mapped and recorded but not sent to DHIS2, " +
				"in addition to those set in the configuration."},
		{Param: KeyDeliveryConcurrency, DisplayName: "Delivery concurrency", Type: ConfigNumber,
			Description: "Parallel deliveries per target (1-64); 0 keeps the configured value."},
		{Param: KeyBatchSize, DisplayName: "Batch size", Type: ConfigNumber,
			Description: "Maximum data values per batch (1-10000); 0 keeps the configured value."},
	}
}

// defaultConsoleConfig is registered with the mediator so the console form starts valid and
// means "no override". On a version bump the core keeps values an operator already set.
func defaultConsoleConfig() map[string]any {
	return map[string]any{
		KeyLogLevel:            logLevelDefault,
		KeyDryRunTargets:       []string{},
		KeyDeliveryConcurrency: 0,
		KeyBatchSize:           0,
	}
}

// BuildRegistration produces the POST /mediators body for cfg, the build version and Tally's
// sources: one endpoint and one channel per source. version may carry a leading "v"; an
// empty or development version ("dev", "devel", "(devel)") is sent as "0.0.0-dev".
func BuildRegistration(cfg Config, version string, sources []Source) (*Registration, error) {
	if err := cfg.validateRegistration(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	v, err := NormalizeVersion(version)
	if err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, errors.New("openhim: at least one source is required (the core needs an endpoint)")
	}
	reg := &Registration{
		URN:         cfg.URN,
		Version:     v,
		Name:        cfg.Name,
		Description: cfg.Description,
		ConfigDefs:  ConfigDefs(),
		Config:      defaultConsoleConfig(),
	}
	seenName := map[string]bool{}
	seenPath := map[string]bool{}
	for _, s := range sources {
		if err := checkSource(s); err != nil {
			return nil, err
		}
		if seenName[s.Name] || seenPath[s.Path] {
			return nil, fmt.Errorf("openhim: source %q (%s) is listed twice", s.Name, s.Path)
		}
		seenName[s.Name], seenPath[s.Path] = true, true
		route := RouteDef{
			Name:    cfg.Name + " " + s.Name,
			Type:    "http",
			Host:    cfg.Route.Host,
			Port:    cfg.Route.Port,
			Path:    cfg.Route.PathPrefix + s.Path,
			Secured: cfg.Route.Secured,
			Primary: true,
		}
		reg.Endpoints = append(reg.Endpoints, route)
		reg.DefaultChannelConfig = append(reg.DefaultChannelConfig, ChannelDef{
			Name:         cfg.Name + " - " + s.Name,
			Description:  s.Description,
			URLPattern:   URLPattern(s.Path),
			Type:         "http",
			Methods:      []string{"POST"},
			AuthType:     "private",
			Allow:        append([]string(nil), cfg.Allow...),
			Routes:       []RouteDef{route},
			RequestBody:  true,
			ResponseBody: true,
		})
	}
	return reg, nil
}

// RegistrationJSON is the indented registration body, for `tally openhim register --dry-run`.
func RegistrationJSON(cfg Config, version string, sources []Source) ([]byte, error) {
	reg, err := BuildRegistration(cfg, version, sources)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(reg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openhim: encode registration: %w", err)
	}
	return append(b, '\n'), nil
}

// URLPattern is the channel urlPattern that matches exactly path (a JavaScript RegExp source).
func URLPattern(path string) string {
	return "^" + regexp.QuoteMeta(path) + "$"
}

var sourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func checkSource(s Source) error {
	if !sourceName.MatchString(s.Name) {
		return fmt.Errorf("openhim: source name %q must be letters, digits, '_', '.' or '-'", s.Name)
	}
	if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, "?# ") || strings.Contains(s.Path, "{") {
		return fmt.Errorf("openhim: source %q: path %q must be an absolute path without query or placeholders", s.Name, s.Path)
	}
	return nil
}

// NormalizeVersion turns a build version into the SemVer the core requires (spec §4 rule 4).
func NormalizeVersion(version string) (string, error) {
	v := strings.TrimSpace(version)
	switch v {
	case "", "dev", "devel", "(devel)":
		return "0.0.0-dev", nil
	}
	v = strings.TrimPrefix(v, "v")
	if !semver.Valid(v) {
		return "", fmt.Errorf("openhim: version %q is not SemVer x.y.z; the core refuses it", version)
	}
	return v, nil
}

// Overrides are the console settings decoded from a pushed config. A nil field (or an empty
// DryRunTargets) means "keep the configured value".
type Overrides struct {
	// LogLevel is the level an operator chose, nil otherwise.
	LogLevel *slog.Level
	// LogLevelDefault is true when the console says "default": the operator took an earlier
	// choice back, so the configured level must be restored (see LogLevelOr). It is false
	// when the pushed config has no log_level at all, or names a level.
	LogLevelDefault bool
	DryRunTargets   []string
	// DeliveryConcurrency is the parallel deliveries per target an operator chose (1..64);
	// nil keeps the configured value.
	DeliveryConcurrency *int
	BatchSize           *int
}

// LogLevelOr is the level to run at: the console's choice, or configured when the console
// has none or says "default".
func (o Overrides) LogLevelOr(configured slog.Level) slog.Level {
	if o.LogLevel != nil {
		return *o.LogLevel
	}
	return configured
}

// ParseOverrides decodes a config received from the core (see Mediator.Run). Unknown keys
// are ignored so an older Tally tolerates a newer mediator's settings.
func ParseOverrides(cfg map[string]any) (Overrides, error) {
	var o Overrides
	var errs []error
	if v, ok := cfg[KeyLogLevel]; ok {
		var err error
		if o.LogLevel, o.LogLevelDefault, err = parseLogLevel(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", KeyLogLevel, err))
		}
	}
	if v, ok := cfg[KeyDryRunTargets]; ok && v != nil {
		switch list := v.(type) {
		case []any:
			for i, e := range list {
				s, ok := e.(string)
				if !ok {
					errs = append(errs, fmt.Errorf("%s[%d]: want a string, got %T", KeyDryRunTargets, i, e))
					continue
				}
				if s = strings.TrimSpace(s); s != "" {
					o.DryRunTargets = append(o.DryRunTargets, s)
				}
			}
		case []string:
			o.DryRunTargets = append(o.DryRunTargets, list...)
		default:
			errs = append(errs, fmt.Errorf("%s: want a list of strings, got %T", KeyDryRunTargets, v))
		}
	}
	for _, f := range []struct {
		key string
		dst **int
		max int
	}{{KeyDeliveryConcurrency, &o.DeliveryConcurrency, MaxDeliveryConcurrency}, {KeyBatchSize, &o.BatchSize, 10000}} {
		v, ok := cfg[f.key]
		if !ok || v == nil {
			continue
		}
		n, err := wholeNumber(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		case n < 0 || n > f.max:
			errs = append(errs, fmt.Errorf("%s: must be between 0 and %d, got %d", f.key, f.max, n))
		case n > 0:
			*f.dst = &n
		}
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("openhim: console config: %w", errors.Join(errs...))
	}
	return o, nil
}

// parseLogLevel decodes the log_level option: a level, or "default" (also "" and null).
func parseLogLevel(v any) (level *slog.Level, isDefault bool, err error) {
	s, isString := v.(string)
	switch {
	case v == nil, isString && (s == logLevelDefault || s == ""):
		return nil, true, nil
	case !isString:
		return nil, false, fmt.Errorf("want a string, got %T", v)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return nil, false, err
	}
	return &l, false, nil
}

func wholeNumber(v any) (int, error) {
	switch n := v.(type) {
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return 0, fmt.Errorf("want a whole number, got %v", n)
		}
		return int(n), nil
	case int:
		return n, nil
	case json.Number:
		i, err := n.Int64()
		if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			return 0, fmt.Errorf("want a whole number, got %s", n)
		}
		return int(i), nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}
