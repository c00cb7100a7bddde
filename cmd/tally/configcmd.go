package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
)

func configCmd() *command {
	c := &command{
		name: "config", usage: "config validate [--live] FILE",
		summary: "Check a configuration file and list every problem with its line; --live also checks the mapping rules against each target's DHIS2 metadata.",
		example: "tally config validate examples/tally.yaml\ntally config validate --live examples/tally.yaml",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		live := fs.Bool("live", false, "also read each target's metadata and check the mapping rules against it")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if fs.NArg() != 2 || fs.Arg(0) != "validate" {
			fs.Usage()
			return errUsage
		}
		file := fs.Arg(1)
		cfg, err := loadConfig(env, file)
		var probs config.Problems
		if cfg != nil {
			// The sections other packages own (openhim, mappings, exchanges) are checked
			// the same way the service checks them at start.
			_, more := mediator.CheckConfig(cfg)
			if errors.As(err, &probs) || err == nil {
				probs = append(probs, more...)
				sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
				if len(probs) > 0 {
					err = probs
				}
			}
		}
		if err != nil {
			if errors.As(err, &probs) {
				for _, p := range probs {
					fmt.Fprintln(env.stdout, p.String())
				}
				return fmt.Errorf("%s: %d problems", file, len(probs))
			}
			return err
		}
		// What serve does next, without I/O: build the service (targets' clients, exchanges,
		// OpenHIM), so that validate refuses whatever serve would.
		if _, err := mediator.New(cfg, mediator.Options{}); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if *live {
			probs, err := checkMappingsLive(ctx, env.stderr, cfg)
			if err != nil {
				return err
			}
			if len(probs) > 0 {
				return reportProblems(env, file, probs)
			}
		}
		fmt.Fprintf(env.stdout, "%s: valid\n", file)
		return nil
	}
	return c
}
