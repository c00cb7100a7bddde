package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/ingest"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// POST /api/dataValueSets is a drop-in for DHIS2's: a DHIS2 aggregate data exchange, or a
// script written for DHIS2, posts to Tally unchanged and reads what DHIS2 would have told
// it (spec dhis2.md §1–§3):
//
//   - The payload is read as DHIS2 reads it: by its Content-Type (415 otherwise), with UID
//     for an id scheme the request does not state (ADX: CODE), and value by value: a value
//     DHIS2 would refuse (no data element, an invalid period, no org unit, nothing to
//     write) is a conflict with DHIS2's error code, objects and index, and the other values
//     go on to the targets. A source with validation: atomic refuses the whole payload
//     instead, as does atomic=true in the 2.43 era. A problem with the document itself
//     (malformed JSON, an unknown strategy in its header) refuses it whole, as in DHIS2.
//   - The answer is written as the era's release writes it (mediator/ingest/era.go, webmessage.go): the
//     bare ImportSummary up to 2.37 and on /api/37/ before 2.42, else a WebMessage, 409 on
//     WARNING up to 2.42 and 200 from 2.43; JSON, or XML when asked for.
//   - Its counts never claim what a target has not said. A source that waits for
//     delivery (wait_for_delivery) gets the targets' own counts and conflicts, plus the
//     values refused before they were sent (counted as ignored, as DHIS2 counts a value it
//     refuses). Otherwise the answer comes once the payload is stored and says what Tally
//     accepted: importCount.imported (updated in the 2.43 era, which counts every write
//     there) is the number of values accepted for delivery, importCount.ignored the number
//     refused, and the description names the transaction whose record tells what the
//     targets made of them.

var apiVersionRE = regexp.MustCompile(`^[0-9]{2}$`)

// dhis2Routes mounts the DHIS2-compatible endpoint, with the .json and .xml suffixes
// DHIS2 maps too, with and without an API version in the path.
func (s dhis2API) dhis2Routes(e *echo.Echo) {
	for _, p := range []string{"/api/dataValueSets", "/api/:version/dataValueSets"} {
		for _, suffix := range []string{"", ".json", ".xml"} {
			e.POST(p+suffix, s.handleDataValueSets, s.openhimEnvelope)
		}
	}
	s.taskRoutes(e) // tasks.go: the jobs of async=true imports
}

