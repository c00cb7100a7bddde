package dhis2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

// jsonHeader reports whether a response declares a JSON body. Unlike isJSON it cannot look
// at the body: it decides whether a body is streamed before any of it is read.
func jsonHeader(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// bodyReader counts what is read from a response body and keeps the first read error
// other than io.EOF, so that a broken connection is told apart from a malformed payload.
type bodyReader struct {
	r   io.Reader
	n   int64
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// streamBody hands a response body to a request's stream function and returns the error
// of reading the body, if any: roundTrip classifies it like any other transport failure.
func streamBody(body io.Reader, res *response, stream func(io.Reader)) error {
	br := &bodyReader{r: body}
	stream(br)
	res.streamed = br.n
	return br.err
}

// headRecorder keeps the first max bytes written to it.
type headRecorder struct {
	buf []byte
	max int
}

func (h *headRecorder) Write(p []byte) (int, error) {
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// looksLikeDataValueSet reports whether the start of an answer without values is an empty
// data value set: an object naming "dataValues", or a bare array.
func (h *headRecorder) looksLikeDataValueSet() bool {
	b := bytes.TrimLeft(h.buf, " \t\r\n\ufeff")
	return bytes.HasPrefix(b, []byte("[")) || bytes.Contains(b, []byte(`"dataValues"`))
}

// sinkGuard passes values on to the caller's sink, counts them and remembers the error the
// sink returned, so that it is given back unclassified rather than blamed on DHIS2.
type sinkGuard struct {
	sink   transform.Sink
	values int
	err    error
}

func (g *sinkGuard) Group(grp transform.Group) error {
	if err := g.sink.Group(grp); err != nil {
		g.err = err
		return err
	}
	return nil
}

func (g *sinkGuard) Value(v *transform.DataValue, at transform.Locator) error {
	if err := g.sink.Value(v, at); err != nil {
		g.err = err
		return err
	}
	g.values++
	return nil
}

// getDataValueSet sends a GET whose answer is a JSON data value set and streams that set
// into sink with dvs.DecodeJSON. It returns the number of values the sink accepted.
//
// Errors: the sink's own error comes back wrapped with op but unclassified (KindOf gives
// 0): the caller decides what it means. A body that breaks off is transient; a body that
// is not a readable data value set is permanent. Every other answer is classified like
// the rest of the client's calls.
func (c *Client) getDataValueSet(ctx context.Context, op, endpoint string, q url.Values, sink transform.Sink, opts dvs.Options) (int, error) {
	if sink == nil {
		return 0, &Error{Kind: KindPermanent, Op: op, Message: "no sink to receive the data values"}
	}
	g := &sinkGuard{sink: sink}
	var decodeErr error
	decoded := false
	head := &headRecorder{max: 4 << 10}
	res, err := c.roundTrip(ctx, request{op: op, method: http.MethodGet, endpoint: endpoint, query: q,
		stream: func(body io.Reader) {
			decoded = true
			decodeErr = dvs.DecodeJSON(io.TeeReader(body, head), g, opts)
		}})
	if err != nil {
		return g.values, err
	}
	if !decoded {
		if res.status != http.StatusOK {
			return 0, c.statusError(op, res, nil)
		}
		return 0, c.unexpectedBody(op, res) // a 200 that is not JSON: a proxy page
	}
	switch {
	case decodeErr == nil && g.values == 0 && !head.looksLikeDataValueSet():
		// DHIS2 always writes "dataValues", even for no values; JSON without it (an
		// empty object, another resource) would otherwise pass for an empty set.
		kept, _ := c.keep(head.buf)
		return 0, &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status, Body: kept,
			Message: "the answer is not a data value set; check BaseURL"}
	case decodeErr == nil:
		return g.values, nil
	case g.err != nil: // the decoder stops at the sink's first error
		return g.values, fmt.Errorf("%s: %w", op, decodeErr)
	}
	return g.values, &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status,
		Message: "the answer is not a readable data value set", Err: redactedError{msg: c.redact(decodeErr.Error()), cause: decodeErr}}
}

// getJSON sends a GET and decodes a 200 JSON answer into dst. what names the expected
// answer in errors ("a list of data elements").
func (c *Client) getJSON(ctx context.Context, op, endpoint string, q url.Values, what string, dst any) error {
	res, err := c.roundTrip(ctx, request{op: op, method: http.MethodGet, endpoint: endpoint, query: q})
	if err != nil {
		return err
	}
	return c.decodeJSON(op, res, http.StatusOK, what, dst)
}

// decodeJSON reads res, which must have status want and a JSON body, into dst.
func (c *Client) decodeJSON(op string, res *response, want int, what string, dst any) error {
	if res.status != want {
		return c.statusError(op, res, nil)
	}
	if !isJSON(res) {
		return c.unexpectedBody(op, res)
	}
	if err := json.Unmarshal(bytes.TrimSpace(res.body), dst); err != nil {
		kept, _ := c.keep(res.body)
		return &Error{Kind: KindPermanent, Op: op, HTTPStatus: res.status, Body: kept,
			Message: "the answer is not " + what + "; check BaseURL", Err: err}
	}
	return nil
}

// postJSON sends v as a JSON body.
func (c *Client) postJSON(ctx context.Context, op, endpoint string, q url.Values, v any) (*response, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Kind: KindPermanent, Op: op, Message: "encoding the request", Err: err}
	}
	return c.roundTrip(ctx, request{op: op, method: http.MethodPost, endpoint: endpoint, query: q,
		body: Bytes(ContentTypeJSON, data)})
}

// setScheme validates an id scheme and sets it as parameter name when it is not empty.
func setScheme(q url.Values, name string, s transform.IDScheme) error {
	if s == "" {
		return nil
	}
	v, err := transform.ParseIDScheme(string(s))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	q.Set(name, string(v))
	return nil
}

// addExtra adds caller-supplied parameters, refusing those a typed field controls.
func addExtra(q url.Values, extra url.Values, typed func(string) bool) error {
	for k, vs := range extra {
		if typed(k) {
			return fmt.Errorf("Extra parameter %q: set it through the request's fields", k)
		}
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	return nil
}

// checkIDs refuses empty identifiers and ones that would break a parameter's syntax.
func checkIDs(name string, ids []string, forbidden string) error {
	for i, id := range ids {
		if strings.TrimSpace(id) == "" {
			return fmt.Errorf("%s[%d] is empty", name, i)
		}
		if forbidden != "" && strings.ContainsAny(id, forbidden) {
			return fmt.Errorf("%s[%d] %q may not contain any of %q", name, i, id, forbidden)
		}
	}
	return nil
}
