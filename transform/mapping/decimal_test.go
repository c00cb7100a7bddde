package mapping

import (
	"math/big"
	"testing"
)

func TestTransformValue(t *testing.T) {
	tests := []struct {
		name, in, scale string
		round           int
		want            string
		ok              bool
	}{
		{"integer unchanged", "12", "", -1, "12", true},
		{"scale exact", "3", "0.1", -1, "0.3", true},
		{"scale keeps needed decimals", "1.25", "0.001", -1, "0.00125", true},
		{"round half away from zero", "2.5", "", 0, "3", true},
		{"round negative half away from zero", "-2.5", "", 0, "-3", true},
		{"round drops trailing zeros", "12.001", "", 2, "12", true},
		{"round to decimals", "3.14159", "", 3, "3.142", true},
		{"scale and round", "7", "0.5", 0, "4", true},
		{"negative zero", "-0.0001", "", 2, "0", true},
		{"exponent", "1.5E2", "", -1, "150", true},
		{"leading sign and dot", "+.5", "2", -1, "1", true},
		{"spaces trimmed", " 4 ", "", 0, "4", true},
		{"text", "yes", "", 0, "", false},
		{"fraction", "1/2", "", 0, "", false},
		{"hex", "0x10", "", 0, "", false},
		{"infinity", "Inf", "", 0, "", false},
		{"lone dot", ".", "", 0, "", false},
		{"huge exponent", "1e999", "", 0, "", false},
		{"exponent without digits", "1e", "", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scale, _ := parseDecimal(tt.scale)
			got, ok := transformValue(tt.in, scale, tt.round)
			if got != tt.want || ok != tt.ok {
				t.Errorf("transformValue(%q, %s, %d) = %q, %v; want %q, %v", tt.in, tt.scale, tt.round, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAccum(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
		ok   bool
	}{
		{"integers", []string{"1", "2", "39"}, "42", true},
		{"decimals exact", []string{"0.1", "0.2"}, "0.3", true},
		{"integers then decimals", []string{"5", "-1.25"}, "3.75", true},
		{"int64 overflow goes exact", []string{"9223372036854775807", "1"}, "9223372036854775808", true},
		{"text", []string{"1", "x"}, "", false},
		{"text first", []string{"x"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a accum
			ok := true
			for _, s := range tt.in {
				ok = ok && a.add(s)
			}
			if ok != tt.ok || (ok && a.String() != tt.want) {
				t.Errorf("sum of %v = %q, %v; want %q, %v", tt.in, a.String(), ok, tt.want, tt.ok)
			}
		})
	}
}

func TestExactDecimalsOfOtherDenominators(t *testing.T) {
	// The engine never makes 1/3, but it must still print, to maxRound decimals.
	if got := formatDecimal(big.NewRat(1, 3), -1); got != "0.333333333333" {
		t.Errorf("1/3 = %q", got)
	}
}
