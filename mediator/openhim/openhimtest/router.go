package openhimtest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The router follows the core's request flow (spec §9.1; CORE src/koaMiddleware.js): client
// authentication (Basic), channel matching, authorisation, storing the transaction
// (Processing), forwarding to the channel's primary route with X-OpenHIM-TransactionID,
// unwrapping an application/json+openhim answer for the client, and storing the answer
// (CORE src/middleware/router.js, src/middleware/messageStore.js). Non-primary routes,
// content matchers, rewrites, TCP and polling channels and Pending Async are not modelled.

// Bounds of the router.
const (
	maxRoutedBody = 16 << 20
	// defaultRouteTimeout is the core's router.timeout (60 s) for a channel without one.
	defaultRouteTimeout = 60 * time.Second
)

// Channel is a channel installed in the fake core (spec §3.4): which requests it admits and
// the route it forwards them to. The JSON names are the core's.
type Channel struct {
	ID          string   `json:"_id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	URLPattern  string   `json:"urlPattern"` // a JavaScript RegExp source matched against the path
	Methods     []string `json:"methods,omitempty"`
	Type        string   `json:"type,omitempty"`
	AuthType    string   `json:"authType,omitempty"` // "private" (default) or "public"
	Allow       []string `json:"allow,omitempty"`    // client ids or roles
	Routes      []Route  `json:"routes"`
	// RequestBody and ResponseBody set to false make the core store empty bodies.
	RequestBody  *bool  `json:"requestBody,omitempty"`
	ResponseBody *bool  `json:"responseBody,omitempty"`
	Timeout      int    `json:"timeout,omitempty"` // milliseconds; default 60000
	Status       string `json:"status,omitempty"`  // "enabled" (default), "disabled", "deleted"
}

// Route is a channel's route toward a mediator (spec §3.3).
type Route struct {
	Name    string `json:"name"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	Path    string `json:"path,omitempty"`
	Secured bool   `json:"secured,omitempty"`
	Primary bool   `json:"primary,omitempty"`
	// Username and Password are sent as Basic credentials toward the mediator.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// ForwardAuthHeader keeps the client's Authorization header (the core drops it).
	ForwardAuthHeader bool   `json:"forwardAuthHeader,omitempty"`
	Status            string `json:"status,omitempty"`
}

