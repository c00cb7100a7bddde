package mediator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/httpapi"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/openhim/outcome"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// Options are the service's dependencies; the zero value of each is a sensible default.
type Options struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Version is the build's version, reported by /healthz and to OpenHIM.
	Version string
	// Now is the clock; tests pin it.
	Now func() time.Time
	// Listener, when set, is served instead of listening on cfg.HTTP.Addr.
	Listener net.Listener
	// HTTPClient is used for every target; nil builds one per target.
	HTTPClient *http.Client
	// LogLevel, when set, is the level the logger was built with, so that an operator can
	// change it from the OpenHIM console.
	LogLevel *slog.LevelVar
}

// Service is a running Tally: the HTTP surface, the mapper and the delivery workers over one
// JetStream, and the exchanges' schedulers.
//
// Its lifecycle is Caddy's: New provisions and validates without I/O (the configuration,
// the targets, the exchanges, the collectors), Start connects to JetStream, builds the
// parts that need it (wiring.go), starts the consumers, serves HTTP and starts the
// background loops, and Stop undoes whatever Start got to — a Start that fails half-way
// cleans up what it started.
type Service struct {
	// Provisioned by New.
	cfg             *config.Config // with the exchanges' sources
	sections        *Sections
	log             *slog.Logger
	logLevel        *slog.LevelVar
	configuredLevel slog.Level // the configuration file's, which the console may override
	reg             *prometheus.Registry
	metrics         *Metrics
	reloads         *prometheus.CounterVec
	outcomes        *outcome.Metrics
	version         string
	now             func() time.Time
	console         *console
	targets         *delivery.Targets
	openhim         *openhim.Mediator // nil without openhim: enabled
	exchangeSet     *exchange.Set
	// exchangeTimer, when set (tests), is the exchange schedulers' timer.
	exchangeTimer func(time.Duration) <-chan time.Time

	// Built by Start, once JetStream is there (wiring.go).
	conn        *stream.Conn
	pub         *stream.Publisher
	txlog       *txlog.TxLog
	mapping     *pipeline.Mapping
	chain       *pipeline.Chain
	deadLetters *dlq.Store
	mapper      *pipeline.Mapper
	deliverer   *delivery.Deliverer
	ingester    *ingest.Ingester
	exchanges   *exchange.Runner
	watcher     *exchange.Watcher // nil: no target or dead-letter notifications configured
	reporter    *outcome.Reporter // nil without openhim: enabled
	echo        *echo.Echo

	// Running.
	listener net.Listener
	ready    atomic.Bool
	started  time.Time
	// cancel stops the consumers' pulls and the background loops; cancelHandlers cuts the
	// handlers in flight short, when a stop's deadline is near.
	cancel         context.CancelFunc
	cancelHandlers context.CancelFunc
	workers        sync.WaitGroup
	handlers       sync.WaitGroup
	httpErr        chan error
}

// New builds a service from a validated configuration. It does no I/O: Start connects.
func New(cfg *config.Config, o Options) (*Service, error) {
	o = withDefaults(o)
	sections, probs := CheckConfig(cfg)
	if len(probs) > 0 {
		return nil, probs
	}
	s := &Service{
		cfg: cfg, sections: sections, log: o.Logger, logLevel: o.LogLevel, reg: o.Registry, metrics: NewMetrics(o.Registry),
		reloads: pipeline.NewReloadCounter(o.Registry), outcomes: outcome.NewMetrics(o.Registry), version: o.Version,
		now: o.Now, listener: o.Listener, configuredLevel: configuredLevel(cfg.Log.Level, o.LogLevel),
	}
	registerBuildInfo(o.Registry, ReadBuildInfo(o.Version))
	if err := s.provision(cfg, o); err != nil {
		return nil, err
	}
	sources := make([]string, len(cfg.Sources))
	for i, src := range cfg.Sources {
		sources[i] = src.Name
	}
	s.metrics.touch(cfg, sources, cfg.TargetNames())
	return s, nil
}

func withDefaults(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	return o
}

