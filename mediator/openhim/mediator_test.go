package openhim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/openhim/openhimtest"
)

var epoch = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

type harness struct {
	core  *openhimtest.Server
	clock *openhimtest.Clock
	m     *openhim.Mediator
	cfg   openhim.Config

	mu      sync.Mutex
	applied []map[string]any
}

func newHarness(t *testing.T, coreOpts ...openhimtest.Option) *harness {
	t.Helper()
	h := &harness{core: newCore(t, coreOpts...), clock: openhimtest.NewClock(epoch)}
	h.cfg = coreConfig(h.core)
	m, err := openhim.New(h.cfg, "1.4.0", openhim.Sources("cht"), openhim.WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// start runs the mediator until the test ends and checks that Run returned at once.
func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() { returned <- h.m.Run(ctx, h.apply) }()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run blocked its caller")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.m.Done():
		case <-time.After(5 * time.Second):
			t.Error("mediator did not stop after cancel")
		}
	})
}

func (h *harness) apply(cfg map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applied = append(h.applied, cfg)
}

func (h *harness) appliedConfigs() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.applied...)
}

// idle waits until the mediator is waiting on its clock.
func (h *harness) idle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.clock.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("mediator never went idle: %v", err)
	}
}

// tick fires the pending timer and waits for the next one.
func (h *harness) tick(t *testing.T) time.Duration {
	t.Helper()
	d := h.clock.AdvanceToNext()
	h.idle(t)
	return d
}

func TestMediatorAppliesPushedConfigOnce(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.idle(t) // registered, first heartbeat (config:true) done

	if !h.m.Registered() || h.m.LastError() != nil {
		t.Fatalf("state after start: %+v", h.m.State())
	}
	if got := h.appliedConfigs(); len(got) != 1 || got[0][openhim.KeyLogLevel] != "default" {
		t.Fatalf("initial config: %v", got)
	}

	if err := h.core.SetConfig(h.cfg.URN, map[string]any{openhim.KeyLogLevel: "debug",
		openhim.KeyDryRunTargets: []any{"hmis"}, openhim.KeyDeliveryConcurrency: 2, openhim.KeyBatchSize: 0}); err != nil {
		t.Fatal(err)
	}
	if d := h.tick(t); d != 10*time.Second {
		t.Errorf("heartbeat after %s, want 10s", d)
	}
	h.tick(t)
	h.tick(t)

	got := h.appliedConfigs()
	if len(got) != 2 {
		t.Fatalf("onConfig called %d times, want 2 (initial + one change): %v", len(got), got)
	}
	o, err := openhim.ParseOverrides(got[1])
	if err != nil || o.LogLevel == nil || o.LogLevel.String() != "DEBUG" || len(o.DryRunTargets) != 1 ||
		o.DeliveryConcurrency == nil || *o.DeliveryConcurrency != 2 {
		t.Errorf("applied overrides %+v, %v", o, err)
	}
	if h.m.State().ConfigChanges != 2 {
		t.Errorf("state: %+v", h.m.State())
	}

	// Uptime is counted from New on the mediator's clock.
	hb := h.core.Heartbeats(h.cfg.URN)
	if len(hb) != 4 || hb[0].Uptime != 0 || hb[3].Uptime != 30 {
		t.Errorf("heartbeats: %+v", hb)
	}
}

func TestMediatorPollsConfig(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.idle(t)
	for range 12 {
		h.tick(t)
	}
	var asked []int
	for i, b := range h.core.Heartbeats(h.cfg.URN) {
		if b.Config {
			asked = append(asked, i)
		}
	}
	// First beat, then every 60s with 10s beats.
	if fmt.Sprint(asked) != "[0 6 12]" {
		t.Errorf("config:true on beats %v, want [0 6 12]", asked)
	}
	if len(h.appliedConfigs()) != 1 {
		t.Errorf("an unchanged config was applied again: %v", h.appliedConfigs())
	}
}

// TestMediatorRecoversLostPush: the core pushes a change once; if that answer is lost, the
// next beat asks for the config explicitly.
func TestMediatorRecoversLostPush(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.idle(t)
	if err := h.core.SetConfig(h.cfg.URN, map[string]any{openhim.KeyBatchSize: 250}); err != nil {
		t.Fatal(err)
	}
	h.core.LoseResponses(1)
	h.tick(t)
	if h.m.LastError() == nil {
		t.Fatal("lost answer not noticed")
	}
	h.tick(t)
	got := h.appliedConfigs()
	if len(got) != 2 || got[1][openhim.KeyBatchSize] != float64(250) {
		t.Fatalf("applied: %v", got)
	}
	hb := h.core.Heartbeats(h.cfg.URN)
	if len(hb) != 3 || hb[1].Response == "" || !hb[2].Config {
		t.Errorf("heartbeats: %+v", hb)
	}
	if h.m.LastError() != nil {
		t.Errorf("error not cleared: %v", h.m.LastError())
	}
}

