package dhis2test

import (
	"net/http"
)

func (s *Server) systemRoutes() []route {
	return []route{
		{pattern: "GET /system/info", handler: s.handleSystemInfo},
		{pattern: "GET /me", handler: s.handleMe},
		{pattern: "GET /ping", handler: s.handlePing, public: true},
		{pattern: "GET /system/ping", handler: s.handleSystemPing},
	}
}

// handleSystemInfo: GET /api/system/info (a subset of DHIS2's fields).
func (s *Server) handleSystemInfo(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host + s.basePath
	writeBody(w, r, http.StatusOK, "systemInfo", orderedMap{
		{"contextPath", base},
		{"userAgent", r.UserAgent()},
		{"calendar", "iso8601"},
		{"dateFormat", "yyyy-mm-dd"},
		{"serverDate", now.Format("2006-01-02T15:04:05.000")},
		{"serverTimeZoneId", "Etc/UTC"},
		{"serverTimeZoneDisplayName", "Coordinated Universal Time"},
		{"version", s.version.String()},
		{"revision", "dhis2test"},
		{"buildTime", "2024-01-01T00:00:00.000"},
		{"jasperReportsVersion", "6.20.1"},
		{"environmentVariable", "DHIS2_HOME"},
		{"systemId", "dhis2test-emulator"},
		{"systemName", "DHIS2 emulator (dhis2test)"},
		{"instanceBaseUrl", base},
		{"emailConfigured", false},
		{"isMetadataVersionEnabled", false},
	})
}

// handleMe: GET /api/me (minimal).
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	u := callOf(r).user
	refs := func(ids []string) []any {
		out := make([]any, len(ids))
		for i, id := range ids {
			out[i] = orderedMap{{"id", id}}
		}
		return out
	}
	name := u.FirstName
	if u.Surname != "" {
		name += " " + u.Surname
	}
	auths := u.Authorities
	if auths == nil {
		auths = []string{}
	}
	writeBody(w, r, http.StatusOK, "user", orderedMap{
		{"id", u.ID},
		{"username", u.Username},
		{"firstName", u.FirstName},
		{"surname", u.Surname},
		{"name", name},
		{"displayName", name},
		{"authorities", auths},
		{"organisationUnits", refs(u.OrgUnits)},
		{"dataViewOrganisationUnits", refs(u.OrgUnits)},
		{"userGroups", refs(u.UserGroups)},
		{"settings", orderedMap{}},
	})
}

// handlePing: GET /api/ping. DHIS2's PingController is a void handler with
// @ResponseStatus(OK): 200 and an empty body, and DhisWebApiWebSecurityConfig
// puts "/api/ping" on the security ignore list, so no credentials are needed.
func (s *Server) handlePing(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
}

// handleSystemPing: GET /api/system/ping. SystemController.ping sets
// Cache-Control: no-store (setNoStore) and answers the text "pong"; the path
// falls under the authenticated "/**" rule of DhisWebApiWebSecurityConfig, so
// it proves the credentials too.
func (s *Server) handleSystemPing(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	_, _ = w.Write([]byte("pong"))
}
