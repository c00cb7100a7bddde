package delivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
)

// Probes. While a target's circuit is open, Tally asks the target every
// delivery.probe_interval whether it answers again, with a request that costs DHIS2 nothing;
// the first answer ends the cool-down, and the next worker sends one message as the
// circuit's trial. Without it, deliveries would resume only when the cool-down (which grows
// with every failed trial, up to retry.max_delay) ran out. An operator can probe now:
// POST /admin/v1/targets/{name}/probe, or `tally targets probe NAME`.

// RunProbes runs one probe loop per target, every delivery.probe_interval, until ctx ends;
// wg tracks them.
func (ts *Targets) RunProbes(ctx context.Context, every time.Duration, wg *sync.WaitGroup) {
	for _, t := range ts.byName {
		wg.Go(func() { ts.probeLoop(ctx, t, every) })
	}
}

func (ts *Targets) probeLoop(ctx context.Context, t *Target, every time.Duration) {
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
		if _, err := ts.probe(ctx, t); err != nil {
			ts.log.Debug("target still not answering", "target", t.cfg.Name, "err", err)
		}
	}
}

// probe asks the target whether it answers and, when it does, half-opens an open circuit.
// It reports whether the circuit was half-opened.
func (ts *Targets) probe(ctx context.Context, t *Target) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, min(t.cfg.Timeout.D(), 10*time.Second))
	defer cancel()
	if err := t.client.Ping(pctx); err != nil {
		return false, err
	}
	opened := t.breaker.halfOpen()
	if opened {
		ts.log.Info("target answers again; trying a delivery", "target", t.cfg.Name)
	}
	return opened, nil
}

// ProbeResult is what a probe found: the answer of POST /admin/v1/targets/{name}/probe.
type ProbeResult struct {
	Target    string `json:"target"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Circuit is the circuit's state after the probe: closed, half-open or open.
	Circuit string `json:"circuit"`
	// Resumed says the probe ended an open circuit's cool-down.
	Resumed bool `json:"resumed"`
}

// Probe asks the named target now whether it answers (see RunProbes); ErrNoTarget when
// there is none.
func (ts *Targets) Probe(ctx context.Context, name string) (*ProbeResult, error) {
	t, ok := ts.byName[name]
	if !ok {
		return nil, ErrNoTarget
	}
	res := &ProbeResult{Target: name}
	resumed, err := ts.probe(ctx, t)
	res.Reachable, res.Resumed = err == nil, resumed
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, dhis2.ErrUnauthorized) {
			res.Error += " (the target answers, but refuses Tally's credentials)"
		}
	}
	res.Circuit = t.breaker.State().String()
	return res, nil
}
