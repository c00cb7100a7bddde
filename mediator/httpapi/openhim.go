package httpapi

import (
	"bytes"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/openhim"
)

// Behind an OpenHIM the core strips the client's Authorization header. Give the channel's
// route Basic credentials of a source user in the console; Tally authenticates those.

// openhimEnvelope wraps the answer of a request that came through an OpenHIM channel.
func (s *Server) openhimEnvelope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		coreTx := openhim.TransactionID(c.Request())
		if s.openhim == nil || coreTx == "" {
			return next(c)
		}
		received := s.now()
		real := c.Response().Writer
		got := &capture{header: http.Header{}}
		c.Response().Writer = got
		if err := next(c); err != nil {
			c.Error(err)
		}
		c.Response().Writer = real
		env := s.openhim.Answer(c.Request(), coreTx, got.statusOr(http.StatusOK), got.header, got.body.Bytes(), received)
		c.Response().Committed = false
		c.Response().Status = env.Response.Status
		return env.Write(c.Response())
	}
}

// capture buffers a handler's answer so it can be wrapped.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(p)
}

func (c *capture) statusOr(def int) int {
	if c.status == 0 {
		return def
	}
	return c.status
}
