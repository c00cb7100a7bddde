package mediator

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/config"
)

// The DHIS2-compatible endpoint answers in DHIS2's own shapes (spec dhis2.md §2.3), as a
// 2.38+ server does, so that DHIS2's aggregate data exchange and scripts written for DHIS2
// can parse the answer. A request whose path names API version 37 or lower gets the bare
// ImportSummary those versions return.

type webMessage struct {
	HTTPStatus     string         `json:"httpStatus"`
	HTTPStatusCode int            `json:"httpStatusCode"`
	Status         string         `json:"status"`
	Message        string         `json:"message"`
	Response       *importSummary `json:"response,omitempty"`
}

type importSummary struct {
	ResponseType    string          `json:"responseType"`
	Status          string          `json:"status"`
	ImportOptions   map[string]any  `json:"importOptions"`
	Description     string          `json:"description"`
	ImportCount     ImportCount     `json:"importCount"`
	Conflicts       []dhis2Conflict `json:"conflicts"`
	RejectedIndexes []int           `json:"rejectedIndexes,omitempty"`
	DataSetComplete string          `json:"dataSetComplete"`
	// Reference is Tally's transaction id, where the tracker summaries put theirs.
	Reference string `json:"reference,omitempty"`
}

type dhis2Conflict struct {
	Object   string            `json:"object"`
	Objects  map[string]string `json:"objects,omitempty"`
	Value    string            `json:"value"`
	Property string            `json:"property,omitempty"`
	Indexes  []int             `json:"indexes,omitempty"`
}

var apiVersionRE = regexp.MustCompile(`^[0-9]{2}$`)

