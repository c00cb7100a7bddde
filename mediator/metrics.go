package mediator

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
)

// Metrics are the tally_ collectors, registered on an injected registry.
type Metrics struct {
	IngestValues   *prometheus.CounterVec
	IngestMessages *prometheus.CounterVec
	IngestRejected *prometheus.CounterVec
	MappedValues   *prometheus.CounterVec
	HTTPRequests   *prometheus.CounterVec
	HTTPDuration   *prometheus.HistogramVec

	// MappingWarnings counts what mapping warned about delivered values, by source, target
	// and DHIS2 error code (E7636: org unit not assigned to the data set).
	MappingWarnings *prometheus.CounterVec
	// MappingDuplicates counts the target keys two or more values met on, by source,
	// target and what the duplicates policy did (last, sum, refused, identical).
	MappingDuplicates *prometheus.CounterVec

	// Delivery and DLQ are the delivery workers' (mediator/delivery) and the dead-letter
	// queue's (mediator/dlq).
	Delivery *delivery.Metrics
	DLQ      *dlq.Metrics

	queues *queueCollector
}

// NewMetrics builds and registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		IngestValues: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "values_total",
			Help: "Data values accepted and stored in TALLY_INGEST, by source."}, []string{"source"}),
		IngestMessages: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "messages_total",
			Help: "Batches published to TALLY_INGEST, by source."}, []string{"source"}),
		IngestRejected: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "rejected_requests_total",
			Help: "Ingest requests refused, by source and reason."}, []string{"source", "reason"}),
		MappedValues: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "values_total",
			Help: "Values leaving the mapper, by source, target and outcome (mapped, unmapped, refused: dead letters of reason mapping)."}, []string{"source", "target", "outcome"}),
		HTTPRequests: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by route, method and status code."}, []string{"route", "method", "code"}),
		HTTPDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tally", Subsystem: "http", Name: "request_duration_seconds",
			Help: "HTTP request duration, by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),

		MappingWarnings: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "warnings_total",
			Help: "Warnings about mapped values that were delivered all the same, by source, target and DHIS2 error code (E7636: org unit not assigned to the data set)."},
			[]string{"source", "target", "code"}),
		MappingDuplicates: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "duplicate_keys_total",
			Help: "Target keys that two or more values of a payload met on, by source, target and what the duplicates policy did (last, sum, refused, identical)."},
			[]string{"source", "target", "action"}),
		Delivery: delivery.NewMetrics(reg),
		DLQ:      dlq.NewMetrics(reg),
		queues:   newQueueCollector(),
	}
	reg.MustRegister(m.queues)
	return m
}

// touch creates the series known in advance so that dashboards see zeros, not gaps.
func (m *Metrics) touch(sources, targets []string) {
	for _, s := range sources {
		m.IngestValues.WithLabelValues(s)
		m.IngestMessages.WithLabelValues(s)
	}
	m.Delivery.Touch(targets)
	m.DLQ.Touch(targets)
}

// observeQueues points the queue gauges at a JetStream and the configured targets.
func (m *Metrics) observeQueues(js jetstream.JetStream, targets []string) {
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
	consumers := [][2]string{{stream.IngestStream, pipeline.MapperConsumer}}
	for _, t := range p.targets {
		consumers = append(consumers, [2]string{stream.DeliverStream, pipeline.DeliverConsumer(t)})
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
