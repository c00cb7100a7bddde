package httpapi

import (
	"encoding/xml"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// DHIS2's answer shapes (spec dhis2.md §2.3): the WebMessage wrapper, the ImportSummary it
// carries, and how one release or another writes them. Rendering is kept apart from what
// the answer says (dhis2.go), so that the same summary serves the import, a repeat,
// and the task summary of an asynchronous import.

type webMessage struct {
	HTTPStatus     string `json:"httpStatus"`
	HTTPStatusCode int    `json:"httpStatusCode"`
	Status         string `json:"status"`
	Message        string `json:"message"`
	Response       any    `json:"response,omitempty"`
}

// importSummary is DHIS2's ImportSummary (responseType "ImportSummary").
type importSummary struct {
	ResponseType  string            `json:"responseType"`
	Status        string            `json:"status"`
	ImportOptions map[string]any    `json:"importOptions,omitempty"`
	Description   string            `json:"description"`
	ImportCount   txlog.ImportCount `json:"importCount"`
	// Conflicts are DHIS2 2.37+ conflicts (object, objects, value, errorCode, property,
	// indexes); before 2.37 only object and value (see forRelease).
	Conflicts []transform.ImportConflict `json:"conflicts"`
	// RejectedIndexes exists from 2.41 (nil: not written).
	RejectedIndexes *[]int `json:"rejectedIndexes,omitempty"`
	DataSetComplete string `json:"dataSetComplete"`
	// Reference is Tally's transaction id, where the tracker summaries put theirs.
	Reference string `json:"reference,omitempty"`
}

// Import summary statuses.
const (
	statusSuccess = "SUCCESS"
	statusWarning = "WARNING"
	statusError   = "ERROR"
)

// forRelease writes the summary as DHIS2 release rel does: before 2.37 a conflict is only
// {object, value}; rejectedIndexes exists from 2.41.
func (sum *importSummary) forRelease(rel int, rejected []int) {
	if sum.Conflicts == nil {
		sum.Conflicts = []transform.ImportConflict{}
	}
	if rel < 37 {
		for i, c := range sum.Conflicts {
			sum.Conflicts[i] = transform.ImportConflict{Object: c.Object, Value: c.Value}
		}
	}
	if rel >= 41 {
		if rejected == nil {
			rejected = []int{}
		}
		sum.RejectedIndexes = &rejected
	}
}

// replyShape says how an answer is written: the release it imitates, whether the path
// asks for the bare ImportSummary (an API version of 37 or lower), and JSON or XML.
type replyShape struct {
	release int
	plain   bool
	xml     bool
}

// webMessageFor is the WebMessage around a summary with a status (spec dhis2.md §2.2):
// SUCCESS 200; WARNING 409 up to 2.42, 200 from 2.43; ERROR 409.
func (sh replyShape) webMessageFor(sum *importSummary) (int, webMessage) {
	switch sum.Status {
	case statusSuccess:
		return http.StatusOK, webMessage{HTTPStatus: "OK", HTTPStatusCode: 200, Status: "OK",
			Message: "Import was successful.", Response: sum}
	case statusWarning:
		if sh.release >= 43 {
			return http.StatusOK, webMessage{HTTPStatus: "OK", HTTPStatusCode: 200, Status: statusWarning,
				Message: "Import completed with warnings, please check import summary.", Response: sum}
		}
		return http.StatusConflict, webMessage{HTTPStatus: "Conflict", HTTPStatusCode: 409, Status: statusWarning,
			Message: "One more conflicts encountered, please check import summary.", Response: sum} // sic, DHIS2's text
	}
	return http.StatusConflict, webMessage{HTTPStatus: "Conflict", HTTPStatusCode: 409, Status: statusError,
		Message: "An error occurred, please check import summary.", Response: sum}
}

// writeSummary answers with an import summary: bare and 200 where DHIS2 gives the bare
// ImportSummary (2.37 and older, or a /api/37/ path before 2.42), else in a WebMessage.
func (sh replyShape) writeSummary(c echo.Context, sum *importSummary) error {
	if sh.plain || sh.release <= 37 {
		return sh.write(c, http.StatusOK, sum)
	}
	code, wm := sh.webMessageFor(sum)
	if code != http.StatusOK {
		// DHIS2's controller advice on every 4xx/5xx (spec dhis2.md §2.2).
		c.Response().Header().Set("Cache-Control", "no-cache, private")
	}
	return sh.write(c, code, wm)
}

// writeMessage answers with a WebMessage without a summary (a refusal before import).
func (sh replyShape) writeMessage(c echo.Context, code int, msg string) error {
	status := "ERROR"
	if code < 300 {
		status = "OK"
	}
	if code >= 400 {
		c.Response().Header().Set("Cache-Control", "no-cache, private")
	}
	return sh.write(c, code, webMessage{HTTPStatus: http.StatusText(code), HTTPStatusCode: code, Status: status, Message: msg})
}

func (sh replyShape) write(c echo.Context, code int, body any) error {
	if !sh.xml {
		return c.JSON(code, body)
	}
	data, err := xmlAnswer(body)
	if err != nil {
		return err
	}
	return c.Blob(code, "application/xml;charset=UTF-8", data)
}

// wantsXML reports whether a request asks for XML: the path's .xml suffix, or an Accept
// header that names application/xml (or text/xml) and not JSON before it, as Spring's
// content negotiation in DHIS2 picks the answer's type. Without either the answer is JSON.
func wantsXML(c echo.Context, suffix string) bool {
	switch suffix {
	case ".xml":
		return true
	case ".json":
		return false
	}
	for _, part := range strings.Split(c.Request().Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/json", "*/*", "application/*":
			return false
		case "application/xml", "text/xml":
			return true
		}
	}
	return false
}

// The XML form of the answers follows DHIS2's Jackson XML annotations (dhis2-core
// dxf2/webmessage/WebMessage.java and dxf2/importsummary/ImportSummary.java, ImportCount.java,
// ImportConflict.java): the root <webMessage> in the DXF 2.0 namespace with status,
// httpStatus and httpStatusCode as attributes and <message> and <response> as elements; the
// summary's fields as elements, the import count as attributes of <importCount>, and each
// conflict as a <conflict> with its errorCode, object, value and property as attributes
// and its objects as child elements. Conflict indexes and the echo of the import options
// are left out: how Jackson writes an int array as an attribute is not established, and
// the options are the request's own.
const dxfNamespace = "http://dhis2.org/schema/dxf/2.0"

type xmlWebMessage struct {
	XMLName        xml.Name `xml:"webMessage"`
	NS             string   `xml:"xmlns,attr"`
	Status         string   `xml:"status,attr"`
	HTTPStatus     string   `xml:"httpStatus,attr"`
	HTTPStatusCode int      `xml:"httpStatusCode,attr"`
	Message        string   `xml:"message,omitempty"`
	// Response is an *xmlSummary or a *jobReference.
	Response any `xml:"response,omitempty"`
}

type xmlSummary struct {
	XMLName         xml.Name      `xml:"response"`
	NS              string        `xml:"xmlns,attr,omitempty"`
	ResponseType    string        `xml:"responseType,attr"`
	Status          string        `xml:"status"`
	Description     string        `xml:"description"`
	ImportCount     xmlCount      `xml:"importCount"`
	Conflicts       []xmlConflict `xml:"conflicts>conflict"`
	RejectedIndexes *xmlIndexes   `xml:"rejectedIndexes,omitempty"`
	DataSetComplete string        `xml:"dataSetComplete"`
	Reference       string        `xml:"reference,omitempty"`
}

type xmlCount struct {
	Imported int `xml:"imported,attr"`
	Updated  int `xml:"updated,attr"`
	Ignored  int `xml:"ignored,attr"`
	Deleted  int `xml:"deleted,attr"`
}

type xmlConflict struct {
	ErrorCode string      `xml:"errorCode,attr,omitempty"`
	Object    string      `xml:"object,attr,omitempty"`
	Value     string      `xml:"value,attr"`
	Property  string      `xml:"property,attr,omitempty"`
	Objects   *xmlObjects `xml:"objects,omitempty"`
}

type xmlObjects struct {
	Items []xmlObjectsRef
}

type xmlObjectsRef struct {
	XMLName xml.Name
	ID      string `xml:",chardata"`
}

type xmlIndexes struct {
	Index []int `xml:"rejectedIndex"`
}

func xmlAnswer(body any) ([]byte, error) {
	var v any
	switch b := body.(type) {
	case webMessage:
		wm := xmlWebMessage{NS: dxfNamespace, Status: b.Status, HTTPStatus: b.HTTPStatus, HTTPStatusCode: b.HTTPStatusCode,
			Message: b.Message}
		switch r := b.Response.(type) {
		case *importSummary:
			wm.Response = xmlSummaryOf(r, "")
		case *jobReference:
			wm.Response = r
		}
		v = wm
	case *importSummary:
		x := xmlSummaryOf(b, dxfNamespace)
		x.XMLName = xml.Name{Local: "importSummary"}
		v = x
	default:
		return nil, errNoXML
	}
	data, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), data...), nil
}

var errNoXML = echo.NewHTTPError(http.StatusNotAcceptable, "this answer has no XML form")

func xmlSummaryOf(sum *importSummary, ns string) *xmlSummary {
	x := &xmlSummary{NS: ns, ResponseType: sum.ResponseType, Status: sum.Status, Description: sum.Description,
		ImportCount:     xmlCount{sum.ImportCount.Imported, sum.ImportCount.Updated, sum.ImportCount.Ignored, sum.ImportCount.Deleted},
		DataSetComplete: sum.DataSetComplete, Reference: sum.Reference}
	for _, c := range sum.Conflicts {
		xc := xmlConflict{ErrorCode: c.ErrorCode, Object: c.Object, Value: c.Value, Property: c.Property}
		if len(c.Objects) > 0 {
			xc.Objects = &xmlObjects{}
			for _, k := range slices.Sorted(maps.Keys(c.Objects)) {
				xc.Objects.Items = append(xc.Objects.Items, xmlObjectsRef{XMLName: xml.Name{Local: k}, ID: c.Objects[k]})
			}
		}
		x.Conflicts = append(x.Conflicts, xc)
	}
	if sum.RejectedIndexes != nil {
		x.RejectedIndexes = &xmlIndexes{Index: *sum.RejectedIndexes}
	}
	return x
}
