package bench

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP tally_delivery_retries_total x
# TYPE tally_delivery_retries_total counter
tally_delivery_retries_total{target="sink"} 3
tally_delivery_retries_total{target="other"} 4
tally_dlq_messages_total{reason="exhausted",target="sink"} 1
tally_dlq_messages_total{reason="rejected",target="sink"} 2
tally_odd{target="a\"b\\c"} 1.5e3
go_goroutines 42
`))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.sum(metricRetries, "target", "sink"); !ok || v != 3 {
		t.Errorf("retries = %v, %v", v, ok)
	}
	if v, _ := m.sum(metricDeadLetters, "target", "sink"); v != 3 {
		t.Errorf("dead letters = %v", v)
	}
	if v, ok := m.sum("tally_odd", "target", `a"b\c`); !ok || v != 1500 {
		t.Errorf("escaped label: %v, %v", v, ok)
	}
	if _, ok := m.sum(metricConcurrency); ok {
		t.Error("an absent metric was found")
	}
	if _, err := parseMetrics(strings.NewReader(`x{a="b} 1`)); err == nil {
		t.Error("want an error for an unterminated label")
	}
}
