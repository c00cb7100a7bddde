package adx

import (
	"bytes"
	"io"
	"runtime"
	"strconv"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// kalima generates an ADX message of the sample scenario on the fly: groups for org units
// KL_N_F1…KL_N_F50 and KL_S_F1…KL_S_F50 and consecutive months from January 2015, each
// with MAL_CONFIRMED and EPI_BCG for every SEX × AGE option (8 values per group). Only one
// group's text is held at a time, so a message of any size costs no memory.
type kalima struct {
	groups, next int
	buf          []byte
	off          int
	done         bool
}

const (
	kalimaOrgUnits       = 100
	kalimaValuesPerGroup = 8
)

func newKalima(values int) *kalima {
	return &kalima{groups: values / kalimaValuesPerGroup}
}

func (k *kalima) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if k.off == len(k.buf) {
			if !k.more() {
				break
			}
		}
		c := copy(p[n:], k.buf[k.off:])
		k.off += c
		n += c
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (k *kalima) more() bool {
	k.buf, k.off = k.buf[:0], 0
	switch {
	case k.done:
		return false
	case k.next == 0:
		k.buf = append(k.buf, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<adx xmlns="urn:ihe:qrph:adx:2015" exported="2024-02-01T10:00:00Z">`+"\n"...)
	}
	if k.next == k.groups {
		k.buf = append(k.buf, "</adx>\n"...)
		k.done = true
		return true
	}
	i := k.next
	k.next++
	ou, month := i%kalimaOrgUnits, i/kalimaOrgUnits
	k.buf = append(k.buf, `  <group orgUnit="KL_`...)
	if ou < kalimaOrgUnits/2 {
		k.buf = append(k.buf, 'N')
	} else {
		k.buf = append(k.buf, 'S')
	}
	k.buf = append(k.buf, "_F"...)
	k.buf = strconv.AppendInt(k.buf, int64(ou%(kalimaOrgUnits/2)+1), 10)
	k.buf = append(k.buf, `" period="`...)
	k.buf = strconv.AppendInt(k.buf, int64(2015+month/12), 10)
	k.buf = append(k.buf, '-', byte('0'+(month%12+1)/10), byte('0'+(month%12+1)%10))
	k.buf = append(k.buf, "-01/P1M\">\n"...)
	v := 0
	for _, de := range []string{"MAL_CONFIRMED", "EPI_BCG"} {
		for _, sex := range []string{"F", "M"} {
			for _, age := range []string{"LT1", "1TO4"} {
				k.buf = append(k.buf, `    <dataValue dataElement="`...)
				k.buf = append(k.buf, de...)
				k.buf = append(k.buf, `" SEX="`...)
				k.buf = append(k.buf, sex...)
				k.buf = append(k.buf, `" AGE="`...)
				k.buf = append(k.buf, age...)
				k.buf = append(k.buf, `" value="`...)
				k.buf = strconv.AppendInt(k.buf, int64((i*7+v*13)%500), 10)
				k.buf = append(k.buf, "\"/>\n"...)
				v++
			}
		}
	}
	k.buf = append(k.buf, "  </group>\n"...)
	return true
}

type nopSink struct{ values int }

func (s *nopSink) Group(transform.Group) error { return nil }
func (s *nopSink) Value(*transform.DataValue, transform.Locator) error {
	s.values++
	return nil
}

func newNopBatcher() *transform.Batcher {
	return transform.NewBatcher(transform.BatcherConfig{Source: "bench", Emit: func(*transform.Batch) error { return nil }})
}

// BenchmarkDecode decodes a generated 100,000-value Kalima message: with the scanner and
// with encoding/xml, into a counting sink (the parser alone) and into a transform.Batcher
// (parse, validate and batch, all of ingest before NATS).
func BenchmarkDecode(b *testing.B) {
	const values = 100_000
	payload, err := io.ReadAll(newKalima(values))
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		fn   decodeFunc
	}{{"scanner", scannerDecode}, {"encoding-xml", decodeStd}}
	b.Run("scanner+batcher+codec", func(b *testing.B) {
		// what ingest does before publishing: parse, validate, batch, encode each batch
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			sink := transform.NewBatcher(transform.BatcherConfig{Source: "bench", Emit: func(batch *transform.Batch) error {
				buf = transform.AppendBatch(buf[:0], batch)
				return nil
			}})
			if err := Decode(bytes.NewReader(payload), sink, Options{}); err != nil {
				b.Fatal(err)
			}
			if err := sink.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*values/b.Elapsed().Seconds(), "values/s")
	})
	for _, impl := range impls {
		for _, batcher := range []bool{false, true} {
			name := impl.name
			if batcher {
				name += "+batcher"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				for b.Loop() {
					var sink transform.Sink
					nop := &nopSink{}
					sink = nop
					if batcher {
						sink = newNopBatcher()
					}
					if err := impl.fn(bytes.NewReader(payload), sink, Options{}); err != nil {
						b.Fatal(err)
					}
					if !batcher && nop.values != values {
						b.Fatalf("%d values", nop.values)
					}
				}
				b.ReportMetric(float64(b.N)*values/b.Elapsed().Seconds(), "values/s")
			})
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	const values = 100_000
	rec := &recorder{}
	if err := Decode(newKalima(values), rec, Options{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		enc := NewEncoder(io.Discard, EncodeOptions{})
		for start := 0; start < len(rec.values); start += kalimaValuesPerGroup {
			if err := enc.WriteGroup(rec.groups[rec.groupOf[start]], rec.values[start:start+kalimaValuesPerGroup]); err != nil {
				b.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*values/b.Elapsed().Seconds(), "values/s")
}

// streamMillion decodes a generated 1,000,000-value message through a Batcher and returns
// the peak heap seen (sampled every 10 batches) above the heap before the run.
func streamMillion(tb testing.TB) (peak uint64, values int) {
	const n = 1_000_000
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	batches := 0
	sample := func() {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
			peak = ms.HeapAlloc - base
		}
	}
	b := transform.NewBatcher(transform.BatcherConfig{Source: "stream", Emit: func(b *transform.Batch) error {
		values += len(b.Values)
		if batches++; batches%10 == 0 {
			sample()
		}
		return nil
	}})
	if err := Decode(newKalima(n), b, Options{}); err != nil {
		tb.Fatal(err)
	}
	if err := b.Close(); err != nil {
		tb.Fatal(err)
	}
	sample()
	return peak, values
}

// TestDecodeStreamsMillionValues shows that memory does not grow with the message: the
// 1,000,000-value message is about 75 MB of XML.
func TestDecodeStreamsMillionValues(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a million values")
	}
	peak, values := streamMillion(t)
	if values != 1_000_000 {
		t.Fatalf("%d values", values)
	}
	t.Logf("peak heap above baseline while streaming 1,000,000 values: %.1f MiB", float64(peak)/(1<<20))
	if peak > 32<<20 {
		t.Fatalf("peak heap %d bytes: Decode does not stream", peak)
	}
}

func BenchmarkDecodeStream1M(b *testing.B) {
	var peak uint64
	for b.Loop() {
		p, _ := streamMillion(b)
		peak = max(peak, p)
	}
	b.ReportMetric(float64(b.N)*1_000_000/b.Elapsed().Seconds(), "values/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
