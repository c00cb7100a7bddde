package outcome

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/dlq"
	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// A console rerun replays a stored request to Tally as a new core transaction whose
// parentID header names the original (CORE src/tasks.js rerunSetHTTPRequestOptions adds
// parentID and taskID to the stored headers; spec openhim.md §10.3). Tally's transaction ids
// come from the payload, so within nats.duplicate_window the rerun lands on the same Tally
// transaction. When that transaction failed or partly failed, the rerun replays its dead
// letters through the live mapper (the operator's natural "try again" after fixing the
// cause), records the rerun as an event, answers with what it replayed, and reports the
// child transaction's outcome once the replays are delivered. Otherwise (delivered, still
// in progress, nothing left to replay) the rerun is a harmless duplicate. After the window
// the rerun is a new Tally transaction like any request.

// Bounds of one rerun: the dead letters it replays, and the time it takes, under the core's
// router timeout (60 s by default, spec openhim.md §9.1) so that the core gets the answer.
// What is left is said in the answer ("more") and can be replayed through the admin API.
const (
	maxRerunLetters = 500
	rerunTimeout    = 45 * time.Second
)

// rerunAnswer is the response to a rerun that replayed dead letters.
type rerunAnswer struct {
	Status      string `json:"status"` // replaying
	Transaction string `json:"transaction"`
	RerunOf     string `json:"rerunOf"`
	OpenHIMTx   string `json:"openhimTransaction"`
	Replayed    int    `json:"replayed"`
	Values      int    `json:"values"`
	// Failed counts dead letters not replayed: failed or skipped (see Results).
	Failed  int                 `json:"failed"`
	More    bool                `json:"more,omitempty"`
	Results []*dlq.ReplayResult `json:"results"`
	Href    string              `json:"href"`
}

// rerunDeadLetters replays the dead letters of a failed or partly failed transaction for the
// rerun l, which becomes a rerun link awaiting the replays. It returns nil when the rerun is
// a harmless duplicate.
func (x *Reporter) rerunDeadLetters(ctx context.Context, txID string, l *openhimLink) *rerunAnswer {
	// The core may give up waiting; what is replayed must still be recorded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rerunTimeout)
	defer cancel()
	v, err := x.tx.View(ctx, txID)
	if err != nil || (v.Status != txlog.TxFailed && v.Status != txlog.TxPartiallyDelivered) {
		return nil
	}
	letters, more := x.rerunLetters(ctx, txID)
	if len(letters) == 0 {
		return nil
	}
	ans := &rerunAnswer{Status: "replaying", Transaction: txID, RerunOf: l.Parent, OpenHIMTx: l.OpenHIMTx, More: more,
		Href: "/admin/v1/transactions/" + txID}
	var first uint64
	for _, d := range letters {
		if ctx.Err() != nil {
			ans.More = true
			break
		}
		res, waits := x.replayForRerun(ctx, v, d)
		ans.Results = append(ans.Results, res)
		if res.Status != "replayed" {
			ans.Failed++
			continue
		}
		if first == 0 {
			first = d.Seq
		}
		ans.Replayed++
		ans.Values += res.Values
		l.Awaited = append(l.Awaited, waits...)
	}
	if ans.Replayed == 0 {
		x.log.Warn("OpenHIM rerun replayed nothing", "tx", txID, "openhim_tx", l.OpenHIMTx, "failed", ans.Failed)
		return nil
	}
	l.Kind, l.Replayed = linkRerun, ans.Replayed
	x.recordRerun(ctx, txID, l, ans, first)
	return ans
}

// rerunLetters lists a transaction's dead letters, at most maxRerunLetters; more says there
// are others.
func (x *Reporter) rerunLetters(ctx context.Context, txID string) (letters []*dlq.DeadLetterSummary, more bool) {
	err := x.dead.Scan(ctx, dlq.DLQFilter{TxID: txID}, 0, func(d *dlq.DeadLetterSummary) bool {
		if len(letters) == maxRerunLetters {
			more = true
			return false
		}
		letters = append(letters, d)
		return true
	})
	if err != nil {
		x.log.Warn("listing dead letters for an OpenHIM rerun", "tx", txID, "err", err)
	}
	return letters, more
}

