// Package cht reads CHT's DHIS2 export API (GET /api/v2/export/dhis) and its format: a
// data value set of one data set and one month, whose header names the period and whose
// completeDate is the export date. It is an adapter: it knows neither NATS nor Tally's
// configuration and pipeline, and hands what it reads to a transform.Sink.
package cht

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

// Client reads CHT's DHIS2 export (spec cht.md §1–§11):
//
//	GET {url}/api/v2/export/dhis?filters[dataSet]=ID&filters[date][from]=MS[&filters[orgUnit]=OU]
//
// with Basic credentials of an online user holding can_export_all (§3: a user with only
// can_export_dhis gets a 500 from a CHT bug). One call covers one data set and one month:
// only the calendar month of `from` counts, read in the CHT server's time zone, so Tally
// sends the middle of the month. The answer is a data value set with numeric values, the
// period in the header, org units per value, and a completeDate that is the export date,
// not a completion (§6): Tally drops it.
type Client struct {
	base  string
	authz string
	hc    *http.Client
	ua    string
	// timeout bounds a call.
	timeout time.Duration
}

// Config says where the CHT instance is and how to call it.
type Config struct {
	// URL is the instance's base URL; Username and Password are an online user's, with
	// can_export_all.
	URL      string
	Username string
	Password string
	// Timeout bounds a call.
	Timeout time.Duration
	// HTTPClient is used for every call; nil builds a dedicated one.
	HTTPClient *http.Client
	// UserAgent names the caller ("tally/1.2.0").
	UserAgent string
}

// New returns a client of the instance c describes. It does no I/O.
func New(c Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(c.URL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("CHT URL %q: not a URL", c.URL)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &Client{
		base:    u.String(),
		authz:   "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)),
		hc:      hc,
		ua:      c.UserAgent,
		timeout: c.Timeout,
	}, nil
}

// TransientError is a failure that may pass: CHT did not answer (refused, reset, timed
// out), or answered 429, 502, 503 or 504.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err is, or wraps, a TransientError.
func IsTransient(err error) bool {
	var te *TransientError
	return errors.As(err, &te)
}

// errorBody is CHT's error body: {"code":400,"error":"dataSet \"X\" is not defined"}.
type errorBody struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

// Export reads one data set for one month into sink. Values keep CHT's ids; the header
// period is applied to each value and checked against the month asked for.
func (c *Client) Export(ctx context.Context, dataSet string, month period.Period, orgUnit string, sink transform.Sink) error {
	if month.Type() != period.Monthly {
		return fmt.Errorf("CHT exports months only, not %s", month.ID())
	}
	mid := month.Start().AddDate(0, 0, 14).Add(12 * time.Hour)
	q := url.Values{}
	q.Set("filters[dataSet]", dataSet)
	q.Set("filters[date][from]", strconv.FormatInt(mid.UnixMilli(), 10))
	if orgUnit != "" {
		q.Set("filters[orgUnit]", orgUnit)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v2/export/dhis?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.authz)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is known; keep the message short
		}
		// No answer (refused, reset, timed out): CHT may answer a moment later.
		return &TransientError{fmt.Errorf("CHT export of %s %s: %w", dataSet, month.ID(), err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var ce errorBody
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &ce) == nil && ce.Error != "" {
			msg = ce.Error
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			msg += " (the user must be online and hold can_export_all)"
		case http.StatusInternalServerError:
			msg += " (a user with can_export_dhis but not can_export_all gets this from CHT)"
		}
		err := fmt.Errorf("CHT export of %s %s: HTTP %d: %s", dataSet, month.ID(), resp.StatusCode, transform.ClipText(msg, 300))
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return &TransientError{err}
		}
		return err
	}
	check := &periodCheck{Sink: sink, want: month.ID()}
	if err := dvs.DecodeJSON(io.LimitReader(resp.Body, 512<<20), check, dvs.Options{}); err != nil {
		return fmt.Errorf("CHT export of %s %s: %w", dataSet, month.ID(), err)
	}
	return nil
}

// periodCheck drops CHT's completeDate (the export date) and refuses an answer for another
// month than the one asked for.
type periodCheck struct {
	transform.Sink
	want string
}

func (c *periodCheck) Group(g transform.Group) error {
	g.CompleteDate = ""
	return c.Sink.Group(g)
}

func (c *periodCheck) Value(v *transform.DataValue, at transform.Locator) error {
	if v.Period != c.want {
		return fmt.Errorf("CHT answered for period %q, not %s (time zones?)", v.Period, c.want)
	}
	return c.Sink.Value(v, at)
}
