package mediator

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/httpapi"
	webconsole "github.com/tally-hmis/tally/mediator/httpapi/console"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/mediator/openhim/outcome"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// build wires the parts that need JetStream, down the data flow: the transaction log and
// the publisher; the mapping in force and the dead-letter queue; the consume chain and the
// stages (delivery, mapper); ingest, the exchanges and the OpenHIM outcomes; and the HTTP
// surface over them. It does no I/O.
func (s *Service) build(conn *stream.Conn) {
	s.pub = stream.NewPublisher(conn.JS, 256)
	s.txlog = txlog.New(conn.Tx)
	md := pipeline.NewMetadataCache(s.cfg, s.targets.Clients(), conn.State, s.log, s.now)
	s.mapping = pipeline.NewMapping(s.cfg, s.sections.Mappings, md, conn.State, s.reloads, s.log)
	s.deadLetters = dlq.New(dlq.Config{JS: conn.JS, Publisher: s.pub, TxLog: s.txlog, Config: s.cfg, Mapper: s.mapping,
		Metrics: s.metrics.DLQ, Log: s.log, Now: s.now})
	s.metrics.DLQ.ObserveDepth(s.deadLetters, s.cfg.TargetNames())
	s.chain = &pipeline.Chain{Log: s.log, NC: conn.NC, DeadLetters: s.deadLetters}
	s.deliverer = delivery.New(delivery.Config{Targets: s.targets, TxLog: s.txlog, DeadLetters: s.deadLetters,
		Metrics: s.metrics.Delivery, Log: s.log, Now: s.now, UpgradeWait: s.cfg.Delivery.UpgradeWait.D()})
	s.mapper = pipeline.NewMapper(pipeline.MapperConfig{Config: s.cfg, Mapping: s.mapping, Publisher: s.pub, TxLog: s.txlog,
		DeadLetters: s.deadLetters, Delivery: s.deliverer, Metrics: s.metrics.Pipeline, Log: s.log, Now: s.now})
	s.ingester = ingest.New(ingest.Config{Config: s.cfg, Publisher: s.pub, TxLog: s.txlog, Mapping: s.mapping, Mapper: s.mapper,
		Targets: s.targets, Settings: s.console, Metrics: s.metrics.Ingest, Log: s.log, Now: s.now})
	s.exchanges = exchange.NewRunner(s.exchangeSet, exchange.RunnerConfig{Config: s.cfg, State: conn.State, TxLog: s.txlog,
		Publisher: s.pub, Mapping: s.mapping, Targets: s.targets, Settings: s.console, Counter: s.ingester, Log: s.log,
		Now: s.now, After: s.exchangeTimer})
	s.watcher = exchange.NewWatcher(exchange.WatcherConfig{Set: s.exchangeSet, State: conn.State, Targets: s.targets,
		TargetNames: s.cfg.TargetNames(), Waiting: waitingIn(s.deadLetters), Log: s.log, Now: s.now})
	hc := httpapi.Config{Config: s.cfg, Log: s.log, Now: s.now, Version: s.version, Registry: s.reg, Metrics: s.metrics.HTTP,
		Health: health{s}, Ingester: s.ingester, TxLog: s.txlog, DeadLetters: s.deadLetters, Exchanges: s.exchanges,
		Targets: s.targets, Metadata: md, Jobs: conn.State}
	hc.Console = &webconsole.Config{Config: s.cfg, Log: s.log, Now: s.now, TxLog: s.txlog, DeadLetters: s.deadLetters,
		Exchanges: s.exchanges, Targets: s.targets, Metadata: md, Preview: s.ingester, Gatherer: s.reg,
		Waiting: delivery.Backlog{JS: conn.JS}}
	if s.openhim != nil {
		s.reporter = outcome.New(outcome.Config{Config: s.cfg, Tx: conn.Tx, State: conn.State, TxLog: s.txlog, Publisher: s.pub,
			DeadLetters: s.deadLetters, Client: s.openhim.Client(), OpenHIM: s.sections.OpenHIM, Settings: s.console,
			Metrics: s.outcomes, Log: s.log, Now: s.now})
		hc.OpenHIM = s.reporter // only when there is one: a nil *Reporter is no nil interface
	}
	s.echo = httpapi.New(hc)
}

// What the HTTP surface calls is what the packages below it provide.
var (
	_ httpapi.Ingester       = (*ingest.Ingester)(nil)
	_ httpapi.TxLog          = (*txlog.TxLog)(nil)
	_ httpapi.DeadLetters    = (*dlq.Store)(nil)
	_ httpapi.Exchanges      = (*exchange.Runner)(nil)
	_ httpapi.Targets        = (*delivery.Targets)(nil)
	_ httpapi.Metadata       = (*pipeline.MetadataCache)(nil)
	_ httpapi.OpenHIM        = (*outcome.Reporter)(nil)
	_ httpapi.Health         = health{}
	_ webconsole.TxLog       = (*txlog.TxLog)(nil)
	_ webconsole.DeadLetters = (*dlq.Store)(nil)
	_ webconsole.Exchanges   = (*exchange.Runner)(nil)
	_ webconsole.Targets     = (*delivery.Targets)(nil)
	_ webconsole.Metadata    = (*pipeline.MetadataCache)(nil)
	_ webconsole.Previewer   = (*ingest.Ingester)(nil)
	_ webconsole.Waiting     = delivery.Backlog{}
	_ pipeline.Delivery      = (*delivery.Deliverer)(nil)
	_ pipeline.DeadLetters   = (*dlq.Store)(nil)
	_ dlq.Mapper             = (*pipeline.Mapping)(nil)
	_ exchange.Counter       = (*ingest.Ingester)(nil)
	_ exchange.Settings      = (*console)(nil)
	_ ingest.Settings        = (*console)(nil)
	_ outcome.Settings       = (*console)(nil)
)

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

// waitingIn adapts the dead-letter queue to what the notification watcher reads: the dead
// letters waiting per target and source, with their first transactions.
func waitingIn(store *dlq.Store) func(ctx context.Context) ([]exchange.Waiting, error) {
	return func(ctx context.Context) ([]exchange.Waiting, error) {
		byKey := map[[2]string]*exchange.Waiting{}
		var order [][2]string
		err := store.Scan(ctx, dlq.DLQFilter{}, 0, func(d *dlq.DeadLetterSummary) bool {
			k := [2]string{d.Target, d.Source}
			w := byKey[k]
			if w == nil {
				w = &exchange.Waiting{Target: d.Target, Source: d.Source}
				byKey[k] = w
				order = append(order, k)
			}
			w.Count++
			if len(w.TxIDs) < 10 && d.TxID != "" && !slices.Contains(w.TxIDs, d.TxID) {
				w.TxIDs = append(w.TxIDs, d.TxID)
			}
			return true
		})
		out := make([]exchange.Waiting, 0, len(order))
		for _, k := range order {
			out = append(out, *byKey[k])
		}
		return out, err
	}
}
