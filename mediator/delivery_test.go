package mediator_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
)

const importPath = "/api/dataValueSets"

// assertStoredOnce checks that the emulator holds want live values and that each was written
// once: an unchanged value posted again is "ignored" by DHIS2 and leaves no history, so a
// second history entry would mean a second, different write.
func assertStoredOnce(t *testing.T, emu *dhis2test.Server, want int) {
	t.Helper()
	if n := emu.Store().Len(); n != want {
		t.Errorf("emulator holds %d values, want %d", n, want)
	}
	for _, v := range emu.Store().Values() {
		if h := emu.Store().History(v.Key); len(h) != 1 {
			t.Errorf("%v written %d times, want once", v.Key, len(h))
		}
	}
}

// assertAttemptsBounded checks every delivery record of a transaction against max.
func assertAttemptsBounded(t *testing.T, tx map[string]any, maxAttempts int) {
	t.Helper()
	for _, x := range tx["deliveries"].([]any) {
		d := x.(map[string]any)
		if n := num(d["attempts"]); n < 1 || n > maxAttempts {
			t.Errorf("batch %v to %v took %d attempts, want 1 to %d", d["seq"], d["target"], n, maxAttempts)
		}
	}
}

func TestStormsOf500And429AreDeliveredWithBoundedAttempts(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	emu.Faults().FailTimes(importPath, http.StatusInternalServerError, 8)
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultRateLimit, Path: importPath, Times: 2, RetryAfter: "1"})
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 12, targets: []testTarget{{
		name: "hmis", url: emu.URL, concurrency: 2, retry: "{initial_delay: 10ms, max_delay: 2s, max_attempts: 6}",
	}}}, mediator.Options{})

	id := h.ingest(dvsBody(epiValues("202401", 0))) // 48 values, 4 batches
	tx := h.waitStatus(id, txlog.TxDelivered)
	assertStoredOnce(t, emu, 48)
	assertAttemptsBounded(t, tx, 6)
	if n := len(h.deadLetters("")); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if n := h.metricValue(t, "tally_delivery_retries_total", "hmis"); n < 5 {
		t.Errorf("tally_delivery_retries_total = %v, want at least 5", n)
	}
	// Retry-After: 1 was honoured: after a 429 the target heard nothing for a second.
	reqs := emu.Requests()
	for i, r := range reqs[:len(reqs)-1] {
		if r.Status == http.StatusTooManyRequests {
			if gap := reqs[i+1].Time.Sub(r.Time); gap < 900*time.Millisecond {
				t.Errorf("request %d came %s after a 429 with Retry-After: 1", i+1, gap)
			}
		}
	}
}

func TestEndlessStormDeadLettersAfterMaxAgeWithoutBurningAttempts(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultStatus, Path: importPath, Status: http.StatusBadGateway})
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 12, targets: []testTarget{{
		name: "hmis", url: emu.URL, concurrency: 2, retry: "{initial_delay: 10ms, max_delay: 50ms, max_attempts: 4, max_age: 1s}",
	}}}, mediator.Options{})
	id := h.ingest(dvsBody(epiValues("202401", 0)))
	tx := h.waitStatus(id, txlog.TxFailed)
	dls := h.deadLetters("reason=exhausted")
	if len(dls) != 4 {
		t.Fatalf("%d dead letters, want the 4 batches: %v", len(dls), dls)
	}
	for _, d := range dls {
		if n := num(d["attempts"]); n > 4 {
			t.Errorf("dead letter %v: %d attempts, want at most 4", d["seq"], n)
		}
	}
	assertAttemptsBounded(t, tx, 4)
	if emu.Store().Len() != 0 {
		t.Error("values were stored during the storm")
	}
}

