package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
}

// ImportCount mirrors DHIS2's importCount.
type ImportCount struct {
	Imported int `json:"imported"`
	Updated  int `json:"updated"`
	Ignored  int `json:"ignored"`
	Deleted  int `json:"deleted"`
}

func (c *ImportCount) add(o ImportCount) {
	c.Imported += o.Imported
	c.Updated += o.Updated
	c.Ignored += o.Ignored
	c.Deleted += o.Deleted
}

// Conflict is one problem a target reported, pointing at values by their payload index.
type Conflict struct {
	ErrorCode string `json:"errorCode,omitempty"`
	Object    string `json:"object,omitempty"`
	Property  string `json:"property,omitempty"`
	Message   string `json:"message"`
	Indexes   []int  `json:"indexes,omitempty"`
}

// maxConflictsKept bounds a record: a target that rejects a thousand values says why in far
// fewer distinct conflicts, and the dead letter holds the values themselves.
const maxConflictsKept = 50

// DeliveryRecord is the outcome of one batch at one target.
type DeliveryRecord struct {
	Target    string      `json:"target"`
	Seq       int         `json:"seq"`
	Outcome   string      `json:"outcome"`
	Values    int         `json:"values"`
	Unmapped  int         `json:"unmapped,omitempty"`
	Counts    ImportCount `json:"importCount"`
	Rejected  int         `json:"rejected,omitempty"`
	Conflicts []Conflict  `json:"conflicts,omitempty"`
	Attempts  int         `json:"attempts"`
	LastError string      `json:"lastError,omitempty"`
	// FirstError is when the first failed attempt happened, kept across retries.
	FirstError time.Time `json:"firstError,omitzero"`
	Time       time.Time `json:"time"`
}

// TargetSummary adds up a transaction's deliveries to one target.
type TargetSummary struct {
	Target    string      `json:"target"`
	Batches   int         `json:"batches"`
	Done      int         `json:"done"`
	Values    int         `json:"values"`
	Unmapped  int         `json:"unmapped"`
	Counts    ImportCount `json:"importCount"`
	Rejected  int         `json:"rejected"`
	Attempts  int         `json:"attempts"`
	Conflicts []Conflict  `json:"conflicts,omitempty"`
	LastError string      `json:"lastError,omitempty"`
}

// TxView is a transaction as the API shows it: the record, its status and per-target sums.
type TxView struct {
	TxRecord
	Status  string           `json:"status"`
	Targets []*TargetSummary `json:"targets"`
}

// TxLog reads and writes the tally_tx bucket. The ingest record lives at <id>; each delivery
// writes its own key <id>.d.<target>.<seq>, so concurrent workers never contend for a key and
// the status is derived on read.
type TxLog struct {
	kv jetstream.KeyValue
}

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
	return rec, true, nil
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

func deliveryKey(txID, target string, seq int) string {
	return txID + ".d." + target + "." + strconv.Itoa(seq)
}

// PutDelivery records (or replaces) the outcome of one batch at one target.
func (l *TxLog) PutDelivery(ctx context.Context, txID string, d *DeliveryRecord) error {
	if len(d.Conflicts) > maxConflictsKept {
		d.Conflicts = d.Conflicts[:maxConflictsKept]
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := l.kv.Put(ctx, deliveryKey(txID, d.Target, d.Seq), data); err != nil {
		return fmt.Errorf("recording delivery of %s batch %d to %s: %w", txID, d.Seq, d.Target, err)
	}
	return nil
}

func (l *TxLog) delivery(ctx context.Context, txID, target string, seq int) (*DeliveryRecord, error) {
	e, err := l.kv.Get(ctx, deliveryKey(txID, target, seq))
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
	w, err := l.kv.Watch(ctx, txID+".d.>", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("listing deliveries of %s: %w", txID, err)
	}
	defer func() { _ = w.Stop() }()
	var out []*DeliveryRecord
	for e := range w.Updates() {
		if e == nil { // initial values done
			break
		}
		var d DeliveryRecord
		if err := json.Unmarshal(e.Value(), &d); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", e.Key(), err)
		}
		out = append(out, &d)
	}
	return out, nil
}

// View returns a transaction with its derived status.
func (l *TxLog) View(ctx context.Context, id string) (*TxView, error) {
	rec, err := l.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ds, err := l.Deliveries(ctx, id)
	if err != nil {
		return nil, err
	}
	return summarize(rec, ds), nil
}

func summarize(rec *TxRecord, ds []*DeliveryRecord) *TxView {
	v := &TxView{TxRecord: *rec}
	byTarget := map[string]*TargetSummary{}
	for _, t := range rec.Targets {
		s := &TargetSummary{Target: t, Batches: rec.Batches}
		byTarget[t] = s
		v.Targets = append(v.Targets, s)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Seq < ds[j].Seq })
	failed, partial := 0, 0
	for _, d := range ds {
		s := byTarget[d.Target]
		if s == nil {
			continue
		}
		if d.Outcome != OutcomeRetrying {
			s.Done++
		}
		s.Values += d.Values
		s.Unmapped += d.Unmapped
		s.Counts.add(d.Counts)
		s.Rejected += d.Rejected
		s.Attempts += d.Attempts
		if d.LastError != "" {
			s.LastError = d.LastError
		}
		if room := maxConflictsKept - len(s.Conflicts); room > 0 {
			s.Conflicts = append(s.Conflicts, d.Conflicts[:min(room, len(d.Conflicts))]...)
		}
		switch d.Outcome {
		case OutcomeDeadLettered:
			failed++
		case OutcomePartial:
			partial++
		}
	}
	done := true
	for _, s := range v.Targets {
		if s.Done < s.Batches {
			done = false
		}
	}
	total := rec.Batches * len(rec.Targets)
	switch {
	case !done || total == 0 && len(rec.Targets) > 0:
		v.Status = TxAccepted
	case failed == total:
		v.Status = TxFailed
	case failed > 0 || partial > 0:
		v.Status = TxPartiallyDelivered
	default:
		v.Status = TxDelivered
	}
	return v
}

// List returns the most recent transactions, newest first, up to limit, optionally only
// those of one source.
func (l *TxLog) List(ctx context.Context, source string, limit int) ([]*TxRecord, error) {
	w, err := l.kv.Watch(ctx, "*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("listing transactions: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []*TxRecord
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var rec TxRecord
		if json.Unmarshal(e.Value(), &rec) != nil || (source != "" && rec.Source != source) {
			continue
		}
		out = append(out, &rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Received.After(out[j].Received) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// validTxID guards keys built from request paths.
func validTxID(id string) bool {
	return id != "" && len(id) <= 80 && !strings.ContainsAny(id, ".*> \t")
}
