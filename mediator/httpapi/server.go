package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/delivery"
	"github.com/tally-hmis/tally/mediator/httpapi/auth"
	"github.com/tally-hmis/tally/mediator/httpapi/console"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/transform"
)

// Server is Tally's HTTP surface. Its handlers are grouped by what they serve (the
// DHIS2-compatible endpoint, the admin API's transactions and targets, dead letters,
// exchanges), each group a value holding the server.
type Server struct {
	cfg         *config.Config
	admins      *auth.Credentials
	log         *slog.Logger
	now         func() time.Time
	version     string
	registry    *prometheus.Registry
	metrics     *Metrics
	health      Health
	ingester    Ingester
	txlog       TxLog
	deadLetters DeadLetters
	exchanges   Exchanges
	targets     Targets
	metadata    Metadata
	openhim     OpenHIM
	jobs        Jobs
	gate        *gate
}

type (
	dhis2API    struct{ *Server }
	adminAPI    struct{ *Server }
	dlqAPI      struct{ *Server }
	exchangeAPI struct{ *Server }
)

// New builds the HTTP surface c describes: the echo instance with every route. It does no
// I/O.
func New(c Config) *echo.Echo {
	s := &Server{cfg: c.Config, log: c.Log, now: c.Now, version: c.Version, registry: c.Registry, metrics: c.Metrics,
		health: c.Health, ingester: c.Ingester, txlog: c.TxLog, deadLetters: c.DeadLetters, exchanges: c.Exchanges,
		targets: c.Targets, metadata: c.Metadata, openhim: c.OpenHIM, jobs: c.Jobs, admins: auth.New(c.Config.Admin),
		gate: newGate(c.Config, c.Now)}
	e := s.routes()
	if c.Console != nil {
		s.mountConsole(e, *c.Console)
	}
	return e
}

// mountConsole serves the web console with the admin API's credentials, so that one table
// decides what either may do.
func (s *Server) mountConsole(e *echo.Echo, cc console.Config) {
	cc.Credentials = s.admins
	con, err := console.New(cc)
	if err != nil { // the templates are embedded: a build that cannot parse them is a bug
		s.log.Error("the console cannot start", "err", err)
		return
	}
	con.Register(e, s.auditConsole)
}

// auditConsole records the console's actions in the audit log as the admin API's are: it
// runs around the console's session check and reads the principal that check put in the
// request (a request without a session has none and is not an action of anyone's).
func (s *Server) auditConsole(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !changes(c.Request().Method) {
			return next(c)
		}
		if err := next(c); err != nil {
			c.Error(err) // answered now, so that the audit entry has the status
		}
		if p, ok := auth.FromContext(c.Request().Context()); ok {
			s.recordAudit(c, p)
		}
		return nil
	}
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.httpError
	e.Use(s.withRequestID)
	e.Use(s.observe)
	e.Use(s.limits)

	e.POST("/ingest/:source", s.handleIngest, s.openhimEnvelope)
	dhis2API{s}.dhis2Routes(e) // dhis2.go: POST /api/dataValueSets and its variants

	e.GET("/healthz", s.handleHealth)
	e.GET("/readyz", s.handleReady)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})))

	admin := e.Group("/admin/v1", s.requireAdmin)
	a := adminAPI{s}
	admin.GET("/whoami", a.handleWhoAmI)
	admin.GET("/audit", a.handleAudit)
	admin.GET("/transactions", a.handleTxList)
	admin.GET("/transactions/:id", a.handleTxShow)
	admin.POST("/preview", a.handlePreview)
	// Go's profiler, behind the admin token: how the hot path was measured, and how an
	// operator can see what a busy replica spends its time on.
	admin.GET("/debug/pprof/profile", echo.WrapHandler(http.HandlerFunc(pprof.Profile)))
	admin.GET("/debug/pprof/trace", echo.WrapHandler(http.HandlerFunc(pprof.Trace)))
	admin.GET("/debug/pprof/:name", func(c echo.Context) error {
		pprof.Handler(c.Param("name")).ServeHTTP(c.Response(), c.Request())
		return nil
	})
	admin.POST("/targets/:name/metadata/refresh", a.handleMetadataRefresh)
	admin.POST("/targets/:name/probe", a.handleProbe)
	dlqAPI{s}.dlqRoutes(admin)           // dlq.go
	exchangeAPI{s}.exchangeRoutes(admin) // exchanges.go
	return e
}

// observe records every request in the HTTP metrics, labelled by route template so that ids
// in paths never become label values.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.Requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(c.Response().Status)).Inc()
		s.metrics.Duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// apiError is the JSON body of every refusal on Tally's own endpoints.
type apiError struct {
	Status  string                  `json:"status"`
	Message string                  `json:"message"`
	Errors  []*transform.InputError `json:"errors,omitempty"`
	More    int                     `json:"moreErrors,omitempty"`
}

func (s *Server) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(status)
		}
	} else {
		s.log.Error("request failed", "path", c.Request().URL.Path, "request_id", RequestID(c.Request().Context()), "err", err)
	}
	_ = c.JSON(status, apiError{Status: "error", Message: msg})
}

