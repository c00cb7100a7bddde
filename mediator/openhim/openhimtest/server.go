package openhimtest

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim/internal/semver"
)

// The core's built-in root user (a local and a legacy token passport).
const (
	RootEmail    = "root@openhim.org"
	RootPassword = "openhim-password"
	// rootSalt is the salt the core hard-codes for root's token passport.
	rootSalt = "d9bcb40e-ae65-478f-962e-5e5e5e7d0a01"
)

// DownMode makes the fake unreachable in one of several ways; it applies to the API and the
// router alike.
type DownMode int

const (
	// Up serves normally.
	Up DownMode = iota
	// Unavailable answers every request with 503.
	Unavailable
	// Hangup closes every connection without answering.
	Hangup
	// Refused stops listening, so connections are refused, as when the core's process is
	// down. Switching back to another mode listens again on the same port.
	Refused
)

// Server is a fake OpenHIM core: its API (mediators, transactions, tasks) and its router
// (channels forwarding client requests to mediators), each behind a real HTTP(S) listener.
type Server struct {
	// URL is the API base URL, e.g. http://127.0.0.1:41234.
	URL string
	// RouterURL is the router's base URL, where clients send requests for channels (the
	// core's port 5001 or 5000).
	RouterURL string

	srv        *httptest.Server
	router     *httptest.Server
	apiGate    *gateListener
	routerGate *gateListener
	routeHTTP  *http.Client
	tls        bool
	routeTLS   *tls.Config
	now        func() time.Time
	window     time.Duration
	authTypes  map[string]bool
	started    time.Time
	closing    chan struct{}
	stop       context.CancelFunc // cancels stopCtx when closing
	stopCtx    context.Context    // of work the fake does on its own: reruns
	pending    sync.WaitGroup     // delayed envelope writes and rerun tasks

	mu         sync.Mutex
	users      map[string]*user // by lower-cased email
	mediators  map[string]*mediator
	clients    map[string]*client // by client id
	channels   []*Channel
	txs        map[string]map[string]any
	txOrder    []string
	stored     map[string]chan struct{} // closed once the core has written a routed answer
	tasks      []map[string]any
	taskDone   map[string]chan struct{} // closed once a task has run
	seq        uint64
	down       DownMode
	lose       int
	failNext   int
	failMode   DownMode
	storeDelay time.Duration
	held       chan struct{} // non-nil while envelope writes are held

	requests      []RequestRecord
	registrations []RegistrationRecord
	heartbeats    []HeartbeatRecord
	txUpdates     []TransactionUpdateRecord
	unexpected    []RequestRecord
}

type user struct {
	email    string
	password string
	admin    bool
	token    bool
	salt     string
}

type mediator struct {
	doc              map[string]any
	configModSeq     uint64
	lastHeartbeatSeq uint64
	lastHeartbeat    time.Time
	configModified   time.Time
	uptime           float64
}

// RequestRecord is one request the fake received.
type RequestRecord struct {
	Method string
	Path   string
	// Auth is "basic", "token" or "" (none), from the headers present.
	Auth string
	// User is the authenticated user's email, "" when not authenticated.
	User string
	// AuthorizationHeader reports whether an Authorization header was sent.
	AuthorizationHeader bool
	Status              int
}

// RegistrationRecord is one POST /mediators that passed authentication.
type RegistrationRecord struct {
	User    string
	Status  int
	Message string
	Body    map[string]any
	Raw     []byte
}

// HeartbeatRecord is one POST /mediators/:urn/heartbeat that passed authentication.
type HeartbeatRecord struct {
	URN    string
	Uptime float64
	Config bool
	Status int
	// Response is the body sent back: "", "OK" or the config as JSON.
	Response string
}

// TransactionUpdateRecord is one PUT /transactions/:id that passed authentication.
type TransactionUpdateRecord struct {
	ID     string
	Status int
	Body   map[string]any
	Raw    []byte
}

