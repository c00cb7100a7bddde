package bench

import (
	"encoding/json"
	"net/http"
)

// The counting sink's answers, shaped as DHIS2 2.38–2.42 writes them (spec dhis2.md §2.1–2.3):
// a WebMessage wrapping an ImportSummary, 200 for SUCCESS and 409 for WARNING and ERROR,
// fields in DHIS2's order, null fields omitted.

type importCount struct {
	Imported int `json:"imported"`
	Updated  int `json:"updated"`
	Ignored  int `json:"ignored"`
	Deleted  int `json:"deleted"`
}

type conflict struct {
	Object    string            `json:"object"`
	Objects   map[string]string `json:"objects"`
	Value     string            `json:"value"`
	ErrorCode string            `json:"errorCode"`
	Property  string            `json:"property"`
	Indexes   []int             `json:"indexes"`
}

type importSummary struct {
	ResponseType    string      `json:"responseType"`
	Status          string      `json:"status"`
	ImportOptions   any         `json:"importOptions"`
	Description     string      `json:"description"`
	Count           importCount `json:"importCount"`
	Conflicts       []*conflict `json:"conflicts"`
	Rejected        []int       `json:"rejectedIndexes"`
	DataSetComplete string      `json:"dataSetComplete"`
}

type webMessage struct {
	HTTPStatus     string `json:"httpStatus"`
	HTTPStatusCode int    `json:"httpStatusCode"`
	Status         string `json:"status"`
	Message        string `json:"message"`
	Response       any    `json:"response,omitempty"`
}

// defaultImportOptions is the importOptions echo of an import with default options (spec
// dhis2.md §2.3, the 2.37 body from medic/cht-core#7447, with 2.39+'s three flags).
var defaultImportOptions = map[string]any{"idSchemes": map[string]any{}, "dryRun": false, "async": false,
	"importStrategy": "CREATE_AND_UPDATE", "mergeMode": "REPLACE", "reportMode": "FULL", "skipExistingCheck": false,
	"sharing": false, "skipNotifications": false, "skipAudit": false, "datasetAllowsPeriods": false,
	"strictPeriods": false, "strictDataElements": false, "strictCategoryOptionCombos": false,
	"strictAttributeOptionCombos": false, "strictOrganisationUnits": false, "strictDataSetApproval": false,
	"strictDataSetLocking": false, "strictDataSetInputPeriods": false, "requireCategoryOptionCombo": false,
	"requireAttributeOptionCombo": false, "skipPatternValidation": false, "ignoreEmptyCollection": false,
	"force": false, "firstRowIsHeader": true, "skipLastUpdated": false, "mergeDataValues": false, "skipCache": false}

// failedSummary is an import that failed as a whole (status ERROR).
func failedSummary(err error) *importSummary {
	return &importSummary{Status: "ERROR", Description: "The import process failed: " + err.Error(), DataSetComplete: "false"}
}

func writeImportSummary(w http.ResponseWriter, sum *importSummary) {
	sum.ResponseType, sum.ImportOptions = "ImportSummary", defaultImportOptions
	if sum.Conflicts == nil {
		sum.Conflicts = []*conflict{}
	}
	if sum.Rejected == nil {
		sum.Rejected = []int{}
	}
	switch sum.Status {
	case "SUCCESS":
		writeWebMessage(w, http.StatusOK, "OK", "Import was successful.", sum)
	case "WARNING":
		// The typo is DHIS2's own (spec dhis2.md §2.2).
		writeWebMessage(w, http.StatusConflict, "WARNING", "One more conflicts encountered, please check import summary.", sum)
	default:
		writeWebMessage(w, http.StatusConflict, "ERROR", "An error occurred, please check import summary.", sum)
	}
}

func writeWebMessage(w http.ResponseWriter, code int, status, msg string, response any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	if code >= 400 {
		w.Header().Set("Cache-Control", "no-cache, private")
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(webMessage{HTTPStatus: http.StatusText(code), HTTPStatusCode: code, Status: status,
		Message: msg, Response: response})
}
