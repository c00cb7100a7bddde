package dhis2test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxBody bounds request bodies (DHIS2 itself streams; 1 GiB is plenty).
const maxBody = 1 << 30

func (s *Server) dataValueSetRoutes() []route {
	return []route{
		{pattern: "POST /dataValueSets", handler: s.handlePostDataValueSets},
	}
}

// formatFor maps the request Content-Type to an import format (spec
// dhis2.md §1.1): text/csv is not accepted, everything unknown is 415.
func formatFor(contentType string) (string, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(mt) {
	case "application/json":
		return "json", true
	case "application/xml":
		return "xml", true
	case "application/adx+xml":
		return "adx", true
	case "application/csv":
		return "csv", true
	}
	return "", false
}

// handlePostDataValueSets serves POST /api/dataValueSets and /api/NN/dataValueSets.
func (s *Server) handlePostDataValueSets(w http.ResponseWriter, r *http.Request) {
	c := callOf(r)
	if !c.user.HasAuthority("F_DATAVALUE_ADD") {
		writeError(w, r, http.StatusForbidden, "Access is denied")
		return
	}
	ct := r.Header.Get("Content-Type")
	format, ok := formatFor(ct)
	if !ok {
		if ct == "" {
			ct = "application/octet-stream"
		}
		writeError(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content type '%s' not supported", ct))
		return
	}
	s.imports.Add(1)
	// Capacity mode: take a slot (or answer 503); release spends the import's
	// cost before the answer is written, and frees the slot on every path.
	release, ok := s.admit(w, r)
	if !ok {
		return
	}
	defer release(0)
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "Could not read request body: "+err.Error())
		return
	}
	opts := parseImportOptions(r.URL.Query())
	body, derr := decompress(raw)
	req := importRequest{body: body, format: format, opts: opts, user: c.user, reqID: c.id}
	if opts.async {
		s.startJob(w, r, c, req, derr)
		return
	}
	var sum *summary
	if s.store.noop && format == "json" && derr == nil {
		// The no-op sink: count values by their dataElement keys, nothing else.
		n := bytes.Count(body, []byte(`"dataElement"`))
		s.store.acceptUnchecked(n)
		sum = newSummary(opts)
		sum.count.imported = n
		release(n)
		s.writeSummary(w, r, c, sum)
		return
	}
	if derr != nil {
		sum = newSummary(opts)
		sum.status = "ERROR"
		sum.description = "The import process failed: " + derr.Error()
	} else {
		sum = s.runImport(r.Context(), req)
	}
	release(valuesOf(sum))
	s.logger.InfoContext(r.Context(), "dataValueSets import", "request", c.id, "format", format,
		"status", sum.status, "imported", sum.count.imported, "updated", sum.count.updated,
		"ignored", sum.count.ignored, "deleted", sum.count.deleted)
	s.writeSummary(w, r, c, sum)
}

// writeSummary answers with the era's wrapper and HTTP status (spec
// dhis2.md §2.1, §2.2).
func (s *Server) writeSummary(w http.ResponseWriter, r *http.Request, c *call, sum *summary) {
	body := sum.render(s.version)
	if s.version.plainResponse(c.apiVersion) {
		writeBody(w, r, http.StatusOK, "importSummary", body)
		return
	}
	code, status, msg := http.StatusOK, "OK", "Import was successful."
	switch sum.status {
	case "WARNING":
		status = "WARNING"
		if s.version.warningIsConflict() {
			code, msg = http.StatusConflict, "One more conflicts encountered, please check import summary."
		} else {
			msg = "Import completed with warnings, please check import summary."
		}
	case "ERROR":
		code, status, msg = http.StatusConflict, "ERROR", "An error occurred, please check import summary."
	}
	writeBody(w, r, code, "webMessage", webMessage(code, status, msg, body))
}
