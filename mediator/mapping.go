package mediator

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/metadata"
)

// engineMapper adapts the mapping engine to the mapper stage: a batch the engine rejects
// (a source policy, or values it cannot place) becomes a dead letter, not a retry.
type engineMapper struct{ e *mapping.Engine }

func (m engineMapper) Map(ctx context.Context, in *transform.Batch, src *config.Source, t *config.Target) (*transform.Mapped, error) {
	out, err := m.e.Map(ctx, in, pipeline.MappingSource(src), pipeline.MappingTarget(t))
	if errors.Is(err, mapping.ErrRejected) {
		return nil, fmt.Errorf("%w: %w", ErrMappingRejected, err)
	}
	return out, err
}

// currentMapper is the engine of the current mapping sets, which a reload swaps. The mapper
// stage and replays both map through it, so a replay uses the rules in force.
func (s *Service) currentMapper() Mapper {
	return engineMapper{s.engine.Load()}
}

// liveMapper maps with the engine in force at each call: replays use the rules in force.
type liveMapper struct{ s *Service }

func (m liveMapper) Map(ctx context.Context, in *transform.Batch, src *config.Source, t *config.Target) (*transform.Mapped, error) {
	return m.s.currentMapper().Map(ctx, in, src, t)
}

// metadataCache is the mapping engine's MetadataProvider: each target's metadata is read
// from DHIS2, kept in memory and in tally_state (gzip-compressed JSON, so that every
// replica and a restart reuse it), and read again when target.metadata_refresh has passed.
// When a refresh fails, the copy in hand is used and the failure logged: a DHIS2 that is
// down must not stop mapping with metadata that was good an hour ago.
type metadataCache struct {
	s  *Service
	mu sync.Mutex
	m  map[string]*cachedMetadata
	// fetch reads a target's metadata; tests replace it.
	fetch func(ctx context.Context, target string) (*metadata.Metadata, error)
	// releases remembers targets whose DHIS2 release could not be read (era.go).
	releases *releases
	// indexes are the lookups of the snapshot in hand, by target (built on first use).
	indexes map[string]*mapping.Index
}

// Index returns the lookup index of a target's metadata, built once per snapshot.
func (c *metadataCache) Index(ctx context.Context, target string) (*mapping.Index, error) {
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

type cachedMetadata struct {
	MD      *metadata.Metadata `json:"metadata"`
	Fetched time.Time          `json:"fetched"`
}

func newMetadataCache(s *Service) *metadataCache {
	c := &metadataCache{s: s, m: map[string]*cachedMetadata{}, releases: &releases{failed: map[string]time.Time{}},
		indexes: map[string]*mapping.Index{}}
	c.fetch = func(ctx context.Context, target string) (*metadata.Metadata, error) {
		t, ok := s.targets.Get(target)
		if !ok {
			return nil, fmt.Errorf("no target %q", target)
		}
		md, err := t.Client().FetchMappingMetadata(ctx, dhis2.ListOptions{})
		if err != nil {
			return nil, err
		}
		// The release decides which period ids the target reads (mapping refuses the
		// others); it is read with the metadata, so that an upgrade is seen on refresh.
		if info, err := t.Client().SystemInfo(ctx); err == nil {
			md.SystemRelease = info.Release.Release()
		} else {
			s.log.Warn("reading the target's DHIS2 version with its metadata; periods are not checked against it",
				"target", target, "err", err)
		}
		return md, nil
	}
	return c
}

func stateKeyMetadata(target string) string { return "metadata." + target }

// Metadata returns the target's metadata, the same pointer until it is refreshed.
func (c *metadataCache) Metadata(ctx context.Context, target string) (*metadata.Metadata, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := time.Hour
	if t, ok := c.s.cfg.Target(target); ok {
		ttl = t.MetadataRefresh.D()
	}
	now := c.s.now()
	cur := c.m[target]
	if cur == nil {
		if stored, err := c.load(ctx, target); err == nil {
			cur = stored
			c.m[target] = cur
		}
	}
	if cur != nil && now.Sub(cur.Fetched) < ttl {
		return cur.MD, nil
	}
	fresh, err := c.refreshLocked(ctx, target)
	if err != nil {
		if cur != nil {
			c.s.log.Warn("refreshing target metadata failed; using the copy from "+cur.Fetched.Format(time.RFC3339),
				"target", target, "err", err)
			return cur.MD, nil
		}
		return nil, err
	}
	return fresh.MD, nil
}

// Refresh reads the target's metadata now.
func (c *metadataCache) Refresh(ctx context.Context, target string) (*cachedMetadata, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx, target)
}

