package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// assignments matches the VAR=value words before a command, as a shell reads them.
var assignments = regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=(\S*)$`)

// exampleEnv returns the variables a "VAR=value ... tally serve --config FILE" line sets and
// the config file it names; nothing else of the environment counts, as on a fresh machine.
func exampleEnv(t *testing.T, line string) (map[string]string, string) {
	t.Helper()
	env := map[string]string{}
	words := strings.Fields(line)
	file := ""
	for i, w := range words {
		if m := assignments.FindStringSubmatch(w); m != nil && file == "" {
			env[m[1]] = m[2]
		}
		if w == "--config" && i+1 < len(words) {
			file = words[i+1]
		}
	}
	if file == "" {
		t.Fatalf("no --config in %q", line)
	}
	return env, file
}

// The README's "Run it" command and serve --help's example start Tally as written: the
// configuration they name validates with exactly the variables they set (the same checks
// serve makes before it listens).
func TestServeExamplesRunAsWritten(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)[strings.Index(string(readme), "## Run it"):]
	var lines []string
	for _, l := range strings.Split(section, "\n") {
		if strings.Contains(l, " serve --config ") {
			lines = append(lines, l)
			break
		}
	}
	lines = append(lines, serveCmd().example)
	for _, line := range lines {
		env, file := exampleEnv(t, line)
		code, out, errOut := runTest(t, env, "config", "validate", "../../"+file)
		if code != 0 {
			t.Errorf("%q does not run as written: exit %d\n%s%s", line, code, out, errOut)
		}
	}
}
