package txlog

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Listing transactions reads every ingest record of the bucket to order them by time, which
// with 100,000 transactions takes most of a second. Follow keeps those records in memory
// instead, following the bucket's changes, so that a page of the list reads only the page's
// own records. Until Follow has read the bucket once (or when it is not running), List reads
// the bucket as before. Records leave the copy when the bucket's TTL expires them, as they
// leave the bucket (which writes no delete marker for an expiry).
//
// The copy is bounded: it keeps the newest maxFollowed transactions (by the time they were
// received, at a few hundred bytes each). Once it has dropped older ones it is no longer
// complete, and a list it cannot fill from the newest transactions it holds (a filter that
// matches few of them, a page far back) reads the bucket, as without the copy.

// maxFollowed is how many ingest records the copy keeps: a month of a busy national
// deployment's pushes (thousands a day) fits, at tens of MiB.
const maxFollowed = 100_000

// recordCache is the followed copy of the ingest records.
type recordCache struct {
	mu    sync.Mutex
	ready bool
	ttl   time.Duration
	byID  map[string]cachedRecord
	// sorted is byID newest first; nil when it must be rebuilt.
	sorted []cachedRecord
	// max is maxFollowed, or smaller in tests; truncated says older records were dropped.
	max       int
	truncated bool
}

type cachedRecord struct {
	rec     *TxRecord
	written time.Time // the entry's time: the TTL counts from the last write
}

// Follow keeps the copy of the ingest records until ctx ends; the composition root runs it
// in the background. It returns when ctx ends or the watch fails (List then reads the
// bucket again).
func (l *TxLog) Follow(ctx context.Context) error {
	c := l.cache
	var ttl time.Duration
	if st, err := l.kv.Status(ctx); err == nil {
		ttl = st.TTL()
	}
	w, err := l.kv.Watch(ctx, "*")
	if err != nil {
		return err
	}
	defer func() {
		_ = w.Stop()
		c.mu.Lock()
		c.ready, c.byID, c.sorted = false, nil, nil
		c.mu.Unlock()
	}()
	c.mu.Lock()
	c.byID, c.sorted, c.ttl, c.truncated = map[string]cachedRecord{}, nil, ttl, false
	c.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			c.apply(e)
		}
	}
}

// apply takes one change of the bucket; nil marks the end of the initial values.
func (c *recordCache) apply(e jetstream.KeyValueEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e == nil {
		c.ready = true
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(c.byID, e.Key())
		c.sorted = nil
		return
	}
	var rec TxRecord
	if json.Unmarshal(e.Value(), &rec) != nil {
		return
	}
	c.byID[e.Key()] = cachedRecord{rec: listed(&rec), written: e.Created()}
	c.sorted = nil
	c.trim()
}

// trim drops the oldest records once the copy holds a tenth more than its bound, back down to
// the bound: one sort per maxFollowed/10 writes rather than one per write.
func (c *recordCache) trim() {
	limit := c.max
	if limit <= 0 {
		limit = maxFollowed
	}
	if len(c.byID) <= limit+limit/10 {
		return
	}
	c.sort()
	for _, r := range c.sorted[limit:] {
		delete(c.byID, r.rec.ID)
	}
	c.sorted = c.sorted[:limit:limit]
	c.truncated = true
}

// sort builds sorted from byID when it is stale.
func (c *recordCache) sort() {
	if c.sorted != nil {
		return
	}
	c.sorted = make([]cachedRecord, 0, len(c.byID))
	for _, r := range c.byID {
		c.sorted = append(c.sorted, r)
	}
	slices.SortFunc(c.sorted, func(a, b cachedRecord) int { return b.rec.Received.Compare(a.rec.Received) })
}

// listed is the part of a record the copy keeps: what lists show and filter on, without the
// conflicts, notes and exchange summary (up to kilobytes each), so that the copy stays near
// 200 bytes a transaction.
func listed(rec *TxRecord) *TxRecord {
	cp := *rec
	cp.Conflicts, cp.Notes, cp.Exchange = nil, nil, nil
	return &cp
}

// list returns the followed records newest first, or false when the copy is not ready;
// complete says whether they are all the bucket holds (no older record was dropped).
func (c *recordCache) list(now time.Time) (recs []*TxRecord, complete, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return nil, false, false
	}
	c.sort()
	out := make([]*TxRecord, 0, len(c.sorted))
	for _, r := range c.sorted {
		if c.ttl > 0 && now.Sub(r.written) > c.ttl {
			continue // expired in the bucket
		}
		out = append(out, r.rec)
	}
	return out, !c.truncated, true
}

// Following reports whether List serves from the followed copy.
func (l *TxLog) Following() bool {
	l.cache.mu.Lock()
	defer l.cache.mu.Unlock()
	return l.cache.ready
}

// put takes a record this process just wrote, so that a List right after the write sees it
// (the watch brings it a moment later, and brings other replicas' records).
func (c *recordCache) put(rec *TxRecord) {
	cp := listed(rec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		return
	}
	c.byID[cp.ID] = cachedRecord{rec: cp, written: time.Now()}
	c.sorted = nil
	c.trim()
}