// provision builds what needs no JetStream: the OpenHIM mediator, the exchanges (whose
// sources join the configuration the rest of the service reads), the console's overrides
// and the targets.
func (s *Service) provision(cfg *config.Config, o Options) error {
	if s.sections.OpenHIM.Enabled {
		version, err := openhim.NormalizeVersion(o.Version)
		if err != nil {
			// The core insists on SemVer; a custom build string must not keep Tally off it.
			o.Logger.Warn("registering with OpenHIM as 0.0.0-dev", "version", o.Version, "err", err)
			version = "0.0.0-dev"
		}
		med, err := openhim.New(s.sections.OpenHIM, version, s.openhimSources(), openhim.WithLogger(o.Logger))
		if err != nil {
			return fmt.Errorf("openhim: %w", err)
		}
		s.openhim = med
	}
	set, withExchanges, err := exchange.NewSet(s.cfg, s.sections.Exchanges, s.sections.Notify,
		exchange.SetConfig{HTTPClient: o.HTTPClient, Version: o.Version, Metrics: exchange.NewMetrics(o.Registry)})
	if err != nil {
		return err
	}
	s.exchangeSet, s.cfg = set, withExchanges
	s.metrics.Ingest.Touch(set.SourceNames())
	s.console = &console{cfg: s.cfg}
	s.targets, err = delivery.NewTargets(cfg, delivery.TargetsConfig{HTTPClient: o.HTTPClient, Version: o.Version,
		Settings: s.console, Metrics: s.metrics.Delivery, ConcurrencyLimit: delivery.NewConcurrencyGauge(o.Registry), Log: o.Logger})
	return err
}

// Start connects to JetStream, starts the workers and begins serving HTTP. It returns once
// the service is ready; Stop undoes it, and a Start that fails undoes what it started.
func (s *Service) Start(ctx context.Context) error {
	s.started = s.now()
	conn, err := stream.Open(ctx, streamConfig(s.cfg), s.log)
	if err != nil {
		return err
	}
	s.conn = conn
	s.build(conn) // wiring.go
	wctx, cancel := context.WithCancel(context.Background())
	hctx, cancelHandlers := context.WithCancel(context.Background())
	s.cancel, s.cancelHandlers = cancel, cancelHandlers
	if err := s.startConsumers(wctx, hctx); err != nil {
		s.stopWorkers(ctx)
		return err
	}
	// Open circuits ask their target whether it answers again.
	s.targets.RunProbes(wctx, s.cfg.Delivery.ProbeInterval.D(), &s.workers)
	if err := s.serve(); err != nil {
		s.stopWorkers(ctx)
		return err
	}
	s.ready.Store(true)
	s.startBackground(wctx)
	s.log.Info("tally started", "addr", s.Addr(), "embedded_nats", conn.Embedded(), "sources", len(s.cfg.Sources),
		"targets", len(s.cfg.Targets), "version", s.version)
	return nil
}

// streamConfig is the nats: section as the stream package takes it.
func streamConfig(cfg *config.Config) stream.Config {
	n := &cfg.NATS
	return stream.Config{
		URL: n.URL, StoreDir: n.StoreDir, Replicas: n.Replicas, CredentialsFile: n.CredentialsFile, User: n.User,
		Password: n.Password, Token: n.Token, CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile,
		InsecureTLS: n.TLS.InsecureSkipVerify, DuplicateWindow: n.DuplicateWindow.D(), MaxAge: n.MaxAge.D(),
		ClientName: "tally", TxRetention: n.TxRetention.D(),
	}
}

// startConsumers runs every stage's consumer — the mapper, per target its delivery workers
// (gated by its slots, circuit and rate limit), the OpenHIM outcomes — and returns once
// each has its durable consumer, or with the first that could not create one.
func (s *Service) startConsumers(wctx, hctx context.Context) error {
	ackWait := s.cfg.Delivery.AckWait.D()
	consumers := append([]*pipeline.Consumer{s.mapper.Consumer(s.chain, ackWait)}, s.deliverer.Consumers(s.chain, ackWait)...)
	if s.reporter != nil {
		consumers = append(consumers, s.reporter.Consumers(s.chain, ackWait)...)
	}
	s.metrics.Pipeline.ObserveQueues(s.conn.JS, s.targets.Names())
	var readyWG sync.WaitGroup
	errs := make(chan error, len(consumers))
	for _, c := range consumers {
		readyWG.Add(1)
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			once := sync.OnceFunc(readyWG.Done)
			defer once()
			if err := c.Run(wctx, hctx, s.conn.JS, once); err != nil {
				s.log.Error("consumer stopped", "consumer", c.Config.Durable, "err", err)
				errs <- err
			}
		}()
	}
	readyWG.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// serve listens (unless given a listener) and serves the HTTP surface in the background.
