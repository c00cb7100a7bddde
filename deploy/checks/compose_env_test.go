package checks

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// composeVarRef is one ${...} interpolation in docker-compose.yml.
type composeVarRef struct {
	text string // as written, ${NAME:?message}
	name string
	op   string // "", ":-", "-", ":?" or "?"
	word string // the default or the error message
	line int
}

// composeVarRefs lists every ${...} of docker-compose.yml as written (before YAML parsing, so
// anchors count once, where they are written).
func composeVarRefs(t testing.TB) []composeVarRef {
	t.Helper()
	var out []composeVarRef
	ref := regexp.MustCompile(`\$\{([^}]*)\}`)
	inner := regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?$`)
	for i, line := range strings.Split(string(readRepoFile(t, "docker-compose.yml")), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range ref.FindAllStringSubmatch(line, -1) {
			r := composeVarRef{text: m[0], line: i + 1}
			if parts := inner.FindStringSubmatch(m[1]); parts != nil {
				r.name, r.op, r.word = parts[1], parts[2], parts[3]
			}
			out = append(out, r)
		}
	}
	return out
}

// secretName says which variables hold secrets: they must never have a default in the file.
var secretName = regexp.MustCompile(`(?i)(token|password|passwd|secret|_key$|_pat$)`)

// TestComposeSecretsFromEnvFile checks that docker-compose.yml holds no secret: every secret
// is a required variable (${VAR:?...}: compose refuses to start while it is unset or empty)
// that .env.example lists with an empty value; every variable the file uses is in
// .env.example and in the demo's env file; and compose v2 refuses .env.example as it is,
// naming each missing secret.
func TestComposeSecretsFromEnvFile(t *testing.T) {
	refs := composeVarRefs(t)
	example := readEnvFile(t, ".env.example")
	demo := readEnvFile(t, "deploy/compose/demo.env")
	secrets := map[string]bool{}
	for _, r := range refs {
		if r.name == "" {
			t.Errorf("docker-compose.yml:%d: %s is not a variable reference compose understands", r.line, r.text)
			continue
		}
		if secretName.MatchString(r.name) {
			secrets[r.name] = true
			if r.op != ":?" {
				t.Errorf("docker-compose.yml:%d: secret %s is %s: write ${%s:?message}, so that compose refuses to start without it and the file holds no fallback", r.line, r.name, r.text, r.name)
			}
		}
		if _, ok := example[r.name]; !ok {
			t.Errorf("docker-compose.yml:%d uses %s, which .env.example does not list", r.line, r.name)
		}
		if v, ok := demo[r.name]; !ok || v == "" && r.op == ":?" {
			t.Errorf("docker-compose.yml:%d uses %s, which deploy/compose/demo.env does not set", r.line, r.name)
		}
	}
	if len(secrets) == 0 {
		t.Fatal("docker-compose.yml uses no secret variable: the checks below would pass vacuously")
	}
	for name, v := range example {
		if secretName.MatchString(name) && v != "" {
			t.Errorf(".env.example gives %s a value: leave every secret empty, so that an operator must choose one", name)
		}
	}
	if example["COMPOSE_PROJECT_NAME"] == "" || example["COMPOSE_PROJECT_NAME"] != demo["COMPOSE_PROJECT_NAME"] {
		t.Errorf("COMPOSE_PROJECT_NAME %q (.env.example) and %q (demo.env): the file has no top-level name:, so both must name the project, the same way",
			example["COMPOSE_PROJECT_NAME"], demo["COMPOSE_PROJECT_NAME"])
	}

	// .env.example as it is, and a filled one missing one secret: compose v2 refuses both.
	if _, err := loadComposeWith(t, example); err == nil {
		t.Errorf("compose loads .env.example with its secrets empty: want a refusal")
	}
	names := keys(secrets)
	for _, name := range names {
		env := filledEnvExample(t)
		delete(env, name)
		_, err := loadComposeWith(t, env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s compose says %v: want a refusal that names it", name, err)
		}
	}
}

// TestComposeDemoOnly checks what only the demo has: the emulator runs only under the demo
// profile and nothing else depends on it, and the well-known demo secrets (Grafana's
// admin/admin among them) live in deploy/compose/demo.env and nowhere in what an operator
// runs.
func TestComposeDemoOnly(t *testing.T) {
	prod, demo := loadCompose(t), loadReading(t, demoReading(t))
	if _, ok := prod.Services["dhis2-sim"]; ok {
		t.Errorf("dhis2-sim runs without --profile demo")
	}
	if _, ok := demo.Services["dhis2-sim"]; !ok {
		t.Errorf("dhis2-sim does not run with --profile demo")
	}
	for name, s := range demo.Services {
		if len(s.Profiles) > 0 {
			continue
		}
		for dep := range s.DependsOn {
			if len(demo.Services[dep].Profiles) > 0 {
				t.Errorf("%s (every profile) depends on %s (profiles %v): compose refuses the file without those profiles", name, dep, demo.Services[dep].Profiles)
			}
		}
	}
	demoEnv := readEnvFile(t, "deploy/compose/demo.env")
	if got := envOf(demo, "grafana", "GF_SECURITY_ADMIN_PASSWORD"); got != demoEnv["GRAFANA_ADMIN_PASSWORD"] {
		t.Errorf("the demo's Grafana password is %q: want demo.env's", got)
	}
	prodEnv := productionReading(t).env
	for name, s := range prod.Services {
		for k, v := range s.Environment {
			if v == nil || !secretName.MatchString(k) {
				continue
			}
			if *v == demoEnv[k] || *v == "admin" {
				t.Errorf("%s: %s is %q without the demo env file", name, k, *v)
			}
		}
	}
	if got := envOf(prod, "grafana", "GF_SECURITY_ADMIN_PASSWORD"); got != prodEnv["GRAFANA_ADMIN_PASSWORD"] {
		t.Errorf("Grafana's admin password is %q: want GRAFANA_ADMIN_PASSWORD from .env", got)
	}
}

func envOf(p *types.Project, service, name string) string {
	if v := p.Services[service].Environment[name]; v != nil {
		return *v
	}
	return ""
}

// TestComposePortsOnLoopback checks that every published port is bound to 127.0.0.1 in both
// readings and when the env file does not mention TALLY_BIND_ADDRESS, and that
// TALLY_BIND_ADDRESS moves all of them together.
func TestComposePortsOnLoopback(t *testing.T) {
	unset := filledEnvExample(t)
	delete(unset, "TALLY_BIND_ADDRESS")
	moved := filledEnvExample(t)
	moved["TALLY_BIND_ADDRESS"] = "192.0.2.10"
	for _, c := range []struct {
		name     string
		env      map[string]string
		profiles []string
		want     string
	}{
		{"production", productionReading(t).env, nil, "127.0.0.1"},
		{"demo", demoReading(t).env, []string{"demo"}, "127.0.0.1"},
		{"TALLY_BIND_ADDRESS unset", unset, []string{"demo"}, "127.0.0.1"},
		{"TALLY_BIND_ADDRESS set", moved, []string{"demo"}, "192.0.2.10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := loadComposeWith(t, c.env, c.profiles...)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			names := serviceNames(p)
			sort.Strings(names)
			for _, name := range names {
				for _, port := range p.Services[name].Ports {
					if port.Published == "" {
						t.Errorf("%s publishes container port %d on a random host port", name, port.Target)
						continue
					}
					n++
					if port.HostIP != c.want {
						t.Errorf("%s publishes %s:%s->%d: want host address %s", name, port.HostIP, port.Published, port.Target, c.want)
					}
				}
			}
			if n == 0 {
				t.Fatal("no published port: nothing was checked")
			}
		})
	}
}
