package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/openhim"
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

// EventRerun is the transaction event of an OpenHIM console rerun that replayed dead letters.
const EventRerun = "rerun"

// maxRerunLetters bounds the dead letters one rerun replays; more are left for the admin API.
const maxRerunLetters = 1000

// rerunAnswer is the response to a rerun that replayed dead letters.
type rerunAnswer struct {
	Status      string          `json:"status"` // replaying
	Transaction string          `json:"transaction"`
	RerunOf     string          `json:"rerunOf"`
	OpenHIMTx   string          `json:"openhimTransaction"`
	Replayed    int             `json:"replayed"`
	Values      int             `json:"values"`
	Failed      int             `json:"failed"`
	More        bool            `json:"more,omitempty"`
	Results     []*ReplayResult `json:"results"`
	Href        string          `json:"href"`
}

// rerunDeadLetters replays the dead letters of a failed or partly failed transaction for the
// rerun l, which becomes a rerun link awaiting the replays. It returns nil when the rerun is
// a harmless duplicate.
func (s *Service) rerunDeadLetters(ctx context.Context, txID string, l *openhimLink) *rerunAnswer {
	v, err := s.txlog.View(ctx, txID)
	if err != nil || (v.Status != TxFailed && v.Status != TxPartiallyDelivered) {
		return nil
	}
	var letters []*DeadLetterSummary
	more := false
	err = s.scanDLQ(ctx, DLQFilter{TxID: txID}, 0, func(d *DeadLetterSummary) bool {
		if len(letters) == maxRerunLetters {
			more = true
			return false
		}
		letters = append(letters, d)
		return true
	})
	if err != nil {
		s.log.Warn("listing dead letters for an OpenHIM rerun", "tx", txID, "err", err)
	}
	if len(letters) == 0 {
		return nil
	}
	ans := &rerunAnswer{Status: "replaying", Transaction: txID, RerunOf: l.Parent, OpenHIMTx: l.OpenHIMTx, More: more,
		Href: "/admin/v1/transactions/" + txID}
	var first uint64
	for _, d := range letters {
		// What the replay will write is read before it is published, so that a delivery
		// that is quicker than this loop is still recognised as the replay's.
		waits, werr := s.awaitedFor(ctx, v, d)
		res, err := s.ReplayDeadLetter(ctx, d.Seq, true)
		if err == nil && werr != nil {
			err = werr // replayed, but its delivery cannot be followed
		}
		if res == nil {
			res = &ReplayResult{Seq: d.Seq, TxID: txID, Target: d.Target}
		}
		if err != nil && res.Status != "replayed" {
			res.Status, res.Error = "failed", err.Error()
			ans.Failed++
			ans.Results = append(ans.Results, res)
			continue
		}
		if first == 0 {
			first = d.Seq
		}
		ans.Replayed++
		ans.Values += res.Values
		ans.Results = append(ans.Results, res)
		l.Awaited = append(l.Awaited, waits...)
	}
	if ans.Replayed == 0 {
		s.log.Warn("OpenHIM rerun replayed nothing", "tx", txID, "openhim_tx", l.OpenHIMTx, "failed", ans.Failed)
		return nil
	}
	l.Kind, l.Replayed = linkRerun, ans.Replayed
	ev := &TxEvent{Time: s.now().UTC(), Kind: EventRerun, DLQSeq: first, Values: ans.Values,
		OpenHIMTransaction: l.OpenHIMTx, DeadLetters: ans.Replayed}
	if err := s.txlog.PutEvent(ctx, txID, ev); err != nil {
		s.log.Warn("recording an OpenHIM rerun", "tx", txID, "err", err)
	}
	s.log.Info("OpenHIM rerun replayed dead letters", "tx", txID, "openhim_tx", l.OpenHIMTx, "rerun_of", l.Parent,
		"replayed", ans.Replayed, "values", ans.Values, "failed", ans.Failed)
	return ans
}

// awaitedFor names the delivery records the replay of dead letter d will write, with their
// revisions now. A batch dead-lettered at delivery or mapping comes back as the next replay
// generation; a raw dead letter comes back as it was stored, so its records are rewritten in
// place (for every target of the transaction when the mapper could not read it). A raw dead
// letter whose batch could not be read cannot be followed and awaits nothing.
func (s *Service) awaitedFor(ctx context.Context, v *TxView, d *DeadLetterSummary) ([]awaited, error) {
	raw := strings.HasPrefix(d.ID, "raw:")
	if raw && d.Values == 0 {
		return nil, nil
	}
	targets, replay := []string{d.Target}, d.Replays+1
	if raw {
		replay = d.Replays
		if d.Target == ingestDLQ {
			targets = v.TxRecord.Targets
		}
	}
	out := make([]awaited, 0, len(targets))
	for _, t := range targets {
		key := deliveryKey(v.ID, t, d.BatchSeq, replay)
		var rev uint64
		e, err := s.conn.Tx.Get(ctx, key)
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
func (s *Service) rerunEnvelope(env *openhim.Envelope, ans *rerunAnswer) {
	body, _ := json.Marshal(ans)
	env.Response = openhim.NewResponse(http.StatusAccepted, http.Header{"Content-Type": {"application/json"}}, body, s.now())
	env.Status = openhim.StatusProcessing
	if len(env.Orchestrations) > 0 {
		// "Tally ingest" describes Tally's answer, which is this one now.
		env.Orchestrations[0].Response = &env.Response
	}
	env.SetProperty(propTransaction, ans.Transaction).SetProperty(propStatus, TxAccepted).
		SetProperty(propRerunOf, ans.RerunOf).SetProperty(propReplayed, ans.Replayed)
}
