package dhis2

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// MaxBufferedBody is the largest request body the client encodes whole before sending it.
// A body up to this size goes out with a Content-Length, in as few writes as the socket
// takes; a larger one is streamed as the payload writes it (chunked), so a request of any
// size costs the client a bounded buffer. 512 KiB holds a request of a few thousand data
// values (a value is 120–250 bytes of DVS JSON), DHIS2's usual request size among them.
//
// Streaming every body cost more CPU than it saved memory: the payload's writer and the
// transport took turns through a pipe, one hand-over per 32 KiB, each of them waking a
// goroutine and, while the target is slow and Tally otherwise idle, a thread
// (BENCHMARKS.md, round 10, measures it against a target that takes milliseconds per
// import).
const MaxBufferedBody = 512 << 10

// errBodyTooLarge stops a payload's WriteTo once its body outgrows MaxBufferedBody.
var errBodyTooLarge = errors.New("dhis2: request body larger than the buffer")

// bodyBuffer holds one encoded request body. It refuses to grow past MaxBufferedBody.
type bodyBuffer struct {
	data []byte
}

func (b *bodyBuffer) Write(p []byte) (int, error) {
	if len(b.data)+len(p) > MaxBufferedBody {
		return 0, errBodyTooLarge
	}
	b.data = append(b.data, p...)
	return len(p), nil
}

// lentBody is a pooled buffer lent to the transport as a request body. The transport may
// close a body after RoundTrip returned (http.RoundTripper's contract), so the buffer goes
// back to the pool only once the body was closed; one the transport still holds is left
// to the garbage collector.
type lentBody struct {
	*bytes.Reader
	buf    *bodyBuffer
	pool   *sync.Pool
	mu     sync.Mutex
	closed bool
}

func (l *lentBody) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

// giveBack returns the buffer to the pool if the transport is through with it.
func (l *lentBody) giveBack() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed && l.buf != nil {
		l.buf.data = l.buf.data[:0]
		l.pool.Put(l.buf)
		l.buf = nil
	}
}

// bufferBody encodes p whole into a pooled buffer, compressed when the client sends gzip.
// ok is false when the body is larger than MaxBufferedBody: the caller streams it.
func (c *Client) bufferBody(p Payload) (body *lentBody, ok bool, err error) {
	buf, _ := c.bodies.Get().(*bodyBuffer)
	if buf == nil {
		buf = &bodyBuffer{}
	}
	if err = c.writeBody(buf, p); err != nil {
		buf.data = buf.data[:0]
		c.bodies.Put(buf)
		if errors.Is(err, errBodyTooLarge) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return &lentBody{Reader: bytes.NewReader(buf.data), buf: buf, pool: &c.bodies}, true, nil
}

var _ io.ReadCloser = (*lentBody)(nil)
