package dhis2test

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Key identifies a data value: all five fields are UIDs, and Period is the
// canonical ISO period id ("202401").
type Key struct {
	DataElement          string
	Period               string
	OrgUnit              string
	CategoryOptionCombo  string
	AttributeOptionCombo string
}

// Value is a stored data value. Deleted rows stay in the store (DHIS2 soft
// deletes) and are reported with Deleted set.
type Value struct {
	Key
	Value       string
	Comment     string
	FollowUp    bool
	Deleted     bool
	StoredBy    string
	Created     time.Time
	LastUpdated time.Time
}

// Operations recorded in a value's history.
const (
	OpCreate  = "CREATE"  // new row
	OpUpdate  = "UPDATE"  // value, comment or follow-up changed
	OpDelete  = "DELETE"  // soft delete
	OpRestore = "RESTORE" // a soft-deleted row written again (counted as imported)
)

// Write is one entry of a value's history.
type Write struct {
	Time       time.Time
	RequestID  string
	Operation  string
	OldValue   string
	NewValue   string
	OldComment string
	NewComment string
	StoredBy   string
	// Audited is false when the import ran with skipAudit=true (DHIS2 then
	// writes no audit/changelog row).
	Audited bool
}

// Registration is a complete data set registration.
type Registration struct {
	DataSet              string
	Period               string
	OrgUnit              string
	AttributeOptionCombo string
	Date                 string // yyyy-MM-dd
	StoredBy             string
	Completed            bool
}

type storedValue struct {
	Value
	history []Write
}

// Store is the emulator's data value table. It is safe for concurrent use.
// Everything it returns is a copy.
type Store struct {
	mu       sync.RWMutex
	values   map[Key]*storedValue
	regs     map[[4]string]Registration
	noop     bool
	accepted int64
	recv     *receiveLog
	// approvals: data set, period, org unit, AOC (UIDs); locks.go
	approvals map[[4]string]bool
}

func newStore(noop bool) *Store {
	return &Store{values: map[Key]*storedValue{}, regs: map[[4]string]Registration{}, noop: noop, recv: newReceiveLog(),
		approvals: map[[4]string]bool{}}
}

func (s *Store) get(k Key) (Value, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.values[k]
	if !ok {
		return Value{}, false
	}
	return v.Value, true
}

// Get returns the stored row for k, including soft-deleted rows.
func (s *Store) Get(k Key) (Value, bool) { return s.get(k) }

// Values returns every live (not deleted) value, sorted by key.
func (s *Store) Values() []Value { return s.collect(false) }

// AllValues returns every row including soft-deleted ones, sorted by key.
func (s *Store) AllValues() []Value { return s.collect(true) }

func (s *Store) collect(deleted bool) []Value {
	s.mu.RLock()
	out := make([]Value, 0, len(s.values))
	for _, v := range s.values {
		if deleted || !v.Deleted {
			out = append(out, v.Value)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Value) int { return compareKeys(a.Key, b.Key) })
	return out
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.DataElement, b.DataElement), cmp.Compare(a.Period, b.Period),
		cmp.Compare(a.OrgUnit, b.OrgUnit), cmp.Compare(a.CategoryOptionCombo, b.CategoryOptionCombo),
		cmp.Compare(a.AttributeOptionCombo, b.AttributeOptionCombo))
}

// Len returns the number of live values.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, v := range s.values {
		if !v.Deleted {
			n++
		}
	}
	return n
}

// History returns every write to k, oldest first.
func (s *Store) History(k Key) []Write {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if v, ok := s.values[k]; ok {
		return slices.Clone(v.history)
	}
	return nil
}

// Accepted returns how many value writes the store has accepted. With
// WithNoopStore it is the only thing the store keeps.
func (s *Store) Accepted() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.accepted
}

// Put stores v directly (no validation, no import counting) and records a
// history entry with request id "seed". Tests use it to prepare state.
func (s *Store) Put(v Value) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op := OpCreate
	old := s.values[v.Key]
	var hist []Write
	if old != nil {
		hist = old.history
		op = OpUpdate
	}
	if v.Created.IsZero() {
		v.Created = time.Now().UTC()
	}
	if v.LastUpdated.IsZero() {
		v.LastUpdated = v.Created
	}
	w := Write{Time: v.LastUpdated, RequestID: "seed", Operation: op, NewValue: v.Value, NewComment: v.Comment, StoredBy: v.StoredBy, Audited: true}
	if old != nil {
		w.OldValue, w.OldComment = old.Value.Value, old.Comment
	}
	s.values[v.Key] = &storedValue{Value: v, history: append(hist, w)}
}

// Reset removes every value, registration, history and receive count.
func (s *Store) Reset() {
	s.mu.Lock()
	s.values = map[Key]*storedValue{}
	s.regs = map[[4]string]Registration{}
	s.approvals = map[[4]string]bool{}
	s.accepted = 0
	s.mu.Unlock()
	s.ResetReceived()
}

// acceptUnchecked counts n values taken on the no-op fast path.
func (s *Store) acceptUnchecked(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted += int64(n)
}

// write applies one import write under the store lock.
func (s *Store) write(v Value, w Write) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted++
	if s.noop {
		return
	}
	cur := s.values[v.Key]
	if cur == nil {
		cur = &storedValue{}
		s.values[v.Key] = cur
	}
	cur.Value = v
	cur.history = append(cur.history, w)
}

// Registrations returns the complete data set registrations, sorted.
func (s *Store) Registrations() []Registration {
	s.mu.RLock()
	out := make([]Registration, 0, len(s.regs))
	for _, r := range s.regs {
		out = append(out, r)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Registration) int {
		return cmp.Or(cmp.Compare(a.DataSet, b.DataSet), cmp.Compare(a.Period, b.Period),
			cmp.Compare(a.OrgUnit, b.OrgUnit), cmp.Compare(a.AttributeOptionCombo, b.AttributeOptionCombo))
	})
	return out
}

// PutRegistration stores (or replaces) a complete registration.
func (s *Store) PutRegistration(r Registration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regs[[4]string{r.DataSet, r.Period, r.OrgUnit, r.AttributeOptionCombo}] = r
}

// DeleteRegistration removes a registration; it reports whether one existed.
func (s *Store) DeleteRegistration(dataSet, period, orgUnit, aoc string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [4]string{dataSet, period, orgUnit, aoc}
	_, ok := s.regs[k]
	delete(s.regs, k)
	return ok
}
