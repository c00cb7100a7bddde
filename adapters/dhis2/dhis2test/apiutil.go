package dhis2test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Helpers shared by the read and exchange endpoints (export.go,
// analytics.go, completeness.go, messages.go, metadata_api.go,
// exchanges.go, resourcetables.go).

// apiError is an error DHIS2 reports as a WebMessage: an
// IllegalQueryException (409 with errorCode), a NotFoundException (404), ...
type apiError struct {
	status  int
	code    string // E-code; "" when DHIS2 has none
	message string
}

func (e *apiError) Error() string { return e.message }

func (e *apiError) write(w http.ResponseWriter, r *http.Request) {
	m := webMessage(e.status, "ERROR", e.message, nil)
	if e.code != "" {
		m = append(m, kv{"errorCode", e.code})
	}
	writeBody(w, r, e.status, "webMessage", m)
}

// conflictf returns a 409 IllegalQueryException WebMessage for an error code
// whose message is formatted with args (`{0}` placeholders).
func conflictf(code, message string, args ...string) *apiError {
	for i, a := range args {
		message = strings.ReplaceAll(message, "{"+string(rune('0'+i))+"}", a)
	}
	return &apiError{status: http.StatusConflict, code: code, message: message}
}

// listParam returns the values of a repeatable parameter; each value may
// also hold a comma-separated list (Spring binds both forms).
func listParam(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// boolParam reads a boolean parameter; anything but "true" is false.
func boolParam(q url.Values, name string) bool {
	return strings.EqualFold(strings.TrimSpace(q.Get(name)), "true")
}

// schemeParam reads the first of names that holds a valid id scheme.
func schemeParam(q url.Values, names ...string) idScheme {
	for _, n := range names {
		if s, ok := parseIDScheme(q.Get(n)); ok {
			return s
		}
	}
	return idScheme{}
}

// orScheme returns the first scheme that is set, or UID.
func orScheme(schemes ...idScheme) idScheme {
	for _, s := range schemes {
		if s.kind != "" {
			return s
		}
	}
	return idScheme{kind: schemeUID}
}

// requestBase returns scheme://host of the request.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// timestampUTC formats t as DHIS2's TIMESTAMP_UTC_TZ_FORMAT
// (yyyy-MM-dd'T'HH:mm:ss.SSSZ), e.g. 2015-04-05T19:58:12.000+0000
// (spec dhis2.md §4.2).
func timestampUTC(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// userRoots returns the org units a user sees data for: their own, or the
// roots of the hierarchy when they have none.
func (m *Metadata) userRoots(u *User) []string {
	if u != nil && len(u.OrgUnits) > 0 {
		return slices.Clone(u.OrgUnits)
	}
	var roots []string
	for _, o := range m.OrgUnits {
		if o.Parent == "" {
			roots = append(roots, o.ID)
		}
	}
	return roots
}

// inUserHierarchy reports whether ou lies in the user's data view hierarchy.
func (m *Metadata) inUserHierarchy(u *User, ou string) bool {
	if u == nil || len(u.OrgUnits) == 0 {
		return true
	}
	return m.isDescendant(ou, u.OrgUnits)
}

// children returns the direct children of ou in metadata order.
func (m *Metadata) children(ou string) []string {
	var out []string
	for _, o := range m.OrgUnits {
		if o.Parent == ou {
			out = append(out, o.ID)
		}
	}
	return out
}

// identOf returns the identifier of uid in scheme s; ok is false when the
// object has no such identifier (no code, no attribute value) or the scheme
// is not modelled (ID, UUID).
func (m *Metadata) identOf(k kind, s idScheme, uid string) (string, bool) {
	switch s.kind {
	case "", schemeUID:
		return uid, true
	case schemeCode, schemeName, schemeAttribute:
		v := m.ident(k, s, uid)
		return v, v != ""
	}
	return "", false
}

// identOrUID is identOf falling back to the UID, as DHIS2 does where it
// substitutes identifiers only when the scheme yields a value.
func (m *Metadata) identOrUID(k kind, s idScheme, uid string) string {
	if v, ok := m.identOf(k, s, uid); ok {
		return v
	}
	return uid
}

// findPI resolves a program indicator written in scheme s.
func (m *Metadata) findPI(s idScheme, ref string) *ProgramIndicator {
	for _, p := range m.ProgramIndicators {
		if v, ok := piIdent(p, s); ok && v == ref {
			return p
		}
	}
	return nil
}

// piIdent returns a program indicator's identifier in scheme s.
func piIdent(p *ProgramIndicator, s idScheme) (string, bool) {
	var v string
	switch s.kind {
	case "", schemeUID:
		v = p.ID
	case schemeCode:
		v = p.Code
	case schemeName:
		v = p.Name
	case schemeAttribute:
		v = p.AttributeValues[s.attr]
	}
	return v, v != ""
}

// queryOf parses the query string like a servlet container: pairs are
// separated by '&' only, so the ';' that DHIS2 uses between dimension items
// ("dimension=dx:a;b") survives unescaped. (url.ParseQuery drops such pairs.)
func queryOf(r *http.Request) url.Values {
	q := url.Values{}
	for pair := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		q[k] = append(q[k], v)
	}
	return q
}

// omGet returns the value of field k of m.
func omGet(m orderedMap, k string) (any, bool) {
	for _, f := range m {
		if f.k == k {
			return f.v, true
		}
	}
	return nil, false
}
