package stream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

func openTest(t *testing.T, dir string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, Config{StoreDir: dir, DuplicateWindow: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpenIsIdempotentAndPersists(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c := openTest(t, dir)
	if !c.Embedded() {
		t.Fatal("want embedded server")
	}
	pub := NewPublisher(c.JS, 4)
	msgs := make([]Msg, 10)
	for i := range msgs {
		msgs[i] = Msg{Subject: IngestPrefix + "cht", ID: fmt.Sprintf("m%d", i), Data: []byte{byte(i)}}
	}
	// Publish every message twice: deduplication must keep ten.
	b := pub.Start(ctx)
	for i := range 2 * len(msgs) {
		if err := b.Add(msgs[i%len(msgs)]); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.Wait()
	if err != nil || n != 20 {
		t.Fatalf("PublishAll = %d, %v", n, err)
	}
	c.Close(context.Background())

	c = openTest(t, dir) // same store: streams updated in place, messages kept
	defer c.Close(context.Background())
	for _, name := range []string{IngestStream, DeliverStream, DLQStream} {
		s, err := c.JS.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if name == IngestStream && s.CachedInfo().State.Msgs != 10 {
			t.Errorf("%s holds %d messages, want 10", name, s.CachedInfo().State.Msgs)
		}
	}
	if _, err := c.Tx.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JS.KeyValue(ctx, StateBucket); err != nil {
		t.Fatal(err)
	}
}

func TestRedactURL(t *testing.T) {
	if got := redactURL("nats://u:secret@h:4222,nats://h2:4222"); got != "nats://u:xxxxx@h:4222,nats://h2:4222" {
		t.Fatal(got)
	}
}
