package exchange

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/transform"
)

// Exchange state in tally_state (one bucket shared with the metadata cache):
//
//	exchange.<name>.tick                       the last scheduled tick claimed (RFC 3339)
//	exchange.<name>.lease                      who runs the exchange now, and until when
//	exchange.<name>.health                     failing since, failures, what was notified
//	exchange.<name>.last                       the last run's summary
//	exchange.<name>.delivered.<target>.<request>.<period>[.c<i>]
//	                                           the target keys a request delivered for a period
//
// <request> is a hash of the request's name (names may hold any character). The delivered
// sets are gzip-compressed JSON with a string table; one larger than stateChunk bytes is
// split over chunk keys, since a value must fit in a NATS message.

const stateChunk = 512 << 10

func exchangeKey(name string, parts ...string) string {
	return "exchange." + name + "." + strings.Join(parts, ".")
}

// requestToken is the key token of a request: a short hash of its name.
func requestToken(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "r" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:8]))
}

// stateStore reads and writes an exchange's keys in tally_state.
type stateStore struct {
	kv    jetstream.KeyValue
	owner string // who takes leases: this process
	log   *slog.Logger
	now   func() time.Time
}

// errExchangeBusy means a run of the exchange is under way (here or on another replica).
var errExchangeBusy = errors.New("a run of this exchange is under way")

// claimTick records that the scheduled tick at has been taken, and reports whether this
// caller took it: every replica computes the same ticks, and only the one whose
// compare-and-set moves exchange.<name>.tick forward runs it.
func (st *stateStore) claimTick(ctx context.Context, name string, at time.Time) (bool, error) {
	kv := st.kv
	key := exchangeKey(name, "tick")
	val := []byte(at.UTC().Format(time.RFC3339))
	for range 20 {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := kv.Create(ctx, key, val); err == nil {
				return true, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return false, fmt.Errorf("claiming tick of %s: %w", name, err)
			}
			continue
		}
		if err != nil {
			return false, fmt.Errorf("claiming tick of %s: %w", name, err)
		}
		last, perr := time.Parse(time.RFC3339, string(e.Value()))
		if perr == nil && !at.After(last) {
			return false, nil
		}
		if _, err := kv.Update(ctx, key, val, e.Revision()); err == nil {
			return true, nil
		}
		// Another replica moved it meanwhile: look again.
	}
	return false, fmt.Errorf("claiming tick of %s: too much contention", name)
}

type leaseRecord struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// acquireLease takes exchange.<name>.lease for ttl, or fails with errExchangeBusy while
// another holder's lease runs. The returned function releases it. A holder that dies
// leaves a lease that expires after ttl (the run's timeout).
func (st *stateStore) acquireLease(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	kv := st.kv
	key := exchangeKey(name, "lease")
	rec, _ := json.Marshal(leaseRecord{Owner: st.owner, Until: time.Now().Add(ttl).UTC()})
	var rev uint64
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			return nil, fmt.Errorf("taking the lease of %s: too much contention", name)
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if rev, err = kv.Create(ctx, key, rec); err == nil {
				break
			}
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return nil, fmt.Errorf("taking the lease of %s: %w", name, err)
		}
		if err != nil {
			return nil, fmt.Errorf("taking the lease of %s: %w", name, err)
		}
		var cur leaseRecord
		if json.Unmarshal(e.Value(), &cur) == nil && time.Now().Before(cur.Until) {
			return nil, errExchangeBusy
		}
		if rev, err = kv.Update(ctx, key, rec, e.Revision()); err == nil {
			break
		}
	}
	return func() {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pipeline.BookkeepingTimeout)
		defer cancel()
		if err := kv.Delete(bctx, key, jetstream.LastRevision(rev)); err != nil {
			st.log.Warn("releasing exchange lease", "exchange", name, "err", err)
		}
	}, nil
}

// key4 is a delivered value's key without its period.
type key4 struct{ de, ou, coc, aoc string }

// deliveredSet is what a request delivered to a target for one period.
type deliveredSet struct {
	Schemes transform.IDSchemes
	Keys    map[key4]struct{}
}

type wireDelivered struct {
	Schemes transform.IDSchemes `json:"schemes"`
	Updated time.Time           `json:"updated"`
	Strings []string            `json:"strings"`
	Keys    [][4]int            `json:"keys"`
}

type chunkMarker struct {
	Chunks int `json:"chunks"`
}

func deliveredPrefix(exch, target, request string) string {
	return exchangeKey(exch, "delivered", target, requestToken(request))
}

