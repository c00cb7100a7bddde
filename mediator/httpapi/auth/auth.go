// Package auth says who is calling Tally's admin surface and what they may do there.
//
// A caller presents one of the configured admin credentials (admin.token, an operator named
// "admin", or one of admin.credentials); the credential's scope decides what it may do: read
// looks (GET, HEAD and previews that change nothing), operate also changes things (replay,
// discard, run an exchange, probe a target, refresh metadata, profile the process). The
// admin API and the console both go through this package, so one table decides for both.
//
// It knows nothing of HTTP frameworks or of what the routes do beyond their method and
// template, and it never logs or returns a token.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/tally-hmis/tally/config"
)

// Scope is what a credential may do.
type Scope string

// The scopes, from least to most.
const (
	Read    Scope = config.ScopeRead
	Operate Scope = config.ScopeOperate
)

// Principal is an authenticated caller: the credential's name and scope. Records that say
// who did something use Name; nothing ever holds the token.
type Principal struct {
	Name  string `json:"name"`
	Scope Scope  `json:"scope"`
}

// Can reports whether p may make a request with this method to this route template.
func (p Principal) Can(method, route string) bool {
	switch p.Scope {
	case Operate:
		return true
	case Read:
		return readOnly(method, route)
	}
	return false
}

// readOnlyPOSTs are POST routes that change nothing: they compute and answer. A read
// credential may call them.
var readOnlyPOSTs = map[string]bool{
	"/admin/v1/preview": true,
	// The console's: ending one's own session, the preview of a replay (what would be
	// sent, nothing sent) and the mapping preview.
	"/console/logout":      true,
	"/console/dlq/preview": true,
	"/console/preview":     true,
}

// readOnly reports whether a request only looks. The profiler is not looking: a CPU profile
// or trace costs the process while it runs, so it needs operate.
func readOnly(method, route string) bool {
	if strings.HasPrefix(route, "/admin/v1/debug/") {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return readOnlyPOSTs[route]
	}
	return false
}

// credential is a configured token, kept as its SHA-256 so that comparing takes the same time
// whatever the lengths and whichever credential matches.
type credential struct {
	sum       [sha256.Size]byte
	principal Principal
}

// Credentials are the admin credentials in force.
type Credentials struct {
	list []credential
}

// New reads the admin credentials of a configuration.
func New(a config.Admin) *Credentials {
	c := &Credentials{}
	for _, cr := range a.AdminCredentials() {
		c.list = append(c.list, credential{sum: sha256.Sum256([]byte(cr.Token)), principal: Principal{Name: cr.Name, Scope: Scope(cr.Scope)}})
	}
	return c
}

// Enabled reports whether any credential is configured; without one the admin surface is
// closed rather than open.
func (c *Credentials) Enabled() bool { return len(c.list) > 0 }

// Match returns the principal a token belongs to. Every credential is compared, so the time
// taken says nothing about which one matched or how close a guess came.
func (c *Credentials) Match(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(token))
	var found Principal
	ok := 0
	for _, cr := range c.list {
		if subtle.ConstantTimeCompare(sum[:], cr.sum[:]) == 1 {
			found, ok = cr.principal, 1
		}
	}
	return found, ok == 1
}

type principalKey struct{}

// WithPrincipal returns a context that carries p, for the handlers and the records below.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal a request was authenticated as, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
