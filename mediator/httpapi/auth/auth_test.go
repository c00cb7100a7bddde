package auth

import (
	"testing"

	"github.com/tally-hmis/tally/config"
)

func TestMatchFindsTheCredentialAndNothingElse(t *testing.T) {
	c := New(config.Admin{Token: "the-old-admin-token-0123", Credentials: []config.AdminCredential{
		{Name: "viewer", Token: "viewer-token-0123456789", Scope: "read"},
		{Name: "alice", Token: "alice-token-0123456789", Scope: "operate"},
	}})
	for token, want := range map[string]Principal{
		"the-old-admin-token-0123": {Name: "admin", Scope: Operate},
		"viewer-token-0123456789":  {Name: "viewer", Scope: Read},
		"alice-token-0123456789":   {Name: "alice", Scope: Operate},
	} {
		if got, ok := c.Match(token); !ok || got != want {
			t.Errorf("Match(%q) = %v, %v; want %v", token, got, ok, want)
		}
	}
	for _, token := range []string{"", "viewer-token-012345678", "viewer-token-01234567890", "VIEWER-TOKEN-0123456789"} {
		if p, ok := c.Match(token); ok {
			t.Errorf("Match(%q) = %v, want no match", token, p)
		}
	}
	if New(config.Admin{}).Enabled() {
		t.Error("no credentials: enabled")
	}
}

func TestReadScopeOnlyLooks(t *testing.T) {
	read, operate := Principal{Name: "v", Scope: Read}, Principal{Name: "o", Scope: Operate}
	for _, c := range []struct {
		method, route string
		read          bool
	}{
		{"GET", "/admin/v1/dlq", true},
		{"HEAD", "/admin/v1/transactions/:id", true},
		{"POST", "/admin/v1/preview", true},
		{"POST", "/admin/v1/dlq/replay", false},
		{"POST", "/admin/v1/dlq/:seq/replay", false},
		{"DELETE", "/admin/v1/dlq/:seq", false},
		{"POST", "/admin/v1/exchanges/:name/run", false},
		{"GET", "/admin/v1/debug/pprof/profile", false},
		{"PUT", "/admin/v1/anything", false},
		{"GET", "/console/dlq", true},
		{"POST", "/console/logout", true},
		{"POST", "/console/dlq/preview", true},
		{"POST", "/console/preview", true},
		{"POST", "/console/dlq/replay", false},
		{"POST", "/console/dlq/discard", false},
		{"POST", "/console/dlq/discard/confirm", false},
		{"POST", "/console/exchanges/:name/run", false},
	} {
		if got := read.Can(c.method, c.route); got != c.read {
			t.Errorf("read %s %s = %v, want %v", c.method, c.route, got, c.read)
		}
		if !operate.Can(c.method, c.route) {
			t.Errorf("operate %s %s refused", c.method, c.route)
		}
	}
	if (Principal{Name: "x", Scope: "root"}).Can("GET", "/admin/v1/dlq") {
		t.Error("an unknown scope may look")
	}
}
