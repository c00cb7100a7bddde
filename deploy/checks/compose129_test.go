package checks

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Debian (bookworm) and Ubuntu ship docker-compose 1.29.2, which reads a file without a
// version: key with its own copy of the compose specification, older than the one compose-go
// and Compose v2 use. What it accepts is below, taken from that copy:
// compose/config/compose_spec.json of docker-compose 1.29.2 (Debian package docker-compose
// 1.29.2-3, /usr/lib/python3/dist-packages/compose/config/compose_spec.json; upstream
// docker/compose, branch 1.29.x). Every object there has "additionalProperties": false, so a
// key it does not list is an error such as "'name' does not match any of the regexes: '^x-'"
// (the message users of Debian's package report, e.g. gematik/epa-deployment#36). Keys that
// newer Compose knows and 1.29 refuses include the top-level name:, host_ip and name in the
// long port syntax, build ssh/secrets/tags/platforms/additional_contexts, healthcheck
// start_interval, depends_on restart/required, develop, and env_file entries with required:.

// composeShape is the part of 1.29's schema a key's value must fit.
type composeShape struct {
	keys  map[string]*composeShape // the keys an object may have (nil shape: any value)
	ext   bool                     // x- keys are allowed too
	named *composeShape            // an object of user-chosen names, each of this shape
	items *composeShape            // the object items of a list (long syntax); strings pass
	enum  []string                 // the values a string may take
}

// any1 is a value 1.29 checks no further than its type (or not at all) here.
var any1 *composeShape

func keySet(ext bool, names ...string) *composeShape {
	s := &composeShape{keys: map[string]*composeShape{}, ext: ext}
	for _, n := range names {
		s.keys[n] = any1
	}
	return s
}

func (s *composeShape) with(key string, v *composeShape) *composeShape {
	s.keys[key] = v
	return s
}

// compose129 is docker-compose 1.29.2's compose_spec.json, as far as the keys go.
var compose129 = func() *composeShape {
	service := keySet(true,
		"blkio_config", "build", "cap_add", "cap_drop", "cgroup_parent", "command", "configs",
		"container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
		"cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on", "deploy",
		"device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint",
		"env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "group_add",
		"healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels", "links", "logging",
		"mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
		"network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit",
		"platform", "ports", "privileged", "profiles", "pull_policy", "read_only", "restart",
		"runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open",
		"stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits",
		"user", "userns_mode", "volumes", "volumes_from", "working_dir")
	service.
		with("build", keySet(true, "context", "dockerfile", "args", "labels", "cache_from", "network",
			"target", "shm_size", "extra_hosts", "isolation")).
		with("healthcheck", keySet(true, "disable", "interval", "retries", "test", "timeout", "start_period")).
		with("depends_on", &composeShape{named: keySet(false).with("condition",
			&composeShape{enum: []string{"service_started", "service_healthy", "service_completed_successfully"}})}).
		with("ports", &composeShape{items: keySet(true, "mode", "target", "published", "protocol")}).
		with("volumes", &composeShape{items: keySet(true, "type", "source", "target", "read_only", "consistency").
			with("bind", keySet(true, "propagation")).
			with("volume", keySet(true, "nocopy")).
			with("tmpfs", keySet(true, "size"))}).
		with("logging", keySet(true, "driver", "options")).
		with("networks", &composeShape{named: keySet(true, "aliases", "ipv4_address", "ipv6_address", "link_local_ips", "priority")})
	return keySet(true, "version").
		with("services", &composeShape{named: service}).
		with("volumes", &composeShape{named: keySet(true, "driver", "driver_opts", "external", "labels", "name")}).
		with("networks", &composeShape{named: keySet(true, "attachable", "driver", "driver_opts", "enable_ipv6", "external", "internal", "ipam", "labels", "name")}).
		with("secrets", &composeShape{named: keySet(true, "driver", "driver_opts", "external", "file", "labels", "name", "template_driver")}).
		with("configs", &composeShape{named: keySet(true, "external", "file", "labels", "name", "template_driver")})
}()

// check reports every key or value of v that 1.29 refuses, with its path.
func (s *composeShape) check(path string, v any, report func(path, msg string)) {
	if s == nil {
		return
	}
	m, isMap := v.(map[string]any)
	switch {
	case len(s.enum) > 0:
		if str, ok := v.(string); ok && !contains(s.enum, str) {
			report(path, "value "+str+" is not one of "+strings.Join(s.enum, ", "))
		}
	case s.named != nil && isMap:
		for _, k := range keys(m) {
			if !(s.ext && strings.HasPrefix(k, "x-")) {
				s.named.check(path+"."+k, m[k], report)
			}
		}
	case s.items != nil:
		if list, ok := v.([]any); ok {
			for i, it := range list {
				if _, obj := it.(map[string]any); obj {
					s.items.check(path+"["+strconv.Itoa(i)+"]", it, report)
				}
			}
		}
	case s.keys != nil && isMap:
		for _, k := range keys(m) {
			sub, known := s.keys[k]
			switch {
			case s.ext && strings.HasPrefix(k, "x-"):
			case !known:
				report(strings.TrimPrefix(path+"."+k, "."), "docker-compose 1.29 does not know this key")
			default:
				sub.check(strings.TrimPrefix(path+"."+k, "."), m[k], report)
			}
		}
	}
}

