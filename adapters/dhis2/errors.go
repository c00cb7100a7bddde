package dhis2

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinels for errors.Is. An *Error matches ErrTransient or ErrPermanent by its Kind, and
// may also match ErrUnauthorized, ErrTooLarge or ErrTimeout.
var (
	// ErrTransient: the request may succeed later; retry with backoff (honour RetryAfter).
	ErrTransient = errors.New("dhis2: transient failure")
	// ErrPermanent: the same request cannot succeed; dead-letter it with the reason.
	ErrPermanent = errors.New("dhis2: permanent failure")
	// ErrUnauthorized: DHIS2 refused the credentials or their authority (401, 403, a token
	// error, a redirect to the login page). Permanent, and the same for every batch of the
	// target until an operator fixes the configuration.
	ErrUnauthorized = errors.New("dhis2: unauthorized")
	// ErrTooLarge: the body was too large for DHIS2 or a proxy in front of it (413). Split
	// the batch and send the halves.
	ErrTooLarge = errors.New("dhis2: payload too large")
	// ErrTimeout: no complete response arrived within Config.Timeout. Transient.
	ErrTimeout = errors.New("dhis2: request timed out")
	// ErrInvalidConfig: New refused the Config.
	ErrInvalidConfig = errors.New("dhis2: invalid config")
)

// Kind is the decision an error carries.
type Kind int

const (
	// KindTransient: retry later.
	KindTransient Kind = iota + 1
	// KindPermanent: do not retry the same request.
	KindPermanent
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindPermanent:
		return "permanent"
	}
	return "unclassified"
}

// Error is a classified failure of a DHIS2 call. See the package documentation for the
// table of decisions.
type Error struct {
	Kind Kind
	// Op is what was being done ("importing data values", "polling import job").
	Op string
	// HTTPStatus is the response status, or 0 when no response arrived.
	HTTPStatus int
	// Code is DHIS2's error code when it gave one (E7600, E1006, ...).
	Code string
	// Message is DHIS2's message, the summary's description, a proxy page's title, or what
	// the client found wrong. Credentials are redacted from it.
	Message string
	// RetryAfter is the wait the server asked for (Retry-After), or 0.
	RetryAfter time.Duration
	// Result is the import summary when DHIS2 answered with one (status ERROR).
	Result *ImportResult
	// JobID is the asynchronous import job concerned, if any.
	JobID string
	// Body is the start of the response body (at most 64 KiB, redacted) when there was
	// one and it was not an import summary.
	Body []byte
	// Err is the underlying cause, if any (a network error, ErrTimeout, a payload error).
	Err error

	unauthorized bool
	tooLarge     bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
		if t := http.StatusText(e.HTTPStatus); t != "" {
			b.WriteString(" ")
			b.WriteString(t)
		}
		b.WriteString(": ")
	}
	if e.Code != "" {
		b.WriteString(e.Code)
		b.WriteString(" ")
	}
	if e.Message != "" {
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		if e.Message != "" || e.Code != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	fmt.Fprintf(&b, " (%s", e.Kind)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if e.JobID != "" {
		fmt.Fprintf(&b, ", job %s", e.JobID)
	}
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e matches one of the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrTransient:
		return e.Kind == KindTransient
	case ErrPermanent:
		return e.Kind == KindPermanent
	case ErrUnauthorized:
		return e.unauthorized
	case ErrTooLarge:
		return e.tooLarge
	}
	return false
}

// KindOf returns the decision err carries: the Kind of the *Error in its chain, or 0 when
// err is nil or carries none (the caller's own cancellation).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// RetryAfterOf returns the wait the server asked for in the *Error in err's chain (its
// Retry-After), or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// maxRetryAfter bounds what a server can ask for.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date (RFC 9110
// §10.2.3). It returns 0 for an absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// looksBusy reports whether a DHIS2 failure message names a transient database condition:
// DHIS2 wraps exceptions into an ERROR summary ("The import process failed: ...", §2.2),
// and these fragments mean it was overloaded rather than that the payload was wrong. Not in
// the spec: a narrow heuristic, matched case-insensitively.
func looksBusy(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{
		"deadlock detected",
		"lock timeout",
		"could not obtain lock",
		"cannotacquirelockexception",
		"could not serialize access",
		"unable to acquire jdbc connection",
		"connection is not available, request timed out",
		"too many connections",
		"remaining connection slots are reserved",
	} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
