package checks

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
)

// composeReading is one way an operator runs docker-compose.yml: the variables compose
// interpolates (an env file) and the profiles it enables.
type composeReading struct {
	name     string
	env      map[string]string
	profiles []string
}

// productionReading is `cp .env.example .env`, every empty value filled in: the file as an
// operator runs it, without the demo profile.
func productionReading(t testing.TB) composeReading {
	t.Helper()
	return composeReading{name: "production", env: filledEnvExample(t)}
}

// demoReading is `docker compose --env-file deploy/compose/demo.env --profile demo`.
func demoReading(t testing.TB) composeReading {
	t.Helper()
	return composeReading{name: "demo", env: readEnvFile(t, "deploy/compose/demo.env"), profiles: []string{"demo"}}
}

// readEnvFile parses an env file with compose-go's own .env parser.
func readEnvFile(t testing.TB, rel string) map[string]string {
	t.Helper()
	env, err := dotenv.GetEnvFromFile(map[string]string{}, []string{repoPath(t, rel)})
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return env
}

// productionSettings are the stand-ins for the settings .env.example leaves empty that are not
// secrets and must have a shape (a URL); every other empty value gets a long random-looking
// stand-in, as an operator following the file's advice would write.
var productionSettings = map[string]string{
	"HMIS_URL":      "https://hmis.kalima.example.org",
	"HMIS_USERNAME": "tally",
}

func filledEnvExample(t testing.TB) map[string]string {
	t.Helper()
	env := readEnvFile(t, ".env.example")
	for k, v := range env {
		if v != "" {
			continue
		}
		if s, ok := productionSettings[k]; ok {
			env[k] = s
		} else {
			env[k] = "stand-in-" + strings.ToLower(k) + "-0123456789"
		}
	}
	return env
}

// loadComposeWith loads docker-compose.yml as `docker compose` v2 would, with the
// compose-spec library: schema validation, interpolation with exactly env (not this
// machine's environment, nor a developer's .env), profiles, YAML anchors and merges,
// relative paths resolved against the repository root.
func loadComposeWith(t testing.TB, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	var pairs []string
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{repoPath(t, "docker-compose.yml")},
		cli.WithWorkingDirectory(root(t)),
		cli.WithEnv(pairs),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

func loadReading(t testing.TB, r composeReading) *types.Project {
	t.Helper()
	p, err := loadComposeWith(t, r.env, r.profiles...)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load (%s reading): %v", r.name, err)
	}
	return p
}

// loadCompose is the production reading, the one operators run.
func loadCompose(t testing.TB) *types.Project {
	t.Helper()
	return loadReading(t, productionReading(t))
}

// eachReading runs check as a subtest for the production and the demo reading.
func eachReading(t *testing.T, check func(t *testing.T, r composeReading, p *types.Project)) {
	for _, r := range []composeReading{productionReading(t), demoReading(t)} {
		t.Run(r.name, func(t *testing.T) { check(t, r, loadReading(t, r)) })
	}
}

