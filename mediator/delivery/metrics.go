package delivery

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tally-hmis/tally/mediator/pipeline"
)

// Metrics are the tally_delivery_* collectors. Their target label takes the configured
// names only.
type Metrics struct {
	// Values counts what a target's import summaries reported, by outcome.
	Values   *prometheus.CounterVec
	Attempts *prometheus.CounterVec
	Latency  *prometheus.HistogramVec
	// Retries counts transient failures sent back to the stream for a later try.
	Retries *prometheus.CounterVec
	// Deferred counts messages returned unsent because the target's circuit opened.
	Deferred *prometheus.CounterVec
	// RequestSplits counts requests halved after the target answered 413.
	RequestSplits *prometheus.CounterVec
	// CircuitState is 0 closed, 1 half-open, 2 open.
	CircuitState *prometheus.GaugeVec
	// Completions counts complete data set registrations, by target and result
	// (registered, failed).
	Completions *prometheus.CounterVec
}

// NewMetrics builds the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		Values: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "values_total",
			Help: "Values reported by a target's import summary, by target and outcome (imported, updated, ignored, deleted, rejected, locked: refused for a locked or closed period)."},
			[]string{"target", "outcome"}),
		Attempts: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "attempts_total",
			Help: "Delivery attempts, by target and result (success, partial, transient, permanent)."}, []string{"target", "result"}),
		Latency: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tally", Subsystem: "delivery", Name: "request_duration_seconds",
			Help: "Duration of import requests to a target.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"target"}),
		Retries: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "retries_total",
			Help: "Batches sent back to TALLY_DELIVER after a transient failure, to be tried again later, by target."}, []string{"target"}),
		Deferred: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "deferred_total",
			Help: "Batches returned unsent because the target's circuit had opened, by target."}, []string{"target"}),
		RequestSplits: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "request_splits_total",
			Help: "Requests halved because the target answered 413, by target."}, []string{"target"}),
		CircuitState: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tally", Subsystem: "delivery", Name: "circuit_state",
			Help: "State of the target's circuit breaker: 0 closed, 1 half-open, 2 open (deliveries paused)."}, []string{"target"}),
		Completions: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "delivery", Name: "completions_total",
			Help: "Complete data set registrations a payload's completeDate asked for, by target and result (registered, failed)."},
			[]string{"target", "result"}),
	}
}

// Touch creates the series of the configured targets, so that dashboards see zeros, not
// gaps.
func (m *Metrics) Touch(targets []string) {
	for _, t := range targets {
		for _, o := range []string{"imported", "updated", "ignored", "deleted", "rejected", pipeline.ReasonLocked} {
			m.Values.WithLabelValues(t, o)
		}
		for _, r := range []string{"success", "partial", "transient", "permanent"} {
			m.Attempts.WithLabelValues(t, r)
		}
		m.Retries.WithLabelValues(t)
		m.Deferred.WithLabelValues(t)
		m.RequestSplits.WithLabelValues(t)
		m.CircuitState.WithLabelValues(t)
		m.Completions.WithLabelValues(t, "registered")
		m.Completions.WithLabelValues(t, "failed")
	}
}

// NewConcurrencyGauge registers tally_delivery_concurrency_limit, which a service registers
// beside NewMetrics' collectors.
func NewConcurrencyGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tally", Subsystem: "delivery", Name: "concurrency_limit",
		Help: "Requests a target may have in flight now: targets[].concurrency, or the OpenHIM console's delivery_concurrency, or below either the adaptive limit (targets[].adaptive_concurrency)."},
		[]string{"target"})
	reg.MustRegister(g)
	return g
}
