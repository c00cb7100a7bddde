package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
)

// The watcher extends the exchanges' notifications to targets and sources, on the same
// channels: a target unreachable longer than notify.targets.unreachable_after, and dead
// letters waiting for a target, or from a source, above notify.dead_letters.above. Each is
// one message when the incident starts and one when it ends. Replicas agree through a key in
// tally_state per incident: the replica that creates it sends the start, the one that
// deletes it (at the revision it read) sends the end, so a fleet sends each message once.

// Notification events of targets and dead letters.
const (
	EventTargetUnreachable   = "target.unreachable"
	EventTargetRecovered     = "target.recovered"
	EventDeadLettersAbove    = "dead_letters.above"
	EventDeadLettersResolved = "dead_letters.resolved"
)

// Waiting is what waits in the dead-letter queue for one target from one source: how many
// dead letters and the first transactions they belong to.
type Waiting struct {
	Target, Source string
	Count          int
	TxIDs          []string
}

// WatcherConfig is what a Watcher looks at and where it tells.
type WatcherConfig struct {
	Set     *Set
	State   jetstream.KeyValue
	Targets interface{ Unreachable(name string) bool }
	// TargetNames are the configured targets.
	TargetNames []string
	// Waiting reads the dead-letter queue (the composition root adapts mediator/dlq).
	Waiting func(ctx context.Context) ([]Waiting, error)
	Log     *slog.Logger
	Now     func() time.Time
}

// Watcher looks at the targets and the dead letters every notify.check_interval.
type Watcher struct {
	c     WatcherConfig
	nc    config.Notify
	mu    sync.Mutex
	since map[string]time.Time // when this replica first saw a target unreachable
}

// NewWatcher returns the watcher c describes; nil when nothing is to be watched.
func NewWatcher(c WatcherConfig) *Watcher {
	nc := c.Set.notify
	if nc.Targets.UnreachableAfter <= 0 && nc.DeadLetters.Above <= 0 || len(c.Set.notifiers) == 0 {
		return nil
	}
	return &Watcher{c: c, nc: nc, since: map[string]time.Time{}}
}

// Run checks every notify.check_interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.nc.CheckInterval.D())
	defer t.Stop()
	for {
		w.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check looks once at the targets and the dead letters, and tells what started or ended.
func (w *Watcher) Check(ctx context.Context) {
	if w.nc.Targets.UnreachableAfter > 0 {
		for _, name := range w.c.TargetNames {
			w.checkTarget(ctx, name)
		}
	}
	if w.nc.DeadLetters.Above > 0 && w.c.Waiting != nil {
		w.checkDeadLetters(ctx)
	}
}

func (w *Watcher) checkTarget(ctx context.Context, name string) {
	now := w.c.Now()
	w.mu.Lock()
	down := w.c.Targets.Unreachable(name)
	since, seen := w.since[name]
	switch {
	case down && !seen:
		w.since[name], since = now, now
	case !down:
		delete(w.since, name)
	}
	w.mu.Unlock()
	key := "notify.target." + name
	if down && now.Sub(since) >= w.nc.Targets.UnreachableAfter.D() {
		n := &Notification{Event: EventTargetUnreachable, Target: name, Time: now, Since: since,
			Link: w.link("#target-" + url.PathEscape(name))}
		w.start(ctx, key, n)
	} else if !down {
		w.end(ctx, key, &Notification{Event: EventTargetRecovered, Target: name, Time: now,
			Link: w.link("#target-" + url.PathEscape(name))})
	}
}

// checkDeadLetters adds up what waits per target and per source and compares it with the
// threshold.
func (w *Watcher) checkDeadLetters(ctx context.Context) {
	all, err := w.c.Waiting(ctx)
	if err != nil {
		w.c.Log.Warn("reading the dead-letter queue for notifications", "err", err)
		return
	}
	type total struct {
		count int
		txs   []string
	}
	sums := map[[2]string]*total{} // {"target"|"source", name}
	for _, wt := range all {
		for _, k := range [][2]string{{"target", wt.Target}, {"source", wt.Source}} {
			if k[1] == "" {
				continue
			}
			s := sums[k]
			if s == nil {
				s = &total{}
				sums[k] = s
			}
			s.count += wt.Count
			for _, id := range wt.TxIDs {
				if len(s.txs) < maxNotifiedTx && !slices.Contains(s.txs, id) {
					s.txs = append(s.txs, id)
				}
			}
		}
	}
	now := w.c.Now()
	for k, s := range sums {
		if s.count > w.nc.DeadLetters.Above {
			n := &Notification{Event: EventDeadLettersAbove, Time: now, DeadLetters: s.count, Transactions: s.txs,
				Link: w.link("dlq?" + k[0] + "=" + url.QueryEscape(k[1]))}
			n.setSubject(k[0], k[1])
			w.start(ctx, "notify.dlq."+k[0]+"."+k[1], n)
		}
	}
	// An incident whose count is back at or below the threshold ends.
	keys, err := w.c.State.ListKeysFiltered(ctx, "notify.dlq.>")
	if err != nil {
		return
	}
	defer func() { _ = keys.Stop() }()
	for key := range keys.Keys() {
		kind, name, ok := strings.Cut(strings.TrimPrefix(key, "notify.dlq."), ".")
		if !ok {
			continue
		}
		if s := sums[[2]string{kind, name}]; s != nil && s.count > w.nc.DeadLetters.Above {
			continue
		}
		n := &Notification{Event: EventDeadLettersResolved, Time: now, Link: w.link("dlq?" + kind + "=" + url.QueryEscape(name))}
		if s := sums[[2]string{kind, name}]; s != nil {
			n.DeadLetters = s.count
		}
		n.setSubject(kind, name)
		w.end(ctx, key, n)
	}
}

// maxNotifiedTx bounds the transaction ids a message lists.
const maxNotifiedTx = 10

// start sends n if this replica is the one that opens the incident.
func (w *Watcher) start(ctx context.Context, key string, n *Notification) {
	if _, err := w.c.State.Create(ctx, key, []byte(n.Time.UTC().Format(time.RFC3339))); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			w.c.Log.Warn("recording a notified incident", "key", key, "err", err)
		}
		return
	}
	w.send(ctx, n)
}

