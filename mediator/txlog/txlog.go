// Package txlog is the transaction log: what became of every payload Tally accepted. It
// keeps, in the tally_tx bucket, the record ingest writes, one record per batch and target
// that the mapper and the delivery workers write, the outcome of registering complete data
// sets, what operators did with dead letters, and a mark per transaction whose batches
// ingest began to store (attempts.go); it derives a transaction's status from
// them on read, searches them, and lets a caller wait for a transaction to finish. Records
// expire with the bucket's TTL (nats.tx_retention).
//
// It stores and derives only: it must not deliver, map or dead-letter anything, and knows
// no HTTP.
package txlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/transform"
)

// Transaction statuses, as the API reports them.
const (
	TxAccepted           = "accepted"
	TxDelivered          = "delivered"
	TxPartiallyDelivered = "partially delivered"
	TxFailed             = "failed"
)

// Delivery outcomes of one batch at one target.
const (
	OutcomeDelivered    = "delivered"     // every value accepted
	OutcomePartial      = "partial"       // some values rejected, now dead letters
	OutcomeDeadLettered = "dead_lettered" // nothing accepted; the batch is a dead letter
	OutcomeEmpty        = "empty"         // mapping left nothing to send
	OutcomeRetrying     = "retrying"      // a transient failure; the batch waits for redelivery
)

