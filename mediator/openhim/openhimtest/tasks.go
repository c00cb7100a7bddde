package openhimtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Rerun tasks follow the core (spec §10.2-10.3; CORE src/api/tasks.js addTask, src/tasks.js,
// src/middleware/rerunUpdateTransactionTask.js): POST /tasks queues the transactions; each
// is replayed with its stored path, query, headers and body plus the headers clientID,
// parentID and taskID, through the router without authorisation, as a new transaction whose
// parentID is the original; the original gets the child's id and wasRerun. The core polls
// for queued tasks every 2 s; the fake starts at once, and WaitTask waits for the end.

// TaskStatus values of a rerun task (CORE src/model/tasks.js).
const (
	TaskQueued    = "Queued"
	TaskPaused    = "Paused"
	TaskCompleted = "Completed"
)

// Tasks lists the rerun tasks as GET /tasks/:id would show them, oldest first.
func (s *Server) Tasks() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, len(s.tasks))
	for i, t := range s.tasks {
		out[i], _ = roundTrip(t)
	}
	return out
}

// WaitTask waits until the rerun task id has replayed all its transactions.
func (s *Server) WaitTask(ctx context.Context, id string) error {
	return s.waitClosed(ctx, s.taskDone, id, "rerun task")
}

// POST /tasks {tids, batchSize?, paused?}.
func (s *Server) handleAddTask(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok || s.forbidden(w, u, "addTask") {
		return
	}
	body, _, ok := readObject(w, r)
	if !ok {
		return
	}
	tids := asList(body["tids"])
	if len(tids) == 0 {
		// transactions.tids.length of undefined
		logAndSetResponse(w, http.StatusInternalServerError,
			"Could not add Task via the API: TypeError: Cannot read property 'length' of undefined")
		return
	}
	batch := 1.0
	if b, set := body["batchSize"].(float64); set {
		if b <= 0 {
			logAndSetResponse(w, http.StatusBadRequest, "Invalid batch size specified")
			return
		}
		batch = b
	}
	s.mu.Lock()
	id, done := s.addTaskLocked(u.email, tids, batch, truthy(body["paused"]))
	s.mu.Unlock()
	if done != nil {
		s.goPending(func() {
			s.runTask(id)
			close(done)
		})
	}
	logAndSetResponse(w, http.StatusCreated, fmt.Sprintf("User %s created task with id %s", u.email, id))
}

// addTaskLocked stores a task and returns its id, and the channel to close once it has run
// (nil for a paused task, which does not run).
func (s *Server) addTaskLocked(user string, tids []any, batch float64, paused bool) (string, chan struct{}) {
	id := s.newIDLocked()
	txs := make([]any, len(tids))
	for i, tid := range tids {
		txs[i] = map[string]any{"tid": jsString(tid), "tstatus": TaskQueued}
	}
	status := TaskQueued
	if paused {
		status = TaskPaused
	}
	s.tasks = append(s.tasks, map[string]any{"_id": id, "status": status, "transactions": txs, "user": user,
		"created": jsDate(s.now()), "totalTransactions": len(txs), "remainingTransactions": len(txs), "batchSize": batch})
	if paused {
		return id, nil
	}
	done := make(chan struct{})
	s.taskDone[id] = done
	return id, done
}

func (s *Server) taskLocked(id string) map[string]any {
	for _, t := range s.tasks {
		if t["_id"] == id {
			return t
		}
	}
	return nil
}

// runTask replays each transaction of task id in turn.
func (s *Server) runTask(id string) {
	s.mu.Lock()
	entries := asList(s.taskLocked(id)["transactions"])
	s.mu.Unlock()
	for _, e := range entries {
		entry := asObject(e)
		childID, status, err := s.rerun(jsString(entry["tid"]), id)
		s.mu.Lock()
		if err != nil {
			entry["tstatus"], entry["error"] = "Failed", err.Error()
		} else {
			entry["tstatus"], entry["rerunID"], entry["rerunStatus"] = TaskCompleted, childID, status
		}
		t := s.taskLocked(id)
		t["remainingTransactions"] = t["remainingTransactions"].(int) - 1
		s.mu.Unlock()
	}
	s.mu.Lock()
	t := s.taskLocked(id)
	t["status"], t["completedDate"] = TaskCompleted, jsDate(s.now())
	s.mu.Unlock()
}

// rerun replays transaction tid for task taskID and returns the new transaction's id and
// status (CORE src/tasks.js rerunGetTransaction, rerunSetHTTPRequestOptions,
// rerunHttpRequestSend).
func (s *Server) rerun(tid, taskID string) (string, any, error) {
	s.mu.Lock()
	orig, ok := s.txs[tid]
	var req map[string]any
	var cl *client
	if ok {
		req, _ = roundTrip(orig["request"])
		cl = s.clientByIDLocked(jsString(orig["clientID"]))
	}
	canRerun := ok && orig["canRerun"] != false
	s.mu.Unlock()
	switch {
	case !ok:
		return "", nil, fmt.Errorf("Transaction %s could not be found", tid)
	case !canRerun:
		return "", nil, fmt.Errorf("Transaction %s cannot be rerun as there isn't enough information about the request", tid)
	}
	r, body, err := replayRequest(s.stopCtx, req, tid, taskID, cl)
	if err != nil {
		return "", nil, err
	}
	res, childID := s.route(r, body, cl, &rerunOf{parentID: tid})
	if childID == "" {
		return "", nil, fmt.Errorf("rerun of %s refused: %d %s", tid, res.status, res.body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	orig["childIDs"] = append(asList(orig["childIDs"]), childID)
	orig["wasRerun"] = true
	return childID, finalStatus(res), nil
}

// replayRequest rebuilds the stored request with the rerun headers. The body is sent for
// POST and PUT only, as rerunHttpRequestSend does.
func replayRequest(ctx context.Context, stored map[string]any, parentID, taskID string, cl *client) (*http.Request, []byte, error) {
	target := &url.URL{Path: jsString(stored["path"]), RawQuery: jsString(stored["querystring"])}
	method := jsString(stored["method"])
	r, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("rerun of %s: %w", parentID, err)
	}
	for k, v := range asObject(stored["headers"]) {
		if strings.EqualFold(k, "host") {
			r.Host = jsString(v)
			continue
		}
		r.Header.Set(k, jsString(v))
	}
	if cl != nil {
		r.Header["clientID"] = []string{cl.id}
	}
	// Node sends the names as written; Go's canonical form would be "Parentid".
	r.Header["parentID"] = []string{parentID}
	r.Header["taskID"] = []string{taskID}
	r.RemoteAddr = "127.0.0.1:0"
	var body []byte
	if slices.Contains([]string{http.MethodPost, http.MethodPut}, method) {
		body = []byte(jsString(stored["body"]))
	}
	return r, body, nil
}

func (s *Server) clientByIDLocked(id string) *client {
	for _, c := range s.clients {
		if c.id == id {
			return c
		}
	}
	return nil
}

// taskView is a task as GET /tasks lists it: without its transactions.
func taskView(t map[string]any) map[string]any {
	out, _ := roundTrip(t)
	delete(out, "transactions")
	return out
}