func (s *Service) serve() error {
	if s.listener == nil {
		ln, err := net.Listen("tcp", s.cfg.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", s.cfg.HTTP.Addr, err)
		}
		s.listener = ln
	}
	if t := s.cfg.HTTP.TLS; t.CertFile != "" {
		certs, err := httpapi.NewCertReloader(t.CertFile, t.KeyFile, s.log)
		if err != nil {
			return err
		}
		s.listener = tls.NewListener(s.listener, certs.TLSConfig())
	}
	s.httpErr = make(chan error, 1)
	// Headers must arrive within read_header_timeout and a body keep arriving (httpapi's
	// body_timeout); there is no overall read or write timeout, since a large payload may
	// legitimately take minutes to post and a synchronous answer minutes to come.
	srv := &http.Server{Handler: s.echo, ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout.D(), IdleTimeout: s.cfg.HTTP.IdleTimeout.D(),
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.echo.Server = srv
	go func() {
		err := srv.Serve(s.listener)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.httpErr <- err
	}()
	return nil
}

// startBackground starts the loops that run beside the consumers, tracked by s.workers:
// the mapping files' watcher, OpenHIM registration and heartbeats, and the exchanges'
// schedulers.
func (s *Service) startBackground(wctx context.Context) {
	if s.cfg.File() != "" {
		s.workers.Go(func() { s.mapping.Watch(wctx, 2*time.Second) })
	}
	if s.openhim != nil {
		// Registration and heartbeats run in the background: a core that is down never
		// delays Tally or its readiness.
		if err := s.openhim.Run(wctx, s.applyOpenHIMConfig); err != nil {
			s.log.Error("starting OpenHIM registration", "err", err)
		}
		s.workers.Go(func() { s.reporter.DropLegacyClaims(wctx) })
	}
	s.exchanges.Start(wctx, &s.workers)
	// The transaction list reads its ingest records from a followed copy (txlog.Follow).
	s.workers.Go(func() {
		if err := s.txlog.Follow(wctx); err != nil && wctx.Err() == nil {
			s.log.Warn("following the transaction log; listing reads the bucket", "err", err)
		}
	})
	if s.watcher != nil {
		s.workers.Go(func() { s.watcher.Run(wctx) })
	}
}

// Addr is the address HTTP is served on.
func (s *Service) Addr() string {
	if s.listener == nil {
		return s.cfg.HTTP.Addr
	}
	return s.listener.Addr().String()
}

// Handler is the HTTP handler, for tests that do not need a listener; nil before Start.
func (s *Service) Handler() http.Handler { return s.echo }

// Stop shuts down gracefully within ctx's deadline: readiness goes false so load balancers
// stop sending, intake stops and in-flight requests finish, workers stop pulling and finish
// the message in hand (a handler still running when the deadline nears is cut short and
// returns its message to the stream), then the NATS connection is drained and an embedded
// server stopped. Anything not acknowledged is redelivered on the next start.
func (s *Service) Stop(ctx context.Context) error {
	s.ready.Store(false)
	var firstErr error
	if s.echo != nil && s.echo.Server != nil {
		if err := s.echo.Server.Shutdown(ctx); err != nil {
			firstErr = fmt.Errorf("stopping HTTP: %w", err)
		}
		if err := <-s.httpErr; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	s.stopWorkers(ctx)
	s.log.Info("tally stopped")
	return firstErr
}

// stopMargin is the part of a stop's deadline kept for returning cut-short messages to the
// stream and draining the connection.
const stopMargin = 2 * time.Second

// stopWorkers stops the background loops and the consumers, and closes the connection.
func (s *Service) stopWorkers(ctx context.Context) {
	if s.cancel != nil {
		s.cancel()
	}
	s.workers.Wait() // background loops end at once on cancel
	s.waitHandlers(ctx)
	if s.cancelHandlers != nil {
		s.cancelHandlers()
	}
	if s.conn != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopMargin)
		defer cancel()
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) > stopMargin {
			dctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
			defer cancel()
		}
		s.conn.Close(dctx)
		s.conn = nil
	}
}

// waitHandlers waits for the handlers in flight: http.shutdown_timeout, and never more than
// the stop's deadline allows, after which they are cut short.
func (s *Service) waitHandlers(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	grace := s.cfg.HTTP.ShutdownTimeout.D()
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, max(time.Until(dl)-stopMargin, 0))
	}
	cutTimer := time.NewTimer(grace)
	defer cutTimer.Stop()
	select {
	case <-done:
	case <-cutTimer.C:
		s.log.Warn("stop deadline near; cutting deliveries in flight short (their messages go back to the stream)")
		s.cancelHandlers()
		<-done
	}
}

// Run starts the service and stops it when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-s.httpErr:
		s.httpErr <- err
		s.log.Error("HTTP server failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.HTTP.ShutdownTimeout.D())
	defer cancel()
	return s.Stop(sctx)
}

// ReloadMappings reads the configuration file again and, if its mapping sets compile, puts
// them in force (see pipeline.Mapping.Reload).
func (s *Service) ReloadMappings() error {
	if s.mapping == nil {
		return errors.New("reloading mappings: the service is not started")
	}
	return s.mapping.Reload()
}