// handleDataValueSets is POST /api/dataValueSets: the client is identified by the
// credentials it sends (Basic, Bearer or ApiToken), which pick the source.
func (s *Service) handleDataValueSets(c echo.Context) error {
	plain := false
	if v := c.Param("version"); v != "" {
		if !apiVersionRE.MatchString(v) {
			return c.JSON(http.StatusNotFound, apiError{Status: "error", Message: "no such API version: " + v})
		}
		plain = v <= "37"
	}
	src, err := authenticate(c.Request(), s.cfg.Sources, nil)
	if err != nil {
		// DHIS2's 401 body (spec dhis2.md §9).
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="DHIS2"`)
		return c.JSON(http.StatusUnauthorized, webMessage{HTTPStatus: "Unauthorized", HTTPStatusCode: 401,
			Status: "ERROR", Message: "Unauthorized"})
	}
	res, err := s.ingest(c.Request().Context(), s.ingestRequestFrom(c, src))
	opts := importOptionsEcho(c)
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			return err
		}
		s.metrics.IngestRejected.WithLabelValues(src.Name, re.Reason).Inc()
		if re.Input == nil {
			// Not a payload problem (too large, unsupported type, storage unavailable):
			// answer with the status and a WebMessage saying why.
			if re.Status == http.StatusServiceUnavailable {
				c.Response().Header().Set("Retry-After", "5")
			}
			return c.JSON(re.Status, webMessage{HTTPStatus: http.StatusText(re.Status), HTTPStatusCode: re.Status,
				Status: "ERROR", Message: re.Msg})
		}
		sum := &importSummary{ResponseType: "ImportSummary", Status: "ERROR", ImportOptions: opts,
			Description: "Import process was aborted: " + re.Msg, DataSetComplete: "false", Conflicts: []dhis2Conflict{}}
		for _, ie := range re.Input.Errs {
			cf := dhis2Conflict{Object: ie.Field, Value: ie.Error(), Property: ie.Field}
			if ie.Value != "" {
				cf.Object = ie.Value
			}
			if ie.Index >= 0 {
				cf.Indexes = []int{ie.Index}
			}
			sum.Conflicts = append(sum.Conflicts, cf)
		}
		if plain {
			return c.JSON(http.StatusOK, sum)
		}
		return c.JSON(http.StatusConflict, webMessage{HTTPStatus: "Conflict", HTTPStatusCode: 409, Status: "ERROR",
			Message: "An error occurred, please check import summary.", Response: sum})
	}
	desc := fmt.Sprintf("Accepted by Tally as transaction %s for delivery to %s", res.Tx.ID, strings.Join(res.Tx.Targets, ", "))
	switch {
	case res.DryRun:
		desc = "Dry run: the payload is valid; nothing was stored or sent"
		opts["dryRun"] = true
	case res.Duplicate:
		desc = fmt.Sprintf("Already accepted by Tally as transaction %s; delivery is in progress", res.Tx.ID)
	}
	sum := &importSummary{ResponseType: "ImportSummary", Status: "SUCCESS", ImportOptions: opts, Description: desc,
		ImportCount: ImportCount{Imported: res.Tx.Values}, Conflicts: []dhis2Conflict{}, DataSetComplete: "false",
		Reference: res.Tx.ID}
	if !res.DryRun {
		var v *TxView
		if res.Duplicate {
			// A repeat of a request is answered with what became of the first: a client
			// must not read "successful" for values that were dead-lettered.
			v, _ = s.finished(c.Request().Context(), res.Tx.ID)
		} else {
			v = s.awaitDelivery(c.Request().Context(), src, res.Tx.ID)
		}
		if v != nil {
			return s.answerOutcome(c, sum, v, res.Duplicate, plain)
		}
	}
	if plain {
		return c.JSON(http.StatusOK, sum)
	}
	return c.JSON(http.StatusOK, webMessage{HTTPStatus: "OK", HTTPStatusCode: 200, Status: "OK",
		Message: "Import was successful.", Response: sum})
}

// answerOutcome answers with what the targets reported for a finished transaction — the
// counts and conflicts, so that a client reads what DHIS2 itself would have told it: in
// synchronous mode (the source waits for delivery), and for a repeat of a request.
func (s *Service) answerOutcome(c echo.Context, sum *importSummary, v *TxView, repeat, plain bool) error {
	sum.ImportCount, _ = deliveredCounts(v)
	sum.Description = fmt.Sprintf("Delivered by Tally as transaction %s: %s", v.ID, v.Status)
	if repeat {
		sum.Description = fmt.Sprintf("Already received as transaction %s: %s", v.ID, v.Status)
	}
	for _, t := range v.Targets {
		for _, cf := range t.Conflicts {
			sum.Conflicts = append(sum.Conflicts, dhis2Conflict{Object: cf.Object, Value: cf.Message,
				Property: cf.Property, Indexes: cf.Indexes})
		}
	}
	if v.Status == TxDelivered {
		if plain {
			return c.JSON(http.StatusOK, sum)
		}
		return c.JSON(http.StatusOK, webMessage{HTTPStatus: "OK", HTTPStatusCode: 200, Status: "OK",
			Message: "Import was successful.", Response: sum})
	}
	sum.Status = "WARNING"
	msg := "One more conflicts encountered, please check import summary." // sic, DHIS2's text
	if v.Status == TxFailed {
		sum.Status = "ERROR"
		msg = "An error occurred, please check import summary."
	}
	if plain {
		return c.JSON(http.StatusOK, sum)
	}
	return c.JSON(http.StatusConflict, webMessage{HTTPStatus: "Conflict", HTTPStatusCode: 409, Status: sum.Status,
		Message: msg, Response: sum})
}

// importOptionsEcho echoes the effective options as DHIS2 does, from the query.
func importOptionsEcho(c echo.Context) map[string]any {
	q := c.QueryParams()
	schemes := map[string]any{}
	for _, k := range []string{"idScheme", "dataElementIdScheme", "orgUnitIdScheme", "categoryOptionComboIdScheme", "dataSetIdScheme"} {
		if v := q.Get(k); v != "" {
			schemes[k] = map[string]string{"type": strings.ToUpper(v)}
		}
	}
	strategy := q.Get("importStrategy")
	if strategy == "" {
		strategy = "CREATE_AND_UPDATE"
	}
	return map[string]any{"idSchemes": schemes, "dryRun": q.Get("dryRun") == "true", "async": false,
		"importStrategy": strategy, "skipAudit": q.Get("skipAudit") == "true"}
}

func (s *Service) ingestRequestFrom(c echo.Context, src *config.Source) ingestRequest {
	r := c.Request()
	return ingestRequest{Source: src, ContentType: r.Header.Get("Content-Type"), Body: r.Body,
		Query: r.URL.Query(), OpenHIMTx: r.Header.Get("X-OpenHIM-TransactionID")}
}