// Option configures a Server.
type Option func(*Server)

// UserOption configures a user added with WithUser.
type UserOption func(*user)

// NotAdmin makes the user a non-admin: mediator and transaction calls get 403.
func NotAdmin() UserOption { return func(u *user) { u.admin = false } }

// WithoutTokenPassport models a user created on 8.x with a plain password: Basic works, the
// legacy token scheme does not (GET /authenticate/:email answers 404).
func WithoutTokenPassport() UserOption { return func(u *user) { u.token = false } }

// WithUser adds a user (admin, with a legacy token passport unless options say otherwise).
// The root user RootEmail / RootPassword always exists.
func WithUser(email, password string, opts ...UserOption) Option {
	return func(s *Server) {
		u := &user{email: email, password: password, admin: true, token: true,
			salt: fmt.Sprintf("00000000-0000-4000-8000-%012d", len(s.users))}
		for _, o := range opts {
			o(u)
		}
		s.users[strings.ToLower(email)] = u
	}
}

// WithAuthTypes sets the enabled API authentication types ("basic", "token"), like the
// core's api.authenticationTypes. Default: both, as on 7.2+. Use "token" alone for ≤ 7.0.
func WithAuthTypes(types ...string) Option {
	return func(s *Server) {
		s.authTypes = map[string]bool{}
		for _, t := range types {
			s.authTypes[t] = true
		}
	}
}

// WithTLS serves https with httptest's self-signed certificate (see CertPEM, WriteCAFile).
func WithTLS() Option { return func(s *Server) { s.tls = true } }

// WithNow sets the server's clock, used for the legacy token time window and timestamps.
func WithNow(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithAuthWindow sets api.authWindowSeconds (default 10 s).
func WithAuthWindow(d time.Duration) Option { return func(s *Server) { s.window = d } }

// NewServer starts a fake core: its API at URL and its router at RouterURL. Close it when
// done. It panics when it cannot listen, like httptest.NewServer.
func NewServer(opts ...Option) *Server {
	s := &Server{
		now:       time.Now,
		window:    10 * time.Second,
		authTypes: map[string]bool{"basic": true, "token": true},
		users:     map[string]*user{},
		mediators: map[string]*mediator{},
		clients:   map[string]*client{},
		txs:       map[string]map[string]any{},
		stored:    map[string]chan struct{}{},
		taskDone:  map[string]chan struct{}{},
		closing:   make(chan struct{}),
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.users[RootEmail] = &user{email: RootEmail, password: RootPassword, admin: true, token: true, salt: rootSalt}
	for _, o := range opts {
		o(s)
	}
	s.started = s.now()
	s.routeHTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: s.routeTLS, DisableKeepAlives: true},
		// The router follows no redirect: it hands the mediator's answer to the client.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	s.srv, s.apiGate = s.start(s.wrap(s.apiMux()))
	s.URL = s.srv.URL
	s.router, s.routerGate = s.start(s.wrapRouter(http.HandlerFunc(s.handleRoute)))
	s.RouterURL = s.router.URL
	return s
}

func (s *Server) apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authenticate/{email}", s.handleAuthenticate)
	mux.HandleFunc("GET /heartbeat", s.handleCoreHeartbeat)
	mux.HandleFunc("POST /mediators", s.handleAddMediator)
	mux.HandleFunc("GET /mediators", s.handleGetMediators)
	mux.HandleFunc("GET /mediators/{urn}", s.handleGetMediator)
	mux.HandleFunc("DELETE /mediators/{urn}", s.handleRemoveMediator)
	mux.HandleFunc("POST /mediators/{urn}/heartbeat", s.handleHeartbeat)
	mux.HandleFunc("PUT /mediators/{urn}/config", s.handleSetConfig)
	mux.HandleFunc("POST /mediators/{urn}/channels", s.handleLoadChannels)
	mux.HandleFunc("GET /transactions/{id}", s.handleGetTransaction)
	mux.HandleFunc("PUT /transactions/{id}", s.handleUpdateTransaction)
	mux.HandleFunc("GET /tasks", s.handleGetTasks)
	mux.HandleFunc("POST /tasks", s.handleAddTask)
	mux.HandleFunc("/", s.handleUnexpected)
	return mux
}