// replayForRerun replays dead letter d through the live mapper and returns what became of it
// and the delivery records its replay will write. Those are read before the replay is
// published, so that a delivery quicker than the rerun is still recognised as its. A dead
// letter whose delivery could not be followed is left alone ("skipped"): the child's outcome
// would otherwise be reported before its replay was delivered.
func (x *Reporter) replayForRerun(ctx context.Context, v *txlog.TxView, d *dlq.DeadLetterSummary) (*dlq.ReplayResult, []awaited) {
	waits, err := x.awaitedFor(ctx, v, d)
	if err == nil && len(waits) == 0 {
		err = errors.New("its batch cannot be read, so its delivery cannot be followed; replay it with tally dlq replay")
	}
	if err != nil {
		return &dlq.ReplayResult{Seq: d.Seq, TxID: v.ID, Target: d.Target, Values: d.Values, Status: "skipped",
			Error: err.Error()}, nil
	}
	res, err := x.dead.Replay(ctx, d.Seq, true)
	if res == nil {
		res = &dlq.ReplayResult{Seq: d.Seq, TxID: v.ID, Target: d.Target}
	}
	if err != nil {
		res.Status, res.Error = "failed", err.Error()
		return res, nil
	}
	return res, waits
}

// recordRerun records the rerun as a transaction event: a new attempt.
func (x *Reporter) recordRerun(ctx context.Context, txID string, l *openhimLink, ans *rerunAnswer, first uint64) {
	ctx, cancel := pipeline.Bookkeeping(ctx)
	defer cancel()
	ev := &txlog.TxEvent{Time: x.now().UTC(), Kind: txlog.EventRerun, DLQSeq: first, Values: ans.Values,
		OpenHIMTransaction: l.OpenHIMTx, DeadLetters: ans.Replayed}
	if err := x.tx.PutEvent(ctx, txID, ev); err != nil {
		x.log.Warn("recording an OpenHIM rerun", "tx", txID, "err", err)
	}
	x.log.Info("OpenHIM rerun replayed dead letters", "tx", txID, "openhim_tx", l.OpenHIMTx, "rerun_of", l.Parent,
		"replayed", ans.Replayed, "values", ans.Values, "failed", ans.Failed)
}

// awaitedFor names the delivery records the replay of dead letter d will write, with their
// revisions now. A batch dead-lettered at delivery or mapping comes back as the next replay
// generation; a raw dead letter comes back as it was stored, so its records are rewritten in
// place (for every target of the transaction when the mapper could not read it). A raw dead
// letter whose batch could not be read cannot be followed and awaits nothing.
func (x *Reporter) awaitedFor(ctx context.Context, v *txlog.TxView, d *dlq.DeadLetterSummary) ([]awaited, error) {
	raw := strings.HasPrefix(d.ID, "raw:")
	if raw && d.Values == 0 {
		return nil, nil
	}
	targets, replay := []string{d.Target}, d.Replays+1
	if raw {
		replay = d.Replays
		if d.Target == pipeline.IngestDLQ {
			targets = v.TxRecord.Targets
		}
	}
	out := make([]awaited, 0, len(targets))
	for _, t := range targets {
		key := txlog.DeliveryKey(v.ID, t, d.BatchSeq, replay)
		var rev uint64
		e, err := x.kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, fmt.Errorf("reading delivery %s: %w", key, err)
		}
		out = append(out, awaited{Key: key, Rev: rev})
	}
	return out, nil
}

// rerunEnvelope answers a rerun that replayed dead letters: 202 with what was replayed; the
// outcome follows once the replays are delivered.
func (x *Reporter) rerunEnvelope(env *openhim.Envelope, ans *rerunAnswer) {
	body, _ := json.Marshal(ans)
	env.Response = openhim.NewResponse(http.StatusAccepted, http.Header{"Content-Type": {"application/json"}}, body, x.now())
	env.Status = openhim.StatusProcessing
	if len(env.Orchestrations) > 0 {
		// "Tally ingest" describes Tally's answer, which is this one now.
		env.Orchestrations[0].Response = &env.Response
	}
	env.SetProperty(propTransaction, ans.Transaction).SetProperty(propStatus, txlog.TxAccepted).
		SetProperty(propRerunOf, ans.RerunOf).SetProperty(propReplayed, ans.Replayed)
}
