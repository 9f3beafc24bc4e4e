package jit

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/tensor"
)

// model is a small function with a reduce and a weight it closes over.
func model(w *tensor.Tensor) func(in ...*tensor.Tensor) *tensor.Tensor {
	return func(in ...*tensor.Tensor) *tensor.Tensor {
		return in[0].Mul(in[1]).Add(w).Relu().Sum(1)
	}
}

// want computes model on the host.
func want(x, y, w []float32, rows, cols int) []float64 {
	out := make([]float64, rows)
	for r := range rows {
		for c := range cols {
			out[r] += math.Max(0, float64(x[r*cols+c]*y[r*cols+c]+w[c]))
		}
	}
	return out
}

func randoms(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func check(t *testing.T, call int, got, want []float64) {
	t.Helper()
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-4*(1+math.Abs(want[i])) {
			t.Fatalf("call %d: out[%d] = %v, want %v", call, i, got[i], want[i])
		}
	}
}

func runCalls(t *testing.T, device string, calls int) *Func {
	const rows, cols = 300, 700
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 5))
	wh := randoms(r, cols)
	w, err := tensor.FromSlice(wh, cols).To(device)
	if err != nil {
		t.Fatal(err)
	}
	f := New(model(w))
	for call := 1; call <= calls; call++ {
		xh, yh := randoms(r, rows*cols), randoms(r, rows*cols)
		x, _ := tensor.FromSlice(xh, rows, cols).To(device)
		y, _ := tensor.FromSlice(yh, rows, cols).To(device)
		out, err := f.Call(x, y)
		if err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		got, err := out.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		check(t, call, got, want(xh, yh, wh, rows, cols))
	}
	return f
}

func TestReplayWithNewInputsOnCUDA(t *testing.T) {
	if _, err := runtime.Get("CUDA"); err != nil {
		if os.Getenv("CUDA_REQUIRE") != "" {
			t.Fatal(err)
		}
		t.Skipf("no CUDA here (set CUDA_REQUIRE=1 to fail instead): %v", err)
	}
	f := runCalls(t, "CUDA", 5)
	defer f.Close()
	if !f.Replaying() {
		t.Error("calls 3-5 were not replayed from the recorded graph")
	}
}

func TestOtherDevicesRunDirectly(t *testing.T) {
	if _, err := runtime.Get("CPU"); err != nil {
		t.Skipf("no CPU backend: %v", err)
	}
	f := runCalls(t, "CPU", 3)
	if f.Replaying() {
		t.Error("a CPU function claims to replay a CUDA graph")
	}
}