// start serves h on a listener that SetDown(Refused) can close and reopen.
func (s *Server) start(h http.Handler) (*httptest.Server, *gateListener) {
	gate, err := newGateListener()
	if err != nil {
		panic(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = gate
	// Refused handshakes are expected in TLS tests; keep them out of the test output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if s.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return srv, gate
}

// Close shuts both listeners down; envelope writes still waiting are dropped and rerun
// tasks stopped.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	s.stop()
	s.pending.Wait()
	s.router.Close()
	s.srv.Close()
}

// Certificate is the TLS server certificate (nil without WithTLS).
func (s *Server) Certificate() *x509.Certificate {
	if !s.tls {
		return nil
	}
	return s.srv.Certificate()
}

// CertPEM is the self-signed certificate as PEM, usable as a CA bundle (nil without WithTLS).
func (s *Server) CertPEM() []byte {
	c := s.Certificate()
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// WriteCAFile writes CertPEM to dir/openhim-ca.pem and returns the path.
func (s *Server) WriteCAFile(dir string) (string, error) {
	p := filepath.Join(dir, "openhim-ca.pem")
	if err := os.WriteFile(p, s.CertPEM(), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// goPending runs f in the background unless the server is closing; Close waits for it.
func (s *Server) goPending(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closing:
		return false
	default:
	}
	s.pending.Add(1) // under s.mu, so never after Close began waiting
	go func() {
		defer s.pending.Done()
		f()
	}()
	return true
}

// SetDown switches the API and the router between up and unreachable. It fails only when
// the fake cannot listen again on its port after Refused.
func (s *Server) SetDown(m DownMode) error {
	s.mu.Lock()
	s.down = m
	s.mu.Unlock()
	if m == Refused {
		for _, g := range []*gateListener{s.apiGate, s.routerGate} {
			g.refuse()
		}
		// Kept-alive connections would still be served; the core's process is gone.
		s.srv.CloseClientConnections()
		s.router.CloseClientConnections()
		return nil
	}
	for _, g := range []*gateListener{s.apiGate, s.routerGate} {
		if err := g.listen(); err != nil {
			return err
		}
	}
	return nil
}

// FailNext makes the next n requests, to the API or the router, fail as mode does
// (Unavailable or Hangup), then serves normally again: a core that is down for a while.
func (s *Server) FailNext(n int, mode DownMode) {
	if mode != Unavailable && mode != Hangup {
		panic(fmt.Sprintf("openhimtest: FailNext: mode %d is not Unavailable or Hangup", mode))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failMode = n, mode
}

// downMode is the mode for the request at hand, counting one off FailNext.
func (s *Server) downMode() DownMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == Up && s.failNext > 0 {
		s.failNext--
		return s.failMode
	}
	return s.down
}

// LoseResponses makes the next n requests take effect but close the connection instead of
// answering, as when a reply is lost on the network.
func (s *Server) LoseResponses(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose = n
}

// SetConfig edits a mediator's config as the console does (PUT /mediators/:urn/config):
// masked passwords are restored, the config is validated against the configDefs, and the
// next heartbeat receives it once.
func (s *Server) SetConfig(urn string, config map[string]any) error {
	cfg, err := roundTrip(config)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.setConfigLocked(urn, cfg)
	return err
}

// Mediator returns the stored mediator as GET /mediators/:urn would, without masking.
func (s *Server) Mediator(urn string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.mediators[urn]
	if !ok {
		return nil, false
	}
	return s.mediatorView(m, false), true
}

// RemoveMediator deletes a mediator, as a console user can.
func (s *Server) RemoveMediator(urn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mediators, urn)
}

// Requests lists every request received.
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestRecord(nil), s.requests...)
}

