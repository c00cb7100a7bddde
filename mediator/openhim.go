package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/openhim"
)

// OpenHIM integration. When `openhim.enabled` is set, Tally registers as a mediator and
// heartbeats (mediator/openhim runs that in the background; an unreachable core never
// blocks Tally or its readiness). Requests that arrive through an OpenHIM channel carry
// X-OpenHIM-TransactionID: they are answered with the application/json+openhim envelope,
// status "Processing", because delivery is asynchronous; when the transaction's delivery
// completes, Tally updates the core's transaction with the final status and one
// orchestration per target, so the console shows what really happened.
//
// Reruns from the console send the original body again, so they get the same message ids
// and, within nats.duplicate_window, the same transaction: nothing is stored twice.
//
// Behind an OpenHIM the core strips the client's Authorization header. Give the channel's
// route Basic credentials of a source user in the console; Tally authenticates those.

func (s *Service) openhimSources() []openhim.Source {
	names := make([]string, len(s.cfg.Sources))
	for i, src := range s.cfg.Sources {
		names[i] = src.Name
	}
	return openhim.Sources(names...)
}

// openhimEnvelope wraps the answer of a request that came through an OpenHIM channel.
func (s *Service) openhimEnvelope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.openhim == nil || openhim.TransactionID(c.Request()) == "" {
			return next(c)
		}
		received := s.now()
		real := c.Response().Writer
		rec := &capture{header: http.Header{}}
		c.Response().Writer = rec
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		c.Response().Writer = real
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		resp := openhim.NewResponse(status, rec.header, rec.body.Bytes(), s.now())
		env := openhim.NewEnvelope(s.sections.OpenHIM.URN, "", resp)
		if status < 300 {
			env.Status = openhim.StatusProcessing
		}
		req := openhim.RequestFromHTTP(c.Request(), nil, received)
		env.AddOrchestration(openhim.NewOrchestration("Tally ingest", req, &resp, nil))
		if txID := txIDFromBody(rec.body.Bytes()); txID != "" {
			env.SetProperty("tally_transaction", txID)
			// A source that waits for delivery has the outcome now: the envelope carries
			// the final status and the DHIS2 calls, and the core needs no later update.
			if v, ok := s.finished(c.Request().Context(), txID); ok {
				out := s.openhimOutcome(v)
				env.Status = out.Status
				env.AddOrchestration(out.Orchestrations...)
				_, _ = s.conn.State.Create(c.Request().Context(), "openhim."+txID, []byte(v.Status))
			}
		}
		c.Response().Writer = real
		c.Response().Committed = false
		c.Response().Status = status
		return env.Write(c.Response())
	}
}

// finished returns the transaction's view if its deliveries are all done.
func (s *Service) finished(ctx context.Context, txID string) (*TxView, bool) {
	v, err := s.txlog.View(ctx, txID)
	if err != nil || v.Status == TxAccepted {
		return nil, false
	}
	return v, true
}

// capture buffers a handler's answer so it can be wrapped.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(p)
}

