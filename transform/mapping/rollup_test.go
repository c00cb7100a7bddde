package mapping

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// memRollup is an in-memory RollupStore with the semantics of a JetStream KV bucket, which
// backs it in the mediator: every write gets the next revision of the bucket, a Create
// (revision 0) fails when the key exists and an Update fails when the key is no longer at
// the revision given (nats.go jetstream/kv.go: Create returns ErrKeyExists and Update
// wraps ErrKeyRevisionMismatch on JetStream's "wrong last sequence", codes 10071/10164).
type memRollup struct {
	mu      sync.Mutex
	seq     uint64
	entries map[string]memEntry
	puts    int
	// another, when set, runs before a Put as a concurrent writer would, and returns
	// whether it should run again next time.
	another func(s *memRollup, key string) bool
	getErr  error
}

type memEntry struct {
	value []byte
	rev   uint64
}

func newMemRollup() *memRollup { return &memRollup{entries: map[string]memEntry{}} }

func (s *memRollup) Get(_ context.Context, key string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, 0, s.getErr
	}
	e, ok := s.entries[key]
	if !ok {
		return nil, 0, nil
	}
	return append([]byte(nil), e.value...), e.rev, nil
}

func (s *memRollup) Put(_ context.Context, key string, value []byte, rev uint64) error {
	if s.another != nil && !s.another(s, key) {
		s.another = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(key, value, rev)
}

func (s *memRollup) putLocked(key string, value []byte, rev uint64) error {
	if cur := s.entries[key]; cur.rev != rev {
		return fmt.Errorf("key %s at revision %d, not %d: %w", key, cur.rev, rev, ErrRollupConflict)
	}
	s.seq++
	s.puts++
	s.entries[key] = memEntry{value: append([]byte(nil), value...), rev: s.seq}
	return nil
}

// write stores a record as another replica would.
func (s *memRollup) write(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.putLocked(key, []byte(value), s.entries[key].rev); err != nil {
		panic(err)
	}
}

func (s *memRollup) record(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.entries[key].value)
}

const q2Key = "rollup.hmis-q.src.jsgJ0Wu8FxT.2024Q2.muaptt0Azn0.HllvX50cXC0.HllvX50cXC0"

// TestMapRollupAcrossPayloads: a quarter is the sum of every month received so far, in
// whatever payload each came; a month sent again replaces its contribution, a deleted one
// removes it.
func TestMapRollupAcrossPayloads(t *testing.T) {
	e := newTestEngine(t)
	store := newMemRollup()
	src := &Source{Name: "src", Mapping: "rollup", Duplicates: "sum"}
	code := &Target{Name: "hmis-q", IDSchemes: Schemes{IDScheme: "CODE"}}
	uid := &Target{Name: "hmis-q"}
	hh := func(pe, value string) transform.DataValue { return dv("HH", pe, "KL_N_F1", "", "", value) }
	gone := func(pe string) transform.DataValue {
		return transform.DataValue{DataElement: "HH", Period: pe, OrgUnit: "KL_N_F1", Deleted: true}
	}
	steps := []struct {
		name   string
		target *Target
		values []transform.DataValue
		want   string
		record string
	}{
		{"April and May", code, []transform.DataValue{hh("202404", "3"), hh("202405", "4")},
			"CHW_HOUSEHOLD_VISITS 2024Q2 KL_N_F1 default default 7 #0", `{"v":1,"period":"2024Q2","parts":{"202404":"3","202405":"4"}}`},
		{"a corrected May alone", code, []transform.DataValue{hh("202405", "5")},
			"CHW_HOUSEHOLD_VISITS 2024Q2 KL_N_F1 default default 8 #0", `{"v":1,"period":"2024Q2","parts":{"202404":"3","202405":"5"}}`},
		{"the same payload again (a retry)", code, []transform.DataValue{hh("202405", "5")},
			"CHW_HOUSEHOLD_VISITS 2024Q2 KL_N_F1 default default 8 #0", `{"v":1,"period":"2024Q2","parts":{"202404":"3","202405":"5"}}`},
		{"June twice in one payload, summed first; the target now sent UIDs", uid, []transform.DataValue{hh("202406", "1"), hh("202406", "1.5")},
			"jsgJ0Wu8FxT 2024Q2 muaptt0Azn0 HllvX50cXC0 HllvX50cXC0 10.5 #0", `{"v":1,"period":"2024Q2","parts":{"202404":"3","202405":"5","202406":"2.5"}}`},
		{"April deleted", code, []transform.DataValue{gone("202404")},
			"CHW_HOUSEHOLD_VISITS 2024Q2 KL_N_F1 default default 7.5 #0", `{"v":1,"period":"2024Q2","parts":{"202405":"5","202406":"2.5"}}`},
		{"the rest deleted", code, []transform.DataValue{gone("202405"), hh("202406", "")},
			"CHW_HOUSEHOLD_VISITS 2024Q2 KL_N_F1 default default  #0 deleted", `{"v":1,"period":"2024Q2","parts":{}}`},
	}
	for _, st := range steps {
		in := &transform.Batch{Source: "src", Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: indexed(st.values)}
		m, err := e.MapWith(context.Background(), in, src, st.target, Options{Rollup: store})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if len(m.Batch.Values) != 1 || show(m.Batch.Values[0]) != st.want {
			t.Errorf("%s: values %v, want %s", st.name, m.Batch.Values, st.want)
		}
		if got := store.record(q2Key); got != st.record {
			t.Errorf("%s: record %s, want %s", st.name, got, st.record)
		}
	}
	if len(store.entries) != 1 {
		t.Errorf("store keys: %v", store.entries)
	}
}

