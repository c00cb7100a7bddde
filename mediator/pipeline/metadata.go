package pipeline

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/metadata"
)

// MetadataCache is the mapping engine's MetadataProvider: each target's metadata is read
// from DHIS2, kept in memory and in tally_state (gzip-compressed JSON, so that every
// replica and a restart reuse it), and read again when target.metadata_refresh has passed.
// When a refresh fails, the copy in hand is used and the failure logged: a DHIS2 that is
// down must not stop mapping with metadata that was good an hour ago. It also knows each
// target's DHIS2 release (Release). It is safe for concurrent use.
type MetadataCache struct {
	cfg     *config.Config
	clients map[string]*dhis2.Client
	state   jetstream.KeyValue // tally_state
	log     *slog.Logger
	now     func() time.Time

	// mu serialises reading a target's metadata (from tally_state or DHIS2), so that it is
	// read once; m holds what was read, by target (*CachedMetadata, never changed once
	// stored), so that mapping at ingest takes it without waiting on mu (atHand).
	mu sync.Mutex
	m  sync.Map
	// indexes are the lookups of the snapshot in hand, by target (built on first use).
	indexes map[string]*mapping.Index
	// failed remembers when a target's release could not be read (Release).
	relMu  sync.Mutex
	failed map[string]time.Time
}

var _ mapping.MetadataProvider = (*MetadataCache)(nil)

// CachedMetadata is a target's metadata and when it was read.
type CachedMetadata struct {
	MD      *metadata.Metadata `json:"metadata"`
	Fetched time.Time          `json:"fetched"`
}

// NewMetadataCache reads the metadata of the targets of cfg through their clients, keeping
// it in state (the tally_state bucket).
func NewMetadataCache(cfg *config.Config, clients map[string]*dhis2.Client, state jetstream.KeyValue,
	log *slog.Logger, now func() time.Time) *MetadataCache {
	return &MetadataCache{cfg: cfg, clients: clients, state: state, log: log, now: now,
		indexes: map[string]*mapping.Index{}, failed: map[string]time.Time{}}
}

// fetch reads a target's metadata, with its release: the release decides which period ids
// the target reads (mapping refuses the others), and reading it with the metadata lets an
// upgrade be seen on refresh.
func (c *MetadataCache) fetch(ctx context.Context, target string) (*metadata.Metadata, error) {
	client, ok := c.clients[target]
	if !ok {
		return nil, fmt.Errorf("no target %q", target)
	}
	md, err := client.FetchMappingMetadata(ctx, dhis2.ListOptions{})
	if err != nil {
		return nil, err
	}
	if info, err := client.SystemInfo(ctx); err == nil {
		md.SystemRelease = info.Release.Release()
	} else {
		c.log.Warn("reading the target's DHIS2 version with its metadata; periods are not checked against it",
			"target", target, "err", err)
	}
	return md, nil
}

// Index returns the lookup index of a target's metadata, built once per snapshot.
func (c *MetadataCache) Index(ctx context.Context, target string) (*mapping.Index, error) {
	md, err := c.Metadata(ctx, target)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	ix := c.indexes[target]
	c.mu.Unlock()
	if ix != nil && ix.Metadata() == md {
		return ix, nil
	}
	ix = mapping.NewIndex(md) // outside the lock; a concurrent duplicate is harmless
	c.mu.Lock()
	c.indexes[target] = ix
	c.mu.Unlock()
	return ix, nil
}

func stateKeyMetadata(target string) string { return "metadata." + target }

// Metadata returns the target's metadata, the same pointer until it is refreshed. On a
// context marked by atHandOnly it never waits: only a fresh copy in memory is returned.
func (c *MetadataCache) Metadata(ctx context.Context, target string) (*metadata.Metadata, error) {
	if atHandOnly(ctx) {
		return c.atHand(target)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.ttl(target)
	now := c.now()
	cur := c.cached(target)
	if cur == nil {
		if stored, err := c.load(ctx, target); err == nil {
			cur = stored
			c.m.Store(target, cur)
		}
	}
	if cur != nil && now.Sub(cur.Fetched) < ttl {
		return cur.MD, nil
	}
	fresh, err := c.refreshLocked(ctx, target)
	if err != nil {
		if cur != nil {
			c.log.Warn("refreshing target metadata failed; using the copy from "+cur.Fetched.Format(time.RFC3339),
				"target", target, "err", err)
			return cur.MD, nil
		}
		return nil, err
	}
	return fresh.MD, nil
}

// ttl is how long a target's metadata is used before it is read again.
func (c *MetadataCache) ttl(target string) time.Duration {
	if t, ok := c.cfg.Target(target); ok {
		return t.MetadataRefresh.D()
	}
	return time.Hour
}

// atHandKey marks a context whose mapping must not wait for metadata (see atHandOnly).
type atHandKey struct{}

// withAtHandOnly marks ctx so that the metadata cache answers from memory only: mapping at
// ingest (Direct) must answer a client in the time a store takes, never in the time a DHIS2
// that is slow or down takes to serve its metadata. What is not at hand is left to the
// mapper stage, which waits for it.
func withAtHandOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, atHandKey{}, true)
}

