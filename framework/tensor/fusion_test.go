package tensor

import (
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
	rt "github.com/gradforge/gradforge/framework/runtime"

	"github.com/gradforge/gradforge/framework/schedule"
)

func kernels(t testing.TB, x *Tensor) int {
	t.Helper()
	return len(schedule.Create(x.Node()).Items)
}

func TestFusionKernelCounts(t *testing.T) {
	a, b, c := Rand(16, 16), Rand(16, 16), Rand(16, 16)
	d, e, f := Rand(16, 16), Rand(16, 16), Rand(16, 16)
	col := Rand(16, 1)
	s := a.Sum(1, KeepDim)
	stages := 1 // a GPU splits a long reduce across blocks inside one kernel
	if d, err := rt.Get(a.Device()); err == nil && d.Language() == "c" {
		stages = 2
	}
	cases := []struct {
		name string
		x    *Tensor
		want int
	}{
		{"a*b+c is one kernel", a.Mul(b).Add(c), 1},
		{"a product of six tensors is one kernel", a.Mul(b).Mul(c).Mul(d).Mul(e).Mul(f), 1},
		{"elementwise into a reduce fuses", a.Mul(b).Add(1).Sum(1), 1},
		{"elementwise after a reduce fuses", a.Sum(1).Mul(2).Add(col.Reshape(16)), 1},
		{"matmul is one kernel", a.Matmul(b), 1},
		{"matmul plus bias and relu is one kernel", a.Matmul(b).Add(c).Relu(), 1},
		{"movement ops are free", a.Permute(1, 0).Flip(0).Pad([][2]int{{1, 1}, {0, 0}}).Mul(2), 1},
		{"cat is one kernel", a.Cat(0, b, c), 1},
		{"a reduce broadcast along its own rows fuses", a.Sub(a.Max(1, KeepDim)), 1},
		{"a reduce over other rows needs its own buffer", a.Sub(a.Max(1, KeepDim)).Sum(0), 2},
		{"softmax is one kernel", a.Softmax(1), 1},
		{"log softmax is one kernel", a.LogSoftmax(1), 1},
		{"variance is one kernel", a.Var(1), 1},
		{"few long rows keep separate reduce kernels", Rand(4, 1<<13).Softmax(1), 3},
		{"softmax of a matmul computes the matmul once", a.Matmul(b).Softmax(1), 2},
		{"a reduce used twice is computed once", s.Add(s.Exp()).Sum(), 2},
		{"a reduce stored for another kernel is loaded, not recomputed", Rand(1000, 169).Add(0.02).Relu().Mean(1).Softmax(0), 2},
		{"contiguous splits a chain", a.Mul(b).Contiguous().Add(c), 2},
		{"a constant costs one kernel", Full(3, 4, 4), 1},
		{"a long full reduction runs in two stages on the CPU", Rand(1 << 18).Sum(), stages},
		{"conv2d with bias and relu is one kernel", Rand(2, 3, 8, 8).Conv2d(Rand(4, 3, 3, 3), Rand(4), Window{Padding: []int{1}}).Relu(), 1},
		{"max pooling is one kernel", Rand(2, 3, 8, 8).MaxPool([]int{2, 2}, Window{}), 1},
	}
	for _, c := range cases {
		if got := kernels(t, c.x); got != c.want {
			t.Errorf("%s: %d kernels, want %d", c.name, got, c.want)
		}
	}
}

func TestRealizedTensorsCostNothing(t *testing.T) {
	x := Rand(8).Mul(2)
	if err := x.Realize(); err != nil {
		t.Fatal(err)
	}
	if n := kernels(t, x); n != 0 {
		t.Fatalf("a realized tensor scheduled %d kernels", n)
	}
	if n := kernels(t, x.Reshape(2, 4)); n != 0 {
		t.Fatalf("a reshape of a realized tensor scheduled %d kernels (it shares the buffer)", n)
	}
	if n := kernels(t, x.Add(1)); n != 1 {
		t.Fatalf("x+1 scheduled %d kernels, want 1", n)
	}
}

func TestKernelCacheKey(t *testing.T) {
	a, b := Rand(4, 4), Rand(4, 4)
	key := func(x *Tensor) string { return schedule.Create(x.Node()).Items[0].AST.Key() }
	base := key(a.Mul(b).Add(1))
	if key(a.Mul(b).Add(1)) != base {
		t.Error("identical graphs should share a kernel")
	}
	for name, x := range map[string]*Tensor{
		"another constant":   a.Mul(b).Add(2),
		"a transposed input": a.Mul(b.T()).Add(1),
		"another op":         a.Add(b).Add(1),
		"another dtype":      a.Mul(b).Add(1).Cast(dtype.Float16),
	} {
		if key(x) == base {
			t.Errorf("%s should not share the kernel", name)
		}
	}
}

// TestFusedRowsRoundLikeStoredRows pins that a reduce in a kernel that passes over the row
// again gives the same float16 values as the schedule that stores it first: the fused kernel
// rounds its float accumulator to float16 before later passes read it. (y is float16 but
// computed in float inside the kernel, so its max is not a float16 until rounded.)
func TestFusedRowsRoundLikeStoredRows(t *testing.T) {
	x := Rand(8, 300).Mul(6).Cast(dtype.Float16)
	if err := x.Realize(); err != nil {
		t.Fatal(err)
	}
	y := x.Mul(1.1)
	fused := y.Sub(y.Max(1, KeepDim))
	split := y.Sub(y.Max(1, KeepDim).Contiguous())
	if n := kernels(t, fused); n != 1 || fused.DType() != dtype.Float16 {
		t.Fatalf("fused is %d kernels of %s", n, fused.DType())
	}
	a, err := fused.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	b, err := split.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("element %d: fused %v, stored max %v", i, a[i], b[i])
		}
	}
}
