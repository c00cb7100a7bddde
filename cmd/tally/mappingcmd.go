package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/transform/metadata"
)

func mappingCmd() *command {
	c := &command{
		name: "mapping", usage: "mapping check --config FILE",
		summary: "Compare the mapping rules with each target's live DHIS2 metadata and list every problem with the rule's file and line.",
		example: "tally mapping check --config examples/tally.yaml",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		file := fs.String("config", "tally.yaml", "configuration file")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if fs.NArg() != 1 || fs.Arg(0) != "check" {
			fs.Usage()
			return errUsage
		}
		cfg, err := loadConfig(env, *file)
		if err != nil {
			return err
		}
		probs, err := checkMappingsLive(ctx, env.stderr, cfg)
		if err != nil {
			return err
		}
		return reportProblems(env, *file, probs)
	}
	return c
}

// checkMappingsLive compiles the mapping sets and checks them against the metadata read now
// from every target that a source with a mapping set delivers to.
func checkMappingsLive(ctx context.Context, progress io.Writer, cfg *config.Config) (config.Problems, error) {
	sets, probs := pipeline.CompileMappings(cfg)
	if len(probs) > 0 {
		return probs, nil
	}
	md := map[string]*metadata.Metadata{}
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		if src.Mapping == "" && src.Format != "adx" {
			continue // only a set, or ADX categories, are checked against the metadata
		}
		for _, t := range cfg.TargetsOf(src) {
			if md[t.Name] != nil {
				continue
			}
			client, err := dhis2.New(dhis2.Config{BaseURL: t.URL, Username: t.Username, Password: t.Password,
				Token: t.Token, APIVersion: t.APIVersion, Timeout: t.Timeout.D()})
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", t.Name, err)
			}
			fmt.Fprintf(progress, "reading metadata of %s (%s)…\n", t.Name, t.URL)
			rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			m, err := client.FetchMappingMetadata(rctx, dhis2.ListOptions{})
			cancel()
			if err != nil {
				return nil, fmt.Errorf("reading metadata of target %s: %w", t.Name, err)
			}
			md[t.Name] = m
		}
	}
	return pipeline.CheckMappings(sets, cfg, md), nil
}

func reportProblems(env *cliEnv, file string, probs config.Problems) error {
	for _, p := range probs {
		fmt.Fprintln(env.stdout, p.String())
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s: %d problems", file, len(probs))
	}
	fmt.Fprintf(env.stdout, "%s: mappings agree with the targets' metadata\n", file)
	return nil
}
