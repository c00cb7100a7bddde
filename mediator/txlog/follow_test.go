package txlog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/mediator/txlog"
)

// waitFor polls cond (the copy follows the bucket asynchronously).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestFollowListsFromACopyThatFollowsTheBucket(t *testing.T) {
	ctx := context.Background()
	kv := newBucket(t)
	l := txlog.New(kv)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b"} {
		if _, _, err := l.Create(ctx, &txlog.TxRecord{ID: id, Source: "cht", Received: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Follow(fctx) }()
	waitFor(t, "the copy", l.Following)
	ids := func(source string) []string { return listIDs(t, l, source, 0) }
	if got := ids(""); len(got) != 2 || got[0] != "b" {
		t.Fatalf("List = %v, want b, a", got)
	}
	// A record written through this log is listed at once (read your writes); one written
	// by another replica comes with the watch.
	if _, _, err := l.Create(ctx, &txlog.TxRecord{ID: "c", Source: "dvs", Received: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := ids(""); len(got) != 3 || got[0] != "c" {
		t.Errorf("List right after Create = %v, want c first", got)
	}
	if _, _, err := txlog.New(kv).Create(ctx, &txlog.TxRecord{ID: "d", Source: "dvs", Received: t0.Add(4 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "another writer's record", func() bool { got := ids(""); return len(got) == 4 && got[0] == "d" })
	if got := ids("dvs"); len(got) != 2 || got[1] != "c" {
		t.Errorf("List(dvs) = %v", got)
	}
	if err := kv.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted record to go", func() bool { return len(ids("")) == 3 })
	cancel()
	<-done
	if l.Following() {
		t.Error("still following after the context ended")
	}
	if got := ids(""); len(got) != 3 { // read from the bucket again
		t.Errorf("List after Follow = %v", got)
	}
}

// The copy is bounded: past its bound it drops the oldest records, and a list it cannot fill
// from what it holds (a rare source, a page far back, everything) reads the bucket, so the
// answers stay whole.
func TestFollowedCopyIsBoundedAndListsStayWhole(t *testing.T) {
	ctx := context.Background()
	kv := newBucket(t)
	l := txlog.New(kv)
	txlog.SetFollowLimit(l, 10)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	create := func(i int, source string) {
		t.Helper()
		id := fmt.Sprintf("t%02d", i)
		if _, _, err := l.Create(ctx, &txlog.TxRecord{ID: id, Source: source, Received: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	create(0, "rare")
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = l.Follow(fctx) }()
	waitFor(t, "the copy", l.Following)
	for i := 1; i < 30; i++ {
		create(i, "cht")
	}
	if n := txlog.Followed(l); n > 11 {
		t.Errorf("the copy holds %d records, bound 10 (+10%%)", n)
	}
	ids := func(source string, limit int) []string { return listIDs(t, l, source, limit) }
	if got := ids("", 3); strings.Join(got, ",") != "t29,t28,t27" {
		t.Errorf("newest 3 = %v", got)
	}
	if got := ids("", 0); len(got) != 30 || got[29] != "t00" {
		t.Errorf("all: %d records (last %v), want 30 down to t00", len(got), got)
	}
	if got := ids("rare", 1); len(got) != 1 || got[0] != "t00" {
		t.Errorf("the rare source's record = %v, want t00 from the bucket", got)
	}
	page, err := l.Search(ctx, txlog.TxFilter{Offset: 25, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 5 || page[4].ID != "t00" {
		t.Errorf("page from offset 25: %d views, want the 5 oldest down to t00", len(page))
	}
}

// listIDs lists the ids of l.List(source, limit).
func listIDs(t *testing.T, l *txlog.TxLog, source string, limit int) []string {
	t.Helper()
	recs, err := l.List(context.Background(), source, limit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}
