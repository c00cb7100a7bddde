package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// The outcome of a Tally transaction as the core's transaction shows it: the final status,
// one orchestration per target describing Tally's DHIS2 imports (request and response in the
// shape of the core's RequestDef and ResponseDef, spec openhim.md §8.2), and properties
// summing up what each target did. The client's own response (e.g. Tally's 202) stays the
// transaction's response. The same function builds the outcome for the envelope of a request
// that is final when answered and for the outbox, so that the outbox, confirming an
// envelope the core stored, finds nothing missing and adds nothing.

// Properties Tally sets on the core's transaction. Per target, "<target>: outcome",
// "<target>: conflicts" and "<target>: dead letters" (target names cannot hold ':').
const (
	propTransaction = "tally_transaction"
	propStatus      = "tally_status"
	propDryRun      = "tally_dry_run"
	propDuplicate   = "tally_duplicate"
	propRerunOf     = "tally_rerun_of"
	propReplayed    = "tally_replayed"
)

// maxOutcomeConflicts bounds the conflicts an orchestration body lists per target; the
// transaction log and the dead letters keep them all.
const maxOutcomeConflicts = 20

// openhimStatus is the core's status for a final Tally status.
func openhimStatus(txStatus string) openhim.Status {
	switch txStatus {
	case txlog.TxDelivered:
		return openhim.StatusSuccessful
	case txlog.TxPartiallyDelivered:
		return openhim.StatusCompletedWithErrors
	case txlog.TxFailed:
		return openhim.StatusFailed
	}
	return openhim.StatusProcessing
}

// openhimOutcome is what the core's transaction l.OpenHIMTx should show of the finished
// Tally transaction v. A duplicate sent nothing itself, so it has no DHIS2 orchestration.
func (x *Reporter) openhimOutcome(v *txlog.TxView, l *openhimLink) openhim.Outcome {
	targets := x.targetOutcomes(v)
	out := openhim.Outcome{Status: openhimStatus(v.Status), Properties: outcomeProperties(v, l, targets)}
	if l.Kind == linkDuplicate {
		return out
	}
	for i := range targets {
		out.Orchestrations = append(out.Orchestrations, x.importOrchestration(v, &targets[i], l.RequestID))
	}
	return out
}

// targetOutcome is what one target did with a transaction: the body of its orchestration.
type targetOutcome struct {
	Target      string            `json:"target"`
	Status      string            `json:"status"`
	DryRun      bool              `json:"dryRun,omitempty"`
	Batches     int               `json:"batches"`
	Values      int               `json:"values"`
	Unmapped    int               `json:"unmapped,omitempty"`
	ImportCount txlog.ImportCount `json:"importCount"`
	Rejected    int               `json:"rejected"`
	DeadLetters int               `json:"deadLetters"`
	Conflicts   []txlog.Conflict  `json:"conflicts,omitempty"`
	LastError   string            `json:"lastError,omitempty"`
	// first and last are the times of the target's first and last delivery records.
	first, last time.Time
}

// targetOutcomes sums up v per target. A batch counts as a dead letter while its latest
// delivery left values undelivered (partial or dead-lettered).
//
// Dry run is read from the configuration and the console as they are now, since delivery
// records do not say it; the outcome is built right after the last delivery.
func (x *Reporter) targetOutcomes(v *txlog.TxView) []targetOutcome {
	type chain struct {
		target string
		seq    int
	}
	latest := map[chain]*txlog.DeliveryRecord{}
	spans := map[string][2]time.Time{}
	for _, d := range v.Deliveries {
		k := chain{d.Target, d.Seq}
		if cur := latest[k]; cur == nil || d.Replay > cur.Replay {
			latest[k] = d
		}
		sp := spans[d.Target]
		if sp[0].IsZero() || d.Time.Before(sp[0]) {
			sp[0] = d.Time
		}
		if d.Time.After(sp[1]) {
			sp[1] = d.Time
		}
		spans[d.Target] = sp
	}
	dead := map[string]int{}
	for k, d := range latest {
		if d.Outcome == txlog.OutcomePartial || d.Outcome == txlog.OutcomeDeadLettered {
			dead[k.target]++
		}
	}
	out := make([]targetOutcome, 0, len(v.Targets))
	for _, t := range v.Targets {
		to := targetOutcome{Target: t.Target, DryRun: x.settings.DryRun(t.Target), Batches: t.Batches, Values: t.Values,
			Unmapped: t.Unmapped, ImportCount: t.Counts, Rejected: t.Rejected, DeadLetters: dead[t.Target],
			Conflicts: t.Conflicts[:min(len(t.Conflicts), maxOutcomeConflicts)], LastError: t.LastError}
		switch {
		case t.Rejected == 0 && dead[t.Target] == 0:
			to.Status = txlog.TxDelivered
		case t.Rejected < t.Values:
			to.Status = txlog.TxPartiallyDelivered
		default:
			to.Status = txlog.TxFailed
		}
		to.first, to.last = spans[t.Target][0], spans[t.Target][1]
		if to.first.IsZero() {
			to.first, to.last = v.Received, v.Received
		}
		out = append(out, to)
	}
	return out
}

