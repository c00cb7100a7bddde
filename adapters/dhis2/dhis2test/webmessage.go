package dhis2test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// kv is one field of an orderedMap.
type kv struct {
	k string
	v any
}

// orderedMap is a JSON object that keeps its field order (Jackson writes
// fields in declaration order; clients and tests compare bodies textually).
// A nil value is written as null; callers omit fields that DHIS2 omits.
type orderedMap []kv

// MarshalJSON writes the fields in order without HTML escaping.
func (m orderedMap) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range m {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := marshalNoEscape(f.k)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := marshalNoEscape(f.v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.k, err)
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// ---------------------------------------------------------------------------
// Import summary model

type importCount struct{ imported, updated, ignored, deleted int }

// conflict is one (possibly merged) import conflict.
type conflict struct {
	errorCode string     // "" for an informal {object,value} conflict
	objects   orderedMap // type → id (values may be nil → null)
	object    string
	message   string
	property  string
	indexes   []int
	args      []string // 2.43 rendering of objects

	// ≤ 2.36 rendering ({object,value} with the old texts)
	legacyObject  string
	legacyMessage string
}

// legacyConflict returns the ≤ 2.36 {object, value} form of c.
func legacyConflict(c *conflict) (string, string) {
	if c.legacyMessage != "" {
		return c.legacyObject, c.legacyMessage
	}
	return c.object, c.message
}

type summary struct {
	status          string // SUCCESS, WARNING, ERROR
	description     string
	count           importCount
	conflicts       []*conflict
	byKey           map[string]*conflict
	occurrences     int
	rejected        map[int]bool
	dataSetComplete string
	options         importOptions
}

func newSummary(o importOptions) *summary {
	return &summary{status: "SUCCESS", description: "Import process completed successfully",
		byKey: map[string]*conflict{}, rejected: map[int]bool{}, dataSetComplete: "false", options: o}
}

// add records a conflict, merging it with an earlier one of the same grouping
// key (errorCode + object ids, or object + message for informal ones).
func (s *summary) add(c *conflict) {
	s.occurrences++
	var key string
	if c.errorCode == "" {
		key = c.object + ":" + c.message
	} else {
		parts := []string{c.errorCode}
		for _, f := range c.objects {
			parts = append(parts, fmt.Sprint(f.v))
		}
		parts = append(parts, c.args...) // 2.43 conflicts carry their ids as args
		key = strings.Join(parts, ":")
	}
	if prev, ok := s.byKey[key]; ok {
		prev.indexes = append(prev.indexes, c.indexes...)
		return
	}
	s.byKey[key] = c
	s.conflicts = append(s.conflicts, c)
}

func (s *summary) reject(i int) {
	if i >= 0 {
		s.rejected[i] = true
	}
}

func (s *summary) rejectedIndexes() []int {
	out := make([]int, 0, len(s.rejected))
	for i := range s.rejected {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// render returns the ImportSummary object in the shape of version v.
func (s *summary) render(v Version) orderedMap {
	conflicts := make([]any, 0, len(s.conflicts))
	legacySeen := map[string]bool{}
	for _, c := range s.conflicts {
		switch {
		case v.legacyConflicts():
			obj, msg := legacyConflict(c)
			if legacySeen[obj+"\x00"+msg] { // a Set in 2.36
				continue
			}
			legacySeen[obj+"\x00"+msg] = true
			conflicts = append(conflicts, orderedMap{{"object", obj}, {"value", msg}})
		case c.errorCode == "":
			conflicts = append(conflicts, orderedMap{{"object", c.object}, {"value", c.message}})
		case v.usesNewPipeline():
			m := orderedMap{{"objects", orderedMap{{"args", strings.Join(c.args, "-")}}}, {"value", c.message}, {"errorCode", c.errorCode}}
			if len(c.indexes) > 0 {
				m = append(m, kv{"indexes", c.indexes})
			}
			conflicts = append(conflicts, m)
		default:
			m := orderedMap{}
			if c.object != "" {
				m = append(m, kv{"object", c.object})
			}
			m = append(m, kv{"objects", c.objects}, kv{"value", c.message}, kv{"errorCode", c.errorCode})
			if c.property != "" {
				m = append(m, kv{"property", c.property})
			}
			if len(c.indexes) > 0 {
				m = append(m, kv{"indexes", c.indexes})
			}
			conflicts = append(conflicts, m)
		}
	}
	out := orderedMap{
		{"responseType", "ImportSummary"},
		{"status", s.status},
		{"importOptions", s.options.echo(v)},
		{"description", s.description},
		{"importCount", orderedMap{{"imported", s.count.imported}, {"updated", s.count.updated},
			{"ignored", s.count.ignored}, {"deleted", s.count.deleted}}},
		{"conflicts", conflicts},
	}
	if v.hasRejectedIndexes() {
		out = append(out, kv{"rejectedIndexes", s.rejectedIndexes()})
	}
	out = append(out, kv{"dataSetComplete", s.dataSetComplete})
	return out
}

// ---------------------------------------------------------------------------
// Writing responses

const (
	contentTypeJSON = "application/json;charset=UTF-8"
	contentTypeXML  = "application/xml;charset=UTF-8"
)

// webMessage builds a WebMessage (spec dhis2.md §2.3): httpStatus,
// httpStatusCode, status, message, then response when non-nil.
func webMessage(code int, status, message string, response any) orderedMap {
	m := orderedMap{{"httpStatus", http.StatusText(code)}, {"httpStatusCode", code}, {"status", status}}
	if message != "" {
		m = append(m, kv{"message", message})
	}
	if response != nil {
		m = append(m, kv{"response", response})
	}
	return m
}

// wantsXML reports whether the client asked for XML and not JSON.
func wantsXML(r *http.Request) bool {
	a := strings.ToLower(r.Header.Get("Accept"))
	return strings.Contains(a, "xml") && !strings.Contains(a, "json")
}

// writeBody writes body (an orderedMap, or anything encoding/json accepts)
// with HTTP status code. 4xx/5xx get Cache-Control: no-cache, private
// (spec dhis2.md §2.2). The body is rendered as XML when the client asks
// for XML and root names the XML root element.
func writeBody(w http.ResponseWriter, r *http.Request, code int, root string, body any) {
	if code >= 400 {
		w.Header().Set("Cache-Control", "no-cache, private")
	}
	if m, ok := body.(orderedMap); ok && root != "" && r != nil && wantsXML(r) {
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		writeXMLElement(&buf, root, m, true)
		w.Header().Set("Content-Type", contentTypeXML)
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.WriteHeader(code)
		_, _ = w.Write(buf.Bytes())
		return
	}
	b, err := marshalNoEscape(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeError writes a plain WebMessage with status ERROR.
func writeError(w http.ResponseWriter, r *http.Request, code int, message string) {
	writeBody(w, r, code, "webMessage", webMessage(code, "ERROR", message, nil))
}

// XML rendering (best effort; DHIS2's DXF2 XML web message): scalar fields
// become attributes, a few text fields become elements, objects become child
// elements and arrays a wrapper with singular children.
var xmlTextFields = map[string]bool{"message": true, "devMessage": true, "description": true, "dataSetComplete": true}

func writeXMLElement(buf *bytes.Buffer, name string, m orderedMap, root bool) {
	buf.WriteString("<" + name)
	if root {
		buf.WriteString(` xmlns="http://dhis2.org/schema/dxf/2.0"`)
	}
	var children []kv
	for _, f := range m {
		switch v := f.v.(type) {
		case string, bool, int, int64, float64:
			if xmlTextFields[f.k] {
				children = append(children, f)
				continue
			}
			buf.WriteString(" " + f.k + `="`)
			_ = xml.EscapeText(buf, []byte(fmt.Sprint(v)))
			buf.WriteString(`"`)
		case nil:
		default:
			children = append(children, f)
		}
	}
	buf.WriteString(">")
	for _, c := range children {
		switch v := c.v.(type) {
		case orderedMap:
			writeXMLElement(buf, c.k, v, false)
		case []any:
			buf.WriteString("<" + c.k + ">")
			for _, e := range v {
				if om, ok := e.(orderedMap); ok {
					writeXMLElement(buf, singular(c.k), om, false)
				}
			}
			buf.WriteString("</" + c.k + ">")
		case []int:
			buf.WriteString("<" + c.k + ">")
			for _, n := range v {
				fmt.Fprintf(buf, "<%s>%d</%s>", singular(c.k), n, singular(c.k))
			}
			buf.WriteString("</" + c.k + ">")
		default:
			buf.WriteString("<" + c.k + ">")
			_ = xml.EscapeText(buf, []byte(fmt.Sprint(v)))
			buf.WriteString("</" + c.k + ">")
		}
	}
	buf.WriteString("</" + name + ">")
}

func singular(s string) string {
	switch {
	case strings.HasSuffix(s, "ies"):
		return strings.TrimSuffix(s, "ies") + "y"
	case strings.HasSuffix(s, "xes"):
		return strings.TrimSuffix(s, "es")
	case strings.HasSuffix(s, "s"):
		return strings.TrimSuffix(s, "s")
	}
	return s
}
