package openhim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
)

// ErrNotConfirmed: ReportOutcome wrote the outcome but the core's record, read back, still
// did not show all of it when the attempts ran out.
var ErrNotConfirmed = errors.New("openhim: outcome not confirmed by the core's record")

// TransactionUpdate is a raw PUT /transactions/:id body (spec §8.5). The core applies it as a
// database update and checks nothing (CORE src/api/transactions.js updateTransaction: a
// findByIdAndUpdate without validators): fields set here replace the stored ones, fields left
// out are kept, and Orchestrations are appended (`$push` with `$each`). The core overwrites
// the response, orchestrations, status and properties itself when it finishes routing, so a
// PUT sent before that is lost; prefer Client.ReportOutcome, which waits for that write and
// confirms by reading the record back.
type TransactionUpdate struct {
	Status Status
	// Response replaces the response the core stored for its client; leave it nil to keep it.
	// ReportOutcome takes a stored response as the sign that the core has written the
	// envelope, so a transaction reported with it must not get a Response here.
	Response       *Response
	Orchestrations []Orchestration
	// Properties replace the stored properties; include those from the first answer to keep them.
	Properties map[string]any
	// Error queues the transaction for the core's auto-retry when the channel enables it.
	Error *ErrorDetails
}

// MarshalJSON renders the update document the core expects.
func (u TransactionUpdate) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if u.Status != "" {
		m["status"] = u.Status
	}
	if u.Response != nil {
		m["response"] = u.Response
	}
	if u.Properties != nil {
		m["properties"] = u.Properties
	}
	if u.Error != nil {
		m["error"] = u.Error
	}
	if len(u.Orchestrations) > 0 {
		m["$push"] = map[string]any{"orchestrations": map[string]any{"$each": u.Orchestrations}}
	}
	return json.Marshal(m)
}

func (u TransactionUpdate) empty() bool {
	return u.Status == "" && u.Response == nil && u.Properties == nil && u.Error == nil && len(u.Orchestrations) == 0
}

// UpdateTransaction sends one PUT /transactions/:id. A 200 proves nothing: the core accepts
// any body, and its own write at the end of routing may replace what this one set; read the
// record back (GetTransaction) or use ReportOutcome. The core user needs the same rights as
// for registration (group "admin" up to core 8.5.0). An unknown id makes the core answer 500,
// not 404.
func (c *Client) UpdateTransaction(ctx context.Context, txID string, u TransactionUpdate) error {
	if txID == "" {
		return errors.New("openhim: update transaction: empty transaction id")
	}
	if u.empty() {
		return errors.New("openhim: update transaction: empty update")
	}
	_, err := c.do(ctx, "update transaction", http.MethodPut, "/transactions/"+url.PathEscape(txID), u)
	return err
}

// TransactionRecord is what the core has stored for a transaction, as GET /transactions/:id
// returns it: the parts Tally needs to confirm an outcome.
type TransactionRecord struct {
	ID     string
	Status Status
	// ResponseStatus is the stored response's HTTP status, 0 while the core has stored none:
	// it writes the response when routing ends, together with the orchestrations, status
	// and properties (CORE src/middleware/messageStore.js storeResponse).
	ResponseStatus int
	// Orchestrations are in stored order: the mediator's, then the core's own record of the
	// call to the channel's route, named after the route (e.g. "Tally cht").
	Orchestrations []OrchestrationRecord
	Properties     map[string]any
	Error          *ErrorDetails
	AutoRetry      bool
	ParentID       string
	ChildIDs       []string
}

// OrchestrationRecord is a stored orchestration.
type OrchestrationRecord struct {
	Name string
	// ResponseStatus is 0 when the orchestration has no response (e.g. the call failed).
	ResponseStatus int
	Error          *ErrorDetails
}

// OrchestrationNames lists the stored orchestrations' names in order.
func (r *TransactionRecord) OrchestrationNames() []string {
	names := make([]string, len(r.Orchestrations))
	for i, o := range r.Orchestrations {
		names[i] = o.Name
	}
	return names
}

