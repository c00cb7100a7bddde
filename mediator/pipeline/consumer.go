package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Gate admits a consumer's workers to fetch: a target's concurrency limit, circuit breaker
// and rate limit. Every Acquire that succeeds is paired with one Release.
type Gate interface {
	Acquire(ctx context.Context) (Permit, error)
	Release(p Permit)
}

// Permit admits a worker to fetch one message; a probe permit is the half-open circuit's
// single trial. A worker already waiting for a message when the circuit opens keeps its pull
// (cancelling a pull can strand a message the server is sending, until AckWait); what it
// receives is returned unsent, with a delay, and not counted as an attempt.
type Permit struct {
	Probe bool
	// Gen identifies the probe, so that a late release of an old probe's permit cannot
	// free the slot of a newer probe.
	Gen uint64
}

// Consumer runs a durable pull consumer with a fixed number of workers. Each worker pulls one
// message at a time, and only when its gate admits it, so nothing is fetched ahead of the
// workers: a message waits in the stream, not in memory, and an open circuit stops pulling
// altogether. Each message is handled by exactly one worker through the stage's consume
// chain (consume.go), which acknowledges it, returns it with a delay or dead-letters it; a
// message left unacknowledged (the process died) is redelivered after AckWait.
type Consumer struct {
	Stream  string
	Config  jetstream.ConsumerConfig
	Workers int
	Gate    Gate // nil: always admitted
	Handle  Handler
	Log     *slog.Logger
	// Track, when set, is told of each message in the order this replica fetched them,
	// before any worker handles it, and the func it returns is called once the message was
	// handled. Fetching is then done by one goroutine that hands each message to a free
	// worker (still nothing is fetched ahead of the workers). The mapper sets it, so that a
	// payload's batch knows which of the earlier batches this replica holds: two workers
	// that pull side by side return in any order, one fetcher does not.
	Track func(msg jetstream.Msg) (handled func())
}

// Run consumes until ctx ends, then waits for the handlers in flight. Handlers run with
// hctx, which outlives ctx: shutdown first stops the pulls, and cancels hctx only when its
// deadline nears, so a request in flight can finish and be acknowledged.
func (c *Consumer) Run(ctx, hctx context.Context, js jetstream.JetStream, ready func()) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, c.Config)
	if err != nil {
		return fmt.Errorf("creating consumer %s on %s: %w", c.Config.Durable, c.Stream, err)
	}
	if ready != nil {
		ready()
	}
	if c.Track != nil {
		c.dispatch(ctx, hctx, cons)
		return nil
	}
	var wg sync.WaitGroup
	for range c.Workers {
		wg.Go(func() { c.work(ctx, hctx, cons) })
	}
	wg.Wait()
	return nil
}

// dispatch is Run with Track: one loop fetches, in order, only when a worker is free, tells
// Track, and hands the message over; the workers handle what they are given, first come
// first served, so a message is never handled before one fetched earlier was taken up.
func (c *Consumer) dispatch(ctx, hctx context.Context, cons jetstream.Consumer) {
	type job struct {
		msg     jetstream.Msg
		p       Permit
		handled func()
	}
	free := make(chan struct{}, c.Workers)
	jobs := make(chan job, c.Workers)
	var wg sync.WaitGroup
	for range c.Workers {
		free <- struct{}{}
		wg.Go(func() {
			for j := range jobs {
				_ = c.Handle(hctx, j.msg, j.p) // settled by the chain
				j.handled()
				if c.Gate != nil {
					c.Gate.Release(j.p)
				}
				free <- struct{}{}
			}
		})
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		msg, p, err := c.admitAndFetch(ctx, cons)
		if msg == nil {
			free <- struct{}{}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				failures++
				c.backOff(ctx, failures, err)
			}
			continue
		}
		failures = 0
		jobs <- job{msg: msg, p: p, handled: c.Track(msg)}
	}
}

