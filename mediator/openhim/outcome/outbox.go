package outcome

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// Recording outcomes in the OpenHIM core, durably, once per core transaction.
//
// The core writes Tally's envelope into its transaction when it finishes routing, after a
// delay and replacing whatever was there, and its PUT /transactions/:id accepts anything
// (spec openhim.md §8.3, §8.5): an update sent once and trusted on a 200 is lost whenever it
// arrives first, and one sent while the core is down is never sent. So:
//
//  1. Links. Answering a request that came through the core, Tally stores which core
//     transaction asked about which Tally transaction, in the transaction log's key
//     <tx>.o (a list, changed by compare-and-set; it expires with the transaction). A
//     link is a request, a duplicate (the payload was already there) or a rerun (the
//     console replayed a failed transaction and Tally replayed its dead letters; the link
//     names the delivery records it waits for).
//  2. Trigger. A durable consumer (tally-openhim-trigger) follows the writes of delivery
//     records and links in the tally_tx bucket's own stream. On each, when the transaction
//     is final and a link's awaited deliveries are done, the link's outcome is put on the
//     outbox, TALLY_OPENHIM (tally.openhim.outcome), with Nats-Msg-Id
//     "openhim:<core transaction>" (a repeat from another replica or after a restart is
//     dropped by JetStream), and the link is marked queued (which also covers repeats
//     after the duplicate window). The outcome is fixed then: a later replay of the Tally
//     transaction does not rewrite the core's record of an earlier request.
//  3. Reporter. A durable consumer (tally-openhim-outcomes) hands each outcome to
//     openhim.Client.ReportOutcome, which waits for the core's own write, writes what is
//     missing and reads the record back. The message is acknowledged only when the record
//     shows the whole outcome after the core's write; otherwise it comes back with backoff
//     from openhim.report_interval up to outcomeMaxDelay, for outcomeMaxAge, so a core that
//     is down or slow, or a Tally restart, delays the record but does not lose it.
//
// Both consumers handle messages through the consume chain (mediator/pipeline).

// Link kinds.
const (
	linkRequest   = "request"   // the request that created the Tally transaction
	linkDuplicate = "duplicate" // a request for a payload Tally already had; nothing new was sent
	linkRerun     = "rerun"     // a console rerun that replayed the transaction's dead letters
)

// openhimLink ties a core transaction to a Tally transaction.
type openhimLink struct {
	OpenHIMTx string `json:"openhimTransaction"`
	Kind      string `json:"kind"`
	// Parent is the core transaction a rerun replays (its parentID header).
	Parent string `json:"parent,omitempty"`
	// RequestID is the request's X-Request-ID, repeated in the outcome's orchestrations.
	RequestID string    `json:"requestId,omitempty"`
	Created   time.Time `json:"created"`
	// Replayed is how many dead letters a rerun replayed; Awaited the delivery records
	// their replays will write.
	Replayed int       `json:"replayed,omitempty"`
	Awaited  []awaited `json:"awaited,omitempty"`
	// Queued is set once the outcome is on the outbox.
	Queued bool `json:"queued,omitempty"`
}

// awaited is a delivery record a rerun waits for: the key's revision must pass Rev (what it
// was before the replay; 0 when it did not exist) with an outcome other than retrying.
// Revisions, unlike clocks, agree across replicas.
type awaited struct {
	Key string `json:"key"`
	Rev uint64 `json:"rev"`
}

// Outbox bounds.
const (
	// outcomeMaxAge is how long an outcome is retried before it is given up (logged and
	// counted as abandoned).
	outcomeMaxAge = 24 * time.Hour
	// outcomeMaxDelay caps the backoff between attempts to record an outcome.
	outcomeMaxDelay = 5 * time.Minute
	// settleGrace is how long the reporter waits for the core to store its own answer
	// before it accepts a confirmed record the core has not written (a core that restarted
	// during routing marks the transaction Failed and never writes the answer).
	settleGrace = 10 * time.Minute
	// maxLinkUpdates bounds compare-and-set retries on a transaction's links.
	maxLinkUpdates = 10
	// maxLinks bounds the core transactions linked to one Tally transaction.
	maxLinks = 100
	// outboxDLQ is the dead-letter "target" of messages the OpenHIM consumers could not
	// handle (a panic).
	outboxDLQ = "_openhim"
)

const (
	triggerConsumer = "tally-openhim-trigger"
	outcomeConsumer = "tally-openhim-outcomes"
	outcomeSubject  = stream.OpenHIMPrefix + "outcome"
)

func linksKey(txID string) string { return txID + ".o" }

