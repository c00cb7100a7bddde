package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/transform"
)

// The consume path. Every stage (the mapper, each target's delivery workers) handles a
// message through the same chain of small steps, outermost first:
//
//	settle → backstop → keepAlive → recoverPanic → decode → the stage's work
//
//   - settle carries out what the inner steps decided: nil acknowledges; RetryIn returns
//     the message to the stream with a delay, confirmed by the server; Poison stores the
//     message's raw bytes as a dead letter and then acknowledges it. It works with a fresh
//     deadline of its own, so that no time spent by the stage (a slow DHIS2 import) can
//     leave a finished message unacknowledged.
//   - backstop dead-letters a message that has been delivered more often than any policy
//     allows (a message that kept killing the process, say) before the stage sees it again.
//   - keepAlive tells JetStream the message is in progress for as long as the stage works
//     on it (a request, a rate-limit wait), so AckWait bounds only a dead worker.
//   - recoverPanic turns a panic into a dead letter naming the panic and its first frames;
//     the process and the messages behind it go on.
//   - decode (per stage) reads the message; bytes it cannot read become a dead letter with
//     the reason, and a batch written by a newer Tally is left for a replica that reads it
//     (delivery.upgrade_wait) before it becomes one. Nothing is ever terminated:
//     the streams are work queues, and a terminated message would be gone.
//
// The stage itself records its outcome (transaction log, dead letters of decoded batches)
// and returns nil or a RetryIn; the retry and dead-letter policy both stages share is in
// policy.go.

// Handler handles one message; see Chain.Wrap for what its error means.
type Handler func(ctx context.Context, msg jetstream.Msg, p Permit) error

// errRetry asks settle to return the message to the stream, to come back after delay.
type errRetry struct {
	delay time.Duration
	err   error
}

func (e *errRetry) Error() string { return fmt.Sprintf("retry in %s: %v", e.delay, e.err) }
func (e *errRetry) Unwrap() error { return e.err }

// RetryIn asks the chain to return the message to the stream, to come back after delay.
func RetryIn(delay time.Duration, err error) error { return &errRetry{delay: delay, err: err} }

// errPoison asks settle to store the message as it is, raw, in the dead-letter queue and
// acknowledge it: the message cannot be handled by this build as it stands.
type errPoison struct {
	reason string
	err    error
}

func (e *errPoison) Error() string { return e.reason + ": " + e.err.Error() }
func (e *errPoison) Unwrap() error { return e.err }

// Poison asks the chain to store the message as it is, raw, as a dead letter of reason,
// and acknowledge it.
func Poison(reason string, err error) error { return &errPoison{reason: reason, err: err} }

// Dead-letter reasons: bounded, so they can label metrics. The stages give up on values
// for the first five (the mapper for mapping, delivery for the others); the chain stores
// a message raw for the last four.
const (
	ReasonRejected  = "rejected"  // the target refused these values (conflicts)
	ReasonPermanent = "permanent" // the target refused the request as a whole
	ReasonExhausted = "exhausted" // transient failures outlasted the retry budget
	ReasonMapping   = "mapping"   // mapping refused the batch
	// ReasonLocked: the target refused the values for a locked or closed period; they
	// are taken once it opens.
	ReasonLocked = "locked"

	ReasonUndecodable = "undecodable"   // bytes this build cannot read
	ReasonPanic       = "panic"         // the stage panicked on the message
	ReasonMaxDeliver  = "max_delivered" // delivered more often than any policy allows
	ReasonNoSource    = "no_source"     // its source is no longer configured
)

// Stage names the consumer a chain serves, for dead letters and logs.
type Stage struct {
	Name string // "mapper", "deliver", "openhim-trigger" or "openhim-outcome"
	// DLQTarget is the dead-letter subject token raw dead letters of this stage go to:
	// the target's name for a delivery stage, IngestDLQ for the mapper.
	DLQTarget string
	AckWait   time.Duration
	// MaxDeliver is the backstop: a message delivered this often is dead-lettered unread.
	MaxDeliver int
}

// IngestDLQ is the dead-letter "target" of messages the mapper could not handle: they belong
// to no target yet. Configured names cannot start with '_' (config/validate.go).
const IngestDLQ = "_ingest"

// Chain builds the consume path of a stage (see the top of this file). It is safe for
// concurrent use.
type Chain struct {
	Log *slog.Logger
	// NC confirms naks (see Nak); nil sends them unconfirmed.
	NC *nats.Conn
	// DeadLetters stores what the chain gives up on.
	DeadLetters DeadLetters
}

// Wrap builds the consume path of a stage around its work. The error of the returned
// handler is the verdict it carried out: nil acknowledged the message, a RetryIn returned
// it with a delay, a Poison stored it raw as a dead letter; anything else is a bug of the
// stage, and the message is returned rather than lost.
func (c *Chain) Wrap(st Stage, work Handler) Handler {
	h := recoverPanic(work)
	h = keepAlive(st.AckWait, c.Log, h)
	h = backstop(st.MaxDeliver, h)
	return c.settle(st, h)
}

