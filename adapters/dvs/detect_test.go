package dvs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDetectFormat(t *testing.T) {
	const (
		dvsXML = `<?xml version="1.0" encoding="UTF-8"?><dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"><dataValue/></dataValueSet>`
		adx    = `<?xml version="1.0"?><!-- sample --><adx xmlns="urn:ihe:qrph:adx:2015" exported="2024-01-01"><group/></adx>`
		adxPfx = `<a:adx xmlns:a="urn:ihe:qrph:adx:2015"/>`
		csv    = "dataelement,period,orgunit\nA,202401,KL\n"
	)
	tests := []struct {
		name, contentType, head string
		want                    Format
		err                     error
	}{
		{"json", "application/json", `{}`, FormatJSON, nil},
		{"json with charset", "application/json; charset=UTF-8", `{}`, FormatJSON, nil},
		{"json, upper case", "Application/JSON", `{}`, FormatJSON, nil},
		{"vendor json", "application/vnd.dhis2+json", `{}`, FormatJSON, nil},
		{"adx+xml", "application/adx+xml; charset=UTF-8", adx, FormatADX, nil},
		{"adx+xml without a body", "application/adx+xml", "", FormatADX, nil},
		{"the docs' misspelt xml+adx", "application/xml+adx", adx, FormatADX, nil},
		{"application/xml with a data value set", "application/xml", dvsXML, FormatXML, nil},
		{"application/xml with ADX", "application/xml", adx, FormatADX, nil},
		{"text/xml with prefixed ADX", "text/xml", adxPfx, FormatADX, nil},
		{"application/xml, head too short to tell", "application/xml", "<?xml ", FormatXML, nil},
		{"application/csv", "application/csv", csv, FormatCSV, nil},
		{"text/csv, which DHIS2 refuses", "text/csv; header=present", csv, FormatCSV, nil},
		{"sniffed json", "", ` [{"dataElement":"A"}]`, FormatJSON, nil},
		{"sniffed json with BOM", "application/octet-stream", "\uFEFF{}", FormatJSON, nil},
		{"sniffed xml", "", "\n" + dvsXML, FormatXML, nil},
		{"sniffed adx", "text/plain", adx, FormatADX, nil},
		{"sniffed csv", "application/x-www-form-urlencoded", csv, FormatCSV, nil},
		{"sniffed quoted csv", "", `"dataelement"` + "\n", FormatCSV, nil},
		{"nothing to sniff", "", "", FormatUnknown, ErrUnknownFormat},
		{"unrecognisable", "application/octet-stream", "hello world", FormatUnknown, ErrUnknownFormat},
		{"pdf", "application/pdf", "%PDF-1.4", FormatUnknown, ErrUnsupportedMediaType},
		{"html", "text/html", "<html>", FormatUnknown, ErrUnsupportedMediaType},
		{"gzip", "application/json", "\x1f\x8b\x08\x00", FormatUnknown, ErrCompressed},
		{"zip", "", "PK\x03\x04", FormatUnknown, ErrCompressed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectFormat(tt.contentType, []byte(tt.head))
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("DetectFormat(%q) = %q, %v; want %q, %v", tt.contentType, got, err, tt.want, tt.err)
			}
		})
	}
}

