package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/httpapi/console"
	"github.com/tally-hmis/tally/mediator/pipeline"
)

// The dead-letter API, under /admin/v1 (admin token):
//
//	GET    /dlq?target=&source=&reason=&code=&tx=&since=&until=&after=&limit=   list, oldest first
//	GET    /dlq/{seq|id}                                                         one entry with its values
//	POST   /dlq/{seq|id}/replay[?remap=true]                                     replay one
//	DELETE /dlq/{seq|id}                                                         discard one
//	POST   /dlq/replay   {"seqs":[..]} or {"all":true,"filter":{..}}, "remap"    replay several
//	POST   /dlq/discard  {"seqs":[..]} or {"all":true,"filter":{..}}             discard several
//
// since and until take RFC 3339 times, dates (2024-01-31) or durations meaning "that long
// ago" (24h). A bulk request without seqs must say all: true, so an empty filter never
// replays or discards everything by accident.

// dlqRoutes mounts the dead-letter API under /admin/v1/dlq.
func (s dlqAPI) dlqRoutes(admin *echo.Group) {
	admin.GET("/dlq", s.handleDLQList)
	admin.GET("/dlq/:seq", s.handleDLQShow)
	admin.POST("/dlq/:seq/replay", s.handleDLQReplayOne)
	admin.DELETE("/dlq/:seq", s.handleDLQDiscardOne)
	admin.POST("/dlq/replay", s.handleDLQBulk(true))
	admin.POST("/dlq/discard", s.handleDLQBulk(false))
}

// maxDLQPage bounds one page of a list.
const maxDLQPage = 1000

func (s dlqAPI) handleDLQList(c echo.Context) error {
	f, err := s.dlqFilterFromQuery(c)
	if err != nil {
		return badRequest(c, err)
	}
	limit := 100
	if l := c.QueryParam("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > maxDLQPage {
			return badRequest(c, fmt.Errorf("limit: want 1 to %d", maxDLQPage))
		}
	}
	var after uint64
	if a := c.QueryParam("after"); a != "" {
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			return badRequest(c, errors.New("after: want a sequence number"))
		}
	}
	list, total, next, err := s.deadLetters.List(c.Request().Context(), f, after, limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*dlq.DeadLetterSummary{}
	}
	body := map[string]any{"deadLetters": list, "total": total}
	if next != 0 {
		body["next"] = next
	}
	return c.JSON(http.StatusOK, body)
}

func (s dlqAPI) handleDLQShow(c echo.Context) error {
	seq, err := s.seqParam(c)
	if errors.Is(err, dlq.ErrDeadLetterNotFound) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no dead letter " + strconv.Quote(c.Param("seq"))})
	}
	if err != nil {
		return badRequest(c, err)
	}
	dl, err := s.deadLetters.At(c.Request().Context(), seq)
	if errors.Is(err, dlq.ErrDeadLetterNotFound) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: fmt.Sprintf("no dead letter %d", seq)})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, dl)
}

func (s dlqAPI) handleDLQReplayOne(c echo.Context) error {
	seq, err := s.seqParam(c)
	if errors.Is(err, dlq.ErrDeadLetterNotFound) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no dead letter " + strconv.Quote(c.Param("seq"))})
	}
	if err != nil {
		return badRequest(c, err)
	}
	remap := c.QueryParam("remap") == "true"
	res, err := s.deadLetters.Replay(c.Request().Context(), seq, remap)
	return s.oneResult(c, seq, res, err)
}

func (s dlqAPI) handleDLQDiscardOne(c echo.Context) error {
	seq, err := s.seqParam(c)
	if errors.Is(err, dlq.ErrDeadLetterNotFound) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no dead letter " + strconv.Quote(c.Param("seq"))})
	}
	if err != nil {
		return badRequest(c, err)
	}
	res, err := s.deadLetters.Discard(c.Request().Context(), seq)
	return s.oneResult(c, seq, res, err)
}

func (s dlqAPI) oneResult(c echo.Context, seq uint64, res *dlq.ReplayResult, err error) error {
	switch {
	case errors.Is(err, dlq.ErrDeadLetterNotFound):
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: fmt.Sprintf("no dead letter %d", seq)})
	case err != nil && res != nil:
		// The entry is there but could not be replayed (its target or source is gone,
		// re-mapping refused it): the operator's move.
		return c.JSON(http.StatusConflict, apiError{Status: "error", Message: err.Error()})
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// dlqBulkRequest is the body of POST /dlq/replay and /dlq/discard.
type dlqBulkRequest struct {
	Seqs   []uint64 `json:"seqs"`
	All    bool     `json:"all"`
	Filter struct {
		Target string `json:"target"`
		Source string `json:"source"`
		Reason string `json:"reason"`
		Code   string `json:"code"`
		Tx     string `json:"tx"`
		Since  string `json:"since"`
		Until  string `json:"until"`
	} `json:"filter"`
	Remap bool `json:"remap"`
}

// dlqBulkResponse reports every entry's outcome.
type dlqBulkResponse struct {
	Replayed  int                 `json:"replayed"`
	Discarded int                 `json:"discarded"`
	Failed    int                 `json:"failed"`
	Results   []*dlq.ReplayResult `json:"results"`
}

