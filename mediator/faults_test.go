//go:build faults

package mediator_test

// The fault matrix: real `tally serve` processes against the DHIS2 emulator, counting per
// data value key how many times the target received it (a same-content rewrite counts).
// It runs with -tags faults (CI runs it: .ci/run), since it takes a minute or two:
//
//	go test -tags faults -run TestFault -v ./mediator/
//
// Each case logs one line — values acknowledged / delivered / lost / written twice, and the
// drain time — which is what the closing notes and docs/operations.md quote.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// slowImport makes the target's imports take delay, as a busy DHIS2 does, for the first
// times import requests (0: all). The import itself is applied after the delay even when
// the client has given up meanwhile: a servlet container does not stop a request's thread
// when the client goes away (the disconnect surfaces only when the response is written,
// Tomcat's ClientAbortException), so DHIS2 commits an import whose client timed out.
type slowImport struct {
	next  http.Handler
	delay time.Duration
	times int64
	n     atomic.Int64
	done  atomic.Int64 // slow imports applied
}

func (s *slowImport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/dataValueSets") &&
		(s.times == 0 || s.n.Add(1) <= s.times) {
		time.Sleep(s.delay) // not cut short by the client: see the type's comment
		s.next.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
		s.done.Add(1)
		return
	}
	s.next.ServeHTTP(w, r)
}

