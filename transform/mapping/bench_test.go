package mapping

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// benchSetup builds 100 code rules onto 100 data elements and a 1000-value batch over 10 org
// units, the shape of a large tracker-to-aggregate pull.
func benchSetup(b *testing.B) (*Engine, *transform.Batch) {
	b.Helper()
	md := &metadata.Metadata{
		CategoryCombos: []metadata.CategoryCombo{{Object: metadata.Object{ID: metadata.DefaultCategoryComboUID, Code: "default", Name: "default"},
			CategoryOptionCombos: []metadata.Ref{{ID: metadata.DefaultCategoryOptionComboUID}}}},
		CategoryOptionCombos: []metadata.CategoryOptionCombo{{Object: metadata.Object{ID: metadata.DefaultCategoryOptionComboUID, Code: "default", Name: "default"},
			CategoryCombo: metadata.Ref{ID: metadata.DefaultCategoryComboUID}}},
	}
	ds := metadata.DataSet{Object: metadata.Object{ID: "DsBench0001", Code: "BENCH"}, PeriodType: "Monthly", CategoryCombo: metadata.Ref{ID: metadata.DefaultCategoryComboUID}}
	var yml strings.Builder
	yml.WriteString("mappings:\n  - name: bench\n    source_id_scheme: CODE\n    target_id_scheme: CODE\n    org_units: {scheme: CODE}\n    rules:\n")
	for i := range 100 {
		id := fmt.Sprintf("DeBench%04d", i)
		md.DataElements = append(md.DataElements, metadata.DataElement{Object: metadata.Object{ID: id, Code: fmt.Sprintf("DE_%03d", i)},
			ValueType: "INTEGER", CategoryCombo: metadata.Ref{ID: metadata.DefaultCategoryComboUID}})
		ds.DataSetElements = append(ds.DataSetElements, metadata.DataSetElement{DataElement: metadata.Ref{ID: id}})
		fmt.Fprintf(&yml, "      - {source: PI_%03d, data_element: DE_%03d}\n", i, i)
	}
	md.DataSets = []metadata.DataSet{ds}
	for i := range 10 {
		md.OrgUnits = append(md.OrgUnits, metadata.OrgUnit{Object: metadata.Object{ID: fmt.Sprintf("OuBench%04d", i), Code: fmt.Sprintf("OU_%02d", i)}})
	}
	sets, _ := compile(b, yml.String(), nil)
	in := &transform.Batch{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}}
	for i := range 1000 {
		in.Values = append(in.Values, transform.DataValue{DataElement: fmt.Sprintf("PI_%03d", i%100), Period: "202401",
			OrgUnit: fmt.Sprintf("OU_%02d", i/100), Value: fmt.Sprint(i), Index: i})
	}
	return NewEngine(sets, StaticMetadata{"hmis": md}), in
}