// readLinks returns a transaction's links and the revision they were read at (0: none).
func (x *Reporter) readLinks(ctx context.Context, txID string) ([]*openhimLink, uint64, error) {
	e, err := x.kv.Get(ctx, linksKey(txID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading the OpenHIM links of %s: %w", txID, err)
	}
	var links []*openhimLink
	if err := json.Unmarshal(e.Value(), &links); err != nil {
		return nil, 0, fmt.Errorf("decoding the OpenHIM links of %s: %w", txID, err)
	}
	return links, e.Revision(), nil
}

// updateLinks applies change to a transaction's links by compare-and-set, retrying when
// another writer got there first; change returns false to leave them as they are.
func (x *Reporter) updateLinks(ctx context.Context, txID string, change func([]*openhimLink) ([]*openhimLink, bool)) error {
	for range maxLinkUpdates {
		links, rev, err := x.readLinks(ctx, txID)
		if err != nil {
			return err
		}
		links, changed := change(links)
		if !changed {
			return nil
		}
		data, err := json.Marshal(links)
		if err != nil {
			return fmt.Errorf("encoding the OpenHIM links of %s: %w", txID, err)
		}
		if rev == 0 {
			_, err = x.kv.Create(ctx, linksKey(txID), data)
		} else {
			_, err = x.kv.Update(ctx, linksKey(txID), data, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return fmt.Errorf("writing the OpenHIM links of %s: %w", txID, err)
		}
	}
	return fmt.Errorf("writing the OpenHIM links of %s: still contended after %d tries", txID, maxLinkUpdates)
}

// isWrongSequence reports a compare-and-set that lost to another writer.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// newLink describes the core transaction coreTx asking about Tally transaction txID.
func (x *Reporter) newLink(r *http.Request, coreTx, txID string) *openhimLink {
	ctx, cancel := pipeline.Bookkeeping(r.Context())
	defer cancel()
	l := &openhimLink{OpenHIMTx: coreTx, Kind: linkRequest, RequestID: strings.TrimSpace(r.Header.Get(headerRequestID)),
		Created: x.now().UTC()}
	if len(l.RequestID) > 200 {
		l.RequestID = l.RequestID[:200]
	}
	if rec, err := x.tx.Get(ctx, txID); err == nil && rec.OpenHIMTransaction != coreTx {
		// The payload was there before this request: a repeat, or a rerun from the console.
		l.Kind = linkDuplicate
		if parent, _, ok := openhim.Rerun(r); ok {
			l.Parent = parent
		}
	}
	return l
}

// addLink stores l among txID's links; a link for the same core transaction is kept as it is.
// Past maxLinks (a client repeating one payload through the core) the oldest link whose
// outcome is queued makes room; when none is, l is refused.
func (x *Reporter) addLink(ctx context.Context, txID string, l *openhimLink) error {
	full := false
	err := x.updateLinks(ctx, txID, func(links []*openhimLink) ([]*openhimLink, bool) {
		for _, old := range links {
			if old.OpenHIMTx == l.OpenHIMTx {
				return links, false
			}
		}
		if len(links) >= maxLinks {
			i := slices.IndexFunc(links, func(old *openhimLink) bool { return old.Queued })
			if full = i < 0; full {
				return links, false
			}
			links = slices.Delete(links, i, i+1)
		}
		return append(links, l), true
	})
	if err == nil && full {
		err = fmt.Errorf("%d core transactions wait for the outcome of %s already", maxLinks, txID)
	}
	return err
}

// outboxMsg is an outcome on its way to the core.
type outboxMsg struct {
	Tx             string                  `json:"tx"`
	OpenHIMTx      string                  `json:"openhimTransaction"`
	Status         openhim.Status          `json:"status"`
	Orchestrations []openhim.Orchestration `json:"orchestrations,omitempty"`
	Properties     map[string]any          `json:"properties,omitempty"`
}

func (m *outboxMsg) outcome() openhim.Outcome {
	return openhim.Outcome{Status: m.Status, Orchestrations: m.Orchestrations, Properties: m.Properties}
}

// queueOutcomes puts on the outbox the outcome of every link of txID that is due and not
// queued yet, and marks them queued.
func (x *Reporter) queueOutcomes(ctx context.Context, txID string) error {
	links, _, err := x.readLinks(ctx, txID)
	if err != nil || !anyUnqueued(links) {
		return err
	}
	var due []*openhimLink
	for _, l := range links {
		if l.Queued {
			continue
		}
		ok, err := x.linkDue(ctx, l)
		if err != nil {
			return err
		}
		if ok {
			due = append(due, l)
		}
	}
	if len(due) == 0 {
		return nil
	}
	// Read after the due checks, so that the view holds every record they saw.
	v, err := x.tx.View(ctx, txID)
	if errors.Is(err, txlog.ErrTxNotFound) {
		return nil // expired
	}
	if err != nil {
		return err
	}
	if v.Status == txlog.TxAccepted {
		return nil
	}
	queued := make([]string, 0, len(due))
	for _, l := range due {
		if err := x.publishOutcome(ctx, v, l); err != nil {
			return err
		}
		queued = append(queued, l.OpenHIMTx)
	}
	return x.updateLinks(ctx, txID, func(links []*openhimLink) ([]*openhimLink, bool) {
		changed := false
		for _, l := range links {
			if !l.Queued && slices.Contains(queued, l.OpenHIMTx) {
				l.Queued, changed = true, true
			}
		}
		return links, changed
	})
}

func anyUnqueued(links []*openhimLink) bool {
	for _, l := range links {
		if !l.Queued {
			return true
		}
	}
	return false
}

// linkDue reports whether every delivery a rerun awaits has been written since the replay
// with a final outcome.
func (x *Reporter) linkDue(ctx context.Context, l *openhimLink) (bool, error) {
	for _, a := range l.Awaited {
		e, err := x.kv.Get(ctx, a.Key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading delivery %s: %w", a.Key, err)
		}
		var d txlog.DeliveryRecord
		if e.Revision() <= a.Rev || json.Unmarshal(e.Value(), &d) != nil || d.Outcome == txlog.OutcomeRetrying {
			return false, nil
		}
	}
	return true, nil
}

func (x *Reporter) publishOutcome(ctx context.Context, v *txlog.TxView, l *openhimLink) error {
	out := x.openhimOutcome(v, l)
	data, err := json.Marshal(outboxMsg{Tx: v.ID, OpenHIMTx: l.OpenHIMTx, Status: out.Status,
		Orchestrations: out.Orchestrations, Properties: out.Properties})
	if err != nil {
		return fmt.Errorf("encoding the outcome of %s: %w", v.ID, err)
	}
	msg := stream.Msg{Subject: outcomeSubject, ID: "openhim:" + l.OpenHIMTx, Data: data,
		Header: nats.Header{pipeline.HeaderTx: []string{v.ID}}}
	if err := x.pub.Publish(ctx, msg); err != nil {
		return fmt.Errorf("queueing the outcome of %s for OpenHIM transaction %s: %w", v.ID, l.OpenHIMTx, err)
	}
	x.log.Debug("OpenHIM outcome queued", "tx", v.ID, "openhim_tx", l.OpenHIMTx, "status", out.Status, "kind", l.Kind)
	return nil
}

// Consumers are the trigger and the reporter, their messages going through chain.
func (x *Reporter) Consumers(chain *pipeline.Chain, ackWait time.Duration) []*pipeline.Consumer {
	trigStop, trigServerMax := pipeline.BackstopFor(100)
	// The reporter retries for outcomeMaxAge with backoff capped at outcomeMaxDelay: a few
	// hundred deliveries at most, well under the backstop.
	repStop, repServerMax := pipeline.BackstopFor(1000)
	return []*pipeline.Consumer{
		{
			Stream: stream.TxStream, Workers: 2, Log: x.log,
			Handle: chain.Wrap(pipeline.Stage{Name: "openhim-trigger", DLQTarget: outboxDLQ, AckWait: ackWait, MaxDeliver: trigStop}, x.triggerWork),
			Config: jetstream.ConsumerConfig{Durable: triggerConsumer, AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: ackWait, MaxAckPending: 256, MaxDeliver: trigServerMax,
				// Only writes from now on: the first start of a Tally with this consumer does
				// not report the outcomes of transactions an older Tally already reported.
				DeliverPolicy:  jetstream.DeliverNewPolicy,
				FilterSubjects: []string{stream.TxSubjectPrefix + "*.d.>", stream.TxSubjectPrefix + "*.o"}},
		},
		{
			Stream: stream.OpenHIMStream, Workers: 8, Log: x.log,
			Handle: chain.Wrap(pipeline.Stage{Name: "openhim-outcome", DLQTarget: outboxDLQ, AckWait: ackWait, MaxDeliver: repStop}, x.reportWork),
			Config: jetstream.ConsumerConfig{Durable: outcomeConsumer, AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: ackWait, MaxAckPending: pipeline.DeliverMaxAckPending, MaxDeliver: repServerMax,
				FilterSubject: stream.OpenHIMPrefix + ">"},
		},
	}
}

// triggerWork handles one write to the transaction log: a delivery record or a link.
func (x *Reporter) triggerWork(ctx context.Context, msg jetstream.Msg, _ pipeline.Permit) error {
	if op := msg.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil
	}
	key := strings.TrimPrefix(msg.Subject(), stream.TxSubjectPrefix)
	txID, rest, _ := strings.Cut(key, ".")
	if strings.HasPrefix(rest, "d.") {
		var d txlog.DeliveryRecord
		if json.Unmarshal(msg.Data(), &d) == nil && d.Outcome == txlog.OutcomeRetrying {
			return nil // a retrying batch finishes nothing
		}
	}
	if err := x.queueOutcomes(ctx, txID); err != nil {
		return pipeline.RetryIn(pipeline.RetryDelay(pipeline.MsgAttempts(msg), 0), err)
	}
	return nil
}

// reportWork records one outcome in the core.
func (x *Reporter) reportWork(ctx context.Context, msg jetstream.Msg, _ pipeline.Permit) error {
	var m outboxMsg
	if err := json.Unmarshal(msg.Data(), &m); err != nil || m.OpenHIMTx == "" || m.Status == "" {
		if err == nil {
			err = errors.New("no OpenHIM transaction or status")
		}
		return pipeline.Poison(pipeline.ReasonUndecodable, fmt.Errorf("decoding outcome %s: %w", msg.Subject(), err))
	}
	var age time.Duration
	if md, err := msg.Metadata(); err == nil {
		age = x.now().Sub(md.Timestamp)
	}
	log := x.log.With("tx", m.Tx, "openhim_tx", m.OpenHIMTx, "status", m.Status)
	if age >= outcomeMaxAge {
		x.metrics.Outcomes.WithLabelValues("abandoned").Inc()
		log.Error("giving up recording the outcome in the OpenHIM core", "age", age.Round(time.Second))
		return nil
	}
	rec, err := x.client.ReportOutcome(ctx, m.OpenHIMTx, m.outcome())
	switch {
	case err == nil && (rec.Settled() || age >= settleGrace):
		x.metrics.Outcomes.WithLabelValues("confirmed").Inc()
		log.Info("outcome recorded in the OpenHIM core", "orchestrations", rec.OrchestrationNames())
		return nil
	case err == nil:
		err = errors.New("the core has not yet stored its own answer, which would replace the outcome")
	case errors.Is(err, openhim.ErrNotFound):
		x.metrics.Outcomes.WithLabelValues("abandoned").Inc()
		log.Error("the OpenHIM core has no such transaction; outcome dropped", "err", err)
		return nil
	case ctx.Err() != nil:
		return pipeline.RetryIn(0, err) // shutting down: back to the stream now, not an attempt
	}
	x.metrics.Outcomes.WithLabelValues("retried").Inc()
	delay := pipeline.Backoff(pipeline.MsgAttempts(msg), x.reportInterval, outcomeMaxDelay)
	log.Warn("outcome not yet confirmed by the OpenHIM core; will retry", "attempt", pipeline.MsgAttempts(msg),
		"retry_in", delay, "err", err)
	return pipeline.RetryIn(delay, err)
}

// Metrics are the reporter's collectors.
type Metrics struct {
	// Outcomes counts the attempts to record an outcome in the core, by result.
	Outcomes *prometheus.CounterVec
}

// NewMetrics builds tally_openhim_outcomes_total, its results touched, and registers it on
// reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "openhim", Name: "outcomes_total",
		Help: "Attempts to record a transaction's outcome in the OpenHIM core, by result (confirmed, retried, abandoned)."},
		[]string{"result"})
	reg.MustRegister(c)
	for _, r := range []string{"confirmed", "retried", "abandoned"} {
		c.WithLabelValues(r)
	}
	return &Metrics{Outcomes: c}
}

// DropLegacyClaims removes the openhim.<tx> keys an older Tally left in tally_state to claim
// an update; nothing reads them any more.
func (x *Reporter) DropLegacyClaims(ctx context.Context) {
	lister, err := x.state.ListKeysFiltered(ctx, "openhim.*")
	if err != nil {
		x.log.Warn("listing old OpenHIM claim keys", "err", err)
		return
	}
	defer func() { _ = lister.Stop() }()
	n := 0
	for key := range lister.Keys() {
		if err := x.state.Purge(ctx, key); err != nil {
			x.log.Warn("removing an old OpenHIM claim key", "key", key, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		x.log.Info("removed old OpenHIM claim keys", "keys", n)
	}
}