func TestTargetDownThenUpDeliversEverythingWithoutBurningAttempts(t *testing.T) {
	// "Down for a minute": the retry delays are scaled down (20 ms to 100 ms) and the
	// target stays down for two seconds, twenty times the longest delay. Without the
	// circuit breaker every batch would have used its three attempts many times over and
	// been dead-lettered; with it the messages wait in the stream, and only the first
	// failures and the half-open probes reach the target.
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	g := &gate{next: emu.Handler()}
	cnt := newCounter(g)
	front := httptest.NewServer(cnt)
	defer front.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 8, targets: []testTarget{{
		name: "hmis", url: front.URL + emu.BasePath(), concurrency: 2,
		retry: "{initial_delay: 20ms, max_delay: 100ms, max_attempts: 3}",
	}}}, mediator.Options{})

	id := h.ingest(dvsBody(epiValues("202401", 0))) // 48 values, 6 batches
	state := func() float64 { return h.metricValue(t, "tally_delivery_circuit_state", "hmis") }
	waitUntil(t, 5*time.Second, "the circuit to open", func() bool { return state() > 0 })
	down := time.Now()
	before := cnt.total.Load()
	for time.Since(down) < 2*time.Second {
		if n := len(h.deadLetters("")); n != 0 {
			t.Fatalf("%d dead letters while the target was down", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	probes := cnt.total.Load() - before
	if probes > 40 {
		t.Errorf("%d requests reached the target in 2s of outage; the circuit should have held them back", probes)
	}
	g.open.Store(true)
	tx := h.waitStatus(id, txlog.TxDelivered)
	assertStoredOnce(t, emu, 48)
	assertAttemptsBounded(t, tx, 3)
	if n := len(h.deadLetters("")); n != 0 {
		t.Errorf("%d dead letters after recovery", n)
	}
	if v := state(); v != 0 {
		t.Errorf("circuit state %v after recovery, want 0 (closed)", v)
	}
}

func TestPartialSuccessDeadLettersExactlyTheRejectedAndReplayDeliversThem(t *testing.T) {
	for _, c := range []struct {
		version string
		// atomic: 2.43's import refuses the whole request when a value conflicts, so
		// "exactly the rejected values" is all of them.
		atomic bool
	}{{"2.37", false}, {"2.40", false}, {"2.41", false}, {"2.43", true}} {
		version := c.version
		t.Run(version, func(t *testing.T) {
			emu := dhis2test.NewServer(dhis2test.WithVersion(version))
			defer emu.Close()
			h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{})

			// 48 good values and 8 for a facility the target does not know yet.
			values := epiValues("202401", 0)
			for i, coc := range []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"} {
				values = append(values, dv{"EPI_BCG", "202401", "KL_N_F3", coc, "", fmt.Sprint(100 + i)},
					dv{"EPI_PENTA1", "202401", "KL_N_F3", coc, "", fmt.Sprint(200 + i)})
			}
			id := h.ingest(dvsBody(values))
			status, rejected, accepted, reason := txlog.TxPartiallyDelivered, 8, 48, pipeline.ReasonRejected
			if c.atomic {
				status, rejected, accepted, reason = txlog.TxFailed, 56, 0, pipeline.ReasonPermanent
			}
			tx := h.waitStatus(id, status)
			if s := targetSummary(t, tx, "hmis"); num(s["rejected"]) != rejected {
				t.Errorf("target summary rejects %v values, want %d: %v", s["rejected"], rejected, s)
			}
			if n := emu.Store().Len(); n != accepted {
				t.Errorf("emulator holds %d values, want the %d accepted", n, accepted)
			}
			dls := h.deadLetters("target=hmis")
			if len(dls) != 1 {
				t.Fatalf("%d dead letters, want 1: %v", len(dls), dls)
			}
			dl := dls[0]
			if dl["reason"] != reason || num(dl["values"]) != rejected || dl["txId"] != id {
				t.Errorf("dead letter = %v, want %d values (%s)", dl, rejected, reason)
			}
			code, full := h.admin("GET", fmt.Sprintf("/admin/v1/dlq/%d", num(dl["seq"])), nil)
			if code != http.StatusOK {
				t.Fatalf("show: HTTP %d %v", code, full)
			}
			batch := full["batch"].(map[string]any)
			for _, x := range batch["dataValues"].([]any) {
				if v := x.(map[string]any); v["orgUnit"] != "KL_N_F3" && !c.atomic {
					t.Errorf("dead letter holds an accepted value: %v", v)
				}
			}
			if cs, _ := full["conflicts"].([]any); len(cs) == 0 {
				t.Errorf("dead letter without conflicts: %v", full)
			}

			if err := emu.UpdateMetadata(func(m *dhis2test.Metadata) error {
				m.AddOrgUnit(dhis2test.OrgUnit{ID: "Kx3Fac00003", Code: "KL_N_F3", Name: "North Facility 3", Parent: "KL_NORTH", OpeningDate: "2000-01-01"})
				ds := m.DataSet("EPI_MONTHLY")
				ds.OrgUnits = append(ds.OrgUnits, "KL_N_F3")
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			code, res := h.admin("POST", fmt.Sprintf("/admin/v1/dlq/%d/replay", num(dl["seq"])), nil)
			if code != http.StatusOK || res["status"] != "replayed" {
				t.Fatalf("replay: HTTP %d %v", code, res)
			}
			tx = h.waitStatus(id, txlog.TxDelivered)
			assertStoredOnce(t, emu, 56)
			if n := len(h.deadLetters("")); n != 0 {
				t.Errorf("%d dead letters after the replay", n)
			}
			events, _ := tx["events"].([]any)
			if len(events) != 1 || events[0].(map[string]any)["kind"] != txlog.EventReplayed {
				t.Errorf("transaction events = %v, want one replay", events)
			}
			if s := targetSummary(t, tx, "hmis"); num(s["rejected"]) != 0 {
				t.Errorf("after the replay the summary still rejects %v", s["rejected"])
			}
		})
	}
}

func TestPoisonForOneTargetDoesNotDelayOthers(t *testing.T) {
	t.Run("other target down", func(t *testing.T) {
		good := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
		defer good.Close()
		down := httptest.NewServer(&gate{}) // answers 503, forever
		defer down.Close()
		h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 8, targets: []testTarget{
			{name: "hmis", url: good.URL, concurrency: 1},
			{name: "backup", url: down.URL, concurrency: 1},
		}}, mediator.Options{})
		id := h.ingest(dvsBody(epiValues("202401", 0)))
		waitUntil(t, 5*time.Second, "hmis to be delivered", func() bool {
			s := targetSummary(t, h.tx(id), "hmis")
			return num(s["done"]) == num(s["batches"])
		})
		assertStoredOnce(t, good, 48)
		if s := targetSummary(t, h.tx(id), "backup"); num(s["done"]) != 0 {
			t.Errorf("backup reports done batches while down: %v", s)
		}
	})
	t.Run("other target refuses", func(t *testing.T) {
		good := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
		defer good.Close()
		refusing := httptest.NewServer(http.NotFoundHandler())
		defer refusing.Close()
		h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 8, targets: []testTarget{
			{name: "hmis", url: good.URL, concurrency: 1},
			{name: "backup", url: refusing.URL, concurrency: 1},
		}}, mediator.Options{})
		id := h.ingest(dvsBody(epiValues("202401", 0)))
		h.waitStatus(id, txlog.TxPartiallyDelivered)
		assertStoredOnce(t, good, 48)
		if n := len(h.deadLetters("target=backup&reason=permanent")); n != 6 {
			t.Errorf("%d dead letters for backup, want its 6 batches", n)
		}
	})
	for _, c := range []struct {
		name   string
		status int
		reason string
	}{{"transient poison batch", http.StatusInternalServerError, pipeline.ReasonExhausted},
		{"permanent poison batch", http.StatusBadRequest, pipeline.ReasonPermanent}} {
		t.Run(c.name, func(t *testing.T) {
			emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
			defer emu.Close()
			cnt := newCounter(emu.Handler())
			cnt.setPoison(func(body []byte) int {
				if bytes.Contains(body, []byte(`"9999"`)) {
					return c.status
				}
				return 0
			})
			front := httptest.NewServer(cnt)
			defer front.Close()
			h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 8, targets: []testTarget{{
				name: "hmis", url: front.URL + emu.BasePath(), concurrency: 1,
				retry: "{initial_delay: 20ms, max_delay: 100ms, max_attempts: 3}",
			}}}, mediator.Options{})
			values := epiValues("202401", 0)
			values[0].value = "9999" // the first batch is poison
			id := h.ingest(dvsBody(values))
			tx := h.waitStatus(id, txlog.TxPartiallyDelivered)
			if n := emu.Store().Len(); n != 40 {
				t.Errorf("emulator holds %d values, want the 40 of the healthy batches", n)
			}
			dls := h.deadLetters("")
			if len(dls) != 1 || dls[0]["reason"] != c.reason || num(dls[0]["values"]) != 8 {
				t.Fatalf("dead letters = %v, want the poison batch (%s)", dls, c.reason)
			}
			assertAttemptsBounded(t, tx, 3)
		})
	}
}

