package checks

import (
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
)

// TestChartConfigTypos: a misspelt key anywhere under config: fails the install with Helm's
// schema validation (values.schema.json), naming the key, instead of rendering a file Tally
// refuses at start (or, before, a key silently ignored).
func TestChartConfigTypos(t *testing.T) {
	target := func(extra map[string]any) map[string]any {
		tg := map[string]any{"name": "hmis", "url": "https://hmis.example.org", "token": "${HMIS_PAT}"}
		for k, v := range extra {
			tg[k] = v
		}
		return map[string]any{"targets": []any{tg}}
	}
	for _, c := range []struct {
		name   string
		config map[string]any
		key    string
	}{
		{"top level", map[string]any{"sorces": []any{}}, "sorces"},
		{"delivery", map[string]any{"delivery": map[string]any{"upgrade_wiat": "10m"}}, "upgrade_wiat"},
		{"http", map[string]any{"http": map[string]any{"store_timout": "30s"}}, "store_timout"},
		{"a target", target(map[string]any{"retyr": map[string]any{}}), "retyr"},
		{"a target's retry", target(map[string]any{"retry": map[string]any{"max_attempt": 3}}), "max_attempt"},
		{"an exchange's source", map[string]any{"exchanges": []any{map[string]any{"name": "x",
			"source": map[string]any{"url": "https://tracker.example.org", "rety": map[string]any{}}}}}, "rety"},
		{"openhim.route", map[string]any{"openhim": map[string]any{"route": map[string]any{"hots": "tally"}}}, "hots"},
		{"notify webhooks", map[string]any{"notify": map[string]any{"webhooks": []any{map[string]any{"name": "w", "url": "https://x", "header": map[string]any{}}}}}, "header"},
		{"a mapping rule", map[string]any{"mappings": []any{map[string]any{"name": "m", "rules": []any{map[string]any{"source": "A", "dataelement": "B"}}}}}, "dataelement"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, map[string]any{"config": c.config})
			if err == nil {
				t.Fatalf("the chart renders config %v: want a schema error naming %q", c.config, c.key)
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") && !strings.Contains(err.Error(), "additional properties") ||
				!strings.Contains(err.Error(), c.key) {
				t.Errorf("error %q: want Helm's schema validation naming %q", err, c.key)
			}
		})
	}
	// The keys added since the first release are accepted, and Tally takes the result.
	m := mustRender(t, map[string]any{"config": map[string]any{
		"http":     map[string]any{"store_timeout": "45s"},
		"delivery": map[string]any{"ack_wait": "3m", "upgrade_wait": "15m", "probe_interval": "10s"},
		"sources": []any{map[string]any{"name": "cht", "format": "auto", "auth": map[string]any{"tokens": []any{"${CHT_TOKEN}"}},
			"org_units": map[string]any{"keep": "all"}, "targets": []any{"hmis"}}},
	}})
	_, c := podChecks(t, m, 1)
	cfg, _ := chartConfig(t, m, c)
	if cfg.Delivery.UpgradeWait.D().String() != "15m0s" || cfg.Delivery.ProbeInterval.D().String() != "10s" || cfg.HTTP.StoreTimeout.D().String() != "45s" {
		t.Errorf("delivery %+v http %+v: the new keys do not reach Tally", cfg.Delivery, cfg.HTTP)
	}
}

// probeKey is a key no Tally section has, far (edit distance) from every real one, so that
// Tally's unknown-key problem lists the keys it knows instead of suggesting one.
const probeKey = "zzzz_not_a_tally_key"

// tallyKeys asks Tally's own loader — config.Parse and mediator.CheckConfig, as `tally config
// validate` and `tally serve` do — which keys it accepts at path (segments: a key, or "[]"
// for an element of a list). ok is false when Tally does not check keys there (a scalar, a
// list of scalars, a free-form map).
func tallyKeys(t *testing.T, path []string) (known []string, ok bool) {
	t.Helper()
	var doc any = map[string]any{probeKey: 1}
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == "[]" {
			doc = []any{doc}
		} else {
			doc = map[string]any{path[i]: doc}
		}
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("probe.yaml", data, func(string) string { return "stand-in" })
	var probs config.Problems
	if err != nil && !errors.As(err, &probs) {
		t.Fatalf("Tally cannot read %s: %v", data, err)
	}
	if cfg != nil {
		_, more := mediator.CheckConfig(cfg)
		probs = append(probs, more...)
	}
	want := joinConfigPath(append(append([]string{}, path...), probeKey))
	for _, p := range probs {
		if p.Path != want {
			continue
		}
		m := regexp.MustCompile(`known keys: ([a-z0-9_, ]+)$`).FindStringSubmatch(p.Msg)
		if m == nil {
			t.Fatalf("Tally refuses %s with %q, which no longer lists the keys it knows: update tallyKeys", want, p.Msg)
		}
		return strings.Split(m[1], ", "), true
	}
	return nil, false
}

// joinConfigPath writes a path as Tally's problems do: targets[0].retry.max_attempts.
func joinConfigPath(path []string) string {
	var b strings.Builder
	for _, s := range path {
		switch {
		case s == "[]":
			b.WriteString("[0]")
		case b.Len() > 0:
			b.WriteString("." + s)
		default:
			b.WriteString(s)
		}
	}
	return b.String()
}

