package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/httpapi/auth"
	"github.com/tally-hmis/tally/mediator/stream/streamtest"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// benchBucket is a tally_tx bucket on an in-process JetStream server holding n transaction
// records (each with a delivery record), written with asynchronous publishes.
func benchBucket(b *testing.B, n int) *txlog.TxLog {
	b.Helper()
	js := streamtest.JetStream(b, jetstream.WithPublishAsyncMaxPending(4096))
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "tally_tx", History: 1})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("%032x", i)
		rec, _ := json.Marshal(txlog.TxRecord{ID: id, Source: []string{"cht", "dvs"}[i%2], Received: start.Add(time.Duration(i) * time.Minute),
			Format: "json", Values: 48, Batches: 1, Targets: []string{"hmis"}})
		del, _ := json.Marshal(txlog.DeliveryRecord{Target: "hmis", Outcome: txlog.OutcomeDelivered, Values: 48,
			Counts: txlog.ImportCount{Imported: 48}, Attempts: 1, Time: start.Add(time.Duration(i) * time.Minute)})
		for key, data := range map[string][]byte{id: rec, txlog.DeliveryKey(id, "hmis", 0, 0): del} {
			if _, err := js.PublishAsync("$KV.tally_tx."+key, data); err != nil {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishing the records took too long")
	}
	l := txlog.New(kv)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Follow(fctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(2 * time.Minute); !l.Following(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the transaction log's copy is not ready")
		}
	}
	return l
}

// BenchmarkTransactionListPage renders the first page of the transaction list, and a page
// further on, with 100,000 transactions in the log (issue #17: under 200 ms).
func BenchmarkTransactionListPage(b *testing.B) {
	tl := benchBucket(b, 100_000)
	cfg := &config.Config{Sources: []config.Source{{Name: "cht"}, {Name: "dvs"}}, Targets: []config.Target{{Name: "hmis"}}}
	con, err := New(Config{Credentials: auth.New(config.Admin{Token: "operator-token-0123456789"}), Config: cfg, TxLog: tl})
	if err != nil {
		b.Fatal(err)
	}
	e := echo.New()
	con.Register(e)
	s := con.sessions.create(auth.Principal{Name: "admin", Scope: auth.Operate})
	for _, path := range []string{"/console/transactions", "/console/transactions?source=cht&page=40"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", path, nil)
				req.AddCookie(&http.Cookie{Name: cookieName, Value: s.id})
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d", rec.Code)
				}
			}
		})
	}
}