func TestMediatorRetriesWhileCoreDown(t *testing.T) {
	h := newHarness(t)
	h.core.SetDown(openhimtest.Unavailable)
	h.start(t) // returns at once although the core is down
	h.idle(t)
	if h.m.Registered() || !errors.Is(h.m.LastError(), openhim.ErrUnavailable) {
		t.Fatalf("state while down: %+v", h.m.State())
	}
	for range 8 {
		h.tick(t)
	}
	h.core.SetDown(openhimtest.Hangup)
	h.tick(t)
	if h.m.Registered() || h.m.LastError() == nil {
		t.Fatalf("state while hanging up: %+v", h.m.State())
	}
	h.core.SetDown(openhimtest.Up)
	h.tick(t)
	if !h.m.Registered() || h.m.LastError() != nil {
		t.Fatalf("not registered once the core came up: %+v", h.m.State())
	}
	want := "[1s 2s 4s 8s 16s 32s 1m0s 1m0s 1m0s 1m0s 10s]"
	if got := fmt.Sprint(h.clock.Requested()); got != want {
		t.Errorf("waits %s, want %s", got, want)
	}
	if s := h.m.State(); s.RegisterAttempts != 11 || s.RegisteredAt.IsZero() || s.LastHeartbeat.IsZero() {
		t.Errorf("state: %+v", s)
	}
	var failed, created int
	for _, r := range h.core.Requests() {
		if r.Path == "/mediators" {
			if r.Status == http.StatusCreated {
				created++
			} else {
				failed++
			}
		}
	}
	if failed != 10 || created != 1 {
		t.Errorf("registration requests: %d failed, %d created", failed, created)
	}
}

func TestMediatorReRegistersWhenRemoved(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.idle(t)
	h.core.RemoveMediator(h.cfg.URN)
	h.tick(t) // heartbeat gets 404
	if h.m.Registered() || !errors.Is(h.m.LastError(), openhim.ErrNotFound) {
		t.Fatalf("state after removal: %+v", h.m.State())
	}
	h.tick(t) // registers again, beats with config:true
	if !h.m.Registered() {
		t.Fatalf("not registered again: %+v", h.m.State())
	}
	if _, ok := h.core.Mediator(h.cfg.URN); !ok {
		t.Error("mediator missing in the core")
	}
	hb := h.core.Heartbeats(h.cfg.URN)
	if last := hb[len(hb)-1]; !last.Config || last.Status != http.StatusOK {
		t.Errorf("last heartbeat %+v, want config:true after re-registration", last)
	}
}

func TestMediatorRunOnce(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	if err := h.m.Run(context.Background(), nil); !errors.Is(err, openhim.ErrAlreadyRunning) {
		t.Errorf("second Run = %v", err)
	}
}

func TestMediatorStopsOnCancel(t *testing.T) {
	h := newHarness(t)
	h.core.SetDown(openhimtest.Unavailable)
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.m.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	h.idle(t)
	cancel()
	select {
	case <-h.m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("mediator did not stop")
	}
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	cfg := openhim.DefaultConfig() // no password
	if _, err := openhim.New(cfg, "1.0.0", openhim.Sources()); err == nil {
		t.Error("New accepted a config without password")
	}
	cfg.Password = "pw"
	if _, err := openhim.New(cfg, "one", openhim.Sources()); err == nil {
		t.Error("New accepted a non-SemVer version")
	}
}

func TestMediatorLogsNoCredentials(t *testing.T) {
	core := newCore(t)
	clock := openhimtest.NewClock(epoch)
	var buf syncBuffer
	for _, auth := range []string{openhim.AuthBasic, openhim.AuthToken} {
		cfg := coreConfig(core)
		cfg.Auth, cfg.Password = auth, "Wr0ng-Pa55word"
		m, err := openhim.New(cfg, "1.0.0", openhim.Sources("cht"), openhim.WithClock(clock),
			openhim.WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.Run(ctx, nil); err != nil {
			t.Fatal(err)
		}
		h := &harness{core: core, clock: clock, m: m}
		h.idle(t)
		h.tick(t)
		if !errors.Is(m.LastError(), openhim.ErrUnauthorized) {
			t.Errorf("%s: last error %v", auth, m.LastError())
		}
		cancel()
		<-m.Done()
	}
	out := buf.String()
	if strings.Contains(out, "Wr0ng-Pa55word") || strings.Contains(out, "auth-token") {
		t.Errorf("credentials in logs:\n%s", out)
	}
	if !strings.Contains(out, "401") {
		t.Errorf("logs do not report the refusal:\n%s", out)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
