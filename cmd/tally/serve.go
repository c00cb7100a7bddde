package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
)

func serveCmd() *command {
	c := &command{
		name: "serve", usage: "serve --config FILE",
		summary: "Run Tally with a configuration file.",
		example: "TALLY_ADMIN_TOKEN=change-me-0123456789 CHT_TOKEN=cht-token-0123456789 HMIS_PASSWORD=district tally serve --config examples/tally.yaml",
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
		tuneGC(env.getenv) // gc.go
		log, level := newLogger(env.stderr, cfg.Log)
		svc, err := mediator.New(cfg, mediator.Options{Logger: log, Version: versionString(), LogLevel: level})
		if err != nil {
			return err
		}
		// SIGHUP reloads the mapping sets; a bad file keeps the rules in force.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := svc.ReloadMappings(); err != nil {
						log.Error("SIGHUP: mappings not reloaded", "err", err)
					}
				}
			}
		}()
		return svc.Run(ctx)
	}
	return c
}

// newLogger builds the logger with a level variable that the OpenHIM console can change.
func newLogger(w io.Writer, lc config.Log) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(lc.Level)))
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

func loadConfig(env *cliEnv, path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return config.Parse(path, data, env.getenv)
}
