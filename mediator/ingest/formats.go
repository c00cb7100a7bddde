package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
)

// decodeFunc reads one payload into a sink.
type decodeFunc func(r io.Reader, sink transform.Sink) error

// decoderFor picks the parser for a request: the source's configured format, or for "auto"
// the Content-Type — on the DHIS2-compatible endpoint as DHIS2 reads it (415 for what DHIS2
// refuses), on Tally's own endpoint falling back to sniffing the first bytes when the type
// says nothing.
//
// A data value set may carry dryRun and its import strategy in its header, which win over
// the query as in DHIS2; the parser reports them through opts.
func (s *Ingester) decoderFor(ctx context.Context, req Request, body *bufio.Reader, schemes transform.IDSchemes, opts *payloadOptions) (decodeFunc, string, error) {
	src := req.Source
	format := src.Format
	if format == "auto" {
		f, err := detectFormat(req, body)
		if err != nil {
			return nil, "", err
		}
		format = f
	}
	onHeader := opts.onHeader
	switch format {
	case "json", "cht":
		return func(r io.Reader, sink transform.Sink) error {
			return dvs.DecodeJSON(r, sink, dvs.Options{OnHeader: onHeader})
		}, format, nil
	case "analytics":
		return func(r io.Reader, sink transform.Sink) error {
			return dvs.DecodeJSON(r, sink, dvs.Options{Analytics: true})
		}, format, nil
	case "xml":
		return func(r io.Reader, sink transform.Sink) error {
			return dvs.DecodeXML(r, sink, dvs.Options{OnHeader: onHeader})
		}, format, nil
	case "csv":
		return csvDecoder(req, format)
	case "adx":
		// ADX's default id scheme is CODE (UID from the 2.43 era); the request's schemes go
		// to the parser so that an explicit idScheme=UID wins over that default. The
		// targets decide how values are read (adx.go).
		a := s.adxSupportFor(ctx, src)
		o := a.adxOptions(schemes, req.Release)
		return func(r io.Reader, sink transform.Sink) error { return a.decode(r, sink, o) }, format, nil
	}
	return nil, "", &RequestError{Status: http.StatusUnsupportedMediaType, Reason: "unsupported", Msg: "unknown format " + format}
}

// detectFormat tells a payload's format from its Content-Type — on the DHIS2-compatible
// endpoint as DHIS2 reads it, on Tally's own endpoint falling back to its first bytes.
func detectFormat(req Request, body *bufio.Reader) (string, error) {
	head, _ := body.Peek(512)
	detect := dvs.DetectFormat
	if req.DHIS2 {
		detect = dvs.DetectAsDHIS2
	}
	f, err := detect(req.ContentType, head)
	if err != nil {
		return "", &RequestError{Status: http.StatusUnsupportedMediaType, Reason: "unsupported",
			Msg: err.Error() + "; send application/json, application/xml, application/adx+xml or application/csv"}
	}
	return formatName(f), nil
}

// csvDecoder reads CSV with or without a header row (firstRowIsHeader), which DHIS2 2.43
// refuses on its endpoint.
func csvDecoder(req Request, format string) (decodeFunc, string, error) {
	header := first(req.Query, "firstRowIsHeader") != "false"
	if !header && req.DHIS2 && req.Release >= 43 {
		// DHIS2 2.43 maps CSV columns by their header and refuses a file without one
		// (spec dhis2.md §1.2; conformance README §6.2, dataValueSetBNoHeader.csv).
		const msg = "CSV without header row is no longer supported."
		return nil, "", &RequestError{Status: http.StatusConflict, Reason: "bad_input", Msg: msg,
			Input: &transform.InputErrors{Errs: []*transform.InputError{{Index: -1, Field: "firstRowIsHeader", Value: "false", Expected: msg}}}}
	}
	opts := dvs.CSVOptions{FirstRowIsHeader: &header, DataSet: first(req.Query, "dataSet")}
	return func(r io.Reader, sink transform.Sink) error { return dvs.DecodeCSV(r, sink, opts) }, format, nil
}

