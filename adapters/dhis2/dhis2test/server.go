package dhis2test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultBasePath is the context path NewServer mounts DHIS2 under, so that
// Server.URL is e.g. "http://127.0.0.1:41234/dhis" and the API lives at
// URL+"/api/...". A non-empty base path catches clients that build absolute
// paths ("/api/...") instead of appending to the configured base URL.
const DefaultBasePath = "/dhis"

// Option configures a Server.
type Option func(*config) error

type config struct {
	version  Version
	meta     *Metadata
	noop     bool
	clock    func() time.Time
	basePath string
	logger   *slog.Logger
	tb       testing.TB
	holdJobs bool
	capacity *Capacity
	// keepAlive limits of NewServer's connections (WithKeepAlive); zero: none.
	idleTimeout     time.Duration
	maxConnRequests int
}

// WithVersion selects the DHIS2 version whose wire behaviour is emulated
// ("2.36" … "2.44"; default "2.40"). Spec dhis2.md §0.3.
func WithVersion(v string) Option {
	return func(c *config) error {
		ver, err := ParseVersion(v)
		if err != nil {
			return err
		}
		c.version = ver
		return nil
	}
}

// WithMetadata seeds the server with m (the server keeps its own copy).
func WithMetadata(m *Metadata) Option {
	return func(c *config) error {
		if m == nil {
			return errors.New("dhis2test: WithMetadata(nil)")
		}
		c.meta = m.Clone()
		return nil
	}
}

// WithNoopStore makes the server accept and count values without storing
// them (Store().Accepted() counts; for throughput benchmarks). A JSON import
// then takes a fast path that only counts the data values and answers
// SUCCESS, so that the emulator is not the bottleneck of what it measures; the
// other formats still go through full validation.
func WithNoopStore() Option { return func(c *config) error { c.noop = true; return nil } }

// WithClock sets the clock used for created/lastUpdated, completeDate,
// period expiry and job times. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("dhis2test: WithClock(nil)")
		}
		c.clock = now
		return nil
	}
}

