package dhis2

// Response bodies replayed by the tests, per era, as spec/dhis2.md §2.4 and §3 give them.

// bodyA: §2.4 A. 2.40, one unknown data element out of three, HTTP 409.
const bodyA = `{
  "httpStatus": "Conflict",
  "httpStatusCode": 409,
  "status": "WARNING",
  "message": "One more conflicts encountered, please check import summary.",
  "response": {
    "responseType": "ImportSummary",
    "status": "WARNING",
    "importOptions": { "idSchemes": {}, "dryRun": false, "async": false, "importStrategy": "CREATE_AND_UPDATE", "...": "..." },
    "description": "Import process completed successfully",
    "importCount": { "imported": 2, "updated": 0, "ignored": 1, "deleted": 0 },
    "conflicts": [
      { "object": "XXXXXXXXXXX", "objects": { "dataElement": "XXXXXXXXXXX" },
        "value": "Data element not found or not accessible: ` + "`XXXXXXXXXXX`" + `",
        "errorCode": "E7610", "property": "dataElement", "indexes": [2] }
    ],
    "rejectedIndexes": [2],
    "dataSetComplete": "false"
  }
}`

// bodyB236: §2.4 B on 2.36. Bare summary, HTTP 200 with a conflict, no indexes.
const bodyB236 = `{"responseType":"ImportSummary","status":"WARNING","importOptions":{"idSchemes":{},"dryRun":false,"...":"..."},
 "description":"Import process completed successfully",
 "importCount":{"imported":2,"updated":0,"ignored":1,"deleted":0},
 "conflicts":[{"object":"XXXXXXXXXXX","value":"Data element not found or not accessible"}],
 "dataSetComplete":"false"}`

// bodyB237: §2.4 B on 2.37 (or /api/37/ on 2.38–2.41): bare, 2.37+ conflict shape.
const bodyB237 = `{"responseType":"ImportSummary","status":"WARNING",
 "importOptions":{"idSchemes":{},"dryRun":false,"async":false,"importStrategy":"CREATE_AND_UPDATE","mergeMode":"REPLACE"},
 "description":"Import process completed successfully",
 "importCount":{"imported":1,"updated":0,"ignored":2,"deleted":0},
 "conflicts":[
  {"object":"XXXXXXXXXXX","objects":{"dataElement":"XXXXXXXXXXX"},"value":"Data element not found or not accessible: ` + "`XXXXXXXXXXX`" + `","errorCode":"E7610","property":"dataElement","indexes":[2]},
  {"object":"2024W53","objects":{"period":"2024W53"},"value":"Period not valid: ` + "`2024W53`" + `","errorCode":"E7611","property":"period","indexes":[0]}],
 "dataSetComplete":"false"}`

// bodyC: §2.4 C. 2.38–2.42, unknown header data set: import aborted, HTTP 409.
const bodyC = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR",
 "message":"An error occurred, please check import summary.",
 "response":{"responseType":"ImportSummary","status":"ERROR",
  "importOptions":{"idSchemes":{},"dryRun":false,"async":false,"importStrategy":"CREATE_AND_UPDATE"},
  "description":"Import process was aborted",
  "importCount":{"imported":0,"updated":0,"ignored":0,"deleted":0},
  "conflicts":[{"object":"NOPE1234567","objects":{"dataSet":"NOPE1234567"},"value":"Data set not found or not accessible: ` + "`NOPE1234567`" + `","errorCode":"E7600","property":"dataSet"}],
  "rejectedIndexes":[],"dataSetComplete":"false"}}`

// bodyD: §2.4 D. 2.43+, all three values accepted, HTTP 200, all counted as updated.
const bodyD = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Import was successful.",
 "response":{"responseType":"ImportSummary","status":"SUCCESS",
  "importOptions":{"idSchemes":{},"dryRun":false,"async":false,"importStrategy":"CREATE_AND_UPDATE","atomic":false},
  "description":"Import process completed successfully",
  "importCount":{"imported":0,"updated":3,"ignored":0,"deleted":0},
  "conflicts":[],"rejectedIndexes":[],"dataSetComplete":"false"}}`

// body243Warning: 2.43+ partial success, HTTP 200 (§2.2), E81xx conflict with objects.args
// (§2.3), no object or property.
const body243Warning = `{"httpStatus":"OK","httpStatusCode":200,"status":"WARNING",
 "message":"Import completed with warnings, please check import summary.",
 "response":{"responseType":"ImportSummary","status":"WARNING",
  "description":"Import process completed with warnings",
  "importCount":{"imported":0,"updated":2,"ignored":1,"deleted":0},
  "conflicts":[{"objects":{"args":"2-XXXXXXXXXXX"},"value":"Value #2 data element not found: ` + "`XXXXXXXXXXX`" + `","errorCode":"E8103","indexes":[2]}],
  "dataSetComplete":"false"}}`

