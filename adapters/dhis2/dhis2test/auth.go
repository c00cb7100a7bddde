package dhis2test

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Authentication (spec dhis2.md §9): Basic, and "ApiToken <token>" personal
// access tokens in the V1 (d2pat_, 48 chars, decimal CRC32) and V2 (d2p_,
// 54 chars, Base62 CRC32) formats.
//
// 401 bodies are DHIS2 WebMessages:
//
//	{"httpStatus":"Unauthorized","httpStatusCode":401,"status":"ERROR","message":"Unauthorized"}
//
// with "WWW-Authenticate: Basic realm=\"DHIS2\"" for Basic / missing
// credentials, and "WWW-Authenticate: ApiToken" plus the token error text
// ("The API token does not exists.", "Api token is malformed", ...) for
// tokens. 2.43 answers a malformed header or a bad checksum with 400
// (invalid_request).

var reAPITokenHeader = regexp.MustCompile(`(?i)^ApiToken (?P<token>[a-z0-9\-._~+/]+=*)$`)

type authError struct {
	code    int
	message string
	scheme  string // WWW-Authenticate value
}

func (e *authError) write(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", e.scheme)
	writeError(w, r, e.code, e.message)
}

func basicUnauthorized(msg string) *authError {
	return &authError{code: http.StatusUnauthorized, message: msg, scheme: `Basic realm="DHIS2"`}
}

func tokenError(code int, msg string) *authError {
	return &authError{code: code, message: msg, scheme: "ApiToken"}
}

func (s *Server) authenticate(r *http.Request) (*User, *authError) {
	h := r.Header.Get("Authorization")
	m := s.metadataSnapshot()
	switch {
	case h == "":
		return nil, basicUnauthorized("Unauthorized")
	case len(h) >= 6 && strings.EqualFold(h[:6], "basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
		if err != nil {
			return nil, basicUnauthorized("Unauthorized")
		}
		name, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, basicUnauthorized("Unauthorized")
		}
		u := m.User(name)
		if u == nil || u.Username != name || subtle.ConstantTimeCompare([]byte(u.Password), []byte(pass)) != 1 {
			return nil, basicUnauthorized("Unauthorized")
		}
		if u.Disabled {
			return nil, basicUnauthorized("Account disabled")
		}
		return u, nil
	case len(h) >= 8 && strings.EqualFold(h[:8], "apitoken") && s.version.supportsPAT():
		return s.authenticateToken(h, m)
	default:
		return nil, basicUnauthorized("Unauthorized")
	}
}

func (s *Server) authenticateToken(h string, m *Metadata) (*User, *authError) {
	v := s.version
	mt := reAPITokenHeader.FindStringSubmatch(h)
	if mt == nil {
		if v.Minor >= 43 {
			return nil, tokenError(http.StatusBadRequest, "Api token is malformed")
		}
		return nil, tokenError(http.StatusUnauthorized, "Api token is malformed")
	}
	token := mt[1]
	if v.checksTokenChecksum() && !ValidTokenChecksum(token) {
		return nil, tokenError(http.StatusBadRequest, "Checksum validation failed")
	}
	if strings.HasPrefix(token, "d2p_") && !v.supportsPATv2() {
		return nil, tokenError(http.StatusUnauthorized, "The API token does not exists.")
	}
	u := m.idx.tokenUser[token]
	if u == nil || u.Disabled {
		return nil, tokenError(http.StatusUnauthorized, "The API token does not exists.")
	}
	for _, t := range u.Tokens {
		if t.Key != token || t.Expires == "" {
			continue
		}
		exp, err := time.Parse(time.RFC3339, t.Expires)
		if err == nil && !s.now().Before(exp) {
			return nil, tokenError(http.StatusUnauthorized, "Failed to authenticate API token, token has expired.")
		}
	}
	return u, nil
}

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// tokenCRC32 computes the token checksum as DHIS2 does: CRC32 over the
// UTF-8 encoding of the code in a buffer of floor(1.1·len) bytes (Java's
// Charset.encode backing array, zero-padded).
func tokenCRC32(code string) uint32 {
	b := []byte(code)
	if n := len(code) * 11 / 10; n > len(b) {
		b = append(b, make([]byte, n-len(b))...)
	}
	return crc32.ChecksumIEEE(b)
}

func base62(n uint32) string {
	out := make([]byte, 0, 6)
	for n > 0 {
		out = append([]byte{base62Alphabet[n%62]}, out...)
		n /= 62
	}
	for len(out) < 6 {
		out = append([]byte{'0'}, out...)
	}
	return string(out)
}

// ValidTokenChecksum reports whether a personal access token carries a valid
// checksum (V1: d2pat_ + 32 chars + 10 decimal digits; V2: d2p_ + 44 chars +
// 6 Base62 digits).
func ValidTokenChecksum(token string) bool {
	switch {
	case strings.HasPrefix(token, "d2pat_") && len(token) == 48:
		code, sum := token[6:38], token[38:]
		n, err := strconv.ParseUint(sum, 10, 64)
		return err == nil && n == uint64(tokenCRC32(code))
	case strings.HasPrefix(token, "d2p_") && len(token) == 54:
		return token[48:] == base62(tokenCRC32(token[4:48]))
	}
	return false
}

// MakeToken builds a personal access token with a valid checksum from a
// code of 32 (V1) or 44 (V2) alphanumeric characters.
func MakeToken(code string) (string, error) {
	switch len(code) {
	case 32:
		return fmt.Sprintf("d2pat_%s%010d", code, tokenCRC32(code)), nil
	case 44:
		return "d2p_" + code + base62(tokenCRC32(code)), nil
	}
	return "", fmt.Errorf("dhis2test: token code must have 32 (V1) or 44 (V2) characters, got %d", len(code))
}
