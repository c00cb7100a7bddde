// Package exchange runs scheduled pulls: aggregate data pulled on a schedule or on demand
// from a DHIS2 instance's analytics or CHT's export API, fed through Tally's pipeline as
// one transaction per run, with windows of periods pulled again, stale values removed,
// complete data sets registered and notification channels told when an exchange starts
// failing or recovers. A run (run.go):
//
//  1. optionally starts the source's analytics table update and waits for its job;
//  2. pulls every request — DHIS2 analytics (GET /api/analytics/dataValueSet.json) with the
//     request's dimensions, relative periods resolved on Tally's clock in the exchange's
//     time zone, or CHT's export API once per data set and month — and refuses a request
//     whose answer holds invalid values or, unless allowed, duplicate keys;
//  3. maps the values for every target with the mapping in force, to learn the target keys
//     it produces (for stale values and completeness);
//  4. publishes the values to TALLY_INGEST as one transaction of source "exchange:<name>",
//     and the removals of stale values — already in target terms — to TALLY_DELIVER in the
//     same transaction, so delivery, retries, dead letters and the transaction log work as
//     for any payload; then records the target keys it produced in tally_state;
//  5. waits (up to `await`) for the deliveries, registers complete data sets, and tells the
//     notification channels when the exchange starts failing or recovers.
//
// A scheduled tick runs once across replicas: the replica that wins a compare-and-set on
// tally_state's exchange.<name>.tick runs it. Runs of one exchange never overlap: a lease
// in tally_state (exchange.<name>.lease) and a lock in the process serialise them.
//
// It answers no HTTP (mediator/httpapi does) and delivers nothing itself: the values go
// through TALLY_INGEST and TALLY_DELIVER like any payload's.
package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tally-hmis/tally/adapters/cht"
	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/exchange/schedule"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// exchange is a configured exchange with what it needs at run time.
type exchange struct {
	cfg    *config.Exchange
	source *config.Source // the synthesised source its batches carry
	sched  *schedule.Schedule
	client *dhis2.Client // a DHIS2 source
	cht    *cht.Client   // a CHT source
	// running serialises runs in this process; the lease does across replicas. busy says
	// whether a run is under way here.
	running sync.Mutex
	busy    atomic.Bool
}

// Metrics are the tally_exchange_* collectors. Their exchange label takes the
// configured names only.
type Metrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	values      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	failing     *prometheus.GaugeVec
}

// NewMetrics builds the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "exchange", Name: "runs_total",
			Help: "Exchange runs (dry runs excluded), by exchange and result (succeeded, partial, failed)."}, []string{"exchange", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tally", Subsystem: "exchange", Name: "run_duration_seconds",
			Help: "Duration of exchange runs, analytics and awaited deliveries included.", Buckets: prometheus.ExponentialBuckets(0.1, 3, 10)},
			[]string{"exchange"}),
		values: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "exchange", Name: "values_total",
			Help: "Values of exchange runs, by exchange and kind (pulled, removed)."}, []string{"exchange", "kind"}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tally", Subsystem: "exchange", Name: "last_success_timestamp_seconds",
			Help: "When the exchange last ran successfully (Unix time; 0 before its first success in this process)."}, []string{"exchange"}),
		failing: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tally", Subsystem: "exchange", Name: "failing",
			Help: "1 while the exchange's last run failed or was partial, else 0."}, []string{"exchange"}),
	}
}

func (m *Metrics) touch(name string) {
	for _, st := range []string{RunSucceeded, RunPartial, RunFailed} {
		m.runs.WithLabelValues(name, st)
	}
	m.duration.WithLabelValues(name)
	m.values.WithLabelValues(name, "pulled")
	m.values.WithLabelValues(name, "removed")
	m.lastSuccess.WithLabelValues(name)
	m.failing.WithLabelValues(name)
}

