package mediator

import (
	"context"
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

// Service is a running Tally: HTTP API, mapper and delivery workers over one JetStream.
type Service struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	metrics  *Metrics
	version  string
	now      func() time.Time
	targets  *delivery.Targets
	sections *Sections
	openhim  *openhim.Mediator
	logLevel *slog.LevelVar
	// console is what the OpenHIM console overrides (openhim.go).
	console *console
	// mapping is the mapping engine in force (mediator/pipeline), built at Start; reloads
	// counts its reloads.
	mapping *pipeline.Mapping
	reloads *prometheus.CounterVec
	// configuredLevel is the log level of the configuration file, which the OpenHIM console
	// can override and restore (openhim.go).
	configuredLevel slog.Level
	// reporter records outcomes in the OpenHIM core (mediator/openhim/outcome), built at
	// Start when openhim: is enabled; outcomes are its collectors.
	reporter *outcome.Reporter
	outcomes *outcome.Metrics

	echo     *echo.Echo
	listener net.Listener
	conn     *stream.Conn
	pub      *stream.Publisher
	// chain is the consume chain every stage's messages go through (mediator/pipeline).
	chain *pipeline.Chain
	// deadLetters is the dead-letter queue (mediator/dlq).
	deadLetters *dlq.Store
	// deliverer is the delivery stage (mediator/delivery); mapper the mapper stage.
	deliverer *delivery.Deliverer
	mapper    *pipeline.Mapper
	// ingester reads and stores payloads (mediator/ingest).
	ingester *ingest.Ingester
	txlog    *txlog.TxLog
	// exchangeSet is the exchanges: section (mediator/exchange), built at New; exchanges
	// runs it once started. exchangeTimer, when set (tests), is the schedulers' timer.
	exchangeSet   *exchange.Set
	exchanges     *exchange.Runner
	exchangeTimer func(time.Duration) <-chan time.Time

	ready   atomic.Bool
	started time.Time
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
	sections, probs := CheckConfig(cfg)
	if len(probs) > 0 {
		return nil, probs
	}
	s := &Service{
		cfg: cfg, log: o.Logger, reg: o.Registry, metrics: NewMetrics(o.Registry), version: o.Version,
		now: o.Now, listener: o.Listener,
		sections: sections, logLevel: o.LogLevel,
	}
	s.reloads = pipeline.NewReloadCounter(o.Registry)
	s.outcomes = outcome.NewMetrics(o.Registry)
	s.configuredLevel = configuredLevel(cfg.Log.Level, o.LogLevel)
	if sections.OpenHIM.Enabled {
		version, err := openhim.NormalizeVersion(o.Version)
		if err != nil {
			// The core insists on SemVer; a custom build string must not keep Tally off it.
			o.Logger.Warn("registering with OpenHIM as 0.0.0-dev", "version", o.Version, "err", err)
			version = "0.0.0-dev"
		}
		med, err := openhim.New(sections.OpenHIM, version, s.openhimSources(), openhim.WithLogger(o.Logger))
		if err != nil {
			return nil, fmt.Errorf("openhim: %w", err)
		}
		s.openhim = med
	}
	// The exchanges add their sources to the configuration the rest of the service reads.
	set, withExchanges, err := exchange.NewSet(s.cfg, sections.Exchanges, sections.Notify,
		exchange.SetConfig{HTTPClient: o.HTTPClient, Version: o.Version, Metrics: exchange.NewMetrics(o.Registry)})
	if err != nil {
		return nil, err
	}
	s.exchangeSet, s.cfg = set, withExchanges
	s.metrics.Ingest.Touch(set.SourceNames())
	s.console = &console{cfg: s.cfg}
	targets, err := delivery.NewTargets(cfg, delivery.TargetsConfig{HTTPClient: o.HTTPClient, Version: o.Version,
		Settings: s.console, Metrics: s.metrics.Delivery, ConcurrencyLimit: delivery.NewConcurrencyGauge(o.Registry), Log: o.Logger})
	if err != nil {
		return nil, err
	}
	s.targets = targets
	sources := make([]string, len(cfg.Sources))
	for i, src := range cfg.Sources {
		sources[i] = src.Name
	}
	s.metrics.touch(sources, cfg.TargetNames())
	return s, nil
}

