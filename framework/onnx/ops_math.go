package onnx

import (
	"fmt"
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Elementwise math, logic and activations, each a few framework tensor ops.

type T = tensor.Tensor

func init() {
	unary := map[string]func(x *T) *T{
		"Abs":        (*T).Abs,
		"Neg":        (*T).Neg,
		"Sqrt":       (*T).Sqrt,
		"Exp":        (*T).Exp,
		"Log":        (*T).Log,
		"Reciprocal": (*T).Reciprocal,
		"Sin":        (*T).Sin,
		"Cos":        (*T).Cos,
		"Tan":        (*T).Tan,
		"Tanh":       tanh,
		"Sigmoid":    (*T).Sigmoid,
		"Relu":       (*T).Relu,
		"Sign":       (*T).Sign,
		"Floor":      floor,
		"Ceil":       func(x *T) *T { return floor(x.Neg()).Neg() },
		"Round":      round,
		"Erf":        erf,
		"Sinh":       func(x *T) *T { return x.Exp().Sub(x.Neg().Exp()).Mul(0.5) },
		"Cosh":       func(x *T) *T { return x.Exp().Add(x.Neg().Exp()).Mul(0.5) },
		"Asinh":      func(x *T) *T { return x.Mul(x).Add(1).Sqrt().Add(x.Abs()).Log().Mul(x.Sign()) },
		"Acosh":      func(x *T) *T { return x.Mul(x).Sub(1).Sqrt().Add(x).Log() },
		"Atanh":      func(x *T) *T { return x.Add(1).Div(x.Neg().Add(1)).Log().Mul(0.5) },
		"Atan":       atan,
		"Asin":       func(x *T) *T { return atan(x.Div(x.Mul(x).Neg().Add(1).Sqrt())) },
		"Acos": func(x *T) *T {
			return atan(x.Div(x.Mul(x).Neg().Add(1).Sqrt())).Neg().Add(math.Pi / 2)
		},
		"Softplus":  func(x *T) *T { return x.Relu().Add(x.Abs().Neg().Exp().Add(1).Log()) },
		"Softsign":  func(x *T) *T { return x.Div(x.Abs().Add(1)) },
		"Mish":      func(x *T) *T { return x.Mul(tanh(x.Relu().Add(log1p(x.Abs().Neg().Exp())))) },
		"HardSwish": func(x *T) *T { return x.Mul(x.Div(6).Add(0.5).Clip(0, 1)) },
		"Identity":  func(x *T) *T { return x },
	}
	for name, f := range unary {
		ops[name] = func(c *call, in []*val) ([]*val, error) {
			x := in[0]
			if x.kind != KindTensor && x.kind != KindUnknown || x.str != nil {
				if name == "Identity" {
					return one(x)
				}
			}
			return one(same(f(up(x.t)), x))
		}
	}
	ops["Not"] = func(c *call, in []*val) ([]*val, error) { return one(tv(in[0].t.Not(), Bool)) }
	ops["IsNaN"] = func(c *call, in []*val) ([]*val, error) { return one(tv(in[0].t.Ne(in[0].t), Bool)) }
	ops["IsInf"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		pos, neg := x.Eq(math.Inf(1)), x.Eq(math.Inf(-1))
		var r *T
		switch {
		case c.int("detect_positive", 1) == 1 && c.int("detect_negative", 1) == 1:
			r = pos.Or(neg)
		case c.int("detect_positive", 1) == 1:
			r = pos
		case c.int("detect_negative", 1) == 1:
			r = neg
		default:
			r = x.Ne(x).And(x.Eq(x))
		}
		return one(tv(r, Bool))
	}
	act := map[string]func(c *call, x *T) *T{
		"LeakyRelu": func(c *call, x *T) *T { a := c.float("alpha", 0.01); return x.Lt(0).Where(x.Mul(a), x) },
		"Elu": func(c *call, x *T) *T {
			a := c.float("alpha", 1)
			return x.Lt(0).Where(x.Exp().Sub(1).Mul(a), x)
		},
		"Selu": func(c *call, x *T) *T {
			a, g := c.float("alpha", 1.67326319217681884765625), c.float("gamma", 1.05070102214813232421875)
			return x.Le(0).Where(x.Exp().Sub(1).Mul(a), x).Mul(g)
		},
		"Celu": func(c *call, x *T) *T {
			a := c.float("alpha", 1)
			return x.Relu().Add(x.Div(a).Exp().Sub(1).Mul(a).Minimum(0))
		},
		"ThresholdedRelu": func(c *call, x *T) *T { a := c.float("alpha", 1); return x.Gt(a).Where(x, 0.0) },
		"HardSigmoid": func(c *call, x *T) *T {
			return x.Mul(c.float("alpha", 0.2)).Add(c.float("beta", 0.5)).Clip(0, 1)
		},
		"Shrink": func(c *call, x *T) *T {
			l, b := c.float("lambd", 0.5), c.float("bias", 0)
			return x.Lt(-l).Where(x.Add(b), x.Gt(l).Where(x.Sub(b), 0.0))
		},
		"Gelu": func(c *call, x *T) *T {
			if c.str("approximate", "none") == "tanh" {
				return x.Gelu()
			}
			return x.Mul(0.5).Mul(erf(x.Mul(1 / math.Sqrt2)).Add(1))
		},
	}
	for name, f := range act {
		ops[name] = func(c *call, in []*val) ([]*val, error) { return one(same(f(c, up(in[0].t)), in[0])) }
	}
	ops["PRelu"] = func(c *call, in []*val) ([]*val, error) {
		x, s := in[0].t, in[1].t
		return one(same(x.Lt(0).Where(x.Mul(s), x), in[0]))
	}

	// Binary ops with NumPy broadcasting; inputs share one ONNX type.
	arith := map[string]func(a *T, b any) *T{
		"Add": (*T).Add, "Sub": (*T).Sub, "Mul": (*T).Mul,
		"Div": func(a *T, b any) *T {
			if a.DType().IsFloat() {
				return fdiv(a, b.(*T))
			}
			return intDiv(a, b.(*T))
		},
	}
	for name, f := range arith {
		ops[name] = func(c *call, in []*val) ([]*val, error) { return one(same(f(up(in[0].t), up(in[1].t)), in[0])) }
	}
	cmp := map[string]func(a *T, b any) *T{
		"Equal": (*T).Eq, "Greater": (*T).Gt, "Less": (*T).Lt, "GreaterOrEqual": (*T).Ge, "LessOrEqual": (*T).Le,
		"And": (*T).And, "Or": (*T).Or, "Xor": (*T).Xor,
	}
	for name, f := range cmp {
		ops[name] = func(c *call, in []*val) ([]*val, error) {
			if in[0].str != nil && name == "Equal" {
				return stringEqual(c, in[0], in[1])
			}
			return one(tv(f(in[0].t, in[1].t), Bool))
		}
	}
	bit := map[string]func(a *T, b any) *T{"BitwiseAnd": (*T).And, "BitwiseOr": (*T).Or, "BitwiseXor": (*T).Xor}
	for name, f := range bit {
		ops[name] = func(c *call, in []*val) ([]*val, error) { return one(same(f(in[0].t, in[1].t), in[0])) }
	}
	ops["BitwiseNot"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		switch x.dt {
		case Uint8, Uint16, Uint32:
			return one(same(x.t.FullLike(float64(uint64(1)<<(8*x.dt.Size())-1)).Sub(x.t), x))
		case Uint64:
			return nil, unsupported("uint64 BitwiseNot")
		}
		return one(same(x.t.Neg().Sub(1), x))
	}
	ops["BitShift"] = func(c *call, in []*val) ([]*val, error) {
		x, s := in[0], in[1].t.Cast(dtype.Int64)
		pow2 := func(s *T) *T { // 2^s built from the bits of s, without float rounding
			p := s.FullLike(1)
			for i := 0; i <= 6; i++ {
				p = s.And(int64(1)<<i).Ne(0).Where(p.Mul(int64(1)<<(1<<i)), p)
			}
			return p
		}
		floor := func(v, p *T) *T { // v / p rounded toward minus infinity: an arithmetic shift
			q := intDiv(v, p)
			return v.Lt(0).And(q.Mul(p).Ne(v)).Where(q.Sub(1), q)
		}
		xv, p := x.t.Cast(dtype.Int64), pow2(s)
		var r *T
		if c.str("direction", "") == "LEFT" {
			r = xv.Mul(p)
		} else {
			r = floor(xv, p)
			if x.dt == Uint64 { // held in int64: with the top bit set, shift once (a zero comes in), then by s-1
				neg := xv.Lt(0)
				half := floor(neg.Where(xv, -2), xv.FullLike(2)).Add(int64(1) << 62).Add(int64(1) << 62)
				r = neg.And(s.Gt(0)).Where(floor(half, pow2(s.Sub(1).Clip(0, 62))), r)
			}
		}
		// Shifts by a negative amount or by the width or more shift everything out.
		bad := s.Lt(0).Or(s.Ge(8 * x.dt.Size()))
		if c.str("direction", "") == "LEFT" {
			r = bad.Where(r.ZerosLike(), r)
		} else {
			r = bad.Where(xv.Lt(0).And(x.dt != Uint64).Where(r.FullLike(-1), r.ZerosLike()), r)
		}
		if x.dt.Size() < 8 && (x.dt == Uint8 || x.dt == Uint16 || x.dt == Uint32) {
			r = r.And(int64(1)<<(8*x.dt.Size()) - 1)
		}
		return one(same(r, x))
	}
	ops["Pow"] = func(c *call, in []*val) ([]*val, error) {
		x, y := in[0], in[1]
		if !x.t.DType().IsFloat() && !y.t.DType().IsFloat() {
			return one(same(intPow(x.t.Cast(dtype.Int64), y.t.Cast(dtype.Int64)), x))
		}
		r := x.t.Cast(dtype.Float32).Pow(y.t.Cast(dtype.Float32))
		// Whole-number bases and exponents give exact results as in NumPy.
		return one(same(r, x))
	}
	ops["Mod"] = func(c *call, in []*val) ([]*val, error) {
		a, b := in[0].t, in[1].t
		if a.DType().IsFloat() || c.int("fmod", 0) == 1 {
			af, bf := a.Cast(dtype.Float32), b.Cast(dtype.Float32)
			q := trunc(af.Div(bf))
			r := af.Sub(q.Mul(bf))
			r = bf.Abs().Eq(math.Inf(1)).And(af.Abs().Ne(math.Inf(1))).Where(af, r) // x mod ±inf keeps x
			if c.int("fmod", 0) == 0 {                                              // Python remainder: sign of the divisor
				r = r.Ne(0).And(r.Lt(0).Ne(bf.Lt(0))).Where(r.Add(bf), r)
			}
			return one(same(r, in[0]))
		}
		r := a.Mod(safeDivisor(b)).Contiguous()
		fix := r.Ne(0).And(r.Lt(0).Ne(b.Lt(0)))
		return one(same(fix.Where(r.Add(b), r), in[0]))
	}
	variadic := map[string]func(a *T, b any) *T{"Max": (*T).Maximum, "Min": (*T).Minimum, "Sum": (*T).Add, "Mean": (*T).Add}
	for name, f := range variadic {
		ops[name] = func(c *call, in []*val) ([]*val, error) {
			acc := up(in[0].t)
			for _, x := range in[1:] {
				acc = f(acc, up(x.t))
			}
			if name == "Mean" {
				acc = acc.Div(float64(len(in)))
			}
			return one(same(acc, in[0]))
		}
	}
	ops["Where"] = func(c *call, in []*val) ([]*val, error) {
		return one(same(in[0].t.Where(in[1].t, in[2].t), in[1]))
	}
	ops["Clip"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t
		if c.opset < 11 {
			lo, hi := c.float("min", math.Inf(-1)), c.float("max", math.Inf(1))
			return one(same(x.Maximum(lo).Minimum(hi), in[0]))
		}
		if len(in) > 1 && in[1] != nil {
			x = x.Maximum(in[1].t)
		}
		if len(in) > 2 && in[2] != nil {
			x = x.Minimum(in[2].t)
		}
		return one(same(x, in[0]))
	}
}

// up widens 16-bit floats to float32 so each op rounds once, at its output, as NumPy does
// (the framework would otherwise round every intermediate, e.g. the reciprocal in a divide).
func up(x *T) *T {
	if d := x.DType(); d == dtype.Float16 || d == dtype.BFloat16 {
		return x.Cast(dtype.Float32)
	}
	return x
}

// fdiv divides floats with one Newton correction of the reciprocal product, so quotients
// round as a true division does (the framework's Div multiplies by the reciprocal, which
// can be an ulp off and flips round-half-even ties downstream). Where the correction is not
// finite (division by zero, infinities) the plain product stands.
func fdiv(a, b *T) *T {
	rb := b.Reciprocal()
	q := a.Mul(rb)
	corr := q.Neg().MulAdd(b, a).Mul(rb)
	return corr.Eq(corr).Where(q.Add(corr), q)
}

// safeDivisor replaces integer zeros by one: integer division by zero is undefined in ONNX
// and traps in the generated C.
//
// The quotient is made contiguous: the scheduler evaluates elementwise ops under a later
// pad's out-of-range region too, where the divisor reads as zero.
func safeDivisor(b *T) *T { return b.Eq(0).Where(b.OnesLike(), b) }

func intDiv(a, b *T) *T { return a.IntDiv(safeDivisor(b)).Contiguous() }

// log1p is log(1+u) for u >= 0, with the series near zero where 1+u loses u's digits.
func log1p(u *T) *T {
	series := u.Sub(u.Mul(u).Mul(0.5)).Add(u.Mul(u).Mul(u).Mul(1.0 / 3))
	return u.Lt(1e-3).Where(series, u.Add(1).Log())
}

// tanh is computed from exp of a non-positive argument so it saturates without NaN.
func tanh(x *T) *T {
	e := x.Abs().Mul(-2).Exp()
	return e.Neg().Add(1).Div(e.Add(1)).Mul(x.Sign())
}

// trunc drops the fraction; values too large to have one are kept as they are.
func trunc(x *T) *T {
	big := x.Abs().Ge(1 << 23)
	return big.Or(x.Ne(x)).Where(x, x.Cast(dtype.Int64).Cast(x.DType()))
}

func floor(x *T) *T {
	t := trunc(x)
	return t.Gt(x).Where(t.Sub(1), t)
}

// round rounds half to even, as ONNX and NumPy do.
func round(x *T) *T {
	f := floor(x)
	d := x.Sub(f)
	up := f.Add(1)
	half := d.Eq(0.5)
	odd := trunc(f.Mul(0.5)).Mul(2).Ne(f)
	return d.Gt(0.5).Or(half.And(odd)).Where(up, f)
}

// erf uses its Taylor series near zero and the Numerical Recipes erfc fit (relative error
// below 1.2e-7) elsewhere.
func erf(x *T) *T {
	x = x.Cast(dtype.Float32)
	x2 := x.Mul(x)
	// Taylor: 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
	term, sum := x, x
	for n := 1; n <= 8; n++ {
		term = term.Mul(x2).Mul(-1.0 / float64(n))
		sum = sum.Add(term.Mul(1.0 / float64(2*n+1)))
	}
	small := sum.Mul(2 / math.Sqrt(math.Pi))
	z := x.Abs()
	t := z.Mul(0.5).Add(1).Reciprocal()
	coef := []float64{-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277}
	poly := t.FullLike(coef[9])
	for i := 8; i >= 0; i-- {
		poly = poly.Mul(t).Add(coef[i])
	}
	erfc := t.Mul(z.Mul(z).Neg().Add(poly).Exp())
	large := erfc.Neg().Add(1).Mul(x.Sign())
	return z.Lt(0.5).Where(small, large)
}

// atan reduces to |x| <= tan(π/8)-ish ranges and evaluates a short odd polynomial.
func atan(x *T) *T {
	x = x.Cast(dtype.Float32)
	a := x.Abs()
	inv := a.Gt(1)
	y := inv.Where(a.Reciprocal(), a) // y in [0, 1]
	// atan(y) = π/4 + atan((y-1)/(y+1)) for y > tan(π/8)
	shift := y.Gt(0.41421356)
	z := shift.Where(y.Sub(1).Div(y.Add(1)), y) // |z| <= 0.4142
	z2 := z.Mul(z)
	p := z2.FullLike(0)
	// atan(z) = z - z³/3 + z⁵/5 - ... ; 12 terms reach float32 precision on |z| <= 0.4142
	for k := 12; k >= 0; k-- {
		sign := 1.0
		if k%2 == 1 {
			sign = -1
		}
		p = p.Mul(z2).Add(sign / float64(2*k+1))
	}
	r := p.Mul(z)
	r = shift.Where(r.Add(math.Pi/4), r)
	r = inv.Where(r.Neg().Add(math.Pi/2), r)
	return r.Mul(x.Sign())
}

// intPow raises integers by squaring over the exponent's bits (exponents below 2^16).
func intPow(b, e *T) *T {
	r := b.FullLike(1)
	p := b
	for i := 0; i < 16; i++ {
		r = e.And(int64(1)<<i).Ne(0).Where(r.Mul(p), r)
		p = p.Mul(p)
	}
	return r
}

func stringEqual(c *call, a, b *val) ([]*val, error) {
	if a.str == nil || b.str == nil {
		return nil, fmt.Errorf("Equal of a string and a non-string")
	}
	x, y := a.str, b.str
	dims := toInt64s(broadcastShapes(toInts(x.Dims), toInts(y.Dims)))
	n := prodInts(toInts(dims))
	out := make([]bool, n)
	for i := range out {
		out[i] = string(x.Strings[bcastIndex(i, dims, x.Dims)]) == string(y.Strings[bcastIndex(i, dims, y.Dims)])
	}
	return one(tv(c.slice(out, toInts(dims)...), Bool))
}