// TxRecord is what ingest writes when it accepts a payload.
type TxRecord struct {
	ID       string    `json:"id"`
	Source   string    `json:"source"`
	Received time.Time `json:"received"`
	Format   string    `json:"format"`
	Values   int       `json:"values"`
	Batches  int       `json:"batches"`
	Targets  []string  `json:"targets"`
	// OpenHIMTransaction is the X-OpenHIM-TransactionID the request arrived with.
	OpenHIMTransaction string `json:"openhimTransaction,omitempty"`
	// Exchange is the run summary of a scheduled exchange's transaction (mediator/exchange
	// writes and reads it), kept as it was written.
	Exchange json.RawMessage `json:"exchange,omitempty"`
	// Refused counts the payload's values refused at ingest, one by one (per-value
	// validation); Values counts only those kept for delivery.
	Refused int `json:"refused,omitempty"`
	// Conflicts are the refused values' conflicts as DHIS2 reports them (merged by error
	// code and objects, their indexes pointing into the payload), at most
	// MaxConflictsKept entries.
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// Notes are the payload's own conflicts that refused no value (a completeDate that
	// cannot be registered, as DHIS2 reports it).
	Notes []Conflict `json:"notes,omitempty"`
	// SentBy is who sent the payload: the source's Basic user ("user chw-sender"), which of
	// its tokens ("token 2", never the token), or "public"; Client and UserAgent are the
	// client's address and User-Agent; RequestID the request's X-Request-ID.
	SentBy    string `json:"sentBy,omitempty"`
	Client    string `json:"client,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// ImportCount mirrors DHIS2's importCount.
type ImportCount struct {
	Imported int `json:"imported"`
	Updated  int `json:"updated"`
	Ignored  int `json:"ignored"`
	Deleted  int `json:"deleted"`
}

// Add adds o to c.
func (c *ImportCount) Add(o ImportCount) {
	c.Imported += o.Imported
	c.Updated += o.Updated
	c.Ignored += o.Ignored
	c.Deleted += o.Deleted
}

// Conflict is one problem a target (or Tally's own validation, or mapping) reported,
// pointing at values by their payload index. The fields are DHIS2's, so that a conflict
// can be relayed as DHIS2 wrote it.
type Conflict struct {
	ErrorCode string            `json:"errorCode,omitempty"`
	Object    string            `json:"object,omitempty"`
	Objects   map[string]string `json:"objects,omitempty"`
	Property  string            `json:"property,omitempty"`
	Message   string            `json:"message"`
	Indexes   []int             `json:"indexes,omitempty"`
}

// ConflictFrom is a DHIS2 import conflict as the transaction log keeps it.
func ConflictFrom(c transform.ImportConflict) Conflict {
	return Conflict{ErrorCode: c.ErrorCode, Object: c.Object, Objects: c.Objects, Property: c.Property,
		Message: c.Value, Indexes: c.Indexes}
}

// DHIS2 is the conflict in DHIS2's own shape.
func (c Conflict) DHIS2() transform.ImportConflict {
	return transform.ImportConflict{ErrorCode: c.ErrorCode, Object: c.Object, Objects: c.Objects, Property: c.Property,
		Value: c.Message, Indexes: c.Indexes}
}

// MaxIndexesKept bounds the rejected indexes a target summary lists.
const MaxIndexesKept = 10000

// MaxConflictsKept bounds a record: a target that rejects a thousand values says why in far
// fewer distinct conflicts, and the dead letter holds the values themselves.
const MaxConflictsKept = 50

// MaxNoted bounds the warnings and duplicates a delivery record (and a target summary)
// keeps of what mapping reported.
const MaxNoted = 50

// ConflictsOf is a list of DHIS2 conflicts as the transaction log keeps it (at most
// MaxConflictsKept).
func ConflictsOf(cs []transform.ImportConflict) []Conflict {
	out := make([]Conflict, 0, min(len(cs), MaxConflictsKept))
	for _, c := range cs[:min(len(cs), MaxConflictsKept)] {
		out = append(out, ConflictFrom(c))
	}
	return out
}

// DeliveryRecord is the outcome of one batch at one target.
type DeliveryRecord struct {
	Target string `json:"target"`
	Seq    int    `json:"seq"`
	// Replay is 0 for the batch's first delivery and n for its n-th replay from the
	// dead-letter queue; each has its own record, so a replay keeps the history.
	Replay  int    `json:"replay,omitempty"`
	Outcome string `json:"outcome"`
	// Stage is "mapping" while the batch waits for mapping (its target's metadata could
	// not be read) rather than for delivery.
	Stage    string      `json:"stage,omitempty"`
	Values   int         `json:"values"`
	Unmapped int         `json:"unmapped,omitempty"`
	Counts   ImportCount `json:"importCount"`
	Rejected int         `json:"rejected,omitempty"`
	// RejectedIndexes are the payload indexes of the rejected values.
	RejectedIndexes []int      `json:"rejectedIndexes,omitempty"`
	Conflicts       []Conflict `json:"conflicts,omitempty"`
	// Attempts counts the tries that reached the target with its circuit closed (see
	// mediator/delivery); retry.max_attempts bounds it.
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError,omitempty"`
	// FirstError is when the first failed attempt happened, kept across retries.
	FirstError time.Time `json:"firstError,omitzero"`
	Time       time.Time `json:"time"`
	// Completions are the data sets the batch completes, registered once the
	// transaction's batches are all done (mediator/delivery).
	Completions []Completion `json:"completions,omitempty"`
	// Refused counts the values mapping refused (dead letters, reason mapping; they are
	// in Rejected too); Warnings and Duplicates are what mapping reported about the
	// delivered values (mediator/pipeline).
	Refused    int                   `json:"refused,omitempty"`
	Warnings   []transform.Warning   `json:"warnings,omitempty"`
	Duplicates []transform.Duplicate `json:"duplicates,omitempty"`
	// Locked counts the rejected values refused for a locked or closed period (dead
	// letters of reason locked).
	Locked int `json:"locked,omitempty"`
}

// TargetSummary adds up a transaction's deliveries to one target.
type TargetSummary struct {
	Target   string      `json:"target"`
	Batches  int         `json:"batches"`
	Done     int         `json:"done"`
	Values   int         `json:"values"`
	Unmapped int         `json:"unmapped"`
	Counts   ImportCount `json:"importCount"`
	Rejected int         `json:"rejected"`
	// RejectedIndexes are the payload indexes of the values still rejected, at most
	// MaxIndexesKept.
	RejectedIndexes []int      `json:"rejectedIndexes,omitempty"`
	Attempts        int        `json:"attempts"`
	Conflicts       []Conflict `json:"conflicts,omitempty"`
	LastError       string     `json:"lastError,omitempty"`
	// Completeness is the outcome of registering the transaction's complete data sets.
	Completeness *CompletionRecord `json:"completeness,omitempty"`
	// Locked counts the values still refused for a locked or closed period.
	Locked int `json:"locked,omitempty"`
	// Refused counts the values mapping refused; Warnings and Duplicates list what it
	// reported (at most MaxNoted each).
	Refused    int                   `json:"refused,omitempty"`
	Warnings   []transform.Warning   `json:"warnings,omitempty"`
	Duplicates []transform.Duplicate `json:"duplicates,omitempty"`
}

