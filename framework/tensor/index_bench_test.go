package tensor

import (
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
	timed := func(f func() *Tensor) float64 {
		t := time.Now()
		if err := f().Realize(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t).Seconds() * 1e3
	}
	timed(lookup) // compile both kernels first
	timed(oneHot)
	var fast, slow []float64
	for b.Loop() {
		fast, slow = append(fast, timed(lookup)), append(slow, timed(oneHot))
	}
	b.ReportMetric(median(fast), "ms/index_select")
	b.ReportMetric(median(slow), "ms/one_hot")
	b.ReportMetric(median(slow)/median(fast), "speedup")
}
