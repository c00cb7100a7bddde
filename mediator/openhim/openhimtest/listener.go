package openhimtest

import (
	"fmt"
	"net"
	"sync"
)

// gateListener is a TCP listener that can stop listening, so that connections are refused
// as when the core's process is down, and listen again on the same address. The HTTP server
// keeps one Accept loop across the gap.
type gateListener struct {
	addr net.Addr

	mu       sync.Mutex
	inner    net.Listener  // nil while refusing
	reopened chan struct{} // closed when listening again
	closed   bool
	done     chan struct{}
}

func newGateListener() (*gateListener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("openhimtest: listen: %w", err)
	}
	return &gateListener{addr: l.Addr(), inner: l, reopened: make(chan struct{}), done: make(chan struct{})}, nil
}

func (g *gateListener) Accept() (net.Conn, error) {
	for {
		g.mu.Lock()
		in, wait, closed := g.inner, g.reopened, g.closed
		g.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if in == nil {
			select {
			case <-wait:
			case <-g.done:
			}
			continue
		}
		c, err := in.Accept()
		if err == nil {
			return c, nil
		}
		g.mu.Lock()
		swapped := g.inner != in || g.closed
		g.mu.Unlock()
		if !swapped {
			return nil, err
		}
	}
}

// refuse stops listening: new connections are refused by the operating system.
func (g *gateListener) refuse() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inner == nil || g.closed {
		return
	}
	g.inner.Close()
	g.inner = nil
	g.reopened = make(chan struct{})
}

// listen listens again on the original address.
func (g *gateListener) listen() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inner != nil || g.closed {
		return nil
	}
	l, err := net.Listen("tcp", g.addr.String())
	if err != nil {
		return fmt.Errorf("openhimtest: listen again on %s: %w", g.addr, err)
	}
	g.inner = l
	close(g.reopened)
	return nil
}

func (g *gateListener) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	close(g.done)
	if g.inner != nil {
		return g.inner.Close()
	}
	return nil
}

func (g *gateListener) Addr() net.Addr { return g.addr }