func (m *Metrics) observe(run *ExchangeRun) {
	if run.DryRun {
		return
	}
	name := run.Exchange
	m.runs.WithLabelValues(name, run.Status).Inc()
	m.duration.WithLabelValues(name).Observe(run.Finished.Sub(run.Started).Seconds())
	m.values.WithLabelValues(name, "pulled").Add(float64(run.Values))
	removed := 0
	for _, t := range run.Targets {
		removed += t.Removed
	}
	m.values.WithLabelValues(name, "removed").Add(float64(removed))
	if run.Status == RunSucceeded {
		m.lastSuccess.WithLabelValues(name).Set(float64(run.Finished.Unix()))
		m.failing.WithLabelValues(name).Set(0)
	} else {
		m.failing.WithLabelValues(name).Set(1)
	}
}

// Set is the configured exchanges, built without I/O: each with its source's client, its
// schedule and the source its batches carry, and the notification channels.
type Set struct {
	byName    map[string]*exchange
	order     []*exchange
	notifiers map[string]notifier
	notify    config.Notify
	// owner identifies this process in leases.
	owner   string
	metrics *Metrics
}

// SetConfig is what NewSet needs besides the configuration.
type SetConfig struct {
	// HTTPClient is used for the sources and the notification channels; nil builds one
	// each.
	HTTPClient *http.Client
	// Version is Tally's, sent in the User-Agent.
	Version string
	Metrics *Metrics
}

// NewSet builds the exchanges (decoded and checked by config.Config.DecodeExchanges) and the
// channels of the notify section. It returns the configuration with a source added for
// each exchange ("exchange:<name>"), which the rest of the service must read, so that the
// mapper, dead-letter replay and preview find them like configured sources.
func NewSet(cfg *config.Config, exchanges []*config.Exchange, notify config.Notify, c SetConfig) (*Set, *config.Config, error) {
	set := &Set{byName: map[string]*exchange{}, notifiers: map[string]notifier{}, notify: notify,
		owner: leaseOwner(), metrics: c.Metrics}
	notifiers, err := buildNotifiers(cfg, &notify, c.HTTPClient, c.Version)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range notifiers {
		set.notifiers[n.name()] = n
	}
	if len(exchanges) == 0 {
		return set, cfg, nil
	}
	out := *cfg
	out.Sources = slices.Clone(cfg.Sources)
	for _, ec := range exchanges {
		e, err := newExchange(ec, c)
		if err != nil {
			return nil, nil, err
		}
		out.Sources = append(out.Sources, config.Source{
			Name: exchangeSourceName(ec.Name), Format: e.format(), Targets: ec.Targets, Mapping: ec.Mapping,
			BatchSize: ec.BatchSize, Unmapped: ec.Unmapped, Duplicates: ec.MappedDuplicates,
		})
		set.byName[ec.Name] = e
		set.order = append(set.order, e)
	}
	for _, e := range set.order {
		e.source, _ = out.Source(exchangeSourceName(e.cfg.Name))
		set.metrics.touch(e.cfg.Name)
	}
	return set, &out, nil
}

// newExchange builds one exchange: its schedule and its source's client.
func newExchange(ec *config.Exchange, c SetConfig) (*exchange, error) {
	e := &exchange{cfg: ec}
	var err error
	if ec.Schedule != "" {
		if e.sched, err = schedule.Parse(ec.Schedule); err != nil {
			return nil, fmt.Errorf("exchange %s: %w", ec.Name, err)
		}
	}
	src := ec.Source
	switch src.Type {
	case config.ExchangeSourceCHT:
		e.cht, err = cht.New(cht.Config{URL: src.URL, Username: src.Username, Password: src.Password,
			Timeout: src.Timeout.D(), HTTPClient: c.HTTPClient, UserAgent: "tally/" + c.Version})
	default:
		e.client, err = dhis2.New(dhis2.Config{BaseURL: src.URL, Username: src.Username, Password: src.Password,
			Token: src.Token, Timeout: src.Timeout.D(), APIVersion: src.APIVersion, HTTPClient: c.HTTPClient,
			UserAgent: "tally/" + c.Version, PollInterval: exchangePollInterval(ec), MaxJobWait: time.Hour})
	}
	if err != nil {
		return nil, fmt.Errorf("exchange %s: source: %w", ec.Name, err)
	}
	return e, nil
}