func TestMapRollupStore(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	src := &Source{Name: "src", Mapping: "rollup"}
	target := &Target{Name: "hmis-q", IDSchemes: Schemes{IDScheme: "CODE"}}
	may := &transform.Batch{Source: "src", Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: []transform.DataValue{dv("HH", "202405", "KL_N_F1", "", "", "4")}}
	mapOne := func(store RollupStore, readOnly bool, in *transform.Batch) (*transform.Mapped, error) {
		return e.MapWith(ctx, in, src, target, Options{Rollup: store, RollupReadOnly: readOnly})
	}
	value := func(m *transform.Mapped) string {
		if len(m.Batch.Values) != 1 {
			return fmt.Sprint(m.Batch.Values)
		}
		return m.Batch.Values[0].Value
	}

	t.Run("read-only previews the sum and stores nothing", func(t *testing.T) {
		store := newMemRollup()
		store.write(q2Key, `{"v":1,"period":"2024Q2","parts":{"202404":"3"}}`)
		m, err := mapOne(store, true, may)
		if err != nil || value(m) != "7" || store.puts != 1 || store.record(q2Key) != `{"v":1,"period":"2024Q2","parts":{"202404":"3"}}` {
			t.Fatalf("%v %v, puts %d, record %s", m, err, store.puts, store.record(q2Key))
		}
	})
	t.Run("another writer in between: read again", func(t *testing.T) {
		store := newMemRollup()
		store.another = func(s *memRollup, key string) bool {
			s.write(key, `{"v":1,"period":"2024Q2","parts":{"202406":"10"}}`)
			return false
		}
		m, err := mapOne(store, false, may)
		if err != nil || value(m) != "14" || store.record(q2Key) != `{"v":1,"period":"2024Q2","parts":{"202405":"4","202406":"10"}}` {
			t.Fatalf("%v %v, record %s", m, err, store.record(q2Key))
		}
	})
	t.Run("writers that never stop colliding: a transient error", func(t *testing.T) {
		store := newMemRollup()
		store.another = func(s *memRollup, key string) bool {
			s.write(key, `{"v":1,"period":"2024Q2","parts":{}}`)
			return true
		}
		_, err := mapOne(store, false, may)
		if !errors.Is(err, ErrRollupConflict) || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), q2Key) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an unreachable store: a transient error", func(t *testing.T) {
		store := newMemRollup()
		store.getErr = errors.New("nats: timeout")
		_, err := mapOne(store, false, may)
		if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "roll-up store: reading "+q2Key+": nats: timeout") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a record this version did not write", func(t *testing.T) {
		for _, bad := range []string{`{"v":2,"parts":{}}`, `{"v":1,"parts":{"202404":"many"}}`, `not json`} {
			store := newMemRollup()
			store.write(q2Key, bad)
			if _, err := mapOne(store, false, may); err == nil || !strings.Contains(err.Error(), q2Key+" holds no version-1 record") {
				t.Errorf("%s: err = %v", bad, err)
			}
		}
	})
	t.Run("a lone month that is not a number is refused, not stored", func(t *testing.T) {
		store := newMemRollup()
		in := &transform.Batch{Source: "src", Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: []transform.DataValue{dv("HH", "202405", "KL_N_F1", "", "", "n/a")}}
		m, err := mapOne(store, false, in)
		if err != nil || len(m.Batch.Values) != 0 || len(m.Refused) != 1 || m.Refused[0].ErrorCode != "E7619" || store.puts != 0 {
			t.Fatalf("%+v %v", m, err)
		}
	})
	t.Run("a value for the quarter itself leaves the store alone", func(t *testing.T) {
		store := newMemRollup()
		in := &transform.Batch{Source: "src", Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: []transform.DataValue{dv("HH", "2024Q2", "KL_N_F1", "", "", "9")}}
		m, err := mapOne(store, false, in)
		if err != nil || value(m) != "9" || store.puts != 0 {
			t.Fatalf("%+v %v", m, err)
		}
	})
}

