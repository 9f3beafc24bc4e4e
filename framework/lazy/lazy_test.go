package lazy_test

import (
	"testing"

	"github.com/gradforge/gradforge/framework/lazy"
	"github.com/gradforge/gradforge/framework/tensor"
)

// TestLiveMemoryStaysBounded realizes far more large results than the bound lets live at
// once, dropping each: the dead ones must be found and freed along the way, without anything
// else making the collector run.
func TestLiveMemoryStaysBounded(t *testing.T) {
	const (
		n     = 1 << 20 // float32 elements per result: 4 MiB
		steps = 400     // 1.6 GiB in all
		bound = 512 << 20
	)
	peak := int64(0)
	for i := range steps {
		x := tensor.Full(1, n).Mul(2)
		if err := x.Realize(); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, lazy.LiveBytes())
		if peak > bound {
			t.Fatalf("step %d: %d MiB of large buffers live after allocating %d MiB; want at most %d MiB",
				i, peak>>20, (i+1)*4*n>>20, bound>>20)
		}
	}
	t.Logf("peak live %d MiB over %d MiB allocated", peak>>20, steps*4*n>>20)
}
