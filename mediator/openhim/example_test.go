package openhim_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
)

// Example shows the wiring the serve command needs: the mediator runs in the background,
// console settings are applied live, and requests routed by the core are answered with an
// envelope. (Compiled, not run: it would contact a core.)
func Example() {
	ctx := context.Background()
	cfg := openhim.DefaultConfig()
	cfg.Password = "from ${OPENHIM_PASSWORD}"

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	m, err := openhim.New(cfg, "1.4.0", openhim.Sources("cht"), openhim.WithLogger(logger))
	if err != nil {
		panic(err)
	}
	var level slog.LevelVar
	configured := slog.LevelInfo // from the YAML
	level.Set(configured)
	_ = m.Run(ctx, func(c map[string]any) { // returns at once
		o, err := openhim.ParseOverrides(c)
		if err != nil {
			logger.Warn("ignoring console config", "err", err)
			return
		}
		// An explicit level, or the configured one again when the console says "default".
		level.Set(o.LogLevelOr(configured))
	})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /ingest/cht", func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		// ... parse and store the batches, recording openhim.TransactionID(r) with them ...
		body := []byte(`{"status":"OK","description":"stored"}`)
		if openhim.TransactionID(r) == "" { // not routed by the core: plain answer
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			w.Write(body)
			return
		}
		env := openhim.NewEnvelope(cfg.URN, openhim.StatusProcessing,
			openhim.NewResponse(http.StatusAccepted, http.Header{"Content-Type": {"application/json"}}, body, received))
		env.SetProperty("batches", 1)
		_ = env.Write(w)
	})

	// Later, when the delivery worker has the DHIS2 outcome: describe the call from the URL
	// it went to, and record the outcome once the core has stored the envelope.
	sent := time.Now()
	req, err := openhim.NewRequest(http.MethodPost, "https://hmis.example.org/api/dataValueSets",
		http.Header{"Content-Type": {"application/json"}}, []byte(`{"dataValues":[]}`), sent)
	if err != nil {
		panic(err)
	}
	resp := openhim.NewResponse(http.StatusOK, nil, []byte(`{"status":"OK"}`), time.Now())
	rec, err := m.Client().ReportOutcome(ctx, "65f1aa00000000000000000a", openhim.Outcome{
		Status:         openhim.StatusSuccessful,
		Orchestrations: []openhim.Orchestration{openhim.NewOrchestration("DHIS2 import: hmis", req, &resp, nil)},
		Properties:     map[string]any{"imported": 12},
	})
	if err != nil { // e.g. openhim.ErrNotConfirmed: log it with what the record shows
		logger.Warn("OpenHIM outcome", "err", err)
		return
	}
	logger.Info("OpenHIM outcome recorded", "status", rec.Status, "orchestrations", rec.OrchestrationNames())
}

func ExampleParseOverrides() {
	// A config pushed by the core after an operator edited it in the console.
	pushed := map[string]any{"log_level": "debug", "dry_run_targets": []any{"hmis"},
		"delivery_concurrency": float64(0), "batch_size": float64(500)}
	o, err := openhim.ParseOverrides(pushed)
	if err != nil {
		panic(err)
	}
	fmt.Println(o.LogLevel, o.DryRunTargets, o.DeliveryConcurrency == nil, *o.BatchSize)
	// Output: DEBUG [hmis] true 500
}