// handleDataValueSets is POST /api/dataValueSets: the client is identified by the
// credentials it sends (Basic, Bearer or ApiToken), which pick the source.
func (s dhis2API) handleDataValueSets(c echo.Context) error {
	ctx := c.Request().Context()
	sh := replyShape{xml: wantsXML(c, path.Ext(c.Path())), release: ingest.DefaultEra}
	version := c.Param("version")
	if version != "" && !apiVersionRE.MatchString(version) {
		return sh.writeMessage(c, http.StatusNotFound, "no such API version: "+version)
	}
	src, err := authenticate(c.Request(), s.cfg.Sources, nil)
	if err != nil {
		// DHIS2's 401 (spec dhis2.md §9).
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="DHIS2"`)
		return sh.writeMessage(c, http.StatusUnauthorized, "Unauthorized")
	}
	if limited, err := s.rateLimited(c, src); limited {
		return err
	}
	sh.release = s.ingester.Era(ctx, src)
	// The bare summary answers a path naming API version 37 or lower, up to 2.41 (spec
	// dhis2.md §2.1).
	sh.plain = version != "" && version <= "37" && sh.release <= 41
	opts := importOptionsEcho(c)
	req := s.ingestRequestFrom(c, src)
	req.DHIS2, req.Release = true, sh.release
	res, err := s.ingester.Ingest(ctx, req)
	if err != nil {
		return s.refuseImport(c, sh, src, opts, err)
	}
	sum, rejected := acceptedSummary(res, opts, sh.release)
	if strings.EqualFold(c.QueryParam("async"), "true") {
		// DHIS2 answers an asynchronous import with a job to poll (tasks.go).
		sum.forRelease(sh.release, rejected)
		return s.startJob(c, sh, src, res, sum)
	}
	if res.Tx != nil && !res.DryRun {
		var v *txlog.TxView
		if res.Duplicate {
			// A repeat of a request is answered with what became of the first: a client
			// must not read "successful" for values that were dead-lettered.
			v, _ = s.txlog.Finished(ctx, res.Tx.ID)
		} else {
			v = s.txlog.Await(ctx, res.Tx.ID, src.WaitForDelivery.D())
		}
		if v != nil {
			var mine *transform.ValueReport
			if !res.Duplicate {
				mine = &res.Report
			}
			sum, rejected = outcomeSummary(v, mine, opts, sh.release)
		}
	}
	sum.forRelease(sh.release, rejected)
	return sh.writeSummary(c, sum)
}

// refuseImport answers a payload refused as a whole: a problem with the document (or, with
// atomic validation, with any value) is DHIS2's ERROR summary with the conflicts; anything
// else (a wrong type, too large, storage unavailable) a WebMessage with the status.
func (s dhis2API) refuseImport(c echo.Context, sh replyShape, src *config.Source, opts map[string]any, err error) error {
	var re *ingest.RequestError
	if !errors.As(err, &re) {
		return err
	}
	s.ingester.Refused(src.Name, re.Reason)
	if re.Input == nil {
		if re.Status == http.StatusServiceUnavailable {
			c.Response().Header().Set("Retry-After", "5")
		}
		return sh.writeMessage(c, re.Status, re.Msg)
	}
	desc := "The import process failed: " + re.Msg
	if slices.ContainsFunc(re.Input.Errs, func(e *transform.InputError) bool { return e.Index >= 0 }) {
		desc = "Import process was aborted: " + re.Msg
	}
	sum := &importSummary{ResponseType: "ImportSummary", Status: statusError, ImportOptions: opts,
		Description: desc, DataSetComplete: "false", Conflicts: transform.MergeConflicts(re.Input.Errs)}
	sum.forRelease(sh.release, nil)
	return sh.writeSummary(c, sum)
}

// acceptedSummary says what Tally made of a payload it stored (or, for a dry run, read):
// the values accepted for delivery and those refused with their conflicts. It returns the
// refused values' indexes too.
func acceptedSummary(res *ingest.Result, opts map[string]any, release int) (*importSummary, []int) {
	r := res.Report
	sum := &importSummary{ResponseType: "ImportSummary", Status: statusSuccess, ImportOptions: opts,
		DataSetComplete: "false", Conflicts: append(transform.MergeConflicts(r.Conflicts), res.Notes...)}
	sum.ImportCount.Ignored = r.Rejected
	if release >= 43 {
		sum.ImportCount.Updated = r.Kept
	} else {
		sum.ImportCount.Imported = r.Kept
	}
	switch {
	case len(sum.Conflicts) == 0:
	case release >= 43 && r.Kept == 0:
		sum.Status = statusError // 2.43: errors and nothing written (spec dhis2.md §2.2)
	default:
		sum.Status = statusWarning
	}
	refused := refusedSummary(r)
	switch {
	case res.DryRun:
		sum.Description = "Dry run: the payload was read and checked; nothing was stored or sent" + refused
		opts["dryRun"] = true
	case res.Tx == nil:
		sum.Description = "Nothing to import: the payload holds no value to deliver" + refused
	case res.Duplicate:
		sum.Reference = res.Tx.ID
		sum.Description = fmt.Sprintf("Already accepted by Tally as transaction %s; delivery is in progress", res.Tx.ID)
	default:
		sum.Reference = res.Tx.ID
		sum.Description = fmt.Sprintf("Accepted by Tally as transaction %s for delivery to %s: %d values accepted%s; "+
			"the counts are Tally's, not the targets' (GET /admin/v1/transactions/%s tells what they made of them)",
			res.Tx.ID, strings.Join(res.Tx.Targets, ", "), r.Kept, refused, res.Tx.ID)
	}
	return sum, indexesOf(r.Conflicts)
}

func refusedSummary(r transform.ValueReport) string {
	if r.Rejected == 0 {
		return ""
	}
	return fmt.Sprintf(", %d refused", r.Rejected)
}

func indexesOf(errs []*transform.InputError) []int {
	out := make([]int, 0, len(errs))
	for _, e := range errs {
		if e.Index >= 0 {
			out = append(out, e.Index)
		}
	}
	return out
}

// outcomeSummary is what the targets made of a finished transaction, as DHIS2 would have
// told the client: their counts and conflicts, with the values refused before sending
// (at ingest: mine, or the transaction's record for a repeat; by mapping) counted as
// ignored and their conflicts listed. The payload's notes (its completeDate) are listed
// unless the import was refused as a whole, as DHIS2 looks at the completeDate only in an
// import that ran. It returns the rejected values' indexes too.
func outcomeSummary(v *txlog.TxView, mine *transform.ValueReport, opts map[string]any, release int) (*importSummary, []int) {
	sum := &importSummary{ResponseType: "ImportSummary", ImportOptions: opts, DataSetComplete: "false", Reference: v.ID}
	var rejected []int
	if mine != nil {
		sum.Conflicts = transform.MergeConflicts(mine.Conflicts)
		rejected = indexesOf(mine.Conflicts)
	} else {
		for _, c := range v.Conflicts {
			sum.Conflicts = append(sum.Conflicts, c.DHIS2())
			rejected = append(rejected, c.Indexes...)
		}
	}
	counts, _ := deliveredCounts(v)
	counts.Ignored += v.Refused
	wholeFailure := false
	for _, t := range v.Targets {
		rejected = append(rejected, t.RejectedIndexes...)
		if addTargetOutcome(sum, &counts, t) {
			wholeFailure = true
		}
	}
	sum.ImportCount = counts
	written := counts.Imported + counts.Updated + counts.Deleted
	aborted := v.Status == txlog.TxFailed && wholeFailure && written == 0
	if !aborted {
		for _, n := range v.Notes {
			sum.Conflicts = append(sum.Conflicts, n.DHIS2())
		}
	}
	switch {
	case aborted:
		sum.Status = statusError
	case len(sum.Conflicts) == 0 && v.Status == txlog.TxDelivered:
		sum.Status = statusSuccess
	case release >= 43 && written == 0:
		sum.Status = statusError
	default:
		sum.Status = statusWarning
	}
	sum.Description = fmt.Sprintf("Delivered by Tally as transaction %s to %s: %s", v.ID, targetList(v), v.Status)
	slices.Sort(rejected)
	return sum, slices.Compact(rejected)
}

// addTargetOutcome adds one target's conflicts and what never reached it to the summary,
// and reports whether the target refused the import as a whole.
func addTargetOutcome(sum *importSummary, counts *txlog.ImportCount, t *txlog.TargetSummary) bool {
	for _, cf := range t.Conflicts {
		sum.Conflicts = append(sum.Conflicts, cf.DHIS2())
	}
	// Values mapping refused (dead letters) or left out (unmapped) never reached the
	// target: DHIS2 would have counted them ignored.
	counts.Ignored += t.Refused + t.Unmapped
	if t.Unmapped > 0 {
		sum.Conflicts = append(sum.Conflicts, transform.ImportConflict{Object: t.Target,
			Value: fmt.Sprintf("%d values not mapped for %s (the source's unmapped policy); the transaction lists them", t.Unmapped, t.Target)})
	}
	if c := t.Completeness; c != nil {
		// The registration of the data set the payload completes (delivery/completeness.go),
		// as DHIS2 reports its header completeDate: dataSetComplete and conflicts.
		for _, cf := range c.Conflicts {
			sum.Conflicts = append(sum.Conflicts, cf.DHIS2())
		}
		if c.Registered() {
			sum.DataSetComplete = c.Date
		} else if len(c.Conflicts) == 0 && c.Error != "" {
			sum.Conflicts = append(sum.Conflicts, transform.ImportConflict{Object: t.Target,
				Value: "registering the complete data set failed: " + transform.ClipText(c.Error, 300)})
		}
	}
	if t.LastError == "" || t.Rejected == 0 {
		return false
	}
	if len(t.Conflicts) == 0 {
		// A request refused without a conflict (a server error, retries used
		// up): the reason is still the client's to read.
		sum.Conflicts = append(sum.Conflicts, transform.ImportConflict{Object: t.Target,
			Value: "delivery to " + t.Target + " failed: " + transform.ClipText(t.LastError, 300)})
	}
	return true
}

func targetList(v *txlog.TxView) string {
	names := make([]string, len(v.Targets))
	for i, t := range v.Targets {
		names[i] = t.Target
	}
	return strings.Join(names, ", ")
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
	strategy, err := transform.ParseImportStrategy(q.Get("importStrategy"))
	if err != nil || strategy == "" {
		strategy = transform.StrategyCreateAndUpdate
	}
	return map[string]any{"idSchemes": schemes, "dryRun": q.Get("dryRun") == "true", "async": q.Get("async") == "true",
		"importStrategy": string(strategy), "skipAudit": q.Get("skipAudit") == "true"}
}

func (s *Server) ingestRequestFrom(c echo.Context, src *config.Source) ingest.Request {
	r := c.Request()
	return ingest.Request{Source: src, ContentType: r.Header.Get("Content-Type"), Body: r.Body,
		Query: r.URL.Query(), OpenHIMTx: r.Header.Get("X-OpenHIM-TransactionID"),
		SentBy: senderOf(r, src), Client: c.RealIP(), UserAgent: r.UserAgent(), RequestID: RequestID(r.Context())}
}

// senderOf names the credential a request authenticated with, without its secret: the
// Basic user, the position of the token in the source's list, or public.
func senderOf(r *http.Request, src *config.Source) string {
	user, _, token := credentials(r)
	switch {
	case user != "":
		return "user " + user
	case token != "":
		for i, t := range src.Auth.Tokens {
			if constEq(t, token) {
				return "token " + strconv.Itoa(i+1)
			}
		}
	}
	return "public"
}

// deliveredCounts adds up what the targets reported, for an answer in DHIS2's shape.
func deliveredCounts(v *txlog.TxView) (txlog.ImportCount, int) {
	var c txlog.ImportCount
	rejected := 0
	for _, t := range v.Targets {
		c.Add(t.Counts)
		rejected += t.Rejected
	}
	return c, rejected
}
