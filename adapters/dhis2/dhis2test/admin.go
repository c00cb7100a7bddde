package dhis2test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Admin API of the emulator, served at /__sim/ (outside the DHIS2 base path,
// no authentication; it is a test tool):
//
//	GET    /__sim/faults        list fault rules (FaultState JSON)
//	POST   /__sim/faults        add a Fault (JSON object) or several (JSON array); returns the ids
//	DELETE /__sim/faults        remove every rule
//	DELETE /__sim/faults/{id}   remove one rule
//	GET    /__sim/requests      recorded API requests
//	DELETE /__sim/requests      forget them
//	GET    /__sim/store         stored values (including soft-deleted rows)
//	DELETE /__sim/store         empty the store (values, history, receive counts)
//	GET    /__sim/received      receive counts per data value key (ReceivedReport);
//	                            ?duplicates=true lists only keys received more than once
//	DELETE /__sim/received      reset the receive counts
//	GET    /__sim/capacity      capacity mode: config, in-flight/queued imports, totals (CapacityStats)
//	GET    /__sim/approvals     approvals (Approval JSON list, UIDs)
//	POST   /__sim/approvals     approve {"dataSet","period","orgUnit","attributeOptionCombo"} (UIDs or codes)
//	DELETE /__sim/approvals     remove the approval in the body, or all of them without a body
//	POST   /__sim/jobs/run      run async jobs held by WithHeldJobs / --hold-jobs
//	GET    /__sim/health        "ok"
//
// Example: curl -X POST localhost:8080/__sim/faults -d '{"kind":"status","status":503,"path":"/api/dataValueSets","times":2}'
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/__sim"), "/")
	writeJSON := func(code int, v any) {
		b, err := marshalNoEscape(v)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(b)
	}
	switch {
	case path == "/health":
		_, _ = io.WriteString(w, "ok")
	case path == "/faults" && r.Method == http.MethodGet:
		writeJSON(http.StatusOK, s.faults.List())
	case path == "/faults" && r.Method == http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeJSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		var list []Fault
		if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
			err = json.Unmarshal(body, &list)
		} else {
			var f Fault
			err = json.Unmarshal(body, &f)
			list = []Fault{f}
		}
		if err == nil {
			err = validateFaults(list)
		}
		if err != nil {
			writeJSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		ids := make([]string, len(list))
		for i, f := range list {
			ids[i] = s.faults.Add(f)
		}
		writeJSON(http.StatusCreated, map[string][]string{"ids": ids})
	case path == "/faults" && r.Method == http.MethodDelete:
		s.faults.Clear()
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(path, "/faults/") && r.Method == http.MethodDelete:
		if !s.faults.Remove(strings.TrimPrefix(path, "/faults/")) {
			writeJSON(http.StatusNotFound, map[string]string{"error": "no such fault"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case path == "/requests" && r.Method == http.MethodGet:
		writeJSON(http.StatusOK, s.Requests())
	case path == "/requests" && r.Method == http.MethodDelete:
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	case path == "/store" && r.Method == http.MethodGet:
		writeJSON(http.StatusOK, s.store.AllValues())
	case path == "/store" && r.Method == http.MethodDelete:
		s.store.Reset()
		w.WriteHeader(http.StatusNoContent)
	case path == "/capacity" && r.Method == http.MethodGet:
		writeJSON(http.StatusOK, s.CapacityStats())
	case path == "/approvals":
		s.serveApprovals(w, r, writeJSON)
	case path == "/received":
		s.serveReceived(w, r, writeJSON)
	case path == "/jobs/run" && r.Method == http.MethodPost:
		writeJSON(http.StatusOK, map[string]int{"ran": s.RunPendingJobs()})
	default:
		writeJSON(http.StatusNotFound, map[string]string{"error": "unknown admin endpoint " + r.Method + " " + r.URL.Path})
	}
}

func validateFaults(list []Fault) error {
	for _, f := range list {
		switch f.Kind {
		case FaultPass, FaultLatency, FaultStatus, FaultRateLimit, FaultReset, FaultHang, FaultTruncate:
		default:
			return fmt.Errorf("unknown fault kind %q", f.Kind)
		}
		if f.Times < 0 {
			return fmt.Errorf("times must not be negative")
		}
	}
	return nil
}
