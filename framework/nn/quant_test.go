package nn

import (
	"math"
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

func TestEveryInt8RoundTripsThroughFloat16(t *testing.T) {
	v := make([]int8, 256)
	for i := range v {
		v[i] = int8(i - 128)
	}
	x := tensor.FromSlice(v, 256)
	h := x.Cast(dtype.Float16)
	back, err := h.Cast(dtype.Int8).ToSlice()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := h.Float32s()
	for i, b := range back.([]int8) {
		if b != v[i] || f[i] != float32(v[i]) {
			t.Fatalf("int8 %d → float16 %v → int8 %d", v[i], f[i], b)
		}
	}
}

func TestQuantizeErrorIsHalfAStep(t *testing.T) {
	tensor.ManualSeed(3)
	w := tensor.Randn(8, 16).Mul(tensor.Rand(8, 1).Mul(4)) // rows of very different ranges
	for _, per := range []bool{false, true} {
		q := Quantize(w, per)
		got, _ := q.Dequantize().Float64s()
		want, _ := w.Float64s()
		sc, _ := q.Scale.Float64s()
		qs, _ := q.Q.ToSlice()
		for i := range want {
			s := sc[0]
			if per {
				s = sc[i/16]
			}
			if math.Abs(got[i]-want[i]) > s/2+1e-6 {
				t.Fatalf("perChannel=%v: element %d dequantizes to %v, was %v (scale %v)", per, i, got[i], want[i], s)
			}
			if q := qs.([]int8)[i]; q < -127 {
				t.Fatalf("quantized value %d outside [-127, 127]", q)
			}
		}
	}
}

type mlp struct{ L1, L2 *Linear }

func (m *mlp) forward(x *T) *T { return m.L2.Forward(m.L1.Forward(x).Relu()) }

// TestInt8InferenceKeepsAccuracy trains a small classifier on a synthetic, learnable task and
// checks that int8 weights change its accuracy by less than one point.
func TestInt8InferenceKeepsAccuracy(t *testing.T) {
	tensor.ManualSeed(7)
	const n, d, c = 2048, 16, 4
	centers := tensor.Randn(c, d).Mul(2)
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(i % c)
	}
	y := tensor.FromSlice(labels, n)
	onehot := y.Unsqueeze(1).Eq(tensor.Arange(0, c, 1)).Cast(dtype.Float32)
	x := onehot.Matmul(centers).Add(tensor.Randn(n, d).Mul(3))
	if err := tensor.Realize(x, y); err != nil {
		t.Fatal(err)
	}
	m := &mlp{NewLinear(d, 32, true), NewLinear(32, c, true)}
	params := Parameters(m)
	for step := 0; step < 150; step++ {
		for _, p := range params {
			p.ZeroGrad()
		}
		CrossEntropy(m.forward(x), y, 0).Backward()
		var upd []*T
		for _, p := range params {
			p.Assign(p.Detach().Sub(p.Grad.Mul(0.5)).Detach())
			upd = append(upd, p)
		}
		if err := tensor.Realize(upd...); err != nil {
			t.Fatal(err)
		}
	}
	fp, _ := Accuracy(m.forward(x), y).Item()
	if fp < 0.6 {
		t.Fatalf("float accuracy %.3f: the model did not learn the task", fp)
	}
	qs, err := QuantizeWeights(m, true)
	if err != nil || len(qs) != 2 || qs["l1.weight"] == nil {
		t.Fatalf("quantized %v, %v; want l1.weight and l2.weight", qs, err)
	}
	q8, _ := Accuracy(m.forward(x), y).Item()
	if math.Abs(fp-q8) > 0.01 {
		t.Fatalf("int8 accuracy %.4f vs float %.4f: more than one point apart", q8, fp)
	}
	t.Logf("accuracy float %.4f, int8 %.4f", fp, q8)
}
