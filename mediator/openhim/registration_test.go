package openhim_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

func TestRegistrationJSONGolden(t *testing.T) {
	b, err := openhim.RegistrationJSON(openhim.DefaultConfig(), "v1.2.0", openhim.Sources("cht", "hmis-csv"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "registration.golden.json", b)
	if err := openhimtest.ValidateRegistration(b); err != nil {
		t.Errorf("the core would refuse the registration: %v", err)
	}
}

func TestRegistrationPassesCoreValidation(t *testing.T) {
	prefixed := openhim.DefaultConfig()
	prefixed.Route = openhim.RouteConfig{Host: "10.0.0.7", Port: 443, Secured: true, PathPrefix: "/tally"}
	prefixed.Allow = []string{"dhis2-exchange", "cht"}
	tests := []struct {
		name    string
		cfg     openhim.Config
		version string
		sources []openhim.Source
	}{
		{"defaults", openhim.DefaultConfig(), "1.0.0", openhim.Sources("cht")},
		{"dev build", openhim.DefaultConfig(), "dev", openhim.Sources()},
		{"pre-release", openhim.DefaultConfig(), "v0.4.0-rc.1+g1a2b3c", openhim.Sources("a", "b", "c")},
		{"behind a proxy", prefixed, "2.3.4", openhim.Sources("cht")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := openhim.BuildRegistration(tc.cfg, tc.version, tc.sources)
			if err != nil {
				t.Fatal(err)
			}
			if len(reg.Endpoints) != len(tc.sources) || len(reg.DefaultChannelConfig) != len(tc.sources) {
				t.Fatalf("got %d endpoints and %d channels for %d sources",
					len(reg.Endpoints), len(reg.DefaultChannelConfig), len(tc.sources))
			}
			for i, ch := range reg.DefaultChannelConfig {
				src := tc.sources[i]
				if len(ch.Routes) != 1 || !ch.Routes[0].Primary {
					t.Errorf("channel %s: want exactly one primary route", ch.Name)
				}
				if want := tc.cfg.Route.PathPrefix + src.Path; ch.Routes[0].Path != want {
					t.Errorf("channel %s routes to %q, want %q", ch.Name, ch.Routes[0].Path, want)
				}
				if ch.AuthType != "private" || len(ch.Allow) == 0 || ch.Methods[0] != "POST" || !ch.RequestBody {
					t.Errorf("channel %s: %+v", ch.Name, ch)
				}
				re := regexp.MustCompile(ch.URLPattern)
				if !re.MatchString(src.Path) || re.MatchString(src.Path+"x") || re.MatchString("/x"+src.Path) {
					t.Errorf("urlPattern %q does not match exactly %q", ch.URLPattern, src.Path)
				}
			}

			core := newCore(t)
			if err := newClient(t, coreConfig(core)).Register(testContext(t), reg); err != nil {
				t.Fatalf("Register: %v", err)
			}
			regs := core.Registrations()
			if len(regs) != 1 || regs[0].Status != http.StatusCreated {
				t.Fatalf("registrations = %+v", regs)
			}
			if _, ok := core.Mediator(reg.URN); !ok {
				t.Error("mediator not stored")
			}
		})
	}
}

