package openhimtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Transactions are kept as the documents the core's API returns (CORE
// src/model/transactions.js): the schema defaults are stored with each, orchestrations get an
// _id as mongoose subdocuments do, and updates apply mongoose's rules for
// findByIdAndUpdate without validators: top-level fields are $set, paths outside the schema
// are dropped (strict mode), and nothing else is checked.

// transactionPaths are the top-level paths of the core's Transaction schema.
var transactionPaths = []string{"clientID", "clientIP", "parentID", "childIDs", "channelID", "request",
	"response", "routes", "orchestrations", "properties", "canRerun", "autoRetry", "autoRetryAttempt",
	"wasRerun", "error", "status"}

// objectID matches a MongoDB ObjectId in hex; other ids fail the cast to ObjectId.
var objectID = regexp.MustCompile(`^[0-9a-fA-F]{24}$`)

// NewTransaction stores a transaction in status Processing, with the schema's defaults and
// fields, and returns its id, as the core does for a request it routes to a mediator. The
// router calls it for every request it admits; tests may call it to model one.
func (s *Server) NewTransaction(fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newIDLocked()
	tx := map[string]any{"_id": id, "status": "Processing", "orchestrations": []any{}, "routes": []any{},
		"childIDs": []any{}, "canRerun": true, "autoRetry": false, "wasRerun": false, "__v": 0}
	for k, v := range fields {
		tx[k] = v
	}
	tx["orchestrations"] = withIDs(s, asList(tx["orchestrations"]))
	s.txs[id] = tx
	s.txOrder = append(s.txOrder, id)
	return id
}

// Transaction returns a stored transaction as GET /transactions/:id returns it.
func (s *Server) Transaction(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txs[id]
	if !ok {
		return nil, false
	}
	out, _ := roundTrip(tx)
	return out, true
}

// TransactionIDs lists the stored transactions' ids, oldest first.
func (s *Server) TransactionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.txOrder)
}

// GET /transactions/:id (CORE src/api/transactions.js getTransactionById).
func (s *Server) handleGetTransaction(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r); !ok {
		return
	}
	id := r.PathValue("id")
	if !objectID.MatchString(id) {
		logAndSetResponse(w, http.StatusInternalServerError, "Could not get transaction by ID via the API: "+castError(id))
		return
	}
	tx, ok := s.Transaction(id)
	if !ok {
		logAndSetResponse(w, http.StatusNotFound, "Could not find transaction with ID: "+id)
		return
	}
	writeJSON(w, http.StatusOK, tx)
}

func castError(id string) string {
	return fmt.Sprintf(`CastError: Cast to ObjectId failed for value "%s" (type string) at path "_id" for model "Transaction"`, id)
}

// PUT /transactions/:id (spec §8.5; CORE src/api/transactions.js updateTransaction): a
// findByIdAndUpdate of the body as given. Any status is stored, concurrent updates apply in
// the order they arrive, and an unknown id fails with a TypeError, i.e. a 500.
func (s *Server) handleUpdateTransaction(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	body, raw, ok := readObject(w, r)
	if !ok {
		return
	}
	rec := TransactionUpdateRecord{ID: id, Body: body, Raw: raw}
	defer func() {
		s.mu.Lock()
		s.txUpdates = append(s.txUpdates, rec)
		s.mu.Unlock()
	}()
	if s.forbidden(w, u, "updateTransaction") {
		rec.Status = http.StatusForbidden
		return
	}
	if !objectID.MatchString(id) {
		rec.Status = http.StatusInternalServerError
		logAndSetResponse(w, rec.Status, "Could not update transaction via the API: "+castError(id))
		return
	}
	s.mu.Lock()
	tx, found := s.txs[id]
	if found {
		s.applyUpdateLocked(tx, body)
	}
	s.mu.Unlock()
	if !found {
		// With an error the core first reads the transaction's channel, otherwise the size
		// of its bodies; either dereferences the missing document (Node 14's wording).
		field := "body"
		if hasError(body) {
			field = "channelID"
		}
		rec.Status = http.StatusInternalServerError
		logAndSetResponse(w, rec.Status, "Could not update transaction via the API: TypeError: Cannot read property '"+
			field+"' of null")
		return
	}
	rec.Status = http.StatusOK
	logAndSetResponse(w, http.StatusOK, fmt.Sprintf("Transaction with ID: %s successfully updated", id))
}

