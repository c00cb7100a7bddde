package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// The messages on TALLY_INGEST and TALLY_DELIVER. The body is a batch in the stream
// encoding (transform.EncodeBatch); what travels beside it is in headers, so that a batch
// can be encoded before its payload has been read to the end, and a dead letter made of a
// message keeps what its replay needs.

// Headers of the stream messages.
const (
	// HeaderTx carries the transaction id of a batch; the message id is in Nats-Msg-Id.
	HeaderTx = "Tally-Tx"
	// HeaderBatches tells the mapper how many batches the payload of an ingest message
	// has.
	HeaderBatches = "Tally-Batches"
	// HeaderImportOptions carries the import parameters a client asked the targets to
	// apply (url-encoded; mediator/ingest reads them from the request).
	HeaderImportOptions = "Tally-Import-Options"
	// HeaderCompletes marks the messages of a transaction that completes a data set: its
	// value is the number of batches, so that delivery knows when all have an outcome
	// without reading the transaction record.
	HeaderCompletes = "Tally-Completes"
	// HeaderUnmapped tells the delivery worker how many source values mapping dropped, so
	// the transaction log can account for every value.
	HeaderUnmapped = "Tally-Unmapped"
	// HeaderSourceAt marks a delivery message that carries the source values after the
	// mapped batch: the value is the byte offset where the source batch's encoding starts.
	HeaderSourceAt = "Tally-Source-At"
	// HeaderHistory carries a replayed batch's earlier failures (base64 of a JSON list, as
	// mediator/dlq writes it), so that its next dead letter keeps them.
	HeaderHistory = "Tally-History"
	// HeaderMapping carries what mapping reported about a batch (a MappingNote, base64 of
	// its JSON) to the delivery record.
	HeaderMapping = "Tally-Mapping"
	// HeaderAfter lists (comma-separated) the earlier batches of the payload whose values on
	// a key a delivery message replaces or adds up (duplicates: last or sum): delivery
	// sends it only after those have an outcome at the target (mediator/delivery).
	HeaderAfter = "Tally-After"
	// HeaderValues is the number of mapped values of a delivery message, so that the
	// backlog can be counted in values without decoding it (delivery.Backlog).
	HeaderValues = "Tally-Values"
	// HeaderSettled names (one value each) the targets where an earlier attempt of the
	// same request already settled this batch (txlog.Settled): ingest sets it on a client's
	// retry, and mapping then sends the batch to the other targets only. A replica that
	// does not know the header sends it everywhere again, as before.
	HeaderSettled = "Tally-Settled"
)

// WithSettled marks an ingest message with the targets where its batch is settled.
func WithSettled(h nats.Header, targets []string) nats.Header {
	if len(targets) == 0 {
		return h
	}
	if h == nil {
		h = nats.Header{}
	}
	h[HeaderSettled] = slices.Clone(targets)
	return h
}

// settledAt says whether an ingest message's batch is settled at target.
func settledAt(h nats.Header, target string) bool {
	return slices.Contains(h.Values(HeaderSettled), target)
}

// BatchMsgID is the message id of batch seq of a transaction.
func BatchMsgID(txID string, seq int) string { return txID + ":" + strconv.Itoa(seq) }

// IngestMessage is an encoded batch of a transaction on its way to TALLY_INGEST.
func IngestMessage(source, txID, msgID string, data []byte) stream.Msg {
	return stream.Msg{Subject: stream.IngestPrefix + source, ID: msgID, Data: data, Header: nats.Header{HeaderTx: []string{txID}}}
}

// DeliverMessage builds the TALLY_DELIVER message for a mapped batch. When mapping changed
// the values, the source values travel along after the mapped batch, so that a dead letter
// made of it can be re-mapped with the current rules on replay; an identity mapping sends
// the batch once.
func DeliverMessage(id string, source, mapped *transform.Batch, unmapped int, h nats.Header) stream.Msg {
	return DeliverMessageFrom(nil, id, source, nil, mapped, unmapped, h)
}

// DeliverMessageFrom is DeliverMessage for a source batch whose encoding the caller holds
// already (the TALLY_INGEST message it was decoded from): those bytes travel as they are
// instead of encoding the batch again, which was a third of the mapper's encoding work.
// The encoding may lack the batch's transaction and message ids (they travel in the ingest
// message's headers); Delivered.Source restores them from the mapped batch, which mapping
// copies from its source. x, when not nil, is an encoder the caller reuses from one message
// to the next.
func DeliverMessageFrom(x *transform.Encoder, id string, source *transform.Batch, sourceData []byte, mapped *transform.Batch, unmapped int, h nats.Header) stream.Msg {
	data, sourceAt := deliverBody(x, source, sourceData, mapped)
	tx := mapped.TxID
	if tx == "" && source != nil {
		tx = source.TxID
	}
	return deliverMessage(mapped.Target, id, tx, data, sourceAt, unmapped, len(mapped.Values), h)
}

