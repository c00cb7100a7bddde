// Package dlq is the dead-letter queue: what a target did not take, kept in TALLY_DLQ with
// everything needed to understand and replay it. It stores the dead letters the stages
// give up on (it is their pipeline.DeadLetters), lists and shows them, replays them —
// mapping them again through the mapping in force when asked — and discards them, recording
// each in the transaction log.
//
// It must not deliver or map by itself: a replay goes back to TALLY_DELIVER (or where a raw
// message came from) for the delivery workers, and re-mapping goes through the Mapper it is
// given. It knows no HTTP.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// Dead letters live in TALLY_DLQ on tally.dlq.<target>, one message per batch (or part of
// one) that a target did not take. The body is JSON with the batches in the stream encoding;
// the headers repeat what listing and filtering need, so that a list reads headers only.
// Replay publishes the batch back to TALLY_DELIVER with a fresh message id and Replays + 1,
// carrying the dead letter's failures in the Tally-History header, then deletes the dead
// letter; discard deletes it. Both are recorded as events in the transaction log.

// Store is the dead-letter queue on a JetStream. It is safe for concurrent use.
type Store struct {
	js      jetstream.JetStream
	pub     *stream.Publisher
	tx      *txlog.TxLog
	cfg     *config.Config
	mapper  Mapper
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
}

// Mapper maps a batch for a target with the rules in force (mediator/pipeline's Mapping).
type Mapper interface {
	Map(ctx context.Context, in *transform.Batch, source *config.Source, target *config.Target) (*transform.Mapped, error)
}