func (c *metadataCache) refreshLocked(ctx context.Context, target string) (*cachedMetadata, error) {
	md, err := c.fetch(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of target %s: %w", target, err)
	}
	cm := &cachedMetadata{MD: md, Fetched: c.s.now().UTC()}
	c.m[target] = cm
	if err := c.store(ctx, target, cm); err != nil {
		c.s.log.Warn("caching target metadata in tally_state", "target", target, "err", err)
	}
	return cm, nil
}

func (c *metadataCache) store(ctx context.Context, target string, cm *cachedMetadata) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(cm); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	_, err := c.s.conn.State.Put(ctx, stateKeyMetadata(target), buf.Bytes())
	return err
}

func (c *metadataCache) load(ctx context.Context, target string) (*cachedMetadata, error) {
	if c.s.conn == nil {
		return nil, errors.New("not connected")
	}
	e, err := c.s.conn.State.Get(ctx, stateKeyMetadata(target))
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(e.Value()))
	if err != nil {
		return nil, err
	}
	var cm cachedMetadata
	if err := json.NewDecoder(io.LimitReader(zr, 512<<20)).Decode(&cm); err != nil {
		return nil, err
	}
	return &cm, nil
}

var _ mapping.MetadataProvider = (*metadataCache)(nil)

// ReloadMappings reads the configuration file again and, if its mapping sets compile,
// swaps them in: messages in flight finish with the rules they started with. A bad file
// keeps the rules in force and says why.
func (s *Service) ReloadMappings() error {
	err := s.reloadMappings()
	result := "success"
	if err != nil {
		result = "failure"
	}
	s.mappingReloads.WithLabelValues(result).Inc()
	return err
}

func (s *Service) reloadMappings() error {
	file := s.cfg.File()
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reloading mappings: %w", err)
	}
	cfg, err := config.Parse(file, data, os.Getenv)
	if err != nil {
		return fmt.Errorf("reloading mappings: the file has problems, keeping the rules in force: %w", err)
	}
	sets, probs := pipeline.CompileMappings(cfg)
	if len(probs) > 0 {
		return fmt.Errorf("reloading mappings: keeping the rules in force: %w", probs)
	}
	s.engine.Store(mapping.NewEngine(sets, s.metadata))
	s.mappingStamp.Store(mappingFilesStamp(cfg, sets))
	s.log.Info("mapping sets reloaded", "sets", len(sets.All()))
	return nil
}

// newReloadCounter counts mapping reloads by result, so an operator sees a bad edit.
func newReloadCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapping", Name: "reloads_total",
		Help: "Reloads of the mapping sets, by result (success, failure)."}, []string{"result"})
	reg.MustRegister(c)
	c.WithLabelValues("success")
	c.WithLabelValues("failure")
	return c
}

// watchMappingFiles reloads the mapping sets when the config file or a CSV table changes.
// It polls modification times, which works on every file system and in containers where
// inotify on a mounted ConfigMap does not.
func (s *Service) watchMappingFiles(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e := s.engine.Load()
		if e == nil {
			continue
		}
		if stamp := mappingFilesStamp(s.cfg, e.Sets()); stamp != s.mappingStamp.Load().(string) {
			if err := s.ReloadMappings(); err != nil {
				s.log.Error("mapping files changed but could not be reloaded", "err", err)
				s.mappingStamp.Store(stamp) // say it once per change, not every tick
			}
		}
	}
}

// mappingFilesStamp summarises the modification times of the config file and the mapping
// tables.
func mappingFilesStamp(cfg *config.Config, sets *mapping.Sets) string {
	files := []string{cfg.File()}
	if sets != nil {
		files = append(files, sets.Files()...)
	}
	var b bytes.Buffer
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, st.ModTime().UnixNano(), st.Size())
		}
	}
	return b.String()
}

// handleMetadataRefresh is POST /admin/v1/targets/{name}/metadata/refresh: read the
// target's metadata now, after an implementer changed it in DHIS2.
func (s *Service) handleMetadataRefresh(c echo.Context) error {
	name := c.Param("name")
	if _, ok := s.targets.Get(name); !ok {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no target is called " + strconv.Quote(name)})
	}
	cm, err := s.metadata.Refresh(c.Request().Context(), name)
	if err != nil {
		return c.JSON(http.StatusBadGateway, apiError{Status: "error", Message: err.Error()})
	}
	md := cm.MD
	return c.JSON(http.StatusOK, map[string]any{"target": name, "fetched": cm.Fetched,
		"dataElements": len(md.DataElements), "categoryOptionCombos": len(md.CategoryOptionCombos),
		"dataSets": len(md.DataSets), "organisationUnits": len(md.OrgUnits)})
}
