// Package console is Tally's web console: server-rendered pages (html/template, embedded)
// for the people who run Tally — an overview of targets, sources and exchanges, the
// transaction log, where a value came from, the dead letters with replay and discard,
// exchanges with their dry runs, and the mapping preview.
//
// A person logs in with an admin credential (auth); the console keeps a server-side session
// referenced by an HttpOnly, SameSite=Strict cookie, checks a CSRF token on every request
// that changes something, and lets auth's scope table decide what a session may do, so the
// admin API and the console refuse the same things. Pages call the same services as the
// admin API (the interfaces below, which mediator's wiring fills); the console must not
// store, map, deliver or replay anything itself.
package console

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/exchange"
	"github.com/tally-hmis/tally/mediator/httpapi/auth"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform/metadata"
)

//go:embed templates/*.html static/*
var files embed.FS

// Bounds of the session set: a console is used by a handful of people.
const (
	// MaxSessions bounds the live sessions; a new login past it ends the least recently
	// used one.
	MaxSessions = 256
	// SessionLifetime bounds a session from login; SessionIdle ends one left unused.
	SessionLifetime = 12 * time.Hour
	SessionIdle     = time.Hour
)

// Config is what the console serves with. Credentials, Config, TxLog, DeadLetters,
// Exchanges and Targets are required; a nil Metadata shows codes without names, a nil
// Gatherer an overview without the figures metrics hold, a nil Preview no mapping preview,
// a nil Waiting no waiting batches.
type Config struct {
	Credentials *auth.Credentials
	Config      *config.Config
	Log         *slog.Logger
	Now         func() time.Time
	TxLog       TxLog
	DeadLetters DeadLetters
	Exchanges   Exchanges
	Targets     Targets
	Metadata    Metadata
	Preview     Previewer
	Gatherer    prometheus.Gatherer
	Waiting     Waiting
	// MaxSessions, SessionLifetime and SessionIdle override the defaults above when set
	// (tests).
	MaxSessions                  int
	SessionLifetime, SessionIdle time.Duration
}

// TxLog is the transaction log (mediator/txlog).
type TxLog interface {
	View(ctx context.Context, id string) (*txlog.TxView, error)
	Search(ctx context.Context, f txlog.TxFilter) ([]*txlog.TxView, error)
}

// Origins is the transaction log's value index (mediator/txlog): which deliveries carried
// which values. The TxLog given implements it too.
type Origins interface {
	Origins(ctx context.Context, q txlog.OriginQuery) ([]*txlog.Origin, error)
}

// DeadLetters is the dead-letter queue (mediator/dlq).
type DeadLetters interface {
	List(ctx context.Context, f dlq.DLQFilter, after uint64, limit int) ([]*dlq.DeadLetterSummary, int, uint64, error)
	Scan(ctx context.Context, f dlq.DLQFilter, after uint64, fn func(*dlq.DeadLetterSummary) bool) error
	At(ctx context.Context, seq uint64) (*dlq.DeadLetter, error)
	Replay(ctx context.Context, seq uint64, remap bool) (*dlq.ReplayResult, error)
	Discard(ctx context.Context, seq uint64) (*dlq.ReplayResult, error)
	PreviewReplay(ctx context.Context, seq uint64, remap bool) (*dlq.ReplayPreview, error)
}

// Exchanges runs the scheduled pulls (mediator/exchange).
type Exchanges interface {
	Infos(ctx context.Context) []*exchange.ExchangeInfo
	Info(ctx context.Context, name string) (*exchange.ExchangeInfo, error)
	Has(name string) bool
	Launch(name string, dryRun bool) (string, <-chan exchange.RunResult, error)
	Runs(ctx context.Context, name string, limit int) ([]*exchange.ExchangeRun, error)
}

// Targets are the delivery targets (mediator/delivery).
type Targets interface {
	Circuit(name string) (delivery.CircuitStatus, bool)
}

// Metadata is the targets' metadata cache (mediator/pipeline), for names beside codes.
type Metadata interface {
	Metadata(ctx context.Context, target string) (*metadata.Metadata, error)
}

// Previewer maps a payload without storing or sending it (mediator/ingest).
type Previewer interface {
	Preview(ctx context.Context, req ingest.Request) (*ingest.Preview, error)
}

// Waiting counts what waits for delivery in TALLY_DELIVER (delivery.Backlog): batches by
// target, and the values of up to maxBatches of one target's batches.
type Waiting interface {
	Waiting(ctx context.Context) (map[string]uint64, error)
	Values(ctx context.Context, target string, maxBatches int) (values uint64, complete bool, err error)
}

// Console serves the pages.
type Console struct {
	cfg      Config
	sessions *sessions
	pages    map[string]*pageTemplate
}

// New builds the console c describes; it does no I/O.
func New(c Config) (*Console, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	n, ttl, idle := MaxSessions, SessionLifetime, SessionIdle
	if c.MaxSessions > 0 {
		n = c.MaxSessions
	}
	if c.SessionLifetime > 0 {
		ttl = c.SessionLifetime
	}
	if c.SessionIdle > 0 {
		idle = c.SessionIdle
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Console{cfg: c, sessions: newSessions(n, ttl, idle, c.Now), pages: pages}, nil
}

// Register mounts the console on e under /console, and / leads there.
func (c *Console) Register(e *echo.Echo, around ...echo.MiddlewareFunc) {
	e.GET("/", func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/console/") })
	e.GET("/console", func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/console/") })
	g := e.Group("/console")
	g.GET("/static/*", c.handleStatic)
	g.GET("/login", c.handleLoginPage)
	g.POST("/login", c.handleLogin)
	s := g.Group("", append(around, c.requireSession)...)
	s.POST("/logout", c.handleLogout)
	s.GET("/", c.handleOverview)
	s.GET("/transactions", c.handleTxList)
	s.GET("/transactions/:id", c.handleTxShow)
	s.GET("/transactions/:id/values", c.handleTxValues)
	c.dlqRoutes(s)
	c.exchangeRoutes(s)
	s.GET("/origin", c.handleOrigin)
	s.GET("/preview", c.handlePreviewForm)
	s.POST("/preview", c.handlePreview)
}