// Config is what a Store works with.
type Config struct {
	JS        jetstream.JetStream
	Publisher *stream.Publisher
	TxLog     *txlog.TxLog
	// Config names the targets and sources a replay goes to and maps for.
	Config  *config.Config
	Mapper  Mapper
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// New returns the store c describes.
func New(c Config) *Store {
	return &Store{js: c.JS, pub: c.Publisher, tx: c.TxLog, cfg: c.Config, mapper: c.Mapper, metrics: c.Metrics, log: c.Log, now: c.Now}
}

var _ pipeline.DeadLetters = (*Store)(nil)

// Headers of TALLY_DLQ messages.
const (
	hdrDLSource   = "Tally-Source"
	hdrDLReason   = "Tally-Reason"
	hdrDLError    = "Tally-Error"
	hdrDLCodes    = "Tally-Codes"
	hdrDLValues   = pipeline.HeaderValues
	hdrDLAttempts = "Tally-Attempts"
	hdrDLFirst    = "Tally-First-Error"
	hdrDLLast     = "Tally-Last-Error"
	hdrDLReplays  = "Tally-Replays"
	hdrDLBatchSeq = "Tally-Batch-Seq"
	hdrDLID       = "Tally-Dead-Letter"
)

// Failure is one earlier time a batch became a dead letter, kept when it is replayed.
type Failure struct {
	Time       time.Time `json:"time"`
	FirstError time.Time `json:"firstError,omitzero"`
	Reason     string    `json:"reason"`
	Error      string    `json:"error"`
	Codes      []string  `json:"codes,omitempty"`
	Attempts   int       `json:"attempts"`
	// Replay is which delivery failed: 0 the original, n the n-th replay.
	Replay int `json:"replay"`
}

// DeadLetterSummary is what a dead-letter list shows of each entry.
type DeadLetterSummary struct {
	// Seq is the entry's sequence in TALLY_DLQ: what show, replay and discard take.
	Seq    uint64    `json:"seq"`
	Stored time.Time `json:"stored"`
	ID     string    `json:"id"`
	TxID   string    `json:"txId"`
	// BatchSeq is the batch's position in its transaction.
	BatchSeq int    `json:"batchSeq"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
	// Codes are the distinct error codes of the conflicts (E7612, ...).
	Codes      []string  `json:"codes,omitempty"`
	Values     int       `json:"values"`
	Attempts   int       `json:"attempts"`
	FirstError time.Time `json:"firstError"`
	LastError  time.Time `json:"lastError"`
	Replays    int       `json:"replays"`
}

// DeadLetter is a batch, or the part of one, that a target did not take, with everything
// needed to understand and replay it.
type DeadLetter struct {
	DeadLetterSummary
	Conflicts []txlog.Conflict `json:"conflicts,omitempty"`
	// History lists the earlier failures of a replayed batch, oldest first.
	History []Failure `json:"history,omitempty"`
	// Mapped says whether Batch holds the values as mapped for the target; false when
	// mapping itself refused the batch and Batch holds the values as received.
	Mapped bool             `json:"mapped"`
	Batch  *transform.Batch `json:"batch"`
	// SourceBatch holds the same values as received, when mapping changed them, so that
	// replay can re-map them with the current rules.
	SourceBatch *transform.Batch `json:"sourceBatch,omitempty"`
	// ImportOptions are the import parameters the client asked the target to apply
	// (url-encoded; mediator/ingest/flags.go), sent again on replay.
	ImportOptions string `json:"importOptions,omitempty"`
	// Completes is the number of batches of a transaction that completes a data set
	// (mediator/delivery/completeness.go), so that a replay still registers it.
	Completes int `json:"completes,omitempty"`
	// Raw is a message kept exactly as it was stored, because this build could not read or
	// handle it (reasons undecodable, panic, max_delivered, no_source). Replay puts it back
	// where it came from, for a build or configuration that can.
	Raw *RawMessage `json:"raw,omitempty"`
}

// RawMessage is a stream message as it was stored.
type RawMessage struct {
	Stream  string      `json:"stream"`
	Seq     uint64      `json:"seq"`
	Subject string      `json:"subject"`
	Header  nats.Header `json:"header,omitempty"`
	Data    []byte      `json:"data"`
}

// failure is the dead letter as an entry of a later dead letter's history.
func (dl *DeadLetter) failure() Failure {
	return Failure{Time: dl.LastError, FirstError: dl.FirstError, Reason: dl.Reason, Error: transform.ClipText(dl.Error, 500),
		Codes: dl.Codes, Attempts: dl.Attempts, Replay: dl.Replays}
}

// maxDeadLetterConflicts bounds a dead letter's conflicts (a target names at most one per
// value, and the values themselves are kept).
const maxDeadLetterConflicts = 2000

// Batch stores values a target will not take (see pipeline.DeadLetters).
func (s *Store) Batch(ctx context.Context, d *pipeline.DeadBatch) error {
	dl := s.newDeadLetter(d)
	dl.ID += d.IDSuffix
	return s.store(ctx, dl)
}

func (s *Store) newDeadLetter(d *pipeline.DeadBatch) *DeadLetter {
	b, source, target, reason, conflicts, first := d.Batch, d.Source, d.Target, d.Reason, d.Conflicts, d.FirstError
	now := s.now().UTC()
	if first.IsZero() {
		first = now
	}
	if len(conflicts) > maxDeadLetterConflicts {
		conflicts = conflicts[:maxDeadLetterConflicts]
	}
	dl := &DeadLetter{
		DeadLetterSummary: DeadLetterSummary{
			ID: b.ID + ":" + target + ":dl" + strconv.Itoa(b.Replays), TxID: b.TxID, BatchSeq: b.Seq, Source: b.Source,
			Target: target, Reason: reason, Error: d.Err.Error(), Codes: errorCodes(conflicts), Values: len(b.Values),
			Attempts: d.Attempts, FirstError: first, LastError: now, Replays: b.Replays,
		},
		Conflicts: conflicts, History: decodeHistory(d.Carried.History), Mapped: reason != pipeline.ReasonMapping, Batch: b,
		ImportOptions: d.Carried.Flags, Completes: d.Carried.Completes,
	}
	if source != nil && dl.Mapped {
		dl.SourceBatch = sourceOf(source, b)
	}
	return dl
}

// sourceOf returns the source values a mapped batch was made from, matched by their index
// in the original payload.
func sourceOf(source, mapped *transform.Batch) *transform.Batch {
	want := make(map[int]bool, len(mapped.Values))
	for i := range mapped.Values {
		want[mapped.Values[i].Index] = true
	}
	out := *source
	out.Values = nil
	for _, v := range source.Values {
		if want[v.Index] {
			out.Values = append(out.Values, v)
		}
	}
	return &out
}

func errorCodes(cs []txlog.Conflict) []string {
	var out []string
	for _, c := range cs {
		if c.ErrorCode != "" && !slices.Contains(out, c.ErrorCode) {
			out = append(out, c.ErrorCode)
		}
	}
	slices.Sort(out)
	return out
}

// wireDeadLetter is a dead letter as stored: the batches in the compact stream encoding so
// that the largest batch a source may send stays well under the NATS payload limit.
type wireDeadLetter struct {
	*DeadLetter
	Batch       []byte `json:"batch"`
	SourceBatch []byte `json:"sourceBatch,omitempty"`
}

func (s *Store) store(ctx context.Context, dl *DeadLetter) error {
	w := wireDeadLetter{DeadLetter: dl}
	if dl.Batch != nil {
		w.Batch = transform.EncodeBatch(dl.Batch)
	}
	if dl.SourceBatch != nil {
		w.SourceBatch = transform.EncodeBatch(dl.SourceBatch)
	}
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encoding dead letter: %w", err)
	}
	h := nats.Header{}
	h.Set(pipeline.HeaderTx, dl.TxID)
	h.Set(hdrDLID, dl.ID)
	h.Set(hdrDLSource, dl.Source)
	h.Set(hdrDLReason, dl.Reason)
	h.Set(hdrDLError, transform.ClipText(dl.Error, 300))
	h.Set(hdrDLCodes, strings.Join(dl.Codes, ","))
	h.Set(hdrDLValues, strconv.Itoa(dl.Values))
	h.Set(hdrDLAttempts, strconv.Itoa(dl.Attempts))
	h.Set(hdrDLFirst, dl.FirstError.Format(time.RFC3339Nano))
	h.Set(hdrDLLast, dl.LastError.Format(time.RFC3339Nano))
	h.Set(hdrDLReplays, strconv.Itoa(dl.Replays))
	h.Set(hdrDLBatchSeq, strconv.Itoa(dl.BatchSeq))
	if err := s.pub.Publish(ctx, stream.Msg{Subject: stream.DLQPrefix + dl.Target, ID: dl.ID, Data: data, Header: h}); err != nil {
		return fmt.Errorf("storing dead letter %s: %w", dl.ID, err)
	}
	s.metrics.Messages.WithLabelValues(dl.Target, dl.Reason).Inc()
	s.metrics.changed()
	s.log.Warn("batch dead-lettered", "tx", dl.TxID, "seq", dl.BatchSeq, "source", dl.Source, "target", dl.Target,
		"reason", dl.Reason, "values", dl.Values, "conflicts", len(dl.Conflicts),
		"first_conflicts", firstConflicts(dl.Conflicts, logConflicts), "err", transform.ClipText(dl.Error, 300))
	return nil
}

// logConflicts is how many conflicts a dead letter's log line quotes: enough to see the
// pattern (one data element, one org unit), few enough to keep the line readable.
const logConflicts = 3

// firstConflicts renders the first n conflicts as "E7612 object: message".
func firstConflicts(cs []txlog.Conflict, n int) []string {
	out := make([]string, 0, min(n, len(cs)))
	for _, c := range cs[:min(n, len(cs))] {
		line := strings.TrimSpace(c.ErrorCode + " " + c.Object)
		if line != "" {
			line += ": "
		}
		out = append(out, line+transform.ClipText(c.Message, 200))
	}
	return out
}

// Raw stores a message the stage could not handle exactly as it was stored, and records the
// batches it held as dead-lettered where it can tell which they are, so that the
// transaction's status says so (see pipeline.DeadLetters).
func (s *Store) Raw(ctx context.Context, st pipeline.Stage, msg jetstream.Msg, reason string, cause error) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("reading message metadata: %w", err)
	}
	now := s.now().UTC()
	raw := &RawMessage{Stream: md.Stream, Seq: md.Sequence.Stream, Subject: msg.Subject(),
		Header: msg.Headers(), Data: msg.Data()}
	dl := &DeadLetter{
		DeadLetterSummary: DeadLetterSummary{
			ID: "raw:" + md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10), Target: st.DLQTarget,
			TxID: msg.Headers().Get(pipeline.HeaderTx), Reason: reason, Error: cause.Error(),
			Attempts: int(md.NumDelivered), FirstError: md.Timestamp.UTC(), LastError: now,
		},
		Raw: raw,
	}
	if src, ok := strings.CutPrefix(msg.Subject(), stream.IngestPrefix); ok {
		dl.Source = src
	}
	// What the message held, when it can be read at all (a panic, a removed source).
	b, _, derr := pipeline.PeekBatch(msg)
	if derr == nil {
		dl.Values, dl.BatchSeq, dl.Source, dl.Replays = len(b.Values), b.Seq, b.Source, b.Replays
		if dl.TxID == "" {
			dl.TxID = b.TxID
		}
	}
	if err := s.store(ctx, dl); err != nil {
		return err
	}
	if derr == nil && txlog.ValidTxID(dl.TxID) {
		s.recordRaw(ctx, st, b, dl)
	}
	return nil
}

// recordRaw writes a dead_lettered delivery record for each target the batch was
// bound for: the delivery stage's own target, or every target of the transaction when the
// mapper could not handle it.
func (s *Store) recordRaw(ctx context.Context, st pipeline.Stage, b *transform.Batch, dl *DeadLetter) {
	targets := []string{st.DLQTarget}
	if st.DLQTarget == pipeline.IngestDLQ {
		rec, err := s.tx.Get(ctx, dl.TxID)
		if err != nil {
			return
		}
		targets = rec.Targets
	}
	for _, t := range targets {
		pipeline.RecordDelivery(ctx, s.log, s.tx, dl.TxID, &txlog.DeliveryRecord{Target: t, Seq: b.Seq, Replay: b.Replays, Outcome: txlog.OutcomeDeadLettered,
			Values: len(b.Values), Rejected: len(b.Values), LastError: dl.Reason + ": " + transform.ClipText(dl.Error, 300), Time: dl.LastError})
	}
}

// summaryFromHeaders reads a list entry from a dead letter's headers.
func summaryFromHeaders(h nats.Header, subject string, seq uint64, stored time.Time) *DeadLetterSummary {
	atoi := func(k string) int { n, _ := strconv.Atoi(h.Get(k)); return n }
	tm := func(k string) time.Time { t, _ := time.Parse(time.RFC3339Nano, h.Get(k)); return t }
	var codes []string
	if c := h.Get(hdrDLCodes); c != "" {
		codes = strings.Split(c, ",")
	}
	return &DeadLetterSummary{
		Seq: seq, Stored: stored.UTC(), ID: h.Get(hdrDLID), TxID: h.Get(pipeline.HeaderTx), BatchSeq: atoi(hdrDLBatchSeq),
		Source: h.Get(hdrDLSource), Target: strings.TrimPrefix(subject, stream.DLQPrefix), Reason: h.Get(hdrDLReason),
		Error: h.Get(hdrDLError), Codes: codes, Values: atoi(hdrDLValues), Attempts: atoi(hdrDLAttempts),
		FirstError: tm(hdrDLFirst), LastError: tm(hdrDLLast), Replays: atoi(hdrDLReplays),
	}
}

// DLQFilter selects dead letters; zero fields match everything.
type DLQFilter struct {
	Target string `json:"target,omitempty"`
	Source string `json:"source,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Code matches an error code of the conflicts (E7612).
	Code string `json:"code,omitempty"`
	TxID string `json:"tx,omitempty"`
	// Since and Until bound when the entry was dead-lettered.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

func (f DLQFilter) match(d *DeadLetterSummary) bool {
	switch {
	case f.Target != "" && d.Target != f.Target,
		f.Source != "" && d.Source != f.Source,
		f.Reason != "" && d.Reason != f.Reason,
		f.TxID != "" && d.TxID != f.TxID,
		f.Code != "" && !slices.ContainsFunc(d.Codes, func(c string) bool { return strings.EqualFold(c, f.Code) }),
		!f.Since.IsZero() && d.Stored.Before(f.Since),
		!f.Until.IsZero() && !d.Stored.Before(f.Until):
		return false
	}
	return true
}

// ErrDeadLetterNotFound means TALLY_DLQ holds nothing at that sequence.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// dlqScanIdle ends a scan that receives nothing for this long (the entries it expected were
// replayed or discarded meanwhile).
const dlqScanIdle = 2 * time.Second

// Scan calls fn for each dead letter after sequence after that matches f, oldest first,
// until fn returns false. It reads headers only.
func (s *Store) Scan(ctx context.Context, f DLQFilter, after uint64, fn func(*DeadLetterSummary) bool) error {
	st, err := s.js.Stream(ctx, stream.DLQStream)
	if err != nil {
		return fmt.Errorf("opening %s: %w", stream.DLQStream, err)
	}
	subject := stream.DLQPrefix + ">"
	if f.Target != "" {
		subject = stream.DLQPrefix + f.Target
	}
	iter, err := scanFrom(ctx, st, subject, after)
	if err != nil || iter == nil {
		return err
	}
	defer iter.Stop()
	idle := time.AfterFunc(dlqScanIdle, iter.Stop)
	defer idle.Stop()
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	for {
		msg, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil // closed: idle or done
		}
		idle.Reset(dlqScanIdle)
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("reading %s: %w", stream.DLQStream, err)
		}
		d := summaryFromHeaders(msg.Headers(), msg.Subject(), md.Sequence.Stream, md.Timestamp)
		if f.match(d) && !fn(d) {
			return nil
		}
		if md.NumPending == 0 {
			return nil
		}
	}
}

