// Command dhis2-sim runs the in-process DHIS2 emulator (package
// adapters/dhis2/dhis2test) as a stand-alone server for demos, manual tests
// and docker-compose.
//
//	dhis2-sim [--metadata FILE] [--addr HOST:PORT] [--version 2.40] [--base-path /dhis] [--hold-jobs]
//	          [--capacity [--capacity-max-concurrent N] [--capacity-max-queue N] [--capacity-per-request D]
//	           [--capacity-per-value D] [--capacity-queue-timeout D]]
//
// Without --metadata it serves the bundled Kalima sample. The API is at
// http://HOST:PORT<base-path>/api/...; the emulator's admin API (faults,
// recorded requests, store) is at http://HOST:PORT/__sim/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "dhis2-sim:", err)
		os.Exit(1)
	}
}

const usageExample = `
Example:
  dhis2-sim --addr 127.0.0.1:8080 --version 2.40
  curl -u admin:district -H 'Content-Type: application/json' \
    -d '{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"5"}]}' \
    'http://127.0.0.1:8080/api/dataValueSets?idScheme=CODE'
  curl -X POST http://127.0.0.1:8080/__sim/faults -d '{"kind":"status","status":503,"path":"/api/dataValueSets","times":2}'
`

// run parses args, serves until ctx ends and shuts down. ready (optional)
// receives the listen address once the server accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("dhis2-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metadata := fs.String("metadata", "", "metadata `file` (JSON or YAML); default: the bundled Kalima sample")
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address` (host:port; port 0 picks a free port)")
	version := fs.String("version", "2.40", "DHIS2 `version` to emulate (2.36 … 2.44)")
	basePath := fs.String("base-path", "", "context `path` DHIS2 is mounted under, e.g. /dhis (default: none)")
	holdJobs := fs.Bool("hold-jobs", false, "queue async imports until POST /__sim/jobs/run")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	capacity := fs.Bool("capacity", false, "capacity mode: imports cost time, run at most --capacity-max-concurrent at once, queue up to --capacity-max-queue, then 503")
	capConcurrent := fs.Int("capacity-max-concurrent", dhis2test.DefaultCapacityMaxConcurrent, "capacity mode: imports at once (Tomcat maxThreads default)")
	capQueue := fs.Int("capacity-max-queue", dhis2test.DefaultCapacityMaxQueue, "capacity mode: imports waiting for a slot before 503 (Tomcat acceptCount default; -1: none)")
	capPerRequest := fs.Duration("capacity-per-request", dhis2test.DefaultCapacityPerRequest, "capacity mode: fixed cost of an import (an assumption; measure your DHIS2)")
	capPerValue := fs.Duration("capacity-per-value", dhis2test.DefaultCapacityPerValue, "capacity mode: cost per data value (an assumption; measure your DHIS2)")
	capQueueTimeout := fs.Duration("capacity-queue-timeout", 0, "capacity mode: longest wait for a slot before 503 (0: as long as the client waits)")
	now := fs.String("now", "", "pretend today is this `date` (yyyy-mm-dd), which relative periods resolve against; the sample's analytics facts are for 2024, so --now 2025-01-15 makes LAST_12_MONTHS find them")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dhis2-sim [flags]\n\nRuns a DHIS2 emulator.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), usageExample)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	opts := []dhis2test.Option{dhis2test.WithVersion(*version), dhis2test.WithBasePath(*basePath), dhis2test.WithLogger(logger)}
	source := "bundled Kalima sample"
	if *metadata != "" {
		m, err := dhis2test.LoadMetadata(*metadata)
		if err != nil {
			return err
		}
		opts = append(opts, dhis2test.WithMetadata(m))
		source = *metadata
	}
	if *capacity {
		opts = append(opts, dhis2test.WithCapacity(dhis2test.Capacity{PerRequest: orNone(*capPerRequest), PerValue: orNone(*capPerValue),
			MaxConcurrent: *capConcurrent, MaxQueue: *capQueue, QueueTimeout: *capQueueTimeout}))
	}
	if *holdJobs {
		opts = append(opts, dhis2test.WithHeldJobs())
	}
	if *now != "" {
		day, err := time.Parse(time.DateOnly, *now)
		if err != nil {
			return fmt.Errorf("--now: want yyyy-mm-dd: %w", err)
		}
		// The clock moves on from that day, so job and write times still advance.
		offset := time.Until(day)
		opts = append(opts, dhis2test.WithClock(func() time.Time { return time.Now().Add(offset) }))
	}
	sim, err := dhis2test.New(opts...)
	if err != nil {
		return err
	}
	defer sim.Close()

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	url := "http://" + ln.Addr().String() + sim.BasePath()
	logger.Info("dhis2-sim listening", "url", url, "version", sim.Version().String(), "metadata", source)
	fmt.Fprintf(stdout, "DHIS2 %s emulator listening on %s (API: %s/api)\n", sim.Version(), url, url)
	if *metadata == "" {
		fmt.Fprintf(stdout, "  Basic auth:  %s / %s\n  API token:   %s (V2: %s)\n",
			dhis2test.SampleUser, dhis2test.SamplePassword, dhis2test.SampleToken, dhis2test.SampleTokenV2)
	}
	fmt.Fprintf(stdout, "  Admin API:   http://%s/__sim/ (faults, requests, store, received, approvals, capacity)\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	sim.Close() // release hanging and delayed requests
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("dhis2-sim stopped")
	return nil
}

// orNone turns an explicit zero cost into "no cost" (WithCapacity reads a
// zero as "default" and a negative value as zero).
func orNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