// UnmarshalJSON accepts the port as a number or a numeric string, as mongoose casts it.
func (r *Route) UnmarshalJSON(b []byte) error {
	type plain Route
	var aux struct {
		plain
		Port any `json:"port"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*r = Route(aux.plain)
	switch p := aux.Port.(type) {
	case float64:
		r.Port = int(p)
	case string:
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("route %q: port %q is not a number", r.Name, p)
		}
		r.Port = n
	}
	return nil
}

func enabled(status string) bool { return status == "" || status == "enabled" }

type client struct {
	id       string
	clientID string
	password string
	roles    []string
}

// WithClient adds a client that may send requests to the router with Basic credentials
// clientID:password; roles are matched against a channel's allow list, like the client id.
func WithClient(clientID, password string, roles ...string) Option {
	return func(s *Server) { s.addClientLocked(clientID, password, roles) }
}

// AddClient adds a client at run time (see WithClient).
func (s *Server) AddClient(clientID, password string, roles ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addClientLocked(clientID, password, roles)
}

func (s *Server) addClientLocked(clientID, password string, roles []string) {
	s.clients[clientID] = &client{id: s.newIDLocked(), clientID: clientID, password: password,
		roles: append([]string(nil), roles...)}
}

// WithRouteTLS sets the TLS configuration the router uses toward secured routes (the
// core trusts its keystore's CAs).
func WithRouteTLS(c *tls.Config) Option { return func(s *Server) { s.routeTLS = c } }

// newIDLocked returns a new 24-hex-digit id, like a MongoDB ObjectId.
func (s *Server) newIDLocked() string {
	s.seq++
	return fmt.Sprintf("%024x", 0x65f000000000+s.seq)
}

// InstallChannels installs the named channels of a registered mediator's
// defaultChannelConfig, or all of them without names, as a console user does
// (POST /mediators/:urn/channels; CORE src/api/mediators.js loadDefaultChannels).
func (s *Server) InstallChannels(urn string, names ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.installChannelsLocked(urn, names)
	return err
}

func (s *Server) installChannelsLocked(urn string, names []string) (int, error) {
	m, ok := s.mediators[urn]
	if !ok {
		return http.StatusNotFound, errors.New("No mediator found for this urn.")
	}
	var defs []Channel
	b, _ := json.Marshal(m.doc["defaultChannelConfig"])
	if err := json.Unmarshal(b, &defs); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("Could not load mediator default channel config (urn: %s): %v", urn, err)
	}
	if len(names) > 0 {
		defs = slices.DeleteFunc(defs, func(c Channel) bool { return !slices.Contains(names, c.Name) })
		if len(defs) < len(names) {
			return http.StatusBadRequest, fmt.Errorf("Could not load mediator default channel config, one or more "+
				"channels in the request body not found in the mediator config (urn: %s)", urn)
		}
	}
	for _, c := range defs {
		if s.channelLocked(c.Name) != nil {
			// The channels collection has a unique index on name.
			return http.StatusInternalServerError, fmt.Errorf("Could not load mediator default channel config (urn: %s): "+
				"MongoServerError: E11000 duplicate key error collection: openhim.channels index: name_1 dup key: { name: %q }",
				urn, c.Name)
		}
	}
	for _, c := range defs {
		s.addChannelLocked(c)
	}
	return http.StatusCreated, nil
}

// AddChannel installs a channel directly, as a console user can write one.
func (s *Server) AddChannel(c Channel) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channelLocked(c.Name) != nil {
		return fmt.Errorf("openhimtest: channel %q exists", c.Name)
	}
	s.addChannelLocked(c)
	return nil
}

func (s *Server) addChannelLocked(c Channel) {
	c.ID = s.newIDLocked()
	c.Routes = slices.Clone(c.Routes)
	s.channels = append(s.channels, &c)
}

// UpdateChannel edits an installed channel, as a console user does: e.g. point its route
// at the port a test's mediator listens on, or give the route Basic credentials.
func (s *Server) UpdateChannel(name string, edit func(*Channel)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channelLocked(name)
	if c == nil {
		return fmt.Errorf("openhimtest: no channel %q", name)
	}
	id := c.ID
	edit(c)
	c.ID = id
	return nil
}

// Channels lists the installed channels.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, len(s.channels))
	for i, c := range s.channels {
		out[i] = *c
		out[i].Routes = slices.Clone(c.Routes)
	}
	return out
}

func (s *Server) channelLocked(name string) *Channel {
	for _, c := range s.channels {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// POST /mediators/:urn/channels: an empty body installs every default channel, a JSON array
// of names the named ones.
func (s *Server) handleLoadChannels(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok || s.forbidden(w, u, "removeMediator") {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		logAndSetResponse(w, http.StatusBadRequest, "could not read body")
		return
	}
	var names []string
	if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &names) != nil {
		logAndSetResponse(w, http.StatusBadRequest, "invalid JSON, only supports object and array")
		return
	}
	s.mu.Lock()
	status, err := s.installChannelsLocked(r.PathValue("urn"), names)
	s.mu.Unlock()
	if err != nil {
		logAndSetResponse(w, status, err.Error())
		return
	}
	statusOnly(w, r, http.StatusCreated)
}

// --- routing ---

// routed is what the router learned from one call to a route.
type routed struct {
	status    int
	header    http.Header // toward the client
	body      []byte
	timestamp any            // the answer's timestamp as stored
	envelope  map[string]any // the mediator's application/json+openhim answer, if any
	err       map[string]any // the transaction's error (ctx.error)
	autoRetry bool
	orch      map[string]any // the core's own orchestration of the route call
}

func (s *Server) handleRoute(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRoutedBody))
	if err != nil {
		http.Error(w, "could not read body", http.StatusBadRequest)
		return
	}
	res, _ := s.route(r, body, s.routerClient(r), nil)
	writeRouted(w, res)
}

// rerunOf marks a request replayed by a rerun task: the rerun server bypasses
// authorisation and the new transaction names its parent (CORE
// src/middleware/rerunBypassAuthentication.js, rerunBypassAuthorisation.js).
type rerunOf struct {
	parentID string
}

// route runs the core's chain for one request and returns the client's answer and the id
// of the transaction stored for it ("" when the request was refused before that).
func (s *Server) route(r *http.Request, body []byte, cl *client, rerun *rerunOf) (*routed, string) {
	received := s.now()
	s.mu.Lock()
	var ch *Channel
	if found := s.matchChannelLocked(r); found != nil {
		c := *found
		c.Routes = slices.Clone(found.Routes)
		ch = &c
	}
	s.mu.Unlock()
	if ch == nil {
		return plainAnswer(http.StatusNotFound, "Not Found"), ""
	}
	if rerun == nil && !admitted(ch, cl) {
		// CORE src/middleware/authorisation.js: 401, with a Basic challenge when Basic
		// authentication is enabled (the default).
		res := plainAnswer(http.StatusUnauthorized, "")
		res.header.Set("WWW-Authenticate", "Basic")
		return res, ""
	}
	rt, err := primaryRoute(ch)
	if err != nil {
		return plainAnswer(http.StatusInternalServerError, err.Error()), ""
	}
	id := s.storeRequest(r, body, ch, cl, rerun, received)
	res := s.callRoute(r, body, ch, rt, id, cl, received)
	s.scheduleStore(id, res, ch)
	return res, id
}

func plainAnswer(status int, text string) *routed {
	return &routed{status: status, body: []byte(text), header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}}
}

// routerClient is the client whose Basic credentials r carries, or nil
// (CORE src/middleware/basicAuthentication.js: bad credentials leave the request
// unauthenticated; authorisation decides).
func (s *Server) routerClient(r *http.Request) *client {
	id, password, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[id]
	if c == nil || subtle.ConstantTimeCompare([]byte(c.password), []byte(password)) != 1 {
		return nil
	}
	return c
}

// matchChannelLocked returns the first enabled channel whose urlPattern matches the path
// and whose methods admit the request's (CORE src/middleware/requestMatching.js).
func (s *Server) matchChannelLocked(r *http.Request) *Channel {
	for _, c := range s.channels {
		if !enabled(c.Status) || (len(c.Methods) > 0 && !slices.Contains(c.Methods, r.Method)) {
			continue
		}
		re, err := regexp.Compile(c.URLPattern)
		if err == nil && re.MatchString(r.URL.Path) {
			return c
		}
	}
	return nil
}

func admitted(c *Channel, cl *client) bool {
	if c.AuthType == "public" {
		return true
	}
	if cl == nil {
		return false
	}
	return slices.Contains(c.Allow, cl.clientID) || slices.ContainsFunc(cl.roles, func(role string) bool {
		return slices.Contains(c.Allow, role)
	})
}

func primaryRoute(c *Channel) (Route, error) {
	var primaries []Route
	for _, r := range c.Routes {
		if enabled(r.Status) && r.Primary {
			primaries = append(primaries, r)
		}
	}
	switch len(primaries) {
	case 1:
		return primaries[0], nil
	case 0:
		return Route{}, fmt.Errorf("openhimtest: channel %q has no enabled primary route", c.Name)
	}
	return Route{}, errors.New("Cannot route transaction: Channel contains multiple primary routes and only one primary is allowed")
}

// storeRequest stores the new transaction in status Processing, as the core does before
// routing (CORE src/middleware/messageStore.js storeTransaction), and returns its id.
func (s *Server) storeRequest(r *http.Request, body []byte, c *Channel, cl *client, rerun *rerunOf, at time.Time) string {
	host, port, _ := strings.Cut(r.Host, ":")
	req := map[string]any{"host": host, "path": r.URL.Path, "headers": headerObject(r.Header, r.Host),
		"querystring": r.URL.RawQuery, "method": r.Method, "body": string(body), "timestamp": jsDate(at)}
	if port != "" {
		req["port"] = port
	}
	fields := map[string]any{"channelID": c.ID, "clientIP": remoteIP(r), "request": req}
	if cl != nil {
		fields["clientID"] = cl.id
	}
	if rerun != nil {
		fields["parentID"] = rerun.parentID
	}
	if (c.RequestBody != nil && !*c.RequestBody) || len(body) == 0 {
		req["body"] = ""
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			fields["canRerun"] = false // nothing to replay
		}
	}
	return s.NewTransaction(fields)
}

// callRoute forwards the request to the route as the core's router does (CORE
// src/middleware/router.js sendRequestToRoutes, sendRequest, setKoaResponse).
func (s *Server) callRoute(r *http.Request, body []byte, c *Channel, rt Route, txID string, cl *client, at time.Time) *routed {
	path := rt.Path
	if path == "" {
		path = r.URL.Path
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	scheme := "http"
	if rt.Secured {
		scheme = "https"
	}
	hdr := forwardHeaders(r, rt, txID, cl)
	orchReq := map[string]any{"host": rt.Host, "port": strconv.Itoa(rt.Port), "path": path,
		"headers": headerObject(hdr, ""), "method": r.Method, "body": string(body), "timestamp": jsDate(at)}
	res := &routed{orch: map[string]any{"name": rt.Name, "request": orchReq}}

	timeout := defaultRouteTimeout
	if c.Timeout > 0 {
		timeout = time.Duration(c.Timeout) * time.Millisecond
	}
	resp, respBody, err := s.send(r, scheme+"://"+net.JoinHostPort(rt.Host, strconv.Itoa(rt.Port))+path, hdr, body, rt, timeout)
	if err != nil {
		res.orch["error"] = errorObject(err)
		res.serverError(err, s.now())
		return res
	}
	answered := s.now()
	res.orch["response"] = map[string]any{"status": resp.StatusCode, "headers": headerObject(resp.Header, ""),
		"body": string(respBody), "timestamp": jsDate(answered)}
	if strings.Contains(resp.Header.Get("Content-Type"), "application/json+openhim") {
		if err := res.unwrap(respBody, txID); err != nil {
			res.serverError(err, s.now())
		}
		return res
	}
	res.status, res.body, res.timestamp = resp.StatusCode, respBody, jsDate(answered)
	res.header = clientHeaders(resp.Header, txID)
	return res
}

func (s *Server) send(r *http.Request, target string, hdr http.Header, body []byte, rt Route, timeout time.Duration) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, r.Method, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	out.Header = hdr
	// Node sends the route's credentials only when the forwarded headers carry none.
	if rt.Username != "" && rt.Password != "" && hdr.Get("Authorization") == "" {
		out.SetBasicAuth(rt.Username, rt.Password)
	}
	resp, err := s.routeHTTP.Do(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRoutedBody))
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}

// forwardHeaders are the client's headers as the core sends them on: without Host and,
// unless the route forwards it, Authorization; with the transaction id, the client id and
// the proxy headers (CORE src/middleware/router.js, proxy.js, messageStore.js).
func forwardHeaders(r *http.Request, rt Route, txID string, cl *client) http.Header {
	h := r.Header.Clone()
	if !rt.ForwardAuthHeader {
		h.Del("Authorization")
	}
	h.Del("Host")
	h.Set("X-OpenHIM-TransactionID", txID)
	if cl != nil {
		h.Set("X-OpenHIM-ClientID", cl.clientID)
	}
	h.Set("X-Forwarded-For", remoteIP(r))
	h.Set("X-Forwarded-Host", r.Host)
	return h
}

// unwrap takes the client's answer from a mediator envelope. A body that is not JSON, or
// lacks a usable response, fails the way it fails in the core: a 500 for the client.
func (res *routed) unwrap(raw []byte, txID string) error {
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("SyntaxError: %v", err)
	}
	resp, ok := env["response"].(map[string]any)
	if !ok {
		return errors.New("TypeError: Cannot read property 'status' of undefined")
	}
	status, ok := jsInt(resp["status"])
	if !ok || status < 100 || status > 999 {
		return fmt.Errorf("RangeError: invalid status code: %v", resp["status"])
	}
	res.envelope = env
	if e, ok := env["error"]; ok && e != nil {
		res.autoRetry, res.err = true, asObject(e)
	}
	res.status, res.timestamp = status, normaliseDate(resp["timestamp"])
	res.header = http.Header{}
	for k, v := range asObject(resp["headers"]) {
		res.header.Set(k, headerValue(v))
	}
	res.header = clientHeaders(res.header, txID)
	switch b := resp["body"].(type) {
	case string:
		res.body = []byte(b)
	case nil:
	default: // Koa sends an object body as JSON
		res.body, _ = json.Marshal(b)
		if res.header.Get("Content-Type") == "" {
			res.header.Set("Content-Type", "application/json; charset=utf-8")
		}
	}
	return nil
}

// serverError is the core's handleServerError for the primary route: the client gets a 500,
// the transaction an error and auto-retry.
func (res *routed) serverError(err error, at time.Time) {
	res.status, res.body, res.timestamp = http.StatusInternalServerError, []byte("An internal server error occurred"), jsDate(at)
	res.header = http.Header{"Content-Type": {"text/plain; charset=utf-8"}} // no transaction id: setKoaResponse did not run
	res.err, res.autoRetry = errorObject(err), true
	res.envelope = nil
}

// clientHeaders are the answer's headers as the core passes them to its client: without
// the lengths and encodings Koa sets itself, and with the transaction id.
func clientHeaders(h http.Header, txID string) http.Header {
	out := h.Clone()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Transfer-Encoding"} {
		out.Del(k)
	}
	out.Set("X-OpenHIM-TransactionID", txID)
	return out
}

func writeRouted(w http.ResponseWriter, res *routed) {
	for k, v := range res.header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.status)
	w.Write(res.body)
}

// storedAnswer is the core's write once routing ends: storeResponse and setFinalStatus
// (CORE src/middleware/messageStore.js). The response, the orchestrations (the mediator's,
// then the core's own of the route call) and the status are replaced unconditionally; the
// properties only when the mediator sent some; the error and auto-retry only when set.
func storedAnswer(res *routed, c *Channel) map[string]any {
	body := string(res.body)
	if c.ResponseBody != nil && !*c.ResponseBody {
		body = ""
	}
	update := map[string]any{
		"response": map[string]any{"status": res.status, "headers": headerObject(res.header, ""), "body": body,
			"timestamp": res.timestamp},
		"status": finalStatus(res),
	}
	orchs := []any{}
	if res.envelope != nil {
		orchs = append(orchs, asList(res.envelope["orchestrations"])...)
		if p := res.envelope["properties"]; truthy(p) {
			update["properties"] = p
		}
	}
	update["orchestrations"] = append(orchs, res.orch)
	if res.err != nil {
		update["error"] = res.err
	}
	if res.autoRetry {
		update["autoRetry"] = true
	}
	return update
}

// finalStatus: the mediator's status verbatim, else from the response status
// (CORE src/middleware/messageStore.js setFinalStatus, with the primary route alone).
func finalStatus(res *routed) any {
	if res.envelope != nil && res.envelope["status"] != nil {
		return res.envelope["status"]
	}
	switch {
	case res.status >= 500 && res.status <= 599:
		return "Failed"
	case res.status >= 200 && res.status <= 299:
		return "Successful"
	}
	return "Completed"
}

// --- the delayed write ---

// WithStoreDelay delays the core's write of a routed answer (see SetStoreDelay).
func WithStoreDelay(d time.Duration) Option { return func(s *Server) { s.storeDelay = d } }

// SetStoreDelay sets how long after answering its client the core writes the mediator's
// answer (response, orchestrations, status, properties) into the transaction. A real core
// was seen to take 0.3–0.5 s; a mediator's own PUT /transactions/:id that arrives sooner is
// overwritten. With 0 (the default) the write happens before the client gets its answer.
func (s *Server) SetStoreDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeDelay = d
}

// HoldStores keeps every write of a routed answer from happening until ReleaseStores, so a
// test can order a mediator's update before the core's write without timing.
func (s *Server) HoldStores() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

// ReleaseStores lets held writes happen (after their delay).
func (s *Server) ReleaseStores() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

// WaitStored waits until the core has written the routed answer of transaction id.
func (s *Server) WaitStored(ctx context.Context, id string) error {
	return s.waitClosed(ctx, s.stored, id, "the write of routed transaction")
}

// waitClosed waits until the channel chans holds for id is closed; chans is guarded by s.mu.
func (s *Server) waitClosed(ctx context.Context, chans map[string]chan struct{}, id, what string) error {
	s.mu.Lock()
	done, ok := chans[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("openhimtest: waiting for %s %s: none is pending or done", what, id)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("openhimtest: waiting for %s %s: %w", what, id, ctx.Err())
	}
}

func (s *Server) scheduleStore(id string, res *routed, c *Channel) {
	update := storedAnswer(res, c)
	s.mu.Lock()
	done := make(chan struct{})
	s.stored[id] = done
	delay, held := s.storeDelay, s.held != nil
	s.mu.Unlock()
	commit := func() {
		s.mu.Lock()
		if tx, ok := s.txs[id]; ok {
			for k, v := range update {
				s.setPathLocked(tx, k, v)
			}
		}
		s.mu.Unlock()
		close(done)
	}
	if delay == 0 && !held {
		commit()
		return
	}
	s.goPending(func() {
		if s.waitStore(delay) {
			commit()
		}
	})
}

// waitStore waits out the delay and any hold; false when the server closed meanwhile.
func (s *Server) waitStore(delay time.Duration) bool {
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.closing:
			return false
		}
	}
	s.mu.Lock()
	gate := s.held
	s.mu.Unlock()
	if gate == nil {
		return true
	}
	select {
	case <-gate:
		return true
	case <-s.closing:
		return false
	}
}

// --- values as the core stores them ---

// headerObject renders headers as Node does: lower-case names, values joined, and '.' or
// '$' in names replaced as the core's copyMapWithEscapedReservedCharacters does.
func headerObject(h http.Header, host string) map[string]any {
	out := map[string]any{}
	for k, v := range h {
		k = strings.ToLower(k)
		k = strings.Replace(strings.Replace(k, ".", "\uff0e", 1), "$", "\uff04", 1)
		out[k] = strings.Join(v, ", ")
	}
	if host != "" {
		out["host"] = host
	}
	return out
}

func headerValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = jsString(e)
		}
		return strings.Join(parts, ", ")
	}
	return jsString(v)
}

func errorObject(err error) map[string]any {
	return map[string]any{"message": err.Error(), "stack": "Error: " + err.Error()}
}

// jsDate renders t as a JavaScript Date serialises: UTC, milliseconds.
func jsDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// normaliseDate casts a mediator's timestamp (an ISO string or epoch milliseconds) the way
// mongoose casts a Date; anything else is stored as given.
func normaliseDate(v any) any {
	switch x := v.(type) {
	case string:
		if t, err := parseJSDate(x); err == nil {
			return jsDate(t)
		}
	case float64:
		return jsDate(time.UnixMilli(int64(x)))
	}
	return v
}

// jsInt is parseInt for a status given as a number or a string.
func jsInt(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
