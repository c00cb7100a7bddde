package mediator_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/bench"
)

// BenchmarkIngest measures values per second from HTTP request to JetStream-acknowledged, per
// format, with 100,000-value payloads (the answer comes only after every batch is stored).
// Delivery to a no-op emulator runs concurrently, as it would in production.
func BenchmarkIngest(b *testing.B) {
	const n = 100_000
	for _, format := range bench.Formats {
		b.Run(format, func(b *testing.B) {
			emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"), dhis2test.WithNoopStore())
			defer emu.Close()
			h := startTallyWith(b, emu.URL, b.TempDir(), "")
			defer h.stop()
			// Payloads are generated before the clock starts, each different, or ingest
			// would recognise a repeat.
			bodies := make([][]byte, b.N)
			var ctype string
			for i := range bodies {
				var gen io.Reader
				gen, ctype, _ = bench.Payload(format, i*n, n)
				bodies[i], _ = io.ReadAll(gen)
			}
			b.ResetTimer()
			for i := range b.N {
				req, _ := http.NewRequest("POST", h.base+"/ingest/cht", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", ctype)
				req.Header.Set("Authorization", "Bearer "+chtToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Fatalf("HTTP %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "values/s")
		})
	}
}

// BenchmarkEndToEnd measures values per second from HTTP ingest until a no-op emulator has
// received every value, through the delivery workers (identity mapping).
func BenchmarkEndToEnd(b *testing.B) {
	const n = 100_000
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"), dhis2test.WithNoopStore())
	defer emu.Close()
	h := startTallyWith(b, emu.URL, b.TempDir(), "")
	defer h.stop()
	bodies := make([][]byte, b.N)
	for i := range bodies {
		gen, _, _ := bench.Payload("json", i*n, n)
		bodies[i], _ = io.ReadAll(gen)
	}
	b.ResetTimer()
	for i := range b.N {
		before := emu.Store().Accepted()
		req, _ := http.NewRequest("POST", h.base+"/ingest/cht", bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+chtToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for emu.Store().Accepted() < before+n {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "values/s")
}