// tallyServices are the services built from the Dockerfile's tally target.
func tallyServices(p *types.Project) []string {
	var out []string
	for name, s := range p.Services {
		if s.Build != nil && s.Build.Target == "tally" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func serviceNames(p *types.Project) []string { return keys(p.Services) }

// TestComposeReferences checks everything docker-compose.yml points at, in the production and
// the demo reading: services named in depends_on, named volumes, bind-mounted files,
// published ports, images and build targets.
func TestComposeReferences(t *testing.T) {
	eachReading(t, checkComposeReferences)
}

func checkComposeReferences(t *testing.T, r composeReading, p *types.Project) {
	stages := dockerfileStages(t)
	hostPorts := map[string]string{}
	for _, name := range serviceNames(p) {
		s := p.Services[name]
		for dep := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
			}
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("service %s mounts volume %q, which is not declared under volumes:", name, v.Source)
				}
			case types.VolumeTypeBind:
				rel, err := filepath.Rel(root(t), v.Source)
				if err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("service %s bind-mounts %s from outside the repository", name, v.Source)
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %s bind-mounts %s, which does not exist in the repository", name, filepath.ToSlash(rel))
				}
				if !v.ReadOnly {
					t.Errorf("service %s: bind mount %s should be read-only (:ro)", name, filepath.ToSlash(rel))
				}
			}
		}
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, dup := hostPorts[key]; dup {
				t.Errorf("services %s and %s both publish host port %s", other, name, key)
			}
			hostPorts[key] = name
		}
		switch {
		case s.Build != nil:
			if s.Build.Context != root(t) {
				t.Errorf("service %s builds from %s: want the repository root", name, s.Build.Context)
			}
			if df := s.Build.Dockerfile; df != "" && df != "Dockerfile" && df != repoPath(t, "Dockerfile") {
				t.Errorf("service %s builds with %s: want the repository's Dockerfile", name, df)
			}
			if s.Build.Target == "" || !stages[s.Build.Target] {
				t.Errorf("service %s builds target %q, which is not a stage of the Dockerfile (%v)", name, s.Build.Target, keys(stages))
			}
		case s.Image == "":
			t.Errorf("service %s has neither image nor build", name)
		default:
			if !regexp.MustCompile(`^[a-z0-9./_-]+:[A-Za-z0-9._-]+$`).MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest") {
				t.Errorf("service %s: image %q should be pinned to a version tag", name, s.Image)
			}
		}
	}
	want := []string{"nats-1", "nats-2", "nats-3", "prometheus", "grafana"}
	if r.name == "demo" {
		want = append(want, "dhis2-sim")
	}
	for _, w := range want {
		if _, ok := p.Services[w]; !ok {
			t.Errorf("docker-compose.yml runs no %s service", w)
		}
	}
	if n := len(tallyServices(p)); n < 2 {
		t.Errorf("docker-compose.yml runs %d Tally replicas: want at least 2", n)
	}
}

// TestComposeNATSCluster checks the NATS nodes: each loads its mounted configuration with
// NATS's own parser, runs JetStream on a named volume, and routes to every node.
func TestComposeNATSCluster(t *testing.T) {
	eachReading(t, func(t *testing.T, _ composeReading, p *types.Project) { checkNATSCluster(t, p) })
}

