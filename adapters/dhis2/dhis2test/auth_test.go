package dhis2test

import (
	"net/http"
	"testing"
	"time"
)

func withToken(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "ApiToken "+tok) }
}

// spec dhis2.md §9.1, §13 item 1: Basic auth; missing or wrong credentials
// give DHIS2's 401 WebMessage with WWW-Authenticate; every API path except
// /api/ping requires authentication.
func TestBasicAuth(t *testing.T) {
	srv := newTestServer(t)
	const want401 = `{"httpStatus":"Unauthorized","httpStatusCode":401,"status":"ERROR","message":"Unauthorized"}`
	for name, opt := range map[string]reqOpt{
		"missing":        noAuth(),
		"wrong password": withBasic(SampleUser, "nope"),
		"unknown user":   withBasic("nobody", SamplePassword),
		"garbage":        withHeader("Authorization", "Basic !!!"),
		"bearer":         withHeader("Authorization", "Bearer abc"),
	} {
		for _, p := range []string{"/api/dataValueSets", "/api/system/info", "/api/system/ping", "/api/me", "/api/system/tasks/DATAVALUE_IMPORT/x", "/api/nothing/here"} {
			method := http.MethodGet
			if p == "/api/dataValueSets" {
				method = http.MethodPost
			}
			r := do(t, srv, method, p, "application/json", []byte(okBody), opt)
			if r.status != 401 || string(r.raw) != want401 || r.header.Get("WWW-Authenticate") != `Basic realm="DHIS2"` {
				t.Errorf("%s %s: %d %s (%q)", name, p, r.status, r.raw, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	if srv.Store().Len() != 0 || srv.ImportRequests() != 0 {
		t.Error("unauthenticated request imported data")
	}
	// PingController (void, 200) on the security ignore list; SystemController.ping
	// ("pong", Cache-Control: no-store) behind authentication.
	if r := do(t, srv, http.MethodGet, "/api/ping", "", nil, noAuth()); r.status != 200 || len(r.raw) != 0 {
		t.Errorf("ping: %d %s", r.status, r.raw)
	}
	if r := do(t, srv, http.MethodGet, "/api/system/ping", "", nil); r.status != 200 || string(r.raw) != "pong" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("system/ping: %d %s %v", r.status, r.raw, r.header)
	}
	if r := do(t, srv, http.MethodGet, "/api/me", "", nil); r.status != 200 || r.body["username"] != SampleUser {
		t.Errorf("me: %d %s", r.status, r.raw)
	}
	if err := srv.UpdateMetadata(func(m *Metadata) error { m.User(SampleDistrictUser).Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if r := do(t, srv, http.MethodGet, "/api/me", "", nil, withBasic(SampleDistrictUser, SampleDistrictPassword)); r.status != 401 {
		t.Errorf("disabled user: %d", r.status)
	}
}

// spec dhis2.md §1.1: writing needs F_DATAVALUE_ADD (or ALL).
func TestAuthority(t *testing.T) {
	srv := newTestServer(t)
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		m.AddUser(User{ID: "ReadOnlyUsr", Username: "reader", Password: "Reader-1", Authorities: []string{"F_VIEW"}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := postJSON(t, srv, "", okBody, withBasic("reader", "Reader-1"))
	if r.status != 403 || r.body["message"] != "Access is denied" {
		t.Errorf("%d %s", r.status, r.raw)
	}
}

// spec dhis2.md §9.2, §13 item 10: ApiToken V1 and V2, their availability by
// version, malformed headers, unknown and expired tokens, the 2.43 checksum.
func TestAPITokens(t *testing.T) {
	badChecksumV1 := SampleToken[:len(SampleToken)-1] + "0"
	unknownV1, _ := MakeToken("abcdefghijklmnopqrstuvwxyz012345")
	cases := []struct {
		version string
		header  reqOpt
		code    int
		message string
		scheme  string
	}{
		{"2.37", withToken(SampleToken), 200, "", ""},
		{"2.40", withToken(SampleToken), 200, "", ""},
		{"2.43", withToken(SampleToken), 200, "", ""},
		{"2.40", withToken(SampleTokenV2), 401, "The API token does not exists.", "ApiToken"},
		{"2.41", withToken(SampleTokenV2), 200, "", ""},
		{"2.43", withToken(SampleTokenV2), 200, "", ""},
		{"2.40", withToken(unknownV1), 401, "The API token does not exists.", "ApiToken"},
		{"2.43", withToken(unknownV1), 401, "The API token does not exists.", "ApiToken"},
		{"2.40", withHeader("Authorization", "apitoken "+SampleToken), 200, "", ""},
		{"2.40", withHeader("Authorization", "ApiToken bad token!"), 401, "Api token is malformed", "ApiToken"},
		{"2.43", withHeader("Authorization", "ApiToken bad token!"), 400, "Api token is malformed", "ApiToken"},
		{"2.42", withToken(badChecksumV1), 401, "The API token does not exists.", "ApiToken"},
		{"2.43", withToken(badChecksumV1), 400, "Checksum validation failed", "ApiToken"},
		{"2.36", withToken(SampleToken), 401, "Unauthorized", `Basic realm="DHIS2"`},
	}
	for _, tc := range cases {
		srv := newTestServer(t, WithVersion(tc.version))
		r := do(t, srv, http.MethodGet, "/api/me", "", nil, tc.header)
		if r.status != tc.code {
			t.Errorf("%s: %d %s", tc.version, r.status, r.raw)
			continue
		}
		if tc.code != 200 && (r.body["message"] != tc.message || r.body["httpStatusCode"] != float64(tc.code) ||
			r.body["status"] != "ERROR" || r.header.Get("WWW-Authenticate") != tc.scheme) {
			t.Errorf("%s: %s %q", tc.version, r.raw, r.header.Get("WWW-Authenticate"))
		}
		if tc.code == 200 && r.body["username"] != SampleUser {
			t.Errorf("%s: token user %v", tc.version, r.body["username"])
		}
	}
}

func TestExpiredToken(t *testing.T) {
	srv := newTestServer(t)
	tok, err := MakeToken("Expired0Expired0Expired0Expired0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		u := m.User(SampleUser)
		u.Tokens = append(u.Tokens, Token{Key: tok, Expires: fixedNow.Add(-time.Hour).Format(time.RFC3339)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := do(t, srv, http.MethodGet, "/api/me", "", nil, withToken(tok))
	if r.status != 401 || r.body["message"] != "Failed to authenticate API token, token has expired." {
		t.Errorf("%d %s", r.status, r.raw)
	}
}

// spec dhis2.md §9.2 token formats: the checksum of DHIS2's own public test
// tokens (ApiKeyTokenGeneratorTest fixtures) and of the sample tokens.
func TestTokenChecksums(t *testing.T) {
	for _, tok := range []string{
		"d2pat_e0b5Y9bXWtUcfEY8BMHHj9aJZkXCQ7O50174669582",
		"d2pat_rxIbXljF8Pj5oFRTos4bDmPTnnRu8f4M2723141895",
		"d2p_YMQhjAQMDvviHjvUrgIQSRWaGNDc3tVwf63Jfk3DdQsA2wo8HL",
		"d2p_lyt5j9WqXaVzJsUhvGJ1w0Ea5GL4jkszazPSWo5HWLFC1QnPCi",
		SampleToken, SampleTokenV2,
	} {
		if !ValidTokenChecksum(tok) {
			t.Errorf("%s: checksum rejected", tok)
		}
		code := tok[6:38]
		if tok[:4] == "d2p_" {
			code = tok[4:48]
		}
		if made, err := MakeToken(code); err != nil || made != tok {
			t.Errorf("MakeToken(%s) = %s, %v", code, made, err)
		}
	}
	for _, tok := range []string{"d2pat_e0b5Y9bXWtUcfEY8BMHHj9aJZkXCQ7O50174669583", "d2p_short", "token"} {
		if ValidTokenChecksum(tok) {
			t.Errorf("%s accepted", tok)
		}
	}
}
