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
	cpu := cpuTime()
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
	reportRates(b, n, cpu)
}

// reportRates reports values per second of wall time and, because benchmarks often share
// a machine, per second of the process's CPU time (GC included).
func reportRates(b *testing.B, perOp int, cpuStart float64) {
	values := float64(perOp) * float64(b.N)
	b.ReportMetric(values/b.Elapsed().Seconds(), "values/s")
	if cpu := cpuTime() - cpuStart; cpu > 0 {
		b.ReportMetric(values/cpu, "values/cpu-s")
	}
	b.ReportMetric(0, "ns/op")
}

func BenchmarkDecodeJSON(b *testing.B) {
	const n = 100_000
	payload := kalimaJSONBytes(n)
	benchDecode(b, payload, n, func(r *bytes.Reader, s transform.Sink) error { return DecodeJSON(r, s, Options{}) })
}

// BenchmarkDecodeJSONOneLine is BenchmarkDecodeJSON on the same values written as one line,
// as most clients send JSON: the decoder keeps the column of its position for error
// messages, and on one line that counts every byte.
func BenchmarkDecodeJSONOneLine(b *testing.B) {
	const n = 100_000
	payload := bytes.ReplaceAll(kalimaJSONBytes(n), []byte("\n"), nil)
	benchDecode(b, payload, n, func(r *bytes.Reader, s transform.Sink) error { return DecodeJSON(r, s, Options{}) })
}

// BenchmarkDecodeJSONSmall measures the fixed cost of a call: a 10-value payload, as a
// script posting one facility's month sends.
func BenchmarkDecodeJSONSmall(b *testing.B) {
	const n = 10
	payload := kalimaJSONBytes(n)
	benchDecode(b, payload, n, func(r *bytes.Reader, s transform.Sink) error { return DecodeJSON(r, s, Options{}) })
}

func BenchmarkDecodeXML(b *testing.B) {
	const n = 100_000
	payload := kalimaXMLBytes(n)
	benchDecode(b, payload, n, func(r *bytes.Reader, s transform.Sink) error { return DecodeXML(r, s, Options{}) })
}

func BenchmarkDecodeCSV(b *testing.B) {
	const n = 100_000
	payload := kalimaCSVBytes(n)
	benchDecode(b, payload, n, func(r *bytes.Reader, s transform.Sink) error { return DecodeCSV(r, s, CSVOptions{}) })
}

// BenchmarkDecodeJSONBatcher is the parser with its usual sink: numbering, validation
// (period ids included) and batching into batches of 1000.
func BenchmarkDecodeJSONBatcher(b *testing.B) {
	const n = 100_000
	payload := kalimaJSONBytes(n)
	benchDecode(b, payload, n, func(r *bytes.Reader, s transform.Sink) error {
		bt := transform.NewBatcher(transform.BatcherConfig{Emit: func(*transform.Batch) error { return nil }})
		err := DecodeJSON(r, &countingSink{Sink: bt, n: &s.(*nopSink).n}, Options{})
		if err == nil {
			err = bt.Close()
		}
		return err
	})
}

type countingSink struct {
	transform.Sink
	n *int
}

func (c *countingSink) Value(v *transform.DataValue, at transform.Locator) error {
	*c.n++
	return c.Sink.Value(v, at)
}
