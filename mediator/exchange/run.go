package exchange

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/cht"
	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
	"github.com/tally-hmis/tally/transform/period"
)

// Run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunPartial   = "partial" // some requests or targets failed; the rest was sent
	RunFailed    = "failed"
)

// Run triggers.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
)

// ExchangeRun is what a run did: the summary stored with its transaction, shown by the API
// and the CLI.
type ExchangeRun struct {
	Exchange    string    `json:"exchange"`
	Transaction string    `json:"transaction,omitempty"`
	Trigger     string    `json:"trigger"`
	Tick        time.Time `json:"tick,omitzero"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	DryRun      bool      `json:"dryRun,omitempty"`
	Status      string    `json:"status"`
	Error       string    `json:"error,omitempty"`
	// Analytics is the analytics table update run before pulling.
	Analytics *RunAnalytics `json:"analytics,omitempty"`
	Requests  []*RunRequest `json:"requests"`
	Targets   []*RunTarget  `json:"targets"`
	Values    int           `json:"values"`  // pulled values submitted
	Batches   int           `json:"batches"` // messages of the transaction
	Delivery  string        `json:"delivery,omitempty"`
	Notified  []string      `json:"notified,omitempty"`
	Warnings  []string      `json:"warnings,omitempty"`
	errs      []string      // what makes the run partial or failed
	pulled    []*pulledRequest
	targetRun map[string]*targetRun
	txRecord  *txlog.TxRecord
}

// RunAnalytics is the analytics table job a run started and waited for.
type RunAnalytics struct {
	Job     string  `json:"job,omitempty"`
	Seconds float64 `json:"seconds"`
	Message string  `json:"message,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// RunRequest is what one request pulled.
type RunRequest struct {
	Name    string   `json:"name"`
	Periods []string `json:"periods"`
	Values  int      `json:"values"`
	// Duplicates counts pulled values whose key an earlier value of the run had;
	// DuplicateKeys shows some of them.
	Duplicates    int             `json:"duplicates,omitempty"`
	DuplicateKeys []transform.Key `json:"duplicateKeys,omitempty"`
	Seconds       float64         `json:"seconds"`
	Error         string          `json:"error,omitempty"`
}

// RunTarget is what a run meant for one target.
type RunTarget struct {
	Target   string `json:"target"`
	Mapped   int    `json:"mapped"`
	Unmapped int    `json:"unmapped,omitempty"`
	// Removed counts the stale values sent for removal; Held lists periods whose removals
	// were held back because the run produced nothing for them.
	Removed int `json:"removed"`
	// ByScope counts those removed with a 2.43 deletion scope (stale.mode scope or auto).
	ByScope      int      `json:"removedByScope,omitempty"`
	Held         []string `json:"held,omitempty"`
	StaleSkipped string   `json:"staleSkipped,omitempty"`
	// Registered counts complete data set registrations made (Already: existing ones).
	Registered int    `json:"registered,omitempty"`
	Already    int    `json:"alreadyComplete,omitempty"`
	Delivery   string `json:"delivery,omitempty"`
	Error      string `json:"error,omitempty"`
	// A dry run shows what the target would get (up to maxDryRunValues of each).
	Values        []transform.DataValue `json:"dataValues,omitempty"`
	Removals      []transform.DataValue `json:"removals,omitempty"`
	Registrations []dhis2.Registration  `json:"registrations,omitempty"`
	// Diff compares, for a dry run, the values shown with what the target holds for the
	// same data elements, periods and org units (delivery.Target.Compare, as a mapping
	// preview does); it covers the first maxDryRunValues values.
	Diff *delivery.Diff `json:"diff,omitempty"`
}

const (
	maxDryRunValues = 1000
	maxDupKeysShown = 20
)

// pulledRequest is a request's answer, cut into batches.
type pulledRequest struct {
	cfg     *config.ExchangeRequest
	periods []period.Period
	schemes transform.IDSchemes
	batches []*transform.Batch
	values  int
	ok      bool
}

// targetRun is what mapping produced for a target.
type targetRun struct {
	sum *RunTarget
	// produced[i][period] are the keys request i produced; schemes[i] their schemes.
	produced []map[string]map[key4]struct{}
	schemes  []transform.IDSchemes
	// incomplete: some request failed, or mapping did, so that what the run produced is
	// not known whole: stale values are left for a complete run.
	incomplete string
	removals   []transform.Batch
	state      []stateWrite
}

type stateWrite struct {
	request, period string
	set             *deliveredSet
}

type runOptions struct {
	trigger string
	tick    time.Time
	dryRun  bool
	// started, when set, is the run's start time; nonce makes an unscheduled run's
	// transaction id unique (the API names the transaction before the run begins).
	started time.Time
	nonce   string
}

// exchangeTxID derives a scheduled run's transaction id from the exchange and its tick, so
// that two replicas running the same tick (should the claim ever fail) publish the same
// message ids, which JetStream drops as duplicates. Any other run gets a fresh id.
func exchangeTxID(name string, o runOptions) string {
	h := sha256.New()
	h.Write([]byte("exchange\x00" + name + "\x00"))
	if o.trigger == TriggerSchedule && !o.tick.IsZero() {
		h.Write([]byte("tick:" + strconv.FormatInt(o.tick.Unix(), 10)))
	} else {
		h.Write([]byte("run:" + o.nonce))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// runExchange runs an exchange once. It fails with errExchangeBusy when a run is under way;
// otherwise the outcome is in the returned run.
func (x *Runner) runExchange(parent context.Context, e *exchange, o runOptions) (*ExchangeRun, error) {
	if !e.running.TryLock() {
		return nil, errExchangeBusy
	}
	defer e.running.Unlock()
	e.busy.Store(true)
	defer e.busy.Store(false)
	ctx, cancel := context.WithTimeout(parent, e.cfg.Timeout.D())
	defer cancel()
	if o.started.IsZero() {
		o.started = x.now().UTC()
	}
	if o.nonce == "" {
		o.nonce = rand.Text()
	}
	run := &ExchangeRun{Exchange: e.cfg.Name, Trigger: o.trigger, Tick: o.tick, Started: o.started, DryRun: o.dryRun,
		Status: RunRunning, Requests: []*RunRequest{}, Targets: []*RunTarget{}, targetRun: map[string]*targetRun{}}
	if !o.dryRun {
		release, err := x.store.acquireLease(ctx, e.cfg.Name, e.cfg.Timeout.D())
		if err != nil {
			return nil, err
		}
		defer release()
		run.Transaction = exchangeTxID(e.cfg.Name, o)
	}
	log := x.log.With("exchange", e.cfg.Name, "tx", run.Transaction)
	log.Info("exchange run started", "trigger", o.trigger, "dry_run", o.dryRun)

	sent := x.pullAndSend(ctx, e, run)
	x.finishRun(ctx, e, run, sent, parent.Err() != nil)
	log.Info("exchange run finished", "status", run.Status, "values", run.Values, "err", run.Error)
	return run, nil
}

// pullAndSend does the run's work: the analytics tables, the pulls, the mapping and the
// stale values, then stores what the run sends (or, for a dry run, only shows it). It
// reports whether the run sent values.
func (x *Runner) pullAndSend(ctx context.Context, e *exchange, run *ExchangeRun) bool {
	analyticsOK := true
	if a := e.cfg.Analytics; a != nil && a.Run && e.client != nil {
		if run.DryRun {
			run.Warnings = append(run.Warnings, "a dry run does not update analytics tables")
		} else {
			analyticsOK = x.runAnalyticsTables(ctx, e, run)
		}
	}
	if analyticsOK {
		x.pullRequests(ctx, e, run)
	}
	okRequests := 0
	for _, p := range run.pulled {
		if p.ok {
			okRequests++
		}
	}
	pulled := analyticsOK && okRequests > 0
	if pulled {
		x.mapRun(ctx, e, run)
		if e.cfg.Stale.Mode != config.StaleOff {
			x.staleValues(ctx, e, run)
		}
	}
	switch {
	case run.DryRun:
		x.showRegistrations(ctx, e, run)
		x.showDiffs(ctx, e, run)
	case !pulled:
		x.recordFailedRun(ctx, e, run)
	default:
		if err := x.submitRun(ctx, e, run); err != nil {
			run.errs = append(run.errs, "storing the run's values failed (what was stored is delivered; "+
				"the next run sends the rest): "+err.Error())
			return false
		}
		x.afterSubmit(ctx, e, run)
	}
	return pulled
}

// showRegistrations lists, for a dry run, the data sets the run would register complete.
func (x *Runner) showRegistrations(ctx context.Context, e *exchange, run *ExchangeRun) {
	if e.cfg.Completeness == nil {
		return
	}
	for _, t := range x.cfg.TargetsOf(e.source) {
		if tr := run.targetRun[t.Name]; tr != nil {
			regs, err := x.registrations(ctx, e, t.Name, tr)
			if err != nil {
				tr.sum.Error = joinErr(tr.sum.Error, err.Error())
			}
			tr.sum.Registrations = regs[:min(len(regs), maxDryRunValues)]
		}
	}
}

// showDiffs compares, for a dry run, what each target would get with what it holds.
func (x *Runner) showDiffs(ctx context.Context, e *exchange, run *ExchangeRun) {
	for _, t := range x.cfg.TargetsOf(e.source) {
		tr := run.targetRun[t.Name]
		target, ok := x.targets.Get(t.Name)
		if tr == nil || !ok || len(tr.sum.Values) == 0 {
			continue
		}
		var schemes transform.IDSchemes
		for _, sc := range tr.schemes {
			if sc != (transform.IDSchemes{}) {
				schemes = sc
				break
			}
		}
		tr.sum.Diff = target.Compare(ctx, schemes, tr.sum.Values)
		if tr.sum.Mapped > len(tr.sum.Values) && tr.sum.Diff.Error == "" {
			tr.sum.Diff.Error = fmt.Sprintf("the comparison covers the first %d of %d values", len(tr.sum.Values), tr.sum.Mapped)
		}
	}
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// runAnalyticsTables starts the source's analytics table update and waits for it. DHIS2
// refuses to start one while another runs (409, transient): Tally tries again until
// max_wait.
func (x *Runner) runAnalyticsTables(ctx context.Context, e *exchange, run *ExchangeRun) bool {
	a := e.cfg.Analytics
	began := time.Now()
	ra := &RunAnalytics{}
	run.Analytics = ra
	defer func() { ra.Seconds = time.Since(began).Seconds() }()
	opts := dhis2.AnalyticsTablesOptions{LastYears: a.LastYears, SkipResourceTables: a.SkipResourceTables,
		SkipAggregate: a.SkipAggregate, SkipEvents: a.SkipEvents, SkipEnrollment: a.SkipEnrollment,
		SkipValidationResult: a.SkipValidationResult, SkipTrackedEntities: a.SkipTrackedEntities,
		SkipOrgUnitOwnership: a.SkipOrgUnitOwnership, SkipOutliers: a.SkipOutliers}
	wctx, cancel := context.WithTimeout(ctx, a.MaxWait.D())
	defer cancel()
	start := func() (*dhis2.Job, error) { return e.client.StartAnalyticsTables(wctx, opts) }
	job, err := start()
	for ; err != nil && dhis2.KindOf(err) == dhis2.KindTransient && wctx.Err() == nil; job, err = start() {
		x.log.Info("analytics tables could not be started yet; retrying", "exchange", e.cfg.Name, "err", err)
		pipeline.Pause(wctx, a.PollInterval.D())
	}
	if err != nil {
		ra.Error = "starting analytics tables: " + err.Error()
		run.errs = append(run.errs, ra.Error)
		return false
	}
	ra.Job = job.ID
	done, err := e.client.WaitTask(wctx, dhis2.JobTypeAnalyticsTable, job.ID,
		dhis2.WaitOptions{Interval: a.PollInterval.D(), MaxWait: a.MaxWait.D()})
	if done != nil {
		ra.Message = done.LastMessage
	}
	if err != nil {
		ra.Error = "waiting for analytics tables: " + err.Error()
		run.errs = append(run.errs, ra.Error)
		return false
	}
	return true
}

// valueCollector keeps what a source answers.
type valueCollector struct {
	values []transform.DataValue
	limit  int
}

var errTooManyValues = errors.New("too many values")

func (c *valueCollector) Group(transform.Group) error { return nil }

func (c *valueCollector) Value(v *transform.DataValue, _ transform.Locator) error {
	if len(c.values) >= c.limit {
		return errTooManyValues
	}
	c.values = append(c.values, *v)
	return nil
}

// pullRequests runs every request, checks the answers and cuts them into batches.
func (x *Runner) pullRequests(ctx context.Context, e *exchange, run *ExchangeRun) {
	ps := &pulls{now: x.now(), seen: map[transform.Key]bool{}, budget: e.cfg.MaxValues}
	for i := range e.cfg.Requests {
		x.pullRequest(ctx, e, run, &e.cfg.Requests[i], ps)
	}
}

// pulls is the state of a run's pulls: the keys pulled so far (for duplicates across the
// run), what is left of max_values, and where the next request's values and batches are
// numbered from.
type pulls struct {
	now                 time.Time
	seen                map[transform.Key]bool
	budget, offset, seq int
}

// pullRequest runs one request, checks its answer and cuts it into batches; a request that
// fails says why in the run.
func (x *Runner) pullRequest(ctx context.Context, e *exchange, run *ExchangeRun, r *config.ExchangeRequest, ps *pulls) {
	began := time.Now()
	sum := &RunRequest{Name: r.Name, Periods: []string{}}
	run.Requests = append(run.Requests, sum)
	p := &pulledRequest{cfg: r, schemes: e.cfg.RequestSchemes(r)}
	run.pulled = append(run.pulled, p)
	fail := func(msg string) {
		sum.Error = msg
		run.errs = append(run.errs, fmt.Sprintf("request %q: %s", r.Name, msg))
	}
	periods, err := e.cfg.RequestPeriods(r, ps.now)
	p.periods = periods
	for _, pe := range periods {
		sum.Periods = append(sum.Periods, pe.ID())
	}
	if err != nil {
		fail("resolving periods: " + err.Error())
		return
	}
	col := &valueCollector{limit: ps.budget}
	err = x.pullWithRetry(ctx, e, r, periods, col)
	sum.Seconds = time.Since(began).Seconds()
	sum.Values = len(col.values)
	ps.budget -= len(col.values)
	switch {
	case errors.Is(err, errTooManyValues):
		fail(fmt.Sprintf("the run holds more than max_values (%d) values", e.cfg.MaxValues))
		return
	case err != nil:
		fail(err.Error())
		return
	}
	if ps.duplicates(sum, col.values) {
		msg := fmt.Sprintf("%d values repeat a key already pulled (attribute id schemes can do that; "+
			"set duplicates: allow to send them anyway)", sum.Duplicates)
		if e.cfg.Duplicates != "allow" {
			fail(msg + "; nothing of this request was sent")
			return
		}
		run.Warnings = append(run.Warnings, fmt.Sprintf("request %q: %s", r.Name, msg))
	}
	batches, err := x.batchValues(e, run, p.schemes, col.values)
	if err != nil {
		fail(err.Error())
		return
	}
	ps.number(run.Transaction, batches)
	ps.offset += len(col.values)
	p.batches, p.values, p.ok = batches, len(col.values), true
}

// duplicates is the duplicate check of DHIS2's duplicatesOnly, across the whole run: it
// counts in sum the values whose key was pulled before, and reports whether there were any.
func (ps *pulls) duplicates(sum *RunRequest, values []transform.DataValue) bool {
	for j := range values {
		k := values[j].Key()
		if ps.seen[k] {
			sum.Duplicates++
			if len(sum.DuplicateKeys) < maxDupKeysShown {
				sum.DuplicateKeys = append(sum.DuplicateKeys, k)
			}
		}
		ps.seen[k] = true
	}
	return sum.Duplicates > 0
}

// number numbers a request's batches after the run's earlier ones, and its values after
// theirs, as one payload.
func (ps *pulls) number(tx string, batches []*transform.Batch) {
	for _, b := range batches {
		b.Seq = ps.seq
		b.ID = pipeline.BatchMsgID(tx, ps.seq)
		ps.seq++
		for k := range b.Values {
			b.Values[k].Index += ps.offset
		}
	}
}

// transientPullErr reports a pull failure that may pass: DHIS2's classification, or CHT's
// (whose client names the failures that may pass).
func transientPullErr(err error) bool {
	return dhis2.KindOf(err) == dhis2.KindTransient || cht.IsTransient(err)
}

// pullWithRetry pulls one request. A source that fails for a moment (an analytics 500
// while DHIS2 rebuilds a table, a timeout, a 503 from a proxy) is asked again within the
// run, with backoff (source.retry), before the request counts as failed; each try starts
// from an empty collector, so a failure halfway through an answer leaves nothing behind.
func (x *Runner) pullWithRetry(ctx context.Context, e *exchange, r *config.ExchangeRequest, periods []period.Period, col *valueCollector) error {
	pol := e.cfg.Source.Retry
	var err error
	attempt := 1
	for ; ; attempt++ {
		col.values = col.values[:0]
		err = x.pull(ctx, e, r, periods, col)
		if err == nil || !transientPullErr(err) || attempt >= pol.MaxAttempts || ctx.Err() != nil {
			break
		}
		delay := pipeline.Backoff(attempt, pol.InitialDelay.D(), pol.MaxDelay.D())
		if ra := dhis2.RetryAfterOf(err); ra > 0 {
			delay = min(ra, pol.MaxDelay.D())
		}
		x.log.Warn("exchange source failed; asking again", "exchange", e.cfg.Name, "request", r.Name,
			"attempt", attempt, "retry_in", delay, "err", err)
		pipeline.Pause(ctx, delay)
	}
	if err != nil && transientPullErr(err) {
		return fmt.Errorf("%w (after %d attempts)", err, attempt)
	}
	return err
}

// pull reads one request's answer into sink.
func (x *Runner) pull(ctx context.Context, e *exchange, r *config.ExchangeRequest, periods []period.Period, sink transform.Sink) error {
	if e.cht != nil {
		for _, pe := range periods {
			if pe.Type() != period.Monthly {
				return fmt.Errorf("CHT exports months only, not %s", pe.ID())
			}
			if err := e.cht.Export(ctx, r.DataSet, pe, r.OrgUnit, sink); err != nil {
				return err
			}
		}
		return nil
	}
	pes := make([]string, len(periods))
	for i, p := range periods {
		pes[i] = p.ID()
	}
	sc := func(v string) transform.IDScheme { s, _ := transform.ParseIDScheme(v); return s }
	req := dhis2.AnalyticsRequest{Name: r.Name, DX: r.DX, PE: pes, OU: r.OU, AggregationType: r.AggregationType,
		InputIDScheme: sc(r.InputIDScheme), OutputIDScheme: sc(r.OutputIDScheme),
		OutputDataElementIDScheme: sc(r.OutputDataElementIDScheme), OutputOrgUnitIDScheme: sc(r.OutputOrgUnitIDScheme),
		OutputDataItemIDScheme: sc(r.OutputDataItemIDScheme), ApprovalLevel: r.ApprovalLevel, SkipRounding: r.SkipRounding}
	for _, f := range r.Filters {
		req.Filters = append(req.Filters, dhis2.Filter{Dimension: f.Dimension, Items: f.Items})
	}
	_, err := e.client.AnalyticsDataValueSet(ctx, req, sink)
	return err
}

// batchValues validates values as ingest does and cuts them into batches.
func (x *Runner) batchValues(e *exchange, run *ExchangeRun, schemes transform.IDSchemes, values []transform.DataValue) ([]*transform.Batch, error) {
	var out []*transform.Batch
	b := transform.NewBatcher(transform.BatcherConfig{
		Source: e.source.Name, TxID: run.Transaction, Received: run.Started, Schemes: schemes, MaxValues: e.cfg.BatchSize,
		Emit: func(b *transform.Batch) error {
			cp := *b
			cp.Values = slices.Clone(b.Values)
			out = append(out, &cp)
			return nil
		},
	})
	for i := range values {
		v := values[i]
		if err := b.Value(&v, nil); err != nil {
			break // too many problems: Close reports them
		}
	}
	if err := b.Close(); err != nil {
		if list, ok := transform.AsInputErrors(err); ok {
			return nil, fmt.Errorf("the answer holds values DHIS2 would refuse: %s", transform.ClipText(list.Error(), 500))
		}
		return nil, err
	}
	return out, nil
}

// mapRun maps every batch for every target with the mapping in force, to learn the target
// keys the run produces.
func (x *Runner) mapRun(ctx context.Context, e *exchange, run *ExchangeRun) {
	for _, t := range x.cfg.TargetsOf(e.source) {
		tr := &targetRun{sum: &RunTarget{Target: t.Name}, produced: make([]map[string]map[key4]struct{}, len(run.pulled)),
			schemes: make([]transform.IDSchemes, len(run.pulled))}
		run.targetRun[t.Name] = tr
		run.Targets = append(run.Targets, tr.sum)
		for i, p := range run.pulled {
			if !p.ok {
				tr.incomplete = "request " + strconv.Quote(p.cfg.Name) + " failed"
				continue
			}
			tr.produced[i] = map[string]map[key4]struct{}{}
			if err := x.mapRequest(ctx, e, run, t, tr, i); err != nil {
				msg := fmt.Sprintf("mapping request %q: %v", p.cfg.Name, err)
				if errors.Is(err, pipeline.ErrMappingRejected) {
					msg += " (the batch becomes a dead letter)"
				}
				tr.sum.Error = joinErr(tr.sum.Error, transform.ClipText(msg, 500))
				tr.incomplete = "mapping failed"
				run.errs = append(run.errs, t.Name+": "+transform.ClipText(msg, 300))
			}
		}
	}
}

// mapRequest maps the batches of request i for target t and records the keys they produce,
// by period, up to the first batch mapping fails on.
func (x *Runner) mapRequest(ctx context.Context, e *exchange, run *ExchangeRun, t *config.Target, tr *targetRun, i int) error {
	for _, b := range run.pulled[i].batches {
		m, err := x.mapping.Map(ctx, b, e.source, t)
		if err != nil {
			return err
		}
		tr.schemes[i] = m.Batch.Schemes
		tr.sum.Mapped += len(m.Batch.Values)
		tr.sum.Unmapped += len(m.Unmapped)
		for _, v := range m.Batch.Values {
			if v.Deleted || v.Value == "" {
				continue
			}
			k := v.Key()
			set := tr.produced[i][v.Period]
			if set == nil {
				set = map[key4]struct{}{}
				tr.produced[i][v.Period] = set
			}
			set[key4{k.DataElement, k.OrgUnit, k.CategoryOptionCombo, k.AttributeOptionCombo}] = struct{}{}
			if run.DryRun && len(tr.sum.Values) < maxDryRunValues {
				tr.sum.Values = append(tr.sum.Values, v)
			}
		}
	}
	return nil
}

// staleValues compares what the run produced for each target with what the exchange
// delivered before, and prepares the removals and the new delivered sets (see
// staleValuesFor). A target whose run is incomplete is left for a complete run.
func (x *Runner) staleValues(ctx context.Context, e *exchange, run *ExchangeRun) {
	now := x.now()
	for _, t := range x.cfg.TargetsOf(e.source) {
		tr := run.targetRun[t.Name]
		if tr == nil {
			continue
		}
		if tr.incomplete != "" {
			tr.sum.StaleSkipped = "not checked: " + tr.incomplete + "; the next complete run will"
			continue
		}
		x.staleValuesFor(ctx, e, run, now, t.Name, tr)
	}
}

// staleValuesFor compares, for one target, the keys the run produced with those the
// exchange delivered before, period by period: a stored key the run no longer produces is
// stale and removed (stale.mode), unless the run produced nothing at all for its period
// (held, unless stale.allow_empty). A stored period is in a request's scope when it overlaps
// one of the request's periods (a month of a rolled-up quarter, say) or the run produced
// values for it; the sets of the periods in scope are then replaced by what the run
// produced.
func (x *Runner) staleValuesFor(ctx context.Context, e *exchange, run *ExchangeRun, now time.Time, target string, tr *targetRun) {
	sc := &staleScan{x: x, e: e, run: run, now: now, target: target, tr: tr, scopes: map[string]*periodScope{},
		inScope: make([]map[string]bool, len(run.pulled))}
	if err := sc.gather(ctx); err != nil {
		tr.sum.StaleSkipped = "not checked: " + err.Error()
		tr.state = nil
		run.errs = append(run.errs, target+": reading what was delivered before: "+err.Error())
		return
	}
	held, bySchemes := sc.stale()
	if len(held) > 0 {
		run.Warnings = append(run.Warnings, fmt.Sprintf("%s: the run produced nothing for %s, which had values: "+
			"their removal is held (stale.allow_empty removes them)", target, strings.Join(tr.sum.Held, ", ")))
	}
	sc.queueRemovals(ctx, bySchemes)
	sc.recordSets(held)
}

// periodScope is one period's keys at a target: those delivered before (with the schemes
// they were written in) and those the run produced.
type periodScope struct {
	stored   map[key4]transform.IDSchemes
	produced map[key4]struct{}
}

// staleScan is the comparison of one target's keys, period by period.
type staleScan struct {
	x      *Runner
	e      *exchange
	run    *ExchangeRun
	now    time.Time
	target string
	tr     *targetRun
	scopes map[string]*periodScope
	// inScope[i] are the periods of request i in scope.
	inScope []map[string]bool
}

func (sc *staleScan) scopeOf(pe string) *periodScope {
	ps := sc.scopes[pe]
	if ps == nil {
		ps = &periodScope{stored: map[key4]transform.IDSchemes{}, produced: map[key4]struct{}{}}
		sc.scopes[pe] = ps
	}
	return ps
}

// gather collects, request by request, the keys the run produced and those delivered
// before for the periods in scope.
func (sc *staleScan) gather(ctx context.Context) error {
	for i, p := range sc.run.pulled {
		sc.inScope[i] = map[string]bool{}
		for pe, keys := range sc.tr.produced[i] {
			sc.inScope[i][pe] = true
			ps := sc.scopeOf(pe)
			for k := range keys {
				ps.produced[k] = struct{}{}
			}
		}
		if err := sc.gatherStored(ctx, i, p); err != nil {
			return err
		}
	}
	return nil
}

// gatherStored reads the sets request i delivered before, for the periods in its scope. A
// period out of this run's window is kept for a wider run, until retention ends; a set
// whose ids were written in other schemes is not compared (the new set is recorded, and
// compared from the next run on).
func (sc *staleScan) gatherStored(ctx context.Context, i int, p *pulledRequest) error {
	x, name := sc.x, sc.e.cfg.Name
	stored, err := x.store.storedPeriods(ctx, name, sc.target, p.cfg.Name)
	if err != nil {
		return err
	}
	for _, pe := range stored {
		sp, err := period.Parse(pe)
		if err != nil {
			continue
		}
		if !sc.inScope[i][pe] && !slices.ContainsFunc(p.periods, func(q period.Period) bool {
			return q.Contains(sp) || sp.Contains(q)
		}) {
			sc.expire(p, pe, sp)
			continue
		}
		sc.inScope[i][pe] = true
		ds, err := x.store.loadDelivered(ctx, name, sc.target, p.cfg.Name, pe)
		if err != nil {
			return err
		}
		if ds == nil {
			continue
		}
		if len(sc.tr.produced[i][pe]) > 0 && ds.Schemes != sc.tr.schemes[i] {
			// The ids are written differently now: comparing strings would remove
			// every value. Record the new set and compare from the next run on.
			sc.run.Warnings = append(sc.run.Warnings, fmt.Sprintf("%s: request %q period %s: id schemes changed; "+
				"stale values were not checked", sc.target, p.cfg.Name, pe))
			continue
		}
		ps := sc.scopeOf(pe)
		for k := range ds.Keys {
			ps.stored[k] = ds.Schemes
		}
	}
	return nil
}

// expire forgets the set of a period out of this run's window once stale.retention has
// passed since the period ended.
func (sc *staleScan) expire(p *pulledRequest, pe string, sp period.Period) {
	ret := sc.e.cfg.Stale.Retention.D()
	if ret > 0 && sc.now.Sub(sp.End().AddDate(0, 0, 1)) > ret && !sc.run.DryRun {
		sc.tr.state = append(sc.tr.state, stateWrite{request: p.cfg.Name, period: pe})
	}
}

// stale returns the periods whose removals are held and the stale values, by the schemes
// their ids are written in, in a stable order: zeros (stale.mode zero) or deletions.
func (sc *staleScan) stale() (map[string]bool, map[transform.IDSchemes][]transform.DataValue) {
	held := map[string]bool{}
	bySchemes := map[transform.IDSchemes][]transform.DataValue{}
	pes := make([]string, 0, len(sc.scopes))
	for pe := range sc.scopes {
		pes = append(pes, pe)
	}
	sort.Strings(pes)
	for _, pe := range pes {
		ps := sc.scopes[pe]
		if len(ps.produced) == 0 && len(ps.stored) > 0 && !sc.e.cfg.Stale.AllowEmpty {
			held[pe] = true
			sc.tr.sum.Held = append(sc.tr.sum.Held, pe)
			continue
		}
		for _, k := range ps.staleKeys() {
			v := transform.DataValue{DataElement: k.de, Period: pe, OrgUnit: k.ou, CategoryOptionCombo: k.coc,
				AttributeOptionCombo: k.aoc}
			if sc.e.cfg.Stale.Mode == config.StaleZero {
				v.Value = "0"
			} else {
				v.Deleted = true
			}
			bySchemes[ps.stored[k]] = append(bySchemes[ps.stored[k]], v)
		}
	}
	return held, bySchemes
}

// staleKeys are the keys delivered before that the run did not produce, sorted.
func (ps *periodScope) staleKeys() []key4 {
	keys := make([]key4, 0)
	for k := range ps.stored {
		if _, ok := ps.produced[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(a, b int) bool { return lessKey4(keys[a], keys[b]) })
	return keys
}

// recordSets prepares the new delivered sets of every period in scope whose removals are
// not held: what the run produced there.
func (sc *staleScan) recordSets(held map[string]bool) {
	for i, p := range sc.run.pulled {
		for pe := range sc.inScope[i] {
			if held[pe] {
				continue
			}
			sc.tr.state = append(sc.tr.state, stateWrite{request: p.cfg.Name, period: pe,
				set: &deliveredSet{Schemes: sc.tr.schemes[i], Keys: sc.tr.produced[i][pe]}})
		}
	}
}

// queueRemovals cuts a target's stale values into removal batches: deletion scopes where
// the target reads them (stale.mode scope or auto), else values sent deleted (or zero).
func (sc *staleScan) queueRemovals(ctx context.Context, bySchemes map[transform.IDSchemes][]transform.DataValue) {
	e, run, target, tr := sc.e, sc.run, sc.target, sc.tr
	scope := false
	if m := e.cfg.Stale.Mode; (m == config.StaleScope || m == config.StaleAuto) && len(bySchemes) > 0 {
		scope = sc.scopeAvailable(ctx, m)
	}
	for _, sch := range sortedSchemes(bySchemes) {
		vals := bySchemes[sch]
		tr.sum.Removed += len(vals)
		plain, scoped := vals, []transform.DataValue(nil)
		if scope {
			scoped, plain = scopeable(sch, vals)
			tr.sum.ByScope += len(scoped)
		}
		for _, part := range []struct {
			vals     []transform.DataValue
			deletion bool
		}{{scoped, true}, {plain, false}} {
			for start := 0; start < len(part.vals); start += e.cfg.BatchSize {
				tr.removals = append(tr.removals, transform.Batch{Source: e.source.Name, Target: target, Schemes: sch,
					Deletion: part.deletion, Values: part.vals[start:min(start+e.cfg.BatchSize, len(part.vals))]})
			}
		}
		if run.DryRun {
			room := maxDryRunValues - len(tr.sum.Removals)
			tr.sum.Removals = append(tr.sum.Removals, vals[:min(room, len(vals))]...)
		}
	}
}

// scopeAvailable decides whether a target's removals go as 2.43 deletion scopes: only when
// it reports 2.43 or later now. In scope mode an older target, or one whose version cannot
// be read, gets deleted: true values and the run a warning (auto falls back silently).
func (sc *staleScan) scopeAvailable(ctx context.Context, mode string) bool {
	target, run := sc.target, sc.run
	t, ok := sc.x.targets.Get(target)
	if !ok {
		return false
	}
	info, err := t.Client().SystemInfo(ctx)
	if err == nil && info.Release.Release() >= delivery.ScopeRelease {
		return true
	}
	if mode == config.StaleScope {
		why := "reports DHIS2 " + info.Version
		if err != nil {
			why = "could not tell its version (" + transform.ClipText(err.Error(), 200) + ")"
		}
		run.Warnings = append(run.Warnings, fmt.Sprintf("%s: stale.mode scope needs DHIS2 2.43 or later and the target %s: "+
			"stale values are removed with deleted: true instead", target, why))
	}
	return false
}

// scopeable splits removals into those a deletion scope can name exactly and the rest. A
// scope element without a combo covers every combo, so an empty combo (DHIS2's default)
// is written as the default combo's id in the batch's scheme: its UID, or "default" as
// code and name. Under another scheme that id is unknown, and the value is removed with
// deleted: true instead.
func scopeable(sch transform.IDSchemes, vals []transform.DataValue) (scoped, plain []transform.DataValue) {
	r := sch.Resolved(transform.SchemeUID)
	coc, cocOK := defaultComboID(r.CategoryOptionCombo)
	aoc, aocOK := defaultComboID(r.AttributeOptionCombo)
	for _, v := range vals {
		if v.CategoryOptionCombo == "" {
			if !cocOK {
				plain = append(plain, v)
				continue
			}
			v.CategoryOptionCombo = coc
		}
		if v.AttributeOptionCombo == "" {
			if !aocOK {
				plain = append(plain, v)
				continue
			}
			v.AttributeOptionCombo = aoc
		}
		scoped = append(scoped, v)
	}
	return scoped, plain
}

func defaultComboID(s transform.IDScheme) (string, bool) {
	switch s {
	case transform.SchemeUID:
		return metadata.DefaultCategoryOptionComboUID, true
	case transform.SchemeCode, transform.SchemeName:
		return "default", true
	}
	return "", false
}

func lessKey4(a, b key4) bool {
	if a.de != b.de {
		return a.de < b.de
	}
	if a.ou != b.ou {
		return a.ou < b.ou
	}
	if a.coc != b.coc {
		return a.coc < b.coc
	}
	return a.aoc < b.aoc
}

func sortedSchemes(m map[transform.IDSchemes][]transform.DataValue) []transform.IDSchemes {
	out := make([]transform.IDSchemes, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}
