package mediator

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
)

// headerTx carries the transaction id of a batch on the stream; the message id is in
// Nats-Msg-Id. Identity travels in headers so a batch can be encoded before its payload has
// been read to the end, which is when the id becomes known.
const headerTx = "Tally-Tx"

// spoolMemory is how much of a payload's encoded batches stay in memory before spilling.
const spoolMemory = 32 << 20

var (
	errBodyTooLarge = errors.New("request body too large")
	errUnauthorized = errors.New("unauthorized")
)

// ingestResult is what an accepted payload became.
type ingestResult struct {
	Tx        *TxRecord
	Duplicate bool
	// DryRun: the payload was read and validated, and nothing was stored.
	DryRun bool
}

// requestError is a refusal with its HTTP status; Input carries the problems of a payload.
type requestError struct {
	Status int
	Reason string // short metric label: bad_input, too_large, unsupported, unavailable
	Msg    string
	Input  *transform.InputErrors
}

func (e *requestError) Error() string { return e.Msg }

// ingestRequest is an inbound payload after authentication.
type ingestRequest struct {
	Source      *config.Source
	ContentType string
	Body        io.Reader
	Query       map[string][]string
	OpenHIMTx   string
}

// parsed is a payload that was read whole and proved valid.
type parsed struct {
	format   string
	digest   hash.Hash
	received time.Time
	values   int
	batches  int
	opts     *payloadOptions
	// schemes are the id schemes the request declared, over the source's defaults.
	schemes transform.IDSchemes
}

// identity is what, besides the source and the body, makes two requests the same payload:
// the import strategy and the id schemes (a corrected idScheme or a DELETE of the same body
// is another payload), and the CSV reading options. It is hashed into the transaction id.
func (p *parsed) identity(q map[string][]string) string {
	sc := p.schemes
	return strings.Join([]string{
		"strategy=" + p.opts.strategy,
		"schemes=" + string(sc.IDScheme) + "," + string(sc.DataElement) + "," + string(sc.OrgUnit) + "," +
			string(sc.CategoryOptionCombo) + "," + string(sc.AttributeOptionCombo) + "," + string(sc.DataSet) + "," +
			string(sc.Category) + "," + string(sc.CategoryOption),
		"csv=" + first(q, "firstRowIsHeader") + "," + first(q, "dataSet"),
	}, ";")
}

// readPayload reads, decompresses, parses and validates a request body, handing each batch
// to emit (which must not keep it). It fails with a *requestError naming every problem.
// onOptions, when not nil, receives the payload's options before the first batch is
// emitted; a payload's header may still change them while it is read (as DHIS2 lets it).
func (s *Service) readPayload(req ingestRequest, emit func(*transform.Batch) error, onOptions func(*payloadOptions)) (*parsed, error) {
	src := req.Source
	p := &parsed{received: s.now().UTC(), digest: sha256.New(), opts: &payloadOptions{dryRun: first(req.Query, "dryRun") == "true"}}
	p.opts.setStrategy(first(req.Query, "importStrategy"))
	schemes, err := schemesFromQuery(req.Query, src.IDSchemes)
	if err != nil {
		return nil, &requestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: err.Error()}
	}
	p.schemes = schemes
	if onOptions != nil {
		onOptions(p.opts)
	}

	body := &limitedReader{r: req.Body, n: int64(s.cfg.HTTP.MaxBodyBytes)}
	br := bufio.NewReaderSize(body, 64<<10)
	r := br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &requestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: "body looks gzip-compressed but is not: " + err.Error()}
		}
		defer gz.Close()
		// The limit applies after decompression too, so a small bomb cannot expand without bound.
		r = bufio.NewReaderSize(&limitedReader{r: gz, n: int64(s.cfg.HTTP.MaxBodyBytes)}, 64<<10)
	}
	dec, format, err := s.decoderFor(src, req.ContentType, r, req.Query, schemes, p.opts)
	if err != nil {
		return nil, err
	}
	p.format = format
	batcher := transform.NewBatcher(transform.BatcherConfig{
		Source: src.Name, Received: p.received, Schemes: schemes, MaxValues: s.batchSizeFor(src.BatchSize), Emit: emit,
	})
	derr := dec(io.TeeReader(r, p.digest), deleting{Sink: batcher, opts: p.opts})
	if errors.Is(derr, errBodyTooLarge) {
		return nil, &requestError{Status: http.StatusRequestEntityTooLarge, Reason: "too_large",
			Msg: fmt.Sprintf("request body exceeds %d bytes (http.max_body_bytes)", s.cfg.HTTP.MaxBodyBytes)}
	}
	if err := finishParse(derr, batcher); err != nil {
		if list, ok := transform.AsInputErrors(err); ok {
			return nil, &requestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: list.Error(), Input: list}
		}
		if errors.Is(err, errEmitStopped) {
			return nil, err
		}
		return nil, &requestError{Status: http.StatusBadRequest, Reason: "bad_input", Msg: "reading payload: " + err.Error()}
	}
	p.values, p.batches = batcher.Values(), batcher.Batches()
	if p.values == 0 {
		return nil, &requestError{Status: http.StatusBadRequest, Reason: "bad_input",
			Msg: "the payload holds no data values", Input: &transform.InputErrors{Errs: []*transform.InputError{{Index: -1, Expected: "at least one data value"}}}}
	}
	return p, nil
}

// errEmitStopped is returned by an emit function that refuses more batches.
var errEmitStopped = errors.New("stopped")

