// Command tally is the Tally mediator: it accepts aggregate data (CHT exports, DHIS2 data
// value sets, ADX), stores it durably in NATS JetStream, maps it and delivers it to DHIS2.
//
// Run "tally help" for the commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/tally-hmis/tally/mediator"
)

// version, when set at link time (-ldflags "-X main.version=v1.2.3"), wins over the module
// version the go command stamps into the build information (mediator.ReadBuildInfo).
var version = "dev"

func versionString() string { return mediator.ReadBuildInfo(version).Version }

// command is one subcommand: its usage line, a one-line summary, an example, and its run.
type command struct {
	name    string
	usage   string
	summary string
	example string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what commands print to and read from, injectable for tests.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdin answers confirmations; nil (tests, scripts) is never a terminal.
	stdin io.Reader
}

func commands() []*command {
	return []*command{
		serveCmd(), demoCmd(), sendCmd(), txCmd(), dlqCmd(), targetsCmd(), exchangeCmd(), configCmd(), mappingCmd(), openhimCmd(), benchCmd(), versionCmd(), whoamiCmd(), auditCmd(), completionCmd(),
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stdin: os.Stdin}
	os.Exit(runCLI(ctx, env, os.Args[1:]))
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			for _, c := range cmds {
				if c.name == args[1] {
					printCommandHelp(env.stdout, c, nil)
					return 0
				}
			}
		}
		printHelp(env.stdout, cmds)
		return 0
	}
	for _, c := range cmds {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:])
			switch {
			case err == nil, errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			default:
				fmt.Fprintf(env.stderr, "tally %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(env.stderr, "tally: unknown command %q\n\n", args[0])
	printHelp(env.stderr, cmds)
	return 2
}

func printHelp(w io.Writer, cmds []*command) {
	fmt.Fprintln(w, "Tally moves aggregate health data into DHIS2, durably.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: tally <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	sorted := append([]*command(nil), cmds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "tally <command> --help" for a command's flags and an example.`)
}

func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: tally %s\n\n%s\n", c.usage, c.summary)
	if fs != nil {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n  %s\n", strings.ReplaceAll(strings.TrimSpace(c.example), "\n", "\n  "))
	}
}

// flags returns a FlagSet whose --help prints the command's usage and example.
func (c *command) flags(env *cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() { printCommandHelp(env.stdout, c, fs) }
	return fs
}

// parse accepts flags before, between and after positional arguments ("tally dlq list
// --target hmis"), which the flag package alone does not.
func (c *command) parse(env *cliEnv, fs *flag.FlagSet, args []string) error {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	if err := fs.Parse(append(append(flags, "--"), positional...)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func versionCmd() *command {
	c := &command{name: "version", usage: "version [-o table|json|yaml]",
		summary: "Print Tally's version, VCS revision (and whether the tree was modified) and Go version, from the binary's build information.",
		example: "tally version\ntally version -o json"}
	c.run = func(_ context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		out := addOutputFlag(fs)
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if err := out.check(); err != nil {
			return err
		}
		b := mediator.ReadBuildInfo(version)
		if done, err := out.printValue(env.stdout, b); done || err != nil {
			return err
		}
		line := "tally " + b.Version
		if b.Revision != "" {
			line += " (revision " + b.Revision
			if b.Dirty {
				line += ", modified"
			}
			line += ")"
		}
		fmt.Fprintf(env.stdout, "%s %s\n", line, b.GoVersion)
		return nil
	}
	return c
}

func whoamiCmd() *command {
	c := &command{name: "whoami", usage: "whoami [--url URL] [--token T] [-o table|json|yaml]",
		summary: "Say which admin credential --token (or $TALLY_ADMIN_TOKEN) is, and its scope: read looks, operate also replays, discards and runs.",
		example: "TALLY_ADMIN_TOKEN=... tally whoami"}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		out := addOutputFlag(fs)
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if err := out.check(); err != nil {
			return err
		}
		var raw json.RawMessage
		if _, err := api.do(ctx, "GET", "/admin/v1/whoami", "", nil, &raw); err != nil {
			return err
		}
		if done, err := out.print(env.stdout, raw); done || err != nil {
			return err
		}
		var p struct {
			Name  string `json:"name"`
			Scope string `json:"scope"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
		fmt.Fprintf(env.stdout, "%s (scope %s)\n", p.Name, p.Scope)
		return nil
	}
	return c
}