// body243GroupError: 2.43+ with one group refused (E8003, no indexes) while another
// group's values went in: WARNING, indexes unknown.
const body243GroupError = `{"httpStatus":"OK","httpStatusCode":200,"status":"WARNING",
 "message":"Import completed with warnings, please check import summary.",
 "response":{"responseType":"ImportSummary","status":"WARNING",
  "importCount":{"imported":0,"updated":1,"ignored":2,"deleted":0},
  "conflicts":[{"objects":{"args":"XXXXXXXXXXX"},"value":"Data set detection failed, found no set for data element(s)","errorCode":"E8003"}]}}`

// body241: 2.41, a rejected value plus the old-style completion conflict, which carries no
// indexes; rejectedIndexes settles which values were refused.
const body241 = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"WARNING",
 "message":"One more conflicts encountered, please check import summary.",
 "response":{"responseType":"ImportSummary","status":"WARNING",
  "description":"Import process completed successfully",
  "importCount":{"imported":2,"updated":0,"ignored":1,"deleted":0},
  "conflicts":[
   {"object":"OrganisationUnit","value":"Must be provided to complete data set"},
   {"object":"XXXXXXXXXXX","objects":{"dataElement":"XXXXXXXXXXX"},"value":"Data element not found or not accessible: ` + "`XXXXXXXXXXX`" + `","errorCode":"E7610","property":"dataElement","indexes":[2]}],
  "rejectedIndexes":[2],"dataSetComplete":"false"}}`

// body238Success: 2.38–2.42 clean success, HTTP 200, WebMessage. Without imported > 0 it
// would not tell its era; here it does.
const body238Success = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Import was successful.",
 "response":{"responseType":"ImportSummary","status":"SUCCESS","description":"Import process completed successfully",
  "importCount":{"imported":3,"updated":0,"ignored":0,"deleted":0},"conflicts":[],"dataSetComplete":"false"}}`

// bodyWMSuccessPlain: a WebMessage SUCCESS with nothing era-specific.
const bodyWMSuccessPlain = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Import was successful.",
 "response":{"responseType":"ImportSummary","status":"SUCCESS","importCount":{"imported":0,"updated":0,"ignored":3,"deleted":0}}}`

// bodyBareSuccess: a bare SUCCESS with nothing era-specific.
const bodyBareSuccess = `{"responseType":"ImportSummary","status":"SUCCESS","description":"Import process completed successfully",
 "importCount":{"imported":3,"updated":0,"ignored":0,"deleted":0},"conflicts":[],"dataSetComplete":"false"}`

// bodyMalformed: 2.38+ answer to malformed JSON: ERROR via an exception (§2.2).
const bodyMalformed = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR",
 "message":"An error occurred, please check import summary.",
 "response":{"responseType":"ImportSummary","status":"ERROR",
  "description":"The import process failed: Unexpected character ('}' (code 125)): was expecting double-quote to start field name",
  "importCount":{"imported":0,"updated":0,"ignored":0,"deleted":0}}}`

