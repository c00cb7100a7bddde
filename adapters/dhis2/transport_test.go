package dhis2

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hang is a handler that reads the request, tells arrived, then answers only once the
// client has gone (or release is closed at cleanup).
func hang(t *testing.T, arrived chan<- struct{}) http.HandlerFunc {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// resetConn hijacks the connection and closes it with RST.
func resetConn(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}

// TestTransportFailures covers failures below HTTP: hangs, resets, refused connections,
// a body that breaks off, certificates, a payload that fails to encode, and the caller's
// own cancellation, which must stay unclassified.
func TestTransportFailures(t *testing.T) {
	boom := errors.New("encoder exploded")
	tests := []struct {
		name    string
		setup   func(t *testing.T) (url string, cfg func(*Config), ctx func(t *testing.T) context.Context)
		payload Payload
		check   func(t *testing.T, err error)
	}{
		{
			name: "hang past the timeout",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				f.handle("POST /api/dataValueSets", hang(t, nil))
				return f.url(), func(c *Config) { c.Timeout = 50 * time.Millisecond }, nil
			},
			check: func(t *testing.T, err error) {
				wantKind(t, err, KindTransient)
				if !errors.Is(err, ErrTimeout) {
					t.Errorf("not ErrTimeout: %v", err)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Error("an attempt timeout must not look like the caller's deadline")
				}
			},
		},
		{
			name: "caller cancels",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				arrived := make(chan struct{}, 1)
				f.handle("POST /api/dataValueSets", hang(t, arrived))
				return f.url(), nil, func(t *testing.T) context.Context {
					ctx, cancel := context.WithCancel(context.Background())
					t.Cleanup(cancel)
					go func() { <-arrived; cancel() }()
					return ctx
				}
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
				unclassified(t, err)
			},
		},
		{
			name: "caller deadline",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				f.handle("POST /api/dataValueSets", hang(t, nil))
				return f.url(), nil, func(t *testing.T) context.Context {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
					t.Cleanup(cancel)
					return ctx
				}
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want context.DeadlineExceeded", err)
				}
				unclassified(t, err)
			},
		},
		{
			name: "caller context already done",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				return f.url(), nil, func(t *testing.T) context.Context {
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					return ctx
				}
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v", err)
				}
				unclassified(t, err)
			},
		},
		{
			name: "connection reset",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				f.handle("POST /api/dataValueSets", resetConn)
				return f.url(), nil, nil
			},
			check: func(t *testing.T, err error) {
				e := wantKind(t, err, KindTransient)
				if e.HTTPStatus != 0 || !strings.Contains(e.Message, "connection failed") {
					t.Errorf("HTTPStatus %d, Message %q", e.HTTPStatus, e.Message)
				}
			},
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				srv := httptest.NewServer(http.NotFoundHandler())
				url := srv.URL + basePath
				srv.Close()
				return url, nil, nil
			},
			check: func(t *testing.T, err error) {
				e := wantKind(t, err, KindTransient)
				var op *net.OpError
				if !errors.As(err, &op) {
					t.Errorf("network error not reachable through the chain: %v", e.Err)
				}
			},
		},
		{
			name: "body breaks off",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				f.handle("POST /api/dataValueSets", func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", jsonCT)
					w.Header().Set("Content-Length", "5000")
					w.WriteHeader(200)
					io.WriteString(w, `{"httpStatus":"OK",`)
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				})
				return f.url(), nil, nil
			},
			check: func(t *testing.T, err error) {
				e := wantKind(t, err, KindTransient)
				if e.HTTPStatus != 200 || !strings.Contains(e.Message, "reading the response") {
					t.Errorf("HTTPStatus %d, Message %q", e.HTTPStatus, e.Message)
				}
			},
		},
		{
			name: "untrusted certificate",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				srv := httptest.NewTLSServer(http.NotFoundHandler())
				srv.Config.ErrorLog = discardLogger()
				t.Cleanup(srv.Close)
				return srv.URL + basePath, nil, nil
			},
			check: func(t *testing.T, err error) {
				e := wantKind(t, err, KindPermanent)
				if !strings.Contains(e.Message, "certificate") {
					t.Errorf("Message %q", e.Message)
				}
			},
		},
		{
			name: "payload fails to encode",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				f.handle("POST /api/dataValueSets", reply(200, jsonCT, bodyD))
				return f.url(), nil, nil
			},
			payload: &streamPayload{ct: ContentTypeJSON, data: []byte(samplePayload), err: boom},
			check: func(t *testing.T, err error) {
				e := wantKind(t, err, KindPermanent)
				if !errors.Is(err, boom) || e.Message != "encoding the payload" {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "payload fails to encode with gzip",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				f.handle("POST /api/dataValueSets", reply(200, jsonCT, bodyD))
				return f.url(), func(c *Config) { c.Gzip = true }, nil
			},
			payload: &streamPayload{ct: ContentTypeJSON, data: []byte(samplePayload), err: boom},
			check: func(t *testing.T, err error) {
				wantKind(t, err, KindPermanent)
				if !errors.Is(err, boom) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "response too large",
			setup: func(t *testing.T) (string, func(*Config), func(*testing.T) context.Context) {
				f := newFake(t)
				f.handle("POST /api/dataValueSets", reply(200, jsonCT, bodyA))
				return f.url(), func(c *Config) { c.MaxResponseBytes = 100 }, nil
			},
			check: func(t *testing.T, err error) {
				e := wantKind(t, err, KindPermanent)
				if !strings.Contains(e.Message, "larger than 100 bytes") {
					t.Errorf("Message %q", e.Message)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, cfg, mkctx := tt.setup(t)
			mods := []func(*Config){}
			if cfg != nil {
				mods = append(mods, cfg)
			}
			c := newTestClient(t, url, mods...)
			ctx := context.Background()
			if mkctx != nil {
				ctx = mkctx(t)
			}
			p := tt.payload
			if p == nil {
				p = jsonPayload()
			}
			r, err := c.ImportDataValues(ctx, p, ImportOptions{})
			if err == nil || r != nil {
				t.Fatalf("got %+v, %v; want an error", r, err)
			}
			if !strings.HasPrefix(err.Error(), "importing data values: ") {
				t.Errorf("Error() = %q does not say what was being done", err)
			}
			tt.check(t, err)
			noBodyWriters(t)
		})
	}
}

