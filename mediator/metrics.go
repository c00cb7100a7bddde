package mediator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the tally_ collectors, registered on an injected registry.
type Metrics struct {
	IngestValues     *prometheus.CounterVec
	IngestMessages   *prometheus.CounterVec
	IngestRejected   *prometheus.CounterVec
	MappedValues     *prometheus.CounterVec
	DeliveredValues  *prometheus.CounterVec
	DeliveryAttempts *prometheus.CounterVec
	DeliveryLatency  *prometheus.HistogramVec
	DeadLetters      *prometheus.CounterVec
	HTTPRequests     *prometheus.CounterVec
	HTTPDuration     *prometheus.HistogramVec
}

// NewMetrics builds and registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		IngestValues: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "values_total",
			Help: "Data values accepted and stored in TALLY_INGEST, by source."}, []string{"source"}),
		IngestMessages: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "messages_total",
			Help: "Batches published to TALLY_INGEST, by source."}, []string{"source"}),
		IngestRejected: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "rejected_requests_total",
			Help: "Ingest requests refused, by source and reason."}, []string{"source", "reason"}),
		MappedValues: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapper", Name: "values_total",
			Help: "Values leaving the mapper, by source, target and outcome (mapped, unmapped)."}, []string{"source", "target", "outcome"}),
		DeliveredValues: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "values_total",
			Help: "Values reported by a target's import summary, by target and outcome (imported, updated, ignored, deleted, rejected)."},
			[]string{"target", "outcome"}),
		DeliveryAttempts: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "attempts_total",
			Help: "Delivery attempts, by target and result (success, partial, transient, permanent)."}, []string{"target", "result"}),
		DeliveryLatency: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tally", Subsystem: "delivery", Name: "request_duration_seconds",
			Help: "Duration of import requests to a target.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"target"}),
		DeadLetters: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "dlq", Name: "messages_total",
			Help: "Dead letters written, by target and reason."}, []string{"target", "reason"}),
		HTTPRequests: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by route, method and status code."}, []string{"route", "method", "code"}),
		HTTPDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tally", Subsystem: "http", Name: "request_duration_seconds",
			Help: "HTTP request duration, by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
	}
}

// touch creates the series known in advance so that dashboards see zeros, not gaps.
func (m *Metrics) touch(sources, targets []string) {
	for _, s := range sources {
		m.IngestValues.WithLabelValues(s)
		m.IngestMessages.WithLabelValues(s)
	}
	for _, t := range targets {
		for _, o := range []string{"imported", "updated", "ignored", "deleted", "rejected"} {
			m.DeliveredValues.WithLabelValues(t, o)
		}
		for _, r := range []string{"success", "partial", "transient", "permanent"} {
			m.DeliveryAttempts.WithLabelValues(t, r)
		}
	}
}
