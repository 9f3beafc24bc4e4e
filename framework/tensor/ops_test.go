package tensor

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
	rt "github.com/gradforge/gradforge/framework/runtime"
)

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-5+1e-5*math.Abs(b)
}

func expect(t *testing.T, name string, x *Tensor, shape []int, want ...float64) {
	t.Helper()
	got, err := x.Float64s()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !slices.Equal(x.Shape(), shape) {
		t.Errorf("%s: shape %v, want %v", name, x.Shape(), shape)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d values %v, want %d %v", name, len(got), got, len(want), want)
	}
	for i := range want {
		if !near(got[i], want[i]) {
			t.Errorf("%s: got %v, want %v", name, got, want)
			return
		}
	}
}

// m is [[1, 2, 3], [4, 5, 6]].
func m() *Tensor { return FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3) }

func TestElementwise(t *testing.T) {
	x := FromSlice([]float32{-2, -0.5, 0, 1, 3})
	s := []int{5}
	e := math.E
	expect(t, "Add", x.Add(1), s, -1, 0.5, 1, 2, 4)
	expect(t, "Sub", x.Sub(x.Mul(2)), s, 2, 0.5, 0, -1, -3)
	expect(t, "Div", x.Div(2), s, -1, -0.25, 0, 0.5, 1.5)
	expect(t, "Neg", x.Neg(), s, 2, 0.5, 0, -1, -3)
	expect(t, "Exp", x.Exp(), s, 1/(e*e), 1/math.Sqrt(e), 1, e, e*e*e)
	expect(t, "Log", x.Abs().Log(), s, math.Ln2, -math.Ln2, math.Inf(-1), 0, math.Log(3))
	expect(t, "Exp2", x.Exp2(), s, 0.25, 1/math.Sqrt2, 1, 2, 8)
	expect(t, "Log2 of negative is NaN", x.Log2(), s, math.NaN(), math.NaN(), math.Inf(-1), 0, math.Log2(3))
	expect(t, "Sqrt", x.Abs().Sqrt(), s, math.Sqrt2, math.Sqrt(0.5), 0, 1, math.Sqrt(3))
	expect(t, "Rsqrt", FromSlice([]float32{4, 0.25}).Rsqrt(), []int{2}, 0.5, 2)
	expect(t, "Sin", x.Sin(), s, math.Sin(-2), math.Sin(-0.5), 0, math.Sin(1), math.Sin(3))
	expect(t, "Cos", x.Cos(), s, math.Cos(-2), math.Cos(-0.5), 1, math.Cos(1), math.Cos(3))
	expect(t, "Abs", x.Abs(), s, 2, 0.5, 0, 1, 3)
	expect(t, "Sign", x.Sign(), s, -1, -1, 0, 1, 1)
	expect(t, "Relu", x.Relu(), s, 0, 0, 0, 1, 3)
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	expect(t, "Sigmoid", x.Sigmoid(), s, sig(-2), sig(-0.5), 0.5, sig(1), sig(3))
	expect(t, "Tanh", x.Tanh(), s, math.Tanh(-2), math.Tanh(-0.5), 0, math.Tanh(1), math.Tanh(3))
	gelu := func(v float64) float64 {
		return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
	}
	expect(t, "Gelu", x.Gelu(), s, gelu(-2), gelu(-0.5), 0, gelu(1), gelu(3))
	expect(t, "Silu", x.Silu(), s, -2*sig(-2), -0.5*sig(-0.5), 0, sig(1), 3*sig(3))
	expect(t, "Maximum", x.Maximum(0.5), s, 0.5, 0.5, 0.5, 1, 3)
	expect(t, "Minimum", x.Minimum(0.5), s, -2, -0.5, 0, 0.5, 0.5)
	expect(t, "Clip", x.Clip(-1, 2), s, -1, -0.5, 0, 1, 2)
	expect(t, "Pow", x.Pow(2), s, 4, 0.25, 0, 1, 9)
	expect(t, "Pow odd integer keeps sign", x.Pow(3), s, -8, -0.125, 0, 1, 27)
	expect(t, "Pow fractional of negative is NaN", x.Pow(0.5), s, math.NaN(), math.NaN(), 0, 1, math.Sqrt(3))
	expect(t, "Pow zero exponent", x.Pow(0), s, 1, 1, 1, 1, 1)
	expect(t, "Eq", x.Eq(0), s, 0, 0, 1, 0, 0)
	expect(t, "Lt", x.Lt(0), s, 1, 1, 0, 0, 0)
	expect(t, "Gt", x.Gt(0), s, 0, 0, 0, 1, 1)
	expect(t, "Where", x.Gt(0).Where(x, x.Mul(10)), s, -20, -5, 0, 1, 3)
	expect(t, "Where with numbers", x.Lt(0).Where(-1.0, 1.0), s, -1, -1, 1, 1, 1)
	expect(t, "Reciprocal", FromSlice([]float32{2, -4}).Reciprocal(), []int{2}, 0.5, -0.25)
	// (1+2^-12)^2 = 1 + 2^-11 + 2^-24: only a single rounding keeps the 2^-24.
	u := FromSlice([]float32{1 + 1.0/4096}).Mul(1)
	expect(t, "MulAdd rounds once", u.MulAdd(u, -(1+1.0/2048)).Mul(1<<24), []int{1}, 1)
	expect(t, "MulAdd broadcasts", x.MulAdd(2, FromSlice([]float32{1}).Reshape(1)), s, -3, 0, 1, 3, 7)
}