// WithBasePath sets the context path ("" serves the API at /api; default
// DefaultBasePath).
func WithBasePath(p string) Option {
	return func(c *config) error {
		p = strings.TrimRight(p, "/")
		if p != "" && !strings.HasPrefix(p, "/") {
			return fmt.Errorf("dhis2test: base path %q must start with /", p)
		}
		c.basePath = p
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithT ties the server to a test: it is closed in t.Cleanup, and a request
// outside the base path (a client that ignored the base URL) fails the test.
func WithT(tb testing.TB) Option { return func(c *config) error { c.tb = tb; return nil } }

// WithKeepAlive makes NewServer close connections as the Tomcat in front of DHIS2 does:
// one that stayed idle for idle (Tomcat's keepAliveTimeout, which defaults to its
// connectionTimeout: 20 s in the server.xml Tomcat ships), and one that has served
// maxRequests requests (maxKeepAliveRequests, 100 by default), after answering the last
// with "Connection: close". Zero leaves a limit off; without the option the emulator
// keeps a connection open for as long as the client does. (Tomcat HTTP connector
// reference, tomcat.apache.org config/http.html.)
func WithKeepAlive(idle time.Duration, maxRequests int) Option {
	return func(c *config) error {
		if idle < 0 || maxRequests < 0 {
			return errors.New("dhis2test: WithKeepAlive with a negative limit")
		}
		c.idleTimeout, c.maxConnRequests = idle, maxRequests
		return nil
	}
}

// WithHeldJobs makes async imports wait until RunPendingJobs is called, so a
// test can observe a job before it completes. Without it an async import
// runs to completion before its response is sent (deterministic).
func WithHeldJobs() Option { return func(c *config) error { c.holdJobs = true; return nil } }

// Server is an in-process DHIS2 emulator, used like httptest.Server.
type Server struct {
	// URL is the DHIS2 base URL including the base path (no trailing slash),
	// e.g. "http://127.0.0.1:41234/dhis". Empty for servers made with New.
	URL string

	version  Version
	basePath string
	clock    func() time.Time
	logger   *slog.Logger
	tb       testing.TB

	metaMu sync.RWMutex
	meta   *Metadata

	store    *Store
	importMu sync.Mutex
	faults   *Faults
	jobs     *jobRegistry
	reqlog   *requestLog

	apiMux   *http.ServeMux
	public   map[string]bool
	handler  http.Handler
	httpSrv  *httptest.Server
	closing  chan struct{}
	closeOne sync.Once
	reqSeq   atomic.Int64
	imports  atomic.Int64
	conns    atomic.Int64 // connections accepted (NewServer only)
	closed   atomic.Int64 // connections closed, by either side (NewServer only)
	gate     *gate        // capacity mode; nil when off
	// idleTimeout and maxConnRequests are NewServer's keep-alive limits (WithKeepAlive).
	idleTimeout     time.Duration
	maxConnRequests int
}

// New builds a server without starting a listener (see Handler). The
// metadata defaults to SampleMetadata().
func New(opts ...Option) (*Server, error) {
	c := &config{version: Version{Minor: defaultMinor}, clock: time.Now, basePath: DefaultBasePath,
		logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.meta == nil {
		c.meta = SampleMetadata()
	}
	if err := c.version.checkPeriodTypes(c.meta); err != nil {
		return nil, err
	}
	s := &Server{version: c.version, basePath: c.basePath, clock: c.clock, logger: c.logger, tb: c.tb,
		meta: c.meta, store: newStore(c.noop), closing: make(chan struct{}), gate: newGate(c.capacity),
		idleTimeout: c.idleTimeout, maxConnRequests: c.maxConnRequests}
	s.faults = newFaults()
	s.jobs = newJobRegistry(c.holdJobs)
	s.reqlog = &requestLog{}
	s.apiMux = http.NewServeMux()
	s.public = map[string]bool{}
	for _, rt := range s.routes() {
		s.apiMux.HandleFunc(rt.pattern, rt.handler)
		if rt.public {
			s.public[rt.pattern] = true
		}
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s, nil
}

// NewServer starts an emulator on a loopback port. It panics if an option is
// invalid (like httptest.NewServer, it is meant for tests).
func NewServer(opts ...Option) *Server {
	s, err := New(opts...)
	if err != nil {
		panic(err)
	}
	s.httpSrv = httptest.NewUnstartedServer(s.keepAlive(s.handler))
	s.httpSrv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			s.conns.Add(1)
		case http.StateClosed:
			s.closed.Add(1)
		}
	}
	s.httpSrv.Config.IdleTimeout = s.idleTimeout
	if s.maxConnRequests > 0 {
		s.httpSrv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connRequestsKey{}, new(atomic.Int64))
		}
	}
	s.httpSrv.Start()
	s.URL = s.httpSrv.URL + s.basePath
	if s.tb != nil {
		s.tb.Cleanup(s.Close)
	}
	return s
}

// Close shuts the server down. Hanging and delayed requests are released.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		close(s.closing)
		if s.httpSrv != nil {
			s.httpSrv.CloseClientConnections()
			s.httpSrv.Close()
		}
	})
}

// connRequestsKey holds a connection's request count in its context (WithKeepAlive).
type connRequestsKey struct{}

