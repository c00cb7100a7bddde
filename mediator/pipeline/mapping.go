package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/period"
)

// ErrMappingRejected wraps a mapping failure that is the payload's fault (a source whose
// policy is to reject batches with unmapped items): it becomes a dead letter, not a retry.
var ErrMappingRejected = errors.New("mapping rejected the batch")

// Mapping is the mapping engine in force: the compiled sets of the configuration file,
// mapped with the targets' metadata, which Reload swaps when the file changes (Watch
// notices). The mapper stage, replays, exchanges and previews all map through it, so that
// each uses the rules in force; messages in flight finish with the rules they started with.
type Mapping struct {
	cfg      *config.Config
	engine   atomic.Pointer[mapping.Engine]
	stamp    atomic.Value // string: mappingFilesStamp of the sets in force
	metadata *MetadataCache
	state    jetstream.KeyValue // tally_state: the roll-up store
	reloads  *prometheus.CounterVec
	log      *slog.Logger
}

// NewMapping puts sets in force, mapped with the metadata md reads, rolling up in state
// (tally_state); reloads counts Reload's results (NewReloadCounter).
func NewMapping(cfg *config.Config, sets *mapping.Sets, md *MetadataCache, state jetstream.KeyValue,
	reloads *prometheus.CounterVec, log *slog.Logger) *Mapping {
	m := &Mapping{cfg: cfg, metadata: md, state: state, reloads: reloads, log: log}
	m.engine.Store(mapping.NewEngine(sets, md))
	m.stamp.Store(mappingFilesStamp(cfg, sets))
	return m
}

// Engine is the engine in force.
func (m *Mapping) Engine() *mapping.Engine { return m.engine.Load() }

// Metadata is the targets' metadata the engine maps with.
func (m *Mapping) Metadata() *MetadataCache { return m.metadata }

// Map maps a batch of a source for a target with the engine in force, refusing it whole
// when mapping refuses any value (mapping.Engine.Map): such a batch is the payload's fault
// and wraps ErrMappingRejected, to become a dead letter, not a retry.
func (m *Mapping) Map(ctx context.Context, in *transform.Batch, src *config.Source, t *config.Target) (*transform.Mapped, error) {
	out, err := m.Engine().Map(ctx, in, MappingSource(src), MappingTarget(t))
	if errors.Is(err, mapping.ErrRejected) {
		return nil, fmt.Errorf("%w: %w", ErrMappingRejected, err)
	}
	return out, err
}

// Preview maps the batches of one payload for a target as the mapper stage maps them —
// duplicates across the batches and roll-ups included — but reads the roll-up store
// without writing to it; each receives every batch's outcome.
func (m *Mapping) Preview(ctx context.Context, batches []*transform.Batch, src *config.Source, t *config.Target,
	each func(*transform.Mapped, error)) {
	opts := mapping.Options{Rollup: m.rollupStore(), RollupReadOnly: true, Payload: mapping.NewPayloadKeys(payloadKeysLimit)}
	for _, b := range batches {
		mapped, err := m.Engine().MapWith(ctx, b, MappingSource(src), MappingTarget(t), opts)
		if err == nil {
			m.RefuseNewerPeriods(ctx, src, t, mapped)
		}
		each(mapped, err)
	}
}

// Reload reads the configuration file again and, if its mapping sets compile, swaps them
// in: messages in flight finish with the rules they started with. A bad file keeps the
// rules in force and says why.
func (m *Mapping) Reload() error {
	err := m.reload()
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.reloads.WithLabelValues(result).Inc()
	return err
}

func (m *Mapping) reload() error {
	file := m.cfg.File()
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reloading mappings: %w", err)
	}
	cfg, err := config.Parse(file, data, os.Getenv)
	if err != nil {
		return fmt.Errorf("reloading mappings: the file has problems, keeping the rules in force: %w", err)
	}
	sets, probs := CompileMappings(cfg)
	if len(probs) > 0 {
		return fmt.Errorf("reloading mappings: keeping the rules in force: %w", probs)
	}
	m.engine.Store(mapping.NewEngine(sets, m.metadata))
	m.stamp.Store(mappingFilesStamp(cfg, sets))
	m.log.Info("mapping sets reloaded", "sets", len(sets.All()))
	return nil
}

// NewReloadCounter registers tally_mapping_reloads_total, which counts reloads by result,
// so an operator sees a bad edit.
func NewReloadCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tally", Subsystem: "mapping", Name: "reloads_total",
		Help: "Reloads of the mapping sets, by result (success, failure)."}, []string{"result"})
	reg.MustRegister(c)
	c.WithLabelValues("success")
	c.WithLabelValues("failure")
	return c
}

// Watch reloads the mapping sets when the config file or a CSV table changes, until ctx
// ends. It polls modification times, which works on every file system and in containers
// where inotify on a mounted ConfigMap does not.
func (m *Mapping) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e := m.engine.Load()
		if e == nil {
			continue
		}
		if stamp := mappingFilesStamp(m.cfg, e.Sets()); stamp != m.stamp.Load().(string) {
			if err := m.Reload(); err != nil {
				m.log.Error("mapping files changed but could not be reloaded", "err", err)
				m.stamp.Store(stamp) // say it once per change, not every tick
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

// RefuseNewerPeriods refuses, for a source without a mapping set, the values whose period
// the target's DHIS2 release does not have (a WeeklyFriday week for 2.42, say): the engine
// checks the release only where it maps with the target's metadata. DHIS2 itself would
// answer "Period not valid" (E7611); this says why.
func (m *Mapping) RefuseNewerPeriods(ctx context.Context, src *config.Source, t *config.Target, mapped *transform.Mapped) {
	if src.Mapping != "" {
		return
	}
	refuseNewerPeriods(t, m.metadata.Release(ctx, t.Name), mapped)
}

// refuseNewerPeriods is RefuseNewerPeriods for a target of release rel (0: unknown, which
// refuses nothing).
//
// A batch's values mostly share their period, so a period is judged once for a run of
// values; the batch is copied only when a value is refused (copying every batch, most of
// which keep every value, was a third of mapping a source without a mapping set).
func refuseNewerPeriods(t *config.Target, rel int, mapped *transform.Mapped) {
	if rel == 0 {
		return
	}
	values := mapped.Batch.Values
	var keep []transform.DataValue // nil until a value is refused
	last, lastOK := "", true
	for i, v := range values {
		if v.Period != last {
			ok, since, err := period.AvailableIn(v.Period, rel)
			last, lastOK = v.Period, err != nil || ok
			if !lastOK {
				mapped.Refused = append(mapped.Refused, transform.Refused{Value: v, Field: "period", ErrorCode: transform.CodePeriodNotValid,
					Reason: fmt.Sprintf("period %s is a type DHIS2 has from 2.%d on; target %q runs 2.%d", v.Period, since, t.Name, rel)})
			}
		} else if !lastOK {
			r := mapped.Refused[len(mapped.Refused)-1]
			r.Value = v
			mapped.Refused = append(mapped.Refused, r)
		}
		switch {
		case !lastOK && keep == nil:
			keep = append(make([]transform.DataValue, 0, len(values)-1), values[:i]...)
		case lastOK && keep != nil:
			keep = append(keep, v)
		}
	}
	if keep != nil {
		out := *mapped.Batch
		out.Values = keep
		mapped.Batch = &out
	}
}
