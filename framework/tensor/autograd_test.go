package tensor

import (
	"math"
	"slices"
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
)

// numGrad is the central-difference gradient of f at x, element by element.
func numGrad(f func(*Tensor) *Tensor, x []float32, shape []int, eps float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		at := func(d float64) float64 {
			y := append([]float32(nil), x...)
			y[i] += float32(d)
			v, err := f(FromSlice(y, shape...)).Item()
			if err != nil {
				panic(err)
			}
			return v
		}
		out[i] = (at(eps) - at(-eps)) / (2 * eps)
	}
	return out
}

// TestGradientsMatchFiniteDifferences checks every primitive's derivative rule (through the
// API op that is that primitive, or the smallest one built on it) against central
// differences. The suite in testops compares the same against PyTorch; this one needs
// nothing but the framework.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	x := []float32{0.7, 1.3, 2.1, 0.4, 1.8, 0.9}
	other := FromSlice([]float32{1.1, 0.5, 2.5, 0.3, 1.7, 1.2}, 2, 3)
	cond := FromSlice([]bool{true, false, true, false, false, true}, 2, 3)
	for _, tc := range []struct {
		name string
		f    func(*Tensor) *Tensor
	}{
		{"EXP2", (*Tensor).Exp2}, {"LOG2", (*Tensor).Log2}, {"SIN", (*Tensor).Sin}, {"SQRT", (*Tensor).Sqrt},
		{"RECIP", (*Tensor).Reciprocal}, {"NEG", (*Tensor).Neg},
		{"CAST", func(x *Tensor) *Tensor { return x.Cast(dtype.Float16).Mul(0.5).Cast(dtype.Float32) }},
		{"ADD", func(x *Tensor) *Tensor { return x.Add(other) }}, {"MUL", func(x *Tensor) *Tensor { return x.Mul(other) }},
		{"MAX", func(x *Tensor) *Tensor { return x.Maximum(other) }},
		{"WHERE", func(x *Tensor) *Tensor { return cond.Where(x.Mul(x), other) }},
		{"MULADD", func(x *Tensor) *Tensor { return x.MulAdd(x, other).Add(other.MulAdd(x, 1)) }},
		{"INDEX_LOAD", func(x *Tensor) *Tensor { return x.IndexSelect(1, FromSlice([]int64{2, 0, 2})).Mul(other) }},
		{"SUM", func(x *Tensor) *Tensor { return x.Sum(1).Mul(x.Sum(1)) }},
		{"REDUCE_MAX", func(x *Tensor) *Tensor { return x.Max(0) }},
		{"RESHAPE", func(x *Tensor) *Tensor { return x.Reshape(3, 2).Mul(other.Reshape(3, 2)) }},
		{"PERMUTE", func(x *Tensor) *Tensor { return x.Permute(1, 0).Matmul(other) }},
		{"EXPAND", func(x *Tensor) *Tensor { return x.Reshape(2, 1, 3).Expand(2, 4, 3).Mul(x.Reshape(2, 1, 3).Exp()) }},
		{"PAD", func(x *Tensor) *Tensor { return x.Pad([][2]int{{1, 0}, {0, 2}}).Exp() }},
		{"SHRINK", func(x *Tensor) *Tensor { return x.Shrink([][2]int{{0, 1}, {1, 3}}).Log() }},
		{"FLIP", func(x *Tensor) *Tensor { return x.Flip(1).Mul(other) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loss := func(x *Tensor) *Tensor { return tc.f(x).Mul(tc.f(x)).Sum() }
			xt := FromSlice(x, 2, 3).SetRequiresGrad(true)
			loss(xt).Backward()
			got, err := xt.Grad.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			eps := 1e-2
			if tc.name == "CAST" { // float16 steps are 1e-3 apart near 1: difference across more of them
				eps = 0.25
			}
			want := numGrad(loss, x, []int{2, 3}, eps)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 2e-2*(1+math.Abs(want[i])) {
					t.Fatalf("d/dx[%d] = %v, finite differences say %v (all: %v vs %v)", i, got[i], want[i], got, want)
				}
			}
		})
	}
}

func TestGradientsAccumulateAndDetach(t *testing.T) {
	x := FromSlice([]float32{1, 2, 3}, 3).SetRequiresGrad(true)
	x.Mul(x).Sum().Backward()
	x.Mul(3).Sum().Backward()
	g, _ := x.Grad.Float32s()
	if g[0] != 5 || g[1] != 7 || g[2] != 9 { // 2x + 3
		t.Fatalf("accumulated grad %v, want [5 7 9]", g)
	}
	x.ZeroGrad()
	x.Mul(x.Detach()).Sum().Backward()
	g, _ = x.Grad.Float32s()
	if g[0] != 1 || g[2] != 3 {
		t.Fatalf("grad through a detached factor %v, want x itself", g)
	}
	var y *Tensor
	NoGrad(func() { y = x.Mul(2) })
	if y.Sources() != nil {
		t.Fatal("a tensor made under NoGrad remembers its sources")
	}
	if err := Try(func() { x.Sum().Mul(x).Backward() }); err == nil {
		t.Fatal("Backward of a non-scalar did not refuse")
	}
}

// TestIndexSelectGradientSumsRepeatedPicks pins IndexSelect's scatter-add gradient with fewer
// picks than rows, by the k×k matmul and by the sort and segmented scan (scanAbove 0), against
// sums over the picks: repeated picks add up, unpicked rows get zero.
func TestIndexSelectGradientSumsRepeatedPicks(t *testing.T) {
	defer func(v int) { scanAbove = v }(scanAbove)
	for _, tc := range []struct {
		name                string
		shape               []int
		ax, outer, n, inner int
	}{
		{"rows of a table", []int{120, 3}, 0, 1, 120, 3},
		{"a middle axis", []int{2, 90, 3}, 1, 2, 90, 3},
	} {
		for _, above := range []int{1 << 28, 0} {
			scanAbove = above
			ids := make([]int64, 75) // odd picks rows 1, 3, 5, 7, 9 (7 or 8 each), even ones row 4 (38)
			for i := range ids {
				ids[i] = int64(i*7) % 10
				if i%2 == 0 {
					ids[i] = 4
				}
			}
			k := len(ids)
			x := Rand(tc.shape...).SetRequiresGrad(true)
			gs := make([]float32, tc.outer*k*tc.inner)
			for i := range gs {
				gs[i] = float32(i%13) - 6
			}
			g := FromSlice(gs, tc.outer, k, tc.inner)
			x.IndexSelect(tc.ax, FromSlice(ids)).Reshape(tc.outer, k, tc.inner).Mul(g).Sum().Backward()
			got, err := x.Grad.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float64, tc.outer*tc.n*tc.inner)
			for o := range tc.outer {
				for j, id := range ids {
					for i := range tc.inner {
						want[(o*tc.n+int(id))*tc.inner+i] += float64(gs[(o*k+j)*tc.inner+i])
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (scanAbove %d): gradient %v, want %v", tc.name, above, got, want)
			}
		}
	}
}