// jsonSchema is values.schema.json, with its definitions for $ref.
type jsonSchema struct {
	root map[string]any
}

func loadValuesSchema(t *testing.T) jsonSchema {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(readRepoFile(t, "charts/tally/values.schema.json"), &root); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	return jsonSchema{root: root}
}

// resolve follows a local $ref.
func (s jsonSchema) resolve(node any) map[string]any {
	m, _ := node.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = s.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cm, _ := cur.(map[string]any)
			cur = cm[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m
}

// object is the branch of node that describes an object by its properties: node itself, or
// one of its oneOf/anyOf alternatives (org_units: "same" or an object).
func (s jsonSchema) object(node any) map[string]any {
	m := s.resolve(node)
	if m == nil {
		return nil
	}
	if _, ok := m["properties"]; ok {
		return m
	}
	for _, k := range []string{"oneOf", "anyOf"} {
		alts, _ := m[k].([]any)
		for _, a := range alts {
			if o := s.object(a); o != nil {
				return o
			}
		}
	}
	return nil
}

// TestChartConfigSchemaMirrorsTally walks Tally's configuration as Tally's own loader knows it
// (tallyKeys) and values.schema.json's config side by side: wherever Tally checks keys, the
// schema lists exactly those keys and refuses others (additionalProperties: false), so a key
// Tally refuses fails `helm install`, and a key Tally accepts is never refused by the chart.
// A key added to Tally (config/config.go, or a section another package owns) fails this test
// until the schema has it.
func TestChartConfigSchemaMirrorsTally(t *testing.T) {
	s := loadValuesSchema(t)
	props, _ := s.root["properties"].(map[string]any)
	top, _ := tallyKeys(t, nil)
	for _, want := range []string{"http", "nats", "admin", "sources", "targets", "mappings", "exchanges", "openhim", "notify", "log", "delivery"} {
		if !contains(top, want) {
			t.Errorf("Tally does not know the top-level key %s", want)
		}
	}
	objects := 0
	var mirror func(node any, path []string)
	mirror = func(node any, path []string) {
		where := "config"
		if len(path) > 0 {
			where += "." + joinConfigPath(path)
		}
		known, _ := tallyKeys(t, path)
		obj := s.object(node)
		if obj == nil {
			t.Errorf("%s: Tally checks its keys (%v); the schema does not describe it as an object with properties", where, known)
			return
		}
		objects++
		if ap, ok := obj["additionalProperties"].(bool); !ok || ap {
			t.Errorf("%s: the schema accepts unknown keys: set additionalProperties: false", where)
		}
		schemaProps, _ := obj["properties"].(map[string]any)
		for _, k := range known {
			if _, ok := schemaProps[k]; !ok {
				t.Errorf("%s.%s: Tally accepts it, the schema refuses it", where, k)
			}
		}
		for _, k := range keys(schemaProps) {
			if !contains(known, k) {
				t.Errorf("%s.%s: the schema accepts it, Tally refuses it (it knows %v)", where, k, known)
			}
		}
		for _, k := range known {
			sub := append(append([]string{}, path...), k)
			child := schemaProps[k]
			if child == nil {
				continue
			}
			if _, isObject := tallyKeys(t, sub); isObject {
				mirror(child, sub)
				continue
			}
			if _, isList := tallyKeys(t, append(sub, "[]")); isList {
				items := s.resolve(child)["items"]
				if items == nil {
					t.Errorf("%s.%s: a list of objects in Tally, not an array in the schema", where, k)
					continue
				}
				mirror(items, append(sub, "[]"))
				continue
			}
			if o := s.object(child); o != nil {
				if ap, ok := o["additionalProperties"].(bool); ok && !ap {
					t.Errorf("%s.%s: the schema closes it to keys %v, but Tally takes any value there", where, k, keys(o["properties"].(map[string]any)))
				}
			}
		}
	}
	mirror(props["config"], nil)
	if objects < 20 {
		t.Errorf("only %d objects compared: the walk did not reach the nested sections", objects)
	}
	t.Logf("%d objects of Tally's configuration compared with the schema", objects)
}

// TestChartSchemaRefusesUnknownValues: a misspelt top-level value or one under a nested value
// of the chart fails too (the existing "a typo in values" case covers the top level).
func TestChartSchemaRefusesUnknownValues(t *testing.T) {
	for _, v := range []map[string]any{
		{"ingress": map[string]any{"enable": true}},
		{"networkPolicy": map[string]any{"egress": map[string]any{"target": map[string]any{}}}},
		{"tests": map[string]any{"image": map[string]any{"tags": "1"}}},
	} {
		if _, err := render(t, v); err == nil {
			b, _ := json.Marshal(v)
			t.Errorf("values %s render: want a schema error", b)
		}
	}
	var names []string
	for k := range loadValuesSchema(t).root["properties"].(map[string]any) {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, want := range []string{"ingress", "networkPolicy", "tests"} {
		if !contains(names, want) {
			t.Errorf("values.schema.json has no %s", want)
		}
	}
}
