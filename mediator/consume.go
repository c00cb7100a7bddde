package mediator

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/transform"
)

// The consume path. Every stage (the mapper, each target's delivery workers) handles a
// message through the same chain of small steps, outermost first:
//
//	settle → backstop → keepAlive → recoverPanic → decode → the stage's work
//
//   - settle carries out what the inner steps decided: nil acknowledges; errRetry returns
//     the message to the stream with a delay, confirmed by the server; errPoison stores the
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
// and returns nil or errRetry; the retry and dead-letter policy both stages share is in
// policy.go.

// msgHandler handles one message; see settle for what its error means.
type msgHandler func(ctx context.Context, msg jetstream.Msg, p permit) error

// errRetry asks settle to return the message to the stream, to come back after delay.
type errRetry struct {
	delay time.Duration
	err   error
}

func (e *errRetry) Error() string { return fmt.Sprintf("retry in %s: %v", e.delay, e.err) }
func (e *errRetry) Unwrap() error { return e.err }

func retryIn(delay time.Duration, err error) error { return &errRetry{delay: delay, err: err} }

// errPoison asks settle to store the message as it is, raw, in the dead-letter queue and
// acknowledge it: the message cannot be handled by this build as it stands.
type errPoison struct {
	reason string
	err    error
}

func (e *errPoison) Error() string { return e.reason + ": " + e.err.Error() }
func (e *errPoison) Unwrap() error { return e.err }

// Reasons of raw dead letters (besides those in dlq.go).
const (
	ReasonUndecodable = "undecodable"   // bytes this build cannot read
	ReasonPanic       = "panic"         // the stage panicked on the message
	ReasonMaxDeliver  = "max_delivered" // delivered more often than any policy allows
	ReasonNoSource    = "no_source"     // its source is no longer configured
)

// stage names the consumer a chain serves, for dead letters and logs.
type stage struct {
	name string // "mapper" or "deliver"
	// dlqTarget is the dead-letter subject token raw dead letters of this stage go to:
	// the target's name for a delivery stage, ingestDLQ for the mapper.
	dlqTarget string
	ackWait   time.Duration
	// maxDeliver is the backstop: a message delivered this often is dead-lettered unread.
	maxDeliver int
}

// ingestDLQ is the dead-letter "target" of messages the mapper could not handle: they belong
// to no target yet. Configured names cannot start with '_' (config/validate.go).
const ingestDLQ = "_ingest"

// chain builds the consume path of a stage around its work.
func (s *Service) chain(st stage, work msgHandler) msgHandler {
	h := recoverPanic(work)
	h = keepAlive(st.ackWait, s.log, h)
	h = backstop(st.maxDeliver, h)
	return s.settle(st, h)
}

// settle carries out the verdict of the inner steps.
func (s *Service) settle(st stage, next msgHandler) msgHandler {
	return func(ctx context.Context, msg jetstream.Msg, p permit) error {
		err := next(ctx, msg, p)
		bctx, cancel := bookkeeping(ctx)
		defer cancel()
		var retry *errRetry
		var poison *errPoison
		switch {
		case err == nil:
			if aerr := msg.DoubleAck(bctx); aerr != nil && !errors.Is(aerr, jetstream.ErrMsgAlreadyAckd) {
				// Not confirmed: the message may come back after AckWait, and the stage's
				// deterministic ids make the repeat harmless.
				s.log.Warn("acknowledging a message", "stage", st.name, "subject", msg.Subject(), "err", aerr)
			}
		case errors.As(err, &retry):
			s.nak(bctx, msg, retry.delay)
		case errors.As(err, &poison):
			if derr := s.deadLetterRaw(bctx, st, msg, poison); derr != nil {
				s.log.Error("storing a dead letter failed; the message stays in the stream", "stage", st.name,
					"subject", msg.Subject(), "reason", poison.reason, "err", derr)
				s.nak(bctx, msg, s.retryDelay(msgAttempts(msg), time.Second))
				return err
			}
			s.log.Error("message dead-lettered as it stands", "stage", st.name, "subject", msg.Subject(),
				"reason", poison.reason, "err", poison.err)
			if aerr := msg.DoubleAck(bctx); aerr != nil && !errors.Is(aerr, jetstream.ErrMsgAlreadyAckd) {
				s.log.Warn("acknowledging a dead-lettered message", "stage", st.name, "err", aerr)
			}
		default:
			// A stage returns nil, errRetry or errPoison; anything else is a bug, and the
			// message is kept rather than lost.
			s.log.Error("stage returned an unclassified error; retrying the message", "stage", st.name, "err", err)
			s.nak(bctx, msg, s.retryDelay(msgAttempts(msg), time.Second))
		}
		return err
	}
}

// bookkeepingTimeout bounds recording and acknowledging an outcome. It starts when the work
// is done, never before, so a slow target cannot use it up.
const bookkeepingTimeout = 10 * time.Second

// bookkeeping returns a context for recording an outcome: it survives the cancellation of
// ctx (shutdown cut the work short, the outcome must still be written) and has a deadline of
// its own.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
}

// backstop dead-letters a message delivered max times or more without reading it, so a
// message that kills its worker (or the process) cannot block the stream forever. The
// consumer's own MaxDeliver is set above max, so the server never gives up on a message
// before this step has stored it.
func backstop(max int, next msgHandler) msgHandler {
	return func(ctx context.Context, msg jetstream.Msg, p permit) error {
		if n := msgAttempts(msg); max > 0 && n >= max {
			return &errPoison{reason: ReasonMaxDeliver, err: fmt.Errorf("delivered %d times (backstop %d)", n, max)}
		}
		return next(ctx, msg, p)
	}
}

// keepAlive extends the message's ack deadline while next runs, every third of AckWait.
func keepAlive(ackWait time.Duration, log interface {
	Warn(msg string, args ...any)
}, next msgHandler) msgHandler {
	every := max(ackWait/3, 50*time.Millisecond)
	return func(ctx context.Context, msg jetstream.Msg, p permit) error {
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
func recoverPanic(next msgHandler) msgHandler {
	return func(ctx context.Context, msg jetstream.Msg, p permit) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &errPoison{reason: ReasonPanic, err: fmt.Errorf("panic: %v [%s]", r, panicFrames(3, 5))}
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

// decodeFailure classifies a batch the stage cannot read: a newer version waits for a
// replica that reads it, within delivery.upgrade_wait of the message being stored;
// anything else (and a newer version past the wait) becomes a raw dead letter.
func (s *Service) decodeFailure(msg jetstream.Msg, err error) error {
	if errors.Is(err, transform.ErrCodecVersion) {
		wait := s.cfg.Delivery.UpgradeWait.D()
		if md, merr := msg.Metadata(); merr == nil && s.now().Sub(md.Timestamp) < wait {
			s.log.Warn("message written by a newer Tally; leaving it for a replica that reads it",
				"subject", msg.Subject(), "err", err)
			return retryIn(min(wait/4+jitter(time.Second), time.Minute), err)
		}
	}
	return &errPoison{reason: ReasonUndecodable, err: err}
}