// payloadOptions are the import options a client may set in the query or, winning over
// it as in DHIS2, in the payload's header.
type payloadOptions struct {
	dryRun bool
	// strategy is the importStrategy asked for under its current name; empty: the
	// target's own.
	strategy transform.ImportStrategy
	// delete: importStrategy DELETE, which Tally carries as deleted: true on every value
	// so that any target deletes them whatever its own strategy.
	delete bool
	// complete reads the payload's completeDate (completedate.go).
	complete *completionReader
	// source is whose payload it is: what it may send (allow_delete, allow).
	source *config.Source
	// dataSet is the payload header's data set, for the source's allow-list.
	dataSet string
}

// forbidden is the refusal of something the source may not do, naming it and the key that
// would allow it.
func forbidden(format string, args ...any) *RequestError {
	return &RequestError{Status: http.StatusForbidden, Reason: "forbidden", Msg: fmt.Sprintf(format, args...)}
}

// checkDelete refuses deleting for a source without allow_delete.
func (o *payloadOptions) checkDelete(what string) error {
	if o.source == nil || o.source.AllowDelete {
		return nil
	}
	return forbidden("source %q may not delete values in DHIS2 (%s): an administrator can set allow_delete: true on it", o.source.Name, what)
}

// checkAllowed refuses a value outside the source's allow-lists.
func (o *payloadOptions) checkAllowed(v *transform.DataValue) error {
	if o.source == nil {
		return nil
	}
	a := o.source.Allow
	if len(a.OrgUnits) > 0 && !slices.Contains(a.OrgUnits, v.OrgUnit) {
		return forbidden("data value %d: org unit %q is not among the org units source %q may send (allow.org_units)", v.Index, v.OrgUnit, o.source.Name)
	}
	if len(a.DataSets) > 0 {
		ds := v.DataSet
		if ds == "" {
			ds = o.dataSet
		}
		if !slices.Contains(a.DataSets, ds) {
			if ds == "" {
				return forbidden("data value %d names no data set, and source %q may send only the data sets %s (allow.data_sets)", v.Index, o.source.Name, strings.Join(a.DataSets, ", "))
			}
			return forbidden("data value %d: data set %q is not among the data sets source %q may send (allow.data_sets)", v.Index, ds, o.source.Name)
		}
	}
	return nil
}

// onHeader takes the options a data value set's header carries.
func (opts *payloadOptions) onHeader(h *dvs.Header) error {
	if opts.complete != nil {
		opts.complete.header(h)
	}
	opts.dataSet = h.DataSet
	if h.DryRun != nil {
		opts.dryRun = *h.DryRun
	}
	if h.Strategy != "" {
		return opts.setStrategy(h.Strategy)
	}
	return nil
}

// setStrategy reads an importStrategy as DHIS2 does (its legacy names included) and
// refuses any other value, naming it.
func (o *payloadOptions) setStrategy(s string) error {
	st, err := transform.ParseImportStrategy(s)
	if err != nil {
		return err
	}
	o.strategy, o.delete = st, st.IsDelete()
	if o.delete {
		return o.checkDelete("importStrategy=" + s)
	}
	return nil
}

// deleting marks every value deleted while the payload asks for the DELETE strategy.
type deleting struct {
	transform.Sink
	opts *payloadOptions
}

func (d deleting) Value(v *transform.DataValue, at transform.Locator) error {
	if d.opts.delete {
		v.Deleted = true
	} else if v.Deleted {
		if err := d.opts.checkDelete(fmt.Sprintf("data value %d is marked deleted", v.Index)); err != nil {
			return err
		}
	}
	if err := d.opts.checkAllowed(v); err != nil {
		return err
	}
	if v.StoredBy == "" && d.opts.source != nil {
		v.StoredBy = d.opts.source.StoredBy
	}
	return d.Sink.Value(v, at)
}

func formatName(f dvs.Format) string { return strings.ToLower(string(f)) }

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Reject passes a parser's own findings on to the batcher, so that wrapping does not hide
// the method parsers look for.
func (d deleting) Reject(e *transform.InputError, at transform.Locator) error {
	if r, ok := d.Sink.(interface {
		Reject(*transform.InputError, transform.Locator) error
	}); ok {
		return r.Reject(e, at)
	}
	return e
}