// TxView is a transaction as the API shows it: the record, its status, per-target sums and
// what was done with its dead letters.
type TxView struct {
	TxRecord
	Status  string           `json:"status"`
	Targets []*TargetSummary `json:"targets"`
	Events  []*TxEvent       `json:"events,omitempty"`
	// Deliveries are the records of each batch at each target (one per replay), shown for
	// a single transaction only.
	Deliveries []*DeliveryRecord `json:"deliveries,omitempty"`
}

// Kinds of transaction events.
const (
	EventReplayed  = "replayed"
	EventDiscarded = "discarded"
	// EventRerun is an OpenHIM console rerun that replayed dead letters.
	EventRerun = "rerun"
)

// TxEvent is something an operator did to a transaction's dead letters.
type TxEvent struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	// Seq is the batch's position in the transaction; DLQSeq the dead letter's sequence.
	Seq    int    `json:"seq"`
	DLQSeq uint64 `json:"dlqSeq"`
	Values int    `json:"values"`
	// Reason is the dead letter's reason.
	Reason   string `json:"reason,omitempty"`
	Remapped bool   `json:"remapped,omitempty"`
	// Replay is the replay generation the event concerns.
	Replay int `json:"replay,omitempty"`
	// OpenHIMTransaction is the core transaction of an OpenHIM console rerun (EventRerun),
	// and DeadLetters how many dead letters it replayed.
	OpenHIMTransaction string `json:"openhimTransaction,omitempty"`
	DeadLetters        int    `json:"deadLetters,omitempty"`
	// By names who caused the event: the admin credential of a replay or discard (from the
	// request's context, see WithActor), empty for Tally's own doing.
	By string `json:"by,omitempty"`
}

type actorKey struct{}

// WithActor returns a context saying that what follows is done on behalf of name (an admin
// credential's name): events recorded under it carry it in By.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// Actor returns the name WithActor put in ctx, or "".
func Actor(ctx context.Context) string {
	name, _ := ctx.Value(actorKey{}).(string)
	return name
}

// TxLog reads and writes the tally_tx bucket. The ingest record lives at <id>; each delivery
// writes its own key <id>.d.<target>.<seq> (<id>.d.<target>.<seq>.r<n> for the n-th replay),
// so concurrent workers never contend for a key and the status is derived on read; events
// live at <id>.e.<dlq seq>.<kind>. Records expire nats.tx_retention after their last write.
type TxLog struct {
	kv    jetstream.KeyValue
	cache *recordCache // see Follow
}

// New is the transaction log kept in kv (the tally_tx bucket).
func New(kv jetstream.KeyValue) *TxLog { return &TxLog{kv: kv, cache: &recordCache{}} }

// ErrTxNotFound means no transaction has that id.
var ErrTxNotFound = errors.New("transaction not found")

// Create stores rec unless a record with its id exists; it returns the stored record and
// whether it was newly created.
func (l *TxLog) Create(ctx context.Context, rec *TxRecord) (*TxRecord, bool, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, false, err
	}
	if _, err := l.kv.Create(ctx, rec.ID, data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			old, gerr := l.Get(ctx, rec.ID)
			if gerr != nil {
				return nil, false, gerr
			}
			return old, false, nil
		}
		return nil, false, fmt.Errorf("recording transaction %s: %w", rec.ID, err)
	}
	l.cache.put(rec)
	return rec, true, nil
}