// compose129Interpolation is what 1.29's TemplateWithDefaults (compose/config/interpolation.py)
// accepts after a '$': another '$', a name, or a braced name with an optional :-, -, :? or ?
// and a word without '}'. Anything else (${VAR:+alt}, nested ${A:-${B}}, ${}) is an
// "Invalid interpolation format" there.
var compose129Interpolation = regexp.MustCompile(`^\$(?:\$|[_a-zA-Z][_a-zA-Z0-9]*|\{[_a-zA-Z][_a-zA-Z0-9]*(?::?[-?][^}$]*)?\})`)

// TestCompose129Accepts checks docker-compose.yml against what Debian's docker-compose 1.29
// accepts: every key, after YAML anchors and merges are resolved as PyYAML resolves them, is
// one its schema lists, depends_on conditions are ones it knows, and every '$' is an
// interpolation it can read.
func TestCompose129Accepts(t *testing.T) {
	raw := readRepoFile(t, "docker-compose.yml")
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var problems []string
	compose129.check("", doc, func(path, msg string) { problems = append(problems, path+": "+msg) })
	for i, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for j := strings.IndexByte(line, '$'); j >= 0; {
			m := compose129Interpolation.FindString(line[j:])
			if m == "" {
				problems = append(problems, "line "+strconv.Itoa(i+1)+": "+line[j:]+": not an interpolation docker-compose 1.29 reads")
				m = "$"
			}
			next := strings.IndexByte(line[j+len(m):], '$')
			if next < 0 {
				break
			}
			j += len(m) + next
		}
	}
	for _, p := range problems {
		t.Error(p)
	}

	// The check itself: what 1.29 is known to refuse is refused.
	for _, bad := range []string{
		"name: tally\nservices: {}\n",
		"services: {a: {image: x, ports: [{target: 80, published: 8080, host_ip: 127.0.0.1}]}}\n",
		"services: {a: {image: x, healthcheck: {test: [CMD, x], start_interval: 1s}}}\n",
		"services: {a: {image: x, depends_on: {b: {condition: service_started, required: false}}}, b: {image: x}}\n",
		"services: {a: {image: x, depends_on: {b: {condition: service_ready}}}, b: {image: x}}\n",
		"services: {a: {image: x, develop: {watch: []}}}\n",
	} {
		var d map[string]any
		if err := yaml.Unmarshal([]byte(bad), &d); err != nil {
			t.Fatal(err)
		}
		n := 0
		compose129.check("", d, func(string, string) { n++ })
		if n == 0 {
			t.Errorf("the 1.29 check accepts %q, which docker-compose 1.29 refuses", bad)
		}
	}
}

// TestCompose129Binary runs docker-compose 1.x itself, when it is installed (Debian:
// apt-get install docker-compose; `config` reads and validates the file without a container
// engine): it must accept the production and the demo reading and refuse .env.example as it
// is, for its secrets are empty.
func TestCompose129Binary(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose (1.x) is not installed (apt-get install docker-compose); TestCompose129Accepts checks its schema")
	}
	out, err := exec.Command(bin, "version", "--short").CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "1.") {
		t.Skipf("docker-compose on PATH is not 1.x (%s): Compose v2 is checked through compose-go", strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	write := func(name string, env map[string]string) string {
		var b strings.Builder
		for _, k := range keys(env) {
			b.WriteString(k + "=" + env[k] + "\n")
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(envFile string, profiles ...string) (string, error) {
		args := []string{"--project-directory", root(t), "-f", repoPath(t, "docker-compose.yml"), "--env-file", envFile}
		for _, p := range profiles {
			args = append(args, "--profile", p)
		}
		cmd := exec.Command(bin, append(args, "config", "-q")...)
		// Only the env file: not this machine's variables (compose lets them win over the file).
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := run(write("production.env", productionReading(t).env)); err != nil {
		t.Errorf("docker-compose 1.29 refuses the production reading: %v\n%s", err, out)
	}
	if out, err := run(repoPath(t, "deploy/compose/demo.env"), "demo"); err != nil {
		t.Errorf("docker-compose 1.29 refuses the demo reading: %v\n%s", err, out)
	}
	if out, err := run(repoPath(t, ".env.example")); err == nil || !strings.Contains(out, "in .env (see .env.example)") {
		t.Errorf("docker-compose 1.29 with .env.example as it is: %v\n%s\nwant a refusal naming the missing secret", err, out)
	}
}
