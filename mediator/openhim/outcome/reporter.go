// Package outcome records the outcome of Tally transactions in the OpenHIM core: it answers
// a request that came through a core channel in the core's envelope, links the core's
// transaction to Tally's, and once the Tally transaction is final, puts its outcome on a
// durable outbox and records it in the core's transaction, confirmed by reading it back. A
// console rerun of a failed transaction replays its dead letters.
//
// It sits beside mediator/openhim, which speaks the core's protocol and knows nothing of
// Tally; this package knows Tally's transactions and streams. It serves no HTTP itself
// (mediator/httpapi wraps the answers) and delivers nothing (a rerun's replays go through
// the dead-letter queue).
package outcome

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// Reporter records outcomes in the core. It is safe for concurrent use.
type Reporter struct {
	cfg            *config.Config
	kv             jetstream.KeyValue // tally_tx: links, and the delivery records a rerun awaits
	state          jetstream.KeyValue // tally_state
	tx             *txlog.TxLog
	pub            *stream.Publisher
	dead           *dlq.Store
	client         *openhim.Client
	urn            string
	reportInterval time.Duration
	settings       Settings
	metrics        *Metrics
	log            *slog.Logger
	now            func() time.Time
}

// Settings are what an operator may change while Tally runs (the OpenHIM console): whether
// deliveries to a target are dry runs, which an outcome says.
type Settings interface {
	DryRun(target string) bool
}

// Config is what a Reporter works with.
type Config struct {
	// Config names the targets (their URLs describe the imports).
	Config *config.Config
	// Tx and State are the tally_tx and tally_state buckets.
	Tx, State   jetstream.KeyValue
	TxLog       *txlog.TxLog
	Publisher   *stream.Publisher
	DeadLetters *dlq.Store
	// Client is the core's API; OpenHIM is the openhim: section (its URN and report
	// interval).
	Client   *openhim.Client
	OpenHIM  openhim.Config
	Settings Settings
	Metrics  *Metrics
	Log      *slog.Logger
	Now      func() time.Time
}

// New returns the reporter c describes.
func New(c Config) *Reporter {
	return &Reporter{cfg: c.Config, kv: c.Tx, state: c.State, tx: c.TxLog, pub: c.Publisher, dead: c.DeadLetters,
		client: c.Client, urn: c.OpenHIM.URN, reportInterval: c.OpenHIM.ReportInterval, settings: c.Settings,
		metrics: c.Metrics, log: c.Log, now: c.Now}
}
