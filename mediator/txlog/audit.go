package txlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// AuditEntry is one admin action: who did what, when, and how it ended. It is kept in the
// tally_tx bucket beside the transactions it may concern, for as long (nats.tx_retention).
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Who is the admin credential's name; Scope its scope.
	Who   string `json:"who"`
	Scope string `json:"scope,omitempty"`
	// Action is the method and route ("POST /admin/v1/dlq/discard"); Path the path asked
	// for, with its ids.
	Action string `json:"action"`
	Path   string `json:"path"`
	// Result is the HTTP status of the answer.
	Result    int    `json:"result"`
	RequestID string `json:"requestId,omitempty"`
	Client    string `json:"client,omitempty"`
}

// auditPrefix keys the audit entries: audit.<nanoseconds, zero-padded>.<random>, so that
// they sort by time and two at the same instant do not collide. Transaction ids never
// contain a dot, so no transaction listing meets these keys.
const auditPrefix = "audit."

// PutAudit records an admin action.
func (l *TxLog) PutAudit(ctx context.Context, e *AuditEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	key := fmt.Sprintf("%s%020d.%s", auditPrefix, e.Time.UnixNano(), hex.EncodeToString(r[:]))
	if _, err := l.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("recording the audit entry of %s by %s: %w", e.Action, e.Who, err)
	}
	return nil
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Who          string
	Since, Until time.Time
	Limit        int
}

func (f AuditFilter) match(e *AuditEntry) bool {
	return (f.Who == "" || e.Who == f.Who) && (f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until))
}

// Audit returns the admin actions f selects, newest first.
func (l *TxLog) Audit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error) {
	var out []*AuditEntry
	err := l.each(ctx, auditPrefix+">", func(key string, value []byte) error {
		var e AuditEntry
		if err := json.Unmarshal(value, &e); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		if f.match(&e) {
			out = append(out, &e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}
