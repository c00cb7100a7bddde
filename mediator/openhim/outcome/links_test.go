package outcome

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// TestOpenHIMLinksAreBounded: a client repeating one payload through the core links a core
// transaction per request to one Tally transaction; past maxLinks the oldest link whose
// outcome is already queued makes room, and without one a new link is refused.
func TestOpenHIMLinksAreBounded(t *testing.T) {
	s := startLinks(t)
	ctx := context.Background()
	const tx = "0123456789abcdef0123456789abcdef"
	core := func(i int) string { return fmt.Sprintf("%024x", i) }
	for i := range maxLinks {
		if err := s.addLink(ctx, tx, &openhimLink{OpenHIMTx: core(i), Kind: linkDuplicate}); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
	}
	if err := s.addLink(ctx, tx, &openhimLink{OpenHIMTx: core(maxLinks), Kind: linkDuplicate}); err == nil {
		t.Fatal("a link past the bound was stored while every outcome is still due")
	}
	if err := s.addLink(ctx, tx, &openhimLink{OpenHIMTx: core(0), Kind: linkDuplicate}); err != nil {
		t.Errorf("a repeated link is refused: %v", err)
	}
	if err := s.updateLinks(ctx, tx, func(ls []*openhimLink) ([]*openhimLink, bool) {
		ls[7].Queued = true
		return ls, true
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.addLink(ctx, tx, &openhimLink{OpenHIMTx: core(maxLinks), Kind: linkDuplicate}); err != nil {
		t.Fatalf("no room made by a queued link: %v", err)
	}
	links, _, err := s.readLinks(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	has := func(id string) bool {
		return slices.ContainsFunc(links, func(l *openhimLink) bool { return l.OpenHIMTx == id })
	}
	if len(links) != maxLinks || has(core(7)) || !has(core(maxLinks)) {
		t.Errorf("%d links; queued one kept %t, new one stored %t", len(links), has(core(7)), has(core(maxLinks)))
	}
}

// startLinks is a reporter on the tally_tx bucket of a real embedded JetStream, as a
// service opens it (links live there).
func startLinks(t *testing.T) *Reporter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	conn, err := stream.Open(ctx, stream.Config{StoreDir: t.TempDir(), DuplicateWindow: time.Minute}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn.Close(ctx)
	})
	return New(Config{Tx: conn.Tx, State: conn.State, TxLog: txlog.New(conn.Tx), Log: log, Now: time.Now})
}