func TestTooLargeHalvesTheRequest(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	// A proxy in front of the target refuses bodies of more than 16 values.
	cnt := newCounter(emu.Handler())
	cnt.setPoison(func(body []byte) int {
		if bytes.Count(body, []byte(`"dataElement"`)) > 16 {
			return http.StatusRequestEntityTooLarge
		}
		return 0
	})
	front := httptest.NewServer(cnt)
	defer front.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 48, targets: []testTarget{{
		name: "hmis", url: front.URL + emu.BasePath(), maxValues: 48,
	}}}, mediator.Options{})
	id := h.ingest(dvsBody(epiValues("202401", 0)))
	tx := h.waitStatus(id, txlog.TxDelivered)
	assertStoredOnce(t, emu, 48)
	if s := targetSummary(t, tx, "hmis"); num(s["importCount"].(map[string]any)["imported"]) != 48 {
		t.Errorf("summary = %v", s)
	}
	if n := h.metricValue(t, "tally_delivery_request_splits_total", "hmis"); n != 2 {
		t.Errorf("%v splits, want 2 (48 → 24 → 12)", n)
	}
	// A later batch starts at the learned size: no more 413s.
	splits := cnt.total.Load()
	id = h.ingest(dvsBody(epiValues("202402", 0)))
	h.waitStatus(id, txlog.TxDelivered)
	if n := cnt.total.Load() - splits; n != 4 {
		t.Errorf("second payload took %d requests, want 4 of 12 values", n)
	}
}

