package bench

import (
	"net/http"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// emulatorSink is the emulator's real import engine and store. Its receipts are the
// emulator's own receive counts (Store.ReceivedCounts: a value counts once its five
// identifiers resolved, whatever happened next), and a value counts as arrived with the
// right value only if the store holds it with that value, so a value the emulator refused
// (an expired period, a value of the wrong type) shows as received but not stored.
type emulatorSink struct {
	sim *dhis2test.Server
	res *resolver
}

func (s *emulatorSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.sim.Handler().ServeHTTP(w, r)
}

func (s *emulatorSink) receipts() int64 { return s.sim.Store().ReceivedTotal() }

func (s *emulatorSink) reset() { s.sim.Store().Reset() }

func (s *emulatorSink) close() { s.sim.Close() }

func (s *emulatorSink) state(start, n int) *SinkState {
	st := &SinkState{Start: start, N: n, Counts: make([]byte, n), Receipts: s.sim.Store().ReceivedTotal()}
	byUID := [3]bool{}
	index := func(k dhis2test.Key) (int, bool) {
		i, p := s.res.resolve(k.DataElement, k.Period, k.OrgUnit, k.CategoryOptionCombo, k.AttributeOptionCombo, byUID)
		return i, p == nil
	}
	for k, c := range s.sim.Store().ReceivedCounts() {
		i, ok := index(k)
		switch {
		case !ok:
			st.Unknown.add(k.DataElement + "/" + k.Period + "/" + k.OrgUnit + "/" + k.CategoryOptionCombo)
			st.Unknown.N += int64(c - 1)
		case i < start || i >= start+n:
			st.Outside.add(s.res.names.label(i))
			st.Outside.N += int64(c - 1)
		default:
			st.Counts[i-start] = uint8(min(c, 255))
		}
	}
	stored := make([]bool, n)
	for _, v := range s.sim.Store().Values() {
		i, ok := index(v.Key)
		if !ok || i < start || i >= start+n {
			continue // already counted as unexpected by its receipt
		}
		stored[i-start] = true
		if v.Value != expectedValue(i) {
			st.WrongValue.add(s.res.names.label(i))
		}
	}
	for j, c := range st.Counts {
		if c > 0 && !stored[j] {
			st.NotStored.add(s.res.names.label(start + j))
		}
	}
	return st
}
