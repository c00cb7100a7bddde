package exchange

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tally-hmis/tally/mediator/txlog"
)

// What the admin API shows and does (mediator/httpapi serves it): every exchange with its
// schedule, health and last run; one run now, in the background; the runs of an exchange.

// ErrNoExchange means no exchange has the name.
var ErrNoExchange = errors.New("no such exchange")

// ErrNotStarted means the runner has not been started.
var ErrNotStarted = errors.New("not started")

// ErrNoRun means the exchange has no run with that transaction (a run under way is
// recorded once its values are stored).
var ErrNoRun = errors.New("no such run")

// ExchangeInfo is an exchange as the API lists it.
type ExchangeInfo struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Source      ExchangeSrcInfo `json:"source"`
	SourceName  string          `json:"sourceName"`
	Schedule    string          `json:"schedule,omitempty"`
	Timezone    string          `json:"timezone"`
	Next        time.Time       `json:"next,omitzero"`
	Targets     []string        `json:"targets"`
	Mapping     string          `json:"mapping,omitempty"`
	Stale       string          `json:"stale"`
	Running     bool            `json:"running"`
	Health      *exchangeHealth `json:"health,omitempty"`
	LastRun     *ExchangeRun    `json:"lastRun,omitempty"`
	// Requests, shown for one exchange, name the periods a run would cover now.
	Requests []RequestInfo `json:"requests,omitempty"`
}

// ExchangeSrcInfo names an exchange's source without its credentials.
type ExchangeSrcInfo struct {
	Type string `json:"type"`
	URL  string `json:"url"`
	Auth string `json:"auth"`
}

// RequestInfo is a request with its periods resolved now.
type RequestInfo struct {
	Name    string   `json:"name"`
	Periods []string `json:"periods"`
	Error   string   `json:"error,omitempty"`
}

func (x *Runner) info(ctx context.Context, e *exchange, detail bool) *ExchangeInfo {
	c := e.cfg
	info := &ExchangeInfo{Name: c.Name, Description: c.Description, SourceName: e.source.Name, Schedule: c.Schedule,
		Timezone: c.Timezone, Targets: x.cfg.TargetNamesOf(e.source), Mapping: c.Mapping, Stale: c.Stale.Mode,
		Running: e.busy.Load()}
	info.Source = ExchangeSrcInfo{Type: c.Source.Type, URL: c.Source.URL, Auth: "basic " + c.Source.Username}
	if c.Source.Token != "" {
		info.Source.Auth = "token"
	}
	if e.sched != nil {
		info.Next = e.sched.Next(x.now(), c.Location())
	}
	var lease leaseRecord
	if rev, err := x.store.loadJSONState(ctx, exchangeKey(c.Name, "lease"), &lease); err == nil && rev > 0 && time.Now().Before(lease.Until) {
		info.Running = true // here or on another replica
	}
	var h exchangeHealth
	if _, err := x.store.loadJSONState(ctx, exchangeKey(c.Name, "health"), &h); err == nil && (h.Failing || !h.LastSuccess.IsZero()) {
		info.Health = &h
	}
	var last ExchangeRun
	if rev, err := x.store.loadJSONState(ctx, exchangeKey(c.Name, "last"), &last); err == nil && rev > 0 {
		info.LastRun = &last
	}
	if detail {
		now := x.now()
		for i := range c.Requests {
			r := &c.Requests[i]
			ri := RequestInfo{Name: r.Name, Periods: []string{}}
			ps, err := c.RequestPeriods(r, now)
			for _, p := range ps {
				ri.Periods = append(ri.Periods, p.ID())
			}
			if err != nil {
				ri.Error = err.Error()
			}
			info.Requests = append(info.Requests, ri)
		}
	}
	return info
}

// Infos lists every exchange, in the order of the configuration.
func (x *Runner) Infos(ctx context.Context) []*ExchangeInfo {
	out := []*ExchangeInfo{}
	for _, e := range x.order {
		out = append(out, x.info(ctx, e, false))
	}
	return out
}

