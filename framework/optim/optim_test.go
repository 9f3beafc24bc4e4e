package optim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/tensor"
)

// torchSteps runs the same optimisation in PyTorch and returns the final parameter.
func torchSteps(t *testing.T, ctor string, w0, x, y []float32, steps int) []float64 {
	t.Helper()
	py := "/usr/bin/python3"
	if p := os.Getenv("TESTOPS_PYTHON"); p != "" {
		py = p
	}
	script := fmt.Sprintf(`
import json, torch
w = torch.tensor(%s, requires_grad=True)
x = torch.tensor(%s); y = torch.tensor(%s)
opt = %s
for _ in range(%d):
    opt.zero_grad()
    ((w * x - y) ** 2).sum().backward()
    opt.step()
print(json.dumps(w.detach().tolist()))`, js(w0), js(x), js(y), ctor, steps)
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		if os.Getenv("TESTOPS_REQUIRE_TORCH") == "1" {
			t.Fatalf("PyTorch reference failed: %v", err)
		}
		t.Skipf("no PyTorch to compare with (%v); TESTOPS_REQUIRE_TORCH=1 makes this fail", err)
	}
	var w []float64
	if err := json.Unmarshal(out, &w); err != nil {
		t.Fatalf("parse %q: %v", out, err)
	}
	return w
}

func js(v []float32) string { b, _ := json.Marshal(v); return string(b) }

func TestOptimizersMatchPyTorch(t *testing.T) {
	w0 := []float32{0.5, -1.2, 2.0, 0.1, -0.7, 1.3}
	x := []float32{1.0, 2.0, -1.0, 0.5, 3.0, -2.0}
	y := []float32{2.0, -1.0, 0.0, 1.0, 0.5, 1.5}
	for _, tc := range []struct {
		name  string
		make  func(p []*T) Optimizer
		torch string
	}{
		{"sgd", func(p []*T) Optimizer { return NewSGD(p, 0.01, 0, 0, false) }, "torch.optim.SGD([w], lr=0.01)"},
		{"sgd momentum weight decay", func(p []*T) Optimizer { return NewSGD(p, 0.01, 0.9, 0.1, false) }, "torch.optim.SGD([w], lr=0.01, momentum=0.9, weight_decay=0.1)"},
		{"sgd nesterov", func(p []*T) Optimizer { return NewSGD(p, 0.01, 0.9, 0, true) }, "torch.optim.SGD([w], lr=0.01, momentum=0.9, nesterov=True)"},
		{"adam", func(p []*T) Optimizer { return NewAdam(p, 0.05) }, "torch.optim.Adam([w], lr=0.05)"},
		{"adam l2", func(p []*T) Optimizer { a := NewAdam(p, 0.05); a.WeightDecay = 0.1; return a }, "torch.optim.Adam([w], lr=0.05, weight_decay=0.1)"},
		{"adamw", func(p []*T) Optimizer { return NewAdamW(p, 0.05, 0.1) }, "torch.optim.AdamW([w], lr=0.05, weight_decay=0.1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const steps = 6
			want := torchSteps(t, tc.torch, w0, x, y, steps)
			w := tensor.FromSlice(w0, 6).SetRequiresGrad(true)
			xt, yt := tensor.FromSlice(x, 6), tensor.FromSlice(y, 6)
			opt := tc.make([]*T{w})
			for range steps {
				opt.ZeroGrad()
				d := w.Mul(xt).Sub(yt)
				d.Mul(d).Sum().Backward()
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := w.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-4*(1+math.Abs(want[i])) {
					t.Fatalf("after %d steps w = %v, PyTorch %v", steps, got, want)
				}
			}
		})
	}
}

func TestSchedules(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
		at   map[int]float64
	}{
		{"step", StepLR(0.1, 10, 0.5), map[int]float64{0: 0.1, 9: 0.1, 10: 0.05, 25: 0.025}},
		{"cosine", Cosine(1, 0, 100), map[int]float64{0: 1, 50: 0.5, 100: 0, 200: 0}},
		{"warmup then constant", Warmup(4, func(int) float64 { return 0.2 }), map[int]float64{0: 0.05, 3: 0.2, 10: 0.2}},
	} {
		for step, want := range tc.at {
			if got := tc.s(step); math.Abs(got-want) > 1e-12 {
				t.Errorf("%s at step %d = %v, want %v", tc.name, step, got, want)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(Cosine(1, 0, 10)(5)), "0.5") {
		t.Error("cosine halfway is not 0.5")
	}
}