func atHandOnly(ctx context.Context) bool { return ctx.Value(atHandKey{}) != nil }

// errNotAtHand is the metadata a context marked by withAtHandOnly could not have.
var errNotAtHand = errors.New("the target's metadata is not in memory, or due for a refresh")

// cached is the target's metadata in memory, nil when none was read yet.
func (c *MetadataCache) cached(target string) *CachedMetadata {
	cur, _ := c.m.Load(target)
	cm, _ := cur.(*CachedMetadata)
	return cm
}

// atHand is the target's metadata if it is in memory and fresh, without waiting for a
// read or refresh in progress.
func (c *MetadataCache) atHand(target string) (*metadata.Metadata, error) {
	cur := c.cached(target)
	if cur == nil || c.now().Sub(cur.Fetched) >= c.ttl(target) {
		return nil, errNotAtHand
	}
	return cur.MD, nil
}

// releaseAtHand is Release without asking the target: ok is false when only asking would
// tell.
func (c *MetadataCache) releaseAtHand(target string) (rel int, ok bool) {
	client, found := c.clients[target]
	if !found {
		return 0, true
	}
	if v, known := client.ServerVersion(); known {
		return v.Release(), true
	}
	c.relMu.Lock()
	defer c.relMu.Unlock()
	if at, failed := c.failed[target]; failed && c.now().Sub(at) < releaseRetry {
		return 0, true // asked a moment ago and failed: 0 until releaseRetry has passed
	}
	return 0, false
}

// Refresh reads the target's metadata now.
func (c *MetadataCache) Refresh(ctx context.Context, target string) (*CachedMetadata, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx, target)
}

func (c *MetadataCache) refreshLocked(ctx context.Context, target string) (*CachedMetadata, error) {
	md, err := c.fetch(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of target %s: %w", target, err)
	}
	cm := &CachedMetadata{MD: md, Fetched: c.now().UTC()}
	c.m.Store(target, cm)
	if err := c.store(ctx, target, cm); err != nil {
		c.log.Warn("caching target metadata in tally_state", "target", target, "err", err)
	}
	return cm, nil
}

func (c *MetadataCache) store(ctx context.Context, target string, cm *CachedMetadata) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(cm); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	_, err := c.state.Put(ctx, stateKeyMetadata(target), buf.Bytes())
	return err
}

func (c *MetadataCache) load(ctx context.Context, target string) (*CachedMetadata, error) {
	e, err := c.state.Get(ctx, stateKeyMetadata(target))
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(e.Value()))
	if err != nil {
		return nil, err
	}
	var cm CachedMetadata
	if err := json.NewDecoder(io.LimitReader(zr, 512<<20)).Decode(&cm); err != nil {
		return nil, err
	}
	return &cm, nil
}

// releaseRetry is how long a target whose release could not be read is not asked again,
// so that an ingest never waits on a target that is down more than once in a while.
const releaseRetry = time.Minute

// releaseTimeout bounds reading a target's release on the ingest path.
const releaseTimeout = 3 * time.Second

// Release returns a target's DHIS2 release (40 for 2.40), 0 when unknown: the version its
// client last read, else GET /api/system/info, asked at most once per releaseRetry while
// it fails.
func (c *MetadataCache) Release(ctx context.Context, target string) int {
	if rel, ok := c.releaseAtHand(target); ok {
		return rel
	}
	client := c.clients[target]
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	info, err := client.SystemInfo(ctx)
	if err != nil || info.Release.Release() == 0 {
		c.relMu.Lock()
		c.failed[target] = c.now()
		c.relMu.Unlock()
		c.log.Warn("reading a target's DHIS2 version", "target", target, "err", err)
		return 0
	}
	return info.Release.Release()
}
