package dhis2

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
	"unicode"
)

// statusError classifies a response whose status is not the one expected (see the table in
// the package documentation). result, when not nil, is attached.
func (c *Client) statusError(op string, res *response, result *ImportResult) *Error {
	e := &Error{
		Op:         op,
		HTTPStatus: res.status,
		RetryAfter: parseRetryAfter(res.header.Get("Retry-After"), c.now()),
		Result:     result,
	}
	if result == nil {
		e.Body, _ = c.keep(res.body)
	}
	e.Code, e.Message = c.describe(res)
	s := res.status
	switch {
	case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s == http.StatusTooManyRequests:
		e.Kind = KindTransient
	case s >= 300 && s < 400:
		e.Kind = KindPermanent
		loc := res.header.Get("Location")
		if loc == "" {
			loc = "(no Location)"
		}
		e.Message = "redirected to " + c.redact(redactURL(loc)) + "; set BaseURL to the final address (redirects are not followed)"
		if strings.Contains(strings.ToLower(loc), "login") {
			e.unauthorized = true
			e.Message = "redirected to the login page " + c.redact(redactURL(loc)) + ": DHIS2 did not accept the credentials"
		}
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		e.Kind = KindPermanent
		e.unauthorized = true
	case s == http.StatusBadRequest:
		e.Kind = KindPermanent
		e.unauthorized = isTokenError(res)
	case s == http.StatusRequestEntityTooLarge:
		e.Kind = KindPermanent
		e.tooLarge = true
		if e.Message == "" {
			e.Message = "payload too large; split the batch"
		}
	case s == http.StatusNotImplemented, s == http.StatusHTTPVersionNotSupported:
		e.Kind = KindPermanent
	case s >= 500:
		e.Kind = KindTransient
	default:
		e.Kind = KindPermanent
	}
	return e
}

// isTokenError reports whether a 400 is DHIS2 refusing the ApiToken header (2.43:
// invalid_request for a malformed token or a bad checksum, §9.2).
func isTokenError(res *response) bool {
	if res.header.Get("WWW-Authenticate") != "" {
		return true
	}
	b := strings.ToLower(string(res.body))
	return strings.Contains(b, "invalid_request") || strings.Contains(b, "invalid_token") ||
		strings.Contains(b, "api token")
}

// unexpectedBody classifies a success status whose body is not what was asked for: JSON of
// another kind means BaseURL points elsewhere (permanent); anything else is a proxy or
// maintenance page, and the outcome is unknown (transient: re-sending is harmless).
func (c *Client) unexpectedBody(op string, res *response) *Error {
	e := &Error{Op: op, HTTPStatus: res.status, RetryAfter: parseRetryAfter(res.header.Get("Retry-After"), c.now())}
	e.Body, _ = c.keep(res.body)
	code, msg := c.describe(res)
	e.Code = code
	if isJSON(res) {
		e.Kind = KindPermanent
		e.Message = "the answer is not an import summary; check BaseURL"
		if msg != "" {
			e.Message += ": " + msg
		}
		return e
	}
	e.Kind = KindTransient
	e.Message = "the answer is not JSON (a proxy page?); the outcome is unknown"
	if msg != "" {
		e.Message += ": " + msg
	}
	return e
}

// describe extracts DHIS2's error code and message from a body: a WebMessage's, an HTML
// page's title, or the start of plain text. Credentials are redacted.
func (c *Client) describe(res *response) (code, msg string) {
	if wm := decodeWebMessage(res.body); wm != nil {
		msg = wm.Message
		if msg == "" {
			msg = wm.DevMessage
		}
		return wm.ErrorCode, c.redact(clip(msg, 300))
	}
	if isJSON(res) {
		return "", ""
	}
	if isHTML(res) {
		if t := htmlTitle(res.body); t != "" {
			return "", c.redact(clip(t, 200))
		}
		return "", "HTML page"
	}
	return "", c.redact(clip(oneLine(string(res.body)), 200))
}

func mediaType(res *response) string {
	mt, _, err := mime.ParseMediaType(res.header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

func isJSON(res *response) bool {
	mt := mediaType(res)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return true
	}
	if mt != "" && mt != "text/plain" && mt != "application/octet-stream" {
		return false
	}
	b := bytes.TrimSpace(res.body)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

func isHTML(res *response) bool {
	mt := mediaType(res)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	b := bytes.TrimSpace(res.body)
	return len(b) > 0 && b[0] == '<' && bytes.Contains(bytes.ToLower(b[:min(len(b), 512)]), []byte("<html"))
}

// htmlTitle returns the text of the page's <title>, or of its first <h1>.
func htmlTitle(body []byte) string {
	lower := bytes.ToLower(body)
	for _, tag := range []string{"title", "h1"} {
		open := bytes.Index(lower, []byte("<"+tag))
		if open < 0 {
			continue
		}
		gt := bytes.IndexByte(lower[open:], '>')
		if gt < 0 {
			continue
		}
		start := open + gt + 1
		end := bytes.Index(lower[start:], []byte("</"+tag))
		if end < 0 {
			continue
		}
		if t := oneLine(string(body[start : start+end])); t != "" {
			return t
		}
	}
	return ""
}

// oneLine collapses white space, dropping control characters.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 { // keep UTF-8 whole
		cut--
	}
	return s[:cut] + "…"
}
