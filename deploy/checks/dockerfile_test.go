package checks

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

type stage struct {
	name, base string
	from       int
	body       []instruction
}

func parseDockerfile(t testing.TB) []stage {
	t.Helper()
	f, err := os.Open(repoPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		ins     []instruction
		cur     strings.Builder
		start   int
		lineNo  int
		pending bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if !pending && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if pending && strings.HasPrefix(trimmed, "#") {
			continue
		}
		if !pending {
			start = lineNo
			cur.Reset()
		}
		cont := strings.HasSuffix(trimmed, "\\")
		cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
		cur.WriteString(" ")
		pending = cont
		if !cont {
			cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
			ins = append(ins, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var stages []stage
	fromRE := regexp.MustCompile(`(?i)^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$`)
	for _, in := range ins {
		if in.cmd == "FROM" {
			m := fromRE.FindStringSubmatch(in.args)
			if m == nil {
				t.Fatalf("Dockerfile:%d: cannot read FROM %s", in.line, in.args)
			}
			stages = append(stages, stage{name: m[2], base: m[1], from: in.line})
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Errorf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return stages
}

// dockerfileStages are the names of the Dockerfile's stages (FROM ... AS name).
func dockerfileStages(t testing.TB) map[string]bool {
	out := map[string]bool{}
	for _, s := range parseDockerfile(t) {
		if s.name != "" {
			out[s.name] = true
		}
	}
	return out
}

// TestDockerfile checks the image build without a container engine: the two targets, static
// trimmed builds stamped with the version, the Go version of go.mod, a distroless or scratch
// base, a non-root user, port 8080, no HEALTHCHECK, and sources that exist.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	byName := map[string]stage{}
	for _, s := range stages {
		if s.name != "" {
			if _, dup := byName[s.name]; dup {
				t.Errorf("Dockerfile: two stages named %s", s.name)
			}
			byName[s.name] = s
		}
	}
	if last := stages[len(stages)-1]; last.name != "tally" {
		t.Errorf("Dockerfile: the last stage (the default target) is %q: want tally", last.name)
	}
	goDirective := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readRepoFile(t, "go.mod"))
	if goDirective == nil {
		t.Fatal("go.mod has no go directive")
	}
	goMinor := string(goDirective[1])
	argGo := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindSubmatch(readRepoFile(t, "Dockerfile"))
	if argGo == nil || string(argGo[1]) != goMinor {
		t.Errorf("Dockerfile: ARG GO_VERSION=%s: want %s, the go directive of go.mod", argGo, goMinor)
	}
	versionVar := regexp.MustCompile(`(?m)^var version = `)

	for target, pkg := range map[string]string{"tally": "./cmd/tally", "dhis2-sim": "./cmd/dhis2-sim"} {
		final, ok := byName[target]
		if !ok {
			t.Errorf("Dockerfile: no stage %q (docker build --target %s)", target, target)
			continue
		}
		if !strings.HasPrefix(final.base, "gcr.io/distroless/static") && final.base != "scratch" {
			t.Errorf("stage %s: base %s: want gcr.io/distroless/static or scratch", target, final.base)
		}
		if strings.Contains(final.base, "distroless") && !strings.HasSuffix(final.base, ":nonroot") {
			t.Errorf("stage %s: base %s: want the :nonroot variant", target, final.base)
		}
		var user, entrypoint string
		exposed := false
		var binarySource string
		for _, in := range final.body {
			switch in.cmd {
			case "USER":
				user = in.args
			case "EXPOSE":
				exposed = exposed || strings.Contains(" "+in.args+" ", " 8080 ")
			case "ENTRYPOINT":
				entrypoint = in.args
			case "HEALTHCHECK":
				t.Errorf("Dockerfile:%d: no HEALTHCHECK (Kubernetes probes /healthz and /readyz; the image has no shell)", in.line)
			case "RUN":
				if strings.Contains(final.base, "distroless") || final.base == "scratch" {
					t.Errorf("Dockerfile:%d: RUN in a stage without a shell", in.line)
				}
			case "COPY":
				if m := regexp.MustCompile(`--from=(\S+)\s+(/out/\S+)\s+/usr/local/bin/`).FindStringSubmatch(in.args); m != nil {
					binarySource = m[1]
				}
			}
		}
		if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
			t.Errorf("stage %s: USER %q: want a non-root user (65532)", target, user)
		}
		if !exposed {
			t.Errorf("stage %s: does not EXPOSE 8080", target)
		}
		if !strings.HasPrefix(entrypoint, "[") {
			t.Errorf("stage %s: ENTRYPOINT %q: want the exec form", target, entrypoint)
		}
		build, ok := byName[binarySource]
		if !ok {
			t.Errorf("stage %s: copies its binary from %q, which is not a stage", target, binarySource)
			continue
		}
		var cmd string
		for _, in := range build.body {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				cmd = in.args
			}
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`, " " + pkg} {
			if !strings.Contains(cmd, want) {
				t.Errorf("stage %s: its go build does not contain %q:\n%s", build.name, want, cmd)
			}
		}
		// The package exists and is a command; -X main.version needs the variable.
		dir := repoPath(t, strings.TrimPrefix(pkg, "./"))
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		isMain, hasVersion := false, false
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, _ := os.ReadFile(f)
			isMain = isMain || regexp.MustCompile(`(?m)^package main\b`).Match(b)
			hasVersion = hasVersion || versionVar.Match(b)
		}
		if !isMain {
			t.Errorf("%s: no package main here, so the %s image cannot be built", pkg, target)
		}
		if target == "tally" && !hasVersion {
			t.Errorf("%s has no `var version = ...` for -X main.version", pkg)
		}
	}
	// COPY sources from the build context exist.
	for _, s := range stages {
		for _, in := range s.body {
			if in.cmd != "COPY" || strings.Contains(in.args, "--from=") {
				continue
			}
			fields := strings.Fields(in.args)
			for _, src := range fields[:len(fields)-1] {
				if strings.HasPrefix(src, "--") || src == "." {
					continue
				}
				if _, err := os.Stat(repoPath(t, src)); err != nil {
					t.Errorf("Dockerfile:%d: COPY %s: %v", in.line, src, err)
				}
			}
		}
	}
}

// TestDockerignore checks that the build context keeps what the build needs (go.mod, the
// commands, embedded files) and drops what it must not carry (.git, local data).
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(string(readRepoFile(t, ".dockerignore")), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		patterns = append(patterns, l)
	}
	excluded := func(p string) bool {
		ex := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/")
			matched := false
			for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
				if ok, _ := path.Match(pat, q); ok {
					matched = true
				}
				if strings.HasPrefix(pat, "**/") {
					if ok, _ := path.Match(strings.TrimPrefix(pat, "**/"), path.Base(q)); ok {
						matched = true
					}
				}
			}
			if matched {
				ex = !neg
			}
		}
		return ex
	}
	for _, must := range []string{".git", "data"} {
		if !excluded(must) {
			t.Errorf(".dockerignore does not exclude %s", must)
		}
	}
	keep := []string{"go.mod", "go.sum", "cmd/tally/main.go", "cmd/dhis2-sim", "config/config.go"}
	// every //go:embed pattern of the module's non-test files
	embedRE := regexp.MustCompile(`(?m)^//go:embed (.+)$`)
	_ = filepath.WalkDir(root(t), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root(t), p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (rel == ".git" || rel == "deploy" || rel == "charts" || strings.HasPrefix(rel, "data")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, m := range embedRE.FindAllSubmatch(b, -1) {
			for _, pat := range strings.Fields(string(m[1])) {
				keep = append(keep, path.Join(path.Dir(rel), strings.Trim(pat, `"`)))
			}
		}
		return nil
	})
	for _, k := range keep {
		if excluded(k) {
			t.Errorf(".dockerignore excludes %s, which the build needs", k)
		}
	}
}