// storedPeriods lists the periods for which a request has a delivered set at a target.
func (st *stateStore) storedPeriods(ctx context.Context, exch, target, request string) ([]string, error) {
	prefix := deliveredPrefix(exch, target, request)
	lister, err := st.kv.ListKeysFiltered(ctx, prefix+".*")
	if err != nil {
		return nil, fmt.Errorf("listing delivered sets: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var out []string
	for k := range lister.Keys() {
		out = append(out, strings.TrimPrefix(k, prefix+"."))
	}
	return out, nil
}

func (st *stateStore) loadDelivered(ctx context.Context, exch, target, request, pe string) (*deliveredSet, error) {
	kv := st.kv
	key := deliveredPrefix(exch, target, request) + "." + pe
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	data := e.Value()
	if len(data) > 0 && data[0] == '{' {
		var m chunkMarker
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("reading %s: %w", key, err)
		}
		var all []byte
		for i := range m.Chunks {
			c, err := kv.Get(ctx, key+".c"+strconv.Itoa(i))
			if err != nil {
				return nil, fmt.Errorf("reading %s chunk %d: %w", key, i, err)
			}
			all = append(all, c.Value()...)
		}
		data = all
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	var w wireDelivered
	if err := json.NewDecoder(io.LimitReader(zr, 1<<30)).Decode(&w); err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	ds := &deliveredSet{Schemes: w.Schemes, Keys: make(map[key4]struct{}, len(w.Keys))}
	str := func(i int) string {
		if i <= 0 || i > len(w.Strings) {
			return ""
		}
		return w.Strings[i-1]
	}
	for _, k := range w.Keys {
		ds.Keys[key4{str(k[0]), str(k[1]), str(k[2]), str(k[3])}] = struct{}{}
	}
	return ds, nil
}

func (st *stateStore) storeDelivered(ctx context.Context, exch, target, request, pe string, ds *deliveredSet) error {
	kv := st.kv
	key := deliveredPrefix(exch, target, request) + "." + pe
	if ds == nil || len(ds.Keys) == 0 {
		return st.deleteDelivered(ctx, key)
	}
	w := wireDelivered{Schemes: ds.Schemes, Updated: st.now().UTC(), Keys: make([][4]int, 0, len(ds.Keys))}
	index := map[string]int{}
	ref := func(v string) int {
		if v == "" {
			return 0
		}
		if i, ok := index[v]; ok {
			return i
		}
		w.Strings = append(w.Strings, v)
		index[v] = len(w.Strings)
		return len(w.Strings)
	}
	for k := range ds.Keys {
		w.Keys = append(w.Keys, [4]int{ref(k.de), ref(k.ou), ref(k.coc), ref(k.aoc)})
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(w); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	data := buf.Bytes()
	if len(data) <= stateChunk {
		if _, err := kv.Put(ctx, key, data); err != nil {
			return fmt.Errorf("writing %s: %w", key, err)
		}
		return nil
	}
	n := 0
	for off := 0; off < len(data); off += stateChunk {
		if _, err := kv.Put(ctx, key+".c"+strconv.Itoa(n), data[off:min(off+stateChunk, len(data))]); err != nil {
			return fmt.Errorf("writing %s chunk %d: %w", key, n, err)
		}
		n++
	}
	marker, _ := json.Marshal(chunkMarker{Chunks: n})
	if _, err := kv.Put(ctx, key, marker); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

func (st *stateStore) deleteDelivered(ctx context.Context, key string) error {
	kv := st.kv
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	if data := e.Value(); len(data) > 0 && data[0] == '{' {
		var m chunkMarker
		if json.Unmarshal(data, &m) == nil {
			for i := range m.Chunks {
				_ = kv.Purge(ctx, key+".c"+strconv.Itoa(i))
			}
		}
	}
	if err := kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// exchangeHealth is what notifications need to know across runs and replicas.
type exchangeHealth struct {
	Failing  bool      `json:"failing"`
	Since    time.Time `json:"since,omitzero"`
	Failures int       `json:"failures,omitempty"`
	// Notified says "failed" was sent for the current outage; LastNotified when.
	Notified     bool      `json:"notified,omitempty"`
	LastNotified time.Time `json:"lastNotified,omitzero"`
	LastError    string    `json:"lastError,omitempty"`
	LastSuccess  time.Time `json:"lastSuccess,omitzero"`
}

func (st *stateStore) loadJSONState(ctx context.Context, key string, v any) (uint64, error) {
	e, err := st.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return e.Revision(), fmt.Errorf("decoding %s: %w", key, err)
	}
	return e.Revision(), nil
}

func (st *stateStore) putJSONState(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := st.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}
