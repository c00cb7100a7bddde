package mediator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
	"github.com/tally-hmis/tally/transform/period"
)

// What mapping made of a batch beyond the values it delivers — the values it refused (now
// dead letters), its warnings (an org unit not assigned to its data set, say) and what the
// duplicates policy did — belongs in the batch's delivery record, which the delivery worker
// writes. It travels there in the Tally-Mapping header of the delivery message.

// headerMapping carries a mappingNote (base64 of its JSON).
const headerMapping = "Tally-Mapping"

// mappingNote is what mapping reports about a batch besides the values it delivers.
type mappingNote struct {
	Refused int `json:"refused,omitempty"`
	// Indexes are the payload indexes of the refused values.
	Indexes    []int                 `json:"indexes,omitempty"`
	Conflicts  []txlog.Conflict      `json:"conflicts,omitempty"`
	Warnings   []transform.Warning   `json:"warnings,omitempty"`
	Duplicates []transform.Duplicate `json:"duplicates,omitempty"`
}

// noteOf is what a mapping reports, bounded; the refusals as DHIS2 conflicts (merged by
// error code and objects, each with its values' indexes).
func noteOf(m *transform.Mapped) mappingNote {
	n := mappingNote{Refused: len(m.Refused), Warnings: m.Warnings[:min(len(m.Warnings), txlog.MaxNoted)],
		Duplicates: m.Duplicates[:min(len(m.Duplicates), txlog.MaxNoted)]}
	errs := make([]*transform.InputError, len(m.Refused))
	for i, r := range m.Refused {
		n.Indexes = append(n.Indexes, r.Value.Index)
		errs[i] = refusalError(r)
	}
	n.Conflicts = txlog.ConflictsOf(transform.MergeConflicts(errs))
	return n
}

// refusalError is a value mapping refused, as the problem it is with the payload: its
// field, the id found there, the reason, and the conflict DHIS2 reports for the same
// failure (its error code; the id as the object).
func refusalError(r transform.Refused) *transform.InputError {
	v := r.Value
	id := mapping.FieldValue(&v, r.Field)
	return &transform.InputError{Index: v.Index, Field: r.Field, Value: id, Expected: r.Reason,
		Conflict: &transform.ImportConflict{Object: id, Objects: map[string]string{r.Field: id}, ErrorCode: r.ErrorCode,
			Property: r.Field, Value: r.Reason}}
}

// apply adds the note to a delivery record: the refused values count as rejected (they are
// dead letters), and a record whose target took values is partial.
func (n mappingNote) apply(rec *txlog.DeliveryRecord) {
	if n.Refused > 0 {
		rec.Refused = n.Refused
		rec.Rejected += n.Refused
		rec.RejectedIndexes = append(n.Indexes, rec.RejectedIndexes...)
		rec.Conflicts = append(n.Conflicts, rec.Conflicts...)
		switch rec.Outcome {
		case txlog.OutcomeDelivered:
			rec.Outcome = txlog.OutcomePartial
		case txlog.OutcomeEmpty:
			rec.Outcome = txlog.OutcomeDeadLettered
		}
	}
	rec.Warnings, rec.Duplicates = n.Warnings, n.Duplicates
}

func withNote(h nats.Header, n mappingNote) nats.Header {
	if n.Refused == 0 && len(n.Warnings) == 0 && len(n.Duplicates) == 0 {
		return h
	}
	data, err := json.Marshal(n)
	if err != nil {
		return h
	}
	if h == nil {
		h = nats.Header{}
	}
	h.Set(headerMapping, base64.RawURLEncoding.EncodeToString(data))
	return h
}

// noteIn reads the note a delivery message carries.
func noteIn(h nats.Header) mappingNote {
	var n mappingNote
	data, err := base64.RawURLEncoding.DecodeString(h.Get(headerMapping))
	if err == nil && len(data) > 0 {
		_ = json.Unmarshal(data, &n) // a note that does not read leaves the record as the target answered
	}
	return n
}

// deadLetterRefused stores the values mapping refused as one dead letter of the batch
// (reason mapping, the values as received, so that a replay maps them again with the rules
// and metadata then in force), with each value's conflict.
func (s *Service) deadLetterRefused(ctx context.Context, b *transform.Batch, t *config.Target, refused []transform.Refused,
	conflicts []txlog.Conflict, kept carried) error {
	part := *b
	part.Values = make([]transform.DataValue, len(refused))
	for i, r := range refused {
		part.Values[i] = r.Value
	}
	err := fmt.Errorf("mapping refused %d of %d values for %s: %s", len(refused), len(b.Values), t.Name, refused[0].Reason)
	dl := s.newDeadLetter(&part, nil, t.Name, ReasonMapping, err, conflicts, 0, time.Time{}, kept)
	dl.ID += ":refused"
	return s.storeDeadLetter(ctx, dl)
}

// refuseNewerPeriods refuses, for a source without a mapping set, the values whose period
// the target's DHIS2 release does not have (a WeeklyFriday week for 2.42, say): the engine
// checks the release only where it maps with the target's metadata. DHIS2 itself would
// answer "Period not valid" (E7611); this says why.
func (s *Service) refuseNewerPeriods(ctx context.Context, src *config.Source, t *config.Target, m *transform.Mapped) {
	if src.Mapping != "" {
		return
	}
	rel := s.targetRelease(ctx, t.Name)
	if rel == 0 {
		return
	}
	keep := m.Batch.Values[:0:0]
	for _, v := range m.Batch.Values {
		if ok, since, err := period.AvailableIn(v.Period, rel); err == nil && !ok {
			m.Refused = append(m.Refused, transform.Refused{Value: v, Field: "period", ErrorCode: transform.CodePeriodNotValid,
				Reason: fmt.Sprintf("period %s is a type DHIS2 has from 2.%d on; target %q runs 2.%d", v.Period, since, t.Name, rel)})
			continue
		}
		keep = append(keep, v)
	}
	if len(keep) < len(m.Batch.Values) {
		out := *m.Batch
		out.Values = keep
		m.Batch = &out
	}
}
