package mediator

import (
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
)

// consumers builds the mapper's consumer and one delivery consumer per target.
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
	out = append(out, s.deliverer.Consumers(s.chain, ackWait)...)
	if s.conn != nil {
		s.metrics.observeQueues(s.conn.JS, s.targets.Names())
	}
	return out
}
