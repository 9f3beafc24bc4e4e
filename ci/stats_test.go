package ci

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSignedRankCritical(t *testing.T) {
	// Published critical values of the signed-rank statistic for a two-sided 5 % test:
	// the lower bound is the (w+1)-th Walsh average where P(W+ <= w) <= 0.025.
	tests := []struct{ n, wantK int }{{5, 0}, {6, 1}, {8, 4}, {10, 9}, {15, 26}, {20, 53}, {30, 138}}
	for _, tt := range tests {
		if got := signedRankCritical(tt.n, 0.025); got != tt.wantK {
			t.Errorf("n=%d: k = %d, want %d", tt.n, got, tt.wantK)
		}
	}
	// The normal approximation takes over smoothly above 60 pairs.
	exact, approx := signedRankCritical(60, 0.025), signedRankCritical(61, 0.025)
	if d := approx - exact; d < 0 || d > 2*61 {
		t.Errorf("critical value jumps from %d (n=60, exact) to %d (n=61, normal)", exact, approx)
	}
}

// pairs draws n paired timings: base ~ 1000 ns with multiplicative noise, head the same times
// the true ratio, each with its own noise.
func pairs(rng *rand.Rand, n int, ratio, noise float64) (base, head []float64) {
	for range n {
		drift := math.Exp(rng.NormFloat64() * noise) // shared by both runs of a pair (machine state)
		base = append(base, 1000*drift*math.Exp(rng.NormFloat64()*noise))
		head = append(head, 1000*ratio*drift*math.Exp(rng.NormFloat64()*noise))
	}
	return base, head
}

// rates runs the gate's statistic on many synthetic benchmarks and counts each verdict.
func rates(seed uint64, trials, n int, ratio, noise, threshold float64) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 1))
	got := map[string]int{}
	for range trials {
		b, h := pairs(rng, n, ratio, noise)
		_, lo, hi, ok := RatioCI(b, h, 0.95)
		got[Judge(lo, hi, threshold, ok)]++
	}
	return got
}

func TestSpeedStatistic(t *testing.T) {
	const trials = 2000
	t.Run("equal distributions never fail beyond the test's level", func(t *testing.T) {
		// With threshold 0 the gate is a plain two-sided 5 % test, so "slower" must come up
		// at most about 2.5 % of the time (a little less: the exact test is conservative).
		got := rates(1, trials, 10, 1, 0.03, 0)
		if rate := float64(got[Slower]) / trials; rate > 0.035 || rate < 0.01 {
			t.Errorf("false slowdowns at threshold 0: %.2f %%, want about 2.5 %% (%v)", 100*rate, got)
		}
		// With the real 5 % threshold, equal code passes or is neutral, and essentially never fails.
		got = rates(2, trials, 10, 1, 0.03, 0.05)
		if got[Slower] > trials/200 {
			t.Errorf("equal code failed %d of %d times (%v)", got[Slower], trials, got)
		}
		if got[Unchanged] < trials*3/4 {
			t.Errorf("equal code with 3 %% noise should mostly pass: %v", got)
		}
	})
	t.Run("a 20 % slowdown fails", func(t *testing.T) {
		got := rates(3, trials, 10, 1.20, 0.03, 0.05)
		if got[Slower] < trials*99/100 {
			t.Errorf("20 %% slowdown failed only %d of %d times (%v)", got[Slower], trials, got)
		}
	})
	t.Run("a noisy 3 % slowdown does not fail", func(t *testing.T) {
		got := rates(4, trials, 10, 1.03, 0.08, 0.05)
		if rate := float64(got[Slower]) / trials; rate > 0.025 {
			t.Errorf("3 %% slowdown under 8 %% noise failed %.2f %% of the time (%v)", 100*rate, got)
		}
		if got[Inconclusive] == 0 {
			t.Errorf("noise this large should leave some runs inconclusive: %v", got)
		}
	})
	t.Run("a 20 % speed-up is faster", func(t *testing.T) {
		got := rates(5, trials, 10, 1/1.2, 0.03, 0.05)
		if got[Faster] < trials*99/100 {
			t.Errorf("speed-up: %v", got)
		}
	})
}

