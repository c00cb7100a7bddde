package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/config"
	"golang.org/x/time/rate"
)

// gate holds the limits every request body and every ingest passes: a body must keep
// arriving (http.body_timeout), a declared length over http.max_body_bytes is refused
// before a byte is read, at most http.max_concurrent_ingests payloads are read at once, and
// a source with a rate_limit gets 429 past it. It is built once; its maps are not changed.
type gate struct {
	slots       chan struct{}
	limiters    map[string]*rate.Limiter
	maxBody     int64
	bodyTimeout time.Duration
	now         func() time.Time
}

func newGate(cfg *config.Config, now func() time.Time) *gate {
	g := &gate{slots: make(chan struct{}, max(1, cfg.HTTP.MaxConcurrentIngests)), limiters: map[string]*rate.Limiter{},
		maxBody: int64(cfg.HTTP.MaxBodyBytes), bodyTimeout: cfg.HTTP.BodyTimeout.D(), now: now}
	for _, s := range cfg.Sources {
		if s.RateLimit.PerSecond > 0 {
			g.limiters[s.Name] = rate.NewLimiter(rate.Limit(s.RateLimit.PerSecond), s.RateLimit.Burst)
		}
	}
	return g
}

// isIngest says whether a route reads a payload into the pipeline.
func isIngest(route string) bool {
	return strings.HasPrefix(route, "/ingest/") || strings.Contains(route, "dataValueSets")
}

// gzipSlack is what gzip may add to a body whose content is within the limit (the limit
// applies after decompression): a header, a trailer and 5 bytes per stored 64 KiB block.
func gzipSlack(n int64) int64 { return 64 + n/1000 }

// limits is the middleware: a Content-Length over the limit is 413 before reading; an ingest
// beyond the concurrent bound is 503 with Retry-After; every body gets its progress deadline.
func (s *Server) limits(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.gate.maxBody+gzipSlack(s.gate.maxBody) {
			s.refusedEarly(c, "too_large")
			c.Response().Header().Set("Connection", "close") // the body is not read
			return c.JSON(http.StatusRequestEntityTooLarge, apiError{Status: "error",
				Message: "request body of " + strconv.FormatInt(r.ContentLength, 10) + " bytes exceeds " +
					strconv.FormatInt(s.gate.maxBody, 10) + " bytes (http.max_body_bytes)"})
		}
		if r.Body != nil && r.Body != http.NoBody && s.gate.bodyTimeout > 0 {
			r.Body = &progressBody{ReadCloser: r.Body, rc: http.NewResponseController(c.Response().Writer), timeout: s.gate.bodyTimeout}
		}
		if r.Method != http.MethodPost || !isIngest(c.Path()) {
			return next(c)
		}
		select {
		case s.gate.slots <- struct{}{}:
			defer func() { <-s.gate.slots }()
		default:
			s.refusedEarly(c, "busy")
			c.Response().Header().Set("Retry-After", "1")
			return c.JSON(http.StatusServiceUnavailable, apiError{Status: "error",
				Message: "too many payloads being read at once (http.max_concurrent_ingests); retry after 1 s"})
		}
		return next(c)
	}
}

// refusedEarly counts a refusal before authentication under the source the path names, when
// it is a configured one (a made-up name must not become a label value).
func (s *Server) refusedEarly(c echo.Context, reason string) {
	if name := c.Param("source"); name != "" {
		if _, ok := s.cfg.Source(name); ok {
			s.ingester.Refused(name, reason)
		}
	}
}

// rateLimited answers 429 with Retry-After when the source is over its rate_limit, and says
// whether it did.
func (s *Server) rateLimited(c echo.Context, src *config.Source) (bool, error) {
	l := s.gate.limiters[src.Name]
	if l == nil {
		return false, nil
	}
	res := l.ReserveN(s.gate.now(), 1)
	wait := res.DelayFrom(s.gate.now())
	if wait == 0 {
		return false, nil
	}
	res.CancelAt(s.gate.now()) // the request is refused: give its token back
	s.ingester.Refused(src.Name, "rate_limited")
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(max(1, (wait+time.Second-1)/time.Second))))
	return true, c.JSON(http.StatusTooManyRequests, apiError{Status: "error",
		Message: "source " + strconv.Quote(src.Name) + " is over its rate_limit; retry after the Retry-After seconds"})
}

// progressBody makes a body keep arriving: the connection's read deadline is body_timeout
// ahead, and moves on each time BodyProgress more bytes have come. A client that sends a
// byte now and then is cut off once the deadline passes; its read fails and the handler
// answers as for any broken body.
type progressBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	since   int // bytes since the deadline last moved
	armed   bool
}

func (p *progressBody) Read(b []byte) (int, error) {
	if !p.armed {
		p.armed = true
		p.extend()
	}
	n, err := p.ReadCloser.Read(b)
	p.since += n
	if p.since >= config.BodyProgress {
		p.since = 0
		p.extend()
	}
	if errors.Is(err, io.EOF) {
		// The whole body came: the rest of the exchange is no longer the body's. After a
		// failure the deadline stays past, so that net/http does not wait for the rest of
		// the body before it answers.
		_ = p.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// extend moves the deadline body_timeout ahead of the wall clock (a connection's deadline
// is wall time). HTTP/2 and test recorders have none (http.ErrNotSupported): the server's
// own timeouts then apply.
func (p *progressBody) extend() {
	_ = p.rc.SetReadDeadline(time.Now().Add(p.timeout))
}
