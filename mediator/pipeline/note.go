package pipeline

import (
	"encoding/base64"
	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/mapping"
)

// What mapping made of a batch beyond the values it delivers — the values it refused (now
// dead letters), its warnings (an org unit not assigned to its data set, say) and what the
// duplicates policy did — belongs in the batch's delivery record, which the delivery worker
// writes. It travels there in the Tally-Mapping header of the delivery message.

// MappingNote is what mapping reports about a batch besides the values it delivers.
type MappingNote struct {
	Refused int `json:"refused,omitempty"`
	// Indexes are the payload indexes of the refused values.
	Indexes    []int                 `json:"indexes,omitempty"`
	Conflicts  []txlog.Conflict      `json:"conflicts,omitempty"`
	Warnings   []transform.Warning   `json:"warnings,omitempty"`
	Duplicates []transform.Duplicate `json:"duplicates,omitempty"`
}

// NoteOf is what a mapping reports, bounded; the refusals as DHIS2 conflicts (merged by
// error code and objects, each with its values' indexes).
func NoteOf(m *transform.Mapped) MappingNote {
	n := MappingNote{Refused: len(m.Refused), Warnings: m.Warnings[:min(len(m.Warnings), txlog.MaxNoted)],
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

// Apply adds the note to a delivery record: the refused values count as rejected (they are
// dead letters), and a record whose target took values is partial.
func (n MappingNote) Apply(rec *txlog.DeliveryRecord) {
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

// WithNote adds the note to a delivery message's headers (h may be nil); an empty note
// adds nothing.
func WithNote(h nats.Header, n MappingNote) nats.Header {
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
	h.Set(HeaderMapping, base64.RawURLEncoding.EncodeToString(data))
	return h
}

// NoteIn reads the note a delivery message carries.
func NoteIn(h nats.Header) MappingNote {
	var n MappingNote
	data, err := base64.RawURLEncoding.DecodeString(h.Get(HeaderMapping))
	if err == nil && len(data) > 0 {
		_ = json.Unmarshal(data, &n) // a note that does not read leaves the record as the target answered
	}
	return n
}
