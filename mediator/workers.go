package mediator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/stream"
)

// gate admits a consumer's workers to fetch: a target's circuit breaker and rate limit.
type gate interface {
	acquire(ctx context.Context) (permit, error)
	release(p permit)
}

// consumer runs a durable pull consumer with a fixed number of workers. Each worker pulls one
// message at a time, and only when its gate admits it, so nothing is fetched ahead of the
// workers: a message waits in the stream, not in memory, and an open circuit stops pulling
// altogether. Each message is handled by exactly one worker through the stage's consume
// chain (consume.go), which acknowledges it, returns it with a delay or dead-letters it; a
// message left unacknowledged (the process died) is redelivered after AckWait.
type consumer struct {
	stream  string
	cfg     jetstream.ConsumerConfig
	workers int
	gate    gate // nil: always admitted
	handle  msgHandler
	log     *slog.Logger
}

// run consumes until ctx ends, then waits for the handlers in flight. Handlers run with
// hctx, which outlives ctx: shutdown first stops the pulls, and cancels hctx only when its
// deadline nears, so a request in flight can finish and be acknowledged.
func (c *consumer) run(ctx, hctx context.Context, js jetstream.JetStream, ready func()) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg)
	if err != nil {
		return fmt.Errorf("creating consumer %s on %s: %w", c.cfg.Durable, c.stream, err)
	}
	if ready != nil {
		ready()
	}
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() { c.work(ctx, hctx, cons) })
	}
	wg.Wait()
	return nil
}

// work is one worker's loop: be admitted, pull one message, handle it.
func (c *consumer) work(ctx, hctx context.Context, cons jetstream.Consumer) {
	failures := 0
	for ctx.Err() == nil {
		var p permit
		if c.gate != nil {
			var err error
			if p, err = c.gate.acquire(ctx); err != nil {
				return // ctx ended
			}
		}
		msg, err := c.fetch(cons)
		if msg == nil {
			if c.gate != nil {
				c.gate.release(p)
			}
			if err != nil && ctx.Err() == nil {
				failures++
				c.log.Warn("pulling from JetStream failed; retrying", "consumer", c.cfg.Durable, "err", err)
				pause(ctx, min(time.Duration(failures)*time.Second, 30*time.Second))
			}
			continue
		}
		failures = 0
		_ = c.handle(hctx, msg, p) // settled by the chain, which logs what needs it
		if c.gate != nil {
			// A permit the handler settled (success, failure) is already spent; this
			// releases one that led to no verdict (a decode failure, a panic).
			c.gate.release(p)
		}
	}
}

// fetchWait is how long a pull waits for a message. Pulls are never cancelled: a message
// the server sends to a pull the client has given up on is stranded until AckWait. Waiting
// for the pull to expire instead bounds how long shutdown waits for an idle worker.
const fetchWait = 500 * time.Millisecond

// fetch pulls one message. No message and no error means there was nothing to fetch.
func (c *consumer) fetch(cons jetstream.Consumer) (jetstream.Msg, error) {
	msg, err := cons.Next(jetstream.FetchMaxWait(fetchWait))
	switch {
	case msg != nil:
		return msg, nil
	case err == nil, errors.Is(err, nats.ErrTimeout):
		return nil, nil
	}
	return nil, err
}

// nak returns a message to the stream, to be redelivered after delay, and waits for
// JetStream to confirm it. An unconfirmed nak sent just before shutdown can be lost with the
// connection. The delay is never zero: the server keeps a plain nak in memory only, so after
// a restart (of an embedded server) the message would wait out AckWait, while a nak with a
// delay is written to the consumer's stored state.
func nak(ctx context.Context, nc *nats.Conn, msg jetstream.Msg, delay time.Duration) error {
	delay = max(delay, time.Millisecond)
	if nc == nil || msg.Reply() == "" {
		return msg.NakWithDelay(delay)
	}
	body := fmt.Appendf(nil, `-NAK {"delay": %d}`, delay.Nanoseconds())
	if _, err := nc.RequestWithContext(ctx, msg.Reply(), body); err != nil {
		return fmt.Errorf("returning message to the stream: %w", err)
	}
	return nil
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// deliverMaxAckPending bounds the messages a delivery consumer has out at once. The workers
// bound the requests in flight; the rest are messages returned with a delay, which must not
// hold back the messages behind them, so the bound is generous.
const deliverMaxAckPending = 1000

// backstopFor is how often a message may be delivered before the chain dead-letters it
// unread: far above what the retry policy uses (each attempt, plus deferrals while a circuit
// opens and probes fail), so that it catches only a message that keeps killing its worker.
// The server's own MaxDeliver sits above it, so the server never gives up on a message the
// chain has not stored.
func backstopFor(maxAttempts int) (backstop, serverMax int) {
	backstop = 2*maxAttempts + 200
	return backstop, backstop + 20
}

// consumers builds the mapper's consumer and one delivery consumer per target, and gives each
// target its circuit breaker and rate limiter.
func (s *Service) consumers() []*consumer {
	ackWait := s.cfg.Delivery.AckWait.D()
	maxAttempts := 1
	for i := range s.cfg.Targets {
		maxAttempts = max(maxAttempts, s.cfg.Targets[i].Retry.MaxAttempts)
	}
	mapStop, mapServerMax := backstopFor(maxAttempts)
	out := []*consumer{{
		stream: stream.IngestStream, workers: 2, log: s.log,
		handle: s.chain(stage{name: "mapper", dlqTarget: ingestDLQ, ackWait: ackWait, maxDeliver: mapStop}, s.mapWork),
		cfg: jetstream.ConsumerConfig{Durable: mapperConsumer, AckPolicy: jetstream.AckExplicitPolicy,
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
		stop, serverMax := backstopFor(t.cfg.Retry.MaxAttempts)
		st := stage{name: "deliver", dlqTarget: name, ackWait: ackWait, maxDeliver: stop}
		out = append(out, &consumer{
			// Enough workers for any limit; the target's slots admit as many as the limit in
			// force, which the OpenHIM console can change while they run.
			stream: stream.DeliverStream, workers: maxDeliveryConcurrency, gate: t, log: s.log,
			handle: s.chain(st, s.deliverWork(t)),
			cfg: jetstream.ConsumerConfig{Durable: deliverConsumer(name), AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: ackWait, MaxAckPending: deliverMaxAckPending, MaxDeliver: serverMax,
				FilterSubject: stream.DeliverPrefix + name},
		})
	}
	if s.conn != nil {
		s.metrics.observeQueues(s.conn.JS, names)
	}
	return out
}

const mapperConsumer = "tally-mapper"

func deliverConsumer(target string) string { return "tally-deliver-" + target }