// ingest parses, validates and stores one payload, answering only once every batch is in
// TALLY_INGEST. Nothing is published unless the whole payload is valid.
func (s *Service) ingest(ctx context.Context, req ingestRequest) (*ingestResult, error) {
	src := req.Source
	sp := newSpool(spoolMemory)
	defer sp.close()
	var enc []byte
	var opts *payloadOptions
	p, err := s.readPayload(req, func(b *transform.Batch) error {
		b.ImportStrategy = opts.strategy
		enc = transform.AppendBatch(enc[:0], b)
		return sp.add(enc)
	}, func(o *payloadOptions) { opts = o })
	if err != nil {
		return nil, err
	}
	received, format := p.received, p.format
	if p.opts.dryRun {
		return &ingestResult{DryRun: true, Tx: &TxRecord{Source: src.Name, Received: received, Format: format,
			Values: p.values, Batches: p.batches, Targets: targetNames(s.cfg.TargetsOf(src))}}, nil
	}
	// Storing is bounded: a JetStream that cannot confirm (a cluster without quorum) gets
	// the client a 503 in bounded time rather than a request that hangs.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HTTP.StoreTimeout.D())
	defer cancel()
	txID, existing, err := s.assignTxID(ctx, src.Name, p.digest, p.identity(req.Query), received)
	if err != nil {
		return nil, unavailable(err)
	}
	if existing != nil {
		return &ingestResult{Tx: existing, Duplicate: true}, nil
	}
	pb := s.pub.Start(ctx)
	seq := 0
	perr := sp.each(func(data []byte) error {
		m := ingestMessage(src.Name, txID, batchMsgID(txID, seq), data)
		seq++
		return pb.Add(m)
	})
	if perr == nil {
		_, perr = pb.Wait()
	}
	if perr != nil {
		return nil, unavailable(perr)
	}
	rec := &TxRecord{ID: txID, Source: src.Name, Received: received, Format: format, Values: p.values,
		Batches: p.batches, Targets: targetNames(s.cfg.TargetsOf(src)), OpenHIMTransaction: req.OpenHIMTx}
	stored, created, err := s.txlog.Create(ctx, rec)
	if err != nil {
		return nil, unavailable(err)
	}
	if created {
		s.metrics.IngestValues.WithLabelValues(src.Name).Add(float64(rec.Values))
		s.metrics.IngestMessages.WithLabelValues(src.Name).Add(float64(rec.Batches))
		s.log.Info("ingested", "tx", txID, "source", src.Name, "format", format, "values", rec.Values, "batches", rec.Batches)
	}
	return &ingestResult{Tx: stored, Duplicate: !created}, nil
}

func unavailable(err error) error {
	msg := "could not store the payload durably; retry later: " + err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "JetStream did not confirm storing the payload within http.store_timeout; retry later " +
			"(retrying the same request is safe: what was stored is recognised, not stored twice)"
	}
	return &requestError{Status: http.StatusServiceUnavailable, Reason: "unavailable", Msg: msg}
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
func (s *Service) assignTxID(ctx context.Context, source string, digest hash.Hash, identity string, received time.Time) (string, *TxRecord, error) {
	sum := digest.Sum(nil)
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(sum)
	h.Write([]byte{0})
	h.Write([]byte(identity))
	id := hex.EncodeToString(h.Sum(nil)[:16])
	old, err := s.txlog.Get(ctx, id)
	switch {
	case errors.Is(err, ErrTxNotFound):
		return id, nil, nil
	case err != nil:
		return "", nil, err
	case received.Sub(old.Received) < s.cfg.NATS.DuplicateWindow.D():
		return id, old, nil
	default:
		return id + "-" + strconv.FormatInt(received.Unix(), 36), nil, nil
	}
}

func batchMsgID(txID string, seq int) string { return txID + ":" + strconv.Itoa(seq) }

// ingestMessage is an encoded batch of a transaction on its way to TALLY_INGEST.
func ingestMessage(source, txID, msgID string, data []byte) stream.Msg {
	return stream.Msg{Subject: stream.IngestPrefix + source, ID: msgID, Data: data, Header: nats.Header{headerTx: []string{txID}}}
}

func targetNames(ts []*config.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
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

// authenticate returns the source whose credentials the request carries: Basic, Bearer, or
// DHIS2's "ApiToken" scheme, so that DHIS2's own clients can authenticate unchanged.
func authenticate(r *http.Request, sources []config.Source, only *config.Source) (*config.Source, error) {
	user, pass, token := credentials(r)
	match := func(src *config.Source) bool {
		if src.Auth.Public && user == "" && token == "" {
			return true
		}
		for _, u := range src.Auth.Users {
			if user != "" && constEq(u.Username, user) && constEq(u.Password, pass) {
				return true
			}
		}
		for _, t := range src.Auth.Tokens {
			if token != "" && constEq(t, token) {
				return true
			}
		}
		return false
	}
	if only != nil {
		if match(only) {
			return only, nil
		}
		return nil, errUnauthorized
	}
	for i := range sources {
		if (user != "" || token != "") && match(&sources[i]) {
			return &sources[i], nil
		}
	}
	return nil, errUnauthorized
}

func credentials(r *http.Request) (user, pass, token string) {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err == nil {
			user, pass, _ = strings.Cut(string(raw), ":")
		}
	case "bearer", "apitoken":
		token = rest
	}
	return user, pass, token
}

func constEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
