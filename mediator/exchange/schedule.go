package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// scheduleExchange runs an exchange at every tick of its schedule until ctx ends. Every
// replica runs this loop; claimTick lets exactly one of them run each tick. A tick missed
// while no replica was up is not made up: the next tick's window covers the periods.
func (x *Runner) scheduleExchange(ctx context.Context, e *exchange) {
	loc := e.cfg.Location()
	var last time.Time
	for {
		now := x.now()
		from := now
		if last.After(from) {
			from = last
		}
		next := e.sched.Next(from, loc)
		if next.IsZero() {
			x.log.Error("exchange schedule never fires; not scheduling it", "exchange", e.cfg.Name, "schedule", e.cfg.Schedule)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-x.after(next.Sub(now)):
		}
		last = next
		if _, err := x.exchangeTick(ctx, e, next); err != nil && ctx.Err() == nil {
			x.log.Error("scheduled exchange run", "exchange", e.cfg.Name, "tick", next, "err", err)
		}
	}
}

// exchangeTick runs the tick at when this replica claims it. It reports whether it ran.
func (x *Runner) exchangeTick(ctx context.Context, e *exchange, at time.Time) (bool, error) {
	ok, err := x.store.claimTick(ctx, e.cfg.Name, at)
	if err != nil || !ok {
		if err == nil {
			x.log.Debug("exchange tick taken by another replica", "exchange", e.cfg.Name, "tick", at)
		}
		return false, err
	}
	if _, err := x.runExchange(ctx, e, runOptions{trigger: TriggerSchedule, tick: at}); err != nil {
		if errors.Is(err, errExchangeBusy) {
			x.log.Warn("exchange tick skipped: the previous run is still under way", "exchange", e.cfg.Name, "tick", at)
		}
		return false, err
	}
	return true, nil
}

// Tick runs the scheduled tick at of the exchange called name as its scheduler does, when
// this replica claims it, and reports whether it ran.
func (x *Runner) Tick(ctx context.Context, name string, at time.Time) (bool, error) {
	e, ok := x.exchange(name)
	if !ok {
		return false, fmt.Errorf("no exchange %q", name)
	}
	return x.exchangeTick(ctx, e, at)
}
