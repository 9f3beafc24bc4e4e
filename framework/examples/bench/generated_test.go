package bench

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/tensor"
)

// TestGeneratedKernelsMatchCPU runs tensor programs through the CUDA code path (thread,
// block and split reductions, 16-bit floats, movement ops) and through the CPU backend on the
// same random inputs, and compares. The reduction sizes are chosen to hit every GPU lowering
// mode in codegen/gpu.go.
func TestGeneratedKernelsMatchCPU(t *testing.T) {
	openCUDA(t)
	if _, err := runtime.Get("CPU"); err != nil {
		t.Skipf("no CPU backend to compare with: %v", err)
	}
	seed := uint64(os.Getpid())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	data := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	type in struct{ x, y []float32 }
	cases := []struct {
		name   string
		xs, ys []int
		f      func(x, y *tensor.Tensor) *tensor.Tensor
		tol    float64
	}{
		{"elementwise chain", []int{1000, 37}, []int{1000, 37}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Mul(y).Add(x.Exp()).Relu().Add(1).Sqrt() }, 1e-5},
		{"large elementwise, 4 per thread", []int{1100, 1001}, []int{1, 1001}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Mul(y).Sub(y.Exp()) }, 1e-5},
		{"broadcast", []int{300, 1}, []int{1, 200}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Sub(y).Abs().Maximum(x.Mul(y)) }, 1e-6},
		{"sum all, split", []int{1 << 18}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Sum() }, 1e-4},
		{"max all, split", []int{3, 1 << 17}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Max() }, 0},
		{"row sums, block", []int{64, 4099}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Sum(1) }, 1e-4},
		{"column sums, block", []int{4096, 48}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Sum(0) }, 1e-4},
		{"two reduced axes", []int{8, 300, 70}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Permute(1, 0, 2).Sum(0, 2) }, 1e-4},
		{"short rows, thread", []int{5000, 7}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Max(1) }, 0},
		{"variance", []int{50, 1000}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Var(1) }, 1e-4},
		{"softmax", []int{33, 1000}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Softmax(-1) }, 1e-5},
		{"log softmax", []int{7, 70000}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.LogSoftmax(-1) }, 1e-5},
		{"softmax, one kernel, rows in registers", []int{1024, 4096}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Softmax(-1) }, 1e-5},
		{"softmax, one kernel, ragged rows", []int{1100, 1000}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Softmax(-1) }, 1e-5},
		{"softmax, one kernel, rows too long for registers", []int{1024, 40000}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Softmax(-1) }, 1e-5},
		{"softmax over columns, one thread per row", []int{300, 70}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Softmax(0) }, 1e-5},
		{"normalised rows, one kernel", []int{2048, 768}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor {
			return x.Sub(x.Mean(1).Unsqueeze(1)).Div(x.Var(1).Add(1e-5).Sqrt().Unsqueeze(1))
		}, 1e-4},
		{"int64 and int32 row sums, warp shuffles", []int{64, 4099}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor {
			return x.Mul(100).Cast(dtype.Int64).Sum(1).Cast(dtype.Float32).Add(x.Mul(100).Cast(dtype.Int32).Max(1).Cast(dtype.Float32))
		}, 1e-6},
		{"matmul", []int{65, 300}, []int{300, 33}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y) }, 1e-4},
		{"matmul float16", []int{64, 512}, []int{512, 48}, func(x, y *tensor.Tensor) *tensor.Tensor {
			return x.Cast(dtype.Float16).Matmul(y.Cast(dtype.Float16)).Cast(dtype.Float32)
		}, 2e-3},
		{"tiled matmul float32", []int{256, 512}, []int{512, 384}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y) }, 1e-4},
		{"tiled matmul float32, Wᵀ", []int{128, 256}, []int{384, 256}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y.T()) }, 1e-4},
		{"narrow tiles, 32 columns, ragged rows", []int{16300, 576}, []int{576, 32}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y) }, 1e-4},
		{"narrow tiles, 64 columns, ragged rows", []int{8150, 288}, []int{288, 64}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y) }, 1e-4},
		{"narrow tiles, 192 columns", []int{2816, 40}, []int{40, 192}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y) }, 1e-4},
		{"narrow tiles, 96 columns, Wᵀ, ragged rows", []int{5400, 64}, []int{96, 64}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y.T()) }, 1e-4},
		{"split-k tiles, linear layer x·Wᵀ", []int{512, 1600}, []int{128, 1600}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y.T()) }, 1e-4},
		{"split-k tiles, two tiles", []int{256, 640}, []int{640, 128}, func(x, y *tensor.Tensor) *tensor.Tensor { return x.Matmul(y) }, 1e-4},
		{"tensor-core matmul float16", []int{256, 512}, []int{512, 384}, func(x, y *tensor.Tensor) *tensor.Tensor {
			return realized(x.Cast(dtype.Float16)).Matmul(realized(y.Cast(dtype.Float16))).Cast(dtype.Float32)
		}, 2e-3},
		{"tensor-core matmul bfloat16, Wᵀ", []int{128, 512}, []int{256, 512}, func(x, y *tensor.Tensor) *tensor.Tensor {
			return realized(x.Cast(dtype.BFloat16)).Matmul(realized(y.Cast(dtype.BFloat16)).T()).Cast(dtype.Float32)
		}, 1e-2},
		{"bfloat16 row sums", []int{16, 2048}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor { return x.Cast(dtype.BFloat16).Sum(1).Cast(dtype.Float32) }, 1e-2},
		{"pad shrink flip", []int{30, 40}, []int{1}, func(x, _ *tensor.Tensor) *tensor.Tensor {
			return x.Pad([][2]int{{2, 3}, {0, 5}}).Flip(0).Shrink([][2]int{{1, 30}, {4, 44}}).Sum(0)
		}, 1e-5},
		{"integer division", []int{999}, []int{999}, func(x, y *tensor.Tensor) *tensor.Tensor {
			a, b := x.Mul(100).Cast(dtype.Int32), y.Abs().Mul(10).Add(1).Cast(dtype.Int32)
			return a.IntDiv(b).Add(a.Mod(b)).Cast(dtype.Float32)
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := in{data(prod(c.xs)), data(prod(c.ys))}
			run := func(dev string) ([]float64, error) {
				var out []float64
				var rerr error
				err := tensor.Try(func() {
					x, err := tensor.FromSlice(d.x, c.xs...).To(dev)
					if err != nil {
						rerr = err
						return
					}
					y, err := tensor.FromSlice(d.y, c.ys...).To(dev)
					if err != nil {
						rerr = err
						return
					}
					out, rerr = c.f(x, y).Float64s()
				})
				if err != nil {
					return nil, err
				}
				return out, rerr
			}
			got, err := run("CUDA")
			if err != nil {
				t.Fatalf("CUDA: %v", err)
			}
			want, err := run("CPU")
			if err != nil {
				t.Fatalf("CPU: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d results on CUDA, %d on CPU", len(got), len(want))
			}
			for i := range want {
				if g, w := got[i], want[i]; !(math.Abs(g-w) <= c.tol*(1+math.Abs(w))) && !(math.IsNaN(g) && math.IsNaN(w)) {
					t.Fatalf("element %d: CUDA %v, CPU %v", i, g, w)
				}
			}
		})
	}
}

// realized computes t now, so the next op reads it from memory (a Load, not a fused cast).
func realized(t *tensor.Tensor) *tensor.Tensor {
	if err := t.Realize(); err != nil {
		panic(err)
	}
	return t
}

func prod(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}
