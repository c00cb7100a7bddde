package mediator

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

// chtClient reads CHT's DHIS2 export (spec cht.md §1–§11):
//
//	GET {url}/api/v2/export/dhis?filters[dataSet]=ID&filters[date][from]=MS[&filters[orgUnit]=OU]
//
// with Basic credentials of an online user holding can_export_all (§3: a user with only
// can_export_dhis gets a 500 from a CHT bug). One call covers one data set and one month:
// only the calendar month of `from` counts, read in the CHT server's time zone, so Tally
// sends the middle of the month. The answer is a data value set with numeric values, the
// period in the header, org units per value, and a completeDate that is the export date,
// not a completion (§6): Tally drops it.
type chtClient struct {
	base  string
	authz string
	hc    *http.Client
	ua    string
	// timeout bounds a call.
	timeout time.Duration
}

func newCHTClient(src ExchangeSource, hc *http.Client, version string) (*chtClient, error) {
	u, err := url.Parse(strings.TrimRight(src.URL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("CHT URL %q: not a URL", src.URL)
	}
	return &chtClient{
		base:    u.String(),
		authz:   "Basic " + base64.StdEncoding.EncodeToString([]byte(src.Username+":"+src.Password)),
		hc:      httpClientOr(hc),
		ua:      "tally/" + version,
		timeout: src.Timeout.D(),
	}, nil
}

// chtError is CHT's error body: {"code":400,"error":"dataSet \"X\" is not defined"}.
type chtError struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

// Export reads one data set for one month into sink. Values keep CHT's ids; the header
// period is applied to each value and checked against the month asked for.
func (c *chtClient) Export(ctx context.Context, dataSet string, month period.Period, orgUnit string, sink transform.Sink) error {
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
		return &transientPull{fmt.Errorf("CHT export of %s %s: %w", dataSet, month.ID(), err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var ce chtError
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
		err := fmt.Errorf("CHT export of %s %s: HTTP %d: %s", dataSet, month.ID(), resp.StatusCode, clipText(msg, 300))
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return &transientPull{err}
		}
		return err
	}
	check := &chtPeriodCheck{Sink: sink, want: month.ID()}
	if err := dvs.DecodeJSON(io.LimitReader(resp.Body, 512<<20), check, dvs.Options{}); err != nil {
		return fmt.Errorf("CHT export of %s %s: %w", dataSet, month.ID(), err)
	}
	return nil
}

// chtPeriodCheck drops CHT's completeDate (the export date) and refuses an answer for
// another month than the one asked for.
type chtPeriodCheck struct {
	transform.Sink
	want string
}

func (c *chtPeriodCheck) Group(g transform.Group) error {
	g.CompleteDate = ""
	return c.Sink.Group(g)
}

func (c *chtPeriodCheck) Value(v *transform.DataValue, at transform.Locator) error {
	if v.Period != c.want {
		return fmt.Errorf("CHT answered for period %q, not %s (time zones?)", v.Period, c.want)
	}
	return c.Sink.Value(v, at)
}