// outcomeProperties are the properties of the core's transaction: plain values the console
// lists beside it.
func outcomeProperties(v *txlog.TxView, l *openhimLink, targets []targetOutcome) map[string]any {
	p := map[string]any{propTransaction: v.ID, propStatus: v.Status}
	var dry []string
	for i := range targets {
		t := &targets[i]
		line := fmt.Sprintf("%s: %d imported, %d updated, %d ignored, %d deleted, %d rejected", t.Status,
			t.ImportCount.Imported, t.ImportCount.Updated, t.ImportCount.Ignored, t.ImportCount.Deleted, t.Rejected)
		if t.DryRun {
			line = "dry run, " + line
			dry = append(dry, t.Target)
		}
		p[t.Target+": outcome"] = line
		if t.DeadLetters > 0 {
			p[t.Target+": dead letters"] = t.DeadLetters
		}
		if c := conflictSummary(t.Conflicts); c != "" {
			p[t.Target+": conflicts"] = c
		}
	}
	if len(dry) > 0 {
		p[propDryRun] = strings.Join(dry, ", ")
	}
	switch l.Kind {
	case linkDuplicate:
		p[propDuplicate] = true
	case linkRerun:
		p[propRerunOf] = l.Parent
		p[propReplayed] = l.Replayed
	}
	return p
}

// conflictSummary counts conflicts by error code ("E7617 ×3, E7633 ×1"), or quotes the first
// message when the target gave no codes.
func conflictSummary(cs []txlog.Conflict) string {
	if len(cs) == 0 {
		return ""
	}
	counts := map[string]int{}
	for _, c := range cs {
		if c.ErrorCode != "" {
			counts[c.ErrorCode] += max(len(c.Indexes), 1)
		}
	}
	if len(counts) == 0 {
		return transform.ClipText(cs[0].Message, 200)
	}
	codes := make([]string, 0, len(counts))
	for code := range counts {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = fmt.Sprintf("%s ×%d", code, counts[code])
	}
	return strings.Join(parts, ", ")
}

// failure is the error of the target's orchestration: its last error, else what.
func (t *targetOutcome) failure(what string) error {
	if t.LastError != "" {
		return errors.New(t.LastError)
	}
	return errors.New(what)
}

// importOrchestration describes Tally's imports into one target: a POST to the target's
// /api/dataValueSets (host, port and path split as the core stores them), and DHIS2's answer
// as Tally summed it up: 200 when every value was taken, 409 (DHIS2's status for an import
// summary with conflicts) when some were refused, no response when the target never took
// the batch (the error says why).
func (x *Reporter) importOrchestration(v *txlog.TxView, t *targetOutcome, requestID string) openhim.Orchestration {
	name := "DHIS2 import: " + t.Target
	if t.DryRun {
		name = "DHIS2 import (dry run): " + t.Target
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	if requestID != "" {
		hdr.Set(headerRequestID, requestID)
	}
	req := openhim.Request{Path: "/api/dataValueSets", Method: http.MethodPost, Timestamp: t.first,
		Headers: map[string]string{"Content-Type": "application/json"}}
	if tc, ok := x.cfg.Target(t.Target); ok {
		u := strings.TrimRight(tc.URL, "/") + "/api/dataValueSets"
		if t.DryRun {
			u += "?dryRun=true"
		}
		if r, err := openhim.NewRequest(http.MethodPost, u, hdr, nil, t.first); err == nil {
			req = r
		} else {
			x.log.Warn("describing the DHIS2 import for OpenHIM", "tx", v.ID, "target", t.Target, "err", err)
		}
	}
	body, _ := json.Marshal(t)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	var resp *openhim.Response
	var oerr error
	switch {
	case t.Status == txlog.TxDelivered:
		r := openhim.NewResponse(http.StatusOK, jsonHeader, body, t.last)
		resp = &r
	case len(t.Conflicts) > 0 || t.ImportCount != (txlog.ImportCount{}):
		r := openhim.NewResponse(http.StatusConflict, jsonHeader, body, t.last)
		resp = &r
		oerr = t.failure(fmt.Sprintf("%s refused %d of %d values", t.Target, t.Rejected, t.Values))
	default:
		oerr = t.failure(fmt.Sprintf("%d of %d values not delivered", t.Rejected, t.Values))
	}
	return openhim.NewOrchestration(name, req, resp, oerr)
}
