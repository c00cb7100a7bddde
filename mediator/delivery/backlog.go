package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/transform"
)

// Backlog reads what waits in TALLY_DELIVER without taking it. The stream is a work queue,
// so a second consumer may not read it beside the delivery workers; Backlog uses the
// stream's own counts (batches per target) and reads messages by sequence (values), which
// leaves every message where it is.
type Backlog struct {
	JS jetstream.JetStream
}

// Waiting counts the batches waiting per target: waiting for a worker, in flight, or
// waiting for a retry.
func (b Backlog) Waiting(ctx context.Context) (map[string]uint64, error) {
	st, err := b.JS.Stream(ctx, stream.DeliverStream)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", stream.DeliverStream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(stream.DeliverPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream.DeliverStream, err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, stream.DeliverPrefix)] += n
	}
	return out, nil
}

// Values counts the values of the batches waiting for target, reading at most maxBatches of
// them (oldest first); complete says whether it read them all. Each message says its count
// in pipeline.HeaderValues; one written before that header existed is decoded.
func (b Backlog) Values(ctx context.Context, target string, maxBatches int) (values uint64, complete bool, err error) {
	st, err := b.JS.Stream(ctx, stream.DeliverStream)
	if err != nil {
		return 0, false, fmt.Errorf("opening %s: %w", stream.DeliverStream, err)
	}
	subject := stream.DeliverPrefix + target
	seq := uint64(1)
	for range maxBatches {
		msg, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return values, true, nil
		}
		if err != nil {
			return values, false, fmt.Errorf("reading %s's backlog: %w", target, err)
		}
		n, err := valuesOf(msg)
		if err != nil {
			return values, false, fmt.Errorf("reading %s's backlog at %d: %w", target, msg.Sequence, err)
		}
		values += uint64(n)
		seq = msg.Sequence + 1
	}
	_, err = st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return values, true, nil
	}
	return values, false, err
}

// valuesOf is the number of mapped values a TALLY_DELIVER message carries.
func valuesOf(msg *jetstream.RawStreamMsg) (int, error) {
	if n, err := strconv.Atoi(msg.Header.Get(pipeline.HeaderValues)); err == nil {
		return n, nil
	}
	data := msg.Data
	if at, err := strconv.Atoi(msg.Header.Get(pipeline.HeaderSourceAt)); err == nil && at >= 0 && at <= len(data) {
		data = data[:at]
	}
	batch, err := transform.DecodeBatch(data)
	if err != nil {
		return 0, err
	}
	return len(batch.Values), nil
}