// Start connects to JetStream, starts the workers and begins serving HTTP. It returns once
// the service is ready; Stop undoes it.
func (s *Service) Start(ctx context.Context) error {
	s.started = s.now()
	conn, err := stream.Open(ctx, stream.Config{
		URL: s.cfg.NATS.URL, StoreDir: s.cfg.NATS.StoreDir, Replicas: s.cfg.NATS.Replicas,
		CredentialsFile: s.cfg.NATS.CredentialsFile, User: s.cfg.NATS.User, Password: s.cfg.NATS.Password,
		Token: s.cfg.NATS.Token, CAFile: s.cfg.NATS.TLS.CAFile, CertFile: s.cfg.NATS.TLS.CertFile,
		KeyFile: s.cfg.NATS.TLS.KeyFile, InsecureTLS: s.cfg.NATS.TLS.InsecureSkipVerify,
		DuplicateWindow: s.cfg.NATS.DuplicateWindow.D(), MaxAge: s.cfg.NATS.MaxAge.D(), ClientName: "tally",
		TxRetention: s.cfg.NATS.TxRetention.D(),
	}, s.log)
	if err != nil {
		return err
	}
	s.conn = conn
	s.pub = stream.NewPublisher(conn.JS, 256)
	s.txlog = txlog.New(conn.Tx)
	md := pipeline.NewMetadataCache(s.cfg, s.targets.Clients(), conn.State, s.log, s.now)
	s.mapping = pipeline.NewMapping(s.cfg, s.sections.Mappings, md, conn.State, s.reloads, s.log)
	s.deadLetters = dlq.New(dlq.Config{JS: conn.JS, Publisher: s.pub, TxLog: s.txlog, Config: s.cfg, Mapper: s.mapping,
		Metrics: s.metrics.DLQ, Log: s.log, Now: s.now})
	s.chain = &pipeline.Chain{Log: s.log, NC: conn.NC, DeadLetters: s.deadLetters}
	s.deliverer = delivery.New(delivery.Config{Targets: s.targets, TxLog: s.txlog, DeadLetters: s.deadLetters,
		Metrics: s.metrics.Delivery, Log: s.log, Now: s.now, UpgradeWait: s.cfg.Delivery.UpgradeWait.D()})
	s.ingester = ingest.New(ingest.Config{Config: s.cfg, Publisher: s.pub, TxLog: s.txlog, Mapping: s.mapping,
		Targets: s.targets, Settings: s.console, Metrics: s.metrics.Ingest, Log: s.log, Now: s.now})
	s.exchanges = exchange.NewRunner(s.exchangeSet, exchange.RunnerConfig{Config: s.cfg, State: conn.State, TxLog: s.txlog,
		Publisher: s.pub, Mapping: s.mapping, Targets: s.targets, Settings: s.console, Counter: s.ingester, Log: s.log,
		Now: s.now, After: s.exchangeTimer})
	if s.openhim != nil {
		s.reporter = outcome.New(outcome.Config{Config: s.cfg, Tx: conn.Tx, State: conn.State, TxLog: s.txlog, Publisher: s.pub,
			DeadLetters: s.deadLetters, Client: s.openhim.Client(), OpenHIM: s.sections.OpenHIM, Settings: s.console,
			Metrics: s.outcomes, Log: s.log, Now: s.now})
	}
	s.mapper = pipeline.NewMapper(pipeline.MapperConfig{Config: s.cfg, Mapping: s.mapping, Publisher: s.pub, TxLog: s.txlog,
		DeadLetters: s.deadLetters, Delivery: s.deliverer, Metrics: s.metrics.Pipeline, Log: s.log, Now: s.now})
	hc := httpapi.Config{Config: s.cfg, Log: s.log, Now: s.now, Version: s.version, Registry: s.reg, Metrics: s.metrics.HTTP,
		Health: health{s}, Ingester: s.ingester, TxLog: s.txlog, DeadLetters: s.deadLetters, Exchanges: s.exchanges,
		Targets: s.targets, Metadata: md, Jobs: conn.State}
	if s.reporter != nil {
		hc.OpenHIM = s.reporter
	}
	s.echo = httpapi.New(hc)

	wctx, cancel := context.WithCancel(context.Background())
	hctx, cancelHandlers := context.WithCancel(context.Background())
	s.cancel, s.cancelHandlers = cancel, cancelHandlers
	// The mapper, and per target its delivery workers, gated by its slots, circuit and rate
	// limit.
	ackWait := s.cfg.Delivery.AckWait.D()
	consumers := append([]*pipeline.Consumer{s.mapper.Consumer(s.chain, ackWait)}, s.deliverer.Consumers(s.chain, ackWait)...)
	s.metrics.Pipeline.ObserveQueues(conn.JS, s.targets.Names())
	if s.reporter != nil {
		// The outcomes recorded in the OpenHIM core.
		consumers = append(consumers, s.reporter.Consumers(s.chain, ackWait)...)
	}
	var readyWG sync.WaitGroup
	errs := make(chan error, len(consumers))
	for _, c := range consumers {
		readyWG.Add(1)
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			once := sync.OnceFunc(readyWG.Done)
			defer once()
			if err := c.Run(wctx, hctx, conn.JS, once); err != nil {
				s.log.Error("consumer stopped", "consumer", c.Config.Durable, "err", err)
				errs <- err
			}
		}()
	}
	readyWG.Wait()
	select {
	case err := <-errs:
		s.stopWorkers(ctx)
		return err
	default:
	}
	// Open circuits ask their target whether it answers again.
	s.targets.RunProbes(wctx, s.cfg.Delivery.ProbeInterval.D(), &s.workers)

	if s.listener == nil {
		ln, err := net.Listen("tcp", s.cfg.HTTP.Addr)
		if err != nil {
			s.stopWorkers(ctx)
			return fmt.Errorf("listening on %s: %w", s.cfg.HTTP.Addr, err)
		}
		s.listener = ln
	}
	s.httpErr = make(chan error, 1)
	srv := &http.Server{Handler: s.echo, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.echo.Server = srv
	go func() {
		err := srv.Serve(s.listener)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.httpErr <- err
	}()
	s.ready.Store(true)
	if s.cfg.File() != "" {
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.mapping.Watch(wctx, 2*time.Second)
		}()
	}
	if s.openhim != nil {
		// Registration and heartbeats run in the background: a core that is down never
		// delays Tally or its readiness.
		if err := s.openhim.Run(wctx, s.applyOpenHIMConfig); err != nil {
			s.log.Error("starting OpenHIM registration", "err", err)
		}
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.reporter.DropLegacyClaims(wctx)
		}()
	}
	s.exchanges.Start(wctx, &s.workers) // the exchanges' schedulers
	s.log.Info("tally started", "addr", s.Addr(), "embedded_nats", conn.Embedded(), "sources", len(s.cfg.Sources),
		"targets", len(s.cfg.Targets), "version", s.version)
	return nil
}

