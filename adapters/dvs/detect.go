package dvs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
)

// Format names a payload format that POST /api/dataValueSets accepts.
type Format string

// The formats. ADX is parsed by package adapters/adx; the others by this package.
const (
	FormatUnknown Format = ""
	FormatJSON    Format = "json"
	FormatXML     Format = "xml" // DHIS2 DXF2 data value set
	FormatADX     Format = "adx"
	FormatCSV     Format = "csv"
)

// Errors of DetectFormat and Decompress.
var (
	// ErrUnsupportedMediaType: the content type names a format Tally does not read
	// (HTTP 415).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrUnknownFormat: no content type was given and the body does not look like any
	// format.
	ErrUnknownFormat = errors.New("cannot tell the payload format")
	// ErrCompressed: the body is compressed; pass it through Decompress first.
	ErrCompressed = errors.New("payload is compressed")
	// ErrZip: the body is a zip archive, which cannot be read as a stream.
	ErrZip = errors.New("zip-compressed payloads are not supported; send gzip")
)

// SniffLen is how much of the body DetectFormat needs to see to sniff reliably.
const SniffLen = 512

const (
	gzipMagic = "\x1f\x8b"
	zipMagic  = "PK\x03\x04"
)

// IsGzip reports whether head starts with gzip's magic bytes.
func IsGzip(head []byte) bool { return bytes.HasPrefix(head, []byte(gzipMagic)) }

// Decompress returns a reader of the body r carries: r's own bytes, or, when they start
// with gzip's magic bytes, the decompressed stream (DHIS2 accepts gzip bodies whatever the
// Content-Encoding says). A zip archive is refused with ErrZip. The caller bounds the
// decompressed size if it needs to (decoding is streamed, so memory does not grow with it).
func Decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, err := br.Peek(len(zipMagic))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("dvs: reading body: %w", err)
	}
	switch {
	case IsGzip(head):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("dvs: gzip body: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte(zipMagic)):
		return nil, ErrZip
	}
	return br, nil
}

// Peek returns a reader equivalent to r and the first SniffLen bytes (fewer if the body is
// shorter) for DetectFormat.
func Peek(r io.Reader) (io.Reader, []byte, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < SniffLen {
		br = bufio.NewReaderSize(r, 4096)
	}
	head, err := br.Peek(SniffLen)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, nil, fmt.Errorf("dvs: reading body: %w", err)
	}
	return br, head, nil
}

// DetectFormat names the format of a body from its Content-Type and, when that does not
// settle it, its first bytes (SniffLen of them suffice). It is Tally's own, lenient
// detection, for endpoints of Tally's own (POST /ingest/{source}); DetectAsDHIS2 answers
// as DHIS2's POST /api/dataValueSets does:
//
//   - application/json (and any +json type) is JSON;
//   - application/adx+xml is ADX;
//   - application/xml and text/xml are ADX when the root element is in ADX's namespace
//     and a DHIS2 data value set (DXF2) otherwise;
//   - application/csv is CSV, and so is text/csv, which DHIS2 refuses on POST: Tally is
//     more lenient there;
//   - no type, application/octet-stream, text/plain and
//     application/x-www-form-urlencoded (what curl -d sends) are sniffed: '{' or '[' is
//     JSON, '<' is XML or ADX by its root, and a first line with a comma or a quote is CSV.
//
// A compressed head gives ErrCompressed (see Decompress); another type
// ErrUnsupportedMediaType; a body that sniffing cannot place ErrUnknownFormat.
func DetectFormat(contentType string, head []byte) (Format, error) {
	if IsGzip(head) || bytes.HasPrefix(head, []byte(zipMagic)) {
		return FormatUnknown, ErrCompressed
	}
	mt := mediaType(contentType)
	switch {
	case mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"):
		return FormatJSON, nil
	case mt == "application/adx+xml" || mt == "application/xml+adx":
		return FormatADX, nil
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		if sniffXML(head) == FormatADX {
			return FormatADX, nil
		}
		return FormatXML, nil
	case mt == "application/csv" || mt == "text/csv":
		return FormatCSV, nil
	case mt == "" || mt == "application/octet-stream" || mt == "text/plain" ||
		mt == "application/x-www-form-urlencoded":
		if f := sniff(head); f != FormatUnknown {
			return f, nil
		}
		return FormatUnknown, ErrUnknownFormat
	}
	return FormatUnknown, fmt.Errorf("%w: %s", ErrUnsupportedMediaType, mt)
}

// DetectAsDHIS2 names the format of a POST /api/dataValueSets body as DHIS2 does: by
// its Content-Type alone, which must be one its POST handlers consume — application/json,
// application/xml, application/adx+xml or application/csv, in any case and with any
// parameters (dhis2-core DataValueSetController's @PostMapping consumes; spec dhis2.md
// §1.1). Anything else is ErrUnsupportedMediaType, which DHIS2 answers with 415:
// text/csv (DHIS2 produces it on GET but does not consume it), text/xml, text/plain,
// vendor +json types, application/pdf (a PDF form, which Tally does not read), and a
// request without a Content-Type, which Spring matches as application/octet-stream.
// An application/xml body whose root is <adx> is ADX, as DHIS2 2.43's importXml picks
// the reader by the root element. A compressed head gives ErrCompressed (see
// Decompress).
func DetectAsDHIS2(contentType string, head []byte) (Format, error) {
	if IsGzip(head) || bytes.HasPrefix(head, []byte(zipMagic)) {
		return FormatUnknown, ErrCompressed
	}
	switch mt := mediaType(contentType); mt {
	case "application/json":
		return FormatJSON, nil
	case "application/adx+xml":
		return FormatADX, nil
	case "application/xml":
		if sniffXML(head) == FormatADX {
			return FormatADX, nil
		}
		return FormatXML, nil
	case "application/csv":
		return FormatCSV, nil
	case "":
		return FormatUnknown, fmt.Errorf("%w: no Content-Type, which DHIS2 reads as application/octet-stream", ErrUnsupportedMediaType)
	default:
		return FormatUnknown, fmt.Errorf("%w: %s", ErrUnsupportedMediaType, mt)
	}
}

// mediaType returns the type/subtype of a Content-Type in lower case, without its
// parameters, also when a parameter is malformed.
func mediaType(contentType string) string {
	if parsed, _, err := mime.ParseMediaType(contentType); err == nil {
		return parsed
	}
	mt := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	return mt
}

func sniff(head []byte) Format {
	b := bytes.TrimLeft(bytes.TrimPrefix(head, []byte(utf8BOM)), " \t\r\n")
	if len(b) == 0 {
		return FormatUnknown
	}
	switch b[0] {
	case '{', '[':
		return FormatJSON
	case '<':
		return sniffXML(b)
	}
	line := b
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	if bytes.ContainsAny(line, ",\"") {
		return FormatCSV
	}
	return FormatUnknown
}

// sniffXML looks at the root element: ADX by namespace or name, otherwise a DXF2 data
// value set (also when the head is too short to tell).
func sniffXML(head []byte) Format {
	dec := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(head, []byte(utf8BOM))))
	dec.Strict = false
	for {
		tok, err := dec.RawToken()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if (a.Name.Space == "xmlns" || a.Name.Local == "xmlns") && a.Value == NamespaceADX {
					return FormatADX
				}
			}
			if se.Name.Local == "adx" {
				return FormatADX
			}
			return FormatXML
		}
	}
	if bytes.Contains(head, []byte(NamespaceADX)) {
		return FormatADX
	}
	return FormatXML
}