// Put writes rec whether or not a record with its id exists: an exchange run's record is
// written once its values are stored, and again with the run's outcome.
func (l *TxLog) Put(ctx context.Context, rec *TxRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := l.kv.Put(ctx, rec.ID, data); err != nil {
		return fmt.Errorf("recording transaction %s: %w", rec.ID, err)
	}
	l.cache.put(rec)
	return nil
}

// Get returns the ingest record of a transaction.
func (l *TxLog) Get(ctx context.Context, id string) (*TxRecord, error) {
	e, err := l.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrTxNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading transaction %s: %w", id, err)
	}
	var rec TxRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("decoding transaction %s: %w", id, err)
	}
	return &rec, nil
}

// DeliveryKey is where the record of batch seq of a transaction at a target is kept
// (replay 0 is the first delivery, n the n-th replay).
func DeliveryKey(txID, target string, seq, replay int) string {
	k := txID + ".d." + target + "." + strconv.Itoa(seq)
	if replay > 0 {
		k += ".r" + strconv.Itoa(replay)
	}
	return k
}

// PutDelivery records (or replaces) the outcome of one batch at one target.
func (l *TxLog) PutDelivery(ctx context.Context, txID string, d *DeliveryRecord) error {
	if len(d.Conflicts) > MaxConflictsKept {
		d.Conflicts = d.Conflicts[:MaxConflictsKept]
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := l.kv.Put(ctx, DeliveryKey(txID, d.Target, d.Seq, d.Replay), data); err != nil {
		return fmt.Errorf("recording delivery of %s batch %d to %s: %w", txID, d.Seq, d.Target, err)
	}
	return nil
}

// Delivery reads the record of one batch at one target.
func (l *TxLog) Delivery(ctx context.Context, txID, target string, seq, replay int) (*DeliveryRecord, error) {
	e, err := l.kv.Get(ctx, DeliveryKey(txID, target, seq, replay))
	if err != nil {
		return nil, err
	}
	var d DeliveryRecord
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Deliveries returns the delivery records of a transaction.
func (l *TxLog) Deliveries(ctx context.Context, txID string) ([]*DeliveryRecord, error) {
	ds, _, err := l.outcomes(ctx, txID, txID+".d.>")
	return ds, err
}

// outcomes returns the delivery records and the completion records (by target) under a
// transaction's keys that match pattern.
func (l *TxLog) outcomes(ctx context.Context, txID, pattern string) ([]*DeliveryRecord, map[string]*CompletionRecord, error) {
	var out []*DeliveryRecord
	comps := map[string]*CompletionRecord{}
	err := l.each(ctx, pattern, func(key string, value []byte) error {
		return decodeOutcome(key, value, &out, comps)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing deliveries of %s: %w", txID, err)
	}
	return out, comps, nil
}

// decodeOutcome reads a key under <tx>.d.: a completion record or a delivery record.
func decodeOutcome(key string, value []byte, ds *[]*DeliveryRecord, comps map[string]*CompletionRecord) error {
	if strings.HasSuffix(key, completionSuffix) {
		var c CompletionRecord
		if err := json.Unmarshal(value, &c); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		comps[c.Target] = &c
		return nil
	}
	var d DeliveryRecord
	if err := json.Unmarshal(value, &d); err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	*ds = append(*ds, &d)
	return nil
}

// TargetDeliveries returns a transaction's delivery records at one target and its
// completion record there (nil when none).
func (l *TxLog) TargetDeliveries(ctx context.Context, txID, target string) ([]*DeliveryRecord, *CompletionRecord, error) {
	ds, comps, err := l.outcomes(ctx, txID, txID+".d."+target+".>")
	if err != nil {
		return nil, nil, err
	}
	return ds, comps[target], nil
}

// PutEvent records an operator's action on one of the transaction's dead letters.
func (l *TxLog) PutEvent(ctx context.Context, txID string, e *TxEvent) error {
	if !ValidTxID(txID) {
		return fmt.Errorf("recording %s event: bad transaction id %q", e.Kind, txID)
	}
	if e.By == "" {
		e.By = Actor(ctx)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	key := txID + ".e." + strconv.FormatUint(e.DLQSeq, 10) + "." + e.Kind
	if _, err := l.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("recording %s event of %s: %w", e.Kind, txID, err)
	}
	return nil
}

// Events returns what was done with a transaction's dead letters, oldest first.
func (l *TxLog) Events(ctx context.Context, txID string) ([]*TxEvent, error) {
	var out []*TxEvent
	err := l.each(ctx, txID+".e.>", func(key string, value []byte) error {
		var e TxEvent
		if err := json.Unmarshal(value, &e); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		out = append(out, &e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing events of %s: %w", txID, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// each calls fn with every current entry whose key matches pattern.
func (l *TxLog) each(ctx context.Context, pattern string, fn func(key string, value []byte) error) error {
	w, err := l.kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok || e == nil { // nil: the initial values are done
				return nil
			}
			if err := fn(e.Key(), e.Value()); err != nil {
				return err
			}
		}
	}
}

// View returns a transaction with its derived status.
func (l *TxLog) View(ctx context.Context, id string) (*TxView, error) {
	rec, err := l.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ds, comps, err := l.outcomes(ctx, id, id+".d.>")
	if err != nil {
		return nil, err
	}
	v := summarize(rec, ds, comps)
	if v.Events, err = l.Events(ctx, id); err != nil {
		return nil, err
	}
	sort.Slice(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		return a.Replay < b.Replay
	})
	v.Deliveries = ds
	return v, nil
}

// summarize derives a transaction's status and per-target sums from its delivery records.
// A batch that was replayed has one record per delivery; import counts and attempts add up
// over all of them, while what is still rejected, the conflicts and the last error come
// from the latest.
func summarize(rec *TxRecord, ds []*DeliveryRecord, comps map[string]*CompletionRecord) *TxView {
	v := &TxView{TxRecord: *rec}
	byTarget := map[string]*TargetSummary{}
	for _, t := range rec.Targets {
		s := &TargetSummary{Target: t, Batches: rec.Batches}
		byTarget[t] = s
		v.Targets = append(v.Targets, s)
	}
	o := &outcomes{completes: map[string]bool{}}
	for _, chain := range batchChains(ds) {
		if s := byTarget[chain[0].Target]; s != nil {
			o.add(s, chain)
		}
	}
	v.Status = o.status(rec, v.Targets, comps)
	return v
}

// batchChains groups delivery records by batch and target, in the order of target and
// batch, each group in the order of its replays.
func batchChains(ds []*DeliveryRecord) [][]*DeliveryRecord {
	type pair struct {
		target string
		seq    int
	}
	chains := map[pair][]*DeliveryRecord{}
	var order []pair
	for _, d := range ds {
		k := pair{d.Target, d.Seq}
		if _, ok := chains[k]; !ok {
			order = append(order, k)
		}
		chains[k] = append(chains[k], d)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].target != order[j].target {
			return order[i].target < order[j].target
		}
		return order[i].seq < order[j].seq
	})
	out := make([][]*DeliveryRecord, len(order))
	for i, k := range order {
		chain := chains[k]
		sort.Slice(chain, func(i, j int) bool { return chain[i].Replay < chain[j].Replay })
		out[i] = chain
	}
	return out
}

// outcomes counts the final outcomes of a transaction's batches.
type outcomes struct {
	failed, partial int
	completes       map[string]bool // targets with data sets to register
}

// add adds the deliveries of one batch to its target's summary: the first delivery says
// what was sent, every delivery's counts and attempts add up, and the latest says what is
// still rejected, unless the batch still waits for a retry.
func (o *outcomes) add(s *TargetSummary, chain []*DeliveryRecord) {
	base, last := chain[0], chain[len(chain)-1]
	s.Values += base.Values
	s.Unmapped += base.Unmapped
	s.Refused += base.Refused
	s.Warnings = append(s.Warnings, base.Warnings[:min(len(base.Warnings), max(0, MaxNoted-len(s.Warnings)))]...)
	s.Duplicates = append(s.Duplicates, base.Duplicates[:min(len(base.Duplicates), max(0, MaxNoted-len(s.Duplicates)))]...)
	someDelivered := false
	for _, d := range chain {
		s.Counts.Add(d.Counts)
		s.Attempts += d.Attempts
		if d.Outcome == OutcomePartial || d.Outcome == OutcomeDelivered {
			someDelivered = true
		}
	}
	if last.LastError != "" {
		s.LastError = last.LastError
	}
	if last.Outcome == OutcomeRetrying {
		return
	}
	s.Done++
	s.Rejected += last.Rejected
	s.Locked += last.Locked
	s.RejectedIndexes = append(s.RejectedIndexes, last.RejectedIndexes[:min(len(last.RejectedIndexes), MaxIndexesKept-len(s.RejectedIndexes))]...)
	if room := MaxConflictsKept - len(s.Conflicts); room > 0 {
		s.Conflicts = append(s.Conflicts, last.Conflicts[:min(room, len(last.Conflicts))]...)
	}
	if len(last.Completions) > 0 {
		o.completes[s.Target] = true
	}
	switch {
	case last.Outcome == OutcomePartial, last.Outcome == OutcomeDeadLettered && someDelivered:
		o.partial++
	case last.Outcome == OutcomeDeadLettered:
		o.failed++
	}
}

// status is the transaction's status once every batch has been added: accepted while a
// target has batches (or a registration) to finish, failed when every batch failed, partly
// delivered when some did or a registration failed, else delivered.
func (o *outcomes) status(rec *TxRecord, targets []*TargetSummary, comps map[string]*CompletionRecord) string {
	done := true
	for _, s := range targets {
		s.Completeness = comps[s.Target]
		switch {
		case s.Done < s.Batches:
			done = false
		case o.completes[s.Target] && s.Completeness == nil:
			done = false // its values are done; the registration is not yet
		case s.Completeness != nil && s.Completeness.Error != "":
			o.partial++
		}
	}
	total := rec.Batches * len(rec.Targets)
	switch {
	case !done || total == 0 && len(rec.Targets) > 0:
		return TxAccepted
	case o.failed == total:
		return TxFailed
	case o.failed > 0 || o.partial > 0:
		return TxPartiallyDelivered
	default:
		return TxDelivered
	}
}

// List returns the most recent transactions, newest first, up to limit, optionally only
// those of one source. While Follow runs, the records come from its copy, which leaves out
// their conflicts, notes and exchange summary: read those with Get or View.
func (l *TxLog) List(ctx context.Context, source string, limit int) ([]*TxRecord, error) {
	return l.listWhere(ctx, func(r *TxRecord) bool { return source == "" || r.Source == source }, limit)
}

// listWhere returns up to limit (0: all) ingest records that keep accepts, newest first. It
// reads the followed copy when it can answer in full (it holds every record, or limit of the
// newest it holds are kept), and the whole bucket otherwise.
func (l *TxLog) listWhere(ctx context.Context, keep func(*TxRecord) bool, limit int) ([]*TxRecord, error) {
	if recs, complete, ok := l.cache.list(time.Now()); ok {
		out := make([]*TxRecord, 0, min(len(recs), max(limit, 0)))
		for _, r := range recs {
			if limit > 0 && len(out) == limit {
				break
			}
			if keep(r) {
				out = append(out, r)
			}
		}
		if complete || (limit > 0 && len(out) == limit) {
			return out, nil
		}
	}
	var out []*TxRecord
	err := l.each(ctx, "*", func(_ string, value []byte) error {
		var rec TxRecord
		if json.Unmarshal(value, &rec) == nil && keep(&rec) {
			out = append(out, &rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing transactions: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Received.After(out[j].Received) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// TxFilter selects transactions; zero fields match everything.
type TxFilter struct {
	Source string
	// Status is one of the Tx* statuses.
	Status string
	// Since and Until bound when the payload was received.
	Since, Until time.Time
	Limit        int
	// Target keeps the transactions meant for that target; Offset skips that many matches
	// first (a page of a list).
	Target string
	Offset int
	// IDs, when not nil, keeps only these transactions (a content search through the
	// value index).
	IDs map[string]bool
}

func (f TxFilter) matchRecord(r *TxRecord) bool {
	return (f.Source == "" || r.Source == f.Source) &&
		(f.Target == "" || slices.Contains(r.Targets, f.Target)) &&
		(f.IDs == nil || f.IDs[r.ID]) &&
		(f.Since.IsZero() || !r.Received.Before(f.Since)) &&
		(f.Until.IsZero() || r.Received.Before(f.Until))
}

// Search returns the transactions matching f, newest first, with their status. Without a
// status filter it reads the ingest records and then only the page it returns; a status
// filter has to derive every candidate's status, which it does in one pass over the bucket.
func (l *TxLog) Search(ctx context.Context, f TxFilter) ([]*TxView, error) {
	if f.Status == "" {
		return l.searchRecords(ctx, f)
	}
	b, err := l.readAll(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("searching transactions: %w", err)
	}
	var out []*TxView
	for id, r := range b.recs {
		v := summarize(r, b.deliveries[id], b.comps[id])
		if v.Status != f.Status {
			continue
		}
		v.Events = b.events[id]
		sort.SliceStable(v.Events, func(i, j int) bool { return v.Events[i].Time.Before(v.Events[j].Time) })
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Received.After(out[j].Received) })
	out = out[min(max(f.Offset, 0), len(out)):]
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// searchRecords is Search without a status filter: the matching records, newest first,
// and only the page's views.
func (l *TxLog) searchRecords(ctx context.Context, f TxFilter) ([]*TxView, error) {
	skip := max(f.Offset, 0)
	need := 0
	if f.Limit > 0 {
		need = skip + f.Limit
	}
	recs, err := l.listWhere(ctx, f.matchRecord, need)
	if err != nil {
		return nil, err
	}
	page := recs[min(skip, len(recs)):]
	out := make([]*TxView, 0, len(page))
	for _, r := range page {
		v, err := l.View(ctx, r.ID)
		if errors.Is(err, ErrTxNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, err
		}
		v.Deliveries = nil
		out = append(out, v)
	}
	return out, nil
}

// bucket is everything the bucket holds, by transaction.
type bucket struct {
	recs       map[string]*TxRecord
	deliveries map[string][]*DeliveryRecord
	comps      map[string]map[string]*CompletionRecord
	events     map[string][]*TxEvent
}

// readAll reads the bucket in one pass: the records f matches, and every transaction's
// deliveries, completions and events.
func (l *TxLog) readAll(ctx context.Context, f TxFilter) (*bucket, error) {
	b := &bucket{recs: map[string]*TxRecord{}, deliveries: map[string][]*DeliveryRecord{},
		comps: map[string]map[string]*CompletionRecord{}, events: map[string][]*TxEvent{}}
	err := l.each(ctx, ">", func(key string, value []byte) error {
		id, rest, sub := strings.Cut(key, ".")
		switch {
		case id == originPrefix: // the value index (origins.go)
		case !sub:
			var r TxRecord
			if json.Unmarshal(value, &r) == nil && f.matchRecord(&r) {
				b.recs[id] = &r
			}
		case strings.HasPrefix(rest, "d."):
			if b.comps[id] == nil {
				b.comps[id] = map[string]*CompletionRecord{}
			}
			ds := b.deliveries[id]
			if decodeOutcome(key, value, &ds, b.comps[id]) == nil {
				b.deliveries[id] = ds
			}
		case strings.HasPrefix(rest, "e."):
			var e TxEvent
			if json.Unmarshal(value, &e) == nil {
				b.events[id] = append(b.events[id], &e)
			}
		}
		return nil
	})
	return b, err
}

// ValidTxID guards keys built from request paths.
func ValidTxID(id string) bool {
	return id != "" && len(id) <= 80 && !strings.ContainsAny(id, ".*> \t")
}
