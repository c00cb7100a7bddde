package dhis2

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// kalimaPayload is a realistic DVS JSON batch of n values (the sample scenario's codes).
func kalimaPayload(n int) []byte {
	des := []string{"EPI_BCG", "EPI_PENTA1", "EPI_MEASLES1", "MAL_CONFIRMED"}
	cocs := []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"}
	ous := []string{"KL_N_F1", "KL_N_F2", "KL_S_F1", "KL_S_F2"}
	var b strings.Builder
	b.WriteString(`{"dataSet":"EPI_MONTHLY","dataValues":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"dataElement":%q,"period":"2024%02d","orgUnit":%q,"categoryOptionCombo":%q,"attributeOptionCombo":"GOV","value":"%d","comment":"tally"}`,
			des[i%4], 1+i/64%12, ous[i/4%4], cocs[i/16%4], (i*37)%250)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// BenchmarkGzipPayload measures what request compression buys on a 1000-value batch.
func BenchmarkGzipPayload(b *testing.B) {
	data := kalimaPayload(1000)
	var out bytes.Buffer
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		out.Reset()
		zw := gzip.NewWriter(&out)
		zw.Write(data)
		zw.Close()
	}
	b.ReportMetric(float64(len(data)), "raw-bytes")
	b.ReportMetric(float64(out.Len()), "gzip-bytes")
	b.ReportMetric(float64(out.Len())/float64(len(data)), "ratio")
}

// BenchmarkImport sends a 1000-value batch to a loopback server, plain and gzipped. On
// loopback compression only costs CPU; over a slow link it saves the ratio above.
func BenchmarkImport(b *testing.B) {
	data := kalimaPayload(1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		buf.ReadFrom(r.Body)
		reply(200, jsonCT, bodyD)(w, r)
	}))
	defer srv.Close()
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			c, err := New(Config{BaseURL: srv.URL, Token: testToken, Gzip: gz})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := c.ImportDataValues(context.Background(), wholePayload(data), ImportOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// wholePayload streams data in one write, as an encoder with a buffer would.
type wholePayload []byte

func (p wholePayload) ContentType() string { return ContentTypeJSON }
func (p wholePayload) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(p)
	return int64(n), err
}

// BenchmarkParseImportBody reads the answer DHIS2 2.40 gives a 1000-value import (a
// WebMessage around an ImportSummary that echoes the import options), as the emulator
// writes it. Delivery reads one per request.
func BenchmarkParseImportBody(b *testing.B) {
	srv := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/dataValueSets?idScheme=CODE", bytes.NewReader(kalimaPayload(1000)))
	req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
	req.Header.Set("Content-Type", ContentTypeJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, ok := parseImportBody(body); !ok {
		b.Fatalf("no import summary in %.300s", body)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		parseImportBody(body)
	}
}
