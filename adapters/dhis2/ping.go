package dhis2

import (
	"bytes"
	"context"
	"net/http"
)

// Ping is a cheap liveness probe of the target: GET /api/system/ping, which
// DHIS2 answers with the text "pong" (SystemController.ping). Unlike the
// unauthenticated /api/ping, this path sits behind DHIS2's authentication,
// so a nil error also means the credentials are still accepted. Use it to
// probe a target on a short interval while its circuit is open.
//
// Failures are classified as for an import: connection errors, timeouts,
// 408/425/429 and 5xx are transient (Error.RetryAfter from Retry-After); 401,
// 403, a token error or a redirect to the login page are permanent and match
// ErrUnauthorized; a 200 that is not "pong" is transient when it is not JSON
// (a proxy or maintenance page) and permanent when it is JSON of another
// kind (BaseURL points elsewhere).
func (c *Client) Ping(ctx context.Context) error {
	const op = "pinging"
	res, err := c.roundTrip(ctx, request{op: op, method: http.MethodGet, endpoint: "/system/ping"})
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return c.statusError(op, res, nil)
	}
	// Spring may write the String with a JSON content type when JSON is
	// accepted; both "pong" and "\"pong\"" are the answer.
	if b := bytes.Trim(bytes.TrimSpace(res.body), `"`); string(b) != "pong" {
		return c.unexpectedBody(op, res)
	}
	return nil
}