func TestRateLimitSpacesRequests(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 8, targets: []testTarget{{
		name: "hmis", url: emu.URL, concurrency: 4, maxValues: 4, rateLimit: "{per_second: 20, burst: 1}",
	}}}, mediator.Options{})
	began := time.Now()
	id := h.ingest(dvsBody(epiValues("202401", 0))) // 12 requests of 4 values
	h.waitStatus(id, txlog.TxDelivered)
	if d := time.Since(began); d < 500*time.Millisecond {
		t.Errorf("12 requests at 20/s took %s, want at least 550ms", d)
	}
	// A token bucket of 20/s with burst 1 lets at most 1 + 20·L requests start in any span
	// L. Arrival times at the target add scheduling jitter to the send times, so one more
	// request is tolerated in a span; a limiter that let requests through in bursts would
	// still exceed it.
	var reqs []dhis2test.Request
	for _, r := range emu.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/dataValueSets") {
			reqs = append(reqs, r) // the imports: metadata and system reads are not rate-limited
		}
	}
	if len(reqs) != 12 {
		t.Fatalf("%d import requests, want 12", len(reqs))
	}
	for i := range reqs {
		for j := i + 1; j < len(reqs); j++ {
			span := reqs[j].Time.Sub(reqs[i].Time)
			if n := float64(j - i + 1); n > 2+20*span.Seconds() {
				t.Errorf("%.0f requests (%d to %d) within %s at 20/s", n, i, j, span)
			}
		}
	}
	assertStoredOnce(t, emu, 48)
}

func TestRefusedCredentialsPauseTheTargetInsteadOfDeadLettering(t *testing.T) {
	// A 401 holds for every batch until an operator fixes the configuration: the circuit
	// opens at once and the batches wait (up to retry.max_age) rather than fill the
	// dead-letter queue.
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	c := testConfig{dir: dir, batchSize: 12, targets: []testTarget{{name: "hmis", url: emu.URL,
		retry: "{initial_delay: 20ms, max_delay: 100ms, max_attempts: 2}"}}}
	h := startConfigured(t, c, mediator.Options{}, func(yml string) string {
		return strings.Replace(yml, "password: district", "password: wrong-password", 1)
	})
	id := h.ingest(dvsBody(epiValues("202401", 0)))
	waitUntil(t, 5*time.Second, "the circuit to open", func() bool {
		return h.metricValue(t, "tally_delivery_circuit_state", "hmis") > 0
	})
	waitUntil(t, 5*time.Second, "probes of the refusing target", func() bool { return len(emu.Requests()) >= 4 })
	if n := len(h.deadLetters("")); n != 0 {
		t.Fatalf("%d dead letters for refused credentials", n)
	}
	h.stop()
	// The operator fixes the password and restarts: everything is delivered.
	h = startConfigured(t, c, mediator.Options{})
	tx := h.waitStatus(id, txlog.TxDelivered)
	assertStoredOnce(t, emu, 48)
	assertAttemptsBounded(t, tx, 2)
}