func txIDFromBody(b []byte) string {
	var v struct {
		Transaction string `json:"transaction"`
		Response    struct {
			Reference string `json:"reference"`
		} `json:"response"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	if v.Transaction != "" {
		return v.Transaction
	}
	return v.Response.Reference
}

// applyOpenHIMConfig applies what an operator changed in the OpenHIM console. A pushed
// config is the whole console config: a key that is absent, or holds its "no override"
// value, restores what the configuration file says.
func (s *Service) applyOpenHIMConfig(raw map[string]any) {
	o, err := openhim.ParseOverrides(raw)
	if err != nil {
		s.log.Warn("ignoring OpenHIM console config", "err", err)
		return
	}
	if s.logLevel != nil {
		s.logLevel.Set(o.LogLevelOr(s.configuredLevel))
	}
	s.overrides.Store(&o)
	for _, t := range s.targets {
		if t.slots != nil {
			t.slots.resize(s.deliveryConcurrency(t.cfg))
		}
	}
	s.log.Info("applied OpenHIM console config", "log_level", o.LogLevelOr(s.configuredLevel).String(),
		"dry_run_targets", o.DryRunTargets, "batch_size", derefInt(o.BatchSize),
		"delivery_concurrency", derefInt(o.DeliveryConcurrency))
}

// configuredLevel is the level the configuration file asks for; when it cannot be read (it
// was validated, so only for a service built by hand) the level the logger started with.
func configuredLevel(level string, started *slog.LevelVar) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err == nil {
		return l
	}
	if started != nil {
		return started.Level()
	}
	return slog.LevelInfo
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// batchSizeFor is the source's batch size unless the console overrides it.
func (s *Service) batchSizeFor(configured int) int {
	if o := s.overrides.Load(); o != nil && o.BatchSize != nil && *o.BatchSize > 0 {
		return *o.BatchSize
	}
	return configured
}

// deliveryConcurrency is how many requests a target may have in flight: the console's
// delivery_concurrency when an operator set one, else targets[].concurrency.
func (s *Service) deliveryConcurrency(t *config.Target) int {
	if o := s.overrides.Load(); o != nil && o.DeliveryConcurrency != nil && *o.DeliveryConcurrency > 0 {
		return *o.DeliveryConcurrency
	}
	return t.Concurrency
}

// dryRunFor reports whether deliveries to a target are dry runs, by config or console.
func (s *Service) dryRunFor(t *target) bool {
	if t.cfg.DryRun {
		return true
	}
	o := s.overrides.Load()
	return o != nil && slices.Contains(o.DryRunTargets, t.cfg.Name)
}

// reportOpenHIMOutcomes watches delivery records and, when a transaction that came
// through OpenHIM reaches a final status, updates the core's transaction once. The update
// is claimed in tally_state first, so with several replicas (or after a restart) it is
// sent once.
func (s *Service) reportOpenHIMOutcomes(ctx context.Context) {
	w, err := s.conn.Tx.Watch(ctx, "*.d.>", jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		s.log.Error("watching deliveries for OpenHIM updates", "err", err)
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			txID, _, _ := strings.Cut(e.Key(), ".d.")
			if err := s.updateOpenHIM(ctx, txID); err != nil {
				s.log.Warn("updating the OpenHIM transaction", "tx", txID, "err", err)
			}
		}
	}
}

func (s *Service) updateOpenHIM(ctx context.Context, txID string) error {
	rec, err := s.txlog.Get(ctx, txID)
	if err != nil || rec.OpenHIMTransaction == "" {
		return nil
	}
	v, err := s.txlog.View(ctx, txID)
	if err != nil || v.Status == TxAccepted {
		return err
	}
	if _, err := s.conn.State.Create(ctx, "openhim."+txID, []byte(v.Status)); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil
		}
		return fmt.Errorf("claiming the OpenHIM update: %w", err)
	}
	update := s.openhimOutcome(v)
	if err := s.openhim.Client().UpdateTransaction(ctx, rec.OpenHIMTransaction, update); err != nil {
		// Release the claim so that a later delivery record (or replica) tries again.
		_ = s.conn.State.Delete(ctx, "openhim."+txID)
		return err
	}
	s.log.Info("updated OpenHIM transaction", "tx", txID, "openhim_tx", rec.OpenHIMTransaction, "status", update.Status)
	return nil
}

// openhimOutcome is a finished transaction as OpenHIM records it: the final status, the
// transaction as the response, and one orchestration per target for its DHIS2 import.
func (s *Service) openhimOutcome(v *TxView) openhim.TransactionUpdate {
	status := map[string]openhim.Status{
		TxDelivered: openhim.StatusSuccessful, TxPartiallyDelivered: openhim.StatusCompletedWithErrors, TxFailed: openhim.StatusFailed,
	}[v.Status]
	body, _ := json.Marshal(v)
	now := s.now()
	code := http.StatusOK
	if v.Status != TxDelivered {
		code = http.StatusConflict
	}
	resp := openhim.NewResponse(code, http.Header{"Content-Type": {"application/json"}}, body, now)
	update := openhim.TransactionUpdate{Status: status, Response: &resp}
	for _, t := range v.Targets {
		tb, _ := json.Marshal(t)
		tresp := openhim.NewResponse(code, http.Header{"Content-Type": {"application/json"}}, tb, now)
		req := openhim.Request{Path: "/api/dataValueSets", Method: http.MethodPost, Timestamp: v.Received}
		if tc, ok := s.cfg.Target(t.Target); ok {
			req.Host = tc.URL
		}
		var oerr error
		if t.LastError != "" && v.Status != TxDelivered {
			oerr = errors.New(t.LastError)
		}
		update.Orchestrations = append(update.Orchestrations,
			openhim.NewOrchestration("DHIS2 import: "+t.Target, req, &tresp, oerr))
	}
	return update
}
