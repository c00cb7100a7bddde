package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
)

// InProcess starts Tally inside the harness's own process: what Go benchmarks and tests use.
// Memory is not reported for it, since the process also runs the load.
func InProcess(ctx context.Context, configYAML string) (*Instance, error) {
	cfg, err := config.Parse("bench.yaml", []byte(configYAML), os.Getenv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("TALLY_BENCH_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	svc, err := mediator.New(cfg, mediator.Options{Listener: ln, Version: "bench", Logger: log})
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting Tally: %w", err)
	}
	return &Instance{URL: "http://" + svc.Addr(), Stop: func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return svc.Stop(sctx)
	}}, nil
}