// deliverBody is the body of a delivery message: the mapped batch, and after it the source
// batch when mapping changed the values, at sourceAt (0: not carried).
func deliverBody(x *transform.Encoder, source *transform.Batch, sourceData []byte, mapped *transform.Batch) (data []byte, sourceAt int) {
	carry := source != nil && !sameValues(source, mapped)
	if x == nil {
		x = new(transform.Encoder)
	}
	size := x.Encode(mapped)
	if carry && sourceData != nil {
		size += len(sourceData) // one allocation for both
	}
	data = x.AppendTo(make([]byte, 0, size))
	if !carry {
		return data, 0
	}
	sourceAt = len(data)
	if sourceData != nil {
		return append(data, sourceData...), sourceAt
	}
	return transform.AppendBatch(data, source), sourceAt
}

// deliverMessage is a delivery message to target with body data (the source values from
// sourceAt on, 0: none), of transaction tx, with the headers that describe it added to h.
func deliverMessage(target, id, tx string, data []byte, sourceAt, unmapped, values int, h nats.Header) stream.Msg {
	if h == nil {
		h = nats.Header{}
	}
	h.Set(HeaderTx, tx)
	h.Set(HeaderUnmapped, strconv.Itoa(unmapped))
	h.Set(HeaderValues, strconv.Itoa(values))
	if sourceAt > 0 {
		h.Set(HeaderSourceAt, strconv.Itoa(sourceAt))
	}
	return stream.Msg{Subject: stream.DeliverPrefix + target, ID: id, Data: data, Header: h}
}

// sameValues reports whether mapping left a batch as it was.
func sameValues(a, b *transform.Batch) bool {
	if a.Schemes != b.Schemes || len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Values {
		x, y := &a.Values[i], &b.Values[i]
		if x.DataElement != y.DataElement || x.Period != y.Period || x.OrgUnit != y.OrgUnit ||
			x.CategoryOptionCombo != y.CategoryOptionCombo || x.AttributeOptionCombo != y.AttributeOptionCombo ||
			x.Value != y.Value || x.Comment != y.Comment || x.Deleted != y.Deleted || x.FollowUp != y.FollowUp ||
			x.StoredBy != y.StoredBy || x.Index != y.Index || x.DataSet != y.DataSet ||
			!slices.Equal(x.Categories, y.Categories) || !slices.Equal(x.Attributes, y.Attributes) {
			return false
		}
	}
	return true
}

// DecodeDeliver reads a TALLY_DELIVER message: the batch to send and, when mapping changed
// it, the source values it was made from (else nil).
func DecodeDeliver(msg jetstream.Msg) (mapped, source *transform.Batch, err error) {
	d, err := DecodeDeliverMapped(msg)
	if err != nil {
		return nil, nil, err
	}
	if source, err = d.Source(); err != nil {
		return nil, nil, err
	}
	return d.Mapped, source, nil
}

// Delivered is a TALLY_DELIVER message read for delivery: the mapped batch, with the source
// values it carries left encoded until asked for. A delivery sends only the mapped batch;
// the source values are for a dead letter, so decoding them for every batch (a thousand
// values, a fifth of a megabyte of heap) was work thrown away nearly always.
type Delivered struct {
	Mapped *transform.Batch
	// Encoded is Mapped as the message holds it, in the stream's batch encoding.
	Encoded []byte
	subject string
	src     []byte // nil: the message carries no source values
}

// Source decodes the source values the message carries; nil when mapping left the batch
// as it was.
func (d *Delivered) Source() (*transform.Batch, error) {
	if d.src == nil {
		return nil, nil
	}
	source, err := transform.DecodeBatch(d.src)
	if err != nil {
		return nil, fmt.Errorf("decoding the source values of %s: %w", d.subject, err)
	}
	if source.TxID == "" {
		source.TxID = d.Mapped.TxID
	}
	if source.ID == "" {
		source.ID = d.Mapped.ID
	}
	return source, nil
}

// DecodeDeliverMapped reads a TALLY_DELIVER message's mapped batch; its source values are
// decoded by Delivered.Source when needed.
func DecodeDeliverMapped(msg jetstream.Msg) (*Delivered, error) {
	return DecodeDeliverMappedInto(msg, nil)
}

// DecodeDeliverMappedInto is DecodeDeliverMapped decoding the mapped values into room's
// array when it has the capacity (transform.DecodeBatchInto).
func DecodeDeliverMappedInto(msg jetstream.Msg, room []transform.DataValue) (*Delivered, error) {
	data := msg.Data()
	d := &Delivered{subject: msg.Subject()}
	if at := msg.Headers().Get(HeaderSourceAt); at != "" {
		n, err := strconv.Atoi(at)
		if err != nil || n < 0 || n > len(data) {
			return nil, fmt.Errorf("decoding %s: bad %s header %q", msg.Subject(), HeaderSourceAt, at)
		}
		data, d.src = data[:n], data[n:]
	}
	mapped, err := transform.DecodeBatchInto(data, room)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", msg.Subject(), err)
	}
	withIdentity(mapped, msg.Headers())
	d.Mapped, d.Encoded = mapped, data
	return d, nil
}

