package config

import (
	"strings"
	"testing"
	"time"
)

// nats.tx_retention and targets[].rate_limit: defaults and validation with lines.
func TestTxRetentionAndRateLimit(t *testing.T) {
	base := `
targets:
  - name: hmis
    url: https://hmis.example.org
    token: d2pat_0123456789
    rate_limit: {per_second: 2.5}
`
	c, err := Parse("x.yaml", []byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.TxRetention.D() != DefaultTxRetention {
		t.Errorf("tx_retention default = %s", c.NATS.TxRetention.D())
	}
	if rl := c.Targets[0].RateLimit; rl.PerSecond != 2.5 || rl.Burst != 3 {
		t.Errorf("rate_limit = %+v, want burst defaulted to 3", rl)
	}

	bad := `nats:
  duplicate_window: 2h
  tx_retention: 1h
targets:
  - name: hmis
    url: https://hmis.example.org
    token: d2pat_0123456789
    rate_limit: {per_second: -1}
`
	_, err = Parse("x.yaml", []byte(bad), env(nil))
	probs, ok := err.(Problems)
	if !ok {
		t.Fatalf("err = %v, want problems", err)
	}
	for line, frag := range map[int]string{3: "nats.tx_retention: 1h0m0s is shorter than duplicate_window", 8: "targets[0].rate_limit"} {
		found := false
		for _, p := range probs {
			found = found || p.Line == line && strings.Contains(p.String(), frag)
		}
		if !found {
			t.Errorf("no problem at line %d with %q in %v", line, frag, probs)
		}
	}
	if c, err := Parse("x.yaml", []byte("nats: {tx_retention: 2160h}\n"), env(nil)); err != nil || c.NATS.TxRetention.D() != 90*24*time.Hour {
		t.Errorf("tx_retention 2160h: %v, %v", c, err)
	}
}
