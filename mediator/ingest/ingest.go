// Package ingest reads a payload a client posts and stores it: limits, decompression,
// format detection (as DHIS2 reads a request, on its compatible endpoint), parsing,
// validation (value by value or whole), the payload's identity (its transaction id, so a
// repeat is recognised), and publishing to TALLY_INGEST only once the whole payload has
// proved valid, spooling the batches meanwhile. It also previews a payload: read as it
// would be, mapped as the mapper would map it, and compared with what the targets hold.
//
// It answers no HTTP itself (mediator/httpapi does, with what it returns) and delivers
// nothing: the stream takes it from there.
package ingest

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

// spoolMemory is how much of a payload's encoded batches stay in memory before spilling,
// spoolMemoryTotal how much the spools of all payloads being ingested keep together.
const (
	spoolMemory      = 8 << 20
	spoolMemoryTotal = 16 << 20
)

var errBodyTooLarge = errors.New("request body too large")

// Ingester reads and stores payloads. It is safe for concurrent use.
type Ingester struct {
	cfg      *config.Config
	pub      *stream.Publisher
	tx       *txlog.TxLog
	mapping  *pipeline.Mapping
	mapper   *pipeline.Mapper
	targets  *delivery.Targets
	settings Settings
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
	// spools is the memory the spools of concurrent ingests share (spool.go).
	spools *spoolBudget
}

// Settings are what an operator may change while Tally runs (the OpenHIM console): the
// batch size.
type Settings interface {
	BatchSize(configured int) int
}

// Config is what an Ingester works with.
type Config struct {
	// Config names the sources, their targets and the HTTP limits (the exchanges' sources
	// included).
	Config    *config.Config
	Publisher *stream.Publisher
	TxLog     *txlog.TxLog
	// Mapping reads ADX with the targets' metadata and maps previews.
	Mapping *pipeline.Mapping
	// Mapper maps the batches of a payload as they are stored, where it can
	// (pipeline.Direct); nil stores every batch in TALLY_INGEST for the mapper stage.
	Mapper *pipeline.Mapper
	// Targets are asked what they hold and would refuse, by previews.
	Targets  *delivery.Targets
	Settings Settings
	Metrics  *Metrics
	Log      *slog.Logger
	Now      func() time.Time
}

// New returns the ingester c describes.
func New(c Config) *Ingester {
	s := &Ingester{cfg: c.Config, pub: c.Publisher, tx: c.TxLog, mapping: c.Mapping, mapper: c.Mapper,
		targets: c.Targets, settings: c.Settings, metrics: c.Metrics, log: c.Log, now: c.Now}
	s.spools = newSpoolBudget(spoolMemoryTotal) // spool.go
	return s
}

// Result is what an accepted payload became.
type Result struct {
	// Tx is the transaction the kept values were stored under; nil when nothing was kept
	// (an empty payload, or one whose every value was refused).
	Tx        *txlog.TxRecord
	Duplicate bool
	// DryRun: the payload was read and validated, and nothing was stored.
	DryRun bool
	// Report says what became of the payload's values: kept for delivery, or refused
	// with their conflicts (per-value validation).
	Report transform.ValueReport
	// Notes are the payload-level conflicts that refused no value (a completeDate that
	// cannot be registered, as DHIS2 reports it).
	Notes []transform.ImportConflict
	// Format is the format the payload was read as.
	Format string
}

// RequestError is a refusal with its HTTP status; Input carries the problems of a payload.
type RequestError struct {
	Status int
	Reason string // short metric label: bad_input, too_large, unsupported, unavailable
	Msg    string
	Input  *transform.InputErrors
}

func (e *RequestError) Error() string { return e.Msg }

// Request is an inbound payload after authentication.
type Request struct {
	Source      *config.Source
	ContentType string
	Body        io.Reader
	Query       map[string][]string
	OpenHIMTx   string
	// SentBy, Client, UserAgent and RequestID say who sent the payload and how, for the
	// transaction record (txlog.TxRecord's fields of the same names).
	SentBy, Client, UserAgent, RequestID string
	// DHIS2 marks POST /api/dataValueSets, which reads a payload as DHIS2 does: by its
	// Content-Type alone, with UID for an id scheme the request does not state, value by
	// value unless the source says atomic.
	DHIS2 bool
	// Release is the DHIS2 release whose rules the DHIS2-compatible endpoint imitates
	// (40 for 2.40); 0 on Tally's own endpoint.
	Release int
}

