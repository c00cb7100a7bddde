package mediator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/httpapi"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/mediator/pipeline"
)

// Metrics are the tally_ collectors the service's packages build, registered on an injected
// registry: the set deploy/checks holds the alerts and the dashboard to. The service
// registers a few more beside them (the mapping reloads, the delivery concurrency limit,
// the OpenHIM outcomes, the exchanges').
type Metrics struct {
	// Ingest are ingest's (mediator/ingest).
	Ingest *ingest.Metrics
	// HTTP are the HTTP surface's (mediator/httpapi).
	HTTP *httpapi.Metrics

	// Pipeline, Delivery and DLQ are the mapper's and the queues' (mediator/pipeline), the
	// delivery workers' (mediator/delivery) and the dead-letter queue's (mediator/dlq).
	Pipeline *pipeline.Metrics
	Delivery *delivery.Metrics
	DLQ      *dlq.Metrics
}

// NewMetrics builds and registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Ingest:   ingest.NewMetrics(reg),
		HTTP:     httpapi.NewMetrics(reg),
		Pipeline: pipeline.NewMetrics(reg),
		Delivery: delivery.NewMetrics(reg),
		DLQ:      dlq.NewMetrics(reg),
	}
	return m
}

// touch creates the series known in advance so that dashboards see zeros, not gaps.
func (m *Metrics) touch(cfg *config.Config, sources, targets []string) {
	m.Ingest.Touch(sources)
	m.Pipeline.Touch(cfg)
	m.Delivery.Touch(targets)
	m.DLQ.Touch(targets)
}
