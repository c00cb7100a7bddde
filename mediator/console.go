package mediator

import (
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/openhim"
)

// OpenHIM integration. When `openhim.enabled` is set, Tally registers as a mediator and
// heartbeats (mediator/openhim runs that in the background; an unreachable core never
// blocks Tally or its readiness). Requests that arrive through an OpenHIM channel carry
// X-OpenHIM-TransactionID: they are answered with the application/json+openhim envelope
// (mediator/httpapi), and Tally links the core's transaction to its own in the transaction
// log. Once the Tally transaction is final, its outcome goes through a durable outbox and
// is recorded in the core's transaction, confirmed by reading it back; a console rerun of
// a transaction Tally still remembers replays its dead letters (mediator/openhim/outcome).
// This file applies what an operator changes in the core's console.

func (s *Service) openhimSources() []openhim.Source {
	names := make([]string, len(s.cfg.Sources))
	for i, src := range s.cfg.Sources {
		names[i] = src.Name
	}
	return openhim.Sources(names...)
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
	s.console.overrides.Store(&o)
	s.targets.Resize()
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

// console holds what an operator changed in the OpenHIM console, over the configuration:
// the delivery settings (it is delivery.Settings) and the batch size.
type console struct {
	cfg       *config.Config
	overrides atomic.Pointer[openhim.Overrides]
}

var _ delivery.Settings = (*console)(nil)

// BatchSize is the source's batch size unless the console overrides it.
func (c *console) BatchSize(configured int) int {
	if o := c.overrides.Load(); o != nil && o.BatchSize != nil && *o.BatchSize > 0 {
		return *o.BatchSize
	}
	return configured
}

// Concurrency is how many requests a target may have in flight: the console's
// delivery_concurrency when an operator set one, else targets[].concurrency.
func (c *console) Concurrency(t *config.Target) int {
	if o := c.overrides.Load(); o != nil && o.DeliveryConcurrency != nil && *o.DeliveryConcurrency > 0 {
		return *o.DeliveryConcurrency
	}
	return t.Concurrency
}

// DryRun reports whether deliveries to the named target are dry runs, by configuration or
// console.
func (c *console) DryRun(name string) bool {
	if tc, ok := c.cfg.Target(name); ok && tc.DryRun {
		return true
	}
	o := c.overrides.Load()
	return o != nil && slices.Contains(o.DryRunTargets, name)
}
