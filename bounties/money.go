package bounties

import (
	"fmt"
	"strconv"
	"strings"
)

// Cents is an amount of US dollars in integer cents; money is never a float here.
type Cents int64

// String formats c as "$1,000.50" (and "$12" for whole dollars), the way people write it.
func (c Cents) String() string {
	neg := c < 0
	if neg {
		c = -c
	}
	whole, frac := int64(c)/100, int64(c)%100
	digits := strconv.FormatInt(whole, 10)
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	out := "$" + b.String()
	if frac != 0 {
		out += fmt.Sprintf(".%02d", frac)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// ParseAmount reads a USD amount as people write it — "$1,000.50", "1000", "25.5", "$5" — into
// cents. It refuses anything it would have to guess at: signs, more than two decimals, commas
// in the wrong places, exponents, other currencies, and amounts above a trillion cents.
func ParseAmount(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, " USD"), " usd")
	t = strings.TrimPrefix(t, "$")
	if t == "" {
		return 0, refuse(ErrBadInput, "%q is not an amount: write it like $25 or $1,000.50", s)
	}
	whole, frac, hasFrac := strings.Cut(t, ".")
	if strings.Contains(whole, ",") {
		groups := strings.Split(whole, ",")
		if len(groups[0]) == 0 || len(groups[0]) > 3 {
			return 0, refuse(ErrBadInput, "%q has misplaced thousands separators", s)
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, refuse(ErrBadInput, "%q has misplaced thousands separators", s)
			}
		}
		whole = strings.Join(groups, "")
	}
	if whole == "" || !digitsOnly(whole) || (hasFrac && (frac == "" || len(frac) > 2 || !digitsOnly(frac))) {
		return 0, refuse(ErrBadInput, "%q is not an amount: write it like $25 or $1,000.50 (US dollars, at most two decimals)", s)
	}
	if len(strings.TrimLeft(whole, "0")) > 10 {
		return 0, refuse(ErrBadInput, "%q is absurdly large", s)
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	var f int64
	if hasFrac {
		f, _ = strconv.ParseInt((frac + "0")[:2], 10, 64)
	}
	return w*100 + f, nil
}

func digitsOnly(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// splitCents divides total among weights, largest remainder first, so the parts are whole
// cents that sum exactly to total; ties go to the earlier entry (callers sort by login).
func splitCents(total int64, weights []int64) []int64 {
	var sum int64
	for _, w := range weights {
		sum += w
	}
	parts := make([]int64, len(weights))
	if sum == 0 {
		return parts
	}
	var given int64
	rem := make([]int64, len(weights))
	for i, w := range weights {
		parts[i] = total * w / sum
		rem[i] = total * w % sum
		given += parts[i]
	}
	for left := total - given; left > 0; left-- {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		parts[best]++
		rem[best] = -1
	}
	return parts
}