func TestBroadcasting(t *testing.T) {
	row := FromSlice([]float32{10, 20, 30})
	col := FromSlice([]float32{1, 2}, 2, 1)
	expect(t, "matrix + row", m().Add(row), []int{2, 3}, 11, 22, 33, 14, 25, 36)
	expect(t, "col + row", col.Add(row), []int{2, 3}, 11, 21, 31, 12, 22, 32)
	expect(t, "scalar tensor", m().Mul(Scalar(2)), []int{2, 3}, 2, 4, 6, 8, 10, 12)
	if err := Try(func() { m().Add(FromSlice([]float32{1, 2})) }); err == nil ||
		!strings.Contains(err.Error(), "Add") || !strings.Contains(err.Error(), "[2 3]") || !strings.Contains(err.Error(), "[2]") {
		t.Fatalf("a bad broadcast should name the op and both shapes, got %v", err)
	}
}

func TestReductions(t *testing.T) {
	expect(t, "Sum all", m().Sum(), []int{}, 21)
	expect(t, "Sum axis 0", m().Sum(0), []int{3}, 5, 7, 9)
	expect(t, "Sum axis -1 keepdim", m().Sum(-1, KeepDim), []int{2, 1}, 6, 15)
	expect(t, "Mean", m().Mean(1), []int{2}, 2, 5)
	expect(t, "Max", m().Max(0), []int{3}, 4, 5, 6)
	rows := make([]float32, 2*100)
	for i := range rows {
		rows[i] = float32(i % 100)
	}
	rows[100+37] = float32(math.NaN())
	expect(t, "row max (vectorized) keeps NaN", FromSlice(rows, 2, 100).Max(1), []int{2}, 99, math.NaN())
	expect(t, "row max of -inf", FromSlice([]float32{float32(math.Inf(-1)), float32(math.Inf(-1))}, 1, 2).Max(1), []int{1}, math.Inf(-1))
	expect(t, "Min", m().Min(1), []int{2}, 1, 4)
	expect(t, "Var", m().Var(1), []int{2}, 1, 1)
	expect(t, "Std all", m().Std(), []int{}, math.Sqrt(3.5))
	expect(t, "Argmax", FromSlice([]float32{1, 7, 7, 2, 9, 0}, 2, 3).Argmax(1), []int{2}, 1, 1)
	expect(t, "Argmax flat", FromSlice([]float32{1, 7, 7, 2, 9, 0}, 2, 3).Argmax(), []int{}, 4)
	expect(t, "Argmin", FromSlice([]float32{3, 1, 2}).Argmin(), []int{}, 1)
	den := math.Exp(1) + math.Exp(2) + math.Exp(3)
	expect(t, "Softmax", m().Softmax(1), []int{2, 3}, math.Exp(1)/den, math.Exp(2)/den, math.Exp(3)/den,
		math.Exp(1)/den, math.Exp(2)/den, math.Exp(3)/den)
	expect(t, "LogSoftmax", m().LogSoftmax(1), []int{2, 3}, 1-math.Log(den), 2-math.Log(den), 3-math.Log(den),
		1-math.Log(den), 2-math.Log(den), 3-math.Log(den))
	expect(t, "Softmax of huge values is stable", FromSlice([]float32{1000, 1000}).Softmax(0), []int{2}, 0.5, 0.5)
	// x/3 rounds by hundreds at 1e10: the max and the exponents must see the same rounding
	// (fused into a multiply-add in one kernel and not in another, exp gives inf*0 or 0*inf = NaN).
	huge := FromSlice(slices.Repeat([]float32{3e10}, 12), 4, 3)
	quarter := slices.Repeat([]float64{0.25}, 12)
	expect(t, "Softmax of huge products", huge.Mul(1.0/3).Softmax(0), []int{4, 3}, quarter...)
	expect(t, "Softmax of a huge mean", huge.Mean(1).Softmax(0), []int{4}, quarter[:4]...)
	expect(t, "Sum of bools counts", FromSlice([]bool{true, false, true}).Sum(), []int{}, 2)
	if got := FromSlice([]bool{true}).Sum().DType(); got != dtype.Int64 {
		t.Errorf("Sum of bool has dtype %s, want int64", got)
	}
	expect(t, "Sum over a zero-size dim is 0", Zeros(2, 0).Sum(1), []int{2}, 0, 0)
	expect(t, "two-stage full sum", Ones(1<<19).Sum(), []int{}, 1<<19)
	expect(t, "two-stage full max keeps dims", Arange(0, 1<<19, 1).Reshape(512, 1024).Max(KeepDim), []int{1, 1}, 1<<19-1)
	cols := make([]float64, 32)
	for j := range cols {
		cols[j] = 64512 + 64*float64(j) // Σ_i (32i + j) over 64 rows
	}
	expect(t, "column sums (vectorized upcast)", Arange(0, 64*32, 1).Cast(dtype.Float32).Reshape(64, 32).Sum(0), []int{32}, cols...)
	big := Ones(300, 500).Sum()
	expect(t, "Sum of 150000 ones", big, []int{}, 150000)
	if err := Try(func() { m().Sum(2) }); err == nil || !strings.Contains(err.Error(), "axis 2") {
		t.Fatalf("bad axis should panic naming it, got %v", err)
	}
}

