package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bash script completes commands, subcommands, flags and -o's values, as bash runs it.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	code, script, errOut := runTest(t, nil, "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d %s", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "tally.bash")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]string{
		"tally dl":                "dlq",
		"tally dlq dis":           "discard",
		"tally dlq list --rea":    "--reason",
		"tally tx list -o y":      "yaml",
		"tally tx show x --val":   "--values",
		"tally completion f":      "fish",
		"tally send --pass":       "--password",
		"tally exchange import -": "--file",
	} {
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		cmd := exec.Command(bash, "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); _tally; echo "${COMPREPLY[@]}"`, "_", file)
		cmd.Args = append(cmd.Args, words...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if !strings.Contains(" "+strings.TrimSpace(string(out))+" ", " "+want+" ") {
			t.Errorf("%q completes to %q, want %s among them", line, strings.TrimSpace(string(out)), want)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		if code, out, _ := runTest(t, nil, "completion", shell); code != 0 || !strings.Contains(out, "dlq") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
}