// settle carries out the verdict of the inner steps.
func (c *Chain) settle(st Stage, next Handler) Handler {
	return func(ctx context.Context, msg jetstream.Msg, p Permit) error {
		err := next(ctx, msg, p)
		bctx, cancel := Bookkeeping(ctx)
		defer cancel()
		var retry *errRetry
		var poison *errPoison
		switch {
		case err == nil:
			if aerr := msg.DoubleAck(bctx); aerr != nil && !errors.Is(aerr, jetstream.ErrMsgAlreadyAckd) {
				// Not confirmed: the message may come back after AckWait, and the stage's
				// deterministic ids make the repeat harmless.
				c.Log.Warn("acknowledging a message", "stage", st.Name, "subject", msg.Subject(), "err", aerr)
			}
		case errors.As(err, &retry):
			c.Nak(bctx, msg, retry.delay)
		case errors.As(err, &poison):
			if derr := c.DeadLetters.Raw(bctx, st, msg, poison.reason, poison.err); derr != nil {
				c.Log.Error("storing a dead letter failed; the message stays in the stream", "stage", st.Name,
					"subject", msg.Subject(), "reason", poison.reason, "err", derr)
				c.Nak(bctx, msg, RetryDelay(MsgAttempts(msg), time.Second))
				return err
			}
			c.Log.Error("message dead-lettered as it stands", "stage", st.Name, "subject", msg.Subject(),
				"reason", poison.reason, "err", poison.err)
			if aerr := msg.DoubleAck(bctx); aerr != nil && !errors.Is(aerr, jetstream.ErrMsgAlreadyAckd) {
				c.Log.Warn("acknowledging a dead-lettered message", "stage", st.Name, "err", aerr)
			}
		default:
			// A stage returns nil, RetryIn or Poison; anything else is a bug, and the
			// message is kept rather than lost.
			c.Log.Error("stage returned an unclassified error; retrying the message", "stage", st.Name, "err", err)
			c.Nak(bctx, msg, RetryDelay(MsgAttempts(msg), time.Second))
		}
		return err
	}
}

// BookkeepingTimeout bounds recording and acknowledging an outcome. It starts when the work
// is done, never before, so a slow target cannot use it up.
const BookkeepingTimeout = 10 * time.Second

// Bookkeeping returns a context for recording an outcome: it survives the cancellation of
// ctx (shutdown cut the work short, the outcome must still be written) and has a deadline of
// its own.
func Bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), BookkeepingTimeout)
}

// backstop dead-letters a message delivered max times or more without reading it, so a
// message that kills its worker (or the process) cannot block the stream forever. The
// consumer's own MaxDeliver is set above max, so the server never gives up on a message
// before this step has stored it.
func backstop(max int, next Handler) Handler {
	return func(ctx context.Context, msg jetstream.Msg, p Permit) error {
		if n := MsgAttempts(msg); max > 0 && n >= max {
			return Poison(ReasonMaxDeliver, fmt.Errorf("delivered %d times (backstop %d)", n, max))
		}
		return next(ctx, msg, p)
	}
}

// keepAlive extends the message's ack deadline while next runs, every third of AckWait.
func keepAlive(ackWait time.Duration, log interface {
	Warn(msg string, args ...any)
}, next Handler) Handler {
	every := max(ackWait/3, 50*time.Millisecond)
	return func(ctx context.Context, msg jetstream.Msg, p Permit) error {
		done := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if err := msg.InProgress(); err != nil {
						log.Warn("extending a message's ack deadline failed; it may be redelivered", "subject", msg.Subject(), "err", err)
					}
				}
			}
		}()
		defer func() { close(done); <-stopped }()
		return next(ctx, msg, p)
	}
}

// recoverPanic turns a panic of the stage into a dead letter.
func recoverPanic(next Handler) Handler {
	return func(ctx context.Context, msg jetstream.Msg, p Permit) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = Poison(ReasonPanic, fmt.Errorf("panic: %v [%s]", r, panicFrames(3, 5)))
			}
		}()
		return next(ctx, msg, p)
	}
}

// panicFrames names the first n frames of the panicking code, skipping the runtime's and
// this package's deferred function.
func panicFrames(skip, n int) string {
	pcs := make([]uintptr, 32)
	k := runtime.Callers(skip, pcs)
	frames := runtime.CallersFrames(pcs[:k])
	var out []string
	for len(out) < n {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") && !strings.HasSuffix(f.Function, ".recoverPanic.func1.1") {
			out = append(out, fmt.Sprintf("%s (%s:%d)", f.Function, shortFile(f.File), f.Line))
		}
		if !more {
			break
		}
	}
	return strings.Join(out, " < ")
}

func shortFile(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		if j := strings.LastIndex(path[:i], "/"); j >= 0 {
			return path[j+1:]
		}
	}
	return path
}

// DecodeFailure classifies a batch the stage cannot read: a newer version waits for a
// replica that reads it, within upgradeWait (delivery.upgrade_wait) of the message being
// stored; anything else (and a newer version past the wait) becomes a raw dead letter.
func DecodeFailure(log *slog.Logger, msg jetstream.Msg, err error, upgradeWait time.Duration, now time.Time) error {
	if errors.Is(err, transform.ErrCodecVersion) {
		if md, merr := msg.Metadata(); merr == nil && now.Sub(md.Timestamp) < upgradeWait {
			log.Warn("message written by a newer Tally; leaving it for a replica that reads it",
				"subject", msg.Subject(), "err", err)
			return RetryIn(min(upgradeWait/4+Jitter(time.Second), time.Minute), err)
		}
	}
	return Poison(ReasonUndecodable, err)
}