func TestMovement(t *testing.T) {
	expect(t, "Reshape -1", m().Reshape(3, -1), []int{3, 2}, 1, 2, 3, 4, 5, 6)
	expect(t, "Transpose", m().Transpose(0, 1), []int{3, 2}, 1, 4, 2, 5, 3, 6)
	expect(t, "Permute then flatten copies in the new order", m().Permute(1, 0).Flatten(), []int{6}, 1, 4, 2, 5, 3, 6)
	expect(t, "Expand", FromSlice([]float32{1, 2}, 2, 1).Expand(2, 3), []int{2, 3}, 1, 1, 1, 2, 2, 2)
	expect(t, "IndexSelect rows", m().IndexSelect(0, FromSlice([]int64{1, 0, 1})), []int{3, 3}, 4, 5, 6, 1, 2, 3, 4, 5, 6)
	expect(t, "IndexSelect by a 2-D index", m().IndexSelect(1, FromSlice([]int32{2, 0, 1, 1}, 2, 2)), []int{2, 2, 2}, 3, 1, 2, 2, 6, 4, 5, 5)
	expect(t, "IndexSelect of a fused value, clamped", m().Permute(1, 0).Mul(10).IndexSelect(0, FromSlice([]int64{-1, 7})), []int{2, 2}, 10, 40, 30, 60)
	expect(t, "Pad", FromSlice([]float32{1, 2}).Pad([][2]int{{1, 2}}), []int{5}, 0, 1, 2, 0, 0)
	expect(t, "Pad with a value", FromSlice([]float32{1, 2}).Pad([][2]int{{1, 0}}, 9), []int{3}, 9, 1, 2)
	expect(t, "Pad negative cuts", m().Pad([][2]int{{0, 0}, {-1, 0}}), []int{2, 2}, 2, 3, 5, 6)
	expect(t, "Shrink", m().Shrink([][2]int{{1, 2}, {0, 2}}), []int{1, 2}, 4, 5)
	expect(t, "Slice negative", m().Slice(1, -2, 3), []int{2, 2}, 2, 3, 5, 6)
	expect(t, "Flip", m().Flip(0, 1), []int{2, 3}, 6, 5, 4, 3, 2, 1)
	expect(t, "Squeeze", Ones(1, 2, 1).Squeeze(), []int{2}, 1, 1)
	expect(t, "Unsqueeze", FromSlice([]float32{1, 2}).Unsqueeze(-1), []int{2, 1}, 1, 2)
	expect(t, "Cat", m().Cat(0, FromSlice([]float32{7, 8, 9}, 1, 3)), []int{3, 3}, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	expect(t, "Cat axis 1", m().Cat(1, m()), []int{2, 6}, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6)
	expect(t, "Stack", FromSlice([]float32{1, 2}).Stack(1, FromSlice([]float32{3, 4})), []int{2, 2}, 1, 3, 2, 4)
	expect(t, "Repeat", FromSlice([]float32{1, 2}).Repeat(2, 2), []int{2, 4}, 1, 2, 1, 2, 1, 2, 1, 2)
	expect(t, "Flip of a permuted pad", m().Pad([][2]int{{0, 1}, {1, 0}}).Permute(1, 0).Flip(1), []int{4, 3},
		0, 0, 0, 0, 4, 1, 0, 5, 2, 0, 6, 3)
	if err := Try(func() { m().Reshape(4, 2) }); err == nil || !strings.Contains(err.Error(), "Reshape") {
		t.Fatalf("bad reshape should panic naming Reshape, got %v", err)
	}
}

func TestMatmul(t *testing.T) {
	a := m()
	b := FromSlice([]float32{1, 0, 0, 1, 1, 1}, 3, 2)
	expect(t, "matrix", a.Matmul(b), []int{2, 2}, 4, 5, 10, 11)
	expect(t, "vector @ matrix", FromSlice([]float32{1, 1}).Matmul(a), []int{3}, 5, 7, 9)
	expect(t, "matrix @ vector", a.Matmul(FromSlice([]float32{1, 0, -1})), []int{2}, -2, -2)
	batch := a.Reshape(1, 2, 3).Expand(2, 2, 3).Mul(FromSlice([]float32{1, 2}, 2, 1, 1))
	expect(t, "batched with broadcast", batch.Matmul(b), []int{2, 2, 2}, 4, 5, 10, 11, 8, 10, 20, 22)
	expect(t, "Eye is the identity", a.Matmul(Eye(3)), []int{2, 3}, 1, 2, 3, 4, 5, 6)
	if err := Try(func() { a.Matmul(a) }); err == nil || !strings.Contains(err.Error(), "[2 3] and [2 3]") {
		t.Fatalf("bad matmul should name both shapes, got %v", err)
	}
}

func TestDTypes(t *testing.T) {
	i := FromSlice([]int32{7, -7, 2})
	expect(t, "int + int stays int", i.Add(1), []int{3}, 8, -6, 3)
	if i.Add(1).DType() != dtype.Int32 || i.Add(0.5).DType() != dtype.Float32 {
		t.Errorf("int32+1 is %s, int32+0.5 is %s", i.Add(1).DType(), i.Add(0.5).DType())
	}
	expect(t, "int / int is true division", i.Div(2), []int{3}, 3.5, -3.5, 1)
	expect(t, "IntDiv truncates", i.IntDiv(2), []int{3}, 3, -3, 1)
	expect(t, "Mod", i.Mod(3), []int{3}, 1, -1, 2)
	expect(t, "integer division by zero gives 0 instead of crashing", i.IntDiv(i.Mul(0)), []int{3}, 0, 0, 0)
	expect(t, "float to int casts truncate", FromSlice([]float32{1.9, -1.9}).Cast(dtype.Int32), []int{2}, 1, -1)
	expect(t, "to bool", FromSlice([]float32{0, 2}).Cast(dtype.Bool), []int{2}, 0, 1)
	tf := FromSlice([]bool{true, true, false})
	expect(t, "bool + bool is logical or", tf.Add(tf).Cast(dtype.Int32), []int{3}, 1, 1, 0)
	expect(t, "bool * bool is logical and", tf.Mul(tf.Flip(0)).Cast(dtype.Int32), []int{3}, 0, 1, 0)
	expect(t, "uint8 wraps", FromSlice([]uint8{250}).Add(10), []int{1}, 4)
	expect(t, "int8 min", FromSlice([]int8{3, -5}).Min(), []int{}, -5)
	expect(t, "int64", FromSlice([]int64{1 << 40}).Mul(2), []int{1}, 1<<41)
	h := FromSlice([]float32{1, 1.0 / 3, 65504, 1e6}).Cast(dtype.Float16)
	expect(t, "float16 rounds and overflows to inf", h, []int{4}, 1, float64(dtype.HalfToFloat32(dtype.Float32ToHalf(1.0/3))), 65504, math.Inf(1))
	expect(t, "float16 math computes in float32", h.Slice(0, 0, 2).Mul(3), []int{2}, 3, float64(dtype.HalfToFloat32(dtype.Float32ToHalf(3*dtype.HalfToFloat32(dtype.Float32ToHalf(1.0/3))))))
	bf := FromSlice([]float32{1, 3.14159}).Cast(dtype.BFloat16)
	expect(t, "bfloat16", bf, []int{2}, 1, float64(dtype.BFloat16ToFloat32(dtype.Float32ToBFloat16(3.14159))))
	if bf.Add(h.Slice(0, 0, 2)).DType() != dtype.Float32 {
		t.Error("bfloat16 + float16 should be float32")
	}
	fine := FromSlice([]float32{1 + 1.0/256, 1 + 1.0/1024, 1 + 1.0/4096}).Mul(1)
	round := func(d dtype.DType) *Tensor { return fine.Cast(d).Cast(dtype.Float32).Mul(1) }
	expect(t, "bfloat16 cast rounds inside a kernel", round(dtype.BFloat16), []int{3}, 1, 1, 1)
	expect(t, "float16 cast rounds inside a kernel", round(dtype.Float16), []int{3}, 1+1.0/256, 1+1.0/1024, 1)
	expect(t, "bitcast float to int", FromSlice([]float32{1}).Bitcast(dtype.Int32), []int{1}, 0x3f800000)
	expect(t, "Sum of float16 accumulates in float32", Ones(4096).Cast(dtype.Float16).Sum(), []int{}, 4096)
	if Ones(3).Cast(dtype.Float16).Sum().DType() != dtype.Float16 {
		t.Error("Sum of float16 should return float16")
	}
}

func TestCreationAndDataOut(t *testing.T) {
	expect(t, "Zeros", Zeros(2), []int{2}, 0, 0)
	expect(t, "Full", Full(2.5, 1, 2), []int{1, 2}, 2.5, 2.5)
	expect(t, "Arange", Arange(1, 7, 2), []int{3}, 1, 3, 5)
	expect(t, "Arange float", Arange(0, 1, 0.5), []int{2}, 0, 0.5)
	ManualSeed(42)
	r1, _ := Rand(100).Float32s()
	ManualSeed(42)
	r2, _ := Rand(100).Float32s()
	if !slices.Equal(r1, r2) {
		t.Error("ManualSeed does not make Rand repeatable")
	}
	for _, v := range r1 {
		if v < 0 || v >= 1 {
			t.Fatalf("Rand value %g outside [0, 1)", v)
		}
	}
	n, _ := Randn(20000).Float64s()
	mean, sq := 0.0, 0.0
	for _, v := range n {
		mean += v / float64(len(n))
		sq += v * v / float64(len(n))
	}
	if math.Abs(mean) > 0.05 || math.Abs(sq-1) > 0.05 {
		t.Errorf("Randn mean %g, variance %g", mean, sq)
	}
	v, err := m().Sum().Item()
	if err != nil || v != 21 {
		t.Errorf("Item = %v, %v", v, err)
	}
	if _, err := m().Item(); err == nil {
		t.Error("Item of 6 elements should fail")
	}
	s, _ := FromSlice([]bool{true, false}).ToSlice()
	if !slices.Equal(s.([]bool), []bool{true, false}) {
		t.Errorf("ToSlice of bools = %v", s)
	}
	if got := m().String(); got != "tensor([[1, 2, 3], [4, 5, 6]], dtype=float32)" {
		t.Errorf("String = %s", got)
	}
	if got := Arange(0, 2000, 1).String(); got != "tensor([0, 1, 2, ..., 1997, 1998, 1999], dtype=int32)" {
		t.Errorf("big tensors should be summarised, got %s", got)
	}
	c, err := m().To("cpu")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "To", c, []int{2, 3}, 1, 2, 3, 4, 5, 6)
	if err := Try(func() { FromSlice([]float32{1, 2, 3}, 2, 2) }); err == nil {
		t.Error("FromSlice with a wrong shape should panic")
	}
}

