package pipeline

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// DeadLetters stores what the stages give up on; mediator/dlq implements it. A stage
// acknowledges a message only after the dead letter is stored, so nothing is lost between
// the two.
type DeadLetters interface {
	// Batch stores values of a batch that a target will not take, with what a replay
	// needs.
	Batch(ctx context.Context, d *DeadBatch) error
	// Raw stores a message exactly as its stream holds it, because stage st could not
	// handle it (reason, err), and records the batch it held as dead-lettered where it can
	// tell which it is.
	Raw(ctx context.Context, st Stage, msg jetstream.Msg, reason string, err error) error
}

// DeadBatch is a batch, or the part of one, that a target did not take.
type DeadBatch struct {
	// Batch holds the values: as mapped for the target, or as received when Reason is
	// ReasonMapping (mapping itself refused them).
	Batch *transform.Batch
	// Source holds the values as received when mapping changed them (nil otherwise), so
	// that a replay can map them again with the rules then in force.
	Source *transform.Batch
	Target string
	Reason string
	Err    error
	// Conflicts are what the target (or mapping) said about the values.
	Conflicts []txlog.Conflict
	// Attempts counts the tries that reached the target; FirstError is when the first
	// failed (zero: now).
	Attempts   int
	FirstError time.Time
	// Carried is what the message carried beside the batch.
	Carried Carried
	// IDSuffix tells apart the dead letters made of one delivery (":locked",
	// ":refused").
	IDSuffix string
}
