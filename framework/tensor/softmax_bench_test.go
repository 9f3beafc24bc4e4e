package tensor

import (
	"testing"
	"time"
)

// BenchmarkSoftmaxRows4096 times softmax over the rows of a 4096×4096 float32 matrix, fused
// (one kernel: max, sum of exponentials and the normalised row in one pass over each row)
// against the same graph cut into three kernels by Contiguous, as the scheduler used to cut
// it. The two alternate per iteration, so both see the same machine load; reported are both
// medians (ms) and their ratio. Run with
// go test -run '^$' -bench SoftmaxRows -benchtime 20x ./framework/tensor
func BenchmarkSoftmaxRows4096(b *testing.B) {
	x := Rand(4096, 4096)
	fused := func() *Tensor { return x.Softmax(1) }
	split := func() *Tensor {
		e := x.Sub(x.Max(1, KeepDim).Contiguous()).Exp()
		return e.Div(e.Sum(1, KeepDim).Contiguous())
	}
	if got := kernels(b, fused()); got != 1 {
		b.Fatalf("fused softmax is %d kernels", got)
	}
	if got := kernels(b, split()); got != 3 {
		b.Fatalf("split softmax is %d kernels", got)
	}
	if err := Realize(x, fused(), split()); err != nil { // compile both once
		b.Fatal(err)
	}
	var one, three []float64
	timed := func(op func() *Tensor) float64 {
		t := time.Now()
		if err := op().Realize(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t).Seconds() * 1e3
	}
	for b.Loop() {
		one = append(one, timed(fused))
		three = append(three, timed(split))
	}
	b.ReportMetric(median(one), "ms/fused")
	b.ReportMetric(median(three), "ms/3-kernels")
	b.ReportMetric(median(three)/median(one), "speedup")
}