// Unexpected lists requests to paths the fake does not implement; a test should expect none.
func (s *Server) Unexpected() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestRecord(nil), s.unexpected...)
}

// Registrations lists authenticated POST /mediators calls.
func (s *Server) Registrations() []RegistrationRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RegistrationRecord(nil), s.registrations...)
}

// Heartbeats lists authenticated heartbeats for urn.
func (s *Server) Heartbeats(urn string) []HeartbeatRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []HeartbeatRecord
	for _, h := range s.heartbeats {
		if h.URN == urn {
			out = append(out, h)
		}
	}
	return out
}

// TransactionUpdates lists authenticated PUT /transactions/:id calls.
func (s *Server) TransactionUpdates() []TransactionUpdateRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TransactionUpdateRecord(nil), s.txUpdates...)
}

// --- plumbing ---

// wrap records each request and applies the down and lost-response modes. Handlers write
// into a recorder and every record is stored before the client sees a byte (or a closed
// connection), so a test can inspect records as soon as its call returns.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := RequestRecord{Method: r.Method, Path: r.URL.Path, Auth: authScheme(r),
			AuthorizationHeader: r.Header.Get("Authorization") != ""}
		down := s.downMode()
		s.mu.Lock()
		lose := down == Up && s.lose > 0
		if lose {
			s.lose--
		}
		s.mu.Unlock()
		store := func() {
			s.mu.Lock()
			s.requests = append(s.requests, rec)
			s.mu.Unlock()
		}
		if down != Up {
			if down == Unavailable {
				rec.Status = http.StatusServiceUnavailable
			}
			store() // before the client sees anything
			failAs(w, down)
			return
		}
		rr := httptest.NewRecorder()
		next.ServeHTTP(rr, withRecord(r, &rec))
		rec.Status = rr.Code
		store()
		if lose {
			hangup(w)
			return
		}
		for k, v := range rr.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rr.Code)
		w.Write(rr.Body.Bytes())
	})
}

// wrapRouter applies the down modes to the router. Its requests are not recorded: the
// transactions it stores are the record.
func (s *Server) wrapRouter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !failAs(w, s.downMode()) {
			next.ServeHTTP(w, r)
		}
	})
}

// failAs answers as a core that is down in mode m, reporting whether it did.
func failAs(w http.ResponseWriter, m DownMode) bool {
	switch m {
	case Unavailable:
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return true
	case Hangup, Refused:
		hangup(w)
		return true
	}
	return false
}

type recordKey struct{}

func contextWithRecord(ctx context.Context, rec *RequestRecord) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

func recordFrom(ctx context.Context) *RequestRecord {
	rec, _ := ctx.Value(recordKey{}).(*RequestRecord)
	return rec
}

// withRecord lets handlers fill in the authenticated user.
func withRecord(r *http.Request, rec *RequestRecord) *http.Request {
	return r.WithContext(contextWithRecord(r.Context(), rec))
}

