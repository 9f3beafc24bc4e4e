package ci

import (
	"math"
	"sort"
)

// Verdicts of one benchmark in the speed gate.
const (
	Slower       = "slower"       // the whole interval is a slowdown beyond the threshold: fail
	Inconclusive = "inconclusive" // the interval reaches past the threshold but not all of it: neutral
	Unchanged    = "ok"           // the interval rules out a slowdown beyond the threshold: pass
	Faster       = "faster"       // the interval rules out a slowdown and shows a speed-up beyond it
	Unpaired     = "unpaired"     // the benchmark exists on one side only: no verdict
)

// RatioCI estimates the typical ratio head/base from paired samples (base[i] and head[i]
// measured back to back) with a confidence interval, using the Wilcoxon signed-rank method on
// log ratios: the estimate is the Hodges–Lehmann median of the Walsh averages and the bounds
// are the Walsh averages at the exact signed-rank critical values (a normal approximation
// above 60 pairs). Working on logs makes a 2× slowdown and a 2× speed-up symmetric; the
// signed-rank method needs no normality and shrugs off the odd outlier run. ok is false when
// there are too few valid pairs for an interval at this confidence (fewer than 6 at 95 %).
func RatioCI(base, head []float64, confidence float64) (ratio, low, high float64, ok bool) {
	var d []float64
	for i := range min(len(base), len(head)) {
		if base[i] > 0 && head[i] > 0 && !math.IsInf(base[i], 0) && !math.IsInf(head[i], 0) {
			d = append(d, math.Log(head[i]/base[i]))
		}
	}
	n := len(d)
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN(), false
	}
	walsh := make([]float64, 0, n*(n+1)/2)
	for i := range d {
		for j := i; j < n; j++ {
			walsh = append(walsh, (d[i]+d[j])/2)
		}
	}
	sort.Float64s(walsh)
	m := len(walsh)
	est := walsh[m/2]
	if m%2 == 0 {
		est = (walsh[m/2-1] + walsh[m/2]) / 2
	}
	k := signedRankCritical(n, (1-confidence)/2)
	if k <= 0 {
		return math.Exp(est), math.NaN(), math.NaN(), false
	}
	return math.Exp(est), math.Exp(walsh[k-1]), math.Exp(walsh[m-k]), true
}

// signedRankCritical returns k, the 1-based rank of the lower bound among the n(n+1)/2 Walsh
// averages: one more than the largest w with P(W+ ≤ w) ≤ tail under the null hypothesis.
// It returns 0 when even W+ = 0 is more likely than tail (too few pairs).
func signedRankCritical(n int, tail float64) int {
	m := n * (n + 1) / 2
	if n > 60 {
		mean := float64(m) / 2
		sd := math.Sqrt(float64(n*(n+1)*(2*n+1)) / 24)
		z := -math.Sqrt2 * math.Erfinv(2*tail-1) // the upper tail quantile of N(0,1)
		return max(0, int(math.Floor(mean-z*sd+0.5)))
	}
	// counts[w] = number of subsets of {1..n} whose sum is w; every subset is equally likely.
	counts := make([]float64, m+1)
	counts[0] = 1
	for r := 1; r <= n; r++ {
		for w := m; w >= r; w-- {
			counts[w] += counts[w-r]
		}
	}
	total := math.Ldexp(1, n)
	cum, k := 0.0, 0
	for w := 0; w <= m; w++ {
		cum += counts[w]
		if cum/total > tail {
			break
		}
		k = w + 1
	}
	return k
}

// Judge turns an interval on head/base into a verdict: fail only when all of the interval is
// a slowdown beyond threshold (0.05 = 5 %), pass when none of it is, and inconclusive
// otherwise, so noise never fails a pull request and a real slowdown always can.
func Judge(low, high, threshold float64, ok bool) string {
	limit := 1 + threshold
	switch {
	case !ok:
		return Inconclusive
	case low > limit:
		return Slower
	case high < 1/limit:
		return Faster
	case high <= limit:
		return Unchanged
	}
	return Inconclusive
}

// median returns the middle of the positive values of xs (not modified), 0 when there are
// none (missing samples are negative).
func median(xs []float64) float64 {
	var s []float64
	for _, x := range xs {
		if x > 0 && !math.IsInf(x, 0) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return 0
	}
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