func TestAssignAndDetach(t *testing.T) {
	w := FromSlice([]float32{1, 2})
	w.Assign(w.Sub(w.Mul(0.5)))
	expect(t, "Assign", w, []int{2}, 0.5, 1)
	if d := w.Add(1).Detach(); d.Sources() != nil {
		t.Error("Detach kept sources")
	}
	if w.Add(1).Sources()[0] != w {
		t.Error("an op's sources should be its input tensors")
	}
}

func TestLargeKernelSplitsAcrossCores(t *testing.T) {
	n := 1 << 20
	x := Arange(0, float64(n), 1).Cast(dtype.Float32).Mul(2).Add(1)
	got, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != float32(2*i+1) {
			t.Fatalf("x[%d] = %g, want %d", i, v, 2*i+1)
		}
	}
	s, _ := Ones(1024, 1024).Sum(0).Float32s()
	for i, v := range s {
		if v != 1024 {
			t.Fatalf("column sum %d = %g", i, v)
		}
	}
}

// TestMatmulUpcast covers the upcast path (several outputs per loop iteration) against a
// plain Go triple loop, with a bias and ReLU fused after the reduce.
// TestMatmulPaddedInputs runs the vectorized tile over masked (padded) loads on both sides:
// the padding must read as zeros and never touch memory outside the buffers.
func TestMatmulPaddedInputs(t *testing.T) {
	ManualSeed(9)
	a, b := Randn(8, 24), Randn(24, 48)
	want, err := a.Matmul(b).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	// Zero columns of a meet extra rows of b; zero columns of b are cut off again.
	ap := a.Pad([][2]int{{0, 0}, {4, 4}})
	bp := Randn(4, 48).Cat(0, b, Randn(4, 48)).Mul(0).Add(b.Pad([][2]int{{4, 4}, {0, 0}})).Pad([][2]int{{0, 0}, {0, 16}})
	got, err := ap.Matmul(bp).Slice(1, 0, 48).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4 {
			t.Fatalf("out[%d] = %g, want %g", i, got[i], want[i])
		}
	}
}