// scanFrom reads the headers of the entries on subject after sequence after; nil when there
// is none, so that an empty selection never waits for a message.
func scanFrom(ctx context.Context, st jetstream.Stream, subject string, after uint64) (jetstream.MessagesContext, error) {
	first, err := st.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream.DLQStream, err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: first.Sequence, HeadersOnly: true,
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream.DLQStream, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream.DLQStream, err)
	}
	return iter, nil
}

// List returns up to limit entries after sequence after that match f, the number
// of all matching entries after after, and the sequence to continue from (0 when none).
func (s *Store) List(ctx context.Context, f DLQFilter, after uint64, limit int) ([]*DeadLetterSummary, int, uint64, error) {
	var out []*DeadLetterSummary
	total := 0
	var next uint64
	err := s.Scan(ctx, f, after, func(d *DeadLetterSummary) bool {
		total++
		if limit <= 0 || len(out) < limit {
			out = append(out, d)
		} else if next == 0 {
			next = out[len(out)-1].Seq
		}
		return true
	})
	return out, total, next, err
}

// rawAt reads the message at a TALLY_DLQ sequence.
func (s *Store) rawAt(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	st, err := s.js.Stream(ctx, stream.DLQStream)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", stream.DLQStream, err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrDeadLetterNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading dead letter %d: %w", seq, err)
	}
	return raw, nil
}

