package txlog

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tally-hmis/tally/transform"
)

// Where a value came from. When a batch is delivered or dead-lettered at a target, the
// values it carried are written, once per batch and period, under
//
//	_v.<target>.<period>.<tx>.<batch seq>.<replay>[.<part>]
//
// in the tally_tx bucket: one KV write per batch (two for a batch that spans two periods),
// never one per value. The record lists each value's data element, org unit, combos and
// value as sent (in the target's id schemes), and whether the target rejected it: a JSON
// header (the delivery: transaction, batch, outcome, time, and the positions of the rejected
// values), a newline, then the values in the stream's binary batch encoding, about 12 bytes a
// value where JSON took over 100, so that the index costs little beside the streams. Asking
// where a value came from reads only the records of one target and period; a content
// search of the transaction log reads those of one period, or all of them without one.
// The records expire with the bucket's TTL (nats.tx_retention), as the transactions do.
// Tokens that are not plain key characters are written base64url after a "=".

// originPrefix starts every index key; no transaction id starts with "_".
const originPrefix = "_v"

// maxOriginValues bounds one record; a batch with more values for one period is written
// in parts (the batch size is bounded, so the parts are few).
const maxOriginValues = 2000

// OriginValue is one value a batch carried to a target.
type OriginValue struct {
	DataElement          string `json:"de"`
	OrgUnit              string `json:"ou"`
	CategoryOptionCombo  string `json:"coc,omitempty"`
	AttributeOptionCombo string `json:"aoc,omitempty"`
	Value                string `json:"v,omitempty"`
	Deleted              bool   `json:"del,omitempty"`
	// Rejected: the target refused the value; it is in a dead letter.
	Rejected bool `json:"rej,omitempty"`
}

// Origin is what one delivery of a batch carried to a target for one period.
type Origin struct {
	TxID    string        `json:"tx"`
	Source  string        `json:"source,omitempty"`
	Target  string        `json:"target"`
	Period  string        `json:"pe"`
	Seq     int           `json:"seq"`
	Replay  int           `json:"replay,omitempty"`
	Outcome string        `json:"outcome"`
	Time    time.Time     `json:"time"`
	Values  []OriginValue `json:"values,omitempty"`
}

// originHeader is the JSON part of a stored record; the values follow it.
type originHeader struct {
	Origin
	// Rejected are the positions, among the record's values, of those the target refused.
	Rejected []int `json:"rejected,omitempty"`
}

var plainToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyToken writes s as one key token.
func keyToken(s string) string {
	if plainToken.MatchString(s) {
		return s
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(s))
}

