package openhim

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Auth schemes for Config.Auth.
const (
	// AuthBasic sends "Authorization: Basic" on every call; the default on cores 7.1 and later.
	AuthBasic = "basic"
	// AuthToken is the legacy scheme (auth-username, auth-ts, auth-salt, auth-token headers),
	// the only one enabled by default on cores up to 7.0.
	AuthToken = "token"
)

// Defaults applied by Config.WithDefaults.
const (
	DefaultURN                = "urn:mediator:tally"
	DefaultName               = "Tally"
	DefaultDescription        = "Moves aggregate health data (CHT targets, DHIS2 data value sets, ADX) into DHIS2"
	DefaultHeartbeatInterval  = 10 * time.Second
	DefaultConfigPollInterval = 60 * time.Second
	DefaultTimeout            = 10 * time.Second
	DefaultRouteHost          = "tally"
	DefaultRoutePort          = 8080
	DefaultAllowRole          = "tally"
	DefaultReportInterval     = time.Second
	DefaultReportAttempts     = 10
)

// Bounds checked by Config.Validate.
const (
	minHeartbeatInterval = time.Second
	// maxHeartbeatInterval follows the core docs ("at least every 30 s"); the console flags a
	// mediator as stale after 60 s without a beat.
	maxHeartbeatInterval = 30 * time.Second
	minReportInterval    = 10 * time.Millisecond
	maxReportInterval    = time.Minute
	maxReportAttempts    = 100
)

// Config is the `openhim:` section of Tally's configuration. Zero values take the defaults
// listed on each field (see WithDefaults). Username and Password are secrets' owners: they are
// never logged (Config implements slog.LogValuer and fmt.Stringer with the password redacted).
type Config struct {
	// Enabled turns registration and heartbeats on. When false nothing here is used and
	// Validate accepts any content.
	Enabled bool `yaml:"enabled"`
	// URL is the core's API base URL, e.g. https://openhim-core:8080 (not the router's 5000/5001).
	URL string `yaml:"url"`
	// Username is the core user's email, e.g. root@openhim.org. The user must be allowed to
	// manage mediators (group "admin" on cores up to 8.5.0).
	Username string `yaml:"username"`
	// Password of that user. Use ${ENV} expansion or a secret file rather than a literal.
	Password string `yaml:"password"`
	// Auth is "basic" (default; cores 7.1+) or "token" (legacy scheme, cores up to 7.0).
	Auth string `yaml:"auth"`
	// CAFile is a PEM bundle trusted in addition to the system roots, for a core with a
	// private or self-signed certificate.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify disables certificate verification. An explicit opt-in for test
	// set-ups only; it cannot be combined with CAFile.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// Timeout bounds each call to the core API (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// HeartbeatInterval is the time between heartbeats (default 10s, 1s..30s).
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// ConfigPollInterval is how often a heartbeat asks for the full config (`config: true`),
	// because the core pushes a console edit only once (default 60s, i.e. every 6th beat).
	ConfigPollInterval time.Duration `yaml:"config_poll_interval"`
	// URN identifies this mediator in the core (default "urn:mediator:tally"). Replicas of one
	// deployment share it; distinct deployments on one core need distinct URNs.
	URN string `yaml:"urn"`
	// Name shown in the console (default "Tally"); also prefixes the channel names.
	Name string `yaml:"name"`
	// Description shown in the console.
	Description string `yaml:"description"`
	// Route is how the core reaches Tally.
	Route RouteConfig `yaml:"route"`
	// Allow lists the client ids or roles admitted to Tally's channels (default ["tally"]).
	Allow []string `yaml:"allow"`
	// ReportInterval is the pause between the reads and writes Client.ReportOutcome makes
	// while it waits for the core to store Tally's answer and then confirms the outcome
	// (default 1s, 10ms..1m). The core stores the answer some time after it received it, so
	// an outcome written sooner would be overwritten.
	ReportInterval time.Duration `yaml:"report_interval"`
	// ReportAttempts bounds both the waiting reads and the writes of one ReportOutcome
	// (default 10, 1..100).
	ReportAttempts int `yaml:"report_attempts"`
}

// RouteConfig says where the core sends requests for Tally's channels.
type RouteConfig struct {
	// Host as seen from the core (default "tally", the compose/Kubernetes service name).
	Host string `yaml:"host"`
	// Port of Tally's HTTP listener as seen from the core (default 8080).
	Port int `yaml:"port"`
	// Secured makes the core use https toward Tally.
	Secured bool `yaml:"secured"`
	// PathPrefix is prepended to Tally's paths when Tally sits behind a reverse proxy under a
	// sub-path, e.g. "/tally" (default empty).
	PathPrefix string `yaml:"path_prefix"`
}

// DefaultConfig returns the built-in configuration used by `tally openhim register --dry-run`
// when no file is given: every default filled in, pointing at the core's usual address.
// It has no password, so Validate refuses it for running.
func DefaultConfig() Config {
	return Config{
		Enabled:  true,
		URL:      "https://openhim-core:8080",
		Username: "root@openhim.org",
	}.WithDefaults()
}

