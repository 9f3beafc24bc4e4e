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

// descend trains w of a least-squares fit for steps calls of one JIT function that assigns w
// and reads host data it makes, and returns the losses the calls report.
func descend(t *testing.T, device string, steps int) ([]float64, *Func) {
	const rows, cols = 256, 64
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	x, err := tensor.FromSlice(randoms(r, rows*cols), rows, cols).To(device)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := tensor.FromSlice(randoms(r, rows), rows).To(device)
	w, _ := tensor.FromSlice(make([]float32, cols), cols).To(device)
	f := New(func(in ...*tensor.Tensor) *tensor.Tensor {
		res := in[0].Mul(w).Sum(1).Sub(in[1])
		grad := in[0].Mul(res.Unsqueeze(1)).Sum(0).Mul(2.0 / rows)
		w.Assign(w.Detach().Sub(grad.Mul(0.05)))
		// Host data made by every call, as nn.CrossEntropy's class indices are: the recording
		// uploads it before the capture.
		return res.Mul(res).Mul(tensor.FromSlice([]float32{1.0 / rows}, 1)).Sum()
	}).Updates(w)
	var losses []float64
	for call := 1; call <= steps; call++ {
		l, err := f.Call(x, y)
		if err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		v, err := l.Item()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, v)
	}
	return losses, f
}

func TestReplayedStepsUpdateWeights(t *testing.T) {
	for _, device := range []string{"CPU", "CUDA"} {
		t.Run(device, func(t *testing.T) {
			if _, err := runtime.Get(device); err != nil {
				t.Skipf("no %s here: %v", device, err)
			}
			t.Setenv("DEVICE", device) // where FromSlice puts the host data
			losses, f := descend(t, device, 8)
			defer f.Close()
			if device == "CUDA" && !f.Replaying() {
				t.Fatalf("the step was not recorded: %v", f.Err())
			}
			for i := 1; i < len(losses); i++ {
				if !(losses[i] < losses[i-1]) {
					t.Fatalf("loss did not fall at call %d: %v", i+1, losses)
				}
			}
		})
	}
}

func TestUploadRealizesOnlyHostData(t *testing.T) {
	if _, err := runtime.Get("CPU"); err != nil {
		t.Skipf("no CPU backend: %v", err)
	}
	t.Setenv("DEVICE", "CPU")
	a := tensor.FromSlice([]float32{1, 2}, 2)
	b := a.Mul(2)
	if err := upload([]*tensor.Tensor{b}); err != nil {
		t.Fatal(err)
	}
	if !a.Node().Realized() || b.Node().Realized() {
		t.Errorf("host data realized %v (want true), its product %v (want false)", a.Node().Realized(), b.Node().Realized())
	}
}