func (s *Server) handleIngest(c echo.Context) error {
	name := c.Param("source")
	src, ok := s.cfg.Source(name)
	if ok {
		_, err := authenticate(c.Request(), nil, src)
		ok = err == nil
		if !ok {
			s.ingester.Refused(src.Name, "unauthorized")
		}
	}
	if !ok {
		// An unknown source and wrong credentials get the same answer, so that source
		// names cannot be found by trying.
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="tally", charset="UTF-8"`)
		return c.JSON(http.StatusUnauthorized, apiError{Status: "error", Message: "missing or wrong credentials for source " + strconv.Quote(name)})
	}
	if limited, err := s.rateLimited(c, src); limited {
		return err
	}
	res, err := s.ingester.Ingest(c.Request().Context(), s.ingestRequestFrom(c, src))
	if err != nil {
		return s.ingestError(c, src.Name, err)
	}
	if res.DryRun {
		return c.JSON(http.StatusOK, withRefused(map[string]any{"status": "valid", "dryRun": true, "values": res.Tx.Values,
			"batches": res.Tx.Batches, "targets": res.Tx.Targets}, res))
	}
	if res.Tx == nil {
		// Nothing to store: an empty payload (valid, as in DHIS2), or one whose every value
		// was refused (per-value validation).
		status := "empty"
		if res.Report.Rejected > 0 {
			status = "refused"
		}
		return c.JSON(http.StatusOK, withRefused(map[string]any{"status": status, "values": 0}, res))
	}
	if v := s.txlog.Await(c.Request().Context(), res.Tx.ID, src.WaitForDelivery.D()); v != nil {
		// Synchronous mode: the outcome at every target, as the transaction shows it.
		return c.JSON(http.StatusOK, map[string]any{
			"status": v.Status, "transaction": v.ID, "values": v.Values, "batches": v.Batches,
			"targets": v.Targets, "duplicate": res.Duplicate, "href": "/admin/v1/transactions/" + v.ID,
		})
	}
	body := withRefused(map[string]any{
		"status":      map[bool]string{false: "accepted", true: "duplicate"}[res.Duplicate],
		"transaction": res.Tx.ID,
		"values":      res.Tx.Values,
		"batches":     res.Tx.Batches,
		"targets":     res.Tx.Targets,
		"href":        "/admin/v1/transactions/" + res.Tx.ID,
	}, res)
	if res.Duplicate {
		// A repeat says what became of the first request, so a client does not take a
		// dead-lettered payload for a delivered one.
		if v, err := s.txlog.View(c.Request().Context(), res.Tx.ID); err == nil {
			body["transactionStatus"] = v.Status
		}
	}
	return c.JSON(http.StatusAccepted, body)
}

// withRefused adds to a native ingest answer the values refused one by one (per-value
// validation): how many, and their problems with index, place and DHIS2 conflict.
func withRefused(body map[string]any, res *ingest.Result) map[string]any {
	if r := res.Report; r.Rejected > 0 {
		body["refused"] = r.Rejected
		body["errors"] = r.Conflicts
		if r.More > 0 {
			body["moreErrors"] = r.More
		}
	}
	return body
}

func (s *Server) ingestError(c echo.Context, source string, err error) error {
	var re *ingest.RequestError
	if !errors.As(err, &re) {
		return err
	}
	s.ingester.Refused(source, re.Reason)
	body := apiError{Status: "error", Message: re.Msg}
	if re.Input != nil {
		body.Errors, body.More = re.Input.Errs, re.Input.More
	}
	if re.Status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "5")
	}
	return c.JSON(re.Status, body)
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "version": s.version,
		"uptimeSeconds": int(s.now().Sub(s.health.Started()).Seconds())})
}

// handleReady reports whether Tally can accept data: it is started, not stopping, and
// JetStream answers. Targets being down does not make Tally unready — accepting and
// holding data while a target is away is its job — but their state is shown.
func (s *Server) handleReady(c echo.Context) error {
	checks := map[string]string{}
	ok := s.health.Running()
	if !ok {
		checks["service"] = "stopping or not started"
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.health.JetStream(ctx); err != nil {
		checks["jetstream"] = err.Error()
		ok = false
	} else {
		checks["jetstream"] = "ok"
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ok, "checks": checks})
}

func (s adminAPI) handleProbe(c echo.Context) error {
	name := c.Param("name")
	res, err := s.targets.Probe(c.Request().Context(), name)
	if errors.Is(err, delivery.ErrNoTarget) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no target is called " + strconv.Quote(name)})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// handleMetadataRefresh is POST /admin/v1/targets/{name}/metadata/refresh: read the
// target's metadata now, after an implementer changed it in DHIS2.
func (s adminAPI) handleMetadataRefresh(c echo.Context) error {
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

// handlePreview is POST /admin/v1/preview?source=NAME: the payload is read exactly as
// ingest reads it, mapped for every target of the source, and compared with the target's
// current values. Nothing is stored or sent.
func (s adminAPI) handlePreview(c echo.Context) error {
	name := c.QueryParam("source")
	src, ok := s.cfg.Source(name)
	if !ok {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", Message: "source: no source is called " + strconv.Quote(name)})
	}
	p, err := s.ingester.Preview(c.Request().Context(), s.ingestRequestFrom(c, src))
	if errors.Is(err, ingest.ErrPreviewTooLarge) {
		return c.JSON(http.StatusRequestEntityTooLarge, apiError{Status: "error", Message: err.Error()})
	}
	if err != nil {
		return s.ingestError(c, src.Name, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"source": p.Source, "format": p.Format, "values": p.Values, "targets": p.Targets})
}