func TestMatmulUpcast(t *testing.T) {
	const n, k, m = 8, 24, 48
	ManualSeed(7)
	a, b, bias := Randn(n, k), Randn(k, m), Randn(m)
	av, _ := a.Float32s()
	bv, _ := b.Float32s()
	cv, _ := bias.Float32s()
	got, err := a.Matmul(b).Add(bias).Relu().Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for j := range m {
			var s float64
			for x := range k {
				s += float64(av[i*k+x]) * float64(bv[x*m+j])
			}
			want := max(s+float64(cv[j]), 0)
			if !near(float64(got[i*m+j]), want) && math.Abs(float64(got[i*m+j])-want) > 1e-4 {
				t.Fatalf("out[%d,%d] = %g, want %g", i, j, got[i*m+j], want)
			}
		}
	}
}

// TestDeadTensorsReleaseMemory makes many large results and drops them: the device must
// reuse their memory instead of mapping more for each.
func TestDeadTensorsReleaseMemory(t *testing.T) {
	d, err := rt.Get("CPU")
	if err != nil {
		t.Fatal(err)
	}
	cpu := d.(*rt.CPU)
	x := Ones(1 << 20) // 4 MiB per result
	if err := x.Realize(); err != nil {
		t.Fatal(err)
	}
	before := cpu.Mapped()
	for range 30 {
		if err := x.Add(1).Realize(); err != nil {
			t.Fatal(err)
		}
	}
	// Collections start after 64 MiB of allocations; without them this would grow 120 MiB.
	if grown := cpu.Mapped() - before; grown > 80<<20 {
		t.Fatalf("30 dead 4 MiB results grew mapped memory by %d MiB", grown>>20)
	}
}