// perValue reports whether a bad value is refused on its own rather than with its payload:
// the source's validation, else the endpoint's way (see config.Source.Validation). On a
// 2.43 era endpoint the request's atomic=true asks for all or nothing, as DHIS2 2.43 lets it
// (spec dhis2.md §1.2).
func (r Request) perValue() bool {
	switch r.Source.Validation {
	case "atomic":
		return false
	case "per_value":
		return !r.atomicParam()
	}
	return r.DHIS2 && !r.atomicParam()
}

func (r Request) atomicParam() bool {
	return r.Release >= 43 && strings.EqualFold(first(r.Query, "atomic"), "true")
}

// parsed is a payload that was read whole and proved valid.
type parsed struct {
	format   string
	digest   hash.Hash
	received time.Time
	// values is how many values were kept for delivery; batches how many batches hold them.
	values  int
	batches int
	report  transform.ValueReport
	opts    *payloadOptions
	// flags are the import parameters forwarded to the targets (flags.go).
	flags string
	// notes are the payload-level conflicts that refused no value (its completeDate).
	notes []transform.ImportConflict
	// completes is set when a batch carries a completeDate to register.
	completes bool
	// schemes are the id schemes the request declared, over the source's defaults.
	schemes transform.IDSchemes
}

// identity is what, besides the source and the body, makes two requests the same payload:
// the import strategy and the id schemes (a corrected idScheme or a DELETE of the same body
// is another payload), and the CSV reading options. It is hashed into the transaction id.
func (p *parsed) identity(q map[string][]string) string {
	sc := p.schemes
	return strings.Join([]string{
		"strategy=" + string(p.opts.strategy),
		"schemes=" + string(sc.IDScheme) + "," + string(sc.DataElement) + "," + string(sc.OrgUnit) + "," +
			string(sc.CategoryOptionCombo) + "," + string(sc.AttributeOptionCombo) + "," + string(sc.DataSet) + "," +
			string(sc.Category) + "," + string(sc.CategoryOption),
		"csv=" + first(q, "firstRowIsHeader") + "," + first(q, "dataSet"),
		"flags=" + p.flags,
	}, ";")
}

// read reads, decompresses, parses and validates a request body, handing each batch to
// emit (which must not keep it, as transform.BatcherConfig.Emit says). It fails with a
// *RequestError naming every problem that refuses the payload: any problem when validation
// is atomic, a document-level one when it is per value (the refused values are then in
// parsed.report). onOptions, when not nil, receives the payload's options before the first
// batch is emitted; a payload's header may still change them while it is read (as DHIS2
// lets it).
func (s *Ingester) read(ctx context.Context, req Request, emit func(*transform.Batch) error, onOptions func(*payloadOptions)) (*parsed, error) {
	src := req.Source
	if req.Release == 0 {
		// Tally's own endpoint reads ADX as the targets' DHIS2 does too.
		req.Release = s.Era(ctx, src)
	}
	p, err := s.readOptions(req)
	if err != nil {
		return nil, err
	}
	if onOptions != nil {
		onOptions(p.opts)
	}
	r, closeBody, err := s.openBody(req.Body)
	if err != nil {
		return nil, err
	}
	defer closeBody()
	release := s.ingestRelease(ctx, src)
	dec, format, err := s.decoderFor(ctx, req, r, p.schemes, p.opts)
	if err != nil {
		return nil, err
	}
	p.format = format
	batcher := transform.NewBatcher(transform.BatcherConfig{
		Source: src.Name, Received: p.received, Schemes: p.schemes, MaxValues: s.settings.BatchSize(src.BatchSize), Emit: emit,
		PerValue: req.perValue(), ImportStrategy: p.opts.strategy, Release: release,
	})
	hr := newHashingReader(r, p.digest) // pipelined.go
	defer hr.finish()
	derr := dec(hr, deleting{Sink: completing{Sink: batcher, cr: p.opts.complete}, opts: p.opts})
	hr.finish()
	var refused *RequestError
	if errors.As(derr, &refused) && refused.Status == http.StatusForbidden {
		return nil, refused
	}
	if errors.Is(derr, errBodyTooLarge) {
		return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Reason: "too_large",
			Msg: fmt.Sprintf("request body exceeds %d bytes (http.max_body_bytes)", s.cfg.HTTP.MaxBodyBytes)}
	}
	if err := finishParse(derr, batcher); err != nil {
		return nil, parseError(err)
	}
	// An empty payload is valid, as in DHIS2 (conformance README §5.5): it stores nothing.
	p.report = batcher.Report()
	explainRelease(p.report.Conflicts, release)
	p.values, p.batches = p.report.Kept, batcher.Batches()
	p.notes, p.completes = p.opts.complete.notes, p.opts.complete.any
	return p, nil
}

