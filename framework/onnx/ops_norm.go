package onnx

import (
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Normalisations. Statistics are computed in float32 whatever the input type, then cast
// back.

// chanShape is the shape that broadcasts a per-channel vector over [N, C, S…].
func chanShape(x *T, n int) []int {
	s := ones(x.Ndim())
	s[1] = n
	return s
}

// moments returns mean and population variance over axes, keeping dims.
func moments(x *T, axes []int) (*T, *T) {
	k := append(append([]int{}, axes...), tensor.KeepDim)
	m := x.Mean(k...)
	d := x.Sub(m)
	return m, d.Mul(d).Mean(k...)
}

func init() {
	ops["BatchNormalization"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		ch := x.Shape()[1]
		f := func(v *val) *T { return v.t.Cast(dtype.Float32).Reshape(chanShape(x, ch)...) }
		scale, b, mean, vr := f(in[1]), f(in[2]), f(in[3]), f(in[4])
		eps := c.float("epsilon", 1e-5)
		if c.int("training_mode", 0) == 1 {
			axes := append([]int{0}, seq(2, x.Ndim()-2)...)
			bm, bv := moments(x, axes)
			y := x.Sub(bm).Div(bv.Add(eps).Sqrt()).Mul(scale).Add(b)
			mom := c.float("momentum", 0.9)
			rm := mean.Mul(mom).Add(bm.Mul(1 - mom)).Reshape(ch)
			rv := vr.Mul(mom).Add(bv.Mul(1 - mom)).Reshape(ch)
			return []*val{same(y, in[0]), same(rm, in[3]), same(rv, in[4])}, nil
		}
		y := x.Sub(mean).Div(vr.Add(eps).Sqrt()).Mul(scale).Add(b)
		return one(same(y, in[0]))
	}
	ops["InstanceNormalization"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		ch := x.Shape()[1]
		m, v := moments(x, seq(2, x.Ndim()-2))
		y := x.Sub(m).Div(v.Add(c.float("epsilon", 1e-5)).Sqrt())
		y = y.Mul(in[1].t.Cast(dtype.Float32).Reshape(chanShape(x, ch)...)).Add(in[2].t.Cast(dtype.Float32).Reshape(chanShape(x, ch)...))
		return one(same(y, in[0]))
	}
	ops["LayerNormalization"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		r := x.Ndim()
		ax := normAxis(int(c.int("axis", -1)), r)
		m, v := moments(x, seq(ax, r-ax))
		inv := v.Add(c.float("epsilon", 1e-5)).Sqrt().Reciprocal()
		y := x.Sub(m).Mul(inv).Mul(in[1].t.Cast(dtype.Float32))
		if len(in) > 2 && in[2] != nil {
			y = y.Add(in[2].t.Cast(dtype.Float32))
		}
		st := Float
		if a := c.attr("stash_type"); a != nil {
			st = DataType(a.I)
		}
		return []*val{same(y, in[0]), tv(m, st), tv(inv, st)}, nil
	}
	ops["GroupNormalization"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		s := x.Shape()
		g := int(c.int("num_groups", 1))
		xg := x.Reshape(s[0], g, -1)
		m, v := moments(xg, []int{2})
		y := xg.Sub(m).Div(v.Add(c.float("epsilon", 1e-5)).Sqrt()).Reshape(s...)
		sc, b := in[1].t.Cast(dtype.Float32), in[2].t.Cast(dtype.Float32)
		if sc.Shape()[0] == g && g != s[1] { // opset 18: per-group scale and bias
			rep := s[1] / g
			sc = sc.Reshape(g, 1).Expand(g, rep).Reshape(s[1])
			b = b.Reshape(g, 1).Expand(g, rep).Reshape(s[1])
		}
		y = y.Mul(sc.Reshape(chanShape(x, s[1])...)).Add(b.Reshape(chanShape(x, s[1])...))
		return one(same(y, in[0]))
	}
	ops["LpNormalization"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		ax := normAxis(int(c.int("axis", -1)), x.Ndim())
		var n *T
		if c.int("p", 2) == 1 {
			n = x.Abs().Sum(ax, tensor.KeepDim)
		} else {
			n = x.Mul(x).Sum(ax, tensor.KeepDim).Sqrt()
		}
		return one(same(n.Eq(0).Where(0.0, x.Div(n)), in[0])) // a zero vector stays zero
	}
	ops["MeanVarianceNormalization"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		axes, ok := c.ints("axes")
		if !ok {
			axes = []int{0, 2, 3}
		}
		m, v := moments(x, axes)
		return one(same(x.Sub(m).Div(v.Sqrt().Add(1e-9)), in[0]))
	}
	ops["RMSNormalization"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		r := x.Ndim()
		ax := normAxis(int(c.int("axis", -1)), r)
		k := append(seq(ax, r-ax), tensor.KeepDim)
		ms := x.Mul(x).Mean(k...)
		y := x.Div(ms.Add(c.float("epsilon", 1e-5)).Sqrt()).Mul(in[1].t.Cast(dtype.Float32))
		return one(same(y, in[0]))
	}
	ops["LRN"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		size := int(c.int("size", 1))
		alpha, beta, bias := c.float("alpha", 1e-4), c.float("beta", 0.75), c.float("bias", 1)
		sq := x.Mul(x)
		p := make([][2]int, x.Ndim())
		p[1] = [2]int{(size - 1) / 2, size / 2}
		sp := sq.Pad(p)
		ch := x.Shape()[1]
		var sum *T
		for j := 0; j < size; j++ {
			s := sp.Slice(1, j, j+ch)
			if sum == nil {
				sum = s
			} else {
				sum = sum.Add(s)
			}
		}
		y := x.Div(sum.Mul(alpha / float64(size)).Add(bias).Pow(beta))
		return one(same(y, in[0]))
	}
}

var _ = math.Inf