// bodyDeadlock: an ERROR summary wrapping a database deadlock: DHIS2 busy.
const bodyDeadlock = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR",
 "message":"An error occurred, please check import summary.",
 "response":{"responseType":"ImportSummary","status":"ERROR",
  "description":"The import process failed: could not execute batch; SQL [n/a]; nested exception is org.postgresql.util.PSQLException: ERROR: deadlock detected",
  "importCount":{"imported":0,"updated":0,"ignored":0,"deleted":0}}}`

// body409NotSummary: a 409 WebMessage that is no import summary (a ConflictException).
const body409NotSummary = `{"httpStatus":"Conflict","httpStatusCode":409,"status":"ERROR",
 "message":"Ad-hoc job creation failed","errorCode":"E1004"}`

// Authentication failures (§9; dhis2-core PR 1527 shows both bodies).
const (
	body401JSON = `{"httpStatus":"Unauthorized","httpStatusCode":401,"status":"ERROR","message":"Unauthorized"}`
	body401HTML = `<!doctype html><html lang="en"><head><title>HTTP Status 401 – Unauthorized</title>` +
		`<style type="text/css">h1 {font-family:Tahoma,Arial,sans-serif;}</style></head><body>` +
		`<h1>HTTP Status 401 – Unauthorized</h1><hr class="line" /><p><b>Type</b> Status Report</p></body></html>`
	body401Token = `{"httpStatus":"Unauthorized","httpStatusCode":401,"status":"ERROR","message":"The API token does not exists."}`
	body400Token = `{"error":"invalid_request","error_description":"Checksum validation failed"}`
	body403JSON  = `{"httpStatus":"Forbidden","httpStatusCode":403,"status":"ERROR","message":"You don't have the proper permissions to access this page.","errorCode":"E1006"}`
)

// body502Proxy: nginx's page for a dead upstream.
const body502Proxy = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
	"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"

// Async (§3).
const (
	jobID = "Qe8zAYEqQeP"

	asyncStart240 = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated dataValueImport",
 "response":{"name":"dataValueImport","id":"` + jobID + `","created":"2024-03-15T10:00:00.000","jobType":"DATAVALUE_IMPORT",
  "jobStatus":"SCHEDULED","jobParameters":{"dryRun":false,"async":true},
  "relativeNotifierEndpoint":"/api/system/tasks/DATAVALUE_IMPORT/` + jobID + `"}}`
	asyncStart241 = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated DATAVALUE_IMPORT (1712345678901)",
 "response":{"name":"DATAVALUE_IMPORT (1712345678901)","id":"` + jobID + `","created":"2024-04-05T19:34:38.901","jobType":"DATAVALUE_IMPORT",
  "jobStatus":"SCHEDULED","relativeNotifierEndpoint":"/api/system/tasks/DATAVALUE_IMPORT/` + jobID + `"}}`
	asyncStart242 = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated DATAVALUE_IMPORT (1712345678901)",
 "response":{"responseType":"JobConfiguration","name":"DATAVALUE_IMPORT (1712345678901)","id":"` + jobID + `","jobType":"DATAVALUE_IMPORT",
  "jobStatus":"SCHEDULED","relativeNotifierEndpoint":"/api/system/tasks/DATAVALUE_IMPORT/` + jobID + `"}}`
	// asyncStartEndpointOnly: no id field; the id is the endpoint's last segment.
	asyncStartEndpointOnly = `{"httpStatus":"OK","httpStatusCode":200,"status":"OK","message":"Initiated dataValueImport",
 "response":{"name":"dataValueImport","jobType":"DATAVALUE_IMPORT","relativeNotifierEndpoint":"/api/system/tasks/DATAVALUE_IMPORT/` + jobID + `"}}`

	notesNone    = `[]`
	notesRunning = `[{"uid":"n2","level":"INFO","category":"DATAVALUE_IMPORT","time":"2024-03-15T10:00:01.000","message":"Importing data values","completed":false},
 {"uid":"n1","level":"INFO","category":"DATAVALUE_IMPORT","time":"2024-03-15T10:00:00.500","message":"Process started","completed":false}]`
	notesDone = `[{"uid":"n3","level":"INFO","category":"DATAVALUE_IMPORT","time":"2015-09-02T07:43:14.595+0000","message":"Import done","completed":true},
 {"uid":"n2","level":"INFO","category":"DATAVALUE_IMPORT","time":"2015-09-02T07:43:14.000+0000","message":"Importing data values","completed":false}]`
	notesFailed = `[{"uid":"n3","level":"ERROR","category":"DATAVALUE_IMPORT","time":"2024-03-15T10:00:02.000","message":"Process failed: Unexpected end-of-input","completed":true}]`

	taskSummaryWarning = `{"responseType":"ImportSummary","status":"WARNING","description":"Import process completed successfully",
 "importCount":{"imported":2,"updated":0,"ignored":1,"deleted":0},
 "conflicts":[{"object":"XXXXXXXXXXX","objects":{"dataElement":"XXXXXXXXXXX"},"value":"Data element not found or not accessible: ` + "`XXXXXXXXXXX`" + `","errorCode":"E7610","property":"dataElement","indexes":[2]}],
 "rejectedIndexes":[2],"dataSetComplete":"false"}`
	taskSummaryError = `{"responseType":"ImportSummary","status":"ERROR","description":"Import process was aborted",
 "importCount":{"imported":0,"updated":0,"ignored":0,"deleted":0},
 "conflicts":[{"object":"NOPE1234567","objects":{"dataSet":"NOPE1234567"},"value":"Data set not found or not accessible: ` + "`NOPE1234567`" + `","errorCode":"E7600","property":"dataSet"}]}`
)