// Settled reports whether the core has stored the mediator's answer; until then the core's
// own write is still to come and will replace the status, orchestrations and properties.
func (r *TransactionRecord) Settled() bool { return r.ResponseStatus != 0 }

// wireRecord decodes the parts of the core's transaction document that TransactionRecord
// keeps. Headers, bodies and timestamps are not decoded: the core stores headers as free
// objects whose values need not be strings.
type wireRecord struct {
	ID       string        `json:"_id"`
	Status   Status        `json:"status"`
	Response *wireResponse `json:"response"`
	Orchs    []struct {
		Name     string        `json:"name"`
		Response *wireResponse `json:"response"`
		Error    *ErrorDetails `json:"error"`
	} `json:"orchestrations"`
	Properties map[string]any `json:"properties"`
	Error      *ErrorDetails  `json:"error"`
	AutoRetry  bool           `json:"autoRetry"`
	ParentID   string         `json:"parentID"`
	ChildIDs   []string       `json:"childIDs"`
}

type wireResponse struct {
	Status jsNumber `json:"status"`
}

// jsNumber accepts a JSON number, a numeric string or null.
type jsNumber int

func (n *jsNumber) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		*n = jsNumber(x)
	case string:
		i, err := strconv.Atoi(x)
		if err != nil {
			return fmt.Errorf("status %q is not a number", x)
		}
		*n = jsNumber(i)
	}
	return nil
}

func (w *wireRecord) record() *TransactionRecord {
	r := &TransactionRecord{ID: w.ID, Status: w.Status, Properties: w.Properties, Error: w.Error,
		AutoRetry: w.AutoRetry, ParentID: w.ParentID, ChildIDs: w.ChildIDs}
	if w.Response != nil {
		r.ResponseStatus = int(w.Response.Status)
	}
	for _, o := range w.Orchs {
		or := OrchestrationRecord{Name: o.Name, Error: o.Error}
		if o.Response != nil {
			or.ResponseStatus = int(o.Response.Status)
		}
		r.Orchestrations = append(r.Orchestrations, or)
	}
	return r
}

// GetTransaction reads what the core has stored for txID (GET /transactions/:id). An unknown
// id is ErrNotFound.
func (c *Client) GetTransaction(ctx context.Context, txID string) (*TransactionRecord, error) {
	if txID == "" {
		return nil, errors.New("openhim: get transaction: empty transaction id")
	}
	b, err := c.do(ctx, "get transaction", http.MethodGet, "/transactions/"+url.PathEscape(txID), nil)
	if err != nil {
		return nil, err
	}
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("openhim: get transaction %s: unexpected answer: %w", txID, err)
	}
	return w.record(), nil
}

// Outcome is the final result of a transaction Tally answered before it had delivered.
type Outcome struct {
	// Status is required, e.g. StatusSuccessful once every target imported the values.
	Status Status
	// Orchestrations are added to the stored ones; one already stored under the same name
	// counts as present, so reporting the same outcome twice adds nothing.
	Orchestrations []Orchestration
	// Properties are merged into the stored properties (the keys given here win).
	Properties map[string]any
	// Error queues the transaction for the core's auto-retry when the channel enables it.
	Error *ErrorDetails
}