// keepAlive answers a connection's last request (WithKeepAlive's maxRequests) with
// "Connection: close", upon which net/http closes it after the response, as Tomcat does.
func (s *Server) keepAlive(next http.Handler) http.Handler {
	if s.maxConnRequests <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, ok := r.Context().Value(connRequestsKey{}).(*atomic.Int64); ok && n.Add(1) >= int64(s.maxConnRequests) {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// Connections returns how many TCP connections the server has accepted: a client that
// keeps its connections alive opens no more than it sends requests at once (0 for servers
// made with New, which serve no listener of their own).
func (s *Server) Connections() int64 { return s.conns.Load() }

// ClosedConnections returns how many of the accepted connections have closed, by the
// client or by the server (WithKeepAlive).
func (s *Server) ClosedConnections() int64 { return s.closed.Load() }

// Handler returns the emulator's HTTP handler (cmd/dhis2-sim serves it).
func (s *Server) Handler() http.Handler { return s.handler }

// Client returns an HTTP client for the test server (nil for New servers).
func (s *Server) Client() *http.Client {
	if s.httpSrv == nil {
		return nil
	}
	return s.httpSrv.Client()
}

// Version returns the emulated DHIS2 version.
func (s *Server) Version() Version { return s.version }

// BasePath returns the context path DHIS2 is mounted under.
func (s *Server) BasePath() string { return s.basePath }

// Store returns the data value store.
func (s *Server) Store() *Store { return s.store }

// Faults returns the fault injector.
func (s *Server) Faults() *Faults { return s.faults }

// ImportRequests returns how many POST dataValueSets requests reached the
// import handler (faulted requests that never got there are not counted).
func (s *Server) ImportRequests() int { return int(s.imports.Load()) }

func (s *Server) now() time.Time { return s.clock().UTC().Truncate(time.Millisecond) }

// Metadata returns a copy of the current metadata.
func (s *Server) Metadata() *Metadata { return s.metadataSnapshot().Clone() }

func (s *Server) metadataSnapshot() *Metadata {
	s.metaMu.RLock()
	defer s.metaMu.RUnlock()
	return s.meta
}

// UpdateMetadata changes the metadata at run time: fn edits a copy, which is
// validated and indexed before it replaces the current metadata. If fn or
// validation fails nothing changes. Imports in flight keep the old metadata.
func (s *Server) UpdateMetadata(fn func(m *Metadata) error) error {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	next := s.meta.Clone()
	if err := fn(next); err != nil {
		return fmt.Errorf("dhis2test: update metadata: %w", err)
	}
	if err := next.reindex(); err != nil {
		return fmt.Errorf("dhis2test: update metadata: %w", err)
	}
	if err := s.version.checkPeriodTypes(next); err != nil {
		return fmt.Errorf("dhis2test: update metadata: %w", err)
	}
	s.meta = next
	return nil
}

// Key resolves a data value key from identifiers given as UID or code (name
// also works). An empty coc or aoc means the default combo.
func (s *Server) Key(dataElement, period, orgUnit, coc, aoc string) (Key, error) {
	m := s.metadataSnapshot()
	var errs []error
	de := m.DataElement(dataElement)
	if de == nil {
		errs = append(errs, fmt.Errorf("unknown data element %q", dataElement))
	}
	ou := m.OrgUnit(orgUnit)
	if ou == nil {
		errs = append(errs, fmt.Errorf("unknown org unit %q", orgUnit))
	}
	pe, ok := parsePeriod(period)
	if !ok {
		errs = append(errs, fmt.Errorf("invalid period %q", period))
	}
	combo := func(ref string) string {
		if ref == "" {
			return DefaultCategoryOptionComboUID
		}
		if c := m.CategoryOptionCombo(ref); c != nil {
			return c.ID
		}
		errs = append(errs, fmt.Errorf("unknown category option combo %q", ref))
		return ""
	}
	k := Key{Period: pe.ID, CategoryOptionCombo: combo(coc), AttributeOptionCombo: combo(aoc)}
	if err := errors.Join(errs...); err != nil {
		return Key{}, fmt.Errorf("dhis2test: key: %w", err)
	}
	k.DataElement, k.OrgUnit = de.ID, ou.ID
	return k, nil
}

// Lookup returns the live value for identifiers given as codes or UIDs, e.g.
// srv.Lookup("MAL_CONFIRMED", "202401", "KL_N_F1", "F_LT1", "GOV"). It
// reports false for unknown identifiers, missing and soft-deleted values.
func (s *Server) Lookup(dataElement, period, orgUnit, coc, aoc string) (Value, bool) {
	k, err := s.Key(dataElement, period, orgUnit, coc, aoc)
	if err != nil {
		return Value{}, false
	}
	v, ok := s.store.Get(k)
	if !ok || v.Deleted {
		return Value{}, false
	}
	return v, true
}

// ---------------------------------------------------------------------------
// Routing

// route is one API endpoint. pattern is an http.ServeMux pattern relative to
// <base>/api with the optional "/NN" API version removed, e.g.
// "POST /dataValueSets" or "GET /system/tasks/{jobType}/{id}".
type route struct {
	pattern string
	handler http.HandlerFunc
	public  bool // served without authentication
}

// routes collects the endpoints of every file. To add endpoints, write a
// "func (s *Server) xxxRoutes() []route" in a new file and list it here.
func (s *Server) routes() []route {
	return slices.Concat(
		s.dataValueSetRoutes(), // import_http.go
		s.taskRoutes(),         // tasks.go
		s.systemRoutes(),       // system.go
		s.exportRoutes(),       // export.go
		s.analyticsRoutes(),    // analytics.go
		s.resTableRoutes(),     // resourcetables.go
		s.completenessRoutes(), // completeness.go
		s.messageRoutes(),      // messages.go
		s.metadataRoutes(),     // metadata_api.go
		s.exchangeRoutes(),     // exchanges.go
	)
}

type callKey struct{}

// call is the per-request state handlers read with callOf.
type call struct {
	id         string
	user       *User
	apiVersion int // from /api/NN/..., 0 when absent
	apiBase    string
	fault      string
}

func callOf(r *http.Request) *call {
	c, _ := r.Context().Value(callKey{}).(*call)
	if c == nil {
		return &call{}
	}
	return c
}

var reAPIVersion = regexp.MustCompile(`^/(\d{2})(/.*)?$`)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/__sim/") || r.URL.Path == "/__sim" {
		s.serveAdmin(w, r)
		return
	}
	start := time.Now()
	id := r.Header.Get("X-Request-ID")
	if id == "" {
		id = fmt.Sprintf("req-%06d", s.reqSeq.Add(1))
	}
	cr := &countingReader{r: r.Body}
	r.Body = cr
	c := &call{id: id}
	r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
	// The request is recorded when its response starts (or the connection
	// is dropped), before the client can see the outcome, so Requests() is
	// complete as soon as a client call returns.
	rw := &recordingWriter{ResponseWriter: w, commit: func(status int) {
		s.reqlog.add(s.recordRequest(r, c, status, max(cr.n, r.ContentLength), time.Since(start)))
	}}
	defer rw.commitOnce(0)

	rel, ok := strings.CutPrefix(r.URL.Path, s.basePath)
	if !ok || !(rel == "/api" || strings.HasPrefix(rel, "/api/")) {
		if s.tb != nil {
			s.tb.Errorf("dhis2test: request outside %s/api: %s %s (did the client ignore the base URL?)", s.basePath, r.Method, r.URL.Path)
		}
		writeError(rw, r, http.StatusNotFound, "Not found: "+r.URL.Path)
		return
	}
	rest := strings.TrimPrefix(rel, "/api")
	if m := reAPIVersion.FindStringSubmatch(rest); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < 28 || n > s.version.Minor {
			writeError(rw, r, http.StatusNotFound, "API version is invalid: "+m[1])
			return
		}
		c.apiVersion = n
		rest = m[2]
	}
	if len(rest) > 1 {
		rest = strings.TrimSuffix(rest, "/")
	}
	if rest == "" {
		rest = "/"
	}
	c.apiBase = s.basePath + "/api"
	if c.apiVersion != 0 {
		c.apiBase += "/" + strconv.Itoa(c.apiVersion)
	}

	if s.faults.apply(rw, r, s, normalisedPath(rest), c, func(w http.ResponseWriter, r *http.Request) {
		s.dispatch(w, r, c, rest)
	}) {
		return
	}
	s.dispatch(rw, r, c, rest)
}

