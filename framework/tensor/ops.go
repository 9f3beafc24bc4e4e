package tensor

import (
	"math"
	"slices"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
)

// --- primitives: the only places nodes are made ---

func (t *Tensor) unary(op lazy.Op) *Tensor { return apply(op, t.DType(), t.node.Shape, nil, t) }

func (t *Tensor) binary(op lazy.Op, o *Tensor) *Tensor {
	dt := t.DType()
	if op == lazy.CmpLT || op == lazy.CmpNE {
		dt = dtype.Bool
	}
	return apply(op, dt, t.node.Shape, nil, t, o)
}

// float returns t, cast to float32 unless it already is a float.
func (t *Tensor) float() *Tensor {
	if t.DType().IsFloat() {
		return t
	}
	return t.Cast(dtype.Float32)
}

// castValue is what v becomes when stored as dt.
func castValue(v float64, dt dtype.DType) float64 {
	switch {
	case dt == dtype.Bool:
		if v != 0 {
			return 1
		}
		return 0
	case dt.IsInt() && !math.IsNaN(v) && !math.IsInf(v, 0):
		return math.Trunc(v)
	}
	return v
}

// Cast converts the elements to dt (floats truncate toward zero into ints; non-zero is true).
func (t *Tensor) Cast(dt dtype.DType) *Tensor {
	if dt == t.DType() {
		return t
	}
	if t.node.Op == lazy.Const { // constants fold: no kernel for a cast of a fill
		c := t.FullLike(0)
		c.node.DType, c.node.Arg = dt, castValue(t.node.Arg.(float64), dt)
		return c
	}
	return apply(lazy.Cast, dt, t.node.Shape, nil, t)
}

// Bitcast reinterprets the bits of every element as dt, which must have the same size.
func (t *Tensor) Bitcast(dt dtype.DType) *Tensor {
	if dt.Size() != t.DType().Size() || dt.Size() == 2 {
		fail("Bitcast", "cannot bitcast %s to %s (sizes must match; 16-bit floats are not supported)", t.DType(), dt)
	}
	return apply(lazy.Bitcast, dt, t.node.Shape, nil, t)
}

// operand turns the argument of a binary op into a tensor: a *Tensor, or a Go number that
// takes t's dtype (a fractional number makes an integer tensor's op float32).
func (t *Tensor) operand(op string, x any) *Tensor {
	var v float64
	switch x := x.(type) {
	case *Tensor:
		return x
	case float64:
		v = x
	case float32:
		v = float64(x)
	case int:
		v = float64(x)
	case int32:
		v = float64(x)
	case int64:
		v = float64(x)
	case bool:
		v = float64(b2u(x))
	default:
		fail(op, "operand of type %T (want *Tensor or a number)", x)
	}
	dt := t.DType()
	if (!dt.IsFloat() && v != math.Trunc(v)) || (dt == dtype.Bool && v != 0 && v != 1) {
		dt = dtype.Float32
		if v == math.Trunc(v) {
			dt = dtype.Int32
		}
	}
	c := t.FullLike(0)
	c.node.DType, c.node.Arg, c.node.Shape = dt, castValue(v, dt), nil
	return c
}

// broadcast brings t and x (tensor or number) to one shape and one dtype, NumPy style.
func (t *Tensor) broadcast(op string, x any) (*Tensor, *Tensor) {
	o := t.operand(op, x)
	dt := dtype.Promote(t.DType(), o.DType())
	a, b := t.Cast(dt), o.Cast(dt)
	shape := broadcastShape(op, a.node.Shape, b.node.Shape)
	return a.BroadcastTo(shape...), b.BroadcastTo(shape...)
}

func broadcastShape(op string, a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := range n {
		x, y := dimFromEnd(a, n-1-i), dimFromEnd(b, n-1-i)
		switch {
		case x == y || y == 1:
			out[i] = x
		case x == 1:
			out[i] = y
		default:
			fail(op, "shapes %v and %v do not broadcast", a, b)
		}
	}
	return out
}

func dimFromEnd(s []int, k int) int {
	if k >= len(s) {
		return 1
	}
	return s[len(s)-1-k]
}

// BroadcastTo expands t to shape, adding leading dims as needed.
func (t *Tensor) BroadcastTo(shape ...int) *Tensor {
	if slices.Equal(t.node.Shape, shape) {
		return t
	}
	if len(shape) < t.Ndim() {
		fail("BroadcastTo", "cannot broadcast %v to fewer dims %v", t.node.Shape, shape)
	}
	s := t.node.Shape
	if len(shape) > len(s) {
		s = append(make([]int, len(shape)-len(s)), s...)
		for i := range len(shape) - t.Ndim() {
			s[i] = 1
		}
		t = t.Reshape(s...)
	}
	for i := range shape {
		if s[i] != shape[i] && s[i] != 1 {
			fail("BroadcastTo", "cannot broadcast %v to %v", t.node.Shape, shape)
		}
	}
	if t.node.Op == lazy.Const { // a fill is a fill at any shape
		c := t.FullLike(t.node.Arg.(float64))
		c.node.Shape = slices.Clone(shape)
		return c
	}
	return apply(lazy.Expand, t.DType(), shape, slices.Clone(shape), t)
}