// end sends n if an incident was open and this replica is the one that closes it.
func (w *Watcher) end(ctx context.Context, key string, n *Notification) {
	e, err := w.c.State.Get(ctx, key)
	if err != nil {
		return // none open (or unreadable: try at the next check)
	}
	if err := w.c.State.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
		return // another replica closed it
	}
	if since, err := time.Parse(time.RFC3339, string(e.Value())); err == nil {
		n.Since = since
	}
	w.send(ctx, n)
}

// send tells every channel; a channel that fails is logged, the others still told.
func (w *Watcher) send(ctx context.Context, n *Notification) {
	for _, ch := range w.c.Set.notifiers {
		if err := ch.send(ctx, n); err != nil {
			w.c.Log.Warn("notification failed", "channel", ch.name(), "event", n.Event, "err", err)
		}
	}
}

// link is the console page at path, or "" without notify.console_url.
func (w *Watcher) link(path string) string {
	if w.nc.ConsoleURL == "" {
		return ""
	}
	return strings.TrimRight(w.nc.ConsoleURL, "/") + "/console/" + path
}

// setSubject names the target or source a dead-letter message is about.
func (n *Notification) setSubject(kind, name string) {
	if kind == "target" {
		n.Target = name
	} else {
		n.Source = name
	}
}

// incidentText is the text of a target or dead-letter message.
func (n *Notification) incidentText() string {
	var b strings.Builder
	who := "target " + n.Target
	if n.Source != "" {
		who = "source " + n.Source
	}
	switch n.Event {
	case EventTargetUnreachable:
		fmt.Fprintf(&b, "The DHIS2 target %s has been unreachable since %s: deliveries wait in Tally and go out when it answers.", n.Target, n.Since.Format(time.RFC3339))
	case EventTargetRecovered:
		fmt.Fprintf(&b, "The DHIS2 target %s answers again at %s; deliveries resume.", n.Target, n.Time.Format(time.RFC3339))
	case EventDeadLettersAbove:
		fmt.Fprintf(&b, "%d dead letters wait for %s: their values are not in DHIS2 until they are fixed and replayed.", n.DeadLetters, who)
	case EventDeadLettersResolved:
		fmt.Fprintf(&b, "The dead letters waiting for %s are back to %d.", who, n.DeadLetters)
	}
	if len(n.Transactions) > 0 {
		fmt.Fprintf(&b, "\n\nTransactions: %s", strings.Join(n.Transactions, ", "))
	}
	if n.Link != "" {
		fmt.Fprintf(&b, "\n\n%s", n.Link)
	}
	b.WriteString("\n\nTally sends one message when this starts and one when it ends.")
	return b.String()
}