func checkNATSCluster(t *testing.T, p *types.Project) {
	var nodes []string
	for _, name := range serviceNames(p) {
		if strings.HasPrefix(p.Services[name].Image, "nats:") {
			nodes = append(nodes, name)
		}
	}
	if len(nodes) != 3 {
		t.Fatalf("NATS nodes %v: want 3", nodes)
	}
	if m := regexp.MustCompile(`^nats:(\d+)\.`).FindStringSubmatch(p.Services[nodes[0]].Image); m == nil || m[1] != "2" {
		t.Errorf("NATS image %s: want a 2.x server", p.Services[nodes[0]].Image)
	}
	for _, name := range nodes {
		s := p.Services[name]
		confPath := ""
		for i, a := range s.Command {
			if a == "--config" || a == "-c" {
				if i+1 < len(s.Command) {
					confPath = s.Command[i+1]
				}
			}
		}
		src := bindSource(s, confPath)
		if src == "" {
			t.Errorf("%s: its --config %q is not a bind-mounted file", name, confPath)
			continue
		}
		for k, v := range s.Environment {
			if v != nil {
				t.Setenv(k, *v)
			}
		}
		opts, err := server.ProcessConfigFile(src)
		if err != nil {
			t.Errorf("%s: %s does not load: %v", name, src, err)
			continue
		}
		if opts.ServerName != name {
			t.Errorf("%s: server_name %q: want the service name", name, opts.ServerName)
		}
		if !opts.JetStream {
			t.Errorf("%s: JetStream is not enabled", name)
		}
		if !volumeBacks(s, opts.StoreDir) {
			t.Errorf("%s: the JetStream store %s is not on a named volume", name, opts.StoreDir)
		}
		if opts.Cluster.Name == "" || opts.Cluster.Port == 0 {
			t.Errorf("%s: no cluster block with a name and a port", name)
		}
		routed := map[string]bool{}
		for _, r := range opts.Routes {
			routed[r.Hostname()] = true
			if r.Port() != strconv.Itoa(opts.Cluster.Port) {
				t.Errorf("%s: route %s does not use the cluster port %d", name, r, opts.Cluster.Port)
			}
		}
		for _, n := range nodes {
			if !routed[n] {
				t.Errorf("%s: no route to %s", name, n)
			}
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable {
			t.Errorf("%s: no health check (Tally waits for service_healthy)", name)
		}
	}
}

// TestComposeTallyConfig parses every Tally configuration that compose mounts with Tally's
// own config package, in the environment compose gives that service, and checks that it fits
// the compose set-up: NATS URLs name compose services, streams are replicated on all three
// nodes, the NATS credentials are the ones the NATS servers accept, and the target is the
// env file's HMIS_URL (in the demo, the emulator).
func TestComposeTallyConfig(t *testing.T) {
	eachReading(t, checkComposeTallyConfig)
}

func checkComposeTallyConfig(t *testing.T, r composeReading, p *types.Project) {
	services := tallyServices(p)
	if len(services) == 0 {
		t.Fatal("no Tally service")
	}
	for _, name := range services {
		s := p.Services[name]
		confPath := flagValue(s.Command, "--config")
		if confPath == "" {
			t.Errorf("%s: command %v has no --config", name, s.Command)
			continue
		}
		src := bindSource(s, confPath)
		if src == "" {
			t.Errorf("%s: --config %s is not a bind-mounted file", name, confPath)
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		cfg, err := config.Parse(src, data, func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s: Tally refuses %s: %v", name, src, err)
			continue
		}
		if host, port, _ := strings.Cut(cfg.HTTP.Addr, ":"); host != "0.0.0.0" && host != "" || port != "8080" {
			t.Errorf("%s: http.addr %q: a container must listen on 0.0.0.0:8080", name, cfg.HTTP.Addr)
		}
		published := false
		for _, port := range s.Ports {
			published = published || port.Target == 8080
		}
		if !published {
			t.Errorf("%s: port 8080 is not published", name)
		}
		// NATS: every server of the cluster, replicas 3, the credentials the servers accept.
		if cfg.NATS.URL == "" {
			t.Errorf("%s: nats.url is empty (embedded server): replicas must share the cluster", name)
		}
		var hosts []string
		for _, u := range strings.Split(cfg.NATS.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil {
				t.Errorf("%s: nats.url %q: %v", name, u, err)
				continue
			}
			hosts = append(hosts, pu.Hostname())
			ns, ok := p.Services[pu.Hostname()]
			if !ok {
				t.Errorf("%s: nats.url names %s, which is not a compose service", name, pu.Hostname())
				continue
			}
			if _, ok := s.DependsOn[pu.Hostname()]; !ok {
				t.Errorf("%s does not depend on %s", name, pu.Hostname())
			}
			checkNATSUser(t, name, ns, cfg.NATS.User, cfg.NATS.Password)
		}
		if len(hosts) != 3 {
			t.Errorf("%s: nats.url lists %d servers: want all 3", name, len(hosts))
		}
		if cfg.NATS.Replicas != 3 {
			t.Errorf("%s: nats.replicas %d: want 3", name, cfg.NATS.Replicas)
		}
		for _, tg := range cfg.Targets {
			if tg.URL != r.env["HMIS_URL"] {
				t.Errorf("%s: target %s points at %s: want HMIS_URL from the env file (%s)", name, tg.Name, tg.URL, r.env["HMIS_URL"])
			}
			u, _ := url.Parse(tg.URL)
			if _, ok := p.Services[u.Hostname()]; !ok && r.name == "demo" {
				t.Errorf("%s: the demo's target %s points at %s, which is not a service of the demo", name, tg.Name, u.Host)
			}
		}
		checkOpenHIM(t, name, cfg)
		// The container is locked down like the chart's pods.
		if !s.ReadOnly || !contains(s.CapDrop, "ALL") || !strings.HasPrefix(s.User, "65532") {
			t.Errorf("%s: want read_only, cap_drop [ALL] and user 65532 (got %v %v %q)", name, s.ReadOnly, s.CapDrop, s.User)
		}
		if !contains(s.Tmpfs, "/tmp") {
			t.Errorf("%s: no tmpfs at /tmp for the payload spool", name)
		}
	}
	// Every Tally replica of one deployment runs the same file.
	first := bindSource(p.Services[services[0]], flagValue(p.Services[services[0]].Command, "--config"))
	for _, name := range services[1:] {
		if got := bindSource(p.Services[name], flagValue(p.Services[name].Command, "--config")); got != first {
			t.Errorf("%s runs %s, %s runs %s: replicas should share one configuration", services[0], first, name, got)
		}
	}
	// The emulator listens where the demo's targets point.
	sim, ok := p.Services["dhis2-sim"]
	if !ok {
		return
	}
	if addr := flagValue(sim.Command, "--addr"); !strings.HasSuffix(addr, ":8080") || strings.HasPrefix(addr, "127.") {
		t.Errorf("dhis2-sim --addr %q: want 0.0.0.0:8080", addr)
	}
}

// checkNATSUser checks that the NATS server of service ns accepts user/password.
func checkNATSUser(t *testing.T, tally string, ns types.ServiceConfig, user, password string) {
	t.Helper()
	src := bindSource(ns, flagValue(ns.Command, "--config"))
	if src == "" {
		return
	}
	for k, v := range ns.Environment {
		if v != nil {
			t.Setenv(k, *v)
		}
	}
	opts, err := server.ProcessConfigFile(src)
	if err != nil {
		return // reported by TestComposeNATSCluster
	}
	if len(opts.Users) == 0 && opts.Username == "" {
		if user != "" {
			t.Errorf("%s authenticates to %s as %q, but that server has no users", tally, ns.Name, user)
		}
		return
	}
	for _, u := range opts.Users {
		if u.Username == user && u.Password == password {
			return
		}
	}
	if opts.Username == user && opts.Password == password {
		return
	}
	t.Errorf("%s authenticates to %s as %q with a password that server does not accept", tally, ns.Name, user)
}

// checkOpenHIM checks the sections of the configuration that other packages own (openhim,
// and mappings and exchanges as they arrive) the way the service does at start.
func checkOpenHIM(t *testing.T, where string, cfg *config.Config) {
	t.Helper()
	if _, probs := mediator.CheckConfig(cfg); len(probs) > 0 {
		t.Errorf("%s: %v", where, probs)
	}
}

// bindSource is the host file bind-mounted at target in service s, or "".
func bindSource(s types.ServiceConfig, target string) string {
	if target == "" {
		return ""
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			if fi, err := os.Stat(v.Source); err == nil && !fi.IsDir() {
				return v.Source
			}
		}
		// a directory mounted above the file
		if v.Type == types.VolumeTypeBind && strings.HasPrefix(target, strings.TrimSuffix(v.Target, "/")+"/") {
			src := filepath.Join(v.Source, strings.TrimPrefix(target, strings.TrimSuffix(v.Target, "/")+"/"))
			if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
				return src
			}
		}
	}
	return ""
}

// volumeBacks reports whether dir is on a named volume of s.
func volumeBacks(s types.ServiceConfig, dir string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && (dir == v.Target || strings.HasPrefix(dir, strings.TrimSuffix(v.Target, "/")+"/")) {
			return true
		}
	}
	return false
}

func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}