// At reads the dead letter at a TALLY_DLQ sequence.
func (s *Store) At(ctx context.Context, seq uint64) (*DeadLetter, error) {
	raw, err := s.rawAt(ctx, seq)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(raw.Subject, stream.DLQPrefix) {
		return nil, ErrDeadLetterNotFound
	}
	dl := &DeadLetter{}
	w := wireDeadLetter{DeadLetter: dl}
	if err := json.Unmarshal(raw.Data, &w); err != nil {
		return nil, fmt.Errorf("decoding dead letter %d: %w", seq, err)
	}
	if len(w.Batch) > 0 {
		if dl.Batch, err = transform.DecodeBatch(w.Batch); err != nil {
			return nil, fmt.Errorf("decoding dead letter %d: %w", seq, err)
		}
	}
	if len(w.SourceBatch) > 0 {
		if dl.SourceBatch, err = transform.DecodeBatch(w.SourceBatch); err != nil {
			return nil, fmt.Errorf("decoding dead letter %d: %w", seq, err)
		}
	}
	dl.Seq, dl.Stored = seq, raw.Time.UTC()
	dl.Target = strings.TrimPrefix(raw.Subject, stream.DLQPrefix)
	return dl, nil
}

// Find returns the sequence of the dead letter with an id.
func (s *Store) Find(ctx context.Context, id string) (uint64, error) {
	var seq uint64
	err := s.Scan(ctx, DLQFilter{}, 0, func(d *DeadLetterSummary) bool {
		if d.ID == id {
			seq = d.Seq
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if seq == 0 {
		return 0, ErrDeadLetterNotFound
	}
	return seq, nil
}

// ReplayResult is what became of one dead letter asked to be replayed or discarded.
type ReplayResult struct {
	Seq    uint64 `json:"seq"`
	TxID   string `json:"txId,omitempty"`
	Target string `json:"target,omitempty"`
	Values int    `json:"values"`
	// Status is replayed, discarded or failed.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Replay sends a dead letter back to its target: to TALLY_DELIVER with a fresh
// message id and Replays + 1, its failures carried along as history. With remap, or when
// mapping itself refused the batch, the source values are mapped again with the current
// rules first. The dead letter is deleted once the replay is stored; the message id makes a
// repeated replay of the same entry harmless.
func (s *Store) Replay(ctx context.Context, seq uint64, remap bool) (*ReplayResult, error) {
	dl, err := s.At(ctx, seq)
	if err != nil {
		return nil, err
	}
	res := &ReplayResult{Seq: seq, TxID: dl.TxID, Target: dl.Target}
	if dl.Raw != nil {
		return s.replayRaw(ctx, dl, res)
	}
	p, err := s.prepare(ctx, dl, remap)
	if err != nil {
		return res, err
	}
	out, source, unmapped, remapped := p.Batch, p.source, p.Unmapped, p.Remapped
	history := append(slices.Clone(dl.History), dl.failure())
	h := pipeline.Carried{Flags: dl.ImportOptions, Completes: dl.Completes}.Header()
	if h == nil {
		h = nats.Header{}
	}
	h.Set(pipeline.HeaderHistory, encodeHistory(history))
	if err := s.pub.Publish(ctx, pipeline.DeliverMessage(dl.ID+":replay", source, out, unmapped, h)); err != nil {
		return res, fmt.Errorf("publishing the replay: %w", err)
	}
	res.Values, res.Status = len(out.Values), "replayed"
	if err := s.delete(ctx, seq); err != nil {
		// The replay is stored; a later replay of this entry is deduplicated by its id.
		s.log.Warn("deleting a replayed dead letter", "seq", seq, "err", err)
	}
	s.metrics.Replayed.WithLabelValues(dl.Target).Inc()
	s.metrics.changed()
	if err := s.tx.PutEvent(ctx, dl.TxID, &txlog.TxEvent{Time: s.now().UTC(), Kind: txlog.EventReplayed, Target: dl.Target,
		Seq: dl.BatchSeq, DLQSeq: seq, Values: len(out.Values), Reason: dl.Reason, Remapped: remapped, Replay: out.Replays}); err != nil {
		s.log.Warn("recording a replay", "tx", dl.TxID, "err", err)
	}
	s.log.Info("dead letter replayed", "seq", seq, "tx", dl.TxID, "target", dl.Target, "values", len(out.Values), "remap", remapped)
	return res, nil
}

// ReplayPreview is exactly what a replay would send: the batch (its values in the target's
// id schemes), whether it was mapped again and how many source values that left unmapped.
type ReplayPreview struct {
	Seq      uint64           `json:"seq"`
	TxID     string           `json:"txId"`
	Target   string           `json:"target"`
	Source   string           `json:"source"`
	Reason   string           `json:"reason"`
	Remapped bool             `json:"remapped"`
	Unmapped int              `json:"unmapped"`
	Batch    *transform.Batch `json:"batch"`
	// Raw is set for a raw dead letter, which a replay puts back on its subject as stored.
	Raw    bool `json:"raw,omitempty"`
	source *transform.Batch
}

// PreviewReplay says what Replay(seq, remap) would send now, with the rules and metadata in
// force, without sending or deleting anything.
func (s *Store) PreviewReplay(ctx context.Context, seq uint64, remap bool) (*ReplayPreview, error) {
	dl, err := s.At(ctx, seq)
	if err != nil {
		return nil, err
	}
	if dl.Raw != nil {
		return &ReplayPreview{Seq: seq, TxID: dl.TxID, Target: dl.Target, Source: dl.Source, Reason: dl.Reason, Raw: true}, nil
	}
	return s.prepare(ctx, dl, remap)
}

// prepare builds the batch a replay of dl sends: re-mapped with the current rules when
// asked, or when mapping itself refused it, else as it was refused.
func (s *Store) prepare(ctx context.Context, dl *DeadLetter, remap bool) (*ReplayPreview, error) {
	t, ok := s.cfg.Target(dl.Target)
	if !ok {
		return nil, fmt.Errorf("target %q is no longer configured", dl.Target)
	}
	p := &ReplayPreview{Seq: dl.Seq, TxID: dl.TxID, Target: dl.Target, Source: dl.Source, Reason: dl.Reason,
		Remapped: remap || !dl.Mapped, source: dl.SourceBatch}
	batch := dl.Batch
	if p.Remapped {
		var err error
		if batch, p.source, p.Unmapped, err = s.remap(ctx, dl, t); err != nil {
			return nil, err
		}
	}
	out := *batch
	out.ID, out.TxID, out.Seq, out.Source, out.Target = dl.Batch.ID, dl.TxID, dl.BatchSeq, dl.Source, dl.Target
	out.Replays = dl.Replays + 1
	p.Batch = &out
	return p, nil
}

// remap maps a dead letter's source values again with the rules in force, for target t:
// it returns the batch to deliver, the source batch it came from and how many values were
// left unmapped.
func (s *Store) remap(ctx context.Context, dl *DeadLetter, t *config.Target) (batch, source *transform.Batch, unmapped int, err error) {
	in := dl.SourceBatch
	if in == nil {
		in = dl.Batch // identity mapping, or mapping refused the batch as received
	}
	src, ok := s.cfg.Source(dl.Source)
	if !ok {
		return nil, nil, 0, fmt.Errorf("source %q is no longer configured; cannot re-map", dl.Source)
	}
	m, err := s.mapper.Map(ctx, in, src, t)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("re-mapping: %w", err)
	}
	if len(m.Batch.Values) == 0 {
		return nil, nil, 0, fmt.Errorf("re-mapping leaves no value to deliver (%d unmapped); fix the mapping or discard the entry", len(m.Unmapped))
	}
	return m.Batch, in, len(m.Unmapped), nil
}

// replayRaw puts a raw dead letter's message back on the subject it came from, under a
// fresh message id (the original may still be within the duplicate window), for a build or
// configuration that can handle it now.
func (s *Store) replayRaw(ctx context.Context, dl *DeadLetter, res *ReplayResult) (*ReplayResult, error) {
	h := nats.Header{}
	for k, v := range dl.Raw.Header {
		if k != jetstream.MsgIDHeader {
			h[k] = slices.Clone(v)
		}
	}
	// A raw dead letter's id names its own stream sequence, so the id of its replay is new,
	// and a repeated request to replay the same letter is deduplicated.
	if err := s.pub.Publish(ctx, stream.Msg{Subject: dl.Raw.Subject, ID: dl.ID + ":replay", Data: dl.Raw.Data, Header: h}); err != nil {
		return res, fmt.Errorf("publishing the replay: %w", err)
	}
	res.Values, res.Status = dl.Values, "replayed"
	if err := s.delete(ctx, dl.Seq); err != nil {
		s.log.Warn("deleting a replayed dead letter", "seq", dl.Seq, "err", err)
	}
	s.metrics.Replayed.WithLabelValues(dl.Target).Inc()
	s.metrics.changed()
	if txlog.ValidTxID(dl.TxID) {
		if err := s.tx.PutEvent(ctx, dl.TxID, &txlog.TxEvent{Time: s.now().UTC(), Kind: txlog.EventReplayed, Target: dl.Target,
			Seq: dl.BatchSeq, DLQSeq: dl.Seq, Values: dl.Values, Reason: dl.Reason, Replay: dl.Replays}); err != nil {
			s.log.Warn("recording a replay", "tx", dl.TxID, "err", err)
		}
	}
	s.log.Info("dead letter replayed as stored", "seq", dl.Seq, "tx", dl.TxID, "subject", dl.Raw.Subject, "reason", dl.Reason)
	return res, nil
}

// Discard deletes a dead letter for good, recording it in the transaction log.
func (s *Store) Discard(ctx context.Context, seq uint64) (*ReplayResult, error) {
	raw, err := s.rawAt(ctx, seq)
	if err != nil {
		return nil, err
	}
	d := summaryFromHeaders(raw.Header, raw.Subject, seq, raw.Time)
	if err := s.delete(ctx, seq); err != nil {
		return nil, err
	}
	s.metrics.Discarded.WithLabelValues(d.Target).Inc()
	s.metrics.changed()
	if txlog.ValidTxID(d.TxID) {
		if err := s.tx.PutEvent(ctx, d.TxID, &txlog.TxEvent{Time: s.now().UTC(), Kind: txlog.EventDiscarded, Target: d.Target,
			Seq: d.BatchSeq, DLQSeq: seq, Values: d.Values, Reason: d.Reason, Replay: d.Replays}); err != nil {
			s.log.Warn("recording a discard", "tx", d.TxID, "err", err)
		}
	}
	s.log.Info("dead letter discarded", "seq", seq, "tx", d.TxID, "target", d.Target, "values", d.Values)
	return &ReplayResult{Seq: seq, TxID: d.TxID, Target: d.Target, Values: d.Values, Status: "discarded"}, nil
}

func (s *Store) delete(ctx context.Context, seq uint64) error {
	st, err := s.js.Stream(ctx, stream.DLQStream)
	if err != nil {
		return fmt.Errorf("opening %s: %w", stream.DLQStream, err)
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return ErrDeadLetterNotFound
		}
		return fmt.Errorf("deleting dead letter %d: %w", seq, err)
	}
	return nil
}