// Has reports whether an exchange is called name.
func (x *Runner) Has(name string) bool {
	_, ok := x.byName[name]
	return ok
}

// Info shows one exchange, with the periods a run would cover now.
func (x *Runner) Info(ctx context.Context, name string) (*ExchangeInfo, error) {
	e, ok := x.exchange(name)
	if !ok {
		return nil, ErrNoExchange
	}
	return x.info(ctx, e, true), nil
}

// RunResult is what a run asked for came to.
type RunResult struct {
	Run *ExchangeRun
	Err error
}

// Launch starts a run of the exchange called name in the background, as the API asks for
// it, and returns its transaction id (a dry run has none recorded) and where its result
// will be. It fails at once with ErrNoExchange, errExchangeBusy (a run is under way here)
// or ErrNotStarted; a run that cannot take the lease (busy on another replica) says so on
// the channel.
func (x *Runner) Launch(name string, dryRun bool) (string, <-chan RunResult, error) {
	e, ok := x.exchange(name)
	if !ok {
		return "", nil, ErrNoExchange
	}
	if e.busy.Load() {
		return "", nil, errExchangeBusy
	}
	x.mu.Lock()
	runCtx, workers := x.runCtx, x.workers
	x.mu.Unlock()
	if runCtx == nil {
		return "", nil, ErrNotStarted
	}
	o := runOptions{trigger: TriggerAPI, dryRun: dryRun, started: x.now().UTC(), nonce: rand.Text()}
	done := make(chan RunResult, 1)
	workers.Add(1)
	go func() {
		defer workers.Done()
		run, err := x.runExchange(runCtx, e, o)
		done <- RunResult{run, err}
	}()
	return exchangeTxID(e.cfg.Name, o), done, nil
}

// IsBusy reports whether err says a run of the exchange is under way.
func IsBusy(err error) bool { return errors.Is(err, errExchangeBusy) }

// Runs lists the recent runs of the exchange called name, newest first, without the values
// of dry runs.
func (x *Runner) Runs(ctx context.Context, name string, limit int) ([]*ExchangeRun, error) {
	e, ok := x.exchange(name)
	if !ok {
		return nil, ErrNoExchange
	}
	recs, err := x.tx.List(ctx, e.source.Name, limit)
	if err != nil {
		return nil, err
	}
	out := []*ExchangeRun{}
	for _, r := range recs {
		run, err := x.readRun(ctx, r.ID)
		if err != nil || run == nil {
			continue
		}
		for _, t := range run.Targets {
			t.Values, t.Removals, t.Registrations = nil, nil, nil
		}
		out = append(out, run)
	}
	return out, nil
}

// RunOf returns the run of the exchange called name recorded under transaction tx, with
// the transaction; ErrNoRun when there is none.
func (x *Runner) RunOf(ctx context.Context, name, tx string) (*ExchangeRun, *txlog.TxView, error) {
	e, ok := x.exchange(name)
	if !ok {
		return nil, nil, ErrNoExchange
	}
	run, err := x.readRun(ctx, tx)
	if errors.Is(err, txlog.ErrTxNotFound) || (err == nil && (run == nil || run.Exchange != e.cfg.Name)) {
		return nil, nil, fmt.Errorf("%w %s of exchange %s", ErrNoRun, tx, e.cfg.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	view, err := x.tx.View(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	view.Deliveries = nil
	return run, view, nil
}

// readRun reads a run's summary from its transaction record; nil when the transaction is
// no exchange run's.
func (x *Runner) readRun(ctx context.Context, tx string) (*ExchangeRun, error) {
	rec, err := x.tx.Get(ctx, tx)
	if err != nil || len(rec.Exchange) == 0 {
		return nil, err
	}
	var run ExchangeRun
	if err := json.Unmarshal(rec.Exchange, &run); err != nil {
		return nil, fmt.Errorf("decoding transaction %s: %w", tx, err)
	}
	return &run, nil
}
