package openhimtest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestUpdateValidatesNothing: PUT /transactions/:id is a findByIdAndUpdate without
// validators (CORE src/api/transactions.js updateTransaction), as a real core 8.5.0 showed:
// any status is stored, fields left out are kept, paths outside the schema are dropped
// (mongoose strict mode), dotted paths set one field, and an unknown id is a 500.
func TestUpdateValidatesNothing(t *testing.T) {
	s := NewServer()
	defer s.Close()
	id := s.NewTransaction(map[string]any{"response": map[string]any{"status": 202, "body": "stored"}})
	put := func(body any) (int, string) {
		return do(t, s, call{method: "PUT", path: "/transactions/" + id, basic: true, body: body})
	}
	if status, body := put(map[string]any{"status": "Bogus", "invented": 1, "response.headers": map[string]any{"x": "y"}}); status != 200 ||
		body != "Transaction with ID: "+id+" successfully updated" {
		t.Fatalf("PUT: %d %q", status, body)
	}
	tx := readBack(t, s, id)
	resp := asObject(tx["response"])
	if tx["status"] != "Bogus" || tx["invented"] != nil || resp["status"] != float64(202) || resp["body"] != "stored" ||
		asObject(resp["headers"])["x"] != "y" {
		t.Errorf("stored: %v", tx)
	}

	for _, tc := range []struct {
		name, id string
		body     any
		want     string
	}{
		{"unknown id", "65f0000000000000000000ff", map[string]any{"status": "Failed"},
			"Could not update transaction via the API: TypeError: Cannot read property 'body' of null"},
		{"unknown id with an error", "65f0000000000000000000ff", map[string]any{"error": map[string]any{"message": "x"}},
			"TypeError: Cannot read property 'channelID' of null"},
		{"not an ObjectId", "tx-1", map[string]any{"status": "Failed"}, "CastError: Cast to ObjectId failed"},
	} {
		status, body := do(t, s, call{method: "PUT", path: "/transactions/" + tc.id, basic: true, body: tc.body})
		if status != http.StatusInternalServerError || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q", tc.name, status, body)
		}
	}
	if status, body := do(t, s, call{method: "GET", path: "/transactions/65f0000000000000000000ff", basic: true}); status != 404 ||
		body != "Could not find transaction with ID: 65f0000000000000000000ff" {
		t.Errorf("GET unknown: %d %q", status, body)
	}
}

// TestConcurrentPushesAllApply: updates are applied as they arrive; each $push appends.
func TestConcurrentPushesAllApply(t *testing.T) {
	s := NewServer()
	defer s.Close()
	id := s.NewTransaction(nil)
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			do(t, s, call{method: "PUT", path: "/transactions/" + id, basic: true, body: map[string]any{
				"status": fmt.Sprintf("S%d", i),
				"$push":  map[string]any{"orchestrations": map[string]any{"name": fmt.Sprintf("o%d", i)}}}})
		})
	}
	wg.Wait()
	tx := readBack(t, s, id)
	orchs := asList(tx["orchestrations"])
	ids := map[any]bool{}
	for _, o := range orchs {
		ids[asObject(o)["_id"]] = true
	}
	if len(orchs) != n || len(ids) != n || !strings.HasPrefix(jsString(tx["status"]), "S") {
		t.Errorf("after %d concurrent updates: %v", n, tx)
	}
}

// TestGetTasksNeedsFilters: getTasks parses the filters parameter unconditionally, so a
// bare GET /tasks fails with a 500 (CORE src/api/tasks.js getTasks; seen on core 8.5.0).
func TestGetTasksNeedsFilters(t *testing.T) {
	s := NewServer()
	defer s.Close()
	status, body := do(t, s, call{method: "GET", path: "/tasks", basic: true})
	if status != http.StatusInternalServerError || !strings.Contains(body, "Could not fetch all tasks via the API: SyntaxError") {
		t.Errorf("GET /tasks: %d %q", status, body)
	}
	status, body = do(t, s, call{method: "GET", path: "/tasks?filters=%7B%7D&filterLimit=10&filterPage=0", basic: true})
	if status != http.StatusOK || body != "[]" {
		t.Errorf("GET /tasks with filters: %d %q", status, body)
	}
	if len(s.Unexpected()) != 0 {
		t.Errorf("unexpected: %v", s.Unexpected())
	}
}

// TestHeartbeatForUnknownURN: heartbeat sets only ctx.status = 404, so the Basic strategy's
// body stays (CORE src/api/mediators.js heartbeat; seen on core 8.5.0).
func TestHeartbeatForUnknownURN(t *testing.T) {
	s := NewServer()
	defer s.Close()
	status, body := do(t, s, call{method: "POST", path: "/mediators/urn:mediator:nobody/heartbeat", basic: true,
		body: map[string]any{"uptime": 1}})
	if status != http.StatusNotFound || body != "User Authenticated Successfully" {
		t.Errorf("basic: %d %q", status, body)
	}
}
