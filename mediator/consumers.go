package mediator

import (
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
)

// consumers builds the mapper's consumer and one delivery consumer per target, and gives each
// target its circuit breaker and rate limiter.
func (s *Service) consumers() []*pipeline.Consumer {
	ackWait := s.cfg.Delivery.AckWait.D()
	maxAttempts := 1
	for i := range s.cfg.Targets {
		maxAttempts = max(maxAttempts, s.cfg.Targets[i].Retry.MaxAttempts)
	}
	mapStop, mapServerMax := pipeline.BackstopFor(maxAttempts)
	out := []*pipeline.Consumer{{
		Stream: stream.IngestStream, Workers: 2, Log: s.log,
		Handle: s.chain.Wrap(pipeline.Stage{Name: "mapper", DLQTarget: pipeline.IngestDLQ, AckWait: ackWait, MaxDeliver: mapStop}, s.mapWork),
		Config: jetstream.ConsumerConfig{Durable: pipeline.MapperConsumer, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: ackWait, MaxAckPending: 64, MaxDeliver: mapServerMax, FilterSubject: stream.IngestPrefix + ">"},
	}}
	names := make([]string, 0, len(s.targets))
	for name := range s.targets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := s.targets[name]
		s.controlTarget(t)
		stop, serverMax := pipeline.BackstopFor(t.cfg.Retry.MaxAttempts)
		st := pipeline.Stage{Name: "deliver", DLQTarget: name, AckWait: ackWait, MaxDeliver: stop}
		out = append(out, &pipeline.Consumer{
			// Enough workers for any limit; the target's slots admit as many as the limit in
			// force, which the OpenHIM console can change while they run.
			Stream: stream.DeliverStream, Workers: maxDeliveryConcurrency, Gate: t, Log: s.log,
			Handle: s.chain.Wrap(st, s.deliverWork(t)),
			Config: jetstream.ConsumerConfig{Durable: pipeline.DeliverConsumer(name), AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: ackWait, MaxAckPending: pipeline.DeliverMaxAckPending, MaxDeliver: serverMax,
				FilterSubject: stream.DeliverPrefix + name},
		})
	}
	if s.conn != nil {
		s.metrics.observeQueues(s.conn.JS, names)
	}
	return out
}
