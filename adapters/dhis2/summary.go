package dhis2

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Era is the response shape a DHIS2 server answered an import with (§0.3).
type Era int

const (
	// EraUnknown: the era could not be told (an async summary without era-specific detail
	// and no known server version).
	EraUnknown Era = iota
	// EraBare: a bare ImportSummary (≤ 2.37, or /api/37/ on 2.38–2.41) whose content does
	// not tell 2.36 from 2.37.
	EraBare
	// Era236: ≤ 2.36. Bare ImportSummary, always HTTP 200; conflicts are {object,value}
	// without error codes or indexes.
	Era236
	// Era237: 2.37, or /api/≤37/ on 2.38–2.41. Bare ImportSummary, always HTTP 200;
	// conflicts carry errorCode, objects, property and indexes.
	Era237
	// EraWebMessage: a WebMessage-wrapped summary (2.38+) whose content does not tell
	// 2.38–2.42 from 2.43+.
	EraWebMessage
	// Era238: 2.38–2.42. WebMessage; HTTP 409 on WARNING and ERROR; rejectedIndexes from
	// 2.41.
	Era238
	// Era243: 2.43+. WebMessage; HTTP 200 on WARNING; every upsert counted as updated
	// (imported is always 0); conflicts E80xx/E81xx with objects.args.
	Era243
)

func (e Era) String() string {
	switch e {
	case EraBare:
		return "≤2.37 (bare summary)"
	case Era236:
		return "≤2.36"
	case Era237:
		return "2.37 (bare summary)"
	case EraWebMessage:
		return "≥2.38 (WebMessage)"
	case Era238:
		return "2.38–2.42"
	case Era243:
		return "2.43+"
	}
	return "unknown"
}

// ImportStatus is an ImportSummary's status.
type ImportStatus string

// The statuses DHIS2 reports (§2.2).
const (
	StatusSuccess ImportStatus = "SUCCESS"
	StatusWarning ImportStatus = "WARNING"
	StatusError   ImportStatus = "ERROR"
)

// ImportCount is an ImportSummary's importCount. On Era243 imported is always 0 and every
// upsert is counted as updated (§2.4 D). Unchanged values count as ignored, as do rejected
// ones; a "0" for a data element that does not store zeros counts nowhere (§1.4).
type ImportCount struct {
	Imported int `json:"imported"`
	Updated  int `json:"updated"`
	Ignored  int `json:"ignored"`
	Deleted  int `json:"deleted"`
}

// Conflict is one conflict of an import summary. ≤ 2.36 fills only Object and Value; 2.37+
// adds ErrorCode, Objects, Property and Indexes; 2.43+ gives Objects {"args": ...} and no
// Object or Property (§2.3).
type Conflict struct {
	ErrorCode string            `json:"errorCode,omitempty"`
	Object    string            `json:"object,omitempty"`
	Objects   map[string]string `json:"objects,omitempty"`
	Property  string            `json:"property,omitempty"`
	// Value is DHIS2's message.
	Value string `json:"value,omitempty"`
	// Indexes are the 0-based positions, in the payload, of the values this conflict
	// rejected.
	Indexes []int `json:"indexes,omitempty"`
}

// Job describes the asynchronous import job behind a result.
type Job struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// LastMessage is the newest notification's message ("Import done").
	LastMessage string `json:"lastMessage,omitempty"`
	// Failed is set when a notification was at level ERROR.
	Failed bool `json:"failed,omitempty"`
	// Polls is how many times the task endpoint was read.
	Polls int `json:"polls"`

	completed bool
}