func hangup(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("openhimtest: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

func authScheme(r *http.Request) string {
	for _, h := range tokenHeaders() {
		if len(r.Header.Values(h)) > 0 {
			return "token"
		}
	}
	if strings.Contains(r.Header.Get("Authorization"), "Basic") {
		return "basic"
	}
	return ""
}

func tokenHeaders() []string { return []string{"auth-username", "auth-ts", "auth-salt", "auth-token"} }

// authenticate follows the core's dispatch (spec §7.2): any auth-* header selects the token
// strategy alone; otherwise Basic; otherwise 401 with an empty body.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*user, bool) {
	var u *user
	switch authScheme(r) {
	case "token":
		if s.authTypes["token"] {
			u = s.tokenUser(r)
		}
	case "basic":
		if s.authTypes["basic"] {
			email, password, ok := r.BasicAuth()
			s.mu.Lock()
			cand := s.users[strings.ToLower(email)]
			s.mu.Unlock()
			if ok && cand != nil && subtle.ConstantTimeCompare([]byte(cand.password), []byte(password)) == 1 {
				u = cand
			}
		}
	}
	if u == nil {
		w.WriteHeader(http.StatusUnauthorized)
		return nil, false
	}
	if rec := recordFrom(r.Context()); rec != nil {
		rec.User = u.email
	}
	return u, true
}

func (s *Server) tokenUser(r *http.Request) *user {
	email, ts := r.Header.Get("auth-username"), r.Header.Get("auth-ts")
	salt, token := r.Header.Get("auth-salt"), r.Header.Get("auth-token")
	if email == "" || ts == "" || salt == "" || token == "" {
		return nil
	}
	at, err := parseJSDate(ts)
	if err != nil {
		return nil
	}
	now := s.now()
	if at.Before(now.Add(-s.window)) || at.After(now.Add(s.window)) {
		return nil // "has expired, denying access"
	}
	s.mu.Lock()
	u := s.users[strings.ToLower(email)]
	s.mu.Unlock()
	if u == nil || !u.token {
		return nil
	}
	want := sha512Hex(sha512Hex(u.salt+u.password) + salt + ts)
	if subtle.ConstantTimeCompare([]byte(want), []byte(token)) != 1 {
		return nil
	}
	return u
}

// parseJSDate accepts the ISO 8601 forms Date.parse accepts from clients.
func parseJSDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00", time.RFC1123} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unparsable date %q", s)
}

func sha512Hex(s string) string {
	sum := sha512.Sum512([]byte(s))
	return hex.EncodeToString(sum[:])
}

// logAndSetResponse mirrors the core's utils.logAndSetResponse: status plus a text body.
func logAndSetResponse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// statusOnly answers for a core handler that sets ctx.status alone: Koa then sends the body
// already set, which after Basic authentication is the strategy's greeting (spec §4 rule 8;
// seen on a heartbeat for an unknown urn: 404 "User Authenticated Successfully").
func statusOnly(w http.ResponseWriter, r *http.Request, status int) {
	if authScheme(r) == "basic" {
		logAndSetResponse(w, status, basicGreeting)
		return
	}
	w.WriteHeader(status)
}

// basicGreeting is the body the core's Basic strategy leaves on every response.
const basicGreeting = "User Authenticated Successfully"

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		logAndSetResponse(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// readObject decodes a JSON body the way koa-bodyparser does, answering 400 when it fails.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, []byte, bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		logAndSetResponse(w, http.StatusBadRequest, "could not read body")
		return nil, nil, false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, raw, true
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		logAndSetResponse(w, http.StatusBadRequest, "invalid JSON, only supports object and array")
		return nil, raw, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		m = map[string]any{}
	}
	return m, raw, true
}

func roundTrip(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func (s *Server) forbidden(w http.ResponseWriter, u *user, action string) bool {
	if u.admin {
		return false
	}
	logAndSetResponse(w, http.StatusForbidden,
		fmt.Sprintf("User %s is not an admin, API access to %s denied.", u.email, action))
	return true
}

// --- handlers ---

func (s *Server) handleUnexpected(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.unexpected = append(s.unexpected, RequestRecord{Method: r.Method, Path: r.URL.Path, Status: http.StatusNotFound})
	s.mu.Unlock()
	http.NotFound(w, r)
}

// GET /authenticate/:email (public): the legacy token challenge.
func (s *Server) handleAuthenticate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u := s.users[strings.ToLower(r.PathValue("email"))]
	s.mu.Unlock()
	if u == nil || !u.token {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"salt": u.salt, "ts": s.now().UTC().Format("2006-01-02T15:04:05.000Z")})
}

