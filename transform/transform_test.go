package transform

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleBatch() *Batch {
	return &Batch{
		ID: "tx1:0", TxID: "tx1", Seq: 3, Part: 1, Source: "cht", Target: "hmis", Replays: 2,
		Received: time.Date(2024, 2, 3, 4, 5, 6, 7, time.UTC),
		Schemes:  IDSchemes{IDScheme: SchemeCode, OrgUnit: "ATTRIBUTE:AbcDef12345"},
		DataSet:  "CHW_MONTHLY", CompleteDate: "2024-02-03",
		Values: []DataValue{
			{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1",
				AttributeOptionCombo: "GOV", Value: "12", Comment: "ok", StoredBy: "chw", FollowUp: true, Index: 0},
			{DataElement: "MAL_CONFIRMED", Period: "202401", OrgUnit: "KL_N_F1", Value: "", Deleted: true, Index: 1},
			{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "KL_N_F2",
				Categories: []CategoryOption{{"SEX", "F"}, {"AGE", "LT1"}}, Attributes: []CategoryOption{{"FUNDING", "NGO"}},
				Value: "7", Index: 2},
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	b := sampleBatch()
	data := EncodeBatch(b)
	got, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
	}
}

// codecV1Sample is sampleBatch as version 1 of the codec wrote it (before batch flags):
// a replica of this build must keep reading what an older replica put on the stream.
const codecV1Sample = "540119057478313a30037478310363687404686d69730b4348575f4d4f4e54484c590a323032342d30322d" +
	"303304434f4445154154545249425554453a41626344656631323334350d4d414c5f434f4e4649524d454406323032343031074b" +
	"4c5f4e5f463105465f4c543103474f56023132026f6b03636877074550495f424347074b4c5f4e5f4632013703534558014603" +
	"414745034c54310746554e44494e47034e474f01020304050607000800000000000602048ed0dfe7b7a79fb02f0301090a0b0c" +
	"0d0e0f100202090a0b0000000000020c110a120000130000020214151617011819"

func TestCodecReadsVersion1(t *testing.T) {
	data, err := hex.DecodeString(codecV1Sample)
	if err != nil {
		t.Fatal(err)
	}
	if data[1] != 1 {
		t.Fatalf("sample is version %d", data[1])
	}
	got, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleBatch(); !reflect.DeepEqual(got, want) {
		t.Fatalf("version 1:\n got %+v\nwant %+v", got, want)
	}
	// Re-encoded, it is the current version and says the same.
	again := EncodeBatch(got)
	if again[1] != codecVersion {
		t.Fatalf("re-encoded as version %d", again[1])
	}
	if b, err := DecodeBatch(again); err != nil || !reflect.DeepEqual(b, got) {
		t.Fatalf("re-encoded: %v %+v", err, b)
	}
}

// codecV2Sample is sampleBatch as version 2 wrote it (batch flags, no import strategy).
const codecV2Sample = "540219057478313a30037478310363687404686d69730b4348575f4d4f4e54484c590a323032342d30322d" +
	"303304434f4445154154545249425554453a41626344656631323334350d4d414c5f434f4e4649524d454406323032343031074b" +
	"4c5f4e5f463105465f4c543103474f56023132026f6b03636877074550495f424347074b4c5f4e5f4632013703534558014603" +
	"414745034c54310746554e44494e47034e474f01020304050607000800000000000602048ed0dfe7b7a79fb02f000301090a0b" +
	"0c0d0e0f100202090a0b0000000000020c110a120000130000020214151617011819"

func TestCodecReadsVersion2(t *testing.T) {
	data, err := hex.DecodeString(codecV2Sample)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleBatch(); !reflect.DeepEqual(got, want) {
		t.Fatalf("version 2:\n got %+v\nwant %+v", got, want)
	}
}

func TestCodecCarriesImportStrategyAndValueDataSet(t *testing.T) {
	b := sampleBatch()
	b.ImportStrategy = "UPDATE"
	b.Values[0].DataSet = "MAL_MONTHLY"
	got, err := DecodeBatch(EncodeBatch(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
	}
}

// A batch from a newer build is told apart from corrupt bytes, so that a consumer of an
// older build can leave it for a replica that reads it.
func TestDecodeNewerVersion(t *testing.T) {
	data := EncodeBatch(sampleBatch())
	data[1] = codecVersion + 1
	_, err := DecodeBatch(data)
	if !errors.Is(err, ErrCodecVersion) || !errors.Is(err, ErrCodec) {
		t.Fatalf("err = %v, want ErrCodecVersion wrapping ErrCodec", err)
	}
	data[1] = 0
	if _, err := DecodeBatch(data); errors.Is(err, ErrCodecVersion) {
		t.Fatalf("version 0 reported as newer: %v", err)
	}
}

func TestCodecCarriesDeletion(t *testing.T) {
	b := sampleBatch()
	b.Deletion = true
	plain := EncodeBatch(sampleBatch())
	data := EncodeBatch(b)
	if len(data) != len(plain) {
		t.Errorf("the deletion flag costs %d bytes, want the one flag byte every batch has", len(data)-len(plain))
	}
	got, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Deletion || !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip lost the deletion flag: %+v", got)
	}
	if got, _ := DecodeBatch(plain); got.Deletion {
		t.Fatal("a plain batch decodes as a deletion")
	}
}

func TestCodecIsCompact(t *testing.T) {
	b := &Batch{TxID: "t", Source: "s"}
	for i := range 1000 {
		b.Values = append(b.Values, DataValue{DataElement: fmt.Sprintf("DE_%d", i%20), Period: "202401",
			OrgUnit: fmt.Sprintf("KL_N_F%d", i%4), CategoryOptionCombo: "F_LT1", Value: fmt.Sprint(i % 50), Index: i})
	}
	if n := len(EncodeBatch(b)); n > 12*1000 {
		t.Errorf("1000 values encode to %d bytes, want ≤ 12 per value", n)
	}
}

func TestDecodeRejectsCorruptInput(t *testing.T) {
	good := EncodeBatch(sampleBatch())
	cases := map[string][]byte{
		"empty":         nil,
		"bad magic":     append([]byte{'X'}, good[1:]...),
		"newer version": append([]byte{'T', 99}, good[2:]...),
		"version 0":     append([]byte{'T', 0}, good[2:]...),
		"v3 as v1":      append([]byte{'T', 1}, good[2:]...),
		"v3 as v2":      append([]byte{'T', 2}, good[2:]...),
		"truncated":     good[:len(good)-3],
		"trailing":      append(append([]byte{}, good...), 0),
		"huge count":    {'T', 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeBatch(data); !errors.Is(err, ErrCodec) {
				t.Fatalf("err = %v, want ErrCodec", err)
			}
		})
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch(sampleBatch()))
	f.Add([]byte{'T', 1})
	if v1, err := hex.DecodeString(codecV1Sample); err == nil {
		f.Add(v1)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			return
		}
		again, err := DecodeBatch(EncodeBatch(b))
		if err != nil || !reflect.DeepEqual(again, b) {
			t.Fatalf("re-encoding a decoded batch changed it: %v", err)
		}
	})
}