// WithDefaults returns c with every zero-valued setting replaced by its default.
func (c Config) WithDefaults() Config {
	if c.Auth == "" {
		c.Auth = AuthBasic
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ConfigPollInterval == 0 {
		c.ConfigPollInterval = DefaultConfigPollInterval
	}
	if c.URN == "" {
		c.URN = DefaultURN
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Description == "" {
		c.Description = DefaultDescription
	}
	if c.Route.Host == "" {
		c.Route.Host = DefaultRouteHost
	}
	if c.Route.Port == 0 {
		c.Route.Port = DefaultRoutePort
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = DefaultReportInterval
	}
	if c.ReportAttempts == 0 {
		c.ReportAttempts = DefaultReportAttempts
	}
	if len(c.Allow) == 0 {
		c.Allow = []string{DefaultAllowRole}
	} else {
		c.Allow = append([]string(nil), c.Allow...)
	}
	return c
}

// FieldError is one problem in the `openhim:` section. Field is the YAML key path below
// `openhim`, e.g. "route.port", so a config loader can attach a line number.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return "openhim." + e.Field + ": " + e.Message }

// ConfigError lists every problem found by Validate.
type ConfigError []FieldError

func (e ConfigError) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

// Validate checks c after defaults are applied and returns a ConfigError listing every
// problem, or nil. A disabled section is not checked.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	c = c.WithDefaults()
	var errs ConfigError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	c.checkConnection(add)
	c.checkRegistration(add)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// validateRegistration checks only what the registration body depends on.
func (c Config) validateRegistration() error {
	c = c.WithDefaults()
	var errs ConfigError
	c.checkRegistration(func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	})
	if len(errs) == 0 {
		return nil
	}
	return errs
}

type addFunc func(field, format string, args ...any)

func (c Config) checkConnection(add addFunc) {
	switch u, err := url.Parse(c.URL); {
	case c.URL == "":
		add("url", "required: the core API URL, e.g. https://openhim-core:8080")
	case err != nil:
		add("url", "not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		add("url", "scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		add("url", "missing host")
	case u.User != nil:
		add("url", "must not contain credentials; use username and password")
	case u.RawQuery != "" || u.Fragment != "":
		add("url", "must not have a query or fragment")
	}
	if c.Username == "" {
		add("username", "required: the core user's email")
	}
	if c.Password == "" {
		add("password", "required")
	}
	if c.Auth != AuthBasic && c.Auth != AuthToken {
		add("auth", "must be %q or %q, got %q", AuthBasic, AuthToken, c.Auth)
	}
	if c.CAFile != "" && c.InsecureSkipVerify {
		add("insecure_skip_verify", "cannot be combined with ca_file; trust the CA instead")
	}
	if c.Timeout < 0 {
		add("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.HeartbeatInterval < minHeartbeatInterval || c.HeartbeatInterval > maxHeartbeatInterval {
		add("heartbeat_interval", "must be between %s and %s (the console marks a mediator stale after 60s), got %s",
			minHeartbeatInterval, maxHeartbeatInterval, c.HeartbeatInterval)
	}
	if c.ConfigPollInterval < 0 {
		add("config_poll_interval", "must be positive, got %s", c.ConfigPollInterval)
	}
	if c.ReportInterval < minReportInterval || c.ReportInterval > maxReportInterval {
		add("report_interval", "must be between %s and %s, got %s", minReportInterval, maxReportInterval, c.ReportInterval)
	}
	if c.ReportAttempts < 1 || c.ReportAttempts > maxReportAttempts {
		add("report_attempts", "must be between 1 and %d, got %d", maxReportAttempts, c.ReportAttempts)
	}
}

func (c Config) checkRegistration(add addFunc) {
	switch {
	case !strings.HasPrefix(c.URN, "urn:"):
		add("urn", "must start with \"urn:\", got %q", c.URN)
	case strings.ContainsAny(c.URN, " \t\r\n/?#%"):
		add("urn", "must not contain spaces, '/', '?', '#' or '%%', got %q", c.URN)
	}
	if strings.TrimSpace(c.Name) == "" {
		add("name", "must not be blank")
	}
	if h := c.Route.Host; strings.ContainsAny(h, "/ \t[]") || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
		add("route.host", "must be a bare host name or IP (no scheme, port or path), got %q", h)
	}
	if c.Route.Port < 1 || c.Route.Port > 65535 {
		add("route.port", "must be between 1 and 65535, got %d", c.Route.Port)
	}
	if p := c.Route.PathPrefix; p != "" {
		if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?# ") {
			add("route.path_prefix", "must start with '/' and not end with '/' (e.g. \"/tally\"), got %q", p)
		}
	}
	for i, a := range c.Allow {
		if strings.TrimSpace(a) == "" {
			add(fmt.Sprintf("allow[%d]", i), "must not be blank")
		}
	}
}

// LogValue renders c for log/slog without the password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("enabled", c.Enabled),
		slog.String("url", c.URL),
		slog.String("username", c.Username),
		slog.String("password", redact(c.Password)),
		slog.String("auth", c.Auth),
		slog.String("ca_file", c.CAFile),
		slog.Bool("insecure_skip_verify", c.InsecureSkipVerify),
		slog.String("urn", c.URN),
	)
}

// String renders c for fmt without the password.
func (c Config) String() string {
	return fmt.Sprintf("openhim{enabled=%t url=%s username=%s password=%s auth=%s urn=%s}",
		c.Enabled, c.URL, c.Username, redact(c.Password), c.Auth, c.URN)
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}
