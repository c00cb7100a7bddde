package openhim

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxResponseBytes bounds what is read from any core answer.
const maxResponseBytes = 1 << 20

// Option configures a Client or a Mediator.
type Option func(*options) error

type options struct {
	logger *slog.Logger
	clock  Clock
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("openhim: WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithClock replaces the wall clock and timers, for tests.
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("openhim: WithClock: nil clock")
		}
		o.clock = c
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{logger: slog.New(slog.DiscardHandler), clock: systemClock{}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Client calls the core API on behalf of the mediator. It is safe for concurrent use and
// never logs or returns credentials.
type Client struct {
	urn      string
	base     string
	username string
	password string
	auth     string
	hc       *http.Client
	log      *slog.Logger
	clock    Clock
	// reportInterval and reportAttempts pace ReportOutcome (Config.ReportInterval, ReportAttempts).
	reportInterval time.Duration
	reportAttempts int
}

// NewClient checks the connection settings of cfg (URL, credentials, auth, TLS) and builds a
// client. It makes no request.
func NewClient(cfg Config, opts ...Option) (*Client, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	var errs ConfigError
	cfg.checkConnection(func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	})
	if len(errs) > 0 {
		return nil, errs
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	u, _ := url.Parse(cfg.URL) // checked above
	if cfg.InsecureSkipVerify {
		o.logger.Warn("openhim: TLS certificate verification is disabled (insecure_skip_verify)", "url", cfg.URL)
	}
	if u.Scheme == "http" {
		o.logger.Warn("openhim: the core API URL is plain http; credentials travel unencrypted", "url", cfg.URL)
	}
	return &Client{
		urn:      cfg.URN,
		base:     strings.TrimRight(cfg.URL, "/"),
		username: cfg.Username,
		password: cfg.Password,
		auth:     cfg.Auth,
		hc:       &http.Client{Transport: tr, Timeout: cfg.Timeout},
		log:      o.logger,
		clock:    o.clock,

		reportInterval: cfg.ReportInterval,
		reportAttempts: cfg.ReportAttempts,
	}, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("openhim: ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("openhim: ca_file %s: no PEM certificates found", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	// An explicit, validated opt-in (Config.InsecureSkipVerify); never a default.
	tc.InsecureSkipVerify = cfg.InsecureSkipVerify
	return tc, nil
}

// Register sends the registration (POST /mediators). The core answers 201 whether it
// created, updated (higher version) or ignored (same or lower version) the mediator.
func (c *Client) Register(ctx context.Context, reg *Registration) error {
	if reg == nil {
		return errors.New("openhim: register: nil registration")
	}
	if reg.URN != c.urn {
		return fmt.Errorf("openhim: register: registration urn %q differs from the configured %q", reg.URN, c.urn)
	}
	_, err := c.do(ctx, "register", http.MethodPost, "/mediators", reg)
	return err
}

type heartbeatBody struct {
	Uptime float64 `json:"uptime"`
	Config bool    `json:"config,omitempty"`
}

// Heartbeat reports uptime for the configured urn (POST /mediators/:urn/heartbeat, spec §6.2). With wantConfig the
// core returns the mediator's whole config. The returned config is nil when the core sent
// nothing new, and non-nil (possibly empty) when it sent the current config: after a console
// edit, once, or whenever wantConfig is set.
func (c *Client) Heartbeat(ctx context.Context, uptime time.Duration, wantConfig bool) (map[string]any, error) {
	b, err := c.do(ctx, "heartbeat", http.MethodPost, "/mediators/"+url.PathEscape(c.urn)+"/heartbeat",
		heartbeatBody{Uptime: uptime.Seconds(), Config: wantConfig})
	if err != nil {
		return nil, err
	}
	return parseHeartbeat(b, wantConfig)
}

func parseHeartbeat(b []byte, wantConfig bool) (map[string]any, error) {
	b = bytes.TrimSpace(b)
	switch string(b) {
	case "":
		return nil, nil
	case "OK", "null":
		// Koa's status text: the config was due (changed or asked for) but the mediator has
		// none. Older cores said "OK" on every beat, so it only means "empty" when asked.
		if wantConfig {
			return map[string]any{}, nil
		}
		return nil, nil
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("openhim: heartbeat: config is not a JSON object: %w", err)
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	return cfg, nil
}

func (c *Client) do(ctx context.Context, op, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("openhim: %s: encode: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("openhim: %s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "tally-openhim")
	if err := c.authenticate(ctx, req); err != nil {
		return nil, fmt.Errorf("openhim: %s: %w", op, err)
	}
	return c.send(req, op)
}

func (c *Client) send(req *http.Request, op string) ([]byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("openhim: %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("openhim: %s: read answer: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &APIError{Op: op, StatusCode: resp.StatusCode, Body: snippet(b)}
	}
	return b, nil
}

// basicGreeting is the body the core's Basic strategy sets on every answer; a handler that
// sets only a status (e.g. 404 for a heartbeat of an unknown urn) leaves it in place, so it
// says nothing about the failure (spec §4 rule 8; CORE src/api/mediators.js heartbeat).
const basicGreeting = "User Authenticated Successfully"

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == basicGreeting {
		return ""
	}
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

func (c *Client) authenticate(ctx context.Context, req *http.Request) error {
	if c.auth != AuthToken {
		req.SetBasicAuth(c.username, c.password)
		return nil
	}
	h, err := c.tokenHeaders(ctx)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	return nil
}

type authChallenge struct {
	Salt string `json:"salt"`
	TS   string `json:"ts"`
}

// tokenHeaders implements the legacy scheme (spec §7.5). The salt is fetched before every call
// and the core's own timestamp is used as auth-ts, so client clock skew cannot push the
// request out of the core's ±10 s window.
func (c *Client) tokenHeaders(ctx context.Context) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/authenticate/"+url.PathEscape(c.username), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "tally-openhim")
	b, err := c.send(req, "authenticate")
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: user %s is unknown or has no legacy token credentials (on core 7.1+ use auth: basic)",
				ErrUnauthorized, c.username)
		}
		return nil, err
	}
	var ch authChallenge
	if err := json.Unmarshal(b, &ch); err != nil || ch.Salt == "" {
		return nil, fmt.Errorf("authenticate: unexpected answer from the core (want {salt, ts})")
	}
	ts := ch.TS
	if ts == "" {
		ts = c.clock.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	passwordHash := sha512Hex(ch.Salt + c.password)
	return map[string]string{
		"auth-username": c.username,
		"auth-ts":       ts,
		"auth-salt":     ch.Salt,
		"auth-token":    sha512Hex(passwordHash + ch.Salt + ts),
	}, nil
}

func sha512Hex(s string) string {
	sum := sha512.Sum512([]byte(s))
	return hex.EncodeToString(sum[:])
}
