package checks

import (
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// freeFormValues are values whose content is not the chart's to list (Tally's configuration,
// Kubernetes objects passed through): the README documents them as one row.
var freeFormValues = map[string]bool{
	"config": true, "files": true, "credentials.env": true, "podSecurityContext": true,
	"securityContext": true, "resources": true, "livenessProbe": true, "readinessProbe": true,
	"startupProbe": true,
}

// valuePaths lists the documented paths of values.yaml: every leaf, and free-form values whole.
func valuePaths(prefix string, v any, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 || freeFormValues[prefix] {
		*out = append(*out, prefix)
		return
	}
	for _, k := range keys(m) {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		valuePaths(p, m[k], out)
	}
}

// TestChartReadme checks charts/tally/README.md: it says how to install, upgrade and test; its
// values table has a row for every value of values.yaml and none for a value that is gone;
// and every YAML example renders with the chart (schema and checks included).
func TestChartReadme(t *testing.T) {
	readme := string(readRepoFile(t, "charts/tally/README.md"))
	for _, h := range []string{"## Install", "## Upgrading", "## Examples", "## Values"} {
		if !strings.Contains(readme, "\n"+h+"\n") {
			t.Errorf("README.md has no %q section", h)
		}
	}
	for _, cmd := range []string{"helm install tally charts/tally", "helm upgrade tally charts/tally", "helm test tally"} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("README.md does not show %q", cmd)
		}
	}
	var values map[string]any
	if err := yaml.Unmarshal(readRepoFile(t, "charts/tally/values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	var paths []string
	valuePaths("", values, &paths)
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(readme, -1) {
		rows[m[1]] = true
	}
	for _, p := range paths {
		if !rows[p] {
			t.Errorf("README.md's values table has no row for %s", p)
		}
		delete(rows, p)
	}
	for _, p := range keys(rows) {
		if p != "podDisruptionBudget.minAvailable" {
			t.Errorf("README.md documents %s, which values.yaml does not have", p)
		}
	}
	// The examples, each on top of the defaults, as `helm install -f example.yaml` would.
	examples := readme[strings.Index(readme, "## Examples"):strings.Index(readme, "## Values")]
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(examples, -1)
	if len(blocks) < 4 {
		t.Fatalf("%d YAML examples: want at least 4 (external NATS, Ingress, NetworkPolicy, a secret)", len(blocks))
	}
	for i, b := range blocks {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(b[1]), &v); err != nil {
			t.Errorf("example %d is not YAML: %v\n%s", i+1, err, b[1])
			continue
		}
		if _, err := render(t, v); err != nil {
			t.Errorf("example %d does not render: %v\n%s", i+1, err, b[1])
		}
	}
}

// TestChartNotes checks that NOTES.txt tells the next steps truthfully for the values given:
// how to wait for readiness and run the test hook, the port-forward to the Service's port,
// where the admin token is (the Secret and key that config admin.token's ${VAR} maps to),
// the Ingress URLs, and the NetworkPolicy's effect.
func TestChartNotes(t *testing.T) {
	m := mustRender(t, nil)
	for _, want := range []string{
		"kubectl -n hmis rollout status deployment/tally",
		"helm test tally -n hmis --logs",
		"kubectl -n hmis port-forward svc/tally 8080:8080",
		"curl -s http://127.0.0.1:8080/readyz",
		`key "admin-token" of Secret "tally-credentials"`,
		"kubectl -n hmis get secret tally-credentials -o jsonpath='{.data.admin-token}' | base64 -d",
	} {
		if !strings.Contains(m.notes, want) {
			t.Errorf("NOTES.txt does not say %q:\n%s", want, m.notes)
		}
	}
	for _, c := range []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"another variable and key", map[string]any{
			"credentials": map[string]any{"env": map[string]any{"TALLY_ADMIN_TOKEN": nil, "ADMIN": "tally.admin"}},
			"config":      map[string]any{"admin": map[string]any{"token": "${ADMIN}"}}},
			[]string{`key "tally.admin" of Secret "tally-credentials"`, `jsonpath='{.data.tally\.admin}'`}},
		{"no admin token", map[string]any{"config": map[string]any{"admin": nil}},
			[]string{"config.admin.token is not set: the admin API (/admin/v1, tally tx|dlq|exchange) answers 403"}},
		{"a literal admin token", map[string]any{"config": map[string]any{"admin": map[string]any{"token": "0123456789abcdef0123"}}},
			[]string{"WARNING: config.admin.token is written in the values"}},
		{"ingress", map[string]any{"ingress": map[string]any{"enabled": true, "hosts": []any{"a.example.org", "b.example.org"},
			"tls": []any{map[string]any{"secretName": "t", "hosts": []any{"a.example.org"}}}}},
			[]string{"https://a.example.org/ingest/<source>", "http://b.example.org/ingest/<source>", "WARNING: some hosts have no TLS"}},
		{"network policy", map[string]any{"networkPolicy": map[string]any{"enabled": true, "ingressFrom": []any{}}},
			[]string{"Tally may reach DNS, 0.0.0.0/0 on 443", "WARNING: networkPolicy.ingressFrom is empty"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := mustRender(t, c.values)
			for _, want := range c.want {
				if !strings.Contains(m.notes, want) {
					t.Errorf("NOTES.txt does not say %q:\n%s", want, m.notes)
				}
			}
		})
	}
	if strings.Contains(m.notes, "WARNING") {
		t.Errorf("NOTES.txt warns with the chart's defaults:\n%s", m.notes)
	}
}
