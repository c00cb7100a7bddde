package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// async=true on POST /api/dataValueSets is answered as DHIS2 answers it (spec dhis2.md §3):
// at once, with a job reference and its relativeNotifierEndpoint, once the payload is read
// and stored; the job is Tally's transaction. A client polls
//
//	GET /api/system/tasks/DATAVALUE_IMPORT/{id}          notifications, newest first; the
//	                                                     last is "Import done", completed
//	GET /api/system/taskSummaries/DATAVALUE_IMPORT/{id}  the bare ImportSummary, or 200 with
//	                                                     an empty body until the targets answered
//
// with the credentials of the source that posted (DHIS2 lets only the user who started a
// job poll it). The summary is the one a source waiting for delivery gets: the targets'
// counts and conflicts with the values refused before sending. A job id is an 11-character
// DHIS2 uid derived from the transaction id (so a repeated request has the same job), kept
// in tally_state under job.<id> with the source, the era and the options echoed; a payload
// that stored nothing (empty, or every value refused) has a job whose summary is kept with
// it.

// jobType is the only job type Tally runs.
const jobType = "DATAVALUE_IMPORT"

// job is what tally_state keeps of an asynchronous import.
type job struct {
	ID      string         `json:"id"`
	Source  string         `json:"source"`
	Created time.Time      `json:"created"`
	Release int            `json:"release"`
	Options map[string]any `json:"importOptions"`
	// TxID is the transaction the job follows; Summary the outcome of a job that stored
	// nothing (it is done at once).
	TxID    string         `json:"tx,omitempty"`
	Summary *importSummary `json:"summary,omitempty"`
}

func jobKey(id string) string { return "job." + id }

// jobReference is the response of an asynchronous import's answer (JobConfiguration).
type jobReference struct {
	XMLName                  xml.Name `json:"-" xml:"response"`
	ResponseType             string   `json:"responseType,omitempty" xml:"responseType,attr,omitempty"`
	Name                     string   `json:"name" xml:"name"`
	ID                       string   `json:"id" xml:"id"`
	Created                  string   `json:"created" xml:"created"`
	JobType                  string   `json:"jobType" xml:"jobType"`
	JobStatus                string   `json:"jobStatus" xml:"jobStatus"`
	RelativeNotifierEndpoint string   `json:"relativeNotifierEndpoint" xml:"relativeNotifierEndpoint"`
}

// jobUID is a DHIS2-shaped uid (a letter, then 10 letters or digits) derived from seed.
func jobUID(seed string) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	const alnum = letters + "0123456789"
	sum := sha256.Sum256([]byte(seed))
	b := make([]byte, 11)
	b[0] = letters[int(sum[0])%len(letters)]
	for i := 1; i < 11; i++ {
		b[i] = alnum[int(sum[i])%len(alnum)]
	}
	return string(b)
}

// startJob records an asynchronous import and answers with its reference, as the era's
// DHIS2 writes it (spec dhis2.md §3): "dataValueImport" up to 2.40, "DATAVALUE_IMPORT
// (<epoch ms>)" from 2.41, responseType JobConfiguration from 2.42; with the Location
// header of the task endpoint.
func (s dhis2API) startJob(c echo.Context, sh replyShape, src *config.Source, res *ingest.Result, sum *importSummary) error {
	ctx := c.Request().Context()
	j := &job{Source: src.Name, Created: s.now().UTC(), Release: sh.release, Options: sum.ImportOptions}
	if res.Tx != nil && !res.DryRun {
		j.TxID, j.ID = res.Tx.ID, jobUID(res.Tx.ID)
	} else {
		var seed [16]byte
		_, _ = rand.Read(seed[:])
		j.ID, j.Summary = jobUID(string(seed[:])), sum
	}
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if _, err := s.jobs.Put(ctx, jobKey(j.ID), data); err != nil {
		return sh.writeMessage(c, http.StatusServiceUnavailable, "could not record the import job; retry later: "+err.Error())
	}
	name, msg := "dataValueImport", "Initiated dataValueImport"
	if sh.release >= 41 {
		name = fmt.Sprintf("%s (%d)", jobType, j.Created.UnixMilli())
		msg = "Initiated " + name
	}
	resp := &jobReference{Name: name, ID: j.ID, Created: dhis2Time(j.Created), JobType: jobType, JobStatus: "SCHEDULED",
		RelativeNotifierEndpoint: "/api/system/tasks/" + jobType + "/" + j.ID}
	if sh.release >= 42 {
		resp.ResponseType = "JobConfiguration"
	}
	c.Response().Header().Set("Location", "/api/system/tasks/"+jobType)
	return sh.write(c, http.StatusOK, webMessage{HTTPStatus: "OK", HTTPStatusCode: 200, Status: "OK", Message: msg, Response: resp})
}

