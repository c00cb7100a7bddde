package dhis2

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout          = 60 * time.Second
	DefaultPollInterval     = time.Second
	DefaultMaxJobWait       = 15 * time.Minute
	DefaultMaxResponseBytes = 32 << 20
	DefaultUserAgent        = "tally-dhis2-client"
	// DefaultIdleTimeout is shorter than the keep-alive timeouts of what serves DHIS2:
	// Tomcat's keepAliveTimeout (its connectionTimeout, 20 s in the server.xml Tomcat
	// ships) and nginx's keepalive_timeout (65 s in the nginx.conf distributions ship, 75 s
	// built in). A client that keeps an idle connection longer than the server may send a
	// request just as the server closes it, and that request fails.
	DefaultIdleTimeout = 15 * time.Second

	// rawLimit bounds the response text kept in results and errors.
	rawLimit = 64 << 10
)

// Config configures a Client. Exactly one of Username/Password (Basic) and Token
// (personal access token) must be set.
type Config struct {
	// BaseURL is the DHIS2 root including its context path and without /api, e.g.
	// https://hmis.example.org or https://example.org/dhis. It may not carry user info.
	BaseURL string
	// Username and Password authenticate with HTTP Basic (§9.1).
	Username, Password string
	// Token is a personal access token, sent as "Authorization: ApiToken <token>" (§9.2).
	Token string
	// Timeout bounds each HTTP request, from sending to reading the whole response.
	// Default DefaultTimeout.
	Timeout time.Duration
	// HTTPClient is the client to send with; nil means a dedicated client with its own
	// transport. http.DefaultClient is refused. Redirects are never followed, whatever
	// the client's CheckRedirect says.
	HTTPClient *http.Client
	// MaxConcurrent is the most requests the caller sends at once. The dedicated
	// transport keeps that many connections open while they are idle, where net/http
	// keeps two (DefaultMaxIdleConnsPerHost): a caller sending more at once would see its
	// surplus connections closed whenever its requests pause and opened again for the next
	// ones, a TCP and TLS handshake each, on the client and on DHIS2. 0 keeps net/http's
	// default. Ignored when HTTPClient is set: its transport is the caller's.
	MaxConcurrent int
	// IdleTimeout is how long the dedicated transport keeps an idle connection. Default
	// DefaultIdleTimeout; keep it below the server's keep-alive timeout. Ignored when
	// HTTPClient is set.
	IdleTimeout time.Duration
	// UserAgent defaults to DefaultUserAgent.
	UserAgent string
	// APIVersion, e.g. "37", makes requests go to /api/37/...; on 2.38–2.41 that yields the
	// bare ImportSummary (§2.1). Empty means unversioned /api/....
	APIVersion string
	// Gzip compresses request bodies (§1.1). Off by default.
	Gzip bool
	// PollInterval is the wait between reads of an asynchronous job's status. Default
	// DefaultPollInterval.
	PollInterval time.Duration
	// MaxJobWait bounds how long an asynchronous import is waited for. Default
	// DefaultMaxJobWait.
	MaxJobWait time.Duration
	// MaxResponseBytes bounds a response body. Default DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Logger receives debug records of each request (method, path, status, duration,
	// size); nil discards them. Records never hold credentials.
	Logger *slog.Logger
}

// String describes the config with its secrets redacted.
func (c Config) String() string {
	auth := "none"
	switch {
	case c.Token != "":
		auth = "token [REDACTED]"
	case c.Username != "":
		auth = "basic " + c.Username + ":[REDACTED]"
	}
	return fmt.Sprintf("dhis2.Config{BaseURL: %q, auth: %s, APIVersion: %q, Timeout: %s}",
		redactURL(c.BaseURL), auth, c.APIVersion, c.Timeout)
}

// LogValue keeps secrets out of slog records that include a Config.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// GoString keeps secrets out of %#v.
func (c Config) GoString() string { return c.String() }

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}

// validToken reports whether DHIS2 would accept t after "ApiToken ": the pattern
// [a-zA-Z0-9-._~+/]+=* (§9.2).
func validToken(t string) bool {
	body := strings.TrimRight(t, "=")
	if body == "" {
		return false
	}
	for _, r := range body {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-._~+/", r):
		default:
			return false
		}
	}
	return true
}

func validAPIVersion(v string) bool {
	return len(v) == 2 && v[0] >= '0' && v[0] <= '9' && v[1] >= '0' && v[1] <= '9'
}

