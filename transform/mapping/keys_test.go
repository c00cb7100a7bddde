package mapping

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// TestPayloadKeysFieldBoundaries: a key is hashed from its five fields, so keys that only
// place a field boundary elsewhere ("a"+"bc" against "ab"+"c") must still be different
// keys, at every one of the four boundaries.
func TestPayloadKeysFieldBoundaries(t *testing.T) {
	keyOf := func(f [5]string) transform.Key {
		return transform.Key{DataElement: f[0], Period: f[1], OrgUnit: f[2], CategoryOptionCombo: f[3], AttributeOptionCombo: f[4]}
	}
	for b := range 4 {
		l := [5]string{"x", "x", "x", "x", "x"}
		r := l
		l[b], l[b+1] = "a", "bc"
		r[b], r[b+1] = "ab", "c"
		left, right := keyOf(l), keyOf(r)
		pk := NewPayloadKeys(10)
		pk.mu.Lock()
		idL, idR := pk.id(left), pk.id(right)
		recordOf(pk, idL, keyUse{seq: 0, index: 0, value: "1"})
		if idL == idR || earlierOf(pk, idR, 1) != nil {
			t.Errorf("boundary %d: %q and %q taken for one key", b, keyText(left), keyText(right))
		}
		recordOf(pk, idR, keyUse{seq: 1, index: 1, value: "2"})
		pk.mu.Unlock()
		if pk.Len() != 2 {
			t.Errorf("boundary %d: %d keys remembered, want 2", b, pk.Len())
		}
	}
}

// TestPayloadKeysContributions: a key's contributions are kept per batch in the order they
// came, a batch mapped again replaces its own, and a batch sees only lower seqs. Looking up
// a key no earlier batch used, or one with one earlier use, allocates nothing (it runs for
// every value of every batch of a large payload).
func TestPayloadKeysContributions(t *testing.T) {
	pk := NewPayloadKeys(10)
	pk.mu.Lock()
	defer pk.mu.Unlock()
	id := pk.id(monthKey("202401"))
	for _, u := range []keyUse{{seq: 2, index: 20, value: "a"}, {seq: 0, index: 1, value: "b"}, {seq: 2, index: 21, value: "c"}, {seq: 1, index: 10, deleted: true}} {
		if !recordOf(pk, id, u) {
			t.Fatalf("%+v not recorded", u)
		}
	}
	show := func(us []keyUse) string {
		var b strings.Builder
		for _, u := range us {
			b.WriteString(" " + strconv.Itoa(int(u.seq)) + ":" + strconv.Itoa(int(u.index)) + ":" + u.value + ":" + strconv.FormatBool(u.deleted))
		}
		return b.String()
	}
	for seq, want := range map[int]string{0: "", 1: " 0:1:b:false", 2: " 0:1:b:false 1:10::true", 3: " 2:21:c:false 0:1:b:false 1:10::true"} {
		if got := show(earlierOf(pk, id, seq)); got != want {
			t.Errorf("before batch %d:%s, want%s", seq, got, want)
		}
	}
	if earlierOf(pk, id, 0) != nil || len(pk.keys) != 1 || len(pk.uses) != 3 {
		t.Errorf("nothing earlier must be nil; %d keys, %d contributions, want 1 and 3", len(pk.keys), len(pk.uses))
	}
	other := pk.id(monthKey("202402"))
	var buf []byte // hashed through a buffer kept from key to key, as a run does (run.keyID)
	if n := testing.AllocsPerRun(100, func() {
		var looked keyID
		looked, buf = idOf(&pk.seeds, buf, monthKey("202402"))
		earlierOf(pk, looked, 5)
		earlierOf(pk, id, 1)
		recordOf(pk, other, keyUse{seq: 4, index: 40, value: "d"})
	}); n != 0 {
		t.Errorf("%v allocations to look up and record a key", n)
	}
}

// TestPayloadKeysPast32Bits: a contribution keeps its batch and value position in 32 bits;
// a value past them (a payload of 2^31 values, far over any body Tally accepts) is not
// remembered rather than taken for another position, and the batch's warnings say so.
func TestPayloadKeysPast32Bits(t *testing.T) {
	if strconv.IntSize == 32 {
		t.Skip("an int holds no more than 32 bits here")
	}
	e := NewEngine(nil, nil)
	big := math.MaxInt32
	big++
	for _, in := range []*transform.Batch{
		{ID: "p", Seq: big, Values: []transform.DataValue{dv("DE_A", "202401", "OU_A", "", "", "4")}},
		{ID: "p", Seq: 1, Values: []transform.DataValue{{DataElement: "DE_A", Period: "202401", OrgUnit: "OU_A", Value: "4", Index: big}}},
	} {
		pk := NewPayloadKeys(10)
		m, err := e.MapWith(context.Background(), in, &Source{Name: "s"}, &Target{Name: "hmis"}, Options{Payload: pk})
		if err != nil || len(m.Batch.Values) != 1 || len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0].Reason, "2^31") || pk.Len() != 0 {
			t.Errorf("seq %d: %+v, %v (%d keys remembered)", in.Seq, m, err, pk.Len())
		}
	}
}

func monthKey(pe string) transform.Key {
	return transform.Key{DataElement: "DE", Period: pe, OrgUnit: "OU", CategoryOptionCombo: "COC", AttributeOptionCombo: "AOC"}
}

// earlierOf and recordOf look the key up for each call, as a caller that does one of the two.
func earlierOf(pk *PayloadKeys, id keyID, seq int) []keyUse {
	head, found := pk.lookupLocked(id)
	return pk.earlierLocked(head, found, seq)
}

func recordOf(pk *PayloadKeys, id keyID, u keyUse) bool {
	head, found := pk.lookupLocked(id)
	return pk.recordLocked(id, head, found, u)
}

// id is k's id under pk's seeds, as a run mapping into pk computes it.
func (pk *PayloadKeys) id(k transform.Key) keyID {
	id, _ := idOf(&pk.seeds, nil, k)
	return id
}

// TestKeyIndexProbes drives the batch's key index (run.byKey) through what random ids
// rarely do at once: ids that share their first word (and so their place), a probe run
// that wraps past the table's end, and reuse for a second batch. Every id must keep the
// slot it was given, and a new id must never be taken for a known one.
func TestKeyIndexProbes(t *testing.T) {
	var x keyIndex
	for round := range 2 {
		x.reset(100) // 256 places
		last := ^uint64(0)
		var ids []keyID
		for i := range 40 {
			ids = append(ids, keyID{last, uint64(i + round)}) // all placed at the table's end
		}
		for i := range 40 {
			ids = append(ids, keyID{uint64(i) << 58, uint64(i)}) // the places the first run wraps into
		}
		for i, id := range ids {
			if slot, added := x.find(id, int32(i)); !added || slot != int32(i) {
				t.Fatalf("round %d: new id %d: slot %d, added %v", round, i, slot, added)
			}
		}
		for i, id := range ids {
			if slot, added := x.find(id, int32(len(ids))); added || slot != int32(i) {
				t.Fatalf("round %d: known id %d: slot %d, added %v", round, i, slot, added)
			}
		}
	}
}
