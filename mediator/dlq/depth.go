package dlq

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/mediator/pipeline"
)

// depthCollector reports tally_dlq_depth{target,reason}: the dead letters waiting in
// TALLY_DLQ now (a replay or a discard lowers it), unlike tally_dlq_messages_total, which
// only grows. The reason is a header, not part of the subject, so a count reads every
// entry's headers; a scrape reuses a count younger than depthTTL so that frequent scrapes
// of a large queue do not rescan it each time.
type depthCollector struct {
	desc  *prometheus.Desc
	store atomic.Pointer[depthProbe]
	now   func() time.Time

	mu      sync.Mutex
	counted time.Time
	counts  map[[2]string]int
}

type depthProbe struct {
	store   *Store
	targets []string
}

const (
	// depthTTL is how long a count serves scrapes before the queue is read again.
	depthTTL = 10 * time.Second
	// depthScanTimeout bounds one count; a scrape past it reports nothing rather than a
	// number that may be false.
	depthScanTimeout = 5 * time.Second
)

// depthReasons are the reasons a target's series exist for from the start.
func depthReasons() []string {
	return []string{pipeline.ReasonRejected, pipeline.ReasonPermanent, pipeline.ReasonExhausted,
		pipeline.ReasonMapping, pipeline.ReasonLocked}
}

func newDepthCollector() *depthCollector {
	return &depthCollector{
		desc: prometheus.NewDesc("tally_dlq_depth",
			"Dead letters waiting in TALLY_DLQ now, by target and reason (replays and discards lower it).",
			[]string{"target", "reason"}, nil),
		now: time.Now,
	}
}

func (d *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *depthCollector) Collect(ch chan<- prometheus.Metric) {
	p := d.store.Load()
	if p == nil {
		return
	}
	counts, ok := d.count(p)
	if !ok {
		return
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

// count returns the dead letters per target and reason, zero for the known reasons of every
// configured target, from a recent count or a fresh scan.
func (d *depthCollector) count(p *depthProbe) (map[[2]string]int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts != nil && d.now().Sub(d.counted) < depthTTL {
		return d.counts, true
	}
	counts := map[[2]string]int{}
	for _, t := range p.targets {
		for _, r := range depthReasons() {
			counts[[2]string{t, r}] = 0
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), depthScanTimeout)
	defer cancel()
	err := p.store.Scan(ctx, DLQFilter{}, 0, func(s *DeadLetterSummary) bool {
		counts[[2]string{s.Target, s.Reason}]++
		return true
	})
	if err != nil {
		d.counts = nil
		return nil, false
	}
	d.counts, d.counted = counts, d.now()
	return counts, true
}

// forget drops the cached count, so that the next scrape after a replay or a discard in
// this process sees it.
func (d *depthCollector) forget() {
	d.mu.Lock()
	d.counts = nil
	d.mu.Unlock()
}
