package dlq

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tally-hmis/tally/mediator/pipeline"
)

// Metrics are the tally_dlq_* collectors.
type Metrics struct {
	// Messages counts dead letters written, by target and reason.
	Messages  *prometheus.CounterVec
	Replayed  *prometheus.CounterVec
	Discarded *prometheus.CounterVec

	depth *depthCollector
}

// NewMetrics builds the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Messages: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "dlq", Name: "messages_total",
			Help: "Dead letters written, by target and reason."}, []string{"target", "reason"}),
		Replayed: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "dlq", Name: "replayed_total",
			Help: "Dead letters replayed to their target, by target."}, []string{"target"}),
		Discarded: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "dlq", Name: "discarded_total",
			Help: "Dead letters discarded, by target."}, []string{"target"}),
		depth: newDepthCollector(),
	}
	reg.MustRegister(m.depth)
	return m
}

// ObserveDepth points tally_dlq_depth at the store and the configured targets.
func (m *Metrics) ObserveDepth(s *Store, targets []string) {
	m.depth.store.Store(&depthProbe{store: s, targets: targets})
}

// Touch creates the series of the configured targets, so that dashboards see zeros.
func (m *Metrics) Touch(targets []string) {
	for _, t := range targets {
		for _, r := range []string{pipeline.ReasonRejected, pipeline.ReasonPermanent, pipeline.ReasonExhausted,
			pipeline.ReasonMapping, pipeline.ReasonLocked} {
			m.Messages.WithLabelValues(t, r)
		}
		m.Replayed.WithLabelValues(t)
		m.Discarded.WithLabelValues(t)
	}
}

// changed says the queue changed here, so that tally_dlq_depth is counted again.
func (m *Metrics) changed() {
	if m.depth != nil {
		m.depth.forget()
	}
}