// readOptions starts a payload with what its query says: dry run, import strategy, id
// schemes and the import flags forwarded.
func (s *Ingester) readOptions(req Request) (*parsed, error) {
	src := req.Source
	p := &parsed{received: s.now().UTC(), digest: sha256.New(), opts: &payloadOptions{dryRun: first(req.Query, "dryRun") == "true", source: src}}
	p.opts.complete = newCompletionReader(src, p.received)
	if err := p.opts.setStrategy(first(req.Query, "importStrategy")); err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, &RequestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: "query parameter " + err.Error()}
	}
	defaults := src.IDSchemes
	if req.DHIS2 {
		// To DHIS2 a scheme the request does not state is UID (ADX: CODE), whatever the
		// source's defaults, which are for Tally's own endpoint (spec dhis2.md §1.3).
		defaults = config.Schemes{}
	}
	schemes, err := schemesFromQuery(req.Query, defaults)
	if err != nil {
		return nil, &RequestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: err.Error()}
	}
	p.schemes = schemes
	p.flags = importFlags(req.Query)
	return p, nil
}

// openBody limits the body to http.max_body_bytes and decompresses it when it is
// gzip-compressed (the limit then applies after decompression too, so a small bomb cannot
// expand without bound). The returned function releases the decompressor.
func (s *Ingester) openBody(body io.Reader) (*bufio.Reader, func(), error) {
	br := bufio.NewReaderSize(&limitedReader{r: body, n: int64(s.cfg.HTTP.MaxBodyBytes)}, 64<<10)
	if head, _ := br.Peek(2); len(head) != 2 || head[0] != 0x1f || head[1] != 0x8b {
		return br, func() {}, nil
	}
	gz, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, &RequestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: "body looks gzip-compressed but is not: " + err.Error()}
	}
	return bufio.NewReaderSize(&limitedReader{r: gz, n: int64(s.cfg.HTTP.MaxBodyBytes)}, 64<<10), func() { _ = gz.Close() }, nil
}

// parseError is the *RequestError of a payload that did not parse or validate; an emit
// function's errEmitStopped is returned as it is.
func parseError(err error) error {
	var re *RequestError
	if errors.As(err, &re) {
		return re
	}
	if list, ok := transform.AsInputErrors(err); ok {
		return &RequestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: list.Error(), Input: list}
	}
	if errors.Is(err, errEmitStopped) {
		return err
	}
	return &RequestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: "reading payload: " + err.Error()}
}

// explainRelease adds to DHIS2's "Period not valid" of a period the targets' release lacks
// the period's type and the releases, which DHIS2's own text leaves the client to guess.
func explainRelease(errs []*transform.InputError, release int) {
	for _, e := range errs {
		if e.Conflict == nil || e.Conflict.ErrorCode != transform.CodePeriodNotValid || e.Value == "" {
			continue
		}
		if ok, since, err := period.AvailableIn(e.Value, release); err == nil && !ok {
			pt, _ := period.Parse(e.Value)
			e.Conflict.Value += fmt.Sprintf(" (%s is a period type DHIS2 has from 2.%d on; the targets run 2.%d at most)",
				pt.Type(), since, release)
		}
	}
}

// errEmitStopped is returned by an emit function that refuses more batches.
var errEmitStopped = errors.New("stopped")

// Ingested counts a payload stored in TALLY_INGEST: its values and batches, by source (an
// exchange's runs are counted too).
func (s *Ingester) Ingested(source string, values, batches int) {
	s.metrics.Values.WithLabelValues(source).Add(float64(values))
	s.metrics.Messages.WithLabelValues(source).Add(float64(batches))
}

// Refused counts a request refused, by source and reason.
func (s *Ingester) Refused(source, reason string) {
	s.metrics.Rejected.WithLabelValues(source, reason).Inc()
}

