package txlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/transform"
)

// A payload's completeDate registers its data set complete at a target once the values it
// completes are delivered (mediator/delivery). The delivery records say what each batch
// completes; the outcome of the registration is kept under <tx>.d.<target>.complete, and
// a transaction is not finished at a target until it is there.

// Completion is what one batch asks to register: a data set complete for a period and an
// org unit on a date, in the ids and schemes the target is sent.
type Completion struct {
	DataSet string              `json:"dataSet"`
	Period  string              `json:"period"`
	OrgUnit string              `json:"orgUnit"`
	Date    string              `json:"date"`
	Schemes transform.IDSchemes `json:"idSchemes"`
}

// CompletionRecord is the outcome of registering a transaction's completions at a target.
type CompletionRecord struct {
	Target        string      `json:"target"`
	Registrations int         `json:"registrations"`
	Date          string      `json:"date,omitempty"`
	Counts        ImportCount `json:"importCount"`
	Conflicts     []Conflict  `json:"conflicts,omitempty"`
	Error         string      `json:"error,omitempty"`
	Time          time.Time   `json:"time"`
}

// Registered reports whether the target took the registrations.
func (c *CompletionRecord) Registered() bool { return c.Error == "" && c.Registrations > 0 }

// completionKey is where a transaction's completion outcome at a target is kept.
func completionKey(txID, target string) string { return txID + ".d." + target + completionSuffix }

// completionSuffix tells a completion record from a delivery record under <tx>.d.>.
const completionSuffix = ".complete"

// PutCompletion records the outcome of registering a transaction's completions at a
// target, once: first is false when another worker recorded it already (two batches that
// finish together may both register; the first record stands).
func (l *TxLog) PutCompletion(ctx context.Context, txID string, rec *CompletionRecord) (first bool, err error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	_, err = l.kv.Create(ctx, completionKey(txID, rec.Target), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording the completeness registration of %s at %s: %w", txID, rec.Target, err)
	}
	return true, nil
}

// LatestBySeq keeps each batch's latest delivery record (its last replay).
func LatestBySeq(ds []*DeliveryRecord) map[int]*DeliveryRecord {
	out := map[int]*DeliveryRecord{}
	for _, d := range ds {
		if cur, ok := out[d.Seq]; !ok || d.Replay > cur.Replay {
			out[d.Seq] = d
		}
	}
	return out
}
