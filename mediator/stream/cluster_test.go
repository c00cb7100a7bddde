package stream

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/stream/streamtest"
)

// TestClusterWithThreeReplicasSurvivesANode creates Tally's streams with replicas 3 on a
// three-node cluster, as two Tally replicas would (idempotently), and keeps publishing with
// acknowledgements after a node goes away.
func TestClusterWithThreeReplicasSurvivesANode(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a JetStream cluster")
	}
	servers, urls := streamtest.RunCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{URL: strings.Join(urls, ","), Replicas: 3}
	a, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	b, err := Open(ctx, cfg, slog.New(slog.DiscardHandler)) // a second replica: same streams, no error
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	for _, name := range []string{IngestStream, DeliverStream, DLQStream} {
		s, err := a.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("%s: replicas %d, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
	}

	pub := NewPublisher(a.JS, 16)
	if err := pub.Publish(ctx, Msg{Subject: IngestPrefix + "cht", ID: "before", Data: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	// One node goes away; the other two still form a quorum for every stream.
	servers[2].Shutdown()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := pub.Publish(ctx, Msg{Subject: IngestPrefix + "cht", ID: "after", Data: []byte("2")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no acknowledgement with two of three nodes: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s, err := b.JS.Stream(ctx, IngestStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2", info.State.Msgs)
	}
}