func TestRatioCIEdges(t *testing.T) {
	r, lo, hi, ok := RatioCI([]float64{100, 100, 100, 100, 100, 100, 100, 100, 100, 100},
		[]float64{150, 150, 150, 150, 150, 150, 150, 150, 150, 150}, 0.95)
	if !ok || math.Abs(r-1.5) > 1e-12 || math.Abs(lo-1.5) > 1e-12 || math.Abs(hi-1.5) > 1e-12 {
		t.Errorf("constant 1.5 ratio: %v [%v, %v] ok=%v", r, lo, hi, ok)
	}
	if Judge(lo, hi, 0.05, ok) != Slower {
		t.Error("a constant 1.5× must be slower")
	}
	if _, _, _, ok := RatioCI([]float64{1, 1, 1}, []float64{2, 2, 2}, 0.95); ok {
		t.Error("three pairs cannot give a 95 % interval")
	}
	if Judge(math.NaN(), math.NaN(), 0.05, false) != Inconclusive {
		t.Error("no interval is inconclusive")
	}
	// One 10× outlier run among ten equal pairs widens the interval but cannot fail the gate.
	b := []float64{100, 101, 99, 100, 102, 98, 100, 101, 99, 100}
	h := []float64{101, 100, 99, 101, 101, 99, 100, 100, 98, 1000}
	r, lo, hi, ok = RatioCI(b, h, 0.95)
	if v := Judge(lo, hi, 0.05, ok); v == Slower || r > 1.05 {
		t.Errorf("one outlier: ratio %v [%v, %v] judged %s", r, lo, hi, v)
	}
}

func TestAnalyze(t *testing.T) {
	base := map[string][]float64{
		"p.BenchmarkA":     {100, 101, 99, 100, 102, 98, 100, 101, 99, 100},
		"p.BenchmarkGone":  {5, 5, 5, 5, 5, 5},
		"p.BenchmarkFlaky": {100, Missing, 100, 100, 100, 100, 100, 100},
	}
	head := map[string][]float64{
		"p.BenchmarkA":     {200, 202, 198, 200, 204, 196, 200, 202, 198, 200},
		"p.BenchmarkNew":   {7, 7, 7, 7, 7, 7},
		"p.BenchmarkFlaky": {101, 100, Missing, 99, 100, 101, 100, 100},
	}
	rep := &SpeedReport{Pairs: 10, Threshold: 0.05, Confidence: 0.95, Benchmarks: Analyze(base, head, 0.05, 0.95)}
	got := map[string]BenchResult{}
	for _, b := range rep.Benchmarks {
		got[b.Name] = b
	}
	if a := got["p.BenchmarkA"]; a.Verdict != Slower || math.Abs(a.Ratio-2) > 0.02 || a.Base != 100 || a.Head != 200 {
		t.Errorf("A: %+v", a)
	}
	if got["p.BenchmarkGone"].Verdict != Unpaired || got["p.BenchmarkNew"].Verdict != Unpaired {
		t.Errorf("one-sided benchmarks: %s, %s", got["p.BenchmarkGone"].Verdict, got["p.BenchmarkNew"].Verdict)
	}
	// Two rounds lost one side each: the six whole pairs still give an interval.
	if f := got["p.BenchmarkFlaky"]; f.Verdict == Slower || f.Base != 100 {
		t.Errorf("flaky: %+v", f)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("a report with unpaired benchmarks must encode as JSON: %v", err)
	}
	if rep.Conclusion() != Failure {
		t.Errorf("conclusion %s", rep.Conclusion())
	}
	if (&SpeedReport{}).Conclusion() != Neutral {
		t.Error("no benchmarks measured is neutral, not a pass")
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "p.BenchmarkNew") || !strings.Contains(b.String(), "unpaired") {
		t.Errorf("text:\n%s", b.String())
	}
}