// DecodeIngest reads a TALLY_INGEST message: its batch, with the identity that travels in
// headers.
func DecodeIngest(msg jetstream.Msg) (*transform.Batch, error) {
	b, err := transform.DecodeBatch(msg.Data())
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", msg.Subject(), err)
	}
	withIdentity(b, msg.Headers())
	return b, nil
}

// withIdentity restores a batch's transaction and message ids from the headers.
func withIdentity(b *transform.Batch, h nats.Header) {
	if h == nil {
		return
	}
	if b.TxID == "" {
		b.TxID = h.Get(HeaderTx)
	}
	if b.ID == "" {
		b.ID = h.Get(jetstream.MsgIDHeader)
	}
}

// PeekBatch reads the batch a TALLY_INGEST or TALLY_DELIVER message holds, and for a
// delivery message the source values it carries.
func PeekBatch(msg jetstream.Msg) (*transform.Batch, *transform.Batch, error) {
	if msg.Headers().Get(HeaderSourceAt) != "" || strings.HasPrefix(msg.Subject(), stream.DeliverPrefix) {
		return DecodeDeliver(msg)
	}
	b, err := DecodeIngest(msg)
	return b, nil, err
}

// MsgAttempts is how often the message has been delivered, this time included.
func MsgAttempts(msg jetstream.Msg) int {
	md, err := msg.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}

// Carried is what a delivery message carries beside its batch, which a dead letter made of
// it keeps for the replay: the batch's earlier failures and the import parameters its client
// asked the target to apply.
type Carried struct {
	// History is the Tally-History header as it was (mediator/dlq reads and writes it).
	History string
	// Flags are the forwarded import parameters, url-encoded.
	Flags string
	// Completes is the number of batches of a transaction that completes a data set, 0
	// otherwise.
	Completes int
	// Note is what mapping reported about the batch; it stays with the delivery record
	// and is not carried further.
	Note MappingNote
}

// CarriedBy reads what a message carries beside its batch.
func CarriedBy(h nats.Header) Carried {
	n, _ := strconv.Atoi(h.Get(HeaderCompletes))
	return Carried{History: h.Get(HeaderHistory), Flags: h.Get(HeaderImportOptions), Completes: n, Note: NoteIn(h)}
}

// Header is what a delivery message made of a batch carries forward (a mapped batch, a
// replay): the import parameters and the completion mark.
func (c Carried) Header() nats.Header {
	h := WithFlags(nil, c.Flags)
	if c.Completes > 0 {
		h = CompletesHeader(h, c.Completes)
	}
	return h
}

// CompletesHeader marks the messages of a transaction whose batches complete a data set.
func CompletesHeader(h nats.Header, batches int) nats.Header {
	if h == nil {
		h = nats.Header{}
	}
	h.Set(HeaderCompletes, strconv.Itoa(batches))
	return h
}

// FlagsOf reads the forwarded import parameters a message carries.
func FlagsOf(h nats.Header) url.Values {
	v, err := url.ParseQuery(h.Get(HeaderImportOptions))
	if err != nil {
		return nil
	}
	return v
}

// WithFlags adds forwarded import parameters to a message's headers (h may be nil).
func WithFlags(h nats.Header, flags string) nats.Header {
	if flags == "" {
		return h
	}
	if h == nil {
		h = nats.Header{}
	}
	h.Set(HeaderImportOptions, flags)
	return h
}

// PayloadIndexes are the values' positions in their payload.
func PayloadIndexes(vs []transform.DataValue) []int {
	out := make([]int, len(vs))
	for i := range vs {
		out[i] = vs[i].Index
	}
	return out
}

// RecordDelivery writes a delivery record; a failure is logged, since the outcome itself
// (the ack, the dead letter) must not wait for the log.
func RecordDelivery(ctx context.Context, log *slog.Logger, tx *txlog.TxLog, txID string, rec *txlog.DeliveryRecord) {
	if err := tx.PutDelivery(ctx, txID, rec); err != nil {
		log.Warn("recording delivery", "tx", txID, "target", rec.Target, "seq", rec.Seq, "err", err)
	}
}

// Tries is what the transaction log knows of a batch's earlier attempts at a target.
type Tries struct {
	Attempts int
	First    time.Time
}

// EarlierTries reads the attempts a batch has already used at a target (by the mapper or
// the delivery workers). They are recorded only once a message comes back, so the first
// delivery (the common case) skips the read.
func EarlierTries(ctx context.Context, tx *txlog.TxLog, msg jetstream.Msg, b *transform.Batch, target string) Tries {
	if MsgAttempts(msg) <= 1 {
		return Tries{}
	}
	bctx, cancel := Bookkeeping(ctx)
	defer cancel()
	prev, err := tx.Delivery(bctx, b.TxID, target, b.Seq, b.Replays)
	if err != nil || prev.Outcome != txlog.OutcomeRetrying {
		return Tries{}
	}
	return Tries{Attempts: prev.Attempts, First: prev.FirstError}
}