// faultConfig is a tally serve configuration for the matrix.
func faultConfig(t *testing.T, dir, addr, target, timeout, ackWait string) string {
	t.Helper()
	cfg := fmt.Sprintf(`http: {addr: %q, shutdown_timeout: 5s}
nats: {store_dir: %q, duplicate_window: 1h}
admin: {token: %s}
sources:
  - name: cht
    auth: {tokens: [%s]}
    id_schemes: {id_scheme: CODE}
targets:
  - name: hmis
    url: %s
    username: %s
    password: %s
    timeout: %s
    concurrency: 2
    retry: {initial_delay: 100ms, max_delay: 1s, max_attempts: 50}
delivery: {ack_wait: %s, probe_interval: 200ms}
log: {level: info}
`, addr, filepath.Join(dir, "nats"), adminToken, chtToken, target, dhis2test.SampleUser, dhis2test.SamplePassword, timeout, ackWait)
	file := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// tally is the count of what reached the target against what was sent.
type tallyOfKeys struct {
	acknowledged, delivered, lost, twice int
	maxReceived                          int
}

func countKeys(emu *dhis2test.Server, want map[dhis2test.Key]string, acknowledged int) tallyOfKeys {
	c := tallyOfKeys{acknowledged: acknowledged}
	for k, v := range want {
		got, ok := emu.Store().Get(k)
		if !ok || got.Value != v {
			c.lost++
			continue
		}
		c.delivered++
		if n := emu.Store().Received(k); n > 1 {
			c.twice++
			c.maxReceived = max(c.maxReceived, n)
		}
	}
	return c
}

func waitDelivered(t *testing.T, h *harness, id string, timeout time.Duration, outputs ...func() string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tx := h.tx(id)
		if tx["status"] == txlog.TxDelivered {
			return tx
		}
		if time.Now().After(deadline) {
			var logs []string
			for _, o := range outputs {
				logs = append(logs, o())
			}
			t.Fatalf("transaction %s at %v after %s\n%s", id, tx["status"], timeout, strings.Join(logs, "\n---\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A target slower than each internal deadline on the delivery path. ack_wait is 1 s, the
// bookkeeping deadline 10 s (bookkeepingTimeout), the target timeout 15 s; the import
// takes 0.5×, 1.2× and 2× each. Below the target timeout every import succeeds and each
// value must be received exactly once, recorded and acknowledged once. At and above it the
// first two requests time out (DHIS2 still commits them); those batches are sent again,
// so their values are received twice — the only duplicates allowed — and everything else
// once.
func TestFaultSlowTarget(t *testing.T) {
	bin := buildTally(t)
	const timeout = 15 * time.Second
	for _, c := range []struct {
		name  string
		delay time.Duration
	}{
		{"0.5x ack_wait", 500 * time.Millisecond},
		{"1.2x ack_wait", 1200 * time.Millisecond},
		{"2x ack_wait", 2 * time.Second},
		{"0.5x bookkeeping", 5 * time.Second},
		{"0.5x timeout", 7500 * time.Millisecond},
		{"1.2x bookkeeping", 12 * time.Second},
		{"2x bookkeeping", 20 * time.Second},
		{"1.2x timeout", 18 * time.Second},
		{"2x timeout", 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
			defer emu.Close()
			beyond := c.delay >= timeout
			slow := &slowImport{next: emu.Handler(), delay: c.delay}
			if beyond {
				slow.times = 2 // the first request of each worker; the target then recovers
			}
			front := httptest.NewServer(slow)
			defer front.Close()
			dir, addr := t.TempDir(), freeAddr(t)
			file := faultConfig(t, dir, addr, front.URL+emu.BasePath(), timeout.String(), "1s")
			base := "http://" + addr
			p := startProcess(t, bin, file, base)
			h := &harness{t: t, base: base}
			values, want := kalimaLoad(3000) // 3 batches of 1,000
			began := time.Now()
			id := h.ingest(dvsBody(values))
			tx := waitDelivered(t, h, id, 3*c.delay+90*time.Second, p.output)
			drain := time.Since(began)
			if beyond {
				// The timed-out imports are still being applied; count once they are.
				waitUntil(t, 2*c.delay, "the timed-out imports to be applied", func() bool { return slow.done.Load() == slow.times })
			}
			k := countKeys(emu, want, num(tx["values"]))
			t.Logf("%-18s delay %-6s acknowledged %d delivered %d lost %d written twice %d (max %d receipts) drain %s",
				c.name, c.delay, k.acknowledged, k.delivered, k.lost, k.twice, k.maxReceived, drain.Round(100*time.Millisecond))
			if k.lost != 0 || k.delivered != len(values) {
				t.Errorf("%d of %d values lost", k.lost, len(values))
			}
			switch {
			case !beyond && k.twice != 0:
				t.Errorf("%d values received twice although every import succeeded within the timeout", k.twice)
			case beyond && (k.twice > 2000 || k.maxReceived > 2):
				t.Errorf("%d values received more than once (at most %d times); only the two timed-out batches may be", k.twice, k.maxReceived)
			}
			s := targetSummary(t, tx, "hmis")
			if num(s["done"]) != 3 || num(s["rejected"]) != 0 {
				t.Errorf("transaction record: %v", s)
			}
			if !beyond {
				// Recorded once each: one attempt per batch.
				if a := num(s["attempts"]); a != 3 {
					t.Errorf("%d attempts recorded for 3 batches that each succeeded at once", a)
				}
			}
		})
	}
}

// kill -9 during ingest (while the request body is being read), while ingest stores the
// batches it mapped straight into TALLY_DELIVER (delivery of the first ones has begun, the
// client has no answer yet), during mapping (while the mapper waits for the target's
// metadata) and during delivery, with 100,000 values: after a restart on the same store
// nothing is lost, and the values written twice are at most the batches in flight when the
// process died.
func TestFaultKillAtEachStage(t *testing.T) {
	bin := buildTally(t)
	values, want := kalimaLoad(100_000)
	body := dvsBody(values)
	for _, stage := range []string{"ingest", "publishing", "mapping", "delivery"} {
		t.Run(stage, func(t *testing.T) {
			emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
			defer emu.Close()
			dir, addr := t.TempDir(), freeAddr(t)
			file := faultConfig(t, dir, addr, emu.URL, "10s", "2s")
			if stage == "mapping" {
				// A mapping set makes the mapper read the target's metadata first; slowed
				// down, the mapper is mid-batch when the process dies.
				addMappingSet(t, file)
				emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: "/api/dataElements", Delay: dhis2test.Duration(3 * time.Second), Times: 1})
			}
			if stage == "delivery" {
				emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: importPath, Delay: dhis2test.Duration(40 * time.Millisecond)})
			}
			batch := 1000 // the source's batch_size
			if stage == "publishing" {
				// Ingest maps the batches as it reads the payload, so storing them once it is
				// read is quick: five thousand batches of 20 keep it busy long enough for
				// delivery to import the first ones before the client has its answer.
				batch = 20
				setBatchSize(t, file, batch)
			}
			base := "http://" + addr
			first := startProcess(t, bin, file, base)
			h := &harness{t: t, base: base}
			var id string
			warm := 0 // values delivered before the payload
			switch stage {
			case "ingest":
				// The body arrives slowly; the process dies before it is all read. The
				// client sees the connection fail and sends the request again.
				half := make(chan struct{})
				go func() {
					<-half
					first.kill()
				}()
				code, _ := postSlowly(base+"/ingest/cht", body, half)
				if code != 0 {
					t.Fatalf("the interrupted request was answered (HTTP %d)", code)
				}
			case "publishing":
				// A first payload makes the target's metadata and release known, so that the
				// next one is mapped at ingest (pipeline.Direct); the metric says it was.
				warm = len(epiValues("194901", 0)) // before the load's first month: keys of their own
				warmBody := dvsBody(epiValues("194901", 0))
				waitDelivered(t, h, h.ingest(warmBody), 30*time.Second, first.output)
				if n := metric(t, h, `tally_mapper_batches_total{source="cht",stage="ingest"}`); n < 1 {
					t.Fatalf("the first payload was not mapped at ingest (%v batches)", n)
				}
				answered := make(chan int, 1)
				go func() {
					code, _ := postIngest(base+"/ingest/cht", bytes.NewReader(body))
					answered <- code
				}()
				// Five batches of this payload imported: its batches are still being stored
				// (storing the 5,000 batches takes several times as long), and the first ones
				// are delivered and recorded. Without the retry's knowledge of them
				// (txlog.Settled) they would be sent again: more than the in-flight bound.
				waitUntil(t, 30*time.Second, "five batches of the payload to be imported", func() bool { return emu.Store().Len() > warm+5*batch })
				first.kill()
				if code := <-answered; code != 0 {
					t.Fatalf("the request was answered (HTTP %d) before the process died: the kill came after ingest had stored every batch", code)
				}
			case "mapping":
				id = h.ingest(body)
				waitUntil(t, 10*time.Second, "the mapper to ask for metadata", func() bool {
					return emu.Faults().List()[0].Hits > 0
				})
				first.kill()
			case "delivery":
				id = h.ingest(body)
				waitUntil(t, 30*time.Second, "delivery to start", func() bool { return emu.Store().Len() > 0 })
				first.kill()
			}
			atKill := emu.Store().Len() - warm
			restarted := time.Now()
			second := startProcess(t, bin, file, base)
			if stage == "ingest" || stage == "publishing" {
				id = h.ingest(body) // the client's retry
			}
			tx := waitDelivered(t, h, id, 120*time.Second, first.output, second.output)
			drain := time.Since(restarted)
			k := countKeys(emu, want, num(tx["values"]))
			t.Logf("kill during %-8s acknowledged %d delivered %d lost %d written twice %d (max %d receipts; %d stored at the kill) drain %s",
				stage, k.acknowledged, k.delivered, k.lost, k.twice, k.maxReceived, atKill, drain.Round(100*time.Millisecond))
			if k.lost != 0 || k.delivered != len(values) || k.acknowledged != len(values) {
				t.Errorf("lost %d, delivered %d, acknowledged %d of %d", k.lost, k.delivered, k.acknowledged, len(values))
			}
			// The crash window: the batches in flight (2 workers × a batch). A kill while
			// ingest stores the payload (the client has no answer) does not widen it: the
			// batches delivered before the kill were acked and removed, and a restarted stream
			// no longer knows their ids (nats-server rebuilds its duplicate window from the
			// messages it still holds: stream.go, rebuildDedupe), but the client's retry finds
			// them settled in the transaction log and leaves them out (txlog.BeginStoring).
			inFlight := 2 * batch
			if k.twice > inFlight || k.maxReceived > 2 {
				t.Errorf("%d values received twice (max %d receipts), more than the batches in flight", k.twice, k.maxReceived)
			}
			if (stage == "ingest" || stage == "mapping") && k.twice != 0 {
				t.Errorf("%d values received twice although the process died before delivery began", k.twice)
			}
			if err := second.stop(15 * time.Second); err != nil {
				t.Errorf("SIGTERM: %v\n%s", err, second.output())
			}
		})
	}
}