// ReportOutcome records out on the core's transaction txID and returns the record as read
// back once it shows all of out. The client's stored response is left as the core stored it.
//
// The core writes Tally's answer (response, orchestrations, status, properties) when it
// finishes routing, unconditionally and after a delay, so an update sent earlier is lost
// (spec §8.3; CORE src/middleware/messageStore.js storeResponse). ReportOutcome therefore
// waits until the record shows that write (Settled), up to Config.ReportAttempts reads
// Config.ReportInterval apart; then it writes the missing parts, reads the record back after
// ReportInterval and writes again what is still missing, up to ReportAttempts writes. It
// returns ErrNotConfirmed when the record never shows all of out, ErrNotFound for an unknown
// transaction, and stops early on refused credentials or rights. Core 5xx answers and
// connection failures are retried within the same attempts.
func (c *Client) ReportOutcome(ctx context.Context, txID string, out Outcome) (*TransactionRecord, error) {
	if txID == "" {
		return nil, errors.New("openhim: report outcome: empty transaction id")
	}
	if out.Status == "" {
		return nil, fmt.Errorf("openhim: report outcome for %s: status is required", txID)
	}
	want, err := normaliseProperties(out.Properties)
	if err != nil {
		return nil, fmt.Errorf("openhim: report outcome for %s: properties: %w", txID, err)
	}
	rec, err := c.awaitSettled(ctx, txID)
	if err != nil {
		return rec, err
	}
	for range c.reportAttempts {
		u := out.missing(rec, want)
		if u.empty() {
			return rec, nil
		}
		if err := c.UpdateTransaction(ctx, txID, u); err != nil && !retryable(err) {
			return rec, err
		}
		if err := c.pause(ctx); err != nil {
			return rec, err
		}
		if next, err := c.GetTransaction(ctx, txID); err == nil {
			rec = next
		} else if !retryable(err) {
			return rec, err
		}
	}
	if out.missing(rec, want).empty() {
		return rec, nil
	}
	return rec, fmt.Errorf("%w: transaction %s after %d writes: status %q, orchestrations %q",
		ErrNotConfirmed, txID, c.reportAttempts, rec.Status, rec.OrchestrationNames())
}

// awaitSettled reads txID until the core has stored Tally's answer or the attempts run out.
// A record that never settles (e.g. the core restarted and marked it Failed) is returned as
// last read, so the outcome is still written.
func (c *Client) awaitSettled(ctx context.Context, txID string) (*TransactionRecord, error) {
	var (
		rec     *TransactionRecord
		lastErr error
	)
	for i := range c.reportAttempts {
		if i > 0 {
			if err := c.pause(ctx); err != nil {
				return rec, err
			}
		}
		next, err := c.GetTransaction(ctx, txID)
		switch {
		case err == nil:
			rec, lastErr = next, nil
			if rec.Settled() {
				return rec, nil
			}
		case retryable(err):
			lastErr = err
		default:
			return rec, fmt.Errorf("openhim: report outcome for %s: %w", txID, err)
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("openhim: report outcome for %s: core unreachable after %d reads: %w",
			txID, c.reportAttempts, lastErr)
	}
	c.log.Warn("openhim: the core has not stored the answer to the transaction; reporting the outcome anyway",
		"openhim_tx", txID, "status", rec.Status)
	return rec, nil
}

func (c *Client) pause(ctx context.Context) error {
	t, stop := c.clock.NewTimer(c.reportInterval)
	defer stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t:
		return nil
	}
}

// retryable reports failures worth another attempt: the core answered 5xx, or did not
// answer at all.
func retryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= 500
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// missing is the update that would bring rec to out: the status when it differs, the
// orchestrations whose names are not stored (as often as they are wanted), the properties
// merged into the stored ones when any differs, and the error when none is stored.
func (out Outcome) missing(rec *TransactionRecord, want map[string]any) TransactionUpdate {
	var u TransactionUpdate
	if rec.Status != out.Status {
		u.Status = out.Status
	}
	stored := map[string]int{}
	for _, o := range rec.Orchestrations {
		stored[o.Name]++
	}
	for _, o := range out.Orchestrations {
		if stored[o.Name] > 0 {
			stored[o.Name]--
			continue
		}
		u.Orchestrations = append(u.Orchestrations, o)
	}
	for k, v := range want {
		if !reflect.DeepEqual(rec.Properties[k], v) {
			u.Properties = maps.Clone(rec.Properties)
			if u.Properties == nil {
				u.Properties = map[string]any{}
			}
			maps.Copy(u.Properties, want)
			break
		}
	}
	if out.Error != nil && (rec.Error == nil || rec.Error.Message != out.Error.Message) {
		u.Error = out.Error
	}
	return u
}

// normaliseProperties turns property values into what they read back as from JSON, so that
// wanted and stored values compare equal (e.g. int 12 and float64 12).
func normaliseProperties(p map[string]any) (map[string]any, error) {
	if p == nil {
		return nil, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
