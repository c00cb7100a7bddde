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
// altogether. Each message is handled by exactly one worker, which acknowledges, naks or
// terminates it; a message left unacknowledged (the process died) is redelivered after
// AckWait.
type consumer struct {
	stream  string
	cfg     jetstream.ConsumerConfig
	workers int
	// grace is how long handlers in flight may run once shutdown begins; then their
	// context is cancelled, and a handler cut short returns its message to the stream.
	grace  time.Duration
	gate   gate // nil: always admitted
	handle func(ctx context.Context, msg jetstream.Msg, p permit)
	log    *slog.Logger
}

// run consumes until ctx ends, then waits for the handlers in flight.
func (c *consumer) run(ctx context.Context, js jetstream.JetStream, ready func()) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg)
	if err != nil {
		return fmt.Errorf("creating consumer %s on %s: %w", c.cfg.Durable, c.stream, err)
	}
	if ready != nil {
		ready()
	}
	// Handlers get a context that outlives shutdown's signal by the grace period, so the
	// request in flight can finish and be acknowledged.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var graceTimer *time.Timer
	var mu sync.Mutex
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		graceTimer = time.AfterFunc(c.grace, cancelHandlers)
		mu.Unlock()
	})
	defer func() {
		stopAfter()
		mu.Lock()
		if graceTimer != nil {
			graceTimer.Stop()
		}
		mu.Unlock()
	}()
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
		c.handle(hctx, msg, p)
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
// bound the requests in flight; the rest are messages naked with a delay, which must not
// hold back the messages behind them, so the bound is generous.
const deliverMaxAckPending = 1000

// consumers builds the mapper's consumer and one delivery consumer per target, and gives each
// target its circuit breaker and rate limiter.
func (s *Service) consumers() []*consumer {
	ackWait := s.cfg.Delivery.AckWait.D()
	grace := s.cfg.HTTP.ShutdownTimeout.D()
	out := []*consumer{{
		stream: stream.IngestStream, workers: 2, grace: grace, log: s.log,
		handle: func(ctx context.Context, msg jetstream.Msg, _ permit) { s.mapBatch(ctx, msg) },
		cfg: jetstream.ConsumerConfig{Durable: mapperConsumer, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: ackWait, MaxAckPending: 64, FilterSubject: stream.IngestPrefix + ">"},
	}}
	names := make([]string, 0, len(s.targets))
	for name := range s.targets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := s.targets[name]
		s.controlTarget(t)
		out = append(out, &consumer{
			stream: stream.DeliverStream, workers: t.cfg.Concurrency, grace: grace, gate: t, log: s.log,
			handle: func(ctx context.Context, msg jetstream.Msg, p permit) { s.deliverBatch(ctx, t, msg, p) },
			cfg: jetstream.ConsumerConfig{Durable: deliverConsumer(name), AckPolicy: jetstream.AckExplicitPolicy,
				// InProgress before every further request of a split batch keeps a long
				// batch from being redelivered while it is being sent.
				AckWait: ackWait + t.cfg.Timeout.D(), MaxAckPending: deliverMaxAckPending,
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