// GET /heartbeat (public): core uptime and the uptime of mediators seen in the last minute.
func (s *Server) handleCoreHeartbeat(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	meds := map[string]any{}
	for urn, m := range s.mediators {
		if !m.lastHeartbeat.IsZero() && now.Sub(m.lastHeartbeat) <= time.Minute {
			meds[urn] = m.uptime
		} else {
			meds[urn] = nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"master": now.Sub(s.started).Seconds(), "mediators": meds})
}

// POST /mediators: addMediator (spec §4).
func (s *Server) handleAddMediator(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	body, raw, ok := readObject(w, r)
	if !ok {
		return
	}
	rec := RegistrationRecord{User: u.email, Body: body, Raw: raw}
	defer func() {
		s.mu.Lock()
		s.registrations = append(s.registrations, rec)
		s.mu.Unlock()
	}()
	if s.forbidden(w, u, "addMediator") {
		rec.Status = http.StatusForbidden
		return
	}
	s.mu.Lock()
	err := s.addMediatorLocked(body)
	s.mu.Unlock()
	if err != nil {
		rec.Status, rec.Message = http.StatusBadRequest, addMediatorMessage(err).Error()
		logAndSetResponse(w, rec.Status, rec.Message)
		return
	}
	rec.Status = http.StatusCreated
	// Clients must not parse this body (spec §4 rule 8).
	statusOnly(w, r, http.StatusCreated)
}

func (s *Server) addMediatorLocked(body map[string]any) error {
	if err := checkMediator(body); err != nil {
		return err
	}
	urn := jsString(body["urn"])
	if existing, ok := s.mediators[urn]; ok {
		newV, _ := semver.Parse(jsString(body["version"]))
		oldV, _ := semver.Parse(jsString(existing.doc["version"]))
		if semver.Compare(newV, oldV) <= 0 {
			return nil // same or lower version: nothing changes, still 201
		}
		if nc, ok := body["config"].(map[string]any); ok {
			if oc, ok := existing.doc["config"].(map[string]any); ok {
				for k := range nc {
					if oc[k] != nil {
						nc[k] = oc[k] // console-edited values survive (#550)
					}
				}
			}
		}
		for k, v := range body { // findByIdAndUpdate: a $set of the given fields
			existing.doc[k] = v
		}
		return nil
	}
	if err := checkNewMediator(body); err != nil {
		return err
	}
	s.mediators[urn] = &mediator{doc: body}
	return nil
}

func (s *Server) mediatorView(m *mediator, mask bool) map[string]any {
	doc, _ := roundTrip(m.doc)
	if mask {
		cfg, _ := doc["config"].(map[string]any)
		maskPasswords(asList(doc["configDefs"]), cfg)
	}
	if !m.lastHeartbeat.IsZero() {
		doc["_lastHeartbeat"] = m.lastHeartbeat.UTC().Format(time.RFC3339Nano)
		doc["_uptime"] = m.uptime
	}
	if !m.configModified.IsZero() {
		doc["_configModifiedTS"] = m.configModified.UTC().Format(time.RFC3339Nano)
	}
	return doc
}

