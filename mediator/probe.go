package mediator

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/adapters/dhis2"
)

// Probes. While a target's circuit is open, Tally asks the target every
// delivery.probe_interval whether it answers again, with a request that costs DHIS2 nothing;
// the first answer ends the cool-down, and the next worker sends one message as the
// circuit's trial. Without it, deliveries would resume only when the cool-down (which grows
// with every failed trial, up to retry.max_delay) ran out. An operator can probe now:
// POST /admin/v1/targets/{name}/probe, or `tally targets probe NAME`.

// startProbes runs one probe loop per target until ctx ends.
func (s *Service) startProbes(ctx context.Context) {
	every := s.cfg.Delivery.ProbeInterval.D()
	for _, t := range s.targets {
		s.workers.Go(func() { s.probeLoop(ctx, t, every) })
	}
}

func (s *Service) probeLoop(ctx context.Context, t *target, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if t.breaker.State() != circuitOpen {
			continue
		}
		if _, err := s.probe(ctx, t); err != nil {
			s.log.Debug("target still not answering", "target", t.cfg.Name, "err", err)
		}
	}
}

// probe asks the target whether it answers and, when it does, half-opens an open circuit.
// It reports whether the circuit was half-opened.
func (s *Service) probe(ctx context.Context, t *target) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, min(t.cfg.Timeout.D(), 10*time.Second))
	defer cancel()
	if err := t.client.Ping(pctx); err != nil {
		return false, err
	}
	opened := t.breaker.halfOpen()
	if opened {
		s.log.Info("target answers again; trying a delivery", "target", t.cfg.Name)
	}
	return opened, nil
}

// probeResult is the answer of POST /admin/v1/targets/{name}/probe.
type probeResult struct {
	Target    string `json:"target"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Circuit is the circuit's state after the probe: closed, half-open or open.
	Circuit string `json:"circuit"`
	// Resumed says the probe ended an open circuit's cool-down.
	Resumed bool `json:"resumed"`
}

func (s *Service) handleProbe(c echo.Context) error {
	name := c.Param("name")
	t, ok := s.targets[name]
	if !ok {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no target is called " + strconv.Quote(name)})
	}
	res := probeResult{Target: name}
	resumed, err := s.probe(c.Request().Context(), t)
	res.Reachable, res.Resumed = err == nil, resumed
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, dhis2.ErrUnauthorized) {
			res.Error += " (the target answers, but refuses Tally's credentials)"
		}
	}
	res.Circuit = t.breaker.State().String()
	return c.JSON(http.StatusOK, res)
}
