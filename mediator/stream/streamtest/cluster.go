// Package streamtest runs real NATS JetStream servers for tests: a three-node cluster on
// loopback, as the design's scale-out setup runs one. It is test support and must not be
// imported by production code.
package streamtest

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// RunCluster starts a three-node JetStream cluster on loopback and returns the servers and
// their client URLs once JetStream has a meta leader. The servers stop when the test ends.
func RunCluster(t testing.TB) ([]*server.Server, []string) {
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
