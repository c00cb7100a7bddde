package dvs

import (
	"bytes"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

type nopSink struct{ n int }

func (s *nopSink) Group(transform.Group) error                         { return nil }
func (s *nopSink) Value(*transform.DataValue, transform.Locator) error { s.n++; return nil }

func benchDecode(b *testing.B, payload []byte, n int, decode func(*bytes.Reader, transform.Sink) error) {
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	r := bytes.NewReader(payload)
	for b.Loop() {
		r.Reset(payload)
		var s nopSink
		if err := decode(r, &s); err != nil {
			b.Fatal(err)
		}
		if s.n != n {
			b.Fatalf("read %d values, want %d", s.n, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkDecodeJSON(b *testing.B) {
	const n = 100_000
	payload := kalimaJSONBytes(n)
	benchDecode(b, payload, n, func(r *bytes.Reader, s transform.Sink) error { return DecodeJSON(r, s, Options{}) })
}