// Ingest parses, validates and stores one payload, answering only once every batch is in
// TALLY_INGEST. Nothing is published unless the payload as a whole is valid; in per-value
// mode the values refused on their own are left out and reported.
func (s *Ingester) Ingest(ctx context.Context, req Request) (*Result, error) {
	src := req.Source
	sp := newSpool(spoolMemory, s.spools)
	defer sp.close()
	direct := s.mapper.Direct(src)
	published := false
	defer func() { direct.Done(published) }()
	w := newSpooler(ctx, sp, direct) // pipelined.go
	p, err := s.read(ctx, req, w.emit, nil)
	if serr := w.finish(); serr != nil {
		// The spool could not keep what was read (its disk): not the client's fault, and
		// the cause of whatever the parse ended with.
		err = unavailable(fmt.Errorf("spooling the payload: %w", serr))
	}
	if err != nil {
		return nil, err
	}
	res := &Result{Report: p.report, Format: p.format, Notes: p.notes}
	if p.opts.dryRun {
		res.DryRun = true
		res.Tx = &txlog.TxRecord{Source: src.Name, Received: p.received, Format: p.format, Values: p.values,
			Batches: p.batches, Targets: s.cfg.TargetNamesOf(src)}
		return res, nil
	}
	if p.batches == 0 {
		return res, nil // nothing to store: an empty payload, or every value refused
	}
	// Storing is bounded: a JetStream that cannot confirm (a cluster without quorum) gets
	// the client a 503 in bounded time rather than a request that hangs.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HTTP.StoreTimeout.D())
	defer cancel()
	txID, existing, err := s.assignTxID(ctx, src.Name, p.digest, p.identity(req.Query), p.received)
	if err != nil {
		return nil, unavailable(err)
	}
	if existing != nil {
		res.Tx, res.Duplicate = existing, true
		return res, nil
	}
	if err := s.publish(ctx, src, txID, p, sp, w); err != nil {
		return nil, unavailable(err)
	}
	published = true
	rec := &txlog.TxRecord{ID: txID, Source: src.Name, Received: p.received, Format: p.format, Values: p.values,
		Batches: p.batches, Targets: s.cfg.TargetNamesOf(src), OpenHIMTransaction: req.OpenHIMTx,
		Refused: p.report.Rejected, Conflicts: ingestConflicts(p.report), Notes: txlog.ConflictsOf(p.notes),
		SentBy: req.SentBy, Client: req.Client, UserAgent: transform.ClipText(req.UserAgent, 200), RequestID: req.RequestID}
	stored, created, err := s.tx.Create(ctx, rec)
	if err != nil {
		return nil, unavailable(err)
	}
	if created {
		s.Ingested(src.Name, rec.Values, rec.Batches)
		s.log.Info("ingested", "tx", txID, "source", src.Name, "format", p.format, "values", rec.Values,
			"batches", rec.Batches, "refused", rec.Refused)
	}
	res.Tx, res.Duplicate = stored, !created
	return res, nil
}

// publish stores the spooled batches of payload p as transaction txID: mapped for their
// targets in TALLY_DELIVER where the mapper could do that as they were read
// (pipeline.Direct), else in TALLY_INGEST, each with the payload's flags and batch count.
func (s *Ingester) publish(ctx context.Context, src *config.Source, txID string, p *parsed, sp *spool, w *spooler) error {
	shape := fmt.Sprintf("%d×%d", p.batches, s.settings.BatchSize(src.BatchSize))
	settled, err := s.settledBefore(ctx, txID, shape)
	if err != nil {
		return err
	}
	pb := s.pub.Start(ctx)
	err = w.batches(sp, func(seq int, data []byte, pre []pipeline.Premapped) error {
		m := pipeline.IngestMessage(src.Name, txID, pipeline.BatchMsgID(txID, seq), data)
		m.Header = pipeline.WithFlags(m.Header, p.flags)
		m.Header = pipeline.WithSettled(m.Header, settled.Targets(seq))
		m.Header.Set(pipeline.HeaderBatches, strconv.Itoa(p.batches))
		if p.completes {
			m.Header = pipeline.CompletesHeader(m.Header, p.batches)
		}
		return w.direct.Add(ctx, pb, m, pre)
	})
	if err == nil {
		_, err = pb.Wait()
	}
	return err
}

