package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one message to publish with its deduplication id.
type Msg struct {
	Subject string
	ID      string // Nats-Msg-Id
	Data    []byte
	Header  nats.Header
}

// ErrPublish means JetStream did not acknowledge every message; the caller must not tell its
// client the payload was accepted.
var ErrPublish = errors.New("JetStream did not acknowledge")

// Publisher publishes many messages asynchronously with a bounded window and waits until
// JetStream acknowledged all of them. A message that fails is retried synchronously a few
// times; its id makes the retry harmless.
type Publisher struct {
	js     jetstream.JetStream
	window int
}

// NewPublisher returns a Publisher that keeps at most window messages unacknowledged.
func NewPublisher(js jetstream.JetStream, window int) *Publisher {
	if window <= 0 {
		window = 64
	}
	return &Publisher{js: js, window: window}
}

type pending struct {
	msg *nats.Msg
	fut jetstream.PubAckFuture
}

// PublishAll publishes every message next yields until it returns ok=false, and returns once
// all are acknowledged. Duplicates (a message id seen within the window) count as acknowledged.
func (p *Publisher) PublishAll(ctx context.Context, next func() (Msg, bool, error)) (int, error) {
	inflight := make([]pending, 0, p.window)
	count := 0
	drain := func(keep int) error {
		for len(inflight) > keep {
			pd := inflight[0]
			inflight = inflight[1:]
			select {
			case <-pd.fut.Ok():
			case err := <-pd.fut.Err():
				if err2 := p.retry(ctx, pd.msg); err2 != nil {
					return fmt.Errorf("%w: message %s: %v (retry: %v)", ErrPublish, pd.msg.Header.Get(jetstream.MsgIDHeader), err, err2)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	for {
		m, ok, err := next()
		if err != nil {
			return count, err
		}
		if !ok {
			break
		}
		nm := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header}
		if nm.Header == nil {
			nm.Header = nats.Header{}
		}
		nm.Header.Set(jetstream.MsgIDHeader, m.ID)
		fut, err := p.js.PublishMsgAsync(nm)
		if err != nil {
			if err := p.retry(ctx, nm); err != nil {
				return count, fmt.Errorf("%w: message %s: %v", ErrPublish, m.ID, err)
			}
		} else {
			inflight = append(inflight, pending{nm, fut})
		}
		count++
		if len(inflight) >= p.window {
			if err := drain(p.window / 2); err != nil {
				return count, err
			}
		}
	}
	return count, drain(0)
}

func (p *Publisher) retry(ctx context.Context, m *nats.Msg) error {
	var err error
	for range 3 {
		if _, err = p.js.PublishMsg(ctx, m); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}

// Publish publishes one message synchronously.
func (p *Publisher) Publish(ctx context.Context, m Msg) error {
	_, err := p.PublishAll(ctx, single(m))
	return err
}

func single(m Msg) func() (Msg, bool, error) {
	done := false
	return func() (Msg, bool, error) {
		if done {
			return Msg{}, false, nil
		}
		done = true
		return m, true, nil
	}
}
