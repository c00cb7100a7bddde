package bench

import (
	"fmt"
	"strings"
)

// A bench run counts only if every value it sent arrived at the sink, each exactly once.
// After each run the harness reads the sink's state for the range of values the run sent
// and Verify judges it; a run that fails makes `tally bench` exit non-zero.

// maxSample bounds the keys a state or a verdict lists as examples.
const maxSample = 10

// Count is a number of values with a few of them as examples (data element/period/org
// unit/option combo, in the target's codes).
type Count struct {
	N      int64    `json:"n"`
	Sample []string `json:"sample,omitempty"`
}

// add counts one value, keeping it as an example while there is room.
func (c *Count) add(label string) {
	c.N++
	if len(c.Sample) < maxSample {
		c.Sample = append(c.Sample, label)
	}
}

// SinkState is what a sink received since it was last reset, seen from one range of values
// [Start, Start+N) of the universe: the range a run sent.
type SinkState struct {
	// Sink names the sink (counting or emulator).
	Sink  string `json:"sink"`
	Start int    `json:"start"`
	N     int    `json:"n"`
	// Counts holds one receipt count per value of the range (saturating at 255).
	Counts []byte `json:"counts"`
	// Receipts counts every value received, whatever its key.
	Receipts int64 `json:"receipts"`
	// Outside counts receipts of universe keys outside the range; Unknown of keys the
	// universe does not hold (an unmapped code, a wrong period).
	Outside Count `json:"outside"`
	Unknown Count `json:"unknown"`
	// WrongValue counts values of the range that arrived with another value than the one
	// sent (for the emulator: that it stores with another value).
	WrongValue Count `json:"wrongValue"`
	// NotStored counts values of the range the emulator received but did not store
	// (refused by a validation after their key resolved). Always 0 for the counting sink.
	NotStored Count `json:"notStored"`
}

// Verification is the verdict on one run. Missing and duplicated values are reported apart:
// a crash test expects duplicates (at-least-once delivery) but never a missing value.
type Verification struct {
	Sink string `json:"sink"`
	// Sent is the number of values the run sent; Arrived how many of them arrived at
	// least once; Receipts every value the sink received, repeats included.
	Sent     int   `json:"sent"`
	Arrived  int   `json:"arrived"`
	Receipts int64 `json:"receipts"`
	Missing  Count `json:"missing"`
	// Duplicated values arrived more than once; Extra is the receipts beyond the first.
	Duplicated Count `json:"duplicated"`
	Extra      int64 `json:"extraReceipts"`
	// Unexpected values were received but not sent by the run.
	Unexpected Count `json:"unexpected"`
	WrongValue Count `json:"wrongValue"`
	NotStored  Count `json:"notStored"`
}

// Verify judges a sink state: it finds the values of the range that never arrived and those
// that arrived more than once, and carries over what the sink found wrong itself.
func Verify(st *SinkState) Verification {
	names := universeNames()
	v := Verification{Sink: st.Sink, Sent: st.N, Receipts: st.Receipts, WrongValue: st.WrongValue, NotStored: st.NotStored,
		Unexpected: Count{N: st.Outside.N + st.Unknown.N, Sample: append(append([]string(nil), st.Outside.Sample...), st.Unknown.Sample...)}}
	if len(v.Unexpected.Sample) > maxSample {
		v.Unexpected.Sample = v.Unexpected.Sample[:maxSample]
	}
	for j := range st.N {
		c := 0
		if j < len(st.Counts) {
			c = int(st.Counts[j])
		}
		switch {
		case c == 0:
			v.Missing.add(names.label(st.Start + j))
		case c > 1:
			v.Duplicated.add(fmt.Sprintf("%s ×%d", names.label(st.Start+j), c))
			v.Extra += int64(c - 1)
		}
		if c > 0 {
			v.Arrived++
		}
	}
	return v
}

// OK reports whether every value arrived exactly once, as sent, and nothing else arrived.
func (v Verification) OK() bool {
	return v.Missing.N == 0 && v.Duplicated.N == 0 && v.Unexpected.N == 0 && v.WrongValue.N == 0 && v.NotStored.N == 0
}

// Err is nil for a run that passed, and otherwise says what went wrong, with counts and
// example keys.
func (v Verification) Err() error {
	if v.OK() {
		return nil
	}
	var parts []string
	add := func(c Count, what string) {
		if c.N > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (e.g. %s)", c.N, what, strings.Join(c.Sample, ", ")))
		}
	}
	add(v.Missing, "missing")
	add(v.Duplicated, fmt.Sprintf("duplicated, %d extra receipts", v.Extra))
	add(v.Unexpected, "unexpected")
	add(v.WrongValue, "with a wrong value")
	add(v.NotStored, "received but not stored")
	return fmt.Errorf("%s sink: %d values sent, %d arrived, %d receipts: %s", v.Sink, v.Sent, v.Arrived, v.Receipts,
		strings.Join(parts, "; "))
}