// Client talks to one DHIS2 instance. It is safe for concurrent use.
type Client struct {
	root         string // scheme://host/contextpath/api[/NN], no trailing slash
	apiVersion   int
	authz        string   // the Authorization header value; never logged
	secrets      []string // redacted from any kept response text
	hc           *http.Client
	timeout      time.Duration
	userAgent    string
	gzip         bool
	pollInterval time.Duration
	maxJobWait   time.Duration
	maxResponse  int64
	log          *slog.Logger
	now          func() time.Time
	gzPool       sync.Pool
	bodies       sync.Pool // *bodyBuffer: encoded request bodies (body.go)
	server       atomic.Pointer[Version]
}

// New validates cfg and returns a Client. It sends nothing.
func New(cfg Config) (*Client, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	raw := strings.TrimSpace(cfg.BaseURL)
	if raw == "" {
		return nil, bad("BaseURL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("BaseURL: %v", err)
	}
	if u.User != nil {
		return nil, bad("BaseURL %q carries user info; set Username/Password or Token instead", redactURL(raw))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("BaseURL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, bad("BaseURL %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("BaseURL %q: no query or fragment allowed", raw)
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if path == "/api" || strings.HasSuffix(path, "/api") || strings.Contains(path+"/", "/api/") {
		return nil, bad("BaseURL %q: leave out /api (give the DHIS2 root, context path included)", raw)
	}

	basic := cfg.Username != "" || cfg.Password != ""
	token := cfg.Token != ""
	c := &Client{now: time.Now}
	switch {
	case basic && token:
		return nil, bad("set either Username/Password or Token, not both")
	case !basic && !token:
		return nil, bad("no credentials: set Username/Password or Token")
	case basic:
		if cfg.Username == "" || cfg.Password == "" {
			return nil, bad("Basic authentication needs both Username and Password")
		}
		if strings.Contains(cfg.Username, ":") {
			return nil, bad("Username may not contain ':'")
		}
		enc := base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))
		c.authz = "Basic " + enc
		c.secrets = withEscaped(c.authz, enc, cfg.Password)
	default:
		if !validToken(cfg.Token) {
			return nil, bad("Token is malformed: DHIS2 accepts only [a-zA-Z0-9-._~+/] and trailing '='")
		}
		c.authz = "ApiToken " + cfg.Token
		c.secrets = withEscaped(c.authz, cfg.Token)
	}

	c.root = u.Scheme + "://" + u.Host + path + "/api"
	if cfg.APIVersion != "" {
		if !validAPIVersion(cfg.APIVersion) {
			return nil, bad("APIVersion %q: want two digits, e.g. \"37\"", cfg.APIVersion)
		}
		c.root += "/" + cfg.APIVersion
		c.apiVersion = int(cfg.APIVersion[0]-'0')*10 + int(cfg.APIVersion[1]-'0')
	}

	var err2 error
	setDur := func(dst *time.Duration, v, def time.Duration, name string) {
		switch {
		case v < 0:
			err2 = bad("%s is negative", name)
		case v == 0:
			*dst = def
		default:
			*dst = v
		}
	}
	setDur(&c.timeout, cfg.Timeout, DefaultTimeout, "Timeout")
	setDur(&c.pollInterval, cfg.PollInterval, DefaultPollInterval, "PollInterval")
	setDur(&c.maxJobWait, cfg.MaxJobWait, DefaultMaxJobWait, "MaxJobWait")
	var idle time.Duration
	setDur(&idle, cfg.IdleTimeout, DefaultIdleTimeout, "IdleTimeout")
	if err2 != nil {
		return nil, err2
	}
	if cfg.MaxConcurrent < 0 {
		return nil, bad("MaxConcurrent is negative")
	}
	switch {
	case cfg.MaxResponseBytes < 0:
		return nil, bad("MaxResponseBytes is negative")
	case cfg.MaxResponseBytes == 0:
		c.maxResponse = DefaultMaxResponseBytes
	default:
		c.maxResponse = cfg.MaxResponseBytes
	}

	switch {
	case cfg.HTTPClient == http.DefaultClient:
		return nil, bad("HTTPClient is http.DefaultClient; pass a dedicated client or nil")
	case cfg.HTTPClient != nil:
		hc := *cfg.HTTPClient
		c.hc = &hc
	default:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.IdleConnTimeout = idle
		if cfg.MaxConcurrent > 0 {
			// Idle connections are only ever those the caller's requests opened, so this
			// keeps at most as many as it sent at once.
			tr.MaxIdleConnsPerHost = cfg.MaxConcurrent
			tr.MaxIdleConns = max(tr.MaxIdleConns, cfg.MaxConcurrent)
		}
		c.hc = &http.Client{Transport: tr}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	c.userAgent = cfg.UserAgent
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	c.gzip = cfg.Gzip
	c.log = cfg.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// String names the client's target without credentials.
func (c *Client) String() string { return "dhis2.Client(" + c.root + ")" }

// LogValue keeps credentials out of slog records that include a *Client.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// GoString keeps credentials out of %#v.
func (c *Client) GoString() string { return c.String() }

// withEscaped returns secrets plus the form each takes inside a JSON string, so that a raw
// body echoing one is redacted too. Longest first, so that a secret containing another is
// replaced whole.
func withEscaped(secrets ...string) []string {
	out := slices.Clone(secrets)
	for _, s := range secrets {
		if b, err := json.Marshal(s); err == nil {
			if esc := string(b[1 : len(b)-1]); esc != s {
				out = append(out, esc)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// redact removes every credential from s. Secrets shorter than 3 bytes are left alone;
// replacing them everywhere would garble the text without protecting anything.
func (c *Client) redact(s string) string {
	for _, sec := range c.secrets {
		if len(sec) >= 3 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// keep returns at most rawLimit bytes of body, redacted.
func (c *Client) keep(body []byte) ([]byte, bool) {
	truncated := len(body) > rawLimit
	if truncated {
		body = body[:rawLimit]
	}
	if len(body) == 0 {
		return nil, false
	}
	return []byte(c.redact(string(body))), truncated
}

// Payload is a request body the caller encodes (DVS JSON, ADX, CSV...); the client stays
// format-agnostic. WriteTo writes the whole body each time it is called: the client calls
// it a second time for a body larger than MaxBufferedBody, to stream it.
type Payload interface {
	ContentType() string
	WriteTo(w io.Writer) (int64, error)
}

// Content types DHIS2 accepts on POST /api/dataValueSets (§1.1).
const (
	ContentTypeJSON = "application/json"
	ContentTypeXML  = "application/xml"
	ContentTypeADX  = "application/adx+xml"
	ContentTypeCSV  = "application/csv"
)

// Bytes returns a Payload holding data. It is sent with a Content-Length.
func Bytes(contentType string, data []byte) Payload {
	return &bytesPayload{ct: contentType, data: data}
}

type bytesPayload struct {
	ct   string
	data []byte
}

func (p *bytesPayload) ContentType() string { return p.ct }
func (p *bytesPayload) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(p.data)
	return int64(n), err
}

// response is an HTTP answer read whole (up to maxResponse), or streamed.
type response struct {
	status int
	header http.Header
	body   []byte
	// streamed counts the bytes a request's stream function read; body is then empty.
	streamed int64
}

// request describes one HTTP exchange.
type request struct {
	op       string
	method   string
	endpoint string // below the API root, starting with "/"
	query    url.Values
	body     Payload
	// stream, when set, reads the body of a 200 JSON answer itself instead of having it
	// buffered (see streamBody); the response then has no body. Any other answer is
	// buffered as usual.
	stream func(body io.Reader)
}

// callerDone wraps the caller's own cancellation: neither transient nor permanent.
func callerDone(ctx context.Context, op string) error {
	return fmt.Errorf("%s: stopped by caller: %w", op, ctx.Err())
}

// roundTrip sends r and reads the whole response. Transport failures come back classified;
// HTTP statuses are left to the caller.
func (c *Client) roundTrip(ctx context.Context, r request) (*response, error) {
	if ctx.Err() != nil {
		return nil, callerDone(ctx, r.op)
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	target := c.root + r.endpoint
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	body, stopBody, err := c.requestBody(r.body)
	if err != nil {
		return nil, &Error{Kind: KindPermanent, Op: r.op, Message: "encoding the payload", Err: err}
	}
	req, err := http.NewRequestWithContext(actx, r.method, target, body.reader)
	if err != nil {
		stopBody(err)
		return nil, &Error{Kind: KindPermanent, Op: r.op, Message: "building the request", Err: err}
	}
	req.ContentLength = body.length
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Authorization", c.authz)
	if r.body != nil {
		req.Header.Set("Content-Type", r.body.ContentType())
		if c.gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}

	start := time.Now()
	resp, err := c.hc.Do(req)
	var res *response
	if err == nil {
		res = &response{status: resp.StatusCode, header: resp.Header}
		if r.stream != nil && resp.StatusCode == http.StatusOK && jsonHeader(resp.Header) {
			err = streamBody(resp.Body, res, r.stream)
		} else {
			res.body, err = io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
		}
		resp.Body.Close()
	}
	payloadErr := stopBody(errResponded)
	c.log.LogAttrs(ctx, slog.LevelDebug, "dhis2 request",
		slog.String("op", r.op), slog.String("method", r.method),
		slog.String("path", strings.TrimPrefix(target, c.root)),
		slog.Int("status", statusOf(res)), slog.Duration("took", time.Since(start)),
		slog.Int64("sent", body.sent()), slog.Int("received", lenOf(res)),
		slog.Bool("failed", err != nil))

	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, callerDone(ctx, r.op)
		case payloadErr != nil:
			return nil, &Error{Kind: KindPermanent, Op: r.op, Message: "encoding the payload", Err: payloadErr}
		case actx.Err() != nil:
			return nil, &Error{Kind: KindTransient, Op: r.op, HTTPStatus: statusOf(res),
				Message: fmt.Sprintf("no complete response within %s", c.timeout), Err: ErrTimeout}
		case isCertError(err):
			return nil, &Error{Kind: KindPermanent, Op: r.op, Message: "TLS certificate rejected",
				Err: errors.New(c.redact(err.Error()))}
		}
		msg := "connection failed"
		if res != nil {
			msg = "reading the response failed"
		}
		return nil, &Error{Kind: KindTransient, Op: r.op, HTTPStatus: statusOf(res), Message: msg,
			Err: redactedError{msg: c.redact(err.Error()), cause: err}}
	}
	if payloadErr != nil {
		// DHIS2 answered although the body broke off; trust nothing it said.
		return nil, &Error{Kind: KindPermanent, Op: r.op, Message: "encoding the payload", Err: payloadErr}
	}
	if int64(len(res.body)) > c.maxResponse {
		return nil, &Error{Kind: KindPermanent, Op: r.op, HTTPStatus: res.status,
			Message: fmt.Sprintf("response larger than %d bytes", c.maxResponse)}
	}
	return res, nil
}

// redactedError keeps a transport error's chain (for errors.Is on net errors) while its
// text is redacted.
type redactedError struct {
	msg   string
	cause error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.cause }

func statusOf(r *response) int {
	if r == nil {
		return 0
	}
	return r.status
}

func lenOf(r *response) int {
	if r == nil {
		return 0
	}
	return len(r.body) + int(r.streamed)
}

func isCertError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}

// errResponded stops a body writer once the response is in.
var errResponded = errors.New("dhis2: response received")

// requestBody is a request body and what is known about it.
type requestBody struct {
	reader  io.Reader
	length  int64 // -1 when unknown (chunked)
	counter *countingWriter
	fixed   int64
}

func (b requestBody) sent() int64 {
	if b.counter != nil {
		return b.counter.n.Load()
	}
	return b.fixed
}

// countingWriter counts bytes and remembers whether the sink failed.
type countingWriter struct {
	w       io.Writer
	n       atomic.Int64
	sinkErr atomic.Bool
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n.Add(int64(n))
	if err != nil {
		cw.sinkErr.Store(true)
	}
	return n, err
}

// requestBody prepares p for sending. stop ends a streaming writer and returns the
// payload's own error, if it failed (as opposed to the connection).
func (c *Client) requestBody(p Payload) (requestBody, func(error) error, error) {
	none := func(error) error { return nil }
	if p == nil {
		return requestBody{length: 0}, none, nil
	}
	if bp, ok := p.(*bytesPayload); ok {
		data := bp.data
		if c.gzip {
			var buf bytes.Buffer
			if err := c.writeBody(&buf, p); err != nil {
				return requestBody{}, none, err
			}
			data = buf.Bytes()
		}
		return requestBody{reader: bytes.NewReader(data), length: int64(len(data)), fixed: int64(len(data))}, none, nil
	}
	lent, ok, err := c.bufferBody(p) // body.go
	if err != nil {
		return requestBody{}, none, err
	}
	if ok {
		n := int64(lent.Len())
		return requestBody{reader: lent, length: n, fixed: n}, func(error) error { lent.giveBack(); return nil }, nil
	}

	// Larger than MaxBufferedBody: written as the transport sends it, so WriteTo runs a
	// second time.
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	done := make(chan struct{})
	var payloadErr error
	go func() {
		defer close(done)
		err := c.writeBody(cw, p)
		if err != nil && !cw.sinkErr.Load() {
			payloadErr = err
		}
		if err != nil {
			pw.CloseWithError(err)
		} else {
			pw.Close()
		}
	}()
	stop := func(reason error) error {
		pr.CloseWithError(reason) // unblocks a writer the transport stopped reading
		<-done
		return payloadErr
	}
	return requestBody{reader: pr, length: -1, counter: cw}, stop, nil
}

// writeBody writes p to w, gzip-compressed when the client sends gzip.
func (c *Client) writeBody(w io.Writer, p Payload) error {
	if !c.gzip {
		_, err := p.WriteTo(w)
		return err
	}
	gz := c.gzipWriter(w)
	defer c.gzPool.Put(gz)
	if _, err := p.WriteTo(gz); err != nil {
		return err
	}
	return gz.Close()
}

func (c *Client) gzipWriter(w io.Writer) *gzip.Writer {
	if gz, ok := c.gzPool.Get().(*gzip.Writer); ok {
		gz.Reset(w)
		return gz
	}
	return gzip.NewWriter(w)
}
