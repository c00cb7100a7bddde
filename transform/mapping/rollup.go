package mapping

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// RollupStore keeps, for each value that periods: rollup adds up, what each constituent
// period contributed so far, so that a longer period is the sum of every part received,
// whatever payload each part came in: a May-only payload after an April one makes 2026Q2
// April + May, not May alone. The mediator backs it with the tally_state KV bucket (one
// entry per rolled value, JetStream KV's revisions for Put); the engine decides what is
// stored and how.
//
// Keys are "rollup.<target>.<source>.<data element>.<period>.<org unit>.<category option
// combo>.<attribute option combo>", the objects by DHIS2 uid and the period the target
// receives (rollup.hmis.cht.jsgJ0Wu8FxT.2026Q2.muaptt0Azn0.HllvX50cXC0.HllvX50cXC0); a
// token with other characters than letters, digits, '-' and '_' is written as "x" and
// 32 hex digits of its SHA-256. The value is JSON, {"v":1,"period":"2026Q2","parts":
// {"202604":"3","202605":"4"}}: the constituent periods and what each contributed.
//
// A constituent sent again replaces its earlier contribution (a corrected May replaces
// May); a deleted or empty one removes its contribution, and when none is left the rolled
// value is delivered as a deletion. Values of one batch for the same constituent are first
// settled by the source's duplicates policy. A value sent for the longer period itself is
// delivered as it is and leaves the store alone, so a later part adds up the parts alone
// again; a source should send either the parts or the whole. Because contributions replace
// rather than add, mapping a batch again (a retry, a replay) stores the same thing.
type RollupStore interface {
	// Get returns the record stored under key and its revision; a key never stored (KV:
	// jetstream.ErrKeyNotFound, or a deleted key) gives nil, 0 and no error.
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	// Put stores value under key if the key is still at revision (0: the key must not
	// exist yet; KV: Create, else Update), and returns an error wrapping
	// ErrRollupConflict when another writer stored it first (KV: jetstream.ErrKeyExists,
	// jetstream.ErrKeyRevisionMismatch); the engine then reads it again.
	Put(ctx context.Context, key string, value []byte, revision uint64) error
}

// ErrRollupConflict is wrapped by RollupStore.Put when the key is no longer at the given
// revision.
var ErrRollupConflict = errors.New("roll-up record changed since it was read")

// maxRollupAttempts bounds the read-modify-write rounds when writers keep colliding.
const maxRollupAttempts = 8

const rollupVersion = 1

type rollupRecord struct {
	V      int               `json:"v"`
	Period string            `json:"period"`
	Parts  map[string]string `json:"parts"`
}

// rollupKey is the store key of a rolled value (see RollupStore).
func rollupKey(target, source, pe string, u rollUIDs) string {
	toks := []string{"rollup", target, source, u.de, pe, u.ou, u.coc, u.aoc}
	for i := 1; i < len(toks); i++ {
		toks[i] = keyToken(toks[i])
	}
	return strings.Join(toks, ".")
}

var plainToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func keyToken(s string) string {
	if plainToken.MatchString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "x" + hex.EncodeToString(sum[:16])
}

// rollAcross adds the earlier payloads' parts of slot i's rolled value, from the store, and
// stores this batch's parts in their place.
func (r *run) rollAcross(ctx context.Context, i int) error {
	s, v := &r.slots[i], &r.vals[i]
	own := map[string]*contribution{}
	for _, pt := range s.parts() {
		c := own[pt.period]
		if c == nil {
			c = &contribution{}
			own[pt.period] = c
		}
		if live(pt.v) {
			c.sum.add(pt.v.Value)
			c.n++
		}
	}
	source := r.pol.source
	if source == "" {
		source = r.in.Source
	}
	key := rollupKey(r.target, source, v.Period, s.x.uids)
	rec, err := r.mergeRollup(ctx, key, v.Period, own)
	if err != nil {
		return err
	}
	var total accum
	n := 0
	for _, part := range rec.Parts {
		total.add(part) // stored parts are numbers: settle refused the others
		n++
	}
	v.Value, v.Deleted = sumText(&total, n)
	return nil
}

type contribution struct {
	sum accum
	n   int
}

// mergeRollup reads the record of key, replaces the constituents this batch has, and
// writes it back unless the store is read-only, again from the read if another writer
// came first.
func (r *run) mergeRollup(ctx context.Context, key, pe string, own map[string]*contribution) (*rollupRecord, error) {
	store := r.opts.Rollup
	for range maxRollupAttempts {
		data, rev, err := store.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("roll-up store: reading %s: %w", key, err)
		}
		rec := &rollupRecord{V: rollupVersion, Period: pe, Parts: map[string]string{}}
		if data != nil {
			if err := json.Unmarshal(data, rec); err != nil || !rec.valid() {
				return nil, fmt.Errorf("roll-up store: %s holds no version-%d record (%.80q); delete the key to start its sum afresh", key, rollupVersion, data)
			}
		}
		for from, c := range own {
			if c.n == 0 {
				delete(rec.Parts, from)
			} else {
				rec.Parts[from] = c.sum.String()
			}
		}
		if r.opts.RollupReadOnly {
			return rec, nil
		}
		enc, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		err = store.Put(ctx, key, enc, rev)
		if errors.Is(err, ErrRollupConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("roll-up store: writing %s: %w", key, err)
		}
		return rec, nil
	}
	return nil, fmt.Errorf("roll-up store: %s kept changing under %d attempts: %w", key, maxRollupAttempts, ErrRollupConflict)
}

// valid reports whether a record read from the store is one this version writes.
func (rec *rollupRecord) valid() bool {
	if rec.V != rollupVersion || rec.Parts == nil {
		return false
	}
	for _, v := range rec.Parts {
		if !isDecimal(v) {
			return false
		}
	}
	return true
}
