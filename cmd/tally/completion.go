package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// completionCmd prints a shell completion script. The words come from the commands
// themselves: each command's subcommands from its usage line, its flags from its --help, so
// the script cannot drift from the binary that printed it.
func completionCmd() *command {
	c := &command{
		name: "completion", usage: "completion bash|zsh|fish",
		summary: "Print a shell completion script for tally's commands, subcommands, flags and -o values.",
		example: "source <(tally completion bash)\ntally completion zsh > \"${fpath[1]}/_tally\"\ntally completion fish > ~/.config/fish/completions/tally.fish",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		words := completionWords(ctx)
		switch fs.Arg(0) {
		case "bash":
			writeBash(env.stdout, words)
		case "zsh":
			fmt.Fprintln(env.stdout, "#compdef tally\nautoload -U +X bashcompinit && bashcompinit")
			writeBash(env.stdout, words)
		case "fish":
			writeFish(env.stdout, words)
		default:
			return fmt.Errorf("%q: want bash, zsh or fish", fs.Arg(0))
		}
		return nil
	}
	return c
}

// cmdWords are what may follow a command: its subcommands and its flags.
type cmdWords struct {
	name  string
	subs  []string
	flags []string
}

var (
	flagLine = regexp.MustCompile(`(?m)^  -(-?[a-z][a-z0-9-]*)`)
	subWord  = regexp.MustCompile(`^[a-z][a-z-]*$`)
)

func completionWords(ctx context.Context) []cmdWords {
	var out []cmdWords
	for _, c := range commands() {
		w := cmdWords{name: c.name}
		for _, alt := range strings.Split(c.usage, " | ") {
			f := strings.Fields(alt)
			if len(f) > 1 && f[0] == c.name && subWord.MatchString(f[1]) && !slices.Contains(w.subs, f[1]) {
				w.subs = append(w.subs, f[1])
			}
		}
		if c.name == "completion" {
			w.subs = []string{"bash", "zsh", "fish"}
		}
		var help bytes.Buffer
		env := &cliEnv{stdout: &help, stderr: io.Discard, getenv: func(string) string { return "" }}
		_ = c.run(ctx, env, []string{"--help"})
		for _, m := range flagLine.FindAllStringSubmatch(help.String(), -1) {
			name := strings.TrimPrefix(m[1], "-")
			if len(name) == 1 {
				w.flags = append(w.flags, "-"+name) // -o
			} else {
				w.flags = append(w.flags, "--"+name)
			}
		}
		sort.Strings(w.flags)
		out = append(out, w)
	}
	return out
}

func writeBash(w io.Writer, words []cmdWords) {
	var names []string
	for _, c := range words {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, `# bash completion for tally (tally completion bash)
_tally() {
    local cur prev words
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "%s help" -- "$cur"))
        return
    fi
    case "$prev" in
        -o|--output) COMPREPLY=($(compgen -W "%s" -- "$cur")); return ;;
    esac
    case "${COMP_WORDS[1]}" in
`, strings.Join(names, " "), strings.Join(outputFormats(), " "))
	for _, c := range words {
		all := c.flags
		if len(c.subs) > 0 {
			all = append(append([]string{}, c.subs...), c.flags...)
		}
		fmt.Fprintf(w, "        %s) words=%q ;;\n", c.name, strings.Join(all, " "))
	}
	fmt.Fprint(w, `        *) words="" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    if [ ${#COMPREPLY[@]} -eq 0 ]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _tally tally
`)
}

func writeFish(w io.Writer, words []cmdWords) {
	fmt.Fprintln(w, "# fish completion for tally (tally completion fish)")
	var names []string
	for _, c := range words {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, "complete -c tally -f -n __fish_use_subcommand -a %q\n", strings.Join(names, " "))
	for _, c := range words {
		if len(c.subs) > 0 {
			fmt.Fprintf(w, "complete -c tally -f -n '__fish_seen_subcommand_from %s' -a %q\n", c.name, strings.Join(c.subs, " "))
		}
		for _, f := range c.flags {
			if long, ok := strings.CutPrefix(f, "--"); ok {
				fmt.Fprintf(w, "complete -c tally -n '__fish_seen_subcommand_from %s' -l %s\n", c.name, long)
			}
		}
	}
	fmt.Fprintf(w, "complete -c tally -s o -l output -x -a %q\n", strings.Join(outputFormats(), " "))
}