// --- elementwise math ---

// Add is t + x.
func (t *Tensor) Add(x any) *Tensor { a, b := t.broadcast("Add", x); return a.binary(lazy.Add, b) }

// Sub is t - x.
func (t *Tensor) Sub(x any) *Tensor {
	a, b := t.broadcast("Sub", x)
	return a.binary(lazy.Add, b.Neg())
}

// Mul is t * x.
func (t *Tensor) Mul(x any) *Tensor { a, b := t.broadcast("Mul", x); return a.binary(lazy.Mul, b) }

// Div is true division t / x (integers divide as float32, as in PyTorch).
func (t *Tensor) Div(x any) *Tensor {
	a, b := t.broadcast("Div", x)
	return a.float().binary(lazy.Mul, b.float().Reciprocal())
}

// IntDiv divides integers, truncating toward zero (C semantics).
func (t *Tensor) IntDiv(x any) *Tensor {
	a, b := t.broadcast("IntDiv", x)
	if a.DType().IsFloat() {
		fail("IntDiv", "needs integers, got %s", a.DType())
	}
	return a.binary(lazy.IDiv, b)
}

// Mod is the C remainder of integers (sign of t).
func (t *Tensor) Mod(x any) *Tensor {
	a, b := t.broadcast("Mod", x)
	if a.DType().IsFloat() {
		fail("Mod", "needs integers, got %s", a.DType())
	}
	return a.binary(lazy.Mod, b)
}

// Neg is -t (logical not for bool).
func (t *Tensor) Neg() *Tensor { return t.unary(lazy.Neg) }

// Reciprocal is 1/t.
func (t *Tensor) Reciprocal() *Tensor { return t.float().unary(lazy.Recip) }

// Exp2 is 2^t.
func (t *Tensor) Exp2() *Tensor { return t.float().unary(lazy.Exp2) }

// Log2 is log₂ t.
func (t *Tensor) Log2() *Tensor { return t.float().unary(lazy.Log2) }

// Exp is e^t, computed as 2^(t·log₂e).
func (t *Tensor) Exp() *Tensor { return t.float().Mul(1 / math.Ln2).Exp2() }

// Log is ln t, computed as log₂(t)·ln 2.
func (t *Tensor) Log() *Tensor { return t.Log2().Mul(math.Ln2) }

// Sqrt is √t.
func (t *Tensor) Sqrt() *Tensor { return t.float().unary(lazy.Sqrt) }

// Rsqrt is 1/√t.
func (t *Tensor) Rsqrt() *Tensor { return t.Sqrt().Reciprocal() }

// Sin is sin t.
func (t *Tensor) Sin() *Tensor { return t.float().unary(lazy.Sin) }

// Cos is cos t = sin(π/2 - t).
func (t *Tensor) Cos() *Tensor { return t.float().Neg().Add(math.Pi / 2).Sin() }

// Tan is sin t / cos t.
func (t *Tensor) Tan() *Tensor { return t.Sin().Div(t.Cos()) }

// Maximum is the elementwise max (NaN wins).
func (t *Tensor) Maximum(x any) *Tensor {
	a, b := t.broadcast("Maximum", x)
	return a.binary(lazy.Max, b)
}

// Minimum is the elementwise min (NaN wins).
func (t *Tensor) Minimum(x any) *Tensor {
	a, b := t.broadcast("Minimum", x)
	return a.flipSign().binary(lazy.Max, b.flipSign()).flipSign()
}

// flipSign is an order-reversing map that is its own inverse: -x, or not x for bool, or
// 255-x for uint8.
func (t *Tensor) flipSign() *Tensor {
	if t.DType() == dtype.Uint8 {
		return t.FullLike(255).binary(lazy.Add, t.Neg())
	}
	return t.Neg()
}

// Abs is |t|.
func (t *Tensor) Abs() *Tensor {
	if t.DType().IsUnsigned() {
		return t
	}
	return t.Maximum(t.Neg())
}

// Sign is -1, 0 or 1 in t's dtype.
func (t *Tensor) Sign() *Tensor {
	return t.Gt(0).Cast(t.DType()).Sub(t.Lt(0).Cast(t.DType()))
}

// Pow is t^x: exp2(x·log₂|t|), negative where t < 0 and x is an odd integer, NaN where t < 0
// and x is not an integer, 1 where x == 0.
func (t *Tensor) Pow(x any) *Tensor {
	a, b := t.broadcast("Pow", x)
	a, b = a.float(), b.float()
	r := b.Mul(a.Abs().Log2()).Exp2()
	whole := b.Cast(dtype.Int32).Cast(b.DType()).Eq(b)
	odd := whole.And(b.Cast(dtype.Int32).Mod(2).Ne(0))
	neg := odd.Where(r.Neg(), whole.Where(r, math.NaN()))
	return b.Eq(0).Where(1.0, a.Lt(0).Where(neg, r))
}

// Square is t*t.
func (t *Tensor) Square() *Tensor { return t.Mul(t) }

