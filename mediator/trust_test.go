package mediator_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/stream/streamtest"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// A payload's identity is the source, the body and the import options: the same body sent
// again with ?importStrategy=DELETE, or with a corrected id scheme, is another transaction
// and is applied; an identical request is recognised; and a repeat of a request whose
// delivery failed is answered with that failure, not "Import was successful".
func TestSameBodyWithOtherOptionsIsAnotherTransaction(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{})
	body := dvsBody(epiValues("202401", 0)[:8])
	post := func(query string) (int, map[string]any) {
		t.Helper()
		return h.post("/api/dataValueSets"+query, "application/json", "Bearer "+chtToken, body)
	}
	reference := func(resp map[string]any) string {
		t.Helper()
		r, _ := resp["response"].(map[string]any)
		id, _ := r["reference"].(string)
		if id == "" {
			t.Fatalf("no transaction reference in %v", resp)
		}
		return id
	}

	// Sent first with the wrong id scheme (the values are written in codes), every value
	// is refused.
	_, resp := post("?idScheme=UID")
	wrong := reference(resp)
	h.waitStatus(wrong, txlog.TxFailed)
	// Sent again with the scheme corrected: another payload, applied.
	code, resp := post("?idScheme=CODE")
	first := reference(resp)
	if first == wrong {
		t.Fatalf("the corrected request was taken for the failed one (%s)", wrong)
	}
	h.waitStatus(first, txlog.TxDelivered)
	if code != http.StatusOK || emu.Store().Len() != 8 {
		t.Fatalf("corrected post: HTTP %d, %d values stored", code, emu.Store().Len())
	}
	// The identical request: the same transaction, nothing stored twice, and the answer
	// says what became of it. (No parameter would mean UID, as to DHIS2: another payload.)
	for _, q := range []string{"?idScheme=CODE", "?idScheme=code"} {
		code, resp = post(q)
		if id := reference(resp); id != first || code != http.StatusOK ||
			!strings.Contains(resp["response"].(map[string]any)["description"].(string), "delivered") {
			t.Fatalf("repeat %q: HTTP %d %v, want transaction %s answered as delivered", q, code, resp, first)
		}
	}

	// The same body with importStrategy=DELETE is another payload: it deletes.
	code, resp = post("?importStrategy=DELETE&idScheme=CODE")
	del := reference(resp)
	if del == first || code != http.StatusOK {
		t.Fatalf("DELETE of the same body: HTTP %d, transaction %s (first %s)", code, del, first)
	}
	h.waitStatus(del, txlog.TxDelivered)
	if n := emu.Store().Len(); n != 0 {
		t.Fatalf("%d values left after the DELETE", n)
	}

	// The repeat of the request whose every value the target refused is answered with
	// that: DHIS2 2.40's 409 WARNING (per-value conflicts, nothing imported).
	code, resp = post("?idScheme=UID")
	if code != http.StatusConflict || resp["status"] != "WARNING" || reference(resp) != wrong {
		t.Fatalf("repeat of a failed request: HTTP %d %v, want 409 WARNING for %s", code, resp, wrong)
	}
	if ic := resp["response"].(map[string]any)["importCount"].(map[string]any); ic["imported"] != float64(0) || ic["ignored"] != float64(8) {
		t.Errorf("the repeat's counts %v, want 8 ignored", ic)
	}
	if cs, _ := resp["response"].(map[string]any)["conflicts"].([]any); len(cs) == 0 {
		t.Errorf("the repeat's answer carries no conflicts: %v", resp)
	}

	// The native endpoint says so too.
	_, native := h.post("/ingest/cht?idScheme=UID", "application/json", "Bearer "+chtToken, body)
	if native["status"] != "duplicate" || native["transactionStatus"] != txlog.TxFailed {
		t.Errorf("native repeat: %v, want duplicate with transactionStatus failed", native)
	}
}