// backOff logs the failures-th failed pull in a row and waits a second longer for each,
// up to 30 s.
func (c *Consumer) backOff(ctx context.Context, failures int, err error) {
	c.Log.Warn("pulling from JetStream failed; retrying", "consumer", c.Config.Durable, "err", err)
	Pause(ctx, min(time.Duration(failures)*time.Second, 30*time.Second))
}

// admitAndFetch waits for the gate, then pulls one message; without a message the permit is
// given back.
func (c *Consumer) admitAndFetch(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, Permit, error) {
	var p Permit
	if c.Gate != nil {
		var err error
		if p, err = c.Gate.Acquire(ctx); err != nil {
			return nil, p, nil // ctx ended
		}
	}
	msg, err := c.fetch(cons)
	if msg == nil && c.Gate != nil {
		c.Gate.Release(p)
	}
	return msg, p, err
}

// work is one worker's loop: be admitted, pull one message, handle it.
func (c *Consumer) work(ctx, hctx context.Context, cons jetstream.Consumer) {
	failures := 0
	for ctx.Err() == nil {
		msg, p, err := c.admitAndFetch(ctx, cons)
		if msg == nil {
			if err != nil && ctx.Err() == nil {
				failures++
				c.backOff(ctx, failures, err)
			}
			continue
		}
		failures = 0
		_ = c.Handle(hctx, msg, p) // settled by the chain, which logs what needs it
		if c.Gate != nil {
			// A permit the handler settled (success, failure) is already spent; this
			// releases one that led to no verdict (a decode failure, a panic).
			c.Gate.Release(p)
		}
	}
}

// fetchWait is how long a pull waits for a message. Pulls are never cancelled: a message
// the server sends to a pull the client has given up on is stranded until AckWait. Waiting
// for the pull to expire instead bounds how long shutdown waits for an idle worker.
const fetchWait = 500 * time.Millisecond

// fetch pulls one message. No message and no error means there was nothing to fetch.
func (c *Consumer) fetch(cons jetstream.Consumer) (jetstream.Msg, error) {
	msg, err := cons.Next(jetstream.FetchMaxWait(fetchWait))
	switch {
	case msg != nil:
		return msg, nil
	case err == nil, errors.Is(err, nats.ErrTimeout):
		return nil, nil
	}
	return nil, err
}

// Nak returns a message to the stream, to be redelivered after delay, and waits for
// JetStream to confirm it. An unconfirmed nak sent just before shutdown can be lost with the
// connection. The delay is never zero: the server keeps a plain nak in memory only, so after
// a restart (of an embedded server) the message would wait out AckWait, while a nak with a
// delay is written to the consumer's stored state.
func Nak(ctx context.Context, nc *nats.Conn, msg jetstream.Msg, delay time.Duration) error {
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

// Pause waits d, or until ctx ends.
func Pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// DeliverMaxAckPending bounds the messages a delivery consumer has out at once. The workers
// bound the requests in flight; the rest are messages returned with a delay, which must not
// hold back the messages behind them, so the bound is generous.
const DeliverMaxAckPending = 1000

// BackstopFor is how often a message may be delivered before the chain dead-letters it
// unread: far above what the retry policy uses (each attempt, plus deferrals while a circuit
// opens and probes fail), so that it catches only a message that keeps killing its worker.
// The server's own MaxDeliver sits above it, so the server never gives up on a message the
// chain has not stored.
func BackstopFor(maxAttempts int) (backstop, serverMax int) {
	backstop = 2*maxAttempts + 200
	return backstop, backstop + 20
}

// MapperConsumer is the mapper's durable consumer on TALLY_INGEST.
const MapperConsumer = "tally-mapper"

// DeliverConsumer is a target's durable consumer on TALLY_DELIVER.
func DeliverConsumer(target string) string { return "tally-deliver-" + target }

// Nak returns a message to the stream to come back after delay (see Nak); a failure is
// logged, and the message then comes back after AckWait.
func (c *Chain) Nak(ctx context.Context, msg jetstream.Msg, delay time.Duration) {
	if err := Nak(ctx, c.NC, msg, delay); err != nil {
		c.Log.Warn("returning a message to the stream failed; it comes back after AckWait", "subject", msg.Subject(), "err", err)
	}
}
