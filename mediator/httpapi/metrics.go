package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the tally_http_* collectors. Their route label is the route's template, so
// that ids in paths never become label values.
type Metrics struct {
	Requests *prometheus.CounterVec
	Duration *prometheus.HistogramVec
}

// NewMetrics builds the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		Requests: f.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by route, method and status code."}, []string{"route", "method", "code"}),
		Duration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tally", Subsystem: "http", Name: "request_duration_seconds",
			Help: "HTTP request duration, by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
	}
}
