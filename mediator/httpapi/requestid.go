package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"

	"github.com/labstack/echo/v4"
)

// HeaderRequestID is the header a request id travels in, in and out.
const HeaderRequestID = "X-Request-ID"

type requestIDKey struct{}

// requestIDRE is what a client's own request id may look like: short, printable, no spaces
// (it goes into logs and records as it is).
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

// RequestID returns the id of the request ctx belongs to, "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID takes the client's X-Request-ID when it has a usable one, else makes one,
// and puts it in the request's context and header (where the OpenHIM envelope and the
// transaction record find it) and in the answer's header.
func (s *Server) withRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id := r.Header.Get(HeaderRequestID)
		if !requestIDRE.MatchString(id) {
			var b [16]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
			r.Header.Set(HeaderRequestID, id)
		}
		c.Response().Header().Set(HeaderRequestID, id)
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		return next(c)
	}
}