func BenchmarkMap(b *testing.B) {
	e, in := benchSetup(b)
	src := &Source{Name: "tracker", Mapping: "bench"}
	target := &Target{Name: "hmis"}
	ctx := context.Background()
	if m, err := e.Map(ctx, in, src, target); err != nil || len(m.Batch.Values) != 1000 {
		b.Fatal(m, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Map(ctx, in, src, target); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(in.Values))/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkMapADX resolves every value's option combo from ADX categories.
func BenchmarkMapADX(b *testing.B) {
	sets, _ := compile(b, engineYAML, engineFiles)
	e := NewEngine(sets, StaticMetadata{"hmis": kalima(b)})
	in := &transform.Batch{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}}
	sexes, ages := []string{"F", "M"}, []string{"LT1", "1TO4"}
	for i := range 1000 {
		in.Values = append(in.Values, transform.DataValue{DataElement: "BCG", Period: fmt.Sprintf("2%03d%02d", i/48, i/4%12+1),
			OrgUnit: "KL_N_F1", Categories: cats("SEX="+sexes[i%2], "AGE="+ages[i/2%2]), Value: "1", Index: i})
	}
	src := &Source{Name: "adx", Mapping: "adx"}
	target := &Target{Name: "hmis"}
	ctx := context.Background()
	if m, err := e.Map(ctx, in, src, target); err != nil || len(m.Batch.Values) != 1000 {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Map(ctx, in, src, target); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(in.Values))/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkMapPayload maps a 100,000-value payload as 100 batches of 1000 with the
// payload's keys remembered across them (Options.Payload), as the mapper stage does.
func BenchmarkMapPayload(b *testing.B) {
	e, one := benchSetup(b)
	src := &Source{Name: "tracker", Mapping: "bench"}
	target := &Target{Name: "hmis"}
	ctx := context.Background()
	batches := make([]*transform.Batch, 100)
	for s := range batches {
		in := *one
		in.Seq = s
		in.Values = make([]transform.DataValue, len(one.Values))
		for i, v := range one.Values {
			v.Period = fmt.Sprintf("%04d%02d", 2000+s/12, s%12+1) // a key of its own
			v.Index = s*len(one.Values) + i
			in.Values[i] = v
		}
		batches[s] = &in
	}
	b.ReportAllocs()
	for b.Loop() {
		keys := NewPayloadKeysWithin(100_000, 100_000, NewKeyBudget(200_000)) // as the mapper keeps them
		for _, in := range batches {
			if m, err := e.MapWith(ctx, in, src, target, Options{Payload: keys}); err != nil || len(m.Batch.Values) != len(in.Values) {
				b.Fatal(m, err)
			}
		}
	}
	b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkPayloadKeys looks up and records the keys of a payload of 100 batches of 1000
// mapped values as run.finish does (the lock taken once per batch). distinct: every key is
// new, the common case; pairs: batches 2n and 2n+1 carry the same 1000 keys, so half the
// lookups find one earlier use. B/key is the heap the remembered keys hold.
func BenchmarkPayloadKeys(b *testing.B) {
	for _, tc := range []struct {
		name    string
		period  func(seq int) int
		earlier int // lookups that find an earlier use
	}{{"distinct", func(s int) int { return s }, 0}, {"pairs", func(s int) int { return s / 2 }, 50_000}} {
		b.Run(tc.name, func(b *testing.B) {
			batches := make([]transform.Batch, 100)
			for s := range batches {
				batches[s].Seq = s
				for i := range 1000 {
					batches[s].Values = append(batches[s].Values, transform.DataValue{DataElement: fmt.Sprintf("DeBench%04d", i%100),
						Period: fmt.Sprintf("%04d%02d", 2000+tc.period(s)/12, tc.period(s)%12+1), OrgUnit: fmt.Sprintf("OuBench%04d", i/100),
						CategoryOptionCombo: metadata.DefaultCategoryOptionComboUID, AttributeOptionCombo: metadata.DefaultCategoryOptionComboUID,
						Value: fmt.Sprint(i), Index: s*1000 + i})
				}
			}
			record := func() *PayloadKeys {
				// Sized and budgeted as the mapper keeps them; buf reused as a run reuses its
				// own (run.keyID).
				pk, found := NewPayloadKeysWithin(100_000, 100_000, NewKeyBudget(200_000)), 0
				var buf []byte
				for _, in := range batches {
					pk.mu.Lock()
					for i := range in.Values {
						v := &in.Values[i]
						var id keyID
						id, buf = idOf(&pk.seeds, buf, v.Key())
						head, ok := pk.lookupLocked(id)
						found += len(pk.earlierLocked(head, ok, in.Seq))
						pk.recordLocked(id, head, ok, keyUse{seq: int32(in.Seq), index: int32(v.Index), value: v.Value, deleted: v.Deleted})
					}
					pk.mu.Unlock()
				}
				if found != tc.earlier {
					b.Fatalf("%d lookups found an earlier use, want %d", found, tc.earlier)
				}
				return pk
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			pk := record()
			runtime.GC()
			runtime.ReadMemStats(&after)
			perKey := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(pk.Len())
			runtime.KeepAlive(pk)
			b.ReportAllocs()
			for b.Loop() {
				record()
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}
