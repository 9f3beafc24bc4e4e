package tensor

import (
	"fmt"
	"testing"
	"time"

	"github.com/gradforge/gradforge/framework/dtype"
)

// BenchmarkEmbeddingLookup looks up 512 ids in a 30000×256 float32 table, alternating per
// iteration the indexed load (IndexSelect, what nn.Embedding does) and the one-hot matmul it
// replaced, and reports both medians (ms) and their ratio. Run with
// go test -run '^$' -bench EmbeddingLookup -benchtime 10x ./framework/tensor
func BenchmarkEmbeddingLookup(b *testing.B) {
	w, ids := Rand(30000, 256), Rand(512).Mul(30000).Cast(dtype.Int64)
	if err := Realize(w, ids); err != nil {
		b.Fatal(err)
	}
	lookup := func() *Tensor { return w.IndexSelect(0, ids) }
	oneHot := func() *Tensor {
		return ids.Unsqueeze(-1).Eq(Arange(0, 30000, 1).Cast(dtype.Int64)).Cast(dtype.Float32).Matmul(w)
	}
	fast, slow := alternate(b, lookup, oneHot)
	b.ReportMetric(fast, "ms/index_select")
	b.ReportMetric(slow, "ms/one_hot")
	b.ReportMetric(slow/fast, "speedup")
}

// BenchmarkEmbeddingBackward takes the gradient of a lookup of 512 and of 4096 ids in a
// 30000×256 float32 table (what nn.Embedding's backward does), alternating per iteration
// IndexSelect's gradient (512: a 512×512 equality matmul; 4096: a sort and segmented scan)
// and the one-hot matmul it replaced, and reports both medians (ms) and their ratio. Run with
// go test -run '^$' -bench EmbeddingBackward -benchtime 5x ./framework/tensor
func BenchmarkEmbeddingBackward(b *testing.B) {
	w := Rand(30000, 256)
	for _, k := range []int{512, 4096} {
		ids, g := Rand(k).Mul(30000).Cast(dtype.Int64), Rand(k, 256)
		if err := Realize(w, ids, g); err != nil {
			b.Fatal(err)
		}
		scatter := func() *Tensor {
			w := w.Detach().SetRequiresGrad(true)
			w.IndexSelect(0, ids).Mul(g).Sum().Backward()
			return w.Grad
		}
		oneHot := func() *Tensor {
			return ids.Unsqueeze(-1).Eq(Arange(0, 30000, 1).Cast(dtype.Int64)).Cast(dtype.Float32).T().Matmul(g)
		}
		b.Run(fmt.Sprintf("ids=%d", k), func(b *testing.B) {
			fast, slow := alternate(b, scatter, oneHot)
			b.ReportMetric(fast, "ms/gradient")
			b.ReportMetric(slow, "ms/one_hot")
			b.ReportMetric(slow/fast, "speedup")
		})
	}
}

// alternate realizes new and old once each (compiling their kernels), then in turn once per
// benchmark iteration, and returns the median milliseconds of each.
func alternate(b *testing.B, new, old func() *Tensor) (float64, float64) {
	timed := func(f func() *Tensor) float64 {
		t := time.Now()
		if err := f().Realize(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t).Seconds() * 1e3
	}
	timed(new)
	timed(old)
	var fast, slow []float64
	for b.Loop() {
		fast, slow = append(fast, timed(new)), append(slow, timed(old))
	}
	return median(fast), median(slow)
}