// TestCoreRejectsInvalidRegistrations runs the fake's copy of the core's rules on variants of
// a valid body, checking status and message, so the builder is tested against each rule.
func TestCoreRejectsInvalidRegistrations(t *testing.T) {
	const prefix = "Could not add Mediator via the API: ValidationError: "
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		msg    string
	}{
		{"no urn", func(m map[string]any) { delete(m, "urn") }, "URN is required"},
		{"empty urn", func(m map[string]any) { m["urn"] = "" }, "URN is required"},
		{"no version", func(m map[string]any) { delete(m, "version") }, "Version is required. Must be in SemVer form x.y.z"},
		{"two-part version", func(m map[string]any) { m["version"] = "1.0" }, "Version is required. Must be in SemVer form x.y.z"},
		{"numeric version", func(m map[string]any) { m["version"] = 1 }, "Version is required. Must be in SemVer form x.y.z"},
		{"option without values", func(m map[string]any) { def(m, 0)["values"] = []any{} },
			"Must specify a values array for option param 'log_level'"},
		{"option values not an array", func(m map[string]any) { def(m, 0)["values"] = "debug" },
			"Expected field 'values' to be an array (option param 'log_level')"},
		{"struct without template", func(m map[string]any) { addDef(m, map[string]any{"param": "s", "type": "struct"}) },
			"Must specify a template for struct param 's'"},
		{"template item without param", func(m map[string]any) {
			addDef(m, map[string]any{"param": "s", "type": "struct", "template": []any{map[string]any{"type": "string"}}})
		}, "Must specify field 'param' in template definition for param 's'"},
		{"template item without type", func(m map[string]any) {
			addDef(m, map[string]any{"param": "s", "type": "struct", "template": []any{map[string]any{"param": "a"}}})
		}, "Must specify field 'type' in template definition for param 's'"},
		{"nested struct", func(m map[string]any) {
			addDef(m, map[string]any{"param": "s", "type": "struct",
				"template": []any{map[string]any{"param": "a", "type": "struct"}}})
		}, "May not recursively specify 'struct' in template definitions (param 's')"},
		{"config key without definition", func(m map[string]any) { cfg(m)["bogus"] = true },
			"No config definition found for parameter bogus"},
		{"number as string", func(m map[string]any) { cfg(m)[openhim.KeyBatchSize] = "500" },
			"Expected config param batch_size to be a number."},
		{"option outside values", func(m map[string]any) { cfg(m)[openhim.KeyLogLevel] = "verbose" },
			"Expected config param log_level to be one of default,debug,info,warn,error"},
		{"array expected", func(m map[string]any) { cfg(m)[openhim.KeyDryRunTargets] = "hmis" },
			"Expected config param dry_run_targets to be an array of type string"},
		{"array element type", func(m map[string]any) { cfg(m)[openhim.KeyDryRunTargets] = []any{"hmis", 7} },
			"Expected config param dry_run_targets[1] to be a string."},
		{"no endpoints", func(m map[string]any) { m["endpoints"] = []any{} }, "At least 1 endpoint is required"},
		{"endpoints missing", func(m map[string]any) { delete(m, "endpoints") }, "At least 1 endpoint is required"},
		{"no name", func(m map[string]any) { delete(m, "name") },
			"Mediator validation failed: name: Path `name` is required."},
		{"endpoint without name", func(m map[string]any) { obj(m["endpoints"], 0)["name"] = "" },
			"Mediator validation failed: endpoints.0.name: Path `name` is required."},
		{"unknown method", func(m map[string]any) { obj(m["defaultChannelConfig"], 0)["methods"] = []any{"FETCH"} },
			"Mediator validation failed: defaultChannelConfig.0.methods.0: `FETCH` is not a valid enum value for path `methods`."},
		{"route port out of range", func(m map[string]any) {
			obj(obj(m["defaultChannelConfig"], 0)["routes"], 0)["port"] = 70000
		}, "Mediator validation failed: defaultChannelConfig.0.routes.0.port: Path `port` (70000) is more than maximum allowed value (65536)."},
		{"channel without urlPattern", func(m map[string]any) { delete(obj(m["defaultChannelConfig"], 0), "urlPattern") },
			"Mediator validation failed: defaultChannelConfig.0.urlPattern: Path `urlPattern` is required."},
		{"unknown config type", func(m map[string]any) { def(m, 2)["type"] = "integer" },
			"Mediator validation failed: configDefs.2.type: `integer` is not a valid enum value for path `type`."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validBody(t)
			tc.mutate(m)
			core := newCore(t)
			status, text := postJSON(t, core, http.MethodPost, "/mediators", m)
			if status != http.StatusBadRequest || text != prefix+tc.msg {
				t.Errorf("got %d %q\nwant 400 %q", status, text, prefix+tc.msg)
			}
			b, _ := json.Marshal(m)
			if err := openhimtest.ValidateRegistration(b); err == nil || err.Error() != prefix+tc.msg {
				t.Errorf("ValidateRegistration = %v", err)
			}
		})
	}
}

func TestRegistrationNeedsAdmin(t *testing.T) {
	core := newCore(t, openhimtest.WithUser("clerk@example.org", "pw", openhimtest.NotAdmin()))
	cfg := coreConfig(core)
	cfg.Username, cfg.Password = "clerk@example.org", "pw"
	reg, err := openhim.BuildRegistration(cfg, "1.0.0", openhim.Sources("cht"))
	if err != nil {
		t.Fatal(err)
	}
	err = newClient(t, cfg).Register(testContext(t), reg)
	var apiErr *openhim.APIError
	if !errors.Is(err, openhim.ErrForbidden) || !errors.As(err, &apiErr) ||
		apiErr.Body != "User clerk@example.org is not an admin, API access to addMediator denied." {
		t.Fatalf("Register = %v, want 403 with the core's message", err)
	}
}

func TestReRegistration(t *testing.T) {
	core := newCore(t)
	cfg := coreConfig(core)
	client := newClient(t, cfg)
	register := func(version, description string) {
		t.Helper()
		c := cfg
		c.Description = description
		reg, err := openhim.BuildRegistration(c, version, openhim.Sources("cht"))
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Register(testContext(t), reg); err != nil {
			t.Fatalf("Register %s: %v", version, err)
		}
	}
	description := func() string {
		m, _ := core.Mediator(cfg.URN)
		return m["description"].(string)
	}

	register("1.0.0", "first")
	if err := core.SetConfig(cfg.URN, map[string]any{
		openhim.KeyLogLevel: "debug", openhim.KeyDryRunTargets: []any{"hmis"},
		openhim.KeyDeliveryConcurrency: 0, openhim.KeyBatchSize: 500,
	}); err != nil {
		t.Fatal(err)
	}

	register("1.0.0", "same version")
	if got := description(); got != "first" {
		t.Errorf("same version changed the mediator: description %q", got)
	}
	register("0.9.0", "lower version")
	if got := description(); got != "first" {
		t.Errorf("lower version changed the mediator: description %q", got)
	}
	register("1.1.0", "higher version")
	if got := description(); got != "higher version" {
		t.Errorf("higher version did not update: description %q", got)
	}
	m, _ := core.Mediator(cfg.URN)
	conf := m["config"].(map[string]any)
	if conf[openhim.KeyLogLevel] != "debug" || conf[openhim.KeyBatchSize] != float64(500) {
		t.Errorf("console-edited config lost on upgrade: %v", conf)
	}
	for _, r := range core.Registrations() {
		if r.Status != http.StatusCreated {
			t.Errorf("registration answered %d, want 201 every time", r.Status)
		}
	}
}

func TestBuildRegistrationErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func() openhim.Config
		version string
		sources []openhim.Source
		want    string
	}{
		{"bad version", openhim.DefaultConfig, "1.2", openhim.Sources(), "not SemVer"},
		{"no sources", openhim.DefaultConfig, "1.0.0", nil, "at least one source"},
		{"duplicate source", openhim.DefaultConfig, "1.0.0", openhim.Sources("cht", "cht"), "listed twice"},
		{"bad source name", openhim.DefaultConfig, "1.0.0", openhim.Sources("c h t"), "source name"},
		{"placeholder path", openhim.DefaultConfig, "1.0.0",
			[]openhim.Source{{Name: "x", Path: "/ingest/{source}"}}, "placeholders"},
		{"bad urn", func() openhim.Config { c := openhim.DefaultConfig(); c.URN = "tally"; return c },
			"1.0.0", openhim.Sources(), "openhim.urn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openhim.RegistrationJSON(tc.cfg(), tc.version, tc.sources)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNormalizeVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "1.2.3", "1.2.3": "1.2.3", "": "0.0.0-dev",
		"(devel)": "0.0.0-dev", "0.3.0-5-gabc123": "0.3.0-5-gabc123"} {
		if got, err := openhim.NormalizeVersion(in); err != nil || got != want {
			t.Errorf("NormalizeVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseOverrides(t *testing.T) {
	// The registered defaults mean "no override".
	o, err := openhim.ParseOverrides(map[string]any{
		openhim.KeyLogLevel: "default", openhim.KeyDryRunTargets: []any{},
		openhim.KeyDeliveryConcurrency: float64(0), openhim.KeyBatchSize: float64(0), "future_key": true,
	})
	if err != nil || o.LogLevel != nil || !o.LogLevelDefault || o.DryRunTargets != nil || o.DeliveryConcurrency != nil || o.BatchSize != nil {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	// "default" restores the configured level after an operator's earlier choice.
	if got := o.LogLevelOr(slog.LevelWarn); got != slog.LevelWarn {
		t.Errorf("LogLevelOr(WARN) with \"default\" = %v", got)
	}
	o, err = openhim.ParseOverrides(map[string]any{
		openhim.KeyLogLevel: "debug", openhim.KeyDryRunTargets: []any{"hmis", " "},
		openhim.KeyDeliveryConcurrency: float64(8), openhim.KeyBatchSize: float64(250),
	})
	if err != nil || o.LogLevel == nil || o.LogLevel.String() != "DEBUG" || o.LogLevelDefault || len(o.DryRunTargets) != 1 ||
		*o.DeliveryConcurrency != 8 || *o.BatchSize != 250 || o.LogLevelOr(slog.LevelWarn) != slog.LevelDebug {
		t.Fatalf("overrides: %+v, %v", o, err)
	}
	// A config without log_level says nothing about it: neither a level nor "default".
	if o, err := openhim.ParseOverrides(map[string]any{openhim.KeyDeliveryConcurrency: float64(64)}); err != nil ||
		o.LogLevel != nil || o.LogLevelDefault || *o.DeliveryConcurrency != 64 {
		t.Errorf("without log_level: %+v, %v", o, err)
	}
	_, err = openhim.ParseOverrides(map[string]any{openhim.KeyBatchSize: 2.5, openhim.KeyLogLevel: "loud",
		openhim.KeyDeliveryConcurrency: float64(65)})
	for _, key := range []string{"batch_size", "log_level", "delivery_concurrency"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("invalid overrides: err = %v, want %s named", err, key)
		}
	}
	if _, err := openhim.ParseOverrides(map[string]any{openhim.KeyLogLevel: 3.0}); err == nil || !strings.Contains(err.Error(), "log_level") {
		t.Errorf("numeric log_level: err = %v", err)
	}
}

// validBody is the default registration as the core receives it (decoded JSON).
func validBody(t *testing.T) map[string]any {
	t.Helper()
	b, err := openhim.RegistrationJSON(openhim.DefaultConfig(), "1.0.0", openhim.Sources("cht"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func obj(list any, i int) map[string]any         { return list.([]any)[i].(map[string]any) }
func def(m map[string]any, i int) map[string]any { return obj(m["configDefs"], i) }
func cfg(m map[string]any) map[string]any        { return m["config"].(map[string]any) }
func addDef(m map[string]any, d map[string]any) {
	m["configDefs"] = append(m["configDefs"].([]any), d)
}
