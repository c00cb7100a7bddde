package outcome

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// headerRequestID is a client's request id; it is passed on in the orchestrations of the
// calls Tally made for the request.
const headerRequestID = "X-Request-ID"

// Answer builds the envelope of Tally's answer (status, header, body) to a request that
// came through the core as transaction coreTx, and links the core's transaction to
// Tally's, so that its outcome is recorded once the Tally transaction is final. The link is
// stored before the answer leaves: a transaction the core was told about is never left
// without its outcome.
func (x *Reporter) Answer(r *http.Request, coreTx string, status int, header http.Header, body []byte, received time.Time) *openhim.Envelope {
	resp := openhim.NewResponse(status, header, body, x.now())
	env := openhim.NewEnvelope(x.urn, "", resp)
	env.AddOrchestration(openhim.NewOrchestration("Tally ingest", openhim.RequestFromHTTP(r, nil, received), &resp, nil))
	txID := txIDFromBody(body)
	if txID == "" || !txlog.ValidTxID(txID) {
		// Refused before a transaction existed: the core derives the status from the answer.
		return env
	}
	link := x.newLink(r, coreTx, txID)
	if link.Parent != "" {
		if ans := x.rerunDeadLetters(r.Context(), txID, link); ans != nil {
			x.rerunEnvelope(env, ans)
		}
	}
	// The answer's bookkeeping must not fail because the client (the core) gave up waiting.
	ctx, cancel := pipeline.Bookkeeping(r.Context())
	defer cancel()
	if link.Kind != linkRerun {
		x.statusEnvelope(ctx, env, txID, link)
	}
	if err := x.addLink(ctx, txID, link); err != nil {
		x.log.Error("linking the OpenHIM transaction; its outcome will not be recorded in the core",
			"tx", txID, "openhim_tx", coreTx, "err", err)
	}
	return env
}

// statusEnvelope completes the envelope of a request for Tally transaction txID with what is
// known of it: its outcome when it is final already (a source that waits for delivery, a
// repeat of a finished payload), which the outbox then only confirms; else Processing.
func (x *Reporter) statusEnvelope(ctx context.Context, env *openhim.Envelope, txID string, link *openhimLink) {
	v, err := x.tx.View(ctx, txID)
	switch {
	case err != nil:
		x.log.Warn("reading the transaction for the OpenHIM answer", "tx", txID, "err", err)
		env.SetProperty(propTransaction, txID)
	case v.Status != txlog.TxAccepted:
		out := x.openhimOutcome(v, link)
		env.Status, env.Properties = out.Status, out.Properties
		env.AddOrchestration(out.Orchestrations...)
	default:
		env.SetProperty(propTransaction, txID).SetProperty(propStatus, v.Status)
		if link.Kind == linkDuplicate {
			env.SetProperty(propDuplicate, true)
		}
	}
	if env.Status == "" && env.Response.Status < 300 {
		env.Status = openhim.StatusProcessing
	}
}

// txIDFromBody finds Tally's transaction id in an answer: "transaction" in the native
// answers, the import summary's "reference" in DHIS2's shape.
func txIDFromBody(b []byte) string {
	var v struct {
		Transaction string `json:"transaction"`
		Response    struct {
			Reference string `json:"reference"`
		} `json:"response"`
		Reference string `json:"reference"` // the bare ImportSummary of API versions up to 37
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	for _, id := range []string{v.Transaction, v.Response.Reference, v.Reference} {
		if id != "" {
			return id
		}
	}
	return ""
}