type pos struct{ line int }

func (p pos) Pos() Pos { return Pos{Line: p.line} }

func TestBatcherCutsValidatesAndCollects(t *testing.T) {
	var got [][]DataValue
	bt := NewBatcher(BatcherConfig{Source: "s", MaxValues: 2, Emit: func(b *Batch) error {
		got = append(got, append([]DataValue(nil), b.Values...))
		return nil
	}})
	mk := func(de string) *DataValue {
		return &DataValue{DataElement: de, Period: "202401", OrgUnit: "OU", Value: "1"}
	}
	_ = bt.Group(Group{DataSet: "A"})
	for _, de := range []string{"a", "b", "c"} {
		if err := bt.Value(mk(de), pos{1}); err != nil {
			t.Fatal(err)
		}
	}
	_ = bt.Group(Group{DataSet: "B"}) // a batch never spans two groups
	_ = bt.Value(mk("d"), pos{2})
	if err := bt.Close(); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, b := range got {
		sizes = append(sizes, len(b))
	}
	if !reflect.DeepEqual(sizes, []int{2, 1, 1}) || got[2][0].Index != 3 {
		t.Fatalf("batches %v, last index %d", sizes, got[2][0].Index)
	}

	bad := NewBatcher(BatcherConfig{MaxErrors: 2, Emit: func(*Batch) error { t.Fatal("emitted an invalid payload"); return nil }})
	_ = bad.Value(&DataValue{Period: "202401", OrgUnit: "OU", Value: "1"}, pos{7})
	_ = bad.Value(&DataValue{DataElement: "x", Period: "2024-13", OrgUnit: "OU", Value: "1"}, pos{8})
	if err := bad.Value(&DataValue{DataElement: "x", Period: "202401", OrgUnit: "OU"}, pos{9}); !errors.Is(err, ErrTooManyErrors) {
		t.Fatalf("third error: %v", err)
	}
	list, ok := AsInputErrors(bad.Close())
	if !ok || len(list.Errs) != 2 || list.More != 1 {
		t.Fatalf("errors = %+v", list)
	}
	if e := list.Errs[1]; e.Line != 8 || e.Field != "period" || e.Value != "2024-13" || e.Index != 1 {
		t.Errorf("second error = %+v", e)
	}
	if !strings.Contains(list.Errs[0].Error(), "line 7: data value 0: dataElement: missing") {
		t.Errorf("message = %q", list.Errs[0].Error())
	}
}