// GET /mediators. Like the core, the list does not mask passwords (spec §5).
func (s *Server) handleGetMediators(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok || s.forbidden(w, u, "getAllMediators") {
		return
	}
	s.mu.Lock()
	list := []any{}
	for _, urn := range sortedKeys(mapKeys(s.mediators)) {
		list = append(list, s.mediatorView(s.mediators[urn], false))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func mapKeys(m map[string]*mediator) map[string]any {
	out := make(map[string]any, len(m))
	for k := range m {
		out[k] = nil
	}
	return out
}

// GET /mediators/:urn, with password-typed config masked.
func (s *Server) handleGetMediator(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok || s.forbidden(w, u, "getMediator") {
		return
	}
	s.mu.Lock()
	m, found := s.mediators[r.PathValue("urn")]
	var doc map[string]any
	if found {
		doc = s.mediatorView(m, true)
	}
	s.mu.Unlock()
	if !found {
		statusOnly(w, r, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// DELETE /mediators/:urn.
func (s *Server) handleRemoveMediator(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok || s.forbidden(w, u, "removeMediator") {
		return
	}
	urn := r.PathValue("urn")
	s.mu.Lock()
	delete(s.mediators, urn)
	s.mu.Unlock()
	logAndSetResponse(w, http.StatusOK, fmt.Sprintf("Mediator with urn %s has been successfully removed by %s", urn, u.email))
}

// POST /mediators/:urn/heartbeat (spec §6.1).
func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	urn := r.PathValue("urn")
	rec := HeartbeatRecord{URN: urn}
	defer func() {
		s.mu.Lock()
		s.heartbeats = append(s.heartbeats, rec)
		s.mu.Unlock()
	}()
	// The core's message names removeMediator here too (a copy-paste in the core).
	if s.forbidden(w, u, "removeMediator") {
		rec.Status = http.StatusForbidden
		return
	}
	body, _, ok := readObject(w, r)
	if !ok {
		rec.Status = http.StatusBadRequest
		return
	}
	rec.Uptime, _ = body["uptime"].(float64)
	rec.Config = body["config"] == true
	s.mu.Lock()
	defer s.mu.Unlock()
	m, found := s.mediators[urn]
	if !found {
		rec.Status = http.StatusNotFound
		statusOnly(w, r, http.StatusNotFound)
		return
	}
	if body["uptime"] == nil {
		rec.Status = http.StatusBadRequest
		statusOnly(w, r, http.StatusBadRequest)
		return
	}
	// JavaScript compares Dates; a never-set _lastHeartbeat makes "changed" false.
	changed := m.lastHeartbeatSeq != 0 && m.configModSeq > m.lastHeartbeatSeq
	s.seq++
	m.lastHeartbeatSeq, m.lastHeartbeat, m.uptime = s.seq, s.now(), rec.Uptime
	rec.Status = http.StatusOK
	if !changed && !rec.Config {
		w.WriteHeader(http.StatusOK)
		return
	}
	cfg, has := m.doc["config"]
	if !has || cfg == nil {
		rec.Response = "OK" // Koa sends the status text for an undefined body
		logAndSetResponse(w, http.StatusOK, "OK")
		return
	}
	b, _ := json.Marshal(cfg)
	rec.Response = string(b)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// PUT /mediators/:urn/config (spec §5).
func (s *Server) handleSetConfig(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok || s.forbidden(w, u, "removeMediator") {
		return
	}
	body, _, ok := readObject(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	status, err := s.setConfigLocked(r.PathValue("urn"), body)
	s.mu.Unlock()
	if err != nil {
		logAndSetResponse(w, status, err.Error())
		return
	}
	statusOnly(w, r, http.StatusOK)
}

func (s *Server) setConfigLocked(urn string, cfg map[string]any) (int, error) {
	m, ok := s.mediators[urn]
	if !ok {
		return http.StatusNotFound, fmt.Errorf("No mediator found for this urn.")
	}
	defs := asList(m.doc["configDefs"])
	stored, _ := m.doc["config"].(map[string]any)
	restoreMaskedPasswords(defs, cfg, stored)
	if err := checkConfig(defs, cfg); err != nil {
		var ve *validationError
		if asValidation(err, &ve) {
			return http.StatusBadRequest, fmt.Errorf("%s", ve.msg)
		}
		return http.StatusBadRequest, err
	}
	m.doc["config"] = cfg
	s.seq++
	m.configModSeq, m.configModified = s.seq, s.now()
	return http.StatusOK, nil
}

func asValidation(err error, target **validationError) bool {
	ve, ok := err.(*validationError)
	if ok {
		*target = ve
	}
	return ok
}
