package openhim

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors matched by an *APIError through errors.Is.
var (
	// ErrUnauthorized: the core refused the credentials (401), or, with the token scheme, the
	// user has no legacy token credentials (GET /authenticate/:email answered 404).
	ErrUnauthorized = errors.New("openhim: not authenticated by the core")
	// ErrForbidden: the user may not manage mediators or transactions (403).
	ErrForbidden = errors.New("openhim: forbidden by the core")
	// ErrNotFound: the mediator or transaction does not exist (404). After a heartbeat it
	// means the mediator was removed in the console and must register again.
	ErrNotFound = errors.New("openhim: not found in the core")
	// ErrInvalid: the core rejected the request body (400).
	ErrInvalid = errors.New("openhim: rejected by the core as invalid")
	// ErrUnavailable: the core answered 5xx.
	ErrUnavailable = errors.New("openhim: core unavailable")
)

// APIError is a non-success answer from the core API. Body is the start of the core's
// message (the core never echoes passwords; it may name the user's email).
type APIError struct {
	Op         string // "register", "heartbeat", "update transaction", "get transaction", "authenticate"
	StatusCode int
	Body       string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("openhim: %s: core answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	switch {
	case e.Body != "":
		msg += ": " + e.Body
	case e.StatusCode == http.StatusUnauthorized:
		msg += ": check username and password (cores up to 7.0 accept only auth: token)"
	}
	return msg
}

// Is matches the sentinel for the status code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrInvalid:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnavailable:
		return e.StatusCode >= 500
	}
	return false
}