// ImportResult is the outcome of an import DHIS2 accepted, wholly (SUCCESS) or partly
// (WARNING). An ERROR summary comes back inside an *Error instead, as Error.Result.
type ImportResult struct {
	Era Era `json:"era"`
	// HTTPStatus is the status of the response that carried the summary (for an
	// asynchronous import, the task summary's).
	HTTPStatus  int          `json:"httpStatus"`
	Status      ImportStatus `json:"status"`
	Description string       `json:"description,omitempty"`
	Counts      ImportCount  `json:"importCount"`
	Conflicts   []Conflict   `json:"conflicts,omitempty"`
	// Rejected are the sorted, distinct payload indexes of the values DHIS2 rejected: its
	// rejectedIndexes (2.41+), else the union of the conflicts' indexes.
	Rejected []int `json:"rejectedIndexes,omitempty"`
	// IndexesKnown reports whether Rejected is complete. It is false when a conflict came
	// without indexes (≤ 2.36, §2.3; a group-level 2.43 conflict) and the ignored count
	// leaves room for values it rejected. When false, treat every value as suspect.
	// On status ERROR every value was rejected, whatever Rejected says.
	IndexesKnown bool `json:"indexesKnown"`
	// DataSetComplete is "false" or the completion date (yyyy-MM-dd).
	DataSetComplete string `json:"dataSetComplete,omitempty"`
	// Job is set for an asynchronous import.
	Job *Job `json:"job,omitempty"`
	// Raw is the start of the response body (at most 64 KiB), credentials redacted.
	Raw          []byte `json:"-"`
	RawTruncated bool   `json:"-"`
}

// Written is the number of values DHIS2 stored or deleted.
func (c ImportCount) Written() int { return c.Imported + c.Updated + c.Deleted }

// wire shapes -------------------------------------------------------------------------

type wireWebMessage struct {
	HTTPStatus     *string         `json:"httpStatus"`
	HTTPStatusCode *int            `json:"httpStatusCode"`
	Status         string          `json:"status"`
	Message        string          `json:"message"`
	DevMessage     string          `json:"devMessage"`
	ErrorCode      string          `json:"errorCode"`
	Response       json.RawMessage `json:"response"`
}

func (w *wireWebMessage) isWebMessage() bool {
	return w != nil && (w.HTTPStatusCode != nil || w.HTTPStatus != nil)
}

type wireSummary struct {
	ResponseType    string          `json:"responseType"`
	Status          string          `json:"status"`
	Description     string          `json:"description"`
	ImportCount     *ImportCount    `json:"importCount"`
	Conflicts       []wireConflict  `json:"conflicts"`
	RejectedIndexes *[]int          `json:"rejectedIndexes"`
	DataSetComplete json.RawMessage `json:"dataSetComplete"`
	ImportOptions   json.RawMessage `json:"importOptions"`
}

type wireConflict struct {
	Object    json.RawMessage            `json:"object"`
	Objects   map[string]json.RawMessage `json:"objects"`
	Value     json.RawMessage            `json:"value"`
	ErrorCode string                     `json:"errorCode"`
	Property  string                     `json:"property"`
	Indexes   []int                      `json:"indexes"`
}

// decodeSummary reads raw as an ImportSummary, or reports false.
func decodeSummary(raw []byte) (*wireSummary, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var s wireSummary
	if err := json.Unmarshal(raw, &s); err != nil || !s.isSummary() {
		return nil, false
	}
	return &s, true
}

// isSummary reports whether s, decoded from an object, is an ImportSummary.
func (s *wireSummary) isSummary() bool {
	return (s.ResponseType == "ImportSummary" || s.ImportCount != nil) && s.Status != ""
}

// decodeWebMessage reads body as a WebMessage, or returns nil.
func decodeWebMessage(body []byte) *wireWebMessage {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil
	}
	var w wireWebMessage
	if err := json.Unmarshal(body, &w); err != nil || !w.isWebMessage() {
		return nil
	}
	return &w
}

// parsedImport is an import response body read in whichever era's shape it came.
type parsedImport struct {
	summary *wireSummary
	wm      *wireWebMessage // nil for a bare summary
}

