package main

import (
	"context"
	"fmt"

	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/openhim"
)

func openhimCmd() *command {
	c := &command{
		name: "openhim", usage: "openhim register --dry-run [--config FILE]",
		summary: "Print the body Tally registers with an OpenHIM core (POST /mediators).",
		example: "tally openhim register --dry-run --config examples/tally.yaml",
	}
	c.run = func(_ context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		file := fs.String("config", "", "configuration file; without it, the built-in defaults and no sources")
		dry := fs.Bool("dry-run", false, "print the registration body instead of sending it (the only mode for now)")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if fs.NArg() != 1 || fs.Arg(0) != "register" || !*dry {
			fs.Usage()
			return errUsage
		}
		oc := openhim.DefaultConfig()
		var sources []openhim.Source
		if *file != "" {
			cfg, err := loadConfig(env, *file)
			if err != nil {
				return err
			}
			sec, probs := mediator.CheckConfig(cfg)
			if len(probs) > 0 {
				return probs
			}
			if sec.OpenHIM.Enabled {
				oc = sec.OpenHIM
			}
			names := make([]string, len(cfg.Sources))
			for i, s := range cfg.Sources {
				names[i] = s.Name
			}
			sources = openhim.Sources(names...)
		} else {
			sources = openhim.Sources()
		}
		v, err := openhim.NormalizeVersion(version)
		if err != nil {
			v = "0.0.0-dev"
		}
		body, err := openhim.RegistrationJSON(oc, v, sources)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, string(body))
		return nil
	}
	return c
}
