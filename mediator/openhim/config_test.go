package openhim_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tally-hmis/tally/mediator/openhim"
)

func TestConfigYAMLAndDefaults(t *testing.T) {
	const doc = `
openhim:
  enabled: true
  url: https://openhim-core:8080
  username: root@openhim.org
  password: secret
  heartbeat_interval: 5s
  config_poll_interval: 2m
  route:
    host: tally.internal
    path_prefix: /tally
  allow: [tally, hmis]
  report_interval: 250ms
`
	var file struct {
		OpenHIM openhim.Config `yaml:"openhim"`
	}
	if err := yaml.Unmarshal([]byte(doc), &file); err != nil {
		t.Fatal(err)
	}
	cfg := file.OpenHIM.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"auth", cfg.Auth, openhim.AuthBasic},
		{"timeout", cfg.Timeout, 10 * time.Second},
		{"heartbeat_interval", cfg.HeartbeatInterval, 5 * time.Second},
		{"config_poll_interval", cfg.ConfigPollInterval, 2 * time.Minute},
		{"urn", cfg.URN, "urn:mediator:tally"},
		{"name", cfg.Name, "Tally"},
		{"route.host", cfg.Route.Host, "tally.internal"},
		{"route.port", cfg.Route.Port, 8080},
		{"route.path_prefix", cfg.Route.PathPrefix, "/tally"},
		{"allow", strings.Join(cfg.Allow, ","), "tally,hmis"},
		{"report_interval", cfg.ReportInterval, 250 * time.Millisecond},
		{"report_attempts", cfg.ReportAttempts, 10},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := openhim.DefaultConfig()
	if cfg.HeartbeatInterval != 10*time.Second || cfg.ConfigPollInterval != time.Minute ||
		cfg.URN != openhim.DefaultURN || cfg.URL != "https://openhim-core:8080" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	// No password: usable for --dry-run, refused for running.
	err := cfg.Validate()
	var ce openhim.ConfigError
	if !errors.As(err, &ce) || len(ce) != 1 || ce[0].Field != "password" {
		t.Fatalf("Validate(DefaultConfig()) = %v, want only a password problem", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() openhim.Config {
		c := openhim.DefaultConfig()
		c.Password = "pw"
		return c
	}
	tests := []struct {
		name   string
		mutate func(*openhim.Config)
		fields []string // expected FieldError.Field values, in order
	}{
		{"valid", func(*openhim.Config) {}, nil},
		{"disabled section is not checked", func(c *openhim.Config) { c.Enabled = false; c.URL = "::" }, nil},
		{"missing url", func(c *openhim.Config) { c.URL = "" }, []string{"url"}},
		{"bad scheme", func(c *openhim.Config) { c.URL = "ftp://core" }, []string{"url"}},
		{"credentials in url", func(c *openhim.Config) { c.URL = "https://u:p@core:8080" }, []string{"url"}},
		{"missing username and password", func(c *openhim.Config) { c.Username, c.Password = "", "" },
			[]string{"username", "password"}},
		{"unknown auth", func(c *openhim.Config) { c.Auth = "bearer" }, []string{"auth"}},
		{"token auth", func(c *openhim.Config) { c.Auth = openhim.AuthToken }, nil},
		{"ca_file with insecure", func(c *openhim.Config) { c.CAFile, c.InsecureSkipVerify = "ca.pem", true },
			[]string{"insecure_skip_verify"}},
		{"heartbeat too slow", func(c *openhim.Config) { c.HeartbeatInterval = time.Minute }, []string{"heartbeat_interval"}},
		{"heartbeat too fast", func(c *openhim.Config) { c.HeartbeatInterval = time.Millisecond }, []string{"heartbeat_interval"}},
		{"negative poll", func(c *openhim.Config) { c.ConfigPollInterval = -time.Second }, []string{"config_poll_interval"}},
		{"urn without prefix", func(c *openhim.Config) { c.URN = "tally" }, []string{"urn"}},
		{"urn with slash", func(c *openhim.Config) { c.URN = "urn:mediator/tally" }, []string{"urn"}},
		{"route host with scheme", func(c *openhim.Config) { c.Route.Host = "http://tally" }, []string{"route.host"}},
		{"route host with port", func(c *openhim.Config) { c.Route.Host = "tally:8080" }, []string{"route.host"}},
		{"route host ipv6", func(c *openhim.Config) { c.Route.Host = "fd00::1" }, nil},
		{"route port", func(c *openhim.Config) { c.Route.Port = 70000 }, []string{"route.port"}},
		{"path prefix trailing slash", func(c *openhim.Config) { c.Route.PathPrefix = "/tally/" }, []string{"route.path_prefix"}},
		{"blank allow", func(c *openhim.Config) { c.Allow = []string{"tally", " "} }, []string{"allow[1]"}},
		{"report interval too short", func(c *openhim.Config) { c.ReportInterval = time.Millisecond }, []string{"report_interval"}},
		{"report attempts", func(c *openhim.Config) { c.ReportAttempts = 101 }, []string{"report_attempts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.Validate()
			var got []string
			var ce openhim.ConfigError
			if errors.As(err, &ce) {
				for _, fe := range ce {
					got = append(got, fe.Field)
				}
			} else if err != nil {
				t.Fatalf("Validate returned %T %v, want ConfigError", err, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Errorf("problems %v, want %v (err: %v)", got, tc.fields, err)
			}
			if err != nil && !strings.Contains(err.Error(), "openhim.") {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

func TestConfigNeverShowsPassword(t *testing.T) {
	c := openhim.DefaultConfig()
	c.Password = "s3cr3t-pw"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "openhim", c)
	for _, out := range []string{buf.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %s", c, c, c)} {
		if strings.Contains(out, "s3cr3t-pw") {
			t.Fatalf("password leaked: %s", out)
		}
	}
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("log output lacks the redaction marker: %s", buf.String())
	}
}