func (s *Server) applyUpdateLocked(tx, update map[string]any) {
	for k, v := range update {
		switch k {
		case "$set":
			for path, val := range asObject(v) {
				s.setPathLocked(tx, path, val)
			}
		case "$unset":
			for path := range asObject(v) {
				unsetPath(tx, path)
			}
		case "$push":
			for path, spec := range asObject(v) {
				s.pushLocked(tx, path, spec)
			}
		default:
			// Other update operators are not modelled; plain keys are a $set.
			if !strings.HasPrefix(k, "$") {
				s.setPathLocked(tx, k, v)
			}
		}
	}
	if hasError(update) {
		tx["autoRetry"] = true
	}
}

// setPathLocked sets a top-level or dotted path, dropping paths outside the schema.
func (s *Server) setPathLocked(tx map[string]any, path string, v any) {
	if path == "orchestrations" {
		v = withIDs(s, asList(v))
	}
	setPath(tx, path, v)
}

func setPath(doc map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	if !slices.Contains(transactionPaths, parts[0]) {
		return
	}
	for _, p := range parts[:len(parts)-1] {
		next, ok := doc[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			doc[p] = next
		}
		doc = next
	}
	doc[parts[len(parts)-1]] = v
}

func unsetPath(doc map[string]any, path string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := doc[p].(map[string]any)
		if !ok {
			return
		}
		doc = next
	}
	delete(doc, parts[len(parts)-1])
}

// pushLocked appends one value, or every value of {$each: [...]}, to an array path.
func (s *Server) pushLocked(tx map[string]any, path string, spec any) {
	if !slices.Contains(transactionPaths, path) {
		return
	}
	items := []any{spec}
	if each, ok := asObject(spec)["$each"]; ok {
		items = asList(each)
	}
	if path == "orchestrations" {
		items = withIDs(s, items)
	}
	tx[path] = append(asList(tx[path]), items...)
}

// withIDs gives each orchestration the _id mongoose adds to a subdocument. The caller
// holds s.mu.
func withIDs(s *Server, list []any) []any {
	out := make([]any, len(list))
	for i, e := range list {
		o, ok := e.(map[string]any)
		if !ok {
			out[i] = e
			continue
		}
		if _, has := o["_id"]; !has {
			o = cloneObject(o)
			o["_id"] = s.newIDLocked()
		}
		out[i] = o
	}
	return out
}

func cloneObject(o map[string]any) map[string]any {
	out := make(map[string]any, len(o)+1)
	for k, v := range o {
		out[k] = v
	}
	return out
}

// hasError mirrors the core's check that queues an updated transaction for auto-retry.
func hasError(u map[string]any) bool {
	if u["error"] != nil {
		return true
	}
	for _, r := range asList(u["routes"]) {
		if truthy(asObject(r)["error"]) {
			return true
		}
	}
	return asObject(asObject(asObject(u["$push"])["routes"]))["error"] != nil
}

// GET /tasks (CORE src/api/tasks.js getTasks): the filters query parameter is parsed
// unconditionally, so a request without it fails with a 500.
func (s *Server) handleGetTasks(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r)
	if !ok || s.forbidden(w, u, "getTasks") {
		return
	}
	filters := r.URL.Query()["filters"]
	var parsed any
	switch {
	case len(filters) == 0:
		logAndSetResponse(w, http.StatusInternalServerError,
			"Could not fetch all tasks via the API: SyntaxError: Unexpected token u in JSON at position 0")
		return
	case json.Unmarshal([]byte(filters[0]), &parsed) != nil:
		logAndSetResponse(w, http.StatusInternalServerError,
			"Could not fetch all tasks via the API: SyntaxError: Unexpected token in JSON")
		return
	}
	s.mu.Lock()
	tasks := make([]map[string]any, len(s.tasks))
	for i, t := range s.tasks {
		tasks[i] = taskView(t) // the list leaves out each task's transactions
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, tasks)
}