func gzipped(t testing.TB, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecompressAndDecode(t *testing.T) {
	payload := `{"dataSet":"MAL_MONTHLY","period":"202401","dataValues":[{"dataElement":"MAL_TREATED","orgUnit":"KL_N_F1","value":"4"}]}`
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"plain", []byte(payload)},
		{"gzip", gzipped(t, payload)},
		{"gzip of a short body", gzipped(t, "{}")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decompress(bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			r, head, err := Peek(r)
			if err != nil {
				t.Fatal(err)
			}
			f, err := DetectFormat("", head)
			if err != nil || f != FormatJSON {
				t.Fatalf("DetectFormat = %q, %v", f, err)
			}
			var s recSink
			if err := DecodeJSON(r, &s, Options{}); err != nil {
				t.Fatal(err)
			}
			want, _ := io.ReadAll(mustGunzip(t, tt.body))
			if strings.Contains(string(want), "MAL_TREATED") != (len(s.values) == 1) {
				t.Errorf("read %d values", len(s.values))
			}
		})
	}
	if _, err := Decompress(strings.NewReader("PK\x03\x04rest")); !errors.Is(err, ErrZip) {
		t.Errorf("zip: got %v", err)
	}
	if _, err := Decompress(strings.NewReader("\x1f\x8b\x00")); err == nil {
		t.Error("a corrupt gzip header is not refused")
	}
	r, err := Decompress(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("empty body read as %q", b)
	}
	if !IsGzip([]byte{0x1f, 0x8b}) || IsGzip([]byte("{")) {
		t.Error("IsGzip")
	}
}

func mustGunzip(t *testing.T, b []byte) io.Reader {
	if !IsGzip(b) {
		return bytes.NewReader(b)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

// DetectAsDHIS2 answers as DHIS2's POST /api/dataValueSets: the handlers of
// DataValueSetController consume application/xml, application/adx+xml, application/json,
// application/csv and application/pdf only (dhis2-core, @PostMapping(consumes = …); spec
// dhis2.md §1.1, §12 "text/csv is not accepted on POST"), Spring answers any other type
// with 415, and a request without a Content-Type is matched as application/octet-stream
// (Spring's ConsumesRequestCondition.getMatchingCondition), so it gets 415 too. The
// emulator (dhis2test, formatFor) refuses the same.
func TestDetectAsDHIS2(t *testing.T) {
	const (
		dvsXML = `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0"/>`
		adx    = `<?xml version="1.0"?><adx xmlns="urn:ihe:qrph:adx:2015"/>`
	)
	tests := []struct {
		contentType, head string
		want              Format
		err               error
	}{
		{"application/json", `{}`, FormatJSON, nil},
		{"application/json;charset=UTF-8", `{}`, FormatJSON, nil},
		{"APPLICATION/JSON", `{}`, FormatJSON, nil},
		{"application/xml", dvsXML, FormatXML, nil},
		{"application/xml; charset=UTF-8", adx, FormatADX, nil},
		{"application/adx+xml", adx, FormatADX, nil},
		{"application/adx+xml; charset=UTF-8", "", FormatADX, nil},
		{"application/csv", "abc", FormatCSV, nil},
		{"application/csv; header=present", "abc", FormatCSV, nil},
		{"text/csv", "dataelement,period\n", FormatUnknown, ErrUnsupportedMediaType},
		{"text/xml", dvsXML, FormatUnknown, ErrUnsupportedMediaType},
		{"text/plain", `{}`, FormatUnknown, ErrUnsupportedMediaType},
		{"application/vnd.dhis2+json", `{}`, FormatUnknown, ErrUnsupportedMediaType},
		{"application/xml+adx", adx, FormatUnknown, ErrUnsupportedMediaType},
		{"application/x-www-form-urlencoded", `{}`, FormatUnknown, ErrUnsupportedMediaType},
		{"application/octet-stream", `{}`, FormatUnknown, ErrUnsupportedMediaType},
		{"application/pdf", "%PDF-1.4", FormatUnknown, ErrUnsupportedMediaType},
		{"", `{}`, FormatUnknown, ErrUnsupportedMediaType},
		{"application/json", "\x1f\x8b\x08\x00", FormatUnknown, ErrCompressed},
	}
	for _, tt := range tests {
		got, err := DetectAsDHIS2(tt.contentType, []byte(tt.head))
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("DetectAsDHIS2(%q) = %q, %v; want %q, %v", tt.contentType, got, err, tt.want, tt.err)
		}
		if err != nil && tt.contentType != "" && !strings.Contains(err.Error(), strings.ToLower(strings.SplitN(tt.contentType, ";", 2)[0])) &&
			!errors.Is(err, ErrCompressed) {
			t.Errorf("error %q does not name the type", err)
		}
	}
}