// Relu is max(t, 0).
func (t *Tensor) Relu() *Tensor { return t.Maximum(0) }

// Sigmoid is 1/(1+e^-t), computed from e = e^-|t| ≤ 1 so that neither it nor its gradient
// ever meets an infinity.
func (t *Tensor) Sigmoid() *Tensor {
	x := t.float()
	e := x.Abs().Neg().Exp()
	r := e.Add(1).Reciprocal()
	return x.Ge(0).Where(r, e.Mul(r))
}

// Tanh is 2·sigmoid(2t) - 1.
func (t *Tensor) Tanh() *Tensor { return t.float().Mul(2).Sigmoid().Mul(2).Sub(1) }

// Gelu is the tanh approximation of GELU (PyTorch's approximate="tanh").
func (t *Tensor) Gelu() *Tensor {
	x := t.float()
	inner := x.Add(x.Mul(x).Mul(x).Mul(0.044715)).Mul(math.Sqrt(2 / math.Pi))
	return x.Mul(0.5).Mul(inner.Tanh().Add(1))
}

// Silu is t·sigmoid(t).
func (t *Tensor) Silu() *Tensor { return t.Mul(t.Sigmoid()) }

// Clip limits t to [lo, hi].
func (t *Tensor) Clip(lo, hi float64) *Tensor { return t.Maximum(lo).Minimum(hi) }

// Where picks a where t (a condition, non-zero is true) holds and b elsewhere, broadcasting
// all three.
func (t *Tensor) Where(a, b any) *Tensor {
	cond := t.Cast(dtype.Bool)
	x, y := cond.operandLike("Where", a, b)
	shape := broadcastShape("Where", broadcastShape("Where", cond.node.Shape, x.node.Shape), y.node.Shape)
	cond, x, y = cond.BroadcastTo(shape...), x.BroadcastTo(shape...), y.BroadcastTo(shape...)
	return apply(lazy.Where, x.DType(), shape, nil, cond, x, y)
}

// MulAdd is t*b+c rounded once (a fused multiply-add), broadcasting all three; b and c take
// t's dtype. The exact residual of a quotient q of a/b is q.Neg().MulAdd(b, a).
func (t *Tensor) MulAdd(b, c any) *Tensor {
	x, y := t.operand("MulAdd", b).Cast(t.DType()), t.operand("MulAdd", c).Cast(t.DType())
	shape := broadcastShape("MulAdd", broadcastShape("MulAdd", t.node.Shape, x.node.Shape), y.node.Shape)
	return apply(lazy.MulAdd, t.DType(), shape, nil, t.BroadcastTo(shape...), x.BroadcastTo(shape...), y.BroadcastTo(shape...))
}

// operandLike makes a and b tensors of one promoted dtype; numbers take the other's dtype.
func (t *Tensor) operandLike(op string, a, b any) (*Tensor, *Tensor) {
	ta, aok := a.(*Tensor)
	tb, bok := b.(*Tensor)
	switch {
	case aok && bok:
	case aok:
		tb = ta.operand(op, b)
	case bok:
		ta = tb.operand(op, a)
	default:
		ta = Scalar(0).operand(op, a)
		ta.node.Device = t.Device()
		tb = ta.operand(op, b)
	}
	dt := dtype.Promote(ta.DType(), tb.DType())
	return ta.Cast(dt), tb.Cast(dt)
}

// Lt is t < x (bool).
func (t *Tensor) Lt(x any) *Tensor { a, b := t.broadcast("Lt", x); return a.binary(lazy.CmpLT, b) }

// Gt is t > x.
func (t *Tensor) Gt(x any) *Tensor { a, b := t.broadcast("Gt", x); return b.binary(lazy.CmpLT, a) }

// Le is t <= x.
func (t *Tensor) Le(x any) *Tensor { return t.Gt(x).Not() }

// Ge is t >= x.
func (t *Tensor) Ge(x any) *Tensor { return t.Lt(x).Not() }

// Ne is t != x.
func (t *Tensor) Ne(x any) *Tensor { a, b := t.broadcast("Ne", x); return a.binary(lazy.CmpNE, b) }

// Eq is t == x.
func (t *Tensor) Eq(x any) *Tensor { return t.Ne(x).Not() }

// Not is the logical not of t (as bool).
func (t *Tensor) Not() *Tensor { c := t.Cast(dtype.Bool); return c.binary(lazy.CmpNE, c.FullLike(1)) }

// And, Or and Xor are bitwise for integers and logical for bools.
func (t *Tensor) And(x any) *Tensor { return t.bitwise("And", lazy.And, x) }
func (t *Tensor) Or(x any) *Tensor  { return t.bitwise("Or", lazy.Or, x) }
func (t *Tensor) Xor(x any) *Tensor { return t.bitwise("Xor", lazy.Xor, x) }

func (t *Tensor) bitwise(name string, op lazy.Op, x any) *Tensor {
	a, b := t.broadcast(name, x)
	if a.DType().IsFloat() {
		fail(name, "needs integers or bools, got %s", a.DType())
	}
	return a.binary(op, b)
}
