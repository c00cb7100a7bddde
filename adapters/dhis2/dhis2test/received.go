package dhis2test

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"sync"
)

// Receive counts: how often each data value key arrived in an import, for
// fault tests that assert "every value was sent exactly once" (or "at
// least once") against an emulator. Store.History only shows real writes; a
// resend of unchanged content is answered "ignored" and leaves no history,
// so delivery duplicates would be invisible there.
//
// A value is counted when the import engine has resolved all five of its
// identifiers (data element, period, org unit and the two combos, defaults
// applied), whatever happens to it next: written, ignored as unchanged,
// deleted, skipped as an insignificant zero, or refused by a later check
// (expiry, approval, value type ...). Values whose identifiers do not
// resolve have no key and are not counted; dry runs are not counted. The
// 2.43+ pipeline resolves every value before it validates the set, so a set
// it rejects as a whole (E80xx) still counts its resolvable values; the
// 2.38–2.42 engine counts nothing when the header aborts the import (E7600
// …). The WithNoopStore JSON fast path does not parse values and counts
// nothing.

// receiveLog is a bounded-by-keys map of receive counts.
type receiveLog struct {
	mu     sync.Mutex
	counts map[Key]int
	total  int64
}

func newReceiveLog() *receiveLog { return &receiveLog{counts: map[Key]int{}} }

func (l *receiveLog) add(k Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[k]++
	l.total++
}

// Received returns how many times the key k arrived in an import request.
func (s *Store) Received(k Key) int {
	s.recv.mu.Lock()
	defer s.recv.mu.Unlock()
	return s.recv.counts[k]
}

// ReceivedCounts returns a snapshot of every key's receive count.
func (s *Store) ReceivedCounts() map[Key]int {
	s.recv.mu.Lock()
	defer s.recv.mu.Unlock()
	return maps.Clone(s.recv.counts)
}

// ReceivedTotal returns how many values (keys counted with repetition)
// arrived since the last reset.
func (s *Store) ReceivedTotal() int64 {
	s.recv.mu.Lock()
	defer s.recv.mu.Unlock()
	return s.recv.total
}

// ResetReceived forgets the receive counts (Reset does too).
func (s *Store) ResetReceived() {
	s.recv.mu.Lock()
	defer s.recv.mu.Unlock()
	s.recv.counts = map[Key]int{}
	s.recv.total = 0
}

// ReceivedCount is one key's receive count as /__sim/received reports it.
type ReceivedCount struct {
	DataElement          string `json:"dataElement"`
	Period               string `json:"period"`
	OrgUnit              string `json:"orgUnit"`
	CategoryOptionCombo  string `json:"categoryOptionCombo"`
	AttributeOptionCombo string `json:"attributeOptionCombo"`
	Count                int    `json:"count"`
}

// ReceivedReport is the body of GET /__sim/received.
type ReceivedReport struct {
	// Keys is the number of distinct keys received, Total the number of
	// values (with repetition), MaxPerKey the highest count of one key.
	Keys      int   `json:"keys"`
	Total     int64 `json:"total"`
	MaxPerKey int   `json:"maxPerKey"`
	// Counts lists the keys (all, or only those received more than once
	// with ?duplicates=true), sorted by key.
	Counts []ReceivedCount `json:"counts"`
}

// receivedReport builds the admin report; duplicatesOnly keeps keys
// received more than once.
func (s *Store) receivedReport(duplicatesOnly bool) ReceivedReport {
	s.recv.mu.Lock()
	rep := ReceivedReport{Keys: len(s.recv.counts), Total: s.recv.total, Counts: []ReceivedCount{}}
	for k, n := range s.recv.counts {
		rep.MaxPerKey = max(rep.MaxPerKey, n)
		if duplicatesOnly && n < 2 {
			continue
		}
		rep.Counts = append(rep.Counts, ReceivedCount{DataElement: k.DataElement, Period: k.Period, OrgUnit: k.OrgUnit,
			CategoryOptionCombo: k.CategoryOptionCombo, AttributeOptionCombo: k.AttributeOptionCombo, Count: n})
	}
	s.recv.mu.Unlock()
	slices.SortFunc(rep.Counts, func(a, b ReceivedCount) int {
		return cmp.Or(cmp.Compare(a.DataElement, b.DataElement), cmp.Compare(a.Period, b.Period),
			cmp.Compare(a.OrgUnit, b.OrgUnit), cmp.Compare(a.CategoryOptionCombo, b.CategoryOptionCombo),
			cmp.Compare(a.AttributeOptionCombo, b.AttributeOptionCombo))
	})
	return rep
}

// serveReceived answers GET/DELETE /__sim/received.
func (s *Server) serveReceived(w http.ResponseWriter, r *http.Request, writeJSON func(int, any)) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(http.StatusOK, s.store.receivedReport(r.URL.Query().Get("duplicates") == "true"))
	case http.MethodDelete:
		s.store.ResetReceived()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(http.StatusMethodNotAllowed, map[string]string{"error": "use GET or DELETE"})
	}
}

// receive counts one value whose key is resolved (not in a dry run).
func (imp *importer) receive(k Key) {
	if !imp.dryRun {
		imp.srv.store.recv.add(k)
	}
}