func TestRollupKey(t *testing.T) {
	u := rollUIDs{de: "jsgJ0Wu8FxT", ou: "muaptt0Azn0", coc: "HllvX50cXC0", aoc: "HllvX50cXC0"}
	if k := rollupKey("hmis", "cht", "2024Q2", u); k != "rollup.hmis.cht.jsgJ0Wu8FxT.2024Q2.muaptt0Azn0.HllvX50cXC0.HllvX50cXC0" {
		t.Errorf("key %s", k)
	}
	u.ou = "not a uid.x"
	k := rollupKey("hmis", "", "2024Q2", u)
	toks := strings.Split(k, ".")
	// An empty source and an id with a space and a dot become hashes: still one token each.
	hashed := func(tok string) bool { return len(tok) == 33 && tok[0] == 'x' && plainToken.MatchString(tok) }
	if len(toks) != 8 || !hashed(toks[2]) || !hashed(toks[5]) || toks[3] != "jsgJ0Wu8FxT" {
		t.Errorf("key %s", k)
	}
}

// TestMapRollupConcurrentWriters: batches for the months of one quarter mapped at once (by
// several workers or replicas) each keep their part: a writer that loses the race reads
// again. A batch that keeps losing gets ErrRollupConflict and is mapped again, as the
// mediator retries a transient error.
func TestMapRollupConcurrentWriters(t *testing.T) {
	e := newTestEngine(t)
	store := newMemRollup()
	src := &Source{Name: "src", Mapping: "rollup"}
	target := &Target{Name: "hmis-q"}
	months := []string{"202404", "202405", "202406"}
	errs := make(chan error, len(months))
	for i, pe := range months {
		go func() {
			in := &transform.Batch{Source: "src", Schemes: transform.IDSchemes{IDScheme: "CODE"},
				Values: []transform.DataValue{dv("HH", pe, "KL_N_F1", "", "", fmt.Sprint(i+1))}}
			for range 20 {
				for {
					_, err := e.MapWith(context.Background(), in, src, target, Options{Rollup: store})
					if !errors.Is(err, ErrRollupConflict) {
						if err != nil {
							errs <- err
							return
						}
						break
					}
				}
			}
			errs <- nil
		}()
	}
	for range months {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := store.record(q2Key); got != `{"v":1,"period":"2024Q2","parts":{"202404":"1","202405":"2","202406":"3"}}` {
		t.Errorf("record %s", got)
	}
}

// A month that replaces a value of the quarter itself (duplicates: last) is stored under
// the quarter's key like any other month.
func TestMapRollupMonthReplacesQuarter(t *testing.T) {
	e := newTestEngine(t)
	store := newMemRollup()
	in := &transform.Batch{Source: "src", Schemes: transform.IDSchemes{IDScheme: "CODE"}, Values: indexed([]transform.DataValue{
		dv("HH", "2024Q2", "KL_N_F1", "", "", "9"), dv("HH", "202405", "KL_N_F1", "", "", "4")})}
	m, err := e.MapWith(context.Background(), in, &Source{Name: "src", Mapping: "rollup", Duplicates: "last"},
		&Target{Name: "hmis-q"}, Options{Rollup: store})
	if err != nil || len(m.Batch.Values) != 1 || m.Batch.Values[0].Value != "4" ||
		store.record(q2Key) != `{"v":1,"period":"2024Q2","parts":{"202405":"4"}}` {
		t.Fatalf("%+v %v; store %v", m, err, store.entries)
	}
}