// A target that comes back is noticed by a probe (GET /api/system/ping) within
// delivery.probe_interval, not when the circuit's cool-down runs out. The cool-down here
// is at least 10 s (retry.initial_delay 5 s × 2² with half jitter) and the target is back
// after one second, so deliveries resuming within 8 s of its recovery can only be the
// probe's doing.
func TestTargetRecoveryIsNoticedByAProbe(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	g := &gate{next: emu.Handler()}
	front := httptest.NewServer(g)
	defer front.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 8, targets: []testTarget{{
		name: "hmis", url: front.URL + emu.BasePath(), concurrency: 2,
		retry: "{initial_delay: 5s, max_delay: 1m, max_attempts: 100}",
	}}}, mediator.Options{}, func(y string) string {
		return strings.Replace(y, "delivery: {", "delivery: {probe_interval: 200ms, ", 1)
	})
	id := h.ingest(dvsBody(epiValues("202401", 0))) // 6 batches
	waitUntil(t, 10*time.Second, "the circuit to open", func() bool {
		return h.metricValue(t, "tally_delivery_circuit_state", "hmis") == 2
	})
	g.open.Store(true)
	up := time.Now()
	h.waitStatus(id, txlog.TxDelivered)
	if d := time.Since(up); d > 8*time.Second {
		t.Errorf("deliveries resumed %s after the target came back; the probe should have noticed within a second", d)
	}
	assertStoredOnce(t, emu, 48)
}

// An operator can probe now: POST /admin/v1/targets/{name}/probe ends the cool-down of a
// target that answers, and says when it does not.
func TestProbeNow(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	g := &gate{next: emu.Handler()}
	front := httptest.NewServer(g)
	defer front.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), batchSize: 8, targets: []testTarget{{
		name: "hmis", url: front.URL + emu.BasePath(), concurrency: 2,
		retry: "{initial_delay: 5s, max_delay: 1m, max_attempts: 100}",
	}}}, mediator.Options{}, func(y string) string {
		return strings.Replace(y, "delivery: {", "delivery: {probe_interval: 10m, ", 1)
	})
	id := h.ingest(dvsBody(epiValues("202401", 0)))
	waitUntil(t, 10*time.Second, "the circuit to open", func() bool {
		return h.metricValue(t, "tally_delivery_circuit_state", "hmis") == 2
	})
	code, res := h.admin("POST", "/admin/v1/targets/hmis/probe", nil)
	if code != http.StatusOK || res["reachable"] != false || res["circuit"] != "open" || res["error"] == "" {
		t.Fatalf("probe of a target that is down: HTTP %d %v", code, res)
	}
	g.open.Store(true)
	up := time.Now()
	code, res = h.admin("POST", "/admin/v1/targets/hmis/probe", nil)
	if code != http.StatusOK || res["reachable"] != true || res["resumed"] != true {
		t.Fatalf("probe of a target that is back: HTTP %d %v", code, res)
	}
	h.waitStatus(id, txlog.TxDelivered)
	if d := time.Since(up); d > 8*time.Second {
		t.Errorf("deliveries resumed %s after the probe", d)
	}
	if code, _ := h.admin("POST", "/admin/v1/targets/nowhere/probe", nil); code != http.StatusNotFound {
		t.Errorf("probe of an unknown target: HTTP %d, want 404", code)
	}
}

// An ingest never hangs: with two of three NATS nodes gone, no stream has a quorum and
// JetStream can never confirm a payload; the client gets 503 with Retry-After within
// http.store_timeout, not a request that hangs and is delivered later.
func TestIngestAnswers503WhenJetStreamCannotStore(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a JetStream cluster")
	}
	servers, urls := streamtest.RunCluster(t)
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startConfigured(t, testConfig{dir: t.TempDir(), targets: []testTarget{{name: "hmis", url: emu.URL}}}, mediator.Options{},
		func(y string) string {
			y = strings.Replace(y, "nats: {", fmt.Sprintf("nats: {url: %q, replicas: 3, ", strings.Join(urls, ",")), 1)
			return "http: {store_timeout: 2s}\n" + y
		})
	h.waitStatus(h.ingest(dvsBody(epiValues("202401", 0)[:4])), txlog.TxDelivered)

	servers[1].Shutdown()
	servers[2].Shutdown()
	began := time.Now()
	req, _ := http.NewRequest("POST", h.base+"/ingest/cht", bytes.NewReader(dvsBody(epiValues("202402", 0)[:4])))
	req.Header.Set("Authorization", "Bearer "+chtToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(began)
	t.Logf("after %s: HTTP %d %s", took, resp.StatusCode, msg)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("HTTP %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Bounded by store_timeout (2s) plus the request's own work; far below a hang.
	if took > 10*time.Second {
		t.Errorf("the 503 took %s with store_timeout 2s", took)
	}
}