// IndexBatch records the values batch b carried in the delivery rec: one write per period
// of the batch. The values rec lists as rejected are marked so. encoded, when not nil, is b
// as the stream's batch encoding already holds it (the delivery message's bytes): a batch of
// one period, the common case, is then stored as it is rather than copied and encoded again,
// which was the index's whole cost beside the write itself.
func (l *TxLog) IndexBatch(ctx context.Context, b *transform.Batch, encoded []byte, rec *DeliveryRecord) error {
	if !ValidTxID(b.TxID) || len(b.Values) == 0 {
		return nil
	}
	rejected := make(map[int]bool, len(rec.RejectedIndexes))
	for _, i := range rec.RejectedIndexes {
		rejected[i] = true
	}
	if encoded != nil && len(b.Values) <= maxOriginValues && onePeriod(b.Values) {
		h := newOriginHeader(b, rec, b.Values[0].Period)
		for j := range b.Values {
			if rejected[b.Values[j].Index] {
				h.Rejected = append(h.Rejected, j)
			}
		}
		return l.putOrigin(ctx, b, rec, h, 0, func(data []byte) []byte { return append(data, encoded...) })
	}
	byPeriod := map[string][]int{}
	var periods []string
	for i := range b.Values {
		pe := b.Values[i].Period
		if _, ok := byPeriod[pe]; !ok {
			periods = append(periods, pe)
		}
		byPeriod[pe] = append(byPeriod[pe], i)
	}
	for _, pe := range periods {
		idx := byPeriod[pe]
		for part := 0; part*maxOriginValues < len(idx); part++ {
			h := newOriginHeader(b, rec, pe)
			in := idx[part*maxOriginValues : min(len(idx), (part+1)*maxOriginValues)]
			vals := &transform.Batch{Values: make([]transform.DataValue, 0, len(in))}
			for j, i := range in {
				vals.Values = append(vals.Values, b.Values[i])
				if rejected[b.Values[i].Index] {
					h.Rejected = append(h.Rejected, j)
				}
			}
			if err := l.putOrigin(ctx, b, rec, h, part, func(data []byte) []byte { return transform.AppendBatch(data, vals) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// onePeriod reports whether every value is of the first one's period.
func onePeriod(vs []transform.DataValue) bool {
	for i := range vs {
		if vs[i].Period != vs[0].Period {
			return false
		}
	}
	return true
}

// newOriginHeader is the header of the record of batch b's values of period pe in delivery rec.
func newOriginHeader(b *transform.Batch, rec *DeliveryRecord, pe string) originHeader {
	return originHeader{Origin: Origin{TxID: b.TxID, Source: b.Source, Target: rec.Target, Period: pe, Seq: rec.Seq,
		Replay: rec.Replay, Outcome: rec.Outcome, Time: rec.Time}}
}

// putOrigin writes one record: the header, a newline, then the values appendValues adds.
func (l *TxLog) putOrigin(ctx context.Context, b *transform.Batch, rec *DeliveryRecord, h originHeader, part int, appendValues func([]byte) []byte) error {
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	data := appendValues(append(head, '\n'))
	key := strings.Join([]string{originPrefix, keyToken(rec.Target), keyToken(h.Period), b.TxID, strconv.Itoa(rec.Seq),
		strconv.Itoa(rec.Replay)}, ".")
	if part > 0 {
		key += "." + strconv.Itoa(part)
	}
	if _, err := l.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("indexing the values of %s batch %d at %s: %w", b.TxID, rec.Seq, rec.Target, err)
	}
	return nil
}

// decodeOrigin reads a stored record back.
func decodeOrigin(data []byte) (*Origin, error) {
	head, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("no values after the header")
	}
	var h originHeader
	if err := json.Unmarshal(head, &h); err != nil {
		return nil, err
	}
	vals, err := transform.DecodeBatch(body)
	if err != nil {
		return nil, err
	}
	o := h.Origin
	o.Values = make([]OriginValue, len(vals.Values))
	for i, v := range vals.Values {
		o.Values[i] = OriginValue{DataElement: v.DataElement, OrgUnit: v.OrgUnit, CategoryOptionCombo: v.CategoryOptionCombo,
			AttributeOptionCombo: v.AttributeOptionCombo, Value: v.Value, Deleted: v.Deleted}
	}
	for _, j := range h.Rejected {
		if j >= 0 && j < len(o.Values) {
			o.Values[j].Rejected = true
		}
	}
	return &o, nil
}

// OriginQuery asks where values came from. Target and Period narrow the records read (empty
// reads every target or period); Match keeps the values wanted.
type OriginQuery struct {
	Target, Period string
	// TxID, when set, reads only that transaction's records (what it carried).
	TxID  string
	Match func(OriginValue) bool
	// Limit bounds the records returned, newest first.
	Limit int
}

// Origins returns the deliveries that carried values q matches, newest first, each with
// only those values.
func (l *TxLog) Origins(ctx context.Context, q OriginQuery) ([]*Origin, error) {
	pattern := originPrefix + "." + tokenOrAll(q.Target) + "." + tokenOrAll(q.Period) + ".>"
	if q.TxID != "" {
		if !ValidTxID(q.TxID) {
			return nil, fmt.Errorf("reading the value index: bad transaction id %q", q.TxID)
		}
		pattern = originPrefix + "." + tokenOrAll(q.Target) + "." + tokenOrAll(q.Period) + "." + q.TxID + ".>"
	}
	var out []*Origin
	err := l.each(ctx, pattern, func(key string, value []byte) error {
		o, err := decodeOrigin(value)
		if err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		o.Values = slices.DeleteFunc(o.Values, func(v OriginValue) bool { return q.Match != nil && !q.Match(v) })
		if len(o.Values) > 0 {
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the value index: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func tokenOrAll(s string) string {
	if s == "" {
		return "*"
	}
	return keyToken(s)
}
