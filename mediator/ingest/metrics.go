package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the tally_ingest_* collectors. Their source label takes the configured names
// only (an exchange's source included).
type Metrics struct {
	Values   *prometheus.CounterVec
	Messages *prometheus.CounterVec
	// Rejected counts refused requests, by source and reason (RejectReasons).
	Rejected *prometheus.CounterVec
}

// RejectReasons are the values of tally_ingest_rejected_requests_total's reason label:
// a malformed payload, one over the size limit, an unknown format, a store or target
// that is not there, a request without valid credentials, one asking what the source may
// not do (delete, a data set or org unit not allowed), one over the source's rate limit,
// and one beyond the bound of payloads read at once.
func RejectReasons() []string {
	return []string{"bad_input", "too_large", "unsupported", "unavailable", "unauthorized", "forbidden", "rate_limited", "busy"}
}

// NewMetrics builds the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		Values: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "values_total",
			Help: "Data values accepted and stored in TALLY_INGEST, by source."}, []string{"source"}),
		Messages: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "messages_total",
			Help: "Batches published to TALLY_INGEST, by source."}, []string{"source"}),
		Rejected: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "ingest", Name: "rejected_requests_total",
			Help: "Ingest requests refused, by source and reason."}, []string{"source", "reason"}),
	}
}

// Touch creates the series of the sources, so that dashboards see zeros, not gaps.
func (m *Metrics) Touch(sources []string) {
	for _, s := range sources {
		m.Values.WithLabelValues(s)
		m.Messages.WithLabelValues(s)
		for _, r := range RejectReasons() {
			m.Rejected.WithLabelValues(s, r)
		}
	}
}