// format is the format of the exchange's transactions: what its source answers.
func (e *exchange) format() string {
	if e.cfg.Source.Type == config.ExchangeSourceCHT {
		return "cht"
	}
	return "analytics"
}

// SourceNames are the sources the exchanges' batches carry.
func (s *Set) SourceNames() []string {
	out := make([]string, len(s.order))
	for i, e := range s.order {
		out[i] = e.source.Name
	}
	return out
}

// leaseOwner names this process in leases: host, process id and start time.
func leaseOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
}

func exchangePollInterval(ec *config.Exchange) time.Duration {
	if ec.Analytics != nil && ec.Analytics.PollInterval > 0 {
		return ec.Analytics.PollInterval.D()
	}
	return config.DefaultAnalyticsPoll
}

// Runner runs the exchanges of a Set: on their schedules, and when asked. It is safe for
// concurrent use.
type Runner struct {
	*Set
	cfg      *config.Config
	store    *stateStore // tally_state
	tx       *txlog.TxLog
	pub      *stream.Publisher
	mapping  *pipeline.Mapping
	targets  *delivery.Targets
	settings Settings
	counter  Counter
	log      *slog.Logger
	now      func() time.Time
	// after waits for the scheduler; tests replace it.
	after func(d time.Duration) <-chan time.Time

	mu sync.Mutex
	// runCtx is the context of background runs once started, and workers tracks them.
	runCtx  context.Context
	workers *sync.WaitGroup
}

// Settings are what an operator may change while Tally runs (the OpenHIM console): whether
// deliveries to a target are dry runs.
type Settings interface {
	DryRun(target string) bool
}

// Counter counts what a run stores in TALLY_INGEST, as ingest counts a payload
// (mediator/ingest's Ingester).
type Counter interface {
	Ingested(source string, values, batches int)
}

// RunnerConfig is what a Runner works with.
type RunnerConfig struct {
	// Config is the configuration NewSet returned.
	Config    *config.Config
	State     jetstream.KeyValue
	TxLog     *txlog.TxLog
	Publisher *stream.Publisher
	Mapping   *pipeline.Mapping
	Targets   *delivery.Targets
	Settings  Settings
	Counter   Counter
	Log       *slog.Logger
	Now       func() time.Time
	// After waits for a scheduled tick; nil is time.After.
	After func(d time.Duration) <-chan time.Time
}

// NewRunner returns the runner of set.
func NewRunner(set *Set, c RunnerConfig) *Runner {
	after := c.After
	if after == nil {
		after = time.After
	}
	store := &stateStore{kv: c.State, owner: set.owner, log: c.Log, now: c.Now}
	return &Runner{Set: set, cfg: c.Config, store: store, tx: c.TxLog, pub: c.Publisher, mapping: c.Mapping,
		targets: c.Targets, settings: c.Settings, counter: c.Counter, log: c.Log, now: c.Now, after: after}
}

// Start starts a scheduler for every scheduled exchange, until ctx ends; the schedulers and
// the runs asked for (Launch) use ctx and are tracked by wg.
func (x *Runner) Start(ctx context.Context, wg *sync.WaitGroup) {
	x.mu.Lock()
	x.runCtx, x.workers = ctx, wg
	x.mu.Unlock()
	for _, e := range x.order {
		if e.sched == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.scheduleExchange(ctx, e)
		}()
	}
}

// exchange returns the exchange called name.
func (x *Runner) exchange(name string) (*exchange, bool) {
	e, ok := x.byName[name]
	return e, ok
}

// exchangeSourceName is the source name an exchange's batches carry.
func exchangeSourceName(exchange string) string { return "exchange:" + exchange }
