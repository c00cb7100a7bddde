package stream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runCluster starts a three-node JetStream cluster on loopback, as the design's scale-out
// setup runs one, and returns its client URLs.
func runCluster(t *testing.T) ([]*server.Server, []string) {
	t.Helper()
	routePorts := []int{freePort(t), freePort(t), freePort(t)}
	var routes []*url.URL
	for _, p := range routePorts {
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", p))
		routes = append(routes, u)
	}
	var servers []*server.Server
	var urls []string
	for i, rp := range routePorts {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "tally-test", Host: "127.0.0.1", Port: rp},
			Routes:  routes,
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		servers = append(servers, srv)
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatal("cluster node not ready")
		}
		urls = append(urls, s.ClientURL())
	}
	// JetStream needs a meta leader before streams can be created.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for _, s := range servers {
			if !s.JetStreamIsCurrent() {
				ready = false
			}
		}
		if ready && servers[0].JetStreamIsClustered() {
			return servers, urls
		}
		if time.Now().After(deadline) {
			t.Fatal("JetStream cluster did not form")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterWithThreeReplicasSurvivesANode creates Tally's streams with replicas 3 on a
// three-node cluster, as two Tally replicas would (idempotently), and keeps publishing with
// acknowledgements after a node goes away.
func TestClusterWithThreeReplicasSurvivesANode(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a JetStream cluster")
	}
	servers, urls := runCluster(t)
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