// setBatchSize sets source cht's batch_size.
func setBatchSize(t *testing.T, file string, n int) {
	t.Helper()
	addToSource(t, file, fmt.Sprintf("    batch_size: %d\n", n), "")
}

// addMappingSet gives source cht a mapping set that passes the HMIS codes through, so the
// mapper needs the target's metadata.
func addMappingSet(t *testing.T, file string) {
	t.Helper()
	dir := filepath.Dir(file)
	if err := os.WriteFile(filepath.Join(dir, "cht.csv"), []byte("source,data_element\nMEASLES,EPI_MEASLES1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addToSource(t, file, "    mapping: cht-to-hmis\n    unmapped: pass\n", `mappings:
  - name: cht-to-hmis
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    tables: [cht.csv]
`)
}

// addToSource adds settings to source cht of faultConfig's file, and sections at its end.
func addToSource(t *testing.T, file, settings, sections string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const after = "    id_schemes: {id_scheme: CODE}\n"
	yml := strings.Replace(string(data), after, after+settings, 1) + sections
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// postSlowly posts body in two halves, closing half after the first; it returns the status
// code, or 0 when the connection failed before an answer.
func postSlowly(url string, body []byte, half chan struct{}) (int, error) {
	pr, pw := io.Pipe()
	var once sync.Once
	go func() {
		_, _ = pw.Write(body[:len(body)/2])
		once.Do(func() { close(half) })
		time.Sleep(5 * time.Second) // the process is killed meanwhile
		_, _ = pw.Write(body[len(body)/2:])
		_ = pw.Close()
	}()
	return postIngest(url, pr)
}

// postIngest posts body to source cht's ingest url; it returns the status code, or 0 when the
// connection failed before an answer.
func postIngest(url string, body io.Reader) (int, error) {
	req, _ := http.NewRequest("POST", url, body)
	req.Header.Set("Authorization", "Bearer "+chtToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}