// TestDeliveryKeepsItsConnectionsBetweenBursts delivers three payloads one after the
// other, each of four batches to a target at concurrency 4 whose imports take long enough
// to be in flight together. Between payloads every worker waits on the stream and every
// connection is idle: Tally must keep them, so the later payloads open none. With
// net/http's default of two idle connections per host, each later payload opened two
// again (a TCP and TLS handshake each on a real DHIS2; dhis2.TestClientKeepsAConnection-
// PerConcurrentRequest shows the client alone doing so).
func TestDeliveryKeepsItsConnectionsBetweenBursts(t *testing.T) {
	const concurrency = 4
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: importPath,
		Delay: dhis2test.Duration(100 * time.Millisecond)})
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 12, targets: []testTarget{{
		name: "hmis", url: emu.URL, concurrency: concurrency,
	}}}, mediator.Options{})

	for i, period := range []string{"202401", "202402", "202403"} {
		id := h.ingest(dvsBody(epiValues(period, 0))) // 48 values, 4 batches
		h.waitStatus(id, txlog.TxDelivered)
		if i == 0 && emu.Connections() < concurrency {
			t.Fatalf("the first payload's 4 batches went over %d connections: they were not in flight together, so the test proves nothing", emu.Connections())
		}
	}
	assertStoredOnce(t, emu, 3*48)
	// One more than the concurrency: a metadata read may overlap the imports.
	if n := emu.Connections(); n > concurrency+1 {
		t.Errorf("three payloads of 4 batches at concurrency %d opened %d connections, want at most %d", concurrency, n, concurrency+1)
	}
}

// TestConsoleConcurrencyHasTheConfigBound: a target's DHIS2 client keeps at most
// config.MaxTargetConcurrency idle connections, so the concurrency the OpenHIM console may
// set must not go past it, or connections beyond it would be closed and opened again.
func TestConsoleConcurrencyHasTheConfigBound(t *testing.T) {
	if openhim.MaxDeliveryConcurrency != config.MaxTargetConcurrency {
		t.Errorf("the console's delivery_concurrency goes to %d, a target's concurrency to %d", openhim.MaxDeliveryConcurrency, config.MaxTargetConcurrency)
	}
}

// TestDeliveryAcrossConnectionsTheTargetCloses delivers through a target that closes
// connections as a Tomcat in front of DHIS2 does, only far sooner: after 2 requests each,
// and once idle for 20 ms. Tally keeps its idle connections (as it must, see
// TestDeliveryKeepsItsConnectionsBetweenBursts), so between payloads it holds connections
// the target is closing or has closed; a request that meets a connection the target closed
// must be sent again on a new one and every value arrive, written once, with no dead letter.
func TestDeliveryAcrossConnectionsTheTargetCloses(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"), dhis2test.WithKeepAlive(20*time.Millisecond, 2))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 12, targets: []testTarget{{
		name: "hmis", url: emu.URL, concurrency: 4,
	}}}, mediator.Options{})

	periods := []string{"202401", "202402", "202403", "202404", "202405", "202406"}
	for _, period := range periods {
		id := h.ingest(dvsBody(epiValues(period, 0))) // 48 values, 4 batches
		h.waitStatus(id, txlog.TxDelivered)
	}
	assertStoredOnce(t, emu, len(periods)*48)
	if n := len(h.deadLetters("")); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	// 24 imports at 2 per connection: the target closed connections under Tally.
	if n := emu.Connections(); n < 12 {
		t.Errorf("%d connections for 24 imports at 2 per connection: the target closed none, so the test proves nothing", n)
	}
}
