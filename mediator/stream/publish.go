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

// Publisher publishes asynchronously with a bounded window of unacknowledged messages. A
// message that fails is retried synchronously a few times; its id makes the retry harmless.
type Publisher struct {
	js     jetstream.JetStream
	window int
}

// NewPublisher returns a Publisher that keeps at most window messages unacknowledged per
// Batch.
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

// Batch is a run of publishes that succeeds or fails as a whole: Wait returns once JetStream
// acknowledged every message added. Data passed to Add must stay unchanged until Wait returns.
type Batch struct {
	p        *Publisher
	ctx      context.Context
	inflight []pending
	count    int
}

// Start begins a Batch.
func (p *Publisher) Start(ctx context.Context) *Batch {
	return &Batch{p: p, ctx: ctx, inflight: make([]pending, 0, p.window)}
}

// Add publishes m, first waiting for older acknowledgements when the window is full.
func (b *Batch) Add(m Msg) error {
	nm := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header}
	if nm.Header == nil {
		nm.Header = nats.Header{}
	}
	nm.Header.Set(jetstream.MsgIDHeader, m.ID)
	b.count++
	fut, err := b.p.js.PublishMsgAsync(nm)
	if err != nil {
		if err := b.p.retry(b.ctx, nm); err != nil {
			return fmt.Errorf("%w: message %s: %v", ErrPublish, m.ID, err)
		}
		return nil
	}
	b.inflight = append(b.inflight, pending{nm, fut})
	if len(b.inflight) >= b.p.window {
		return b.drain(b.p.window / 2)
	}
	return nil
}

// Wait returns the number of messages published once all are acknowledged. Duplicates (an id
// seen within the stream's window) count as acknowledged.
func (b *Batch) Wait() (int, error) { return b.count, b.drain(0) }

func (b *Batch) drain(keep int) error {
	for len(b.inflight) > keep {
		pd := b.inflight[0]
		b.inflight = b.inflight[1:]
		select {
		case <-pd.fut.Ok():
		case err := <-pd.fut.Err():
			if err2 := b.p.retry(b.ctx, pd.msg); err2 != nil {
				return fmt.Errorf("%w: message %s: %v (retry: %v)", ErrPublish, pd.msg.Header.Get(jetstream.MsgIDHeader), err, err2)
			}
		case <-b.ctx.Done():
			return b.ctx.Err()
		}
	}
	return nil
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

// Publish publishes one message and waits for its acknowledgement.
func (p *Publisher) Publish(ctx context.Context, m Msg) error {
	b := p.Start(ctx)
	if err := b.Add(m); err != nil {
		return err
	}
	_, err := b.Wait()
	return err
}