func TestIDSchemes(t *testing.T) {
	for in, want := range map[string]IDScheme{"code": SchemeCode, "UID": SchemeUID, "attribute:AbC12345678": "ATTRIBUTE:AbC12345678"} {
		got, err := ParseIDScheme(in)
		if err != nil || got != want {
			t.Errorf("ParseIDScheme(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseIDScheme("SHORTNAME"); err == nil {
		t.Error("want error")
	}
	q := IDSchemes{IDScheme: SchemeCode, OrgUnit: SchemeUID}
	p := IDSchemes{OrgUnit: SchemeName}
	r := q.Overlay(p).Resolved(SchemeUID)
	if r.OrgUnit != SchemeName || r.DataElement != SchemeCode || r.AttributeOptionCombo != SchemeCode {
		t.Errorf("resolved = %+v", r)
	}
}

// TestEncoderFindsEveryStringOnce attacks the encoder's string index (wordIndex): strings
// that share its word (the same first and last four bytes), a flood of them that overflows
// its probes, and more distinct strings than it was sized for. Each batch must decode to
// itself and hold each distinct string once in its table, through one Encoder reused from
// batch to batch as the spool and the mapper use theirs.
func TestEncoderFindsEveryStringOnce(t *testing.T) {
	shared := &Batch{ID: "b:0", TxID: "b", Source: "s", Received: time.Unix(1700000000, 0).UTC(), Schemes: IDSchemes{IDScheme: SchemeCode}}
	for i, v := range []string{"1234xx5678", "1234yy5678", "ab", "abb", "a\x00b", "ab", "1234yy5678", "0", "00", "000"} {
		shared.Values = append(shared.Values, DataValue{DataElement: "DE", Period: "202401", OrgUnit: "OU", Value: v, Index: i})
	}
	flood := &Batch{ID: "f:0", TxID: "f", Source: "s", Received: time.Unix(1700000000, 0).UTC(), Schemes: IDSchemes{IDScheme: SchemeCode}}
	for i := range 600 { // 300 strings of one word and length, each twice
		flood.Values = append(flood.Values, DataValue{DataElement: "DE", Period: "202401", OrgUnit: "OU",
			Value: fmt.Sprintf("AAAA%03dZZZZ", i%300), Index: i})
	}
	crowded := &Batch{ID: "c:0", TxID: "c", Source: "s", Received: time.Unix(1700000000, 0).UTC(), Schemes: IDSchemes{IDScheme: SchemeCode}}
	for i := range 10 { // 70 strings for a 10-value batch, then each again
		for range 2 {
			f := func(what string) string { return fmt.Sprintf("%s-%d", what, i) }
			crowded.Values = append(crowded.Values, DataValue{DataElement: f("de"), Period: f("pe"), OrgUnit: f("ou"),
				CategoryOptionCombo: f("coc"), AttributeOptionCombo: f("aoc"), Value: f("v"), Comment: f("c"), StoredBy: f("by"),
				Index: len(crowded.Values)})
		}
	}
	var x Encoder
	for _, b := range []*Batch{shared, flood, crowded, shared} {
		x.Encode(b)
		data := x.AppendTo(nil)
		got, err := DecodeBatch(data)
		if err != nil {
			t.Fatalf("%s: %v", b.ID, err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("%s: round trip:\n got %+v\nwant %+v", b.ID, got, b)
		}
		if n, _ := binary.Uvarint(data[2:]); int(n) != distinctStrings(b) {
			t.Errorf("%s: the table holds %d strings, want the batch's %d distinct ones", b.ID, n, distinctStrings(b))
		}
	}
}

// distinctStrings counts the non-empty strings an encoding of b has to hold.
func distinctStrings(b *Batch) int {
	seen := map[string]bool{}
	add := func(ss ...string) {
		for _, s := range ss {
			if s != "" {
				seen[s] = true
			}
		}
	}
	s := b.Schemes
	add(b.ID, b.TxID, b.Source, b.Target, b.DataSet, b.CompleteDate, b.ImportStrategy, string(s.IDScheme), string(s.DataElement),
		string(s.OrgUnit), string(s.CategoryOptionCombo), string(s.AttributeOptionCombo), string(s.DataSet), string(s.Category), string(s.CategoryOption))
	for _, v := range b.Values {
		add(v.DataElement, v.Period, v.OrgUnit, v.CategoryOptionCombo, v.AttributeOptionCombo, v.Value, v.Comment, v.StoredBy, v.DataSet)
		for _, p := range append(v.Categories, v.Attributes...) {
			add(p.Category, p.Option)
		}
	}
	return len(seen)
}
