package mediator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumer runs a durable pull consumer with a fixed number of workers. Each message is
// handled by exactly one worker, which acknowledges, naks or terminates it; a message left
// unacknowledged (the process died) is redelivered after AckWait.
type consumer struct {
	name    string
	stream  string
	cfg     jetstream.ConsumerConfig
	workers int
	handle  func(ctx context.Context, msg jetstream.Msg)
}

// run consumes until ctx ends, then waits for in-flight handlers: a handler that finishes
// acknowledges its message, one cut short leaves it for redelivery.
func (c *consumer) run(ctx context.Context, js jetstream.JetStream, ready func()) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg)
	if err != nil {
		return fmt.Errorf("creating consumer %s on %s: %w", c.cfg.Durable, c.stream, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(max(2*c.workers, 4)), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", c.cfg.Durable, err)
	}
	if ready != nil {
		ready()
	}
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range work {
				// Handlers get a context that outlives shutdown's signal long enough to
				// finish the request in flight; the drain in Stop bounds it.
				c.handle(context.WithoutCancel(ctx), msg)
			}
		}()
	}
	var runErr error
	for {
		msg, err := iter.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() == nil {
				runErr = fmt.Errorf("consumer %s: %w", c.cfg.Durable, err)
			}
			break
		}
		work <- msg
	}
	close(work)
	wg.Wait()
	return runErr
}