// dhis2Time writes a time as DHIS2's notifications do: 2015-09-02T07:43:14.595+0000.
func dhis2Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// taskRoutes mounts the task endpoints, with and without an API version.
func (s dhis2API) taskRoutes(e *echo.Echo) {
	for _, p := range []string{"/api", "/api/:version"} {
		e.GET(p+"/system/tasks/:type/:id", s.handleTask)
		e.GET(p+"/system/taskSummaries/:type/:id", s.handleTaskSummary)
	}
}

// jobFor reads the job a task request names, as the source whose credentials it carries.
func (s dhis2API) jobFor(c echo.Context) (*job, *txlog.TxView, error) {
	src, err := authenticate(c.Request(), s.cfg.Sources, nil)
	if err != nil {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="DHIS2"`)
		return nil, nil, echo.NewHTTPError(http.StatusUnauthorized, "Unauthorized")
	}
	id := c.Param("id")
	if c.Param("type") != jobType || !txlog.ValidTxID(id) || len(id) != 11 {
		return nil, nil, echo.NewHTTPError(http.StatusNotFound, "no such task")
	}
	e, err := s.jobs.Get(c.Request().Context(), jobKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, echo.NewHTTPError(http.StatusNotFound, "no such task")
	}
	if err != nil {
		return nil, nil, echo.NewHTTPError(http.StatusServiceUnavailable, "reading the task: "+err.Error())
	}
	var j job
	if err := json.Unmarshal(e.Value(), &j); err != nil || j.Source != src.Name {
		// Only the source that started a job may poll it (spec dhis2.md §3).
		return nil, nil, echo.NewHTTPError(http.StatusNotFound, "no such task")
	}
	if j.TxID == "" {
		return &j, nil, nil
	}
	v, done := s.txlog.Finished(c.Request().Context(), j.TxID)
	if !done {
		return &j, nil, nil
	}
	return &j, v, nil
}

// summary is the job's outcome, or nil while the targets have not all answered.
func (j *job) summary(v *txlog.TxView) *importSummary {
	if j.Summary != nil {
		return j.Summary
	}
	if v == nil {
		return nil
	}
	sum, rejected := outcomeSummary(v, nil, j.Options, j.Release)
	sum.forRelease(j.Release, rejected)
	return sum
}

// handleTask is GET /api/system/tasks/DATAVALUE_IMPORT/{id}: the job's notifications,
// newest first, as DHIS2's notifier lists them.
func (s dhis2API) handleTask(c echo.Context) error {
	j, v, err := s.jobFor(c)
	if err != nil {
		return taskError(c, err)
	}
	type note struct {
		UID       string `json:"uid"`
		Level     string `json:"level"`
		Category  string `json:"category"`
		Time      string `json:"time"`
		Message   string `json:"message"`
		Completed bool   `json:"completed"`
	}
	notes := []note{{UID: jobUID(j.ID + "started"), Level: "INFO", Category: jobType, Time: dhis2Time(j.Created),
		Message: "Importing data values"}}
	if sum := j.summary(v); sum != nil {
		c := sum.ImportCount
		done := note{UID: jobUID(j.ID + "done"), Level: "INFO", Category: jobType, Time: dhis2Time(s.now()), Completed: true,
			Message: "Import done"}
		if sum.Status == statusError {
			done.Level = "ERROR"
			done.Message = fmt.Sprintf("Import complete with status ERROR, %d created, %d updated, %d deleted, %d ignored",
				c.Imported, c.Updated, c.Deleted, c.Ignored)
		}
		notes = append([]note{done}, notes...)
	}
	return c.JSON(http.StatusOK, notes)
}

// handleTaskSummary is GET /api/system/taskSummaries/DATAVALUE_IMPORT/{id}: the bare
// ImportSummary once the targets answered, else 200 with an empty body, as DHIS2 answers
// while a job runs.
func (s dhis2API) handleTaskSummary(c echo.Context) error {
	j, v, err := s.jobFor(c)
	if err != nil {
		return taskError(c, err)
	}
	sum := j.summary(v)
	if sum == nil {
		return c.NoContent(http.StatusOK)
	}
	return c.JSON(http.StatusOK, sum)
}

// taskError answers a task request that failed as DHIS2 does, with a WebMessage.
func taskError(c echo.Context, err error) error {
	var he *echo.HTTPError
	if !errors.As(err, &he) {
		return err
	}
	return replyShape{}.writeMessage(c, he.Code, fmt.Sprint(he.Message))
}
