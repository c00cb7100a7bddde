package mediator

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// startInternal starts a service on the sample emulator for tests that need the stream
// itself (to publish what no client could send).
func startInternal(t *testing.T, delivery string) (*Service, *dhis2test.Server) {
	t.Helper()
	emu := dhis2test.NewServer(dhis2test.WithT(t), dhis2test.WithVersion("2.40"))
	yml := fmt.Sprintf(`nats: {store_dir: %q}
admin: {token: admin-token-0123456789}
sources:
  - name: cht
    auth: {tokens: [cht-token-0123456789]}
    id_schemes: {id_scheme: CODE}
targets:
  - name: hmis
    url: %s
    username: admin
    password: district
    retry: {initial_delay: 20ms, max_delay: 100ms}
delivery: {%s}
`, t.TempDir(), emu.URL, delivery)
	cfg, err := config.Parse("test.yaml", []byte(yml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s, emu
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deadLettersOf(t *testing.T, s *Service, f dlq.DLQFilter) []*dlq.DeadLetterSummary {
	t.Helper()
	list, _, _, err := s.deadLetters.List(context.Background(), f, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// postSample posts a small payload through the real endpoint and returns its transaction.
func postSample(t *testing.T, s *Service, period string) string {
	t.Helper()
	body := `{"period":"` + period + `","orgUnit":"KL_N_F1","dataValues":[` +
		`{"dataElement":"EPI_BCG","categoryOptionCombo":"F_LT1","value":"3"},` +
		`{"dataElement":"EPI_PENTA1","categoryOptionCombo":"F_LT1","value":"4"}]}`
	req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/ingest/cht", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer cht-token-0123456789")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest: HTTP %d", resp.StatusCode)
	}
	v, err := s.txlog.List(context.Background(), "cht", 1)
	if err != nil || len(v) == 0 {
		t.Fatalf("no transaction recorded: %v", err)
	}
	return v[0].ID
}

func txStatus(s *Service, id string) string {
	v, err := s.txlog.View(context.Background(), id)
	if err != nil {
		return err.Error()
	}
	return v.Status
}

// A batch written by a newer Tally is left for a replica that reads it, for
// delivery.upgrade_wait, and then becomes a dead letter holding the raw bytes and the
// reason; bytes that are no batch at all become one at once. Nothing is terminated, and the
// payloads behind them are delivered. Replay puts the raw message back where it came from.
func TestUndecodableMessagesBecomeDeadLettersNotDeletions(t *testing.T) {
	s, emu := startInternal(t, "ack_wait: 2s, upgrade_wait: 1500ms")
	ctx := context.Background()
	good := transform.EncodeBatch(&transform.Batch{TxID: "t-newer", Source: "cht", Values: []transform.DataValue{
		{DataElement: "EPI_BCG", Period: "202401", OrgUnit: "KL_N_F1", CategoryOptionCombo: "F_LT1", Value: "1"}}})
	newer := bytes.Clone(good)
	newer[1] = transform.CodecVersion + 1
	publish := func(subject, id string, data []byte) {
		t.Helper()
		if err := s.pub.Publish(ctx, stream.Msg{Subject: subject, ID: id, Data: data,
			Header: nats.Header{pipeline.HeaderTx: []string{"t-" + id}}}); err != nil {
			t.Fatal(err)
		}
	}
	published := time.Now()
	publish(stream.IngestPrefix+"cht", "newer-ingest", newer)
	publish(stream.DeliverPrefix+"hmis", "newer-deliver", newer)
	publish(stream.IngestPrefix+"cht", "garbage", []byte("this is not a batch"))

	// Corrupt bytes: a dead letter at once, with the bytes as they were.
	waitFor(t, 5*time.Second, "the corrupt message's dead letter", func() bool {
		return len(deadLettersOf(t, s, dlq.DLQFilter{Reason: pipeline.ReasonUndecodable, TxID: "t-garbage"})) == 1
	})
	dl := deadLettersOf(t, s, dlq.DLQFilter{TxID: "t-garbage"})[0]
	full, err := s.deadLetters.At(ctx, dl.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Target != pipeline.IngestDLQ || full.Raw == nil || string(full.Raw.Data) != "this is not a batch" ||
		full.Raw.Subject != stream.IngestPrefix+"cht" || dl.Source != "cht" {
		t.Fatalf("dead letter of the corrupt message: %+v raw %+v", dl, full.Raw)
	}
	// The newer version waits: no dead letter while upgrade_wait has not passed.
	if n := len(deadLettersOf(t, s, dlq.DLQFilter{TxID: "t-newer-ingest"})); n != 0 && time.Since(published) < 1500*time.Millisecond {
		t.Fatalf("a newer version's message was dead-lettered before upgrade_wait passed")
	}
	// Payloads behind them flow.
	id := postSample(t, s, "202402")
	waitFor(t, 10*time.Second, "the payload behind to be delivered", func() bool { return txStatus(s, id) == txlog.TxDelivered })

	// Past upgrade_wait, each newer-version message is a dead letter of its stage.
	for _, c := range []struct{ tx, target string }{{"t-newer-ingest", pipeline.IngestDLQ}, {"t-newer-deliver", "hmis"}} {
		waitFor(t, 15*time.Second, "the dead letter of "+c.tx, func() bool {
			return len(deadLettersOf(t, s, dlq.DLQFilter{TxID: c.tx, Target: c.target})) == 1
		})
		got := deadLettersOf(t, s, dlq.DLQFilter{TxID: c.tx})[0]
		if since := got.Stored.Sub(published); since < 1500*time.Millisecond {
			t.Errorf("%s dead-lettered %s after it was stored, before upgrade_wait", c.tx, since)
		}
		if got.Reason != pipeline.ReasonUndecodable || !strings.Contains(got.Error, "newer version") {
			t.Errorf("%s: reason %q error %q", c.tx, got.Reason, got.Error)
		}
	}
	// Nothing is left in the work queues: every message was settled, none deleted unseen.
	for _, name := range []string{stream.IngestStream, stream.DeliverStream} {
		st, _ := s.conn.JS.Stream(ctx, name)
		info, _ := st.Info(ctx)
		if info.State.Msgs != 0 {
			t.Errorf("%s holds %d messages", name, info.State.Msgs)
		}
	}
	if n := emu.Store().Len(); n != 2 {
		t.Errorf("emulator holds %d values, want the sample's 2", n)
	}

	// Replay puts the raw bytes back where they came from: still unreadable by this build,
	// they come back as a new dead letter, and the replayed one is gone.
	res, err := s.deadLetters.Replay(ctx, dl.Seq, false)
	if err != nil || res.Status != "replayed" {
		t.Fatalf("replaying a raw dead letter: %v %+v", err, res)
	}
	waitFor(t, 5*time.Second, "the replayed message's new dead letter", func() bool {
		l := deadLettersOf(t, s, dlq.DLQFilter{TxID: "t-garbage"})
		return len(l) == 1 && l[0].Seq != dl.Seq
	})
}

// sideConsumer runs the production consume chain around work on a subject of TALLY_DELIVER
// that no target uses, so that a test can make the stage's work misbehave (panic, never
// finish) while the service's own consumers run beside it.
func sideConsumer(t *testing.T, s *Service, maxDeliver int, work pipeline.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &pipeline.Consumer{Stream: stream.DeliverStream, Workers: 1, Log: s.log,
		Handle: s.chain.Wrap(pipeline.Stage{Name: "deliver", DLQTarget: "side", AckWait: time.Second, MaxDeliver: maxDeliver}, work),
		Config: jetstream.ConsumerConfig{Durable: "test-side", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second,
			MaxDeliver: maxDeliver + 20, FilterSubject: stream.DeliverPrefix + "side"}}
	done := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx, ctx, s.conn.JS, func() { close(ready) }); err != nil {
			t.Error(err)
		}
	}()
	<-ready
	t.Cleanup(func() { cancel(); <-done })
}

// A message that makes the stage panic becomes a dead letter naming the panic and where it
// happened; the worker, the process and the messages behind it go on.
func TestPanicBecomesADeadLetter(t *testing.T) {
	s, _ := startInternal(t, "ack_wait: 2s")
	ctx := context.Background()
	handled := make(chan string, 10)
	sideConsumer(t, s, 50, func(_ context.Context, msg jetstream.Msg, _ pipeline.Permit) error {
		if string(msg.Data()) == "boom" {
			var m map[string]int
			m["boom"]++ // a nil map: a real runtime panic, not a test's panic() call
		}
		handled <- string(msg.Data())
		return nil
	})
	for _, d := range []string{"before", "boom", "after"} {
		if err := s.pub.Publish(ctx, stream.Msg{Subject: stream.DeliverPrefix + "side", ID: d, Data: []byte(d),
			Header: nats.Header{pipeline.HeaderTx: []string{"t-" + d}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"before", "after"} {
		select {
		case got := <-handled:
			if got != want {
				t.Fatalf("handled %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q was not handled: the worker died with the panic", want)
		}
	}
	waitFor(t, 5*time.Second, "the panic's dead letter", func() bool {
		return len(deadLettersOf(t, s, dlq.DLQFilter{Target: "side", Reason: pipeline.ReasonPanic})) == 1
	})
	dl := deadLettersOf(t, s, dlq.DLQFilter{Target: "side"})[0]
	t.Logf("dead letter: %s", dl.Error)
	if !strings.Contains(dl.Error, "assignment to entry in nil map") || !strings.Contains(dl.Error, "consume_internal_test.go") {
		t.Errorf("dead letter error %q does not name the panic and where it happened", dl.Error)
	}
	// Another service message still flows through the real stages.
	id := postSample(t, s, "202403")
	waitFor(t, 10*time.Second, "delivery after the panic", func() bool { return txStatus(s, id) == txlog.TxDelivered })
}

// A message that is returned over and over (here: its work always asks for a retry) is
// dead-lettered by the backstop once delivered maxDeliver times, and is never dropped.
func TestBackstopDeadLettersAMessageThatNeverFinishes(t *testing.T) {
	s, _ := startInternal(t, "ack_wait: 2s")
	ctx := context.Background()
	var tries atomic.Int32
	sideConsumer(t, s, 4, func(context.Context, jetstream.Msg, pipeline.Permit) error {
		return pipeline.RetryIn(time.Millisecond, fmt.Errorf("try %d", tries.Add(1)))
	})
	if err := s.pub.Publish(ctx, stream.Msg{Subject: stream.DeliverPrefix + "side", ID: "stuck", Data: []byte("x"),
		Header: nats.Header{pipeline.HeaderTx: []string{"t-stuck"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the backstop's dead letter", func() bool {
		return len(deadLettersOf(t, s, dlq.DLQFilter{Target: "side", Reason: pipeline.ReasonMaxDeliver})) == 1
	})
	if n := tries.Load(); n != 3 {
		t.Errorf("the work ran %d times, want 3 (the 4th delivery is dead-lettered unread)", n)
	}
}
