// Package httpapi is Tally's HTTP surface (echo): the native ingest endpoint, the
// DHIS2-compatible POST /api/dataValueSets with its asynchronous tasks and content
// negotiation, the admin API (transactions, dead letters, exchanges, previews, targets),
// health, readiness and metrics, and the OpenHIM envelope around answers to requests that
// came through a core channel.
//
// It authenticates, reads requests and writes answers; what a request asks for is done by
// the services it is given (the interfaces below, which mediator's wiring fills). It must
// not read a payload, map, deliver or store anything itself.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/httpapi/console"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// Config is what the HTTP surface serves with.
type Config struct {
	// Config names the sources (their credentials pick the source of a request) and the
	// admin token.
	Config  *config.Config
	Log     *slog.Logger
	Now     func() time.Time
	Version string
	// Registry is served on /metrics; Metrics are the HTTP collectors (NewMetrics).
	Registry *prometheus.Registry
	Metrics  *Metrics
	Health   Health
	Ingester Ingester
	TxLog    TxLog
	// DeadLetters, Exchanges, Targets and Metadata serve the admin API.
	DeadLetters DeadLetters
	Exchanges   Exchanges
	Targets     Targets
	Metadata    Metadata
	// OpenHIM answers requests that came through a core channel; nil answers them as any
	// other.
	OpenHIM OpenHIM
	// Jobs keeps the records of asynchronous imports (tally_state).
	Jobs Jobs
	// Console, when set, serves the web console under /console (its Credentials are the
	// admin API's); nil serves no console.
	Console *console.Config
}

// Health is what /healthz and /readyz ask of the service.
type Health interface {
	// Started is when the service started.
	Started() time.Time
	// Running reports whether it is started and not stopping.
	Running() bool
	// JetStream says whether JetStream answers (nil) or why not.
	JetStream(ctx context.Context) error
}

// Ingester reads and stores payloads (mediator/ingest).
type Ingester interface {
	Ingest(ctx context.Context, req ingest.Request) (*ingest.Result, error)
	Preview(ctx context.Context, req ingest.Request) (*ingest.Preview, error)
	// Era is the DHIS2 release the DHIS2-compatible endpoint answers a source as.
	Era(ctx context.Context, src *config.Source) int
	// Refused counts a refused request.
	Refused(source, reason string)
}

// TxLog is the transaction log (mediator/txlog).
type TxLog interface {
	View(ctx context.Context, id string) (*txlog.TxView, error)
	Search(ctx context.Context, f txlog.TxFilter) ([]*txlog.TxView, error)
	Await(ctx context.Context, txID string, wait time.Duration) *txlog.TxView
	Finished(ctx context.Context, txID string) (*txlog.TxView, bool)
	PutAudit(ctx context.Context, e *txlog.AuditEntry) error
	Audit(ctx context.Context, f txlog.AuditFilter) ([]*txlog.AuditEntry, error)
}

// DeadLetters is the dead-letter queue (mediator/dlq).
type DeadLetters interface {
	List(ctx context.Context, f dlq.DLQFilter, after uint64, limit int) ([]*dlq.DeadLetterSummary, int, uint64, error)
	Scan(ctx context.Context, f dlq.DLQFilter, after uint64, fn func(*dlq.DeadLetterSummary) bool) error
	At(ctx context.Context, seq uint64) (*dlq.DeadLetter, error)
	Find(ctx context.Context, id string) (uint64, error)
	Replay(ctx context.Context, seq uint64, remap bool) (*dlq.ReplayResult, error)
	Discard(ctx context.Context, seq uint64) (*dlq.ReplayResult, error)
}

// Exchanges runs the scheduled pulls (mediator/exchange).
type Exchanges interface {
	Infos(ctx context.Context) []*exchange.ExchangeInfo
	Info(ctx context.Context, name string) (*exchange.ExchangeInfo, error)
	Has(name string) bool
	Launch(name string, dryRun bool) (string, <-chan exchange.RunResult, error)
	Runs(ctx context.Context, name string, limit int) ([]*exchange.ExchangeRun, error)
	RunOf(ctx context.Context, name, tx string) (*exchange.ExchangeRun, *txlog.TxView, error)
}

// Targets are the delivery targets (mediator/delivery).
type Targets interface {
	Get(name string) (*delivery.Target, bool)
	Probe(ctx context.Context, name string) (*delivery.ProbeResult, error)
}

// Metadata is the targets' metadata the mapping reads (mediator/pipeline).
type Metadata interface {
	Refresh(ctx context.Context, target string) (*pipeline.CachedMetadata, error)
}

// OpenHIM answers a request that came through an OpenHIM core channel as transaction
// coreTx, in the core's envelope (mediator/openhim/outcome).
type OpenHIM interface {
	Answer(r *http.Request, coreTx string, status int, header http.Header, body []byte, received time.Time) *openhim.Envelope
}

// Jobs keeps records by key (a JetStream key-value bucket).
type Jobs interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}
