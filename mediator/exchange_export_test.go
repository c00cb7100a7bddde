package mediator

import (
	"context"
	"time"
)

// Hooks for the exchange tests of package mediator_test.

// ExchangeTick runs the scheduled tick at of the exchange called name as the scheduler
// does, and reports whether this replica ran it.
func (s *Service) ExchangeTick(ctx context.Context, name string, at time.Time) (bool, error) {
	return s.exchanges.Tick(ctx, name, at)
}

// SetExchangeTimer replaces the schedulers' timer. Call it between New and Start.
func (s *Service) SetExchangeTimer(after func(time.Duration) <-chan time.Time) {
	s.exchangeTimer = after
}
