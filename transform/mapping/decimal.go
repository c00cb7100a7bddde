package mapping

import (
	"math/big"
	"strconv"
	"strings"
)

// Values are transformed and added as exact decimals (math/big.Rat), so that scaling by 0.1
// or summing 0.1 and 0.2 gives what a person computing by hand writes, never a binary
// floating-point artefact such as 0.30000000000000004.

// maxRound bounds the decimals a rule may round to.
const maxRound = 12

// maxExponent bounds the exponent of a number written with one, so that "1e999999" cannot
// make the engine build a huge integer.
const maxExponent = 30

// parseDecimal reads a number as DHIS2 stores it: an optional sign, digits with an optional
// decimal point, and an optional exponent. It rejects everything else (fractions, hex,
// Inf, NaN) that big.Rat would otherwise accept.
func parseDecimal(s string) (*big.Rat, bool) {
	if !isDecimal(s) {
		return nil, false
	}
	x, ok := new(big.Rat).SetString(s)
	return x, ok
}

func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		}
		if i == start || i-start > 2 {
			return false
		}
		if e, _ := strconv.Atoi(s[start:i]); e > maxExponent {
			return false
		}
	}
	return i == len(s)
}

// formatDecimal writes x in plain decimal notation. With round >= 0 it is rounded to that
// many decimals, halves away from zero; otherwise it is written exactly. Trailing zeros are
// left out ("12", not "12.00"), so integer data elements accept the result.
func formatDecimal(x *big.Rat, round int) string {
	prec := round
	if prec < 0 {
		prec = exactDecimals(x.Denom())
	}
	s := x.FloatString(prec)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// exactDecimals returns the decimals needed to write a fraction with denominator den
// exactly; den is a product of 2s and 5s when the value came from decimal numbers. Other
// denominators (which the engine never makes) get maxRound decimals.
func exactDecimals(den *big.Int) int {
	d := new(big.Int).Set(den)
	two, five := big.NewInt(2), big.NewInt(5)
	var m big.Int
	a, b := 0, 0
	for d.Cmp(big.NewInt(1)) > 0 {
		if m.Mod(d, two).Sign() == 0 {
			d.Quo(d, two)
			a++
		} else if m.Mod(d, five).Sign() == 0 {
			d.Quo(d, five)
			b++
		} else {
			return maxRound
		}
	}
	return max(a, b)
}

// transformValue applies a rule's scale and rounding to a numeric value.
func transformValue(v string, scale *big.Rat, round int) (string, bool) {
	x, ok := parseDecimal(strings.TrimSpace(v))
	if !ok {
		return "", false
	}
	if scale != nil {
		x.Mul(x, scale)
	}
	return formatDecimal(x, round), true
}

// accum adds decimal values, in int64 while they are whole numbers that fit.
type accum struct {
	i int64
	r *big.Rat
}

func (a *accum) add(s string) bool {
	s = strings.TrimSpace(s)
	if a.r == nil {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			if sum := a.i + n; (n >= 0) == (sum >= a.i) {
				a.i = sum
				return true
			}
		}
		if !isDecimal(s) {
			return false
		}
		a.r = new(big.Rat).SetInt64(a.i)
	}
	x, ok := parseDecimal(s)
	if !ok {
		return false
	}
	a.r.Add(a.r, x)
	return true
}

func (a *accum) String() string {
	if a.r == nil {
		return strconv.FormatInt(a.i, 10)
	}
	return formatDecimal(a.r, -1)
}
