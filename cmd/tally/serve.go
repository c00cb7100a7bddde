package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
)

func serveCmd() *command {
	c := &command{
		name: "serve", usage: "serve --config FILE",
		summary: "Run Tally with a configuration file.",
		example: "TALLY_ADMIN_TOKEN=change-me-0123456789 tally serve --config examples/tally.yaml",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		file := fs.String("config", "tally.yaml", "configuration file")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		cfg, err := loadConfig(env, *file)
		if err != nil {
			return err
		}
		log := newLogger(env.stderr, cfg.Log)
		svc, err := mediator.New(cfg, mediator.Options{Logger: log, Version: version})
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	}
	return c
}

func newLogger(w io.Writer, lc config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(lc.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func loadConfig(env *cliEnv, path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return config.Parse(path, data, env.getenv)
}
