package onnx

import (
	"math"
	"slices"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Reductions, arg-reductions, softmax family, matrix products and casts.

// reduceAxes reads a reduction's axes (attribute before opset 13 for ReduceSum and 18 for
// the rest, an optional input after) and reports whether the op is a no-op.
func (c *call) reduceAxes(in []*val, inputSince int64) (axes []int, noop bool) {
	x := in[0]
	if c.opset >= inputSince {
		axes, _ = c.optInts(in, 1, "")
	} else {
		axes, _ = c.ints("axes")
	}
	if len(axes) == 0 {
		if c.int("noop_with_empty_axes", 0) == 1 {
			return nil, true
		}
		for i := 0; i < x.t.Ndim(); i++ {
			axes = append(axes, i)
		}
	}
	for i := range axes {
		axes[i] = normAxis(axes[i], x.t.Ndim())
	}
	return axes, false
}

func withKeep(axes []int, keep bool) []int {
	a := slices.Clone(axes)
	if keep {
		a = append(a, tensor.KeepDim)
	}
	return a
}

// prodReduce multiplies along axes by folding slices (exact for integers).
func prodReduce(x *T, axes []int, keep bool) *T {
	r := x.Ndim()
	var order, kept, keptShape []int
	s := x.Shape()
	for _, a := range axes {
		order = append(order, a)
	}
	for i := 0; i < r; i++ {
		if !slices.Contains(axes, i) {
			order = append(order, i)
			kept = append(kept, i)
			keptShape = append(keptShape, s[i])
		}
	}
	n := 1
	for _, a := range axes {
		n *= s[a]
	}
	y := x.Permute(order...).Reshape(append([]int{n}, keptShape...)...)
	var acc *T
	if n == 0 {
		acc = y.Sum(0).FullLike(1).Cast(x.DType())
	}
	for i := 0; i < n; i++ {
		sl := y.Slice(0, i, i+1).Reshape(keptShape...)
		if acc == nil {
			acc = sl
		} else {
			acc = acc.Mul(sl)
		}
	}
	if keep {
		out := slices.Clone(s)
		for _, a := range axes {
			out[a] = 1
		}
		acc = acc.Reshape(out...)
	}
	return acc
}

func init() {
	type reducer func(x *T, axes []int, keep bool) *T
	sum := func(x *T, axes []int, keep bool) *T { return x.Sum(withKeep(axes, keep)...) }
	reducers := map[string]reducer{
		"ReduceSum":  sum,
		"ReduceMean": func(x *T, axes []int, keep bool) *T { return x.Mean(withKeep(axes, keep)...) },
		"ReduceMax": func(x *T, axes []int, keep bool) *T {
			if x.DType() == dtype.Bool {
				return x.Cast(dtype.Uint8).Max(withKeep(axes, keep)...)
			}
			return x.Max(withKeep(axes, keep)...)
		},
		"ReduceMin": func(x *T, axes []int, keep bool) *T {
			if x.DType() == dtype.Bool {
				return x.Cast(dtype.Uint8).Min(withKeep(axes, keep)...)
			}
			return x.Min(withKeep(axes, keep)...)
		},
		"ReduceProd":      prodReduce,
		"ReduceL1":        func(x *T, axes []int, keep bool) *T { return sum(x.Abs(), axes, keep) },
		"ReduceL2":        func(x *T, axes []int, keep bool) *T { return sum(x.Mul(x), axes, keep).Cast(dtype.Float32).Sqrt() },
		"ReduceSumSquare": func(x *T, axes []int, keep bool) *T { return sum(x.Mul(x), axes, keep) },
		"ReduceLogSum":    func(x *T, axes []int, keep bool) *T { return sum(x, axes, keep).Cast(dtype.Float32).Log() },
		"ReduceLogSumExp": func(x *T, axes []int, keep bool) *T {
			xf := x.Cast(dtype.Float32)
			m := xf.Max(withKeep(axes, true)...)
			m = m.Ne(m.Abs()).Or(m.Abs().Eq(math.Inf(1))).Where(0.0, m) // inf/nan max: shift by 0
			r := sum(xf.Sub(m).Exp(), axes, true).Log().Add(m)
			if !keep {
				r = r.Squeeze(axes...)
			}
			return r
		},
	}
	for name, f := range reducers {
		since := int64(18)
		if name == "ReduceSum" {
			since = 13
		}
		ops[name] = func(c *call, in []*val) ([]*val, error) {
			x := in[0]
			axes, noop := c.reduceAxes(in, since)
			if noop {
				return one(x)
			}
			keep := c.int("keepdims", 1) == 1
			if x.t.Numel() == 0 {
				return one(same(emptyReduce(name, x.t, axes, keep), x))
			}
			return one(same(f(x.t, axes, keep), x))
		}
	}
	arg := func(min bool) opFunc {
		return func(c *call, in []*val) ([]*val, error) {
			x := in[0].t
			ax := normAxis(int(c.int("axis", 0)), x.Ndim())
			keep := c.int("keepdims", 1) == 1
			if x.DType() == dtype.Bool {
				x = x.Cast(dtype.Uint8)
			}
			last := c.int("select_last_index", 0) == 1
			if last {
				x = x.Flip(ax)
			}
			args := []int{ax, tensor.KeepDim}
			var idx *T
			if min {
				idx = x.Argmin(args...)
			} else {
				idx = x.Argmax(args...)
			}
			if last {
				idx = idx.Neg().Add(x.Shape()[ax] - 1)
			}
			if !keep {
				idx = idx.Squeeze(ax)
			}
			return one(tv(idx, Int64))
		}
	}
	ops["ArgMax"], ops["ArgMin"] = arg(false), arg(true)

	soft := func(kind string) opFunc {
		return func(c *call, in []*val) ([]*val, error) {
			x := in[0]
			r := x.t.Ndim()
			def := int64(-1)
			if c.opset < 13 {
				def = 1
			}
			ax := normAxis(int(c.int("axis", def)), r)
			t := up(x.t)
			s := t.Shape()
			if c.opset < 13 { // coerced to 2-D at axis
				t = t.Reshape(prodInts(s[:ax]), prodInts(s[ax:]))
			}
			a := ax
			if c.opset < 13 {
				a = 1
			}
			var y *T
			switch kind {
			case "Softmax":
				y = t.Softmax(a)
				if dt := x.t.DType(); dt == dtype.Float16 || dt == dtype.BFloat16 { // each step rounds, as the reference's
					rnd := func(v *T) *T { return v.Cast(dt).Cast(dtype.Float32) }
					e := rnd(rnd(t.Sub(t.Max(a, tensor.KeepDim))).Exp())
					y = e.Div(rnd(e.Sum(a, tensor.KeepDim)))
				}
			case "LogSoftmax":
				y = t.LogSoftmax(a)
			default: // Hardmax: one-hot of the first maximum
				n := t.Shape()[a]
				idx := t.Argmax(a, tensor.KeepDim)
				shape := make([]int, t.Ndim())
				for i := range shape {
					shape[i] = 1
				}
				shape[a] = n
				y = idx.Eq(c.arange(n).Reshape(shape...))
			}
			return one(same(y.Reshape(s...), x))
		}
	}
	for _, k := range []string{"Softmax", "LogSoftmax", "Hardmax"} {
		ops[k] = soft(k)
	}

	ops["MatMul"] = func(c *call, in []*val) ([]*val, error) {
		return one(same(matmul(up(in[0].t), up(in[1].t)), in[0]))
	}
	ops["MatMulInteger"] = func(c *call, in []*val) ([]*val, error) {
		a, b := in[0].t.Cast(dtype.Int32), in[1].t.Cast(dtype.Int32)
		if len(in) > 2 && in[2] != nil {
			z := in[2].t.Cast(dtype.Int32)
			if z.Ndim() == 1 && a.Ndim() >= 2 && z.Shape()[0] == a.Shape()[a.Ndim()-2] && z.Shape()[0] > 1 {
				z = z.Unsqueeze(1) // per-row zero point
			}
			a = a.Sub(z)
		}
		if len(in) > 3 && in[3] != nil {
			b = b.Sub(in[3].t.Cast(dtype.Int32))
		}
		return one(tv(matmul(a, b), Int32))
	}
	ops["Gemm"] = func(c *call, in []*val) ([]*val, error) {
		a, b := up(in[0].t), up(in[1].t)
		if c.int("transA", 0) == 1 {
			a = a.T()
		}
		if c.int("transB", 0) == 1 {
			b = b.T()
		}
		y := matmul(a, b)
		if al := c.float("alpha", 1); al != 1 {
			y = y.Mul(al)
		}
		if len(in) > 2 && in[2] != nil {
			cc := in[2].t
			if be := c.float("beta", 1); be != 1 {
				cc = cc.Mul(be)
			}
			y = y.Add(cc)
		}
		return one(same(y, in[0]))
	}
	cast := func(c *call, x *val, to DataType) ([]*val, error) {
		if x.dt == to {
			return one(x)
		}
		if to == String || x.dt == String {
			return nil, unsupported("Cast between strings and numbers")
		}
		st, err := storageType(to)
		if err != nil {
			return nil, err
		}
		t := x.t
		sat := c.int("saturate", 1) == 1
		switch {
		case isSmallFloat(to):
			if to == Float8E8M0 {
				t = quantizeE8M0(t.Cast(dtype.Float32), c.str("round_mode", "up"), sat)
			} else {
				t = quantizeFloat(t.Cast(dtype.Float32), to, sat)
			}
		case to == Int4 || to == Uint4 || to == Int2 || to == Uint2:
			lo, hi := intRange(to) // out-of-range values wrap around, two's complement
			if t.DType().IsFloat() {
				t = round(t.Cast(dtype.Float32))
			}
			span := int64(hi - lo + 1)
			w := t.Cast(dtype.Int64).Add(int64(-lo)).Mod(span) // Add of -lo: Sub of a negative constant renders as "--c"
			t = w.Lt(0).Where(w.Add(span), w).Add(int64(lo))
		case to == Double && x.dt != Float:
			t = t.Cast(dtype.Float32)
		case st == dtype.Float16 && x.dt == Double:
			t = t.Cast(dtype.Float32)
		}
		return one(tv(t.Cast(st), to))
	}
	ops["Cast"] = func(c *call, in []*val) ([]*val, error) { return cast(c, in[0], DataType(c.int("to", 1))) }
	ops["CastLike"] = func(c *call, in []*val) ([]*val, error) { return cast(c, in[0], in[1].dt) }
}

func intRange(dt DataType) (float64, float64) {
	switch dt {
	case Int4:
		return -8, 7
	case Uint4:
		return 0, 15
	case Int2:
		return -2, 1
	}
	return 0, 3
}

// matmul is the framework's Matmul with integer results kept in the inputs' type.
func matmul(a, b *T) *T { return a.Matmul(b) }

// emptyReduce is the identity of each reduction over an empty set.
func emptyReduce(name string, x *T, axes []int, keep bool) *T {
	s := x.Shape()
	var out []int
	for i, d := range s {
		switch {
		case !slices.Contains(axes, i):
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	v := 0.0
	switch name {
	case "ReduceMax", "ReduceLogSum", "ReduceLogSumExp":
		v = math.Inf(-1)
		if !x.DType().IsFloat() {
			v = x.DType().Min()
		}
	case "ReduceMin":
		v = math.Inf(1)
		if !x.DType().IsFloat() {
			v = math.MaxInt32
		}
	case "ReduceProd":
		v = 1
	}
	return x.Reshape(-1).Slice(0, 0, 0).Pad([][2]int{{0, 1}}, v).Reshape().BroadcastTo(out...)
}

// smallFloatFormat describes an 8- or 4-bit float: mantissa bits, smallest normal exponent,
// largest finite value, whether it has infinities, and whether it has a NaN.
func smallFloatFormat(dt DataType) (mbits, emin int, maxv float64, inf, nan bool) {
	switch dt {
	case Float8E4M3FN:
		return 3, -6, 448, false, true
	case Float8E4M3FNZ:
		return 3, -7, 240, false, true
	case Float8E5M2:
		return 2, -14, 57344, true, true
	case Float8E5M2FNZ:
		return 2, -15, 57344, false, true
	}
	return 1, 0, 6, false, false // Float4E2M1
}

// quantizeFloat rounds float32 values to the nearest value of a small float format (ties
// to even), in float32, using the exponent bits read through a bitcast.
func quantizeFloat(x *T, dt DataType, saturate bool) *T {
	mbits, emin, maxv, hasInf, hasNaN := smallFloatFormat(dt)
	a := x.Abs()
	bits := a.Bitcast(dtype.Int32)
	e := bits.IntDiv(1 << 23).Sub(127).Maximum(emin)
	q := e.Sub(mbits).Add(127).Mul(1 << 23).Bitcast(dtype.Float32) // 2^(e-mbits)
	r := round(a.Mul(q.Reciprocal())).Mul(q)
	over := r.Gt(maxv)
	isInf := a.Eq(math.Inf(1))
	var big float64
	switch {
	case saturate || !hasNaN:
		big = maxv
	case hasInf:
		big = math.Inf(1)
	default:
		big = math.NaN()
	}
	r = over.Where(big, r)
	r = isInf.Where(big, r) // infinities saturate, stay infinite (E5M2) or become NaN
	r = x.Lt(0).Where(r.Neg(), r)
	return x.Ne(x).Where(x, r)
}

// quantizeE8M0 rounds to a power of two 2^e, e in [-127, 127], by the exponent bits: up
// takes the next power when any mantissa bit is set, nearest when the top one is.
func quantizeE8M0(x *T, mode string, saturate bool) *T {
	bits := x.Abs().Bitcast(dtype.Int32)
	e := bits.IntDiv(1 << 23).Sub(127)
	man := bits.Mod(1 << 23)
	switch mode {
	case "up":
		e = man.Gt(0).Where(e.Add(1), e)
	case "nearest":
		e = man.Ge(1<<22).Where(e.Add(1), e)
	}
	over := e.Gt(127)
	e = e.Clip(-127, 127)
	p := e.Add(127).Mul(1 << 23).Bitcast(dtype.Float32)
	p = e.Eq(-127).Where(p.FullLike(math.Ldexp(1, -127)), p)
	big := math.NaN()
	if saturate {
		big = math.Ldexp(1, 127)
	}
	p = over.Or(x.Abs().Eq(math.Inf(1))).Where(big, p)
	return x.Ne(x).Where(x, p)
}
