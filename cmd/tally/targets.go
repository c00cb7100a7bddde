package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

func targetsCmd() *command {
	c := &command{
		name: "targets", usage: "targets probe NAME [-o table|json|yaml]",
		summary: "Ask a DHIS2 target whether it answers now; resume deliveries to it at once if it does.",
		example: "tally targets probe hmis",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		out := addOutputFlag(fs)
		args, err := parseInterspersed(c, env, fs, args)
		if err != nil {
			return err
		}
		if err := out.check(); err != nil {
			return err
		}
		if len(args) != 2 || args[0] != "probe" {
			fs.Usage()
			return errUsage
		}
		var res struct {
			Target    string `json:"target"`
			Reachable bool   `json:"reachable"`
			Error     string `json:"error"`
			Circuit   string `json:"circuit"`
			Resumed   bool   `json:"resumed"`
		}
		var raw json.RawMessage
		if _, err := api.do(ctx, "POST", "/admin/v1/targets/"+url.PathEscape(args[1])+"/probe", "", nil, &raw); err != nil {
			return err
		}
		if done, err := out.print(env.stdout, raw); done || err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return err
		}
		switch {
		case !res.Reachable:
			fmt.Fprintf(env.stdout, "%s does not answer: %s\ncircuit: %s\n", res.Target, res.Error, res.Circuit)
			return fmt.Errorf("target %s is not reachable", res.Target)
		case res.Resumed:
			fmt.Fprintf(env.stdout, "%s answers; deliveries resume now (circuit %s)\n", res.Target, res.Circuit)
		default:
			fmt.Fprintf(env.stdout, "%s answers (circuit %s)\n", res.Target, res.Circuit)
		}
		return nil
	}
	return c
}
