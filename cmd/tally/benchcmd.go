package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tally-hmis/tally/bench"
)

func benchCmd() *command {
	c := &command{
		name: "bench", usage: "bench [--values N] [--big-values N] [--rules N] [--peer bench/peer.py] [--json]",
		summary: "Measure ingest, end-to-end throughput, latency and memory against a no-op DHIS2 emulator.",
		example: "go build -o tally ./cmd/tally && ./tally bench --peer bench/peer.py",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		o := bench.Options{Log: env.stderr}
		fs.IntVar(&o.Values, "values", 100_000, "values per throughput payload")
		fs.IntVar(&o.BigValues, "big-values", 1_000_000, "values of the payloads whose peak memory is measured (0 skips)")
		fs.IntVar(&o.Rules, "rules", 100, "code rules in the mapping set")
		fs.IntVar(&o.Rate, "rate", 20, "requests per second of the latency run")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the latency run")
		fs.StringVar(&o.PeerScript, "peer", "", "reference peer script (bench/peer.py); empty skips it")
		python := fs.String("python", "python3", "Python interpreter for the peer script")
		asJSON := fs.Bool("json", false, "print the report as JSON instead of Markdown")
		fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of Tally during the end-to-end runs to this file")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if o.PeerScript != "" {
			p, err := exec.LookPath(*python)
			if err != nil {
				return fmt.Errorf("--python: %w", err)
			}
			o.Python = p
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		// Tally runs as a child process so that its memory is measured alone.
		o.Start = func(ctx context.Context, yml string) (*bench.Instance, error) { return startChild(ctx, env, self, yml) }
		r, err := bench.Run(ctx, o)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		r.Markdown(env.stdout)
		return nil
	}
	return c
}

// startChild runs `tally serve` on a free loopback port and waits until it is ready.
func startChild(ctx context.Context, env *cliEnv, self, yml string) (*bench.Instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	yml = strings.Replace(yml, `addr: "127.0.0.1:0"`, fmt.Sprintf("addr: %q", addr), 1)
	dir, err := os.MkdirTemp("", "tally-bench-cfg-*")
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "serve", "--config", file)
	cmd.Stdout, cmd.Stderr = env.stderr, env.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		os.RemoveAll(dir)
		return err
	}
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &bench.Instance{URL: base, PID: cmd.Process.Pid, Stop: stop}, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = stop()
			return nil, errors.New("the Tally child process did not become ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