func normalisedPath(rest string) string { return "/api" + rest }

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, c *call, rest string) {
	inner := r.Clone(r.Context())
	inner.URL.Path = rest
	inner.URL.RawPath = ""
	_, pattern := s.apiMux.Handler(inner)
	if !s.public[pattern] { // everything but /api/ping requires authentication (§9)
		user, ae := s.authenticate(r)
		if ae != nil {
			ae.write(w, r)
			return
		}
		c.user = user
	}
	if pattern == "" {
		s.notFound(w, r, inner)
		return
	}
	// ServeMux fills the path values ({id}) only when it serves the request.
	s.apiMux.ServeHTTP(w, inner)
}

// notFound answers an unknown API path with 404, or 405 when the path
// exists for other methods (Spring's behaviour), as WebMessages.
func (s *Server) notFound(w http.ResponseWriter, r, inner *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		probe := inner.Clone(inner.Context())
		probe.Method = m
		if _, p := s.apiMux.Handler(probe); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, r, http.StatusMethodNotAllowed, "Request method '"+r.Method+"' is not supported")
		return
	}
	writeError(w, r, http.StatusNotFound, "No endpoint "+r.Method+" "+r.URL.Path)
}

// ---------------------------------------------------------------------------
// Plumbing

type recordingWriter struct {
	http.ResponseWriter
	status int
	once   sync.Once
	commit func(status int)
}

func (w *recordingWriter) commitOnce(status int) {
	w.once.Do(func() {
		if w.commit != nil {
			w.commit(status)
		}
	})
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.commitOnce(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (Hijack).
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
