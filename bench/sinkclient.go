package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// sinkClient is the harness's side of a sink's control API.
type sinkClient struct {
	base string
	hc   *http.Client
}

func newSinkClient(base string) *sinkClient { return &sinkClient{base: base, hc: &http.Client{}} }

func (c *sinkClient) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("sink %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("sink %s %s: HTTP %d: %s", method, path, resp.StatusCode, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sink %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// reset forgets every receipt; the next run is complete at expect receipts.
func (c *sinkClient) reset(ctx context.Context, expect int) error {
	return c.do(ctx, http.MethodPost, "/__bench/reset", url.Values{"expect": {strconv.Itoa(expect)}}, nil)
}

// progress waits up to wait for the run to complete and says where it stands.
func (c *sinkClient) progress(ctx context.Context, wait time.Duration) (Progress, error) {
	var p Progress
	err := c.do(ctx, http.MethodGet, "/__bench/progress", url.Values{"wait": {wait.String()}}, &p)
	return p, err
}

// state reads what the sink received, seen from the values [start, start+n).
func (c *sinkClient) state(ctx context.Context, start, n int) (*SinkState, error) {
	var st SinkState
	err := c.do(ctx, http.MethodGet, "/__bench/state", url.Values{"start": {strconv.Itoa(start)}, "n": {strconv.Itoa(n)}}, &st)
	return &st, err
}

// capacity reads the emulator's capacity-mode counters.
func (c *sinkClient) capacity(ctx context.Context) (dhis2test.CapacityStats, error) {
	var cs dhis2test.CapacityStats
	err := c.do(ctx, http.MethodGet, "/__sim/capacity", nil, &cs)
	return cs, err
}

// awaitReceipts waits until the sink has received the run's expected number of values. It
// gives up when the receipts have not moved for stall, naming how far they got.
func (c *sinkClient) awaitReceipts(ctx context.Context, stall time.Duration) (Progress, error) {
	last, since := int64(-1), time.Now()
	for {
		p, err := c.progress(ctx, time.Second)
		if err != nil {
			return p, err
		}
		if p.Reached {
			return p, nil
		}
		if p.Receipts != last {
			last, since = p.Receipts, time.Now()
		} else if time.Since(since) > stall {
			return p, fmt.Errorf("the sink received %d of %d values and nothing more for %s", p.Receipts, p.Expect, stall)
		}
		if err := ctx.Err(); err != nil {
			return p, err
		}
	}
}