// Addr is the address HTTP is served on.
func (s *Service) Addr() string {
	if s.listener == nil {
		return s.cfg.HTTP.Addr
	}
	return s.listener.Addr().String()
}

// Handler is the HTTP handler, for tests that do not need a listener.
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

func (s *Service) stopWorkers(ctx context.Context) {
	if s.cancel != nil {
		s.cancel()
	}
	s.workers.Wait() // background loops end at once on cancel
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	// Handlers in flight get http.shutdown_timeout, and never more than the stop's
	// deadline allows.
	grace := s.cfg.HTTP.ShutdownTimeout.D()
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, max(time.Until(dl)-stopMargin, 0))
	}
	cutTimer := time.NewTimer(grace)
	defer cutTimer.Stop()
	cut := cutTimer.C
	select {
	case <-done:
	case <-cut:
		s.log.Warn("stop deadline near; cutting deliveries in flight short (their messages go back to the stream)")
		s.cancelHandlers()
		<-done
	}
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

// health answers the HTTP surface's health checks.
type health struct{ s *Service }

func (h health) Started() time.Time { return h.s.started }
func (h health) Running() bool      { return h.s.ready.Load() }

func (h health) JetStream(ctx context.Context) error {
	conn := h.s.conn
	if conn == nil {
		return errors.New("not connected")
	}
	return conn.Ready(ctx)
}
