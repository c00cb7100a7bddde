package mediator_test

import (
	"context"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// A client whose request got no answer sends it again. When the process died while ingest
// stored the payload, delivery of its first batches may have begun, and the transaction
// record (written once every batch is stored) is missing. A restarted JetStream rebuilds its
// duplicate window only from the messages it still holds (nats-server stream.go,
// rebuildDedupe), so it no longer knows the ids of the batches it delivered and removed: only
// the transaction log can tell the retry what is settled.
//
// The test leaves the store as such a death does: the payload delivered, its transaction
// record gone. It restarts Tally on that store and sends the request again, once through the
// mapper stage (a fresh process has no metadata at hand) and once mapped at ingest (after a
// first payload made the metadata known). Nothing may arrive twice, and the transaction must
// end delivered with every batch accounted for. The real kill is in TestFaultKillAtEachStage
// ("publishing"), behind the faults tag.
func TestARetryDoesNotResendWhatItsFirstAttemptSettled(t *testing.T) {
	const token = "strict-token-0123456789"
	// Five batches of two (source strict: batch_size 2, duplicates sum). Visits at KL_N_F1
	// are in the first and the fourth batch: the sum needs the first batch's keys, so the
	// retry still maps a settled batch; it only does not send it.
	values := `{"dataElement":"visits","orgUnit":"KL_N_F1","value":"1"},{"dataElement":"u5","orgUnit":"KL_N_F1","value":"5"},
	  {"dataElement":"visits","orgUnit":"KL_N_F2","value":"2"},{"dataElement":"u5","orgUnit":"KL_N_F2","value":"6"},
	  {"dataElement":"visits","orgUnit":"KL_S_F1","value":"3"},{"dataElement":"u5","orgUnit":"KL_S_F1","value":"7"},
	  {"dataElement":"visits","orgUnit":"KL_N_F1","value":"3"},{"dataElement":"u5","orgUnit":"KL_S_F2","value":"8"},
	  {"dataElement":"visits","orgUnit":"KL_S_F2","value":"4"},{"dataElement":"u5","orgUnit":"KL_N_F1","value":"9"}`
	// Through the mapper stage, a code the mapping set does not have (unmapped: reject) in
	// the first batch: the refused value is a dead letter, which the retry must not write a
	// second time. Mapped at ingest, every batch is plain: a batch with a refused value, and
	// every one after it, is left to the mapper stage, in the first attempt as in the retry
	// (ingest maps a batch before it knows what the first attempt settled).
	refused := `{"dataElement":"pregnancies","orgUnit":"KL_N_F1","value":"2"},`
	for _, stage := range []string{"mapper", "ingest"} {
		t.Run(stage, func(t *testing.T) {
			body, batches, deadLetters, status := `{"period":"202406","dataValues":[`+refused+values+`]}`, 6.0, 1, txlog.TxPartiallyDelivered
			if stage == "ingest" {
				body, batches, deadLetters, status = `{"period":"202406","dataValues":[`+values+`]}`, 5, 0, txlog.TxDelivered
			}
			emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
			defer emu.Close()
			dir := t.TempDir()
			warmUp := func(h *harness, period string) {
				// Once the target's metadata is at hand, plain payloads are mapped at ingest.
				h.send("strict", token, `{"period":"`+period+`","orgUnit":"KL_S_F1","dataValues":[{"dataElement":"visits","value":"10"}]}`, txlog.TxDelivered)
			}

			h := startTallyCfg(t, emu.URL, dir, directSources, chwMapping)
			warmUp(h, "202404")
			id := h.send("strict", token, body, status)["id"].(string)
			h.stop()
			forgetTransaction(t, dir, id)

			h = startTallyCfg(t, emu.URL, dir, directSources, chwMapping)
			want := [2]float64{0, batches} // at ingest, by the mapper stage
			if stage == "ingest" {
				warmUp(h, "202405")
				want = [2]float64{batches, 0}
			}
			before, received := stages(t, h, "strict"), emu.Store().ReceivedTotal()
			if again := h.send("strict", token, body, status)["id"].(string); again != id {
				t.Fatalf("the retry became transaction %s, not %s", again, id)
			}
			// The transaction is done before the retry's batches are all mapped: the first
			// attempt settled them. Wait for the mapping to count them, then compare.
			waitUntil(t, 10*time.Second, "the retry's batches to be mapped", func() bool {
				now := stages(t, h, "strict")
				return now[0]-before[0]+now[1]-before[1] >= want[0]+want[1]
			})
			wantStages(t, h, "strict", before, want[0], want[1])
			if n := emu.Store().ReceivedTotal() - received; n != 0 {
				t.Errorf("the retry sent %d values again that its first attempt had delivered", n)
			}
			if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202406", "KL_N_F1", "", ""); !ok || v.Value != "4" {
				t.Errorf("visits at KL_N_F1 = %q, %v; want 1 + 3 = 4", v.Value, ok)
			}
			if dl := h.deadLetters("reason=mapping"); len(dl) != deadLetters {
				t.Errorf("%d dead letters after the retry, want %d", len(dl), deadLetters)
			}
			tx := h.tx(id)
			if s := targetSummary(t, tx, "hmis"); num(s["done"]) != int(want[0]+want[1]) {
				t.Errorf("transaction record after the retry: %v", s)
			}
		})
	}
}

// forgetTransaction removes a transaction's record from the stopped Tally's store, as a
// process that died before writing it leaves the store.
func forgetTransaction(t *testing.T, dir, id string) {
	t.Helper()
	withStore(t, dir, func(c *stream.Conn) {
		ctx := context.Background()
		kv, err := c.JS.KeyValue(ctx, stream.TxBucket)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
}
