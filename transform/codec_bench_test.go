package transform

import (
	"fmt"
	"testing"
	"time"
)

// benchBatch is a mapped batch as the bench sends them: 1000 values, 20 data elements × 4
// option combos, one period, distinct org units, distinct values.
func benchBatch() *Batch {
	b := &Batch{ID: "tx:0", TxID: "tx", Source: "bench", Target: "sink", Received: time.Unix(1700000000, 0),
		Schemes: IDSchemes{IDScheme: SchemeCode}}
	for i := range 1000 {
		b.Values = append(b.Values, DataValue{DataElement: fmt.Sprintf("BENCH_DE_%02d", i%20), Period: "202401",
			OrgUnit: fmt.Sprintf("OU_%05d", i/80), CategoryOptionCombo: fmt.Sprintf("COC_%d", i%4),
			Value: fmt.Sprint(1000 + i), Index: i})
	}
	return b
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := benchBatch()
	b.ReportAllocs()
	for b.Loop() {
		AppendBatch(nil, batch)
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	data := EncodeBatch(benchBatch())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncoder encodes batch after batch with one Encoder, as the spool and the
// mapper stage do.
func BenchmarkEncoder(b *testing.B) {
	batch := benchBatch()
	var x Encoder
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		x.Encode(batch)
		buf = x.AppendTo(buf[:0])
	}
}
