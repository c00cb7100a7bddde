package mediator

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tally-hmis/tally/adapters/cht"
	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/schedule"
)

// Exchanges pull aggregate data on a schedule or on demand and feed it through Tally's
// pipeline. A run (exchange_run.go):
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

// exchanges is the service's exchange runtime.
type exchanges struct {
	byName    map[string]*exchange
	order     []*exchange
	notifiers map[string]notifier
	notify    config.Notify
	// runCtx is the service's worker context once started: background runs use it.
	runCtx context.Context
	// after waits for the scheduler; tests replace it.
	after func(d time.Duration) <-chan time.Time
	// owner identifies this process in leases.
	owner   string
	metrics *exchangeMetrics
}

// exchangeMetrics are the tally_exchange_* collectors. Their exchange label takes the
// configured names only.
type exchangeMetrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	values      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	failing     *prometheus.GaugeVec
}

func newExchangeMetrics(reg prometheus.Registerer) *exchangeMetrics {
	f := promauto.With(reg)
	return &exchangeMetrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "exchange", Name: "runs_total",
			Help: "Exchange runs (dry runs excluded), by exchange and status (succeeded, partial, failed)."}, []string{"exchange", "status"}),
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

func (m *exchangeMetrics) touch(name string) {
	for _, st := range []string{RunSucceeded, RunPartial, RunFailed} {
		m.runs.WithLabelValues(name, st)
	}
	m.duration.WithLabelValues(name)
	m.values.WithLabelValues(name, "pulled")
	m.values.WithLabelValues(name, "removed")
	m.lastSuccess.WithLabelValues(name)
	m.failing.WithLabelValues(name)
}

func (m *exchangeMetrics) observe(run *ExchangeRun) {
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

// initExchanges builds the exchanges of the configuration (no I/O) and adds their sources
// to the service's view of the configuration, so that the mapper, dead-letter replay and
// preview find them like configured sources. service.go's New calls it.
func (s *Service) initExchanges(o Options) error {
	x := &exchanges{byName: map[string]*exchange{}, notifiers: map[string]notifier{}, notify: s.sections.Notify,
		after: time.After, owner: leaseOwner(), metrics: newExchangeMetrics(s.reg)}
	s.exch = x
	notifiers, err := buildNotifiers(s.cfg, &s.sections.Notify, o.HTTPClient, s.version)
	if err != nil {
		return err
	}
	for _, n := range notifiers {
		x.notifiers[n.name()] = n
	}
	if len(s.sections.Exchanges) == 0 {
		return nil
	}
	cfg := *s.cfg
	cfg.Sources = slices.Clone(s.cfg.Sources)
	for _, ec := range s.sections.Exchanges {
		e := &exchange{cfg: ec}
		if ec.Schedule != "" {
			if e.sched, err = schedule.Parse(ec.Schedule); err != nil {
				return fmt.Errorf("exchange %s: %w", ec.Name, err)
			}
		}
		src := ec.Source
		switch src.Type {
		case config.ExchangeSourceCHT:
			e.cht, err = cht.New(cht.Config{URL: src.URL, Username: src.Username, Password: src.Password,
				Timeout: src.Timeout.D(), HTTPClient: o.HTTPClient, UserAgent: "tally/" + s.version})
		default:
			e.client, err = dhis2.New(dhis2.Config{BaseURL: src.URL, Username: src.Username, Password: src.Password,
				Token: src.Token, Timeout: src.Timeout.D(), APIVersion: src.APIVersion, HTTPClient: o.HTTPClient,
				UserAgent: "tally/" + s.version, PollInterval: exchangePollInterval(ec), MaxJobWait: time.Hour})
		}
		if err != nil {
			return fmt.Errorf("exchange %s: source: %w", ec.Name, err)
		}
		format := "analytics"
		if src.Type == config.ExchangeSourceCHT {
			format = "cht"
		}
		cfg.Sources = append(cfg.Sources, config.Source{
			Name: exchangeSourceName(ec.Name), Format: format, Targets: ec.Targets, Mapping: ec.Mapping,
			BatchSize: ec.BatchSize, Unmapped: ec.Unmapped, Duplicates: ec.MappedDuplicates,
		})
		x.byName[ec.Name] = e
		x.order = append(x.order, e)
	}
	s.cfg = &cfg
	for _, e := range x.order {
		e.source, _ = s.cfg.Source(exchangeSourceName(e.cfg.Name))
		s.metrics.Ingest.Touch([]string{e.source.Name})
		x.metrics.touch(e.cfg.Name)
	}
	return nil
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

// startExchanges starts a scheduler for every scheduled exchange; service.go's Start
// calls it with the workers' context.
func (s *Service) startExchanges(ctx context.Context) {
	x := s.exch
	if x == nil {
		return
	}
	x.runCtx = ctx
	for _, e := range x.order {
		if e.sched == nil {
			continue
		}
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.scheduleExchange(ctx, e)
		}()
	}
}

// exchange returns the exchange called name.
func (s *Service) exchange(name string) (*exchange, bool) {
	if s.exch == nil {
		return nil, false
	}
	e, ok := s.exch.byName[name]
	return e, ok
}

// exchangeSourceName is the source name an exchange's batches carry.
func exchangeSourceName(exchange string) string { return "exchange:" + exchange }