// noBodyWriters fails if a request body writer outlived its call.
func noBodyWriters(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*Client).requestBody.func") {
		t.Errorf("a body writer goroutine is still running:\n%s", stacks)
	}
}

// TestEarlyAnswer: DHIS2 (or a proxy) answers before reading a large streamed body; the
// answer wins and the body writer is released.
func TestEarlyAnswer(t *testing.T) {
	f := newFake(t)
	f.mux.HandleFunc("POST "+basePath+"/api/dataValueSets", reply(413, "text/html",
		"<html><head><title>413 Request Entity Too Large</title></head></html>", "Connection", "close"))
	// Bypass the recorder, which reads the whole body first.
	f.srv.Config.Handler = f.mux
	c := newTestClient(t, f.url())
	big := &streamPayload{ct: ContentTypeJSON, data: []byte(strings.Repeat(" ", 8<<20))}
	_, err := c.ImportDataValues(context.Background(), big, ImportOptions{})
	switch {
	case errors.Is(err, ErrTooLarge):
	case errors.Is(err, ErrTransient):
		// The kernel may reset the connection before the answer is read; still a decision.
		t.Logf("connection reset before the 413 was read: %v", err)
	default:
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	noBodyWriters(t)
}

func wantKind(t *testing.T, err error, k Kind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if e.Kind != k {
		t.Fatalf("Kind = %v, want %v: %v", e.Kind, k, err)
	}
	if errors.Is(err, ErrTransient) != (k == KindTransient) || errors.Is(err, ErrPermanent) != (k == KindPermanent) {
		t.Errorf("sentinels disagree with Kind %v", k)
	}
	return e
}

func unclassified(t *testing.T, err error) {
	t.Helper()
	if KindOf(err) != 0 || errors.Is(err, ErrTransient) || errors.Is(err, ErrPermanent) {
		t.Errorf("the caller's own stop must stay unclassified: %v", err)
	}
}