// wireImportBody is an import answer of either shape, decoded in one pass: a bare
// ImportSummary (its fields are the embedded wireSummary's) or a WebMessage whose response
// is one. Both shapes call their status "status".
type wireImportBody struct {
	wireSummary
	HTTPStatus     *string      `json:"httpStatus"`
	HTTPStatusCode *int         `json:"httpStatusCode"`
	Message        string       `json:"message"`
	DevMessage     string       `json:"devMessage"`
	ErrorCode      string       `json:"errorCode"`
	Response       *wireSummary `json:"response"`
}

// parseImportBody finds the ImportSummary in body: bare, or inside a WebMessage. Delivery
// reads one answer per request, and decoding it as a summary, then as a WebMessage, then
// its response, took three passes (BenchmarkParseImportBody); one pass reads both shapes.
// An answer that one pass cannot read (a WebMessage whose response is no object) is read
// in the three.
func parseImportBody(body []byte) (parsedImport, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return parsedImport{}, false
	}
	var w wireImportBody
	if json.Unmarshal(body, &w) != nil {
		return parseImportBodyInPasses(body)
	}
	if w.isSummary() {
		return parsedImport{summary: &w.wireSummary}, true
	}
	wm := &wireWebMessage{HTTPStatus: w.HTTPStatus, HTTPStatusCode: w.HTTPStatusCode, Status: w.Status,
		Message: w.Message, DevMessage: w.DevMessage, ErrorCode: w.ErrorCode}
	if !wm.isWebMessage() {
		return parsedImport{}, false
	}
	if w.Response == nil || !w.Response.isSummary() {
		return parsedImport{wm: wm}, false
	}
	return parsedImport{summary: w.Response, wm: wm}, true
}

// parseImportBodyInPasses is parseImportBody one shape at a time.
func parseImportBodyInPasses(body []byte) (parsedImport, bool) {
	if s, ok := decodeSummary(body); ok {
		return parsedImport{summary: s}, true
	}
	wm := decodeWebMessage(body)
	if wm == nil {
		return parsedImport{}, false
	}
	s, ok := decodeSummary(wm.Response)
	if !ok {
		return parsedImport{wm: wm}, false
	}
	return parsedImport{summary: s, wm: wm}, true
}

// rawString renders a JSON scalar as text: a string unquoted, null as "", anything else
// as its JSON text.
func rawString(r json.RawMessage) string {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || string(r) == "null" {
		return ""
	}
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
	}
	return string(r)
}

// result builds the era-independent part of an ImportResult.
func (s *wireSummary) result() *ImportResult {
	r := &ImportResult{
		Status:          ImportStatus(strings.ToUpper(strings.TrimSpace(s.Status))),
		Description:     s.Description,
		DataSetComplete: rawString(s.DataSetComplete),
	}
	if s.ImportCount != nil {
		r.Counts = *s.ImportCount
	}
	seen := map[int]bool{}
	indexless := false
	for _, wc := range s.Conflicts {
		c := Conflict{
			ErrorCode: wc.ErrorCode,
			Object:    rawString(wc.Object),
			Property:  wc.Property,
			Value:     rawString(wc.Value),
			Indexes:   wc.Indexes,
		}
		if len(wc.Objects) > 0 {
			c.Objects = make(map[string]string, len(wc.Objects))
			for k, v := range wc.Objects {
				c.Objects[k] = rawString(v)
			}
		}
		if len(c.Indexes) == 0 {
			indexless = true
		}
		for _, i := range c.Indexes {
			seen[i] = true
		}
		r.Conflicts = append(r.Conflicts, c)
	}
	if s.RejectedIndexes != nil {
		for _, i := range *s.RejectedIndexes {
			seen[i] = true
		}
	}
	for i := range seen {
		r.Rejected = append(r.Rejected, i)
	}
	slices.Sort(r.Rejected)
	// Every value DHIS2 rejects is counted as ignored, so when the indexes found account
	// for every ignored value, an index-less conflict cannot hide another rejection.
	r.IndexesKnown = s.RejectedIndexes != nil || !indexless || len(r.Rejected) >= r.Counts.Ignored
	return r
}

