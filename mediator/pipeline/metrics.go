package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
)

// Metrics are the mapper's collectors (tally_mapper_*) and the backlog of the streams the
// stages consume (tally_delivery_oldest_undelivered_seconds, tally_consumer_pending_messages).
type Metrics struct {
	// Values counts the values leaving the mapper, by source, target and outcome.
	Values *prometheus.CounterVec
	// Warnings counts what mapping warned about delivered values, by source, target and
	// DHIS2 error code (E7636: org unit not assigned to the data set).
	Warnings *prometheus.CounterVec
	// Duplicates counts the target keys two or more values met on, by source, target and
	// what the duplicates policy did (last, sum, refused, identical).
	Duplicates *prometheus.CounterVec
	// Batches counts the batches mapped and stored, by source and by where they were mapped:
	// at ingest (Direct, straight into TALLY_DELIVER) or by the mapper stage.
	Batches *prometheus.CounterVec

	queues *queueCollector
}

// Where a batch was mapped (tally_mapper_batches_total's stage label).
const (
	StageIngest = "ingest"
	StageMapper = "mapper"
)

// NewMetrics builds the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Values: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "values_total",
			Help: "Values leaving the mapper, by source, target and outcome (mapped, unmapped, refused: dead letters of reason mapping)."}, []string{"source", "target", "outcome"}),
		Warnings: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "warnings_total",
			Help: "Warnings about mapped values that were delivered all the same, by source, target and DHIS2 error code (E7636: org unit not assigned to the data set)."},
			[]string{"source", "target", "code"}),
		Duplicates: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "duplicate_keys_total",
			Help: "Target keys that two or more values of a payload met on, by source, target and what the duplicates policy did (last, sum, refused, identical)."},
			[]string{"source", "target", "action"}),
		Batches: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "batches_total",
			Help: "Batches mapped and stored for delivery, by source and stage: ingest (mapped as the payload was stored, straight into TALLY_DELIVER) or mapper (through TALLY_INGEST and the mapper stage)."},
			[]string{"source", "stage"}),
		queues: newQueueCollector(),
	}
	reg.MustRegister(m.queues)
	return m
}

// Touch creates the mapper's series of every route from a source to a target, so that
// dashboards and alerts see zeros before the first value, not gaps.
func (m *Metrics) Touch(cfg *config.Config) {
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		m.Batches.WithLabelValues(src.Name, StageIngest)
		m.Batches.WithLabelValues(src.Name, StageMapper)
		for _, t := range cfg.TargetsOf(src) {
			for _, o := range []string{"mapped", "unmapped", "refused"} {
				m.Values.WithLabelValues(src.Name, t.Name, o)
			}
			// E7636 is the one code mapping warns with (transform/mapping's codeNotAssigned).
			m.Warnings.WithLabelValues(src.Name, t.Name, "E7636")
			for _, a := range []transform.DuplicateAction{transform.DuplicateLast, transform.DuplicateSum,
				transform.DuplicateRefused, transform.DuplicateIdentical} {
				m.Duplicates.WithLabelValues(src.Name, t.Name, string(a))
			}
		}
	}
}

// ObserveQueues points the backlog gauges at a JetStream and the configured targets.
func (m *Metrics) ObserveQueues(js jetstream.JetStream, targets []string) {
	m.queues.probe.Store(&queueProbe{js: js, targets: targets})
}

// queueCollector reads the backlog from JetStream when scraped:
// tally_delivery_oldest_undelivered_seconds{target} is the age of the oldest message still
// in TALLY_DELIVER for the target (waiting, in flight or waiting for a retry; 0 when there
// is none), and tally_consumer_pending_messages{consumer} is what a durable consumer has not
// finished: messages not yet delivered plus those delivered and not yet acknowledged
// (in flight or naked for a retry).
type queueCollector struct {
	oldest  *prometheus.Desc
	pending *prometheus.Desc
	probe   atomic.Pointer[queueProbe]
	now     func() time.Time
}

type queueProbe struct {
	js      jetstream.JetStream
	targets []string
}

// queueScrapeTimeout bounds the JetStream calls of one scrape.
const queueScrapeTimeout = 2 * time.Second

func newQueueCollector() *queueCollector {
	return &queueCollector{
		oldest: prometheus.NewDesc("tally_delivery_oldest_undelivered_seconds",
			"Age of the oldest message waiting in TALLY_DELIVER for the target (0 when none).", []string{"target"}, nil),
		pending: prometheus.NewDesc("tally_consumer_pending_messages",
			"Messages a durable consumer has not finished: not yet delivered plus awaiting acknowledgement or a retry.",
			[]string{"consumer"}, nil),
		now: time.Now,
	}
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.oldest
	ch <- q.pending
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	p := q.probe.Load()
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueScrapeTimeout)
	defer cancel()
	if st, err := p.js.Stream(ctx, stream.DeliverStream); err == nil {
		for _, t := range p.targets {
			age := 0.0
			m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(stream.DeliverPrefix+t))
			switch {
			case err == nil:
				age = max(0, q.now().Sub(m.Time).Seconds())
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				continue // unknown: leave the series out rather than report a false 0
			}
			ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, age, t)
		}
	}
	consumers := [][2]string{{stream.IngestStream, MapperConsumer}}
	for _, t := range p.targets {
		consumers = append(consumers, [2]string{stream.DeliverStream, DeliverConsumer(t)})
	}
	for _, c := range consumers {
		cons, err := p.js.Consumer(ctx, c[0], c[1])
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		n := float64(info.NumPending) + float64(info.NumAckPending)
		ch <- prometheus.MustNewConstMetric(q.pending, prometheus.GaugeValue, n, c[1])
	}
}