func (s dlqAPI) handleDLQBulk(replay bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req dlqBulkRequest
		if err := c.Bind(&req); err != nil {
			return badRequest(c, fmt.Errorf("body: %w", err))
		}
		ctx := c.Request().Context()
		seqs := req.Seqs
		switch {
		case len(seqs) > 0 && req.All:
			return badRequest(c, errors.New("give seqs or all with a filter, not both"))
		case len(seqs) == 0 && !req.All:
			return badRequest(c, errors.New(`nothing selected: give "seqs", or "all": true with an optional "filter"`))
		case req.All:
			f, err := s.bulkFilter(&req)
			if err != nil {
				return badRequest(c, err)
			}
			// Collect first: replaying while scanning would meet the entries it adds.
			if err := s.deadLetters.Scan(ctx, f, 0, func(d *dlq.DeadLetterSummary) bool {
				seqs = append(seqs, d.Seq)
				return true
			}); err != nil {
				return err
			}
		}
		out, err := s.bulk(ctx, seqs, replay, req.Remap)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, out)
	}
}

// bulkFilter is the filter of a bulk request for all entries.
func (s dlqAPI) bulkFilter(req *dlqBulkRequest) (dlq.DLQFilter, error) {
	now := s.now()
	f := dlq.DLQFilter{Target: req.Filter.Target, Source: req.Filter.Source, Reason: req.Filter.Reason,
		Code: req.Filter.Code, TxID: req.Filter.Tx}
	var err error
	if f.Since, err = parseWhen(req.Filter.Since, now); err != nil {
		return f, fmt.Errorf("filter.since: %w", err)
	}
	if f.Until, err = parseWhen(req.Filter.Until, now); err != nil {
		return f, fmt.Errorf("filter.until: %w", err)
	}
	if err := s.checkFilter(f); err != nil {
		return f, fmt.Errorf("filter.%w", err)
	}
	return f, nil
}

// checkFilter refuses a reason or target no dead letter can have: a typo must not look
// like an empty queue (or, for a bulk discard, select nothing silently).
func (s dlqAPI) checkFilter(f dlq.DLQFilter) error {
	reasons := []string{pipeline.ReasonRejected, pipeline.ReasonPermanent, pipeline.ReasonExhausted, pipeline.ReasonMapping,
		pipeline.ReasonLocked, pipeline.ReasonUndecodable, pipeline.ReasonPanic, pipeline.ReasonMaxDeliver, pipeline.ReasonNoSource}
	if f.Reason != "" && !slices.Contains(reasons, f.Reason) {
		return fmt.Errorf("reason: %q is not a dead-letter reason (want one of %s)", f.Reason, strings.Join(reasons, ", "))
	}
	if f.Target != "" && f.Target != pipeline.IngestDLQ {
		if _, ok := s.cfg.Target(f.Target); !ok {
			return fmt.Errorf("target: no target is called %q (configured: %s)", f.Target, strings.Join(s.cfg.TargetNames(), ", "))
		}
	}
	return nil
}

// bulk replays or discards the entries one by one; an entry that fails is reported and
// the next one tried, until the request ends.
func (s dlqAPI) bulk(ctx context.Context, seqs []uint64, replay, remap bool) (*dlqBulkResponse, error) {
	out := &dlqBulkResponse{Results: make([]*dlq.ReplayResult, 0, len(seqs))}
	for _, seq := range seqs {
		var res *dlq.ReplayResult
		var err error
		if replay {
			res, err = s.deadLetters.Replay(ctx, seq, remap)
		} else {
			res, err = s.deadLetters.Discard(ctx, seq)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if res == nil {
				res = &dlq.ReplayResult{Seq: seq}
			}
			res.Status, res.Error = "failed", err.Error()
			out.Failed++
		} else if replay {
			out.Replayed++
		} else {
			out.Discarded++
		}
		out.Results = append(out.Results, res)
	}
	return out, nil
}

func (s dlqAPI) dlqFilterFromQuery(c echo.Context) (dlq.DLQFilter, error) {
	q := c.QueryParams()
	f := dlq.DLQFilter{Target: q.Get("target"), Source: q.Get("source"), Reason: q.Get("reason"), Code: q.Get("code"),
		TxID: q.Get("tx")}
	now := s.now()
	var err error
	if f.Since, err = parseWhen(q.Get("since"), now); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = parseWhen(q.Get("until"), now); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	return f, s.checkFilter(f)
}

// seqParam reads the entry a path names: its sequence in TALLY_DLQ, or its id.
func (s dlqAPI) seqParam(c echo.Context) (uint64, error) {
	p := c.Param("seq")
	if seq, err := strconv.ParseUint(p, 10, 64); err == nil && seq > 0 {
		return seq, nil
	}
	if p == "" || len(p) > 200 || strings.ContainsAny(p, " \t/") {
		return 0, fmt.Errorf("not a dead-letter sequence or id: %q", p)
	}
	return s.deadLetters.Find(c.Request().Context(), p)
}

func badRequest(c echo.Context, err error) error {
	return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: err.Error()})
}

// parseWhen reads a time bound as the console does (console.ParseWhen).
func parseWhen(v string, now time.Time) (time.Time, error) { return console.ParseWhen(v, now) }