// evidence is what a summary's content says about the era, whatever its wrapper.
type evidence struct {
	newStyle bool // errorCode/indexes/rejectedIndexes: 2.37+
	oldStyle bool // conflicts, all {object,value}: ≤ 2.36 unless newStyle
	is243    bool // E80xx/E81xx codes, objects.args, importOptions.atomic, 2.43 message
	pre243   bool // E76xx codes or imported > 0
}

func (s *wireSummary) evidence(wm *wireWebMessage) evidence {
	var ev evidence
	if s.RejectedIndexes != nil {
		ev.newStyle = true
	}
	for _, c := range s.Conflicts {
		code := strings.ToUpper(c.ErrorCode)
		switch {
		case c.ErrorCode != "" || len(c.Indexes) > 0 || len(c.Objects) > 0:
			ev.newStyle = true
		default:
			ev.oldStyle = true
		}
		if _, ok := c.Objects["args"]; ok {
			ev.is243 = true
		}
		if strings.HasPrefix(code, "E80") || strings.HasPrefix(code, "E81") {
			ev.is243 = true
		}
		if strings.HasPrefix(code, "E76") {
			ev.pre243 = true
		}
	}
	if s.ImportCount != nil && s.ImportCount.Imported > 0 {
		ev.pre243 = true
	}
	// DHIS2 echoes some thirty import options with every summary; only whether "atomic" is
	// one of them matters here. Read into a map of them all, they cost more than the rest of
	// the answer: the key is looked for first, and only the field decoded.
	if bytes.Contains(s.ImportOptions, []byte(`"atomic"`)) {
		var opts struct {
			Atomic json.RawMessage `json:"atomic"`
		}
		if json.Unmarshal(s.ImportOptions, &opts) == nil && opts.Atomic != nil {
			ev.is243 = true
		}
	}
	if wm != nil && strings.HasPrefix(wm.Message, "Import completed with warnings") {
		ev.is243 = true
	}
	return ev
}

// eraHints is what the client knows beyond the body.
type eraHints struct {
	httpStatus int
	server     *Version // from SystemInfo, if read
	apiVersion int      // the /api/NN/ the request used, 0 for none
	async      bool     // the summary came from taskSummaries: bare in every era
	bareStart  bool     // the async start answer was not a WebMessage: ≤ 2.37
	startFrom  int      // the async start answer's shape shows at least this release
}

func detectEra(p parsedImport, h eraHints) Era {
	ev := p.summary.evidence(p.wm)
	var fromServer Era
	if h.server != nil {
		fromServer = h.server.era()
	}
	status := ImportStatus(strings.ToUpper(p.summary.Status))

	if h.async {
		switch {
		case ev.is243:
			return Era243
		case fromServer != EraUnknown:
			return fromServer
		case ev.pre243 && h.startFrom >= 38:
			return Era238
		case ev.oldStyle && !ev.newStyle:
			return Era236
		case h.bareStart:
			return EraBare
		}
		return EraUnknown
	}

	if p.wm == nil { // bare summary
		switch {
		case ev.newStyle:
			return Era237
		case fromServer == Era236:
			return Era236
		case fromServer != EraUnknown:
			return Era237 // bare on 2.37+ means 2.37 or an /api/37/ path
		case h.apiVersion >= 37:
			return Era237
		case ev.oldStyle:
			return Era236
		}
		return EraBare
	}

	switch {
	case status == StatusWarning && h.httpStatus == 200:
		return Era243
	case status == StatusWarning && h.httpStatus == 409:
		return Era238
	case ev.is243:
		return Era243
	case ev.pre243:
		return Era238
	case fromServer == Era243 || fromServer == Era238:
		return fromServer
	}
	return EraWebMessage
}