// settledBefore marks transaction txID as being stored and, when an earlier attempt of the
// same request began storing it already (the client retries a request that got no answer),
// returns the batches that attempt settled at each target, so that they are not sent again
// (txlog.BeginStoring; shape is how the payload is split).
func (s *Ingester) settledBefore(ctx context.Context, txID, shape string) (txlog.Settled, error) {
	again, err := s.tx.BeginStoring(ctx, txID, shape)
	if err != nil || !again {
		return nil, err
	}
	settled, err := s.tx.Settled(ctx, txID)
	if err != nil {
		return nil, err
	}
	if len(settled) > 0 {
		s.log.Info("a retried request: leaving out the batches its earlier attempt settled", "tx", txID, "batches", len(settled))
	}
	return settled, nil
}

// ingestConflicts are the conflicts of the values refused at ingest, merged as DHIS2
// merges them, for the transaction record (bounded).
func ingestConflicts(r transform.ValueReport) []txlog.Conflict {
	return txlog.ConflictsOf(transform.MergeConflicts(r.Conflicts))
}

func unavailable(err error) error {
	msg := "could not store the payload durably; retry later: " + err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "JetStream did not confirm storing the payload within http.store_timeout; retry later " +
			"(retrying the same request is safe: what was stored is recognised, not stored twice)"
	}
	return &RequestError{Status: http.StatusServiceUnavailable, Reason: "unavailable", Msg: msg}
}

// finishParse combines what the parser returned with what the batcher collected, so the
// client sees every problem found, not only the one that stopped the parse.
func finishParse(decodeErr error, b *transform.Batcher) error {
	closeErr := b.Close()
	if decodeErr == nil {
		return closeErr
	}
	if errors.Is(decodeErr, transform.ErrTooManyErrors) {
		return closeErr
	}
	one, isInput := transform.AsInputErrors(decodeErr)
	list, _ := transform.AsInputErrors(closeErr)
	if isInput && list != nil {
		list.Errs = append(list.Errs, one.Errs...)
		return list
	}
	return decodeErr
}

// assignTxID derives the transaction id from the source, the payload's digest and the
// request's identity (import options and id schemes), so that a client retrying the same
// request gets the same transaction while the same body sent with other options is another.
// A same request arriving after the duplicate window is a new transaction.
func (s *Ingester) assignTxID(ctx context.Context, source string, digest hash.Hash, identity string, received time.Time) (string, *txlog.TxRecord, error) {
	sum := digest.Sum(nil)
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(sum)
	h.Write([]byte{0})
	h.Write([]byte(identity))
	id := hex.EncodeToString(h.Sum(nil)[:16])
	old, err := s.tx.Get(ctx, id)
	switch {
	case errors.Is(err, txlog.ErrTxNotFound):
		return id, nil, nil
	case err != nil:
		return "", nil, err
	case received.Sub(old.Received) < s.cfg.NATS.DuplicateWindow.D():
		return id, old, nil
	default:
		return id + "-" + strconv.FormatInt(received.Unix(), 36), nil, nil
	}
}

// schemesFromQuery reads DHIS2's id scheme parameters, which describe the incoming ids, over
// the source's configured defaults.
func schemesFromQuery(q map[string][]string, def config.Schemes) (transform.IDSchemes, error) {
	get := func(key, fallback string) (transform.IDScheme, error) {
		v := fallback
		if vs := q[key]; len(vs) > 0 && vs[0] != "" {
			v = vs[0]
		}
		sc, err := transform.ParseIDScheme(v)
		if err != nil {
			return "", fmt.Errorf("query parameter %s: %w", key, err)
		}
		return sc, nil
	}
	var s transform.IDSchemes
	var err error
	fields := []struct {
		dst      *transform.IDScheme
		key, def string
	}{
		{&s.IDScheme, "idScheme", def.IDScheme},
		{&s.DataElement, "dataElementIdScheme", def.DataElement},
		{&s.OrgUnit, "orgUnitIdScheme", def.OrgUnit},
		{&s.CategoryOptionCombo, "categoryOptionComboIdScheme", def.CategoryOptionCombo},
		{&s.AttributeOptionCombo, "attributeOptionComboIdScheme", def.AttributeOptionCombo},
		{&s.DataSet, "dataSetIdScheme", def.DataSet},
		{&s.Category, "categoryIdScheme", ""},
		{&s.CategoryOption, "categoryOptionIdScheme", ""},
	}
	for _, f := range fields {
		if *f.dst, err = get(f.key, f.def); err != nil {
			return s, err
		}
	}
	return s, nil
}

// limitedReader fails with errBodyTooLarge past n bytes, unlike io.LimitReader which would
// silently truncate and let a cut payload look complete.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = errBodyTooLarge
	}
	return n, err
}
