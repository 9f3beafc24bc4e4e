package onnx

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
)

// Smaller ops: gated activations, window functions, cache scatter, Unique and
// ReverseSequence.

func swish(x *T, alpha float64) *T { return x.Mul(x.Mul(alpha).Sigmoid()) }

func init() {
	ops["Swish"] = func(c *call, in []*val) ([]*val, error) {
		return one(same(swish(in[0].t.Cast(dtype.Float32), c.float("alpha", 1)), in[0]))
	}
	ops["SwiGLU"] = func(c *call, in []*val) ([]*val, error) {
		a, b := in[0].t.Cast(dtype.Float32), in[1].t.Cast(dtype.Float32)
		return one(same(swish(a, c.float("alpha", 1)).Mul(b), in[0]))
	}
	window := func(coef []float64) opFunc {
		return func(c *call, in []*val) ([]*val, error) {
			n := in[0].hostInts()[0]
			den := float64(n)
			if c.int("periodic", 1) == 0 {
				den = float64(n - 1)
			}
			k := c.arange(n).Cast(dtype.Float32).Mul(2 * math.Pi / den)
			w := k.FullLike(coef[0])
			for j := 1; j < len(coef); j++ {
				w = w.Add(k.Mul(float64(j)).Cos().Mul(coef[j]))
			}
			return one(tv(w, DataType(c.int("output_datatype", 1))))
		}
	}
	ops["HannWindow"] = window([]float64{0.5, -0.5})
	ops["HammingWindow"] = window([]float64{25.0 / 46, -21.0 / 46})
	ops["BlackmanWindow"] = window([]float64{0.42, -0.5, 0.08})
	ops["TensorScatter"] = func(c *call, in []*val) ([]*val, error) {
		past, upd := in[0].t, in[1].t
		r := past.Ndim()
		if a := normAxis(int(c.int("axis", -2)), r); a != r-2 {
			return nil, unsupported("TensorScatter on axis %d (only the second to last)", a)
		}
		ps, us := past.Shape(), upd.Shape()
		b, maxS, s := ps[0], ps[r-2], us[r-2]
		wi := c.slice(make([]int64, b), b)
		if len(in) > 2 && in[2] != nil {
			wi = in[2].t.Cast(dtype.Int64)
		}
		target := wi.Reshape(b, 1, 1).Add(c.arange(s).Reshape(1, 1, s)) // [B, 1, S]
		if c.str("mode", "linear") == "circular" {
			target = target.Mod(maxS)
		}
		oh := target.Eq(c.arange(maxS).Reshape(1, maxS, 1)) // [B, maxS, S]
		mid := ones(r - 3)
		oh = oh.Reshape(append(append([]int{b}, mid...), maxS, s, 1)...)
		ue := upd.Unsqueeze(r - 2) // [B, …, 1, S, D]
		contrib := oh.Where(ue, ue.ZerosLike()).Sum(r - 1).Cast(past.DType())
		hit := oh.Cast(dtype.Int32).Sum(r - 1).Gt(0)
		return one(same(hit.Where(contrib, past), in[0]))
	}
	ops["ReverseSequence"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t
		lens := in[1].hostInts()
		ba, ta := int(c.int("batch_axis", 1)), int(c.int("time_axis", 0))
		var parts []*T
		for bi, l := range lens {
			xb := x.Slice(ba, bi, bi+1)
			n := xb.Shape()[ta]
			rev := xb.Slice(ta, 0, l).Flip(ta)
			if l < n {
				rev = rev.Cat(ta, xb.Slice(ta, l, n))
			}
			parts = append(parts, rev)
		}
		return one(same(parts[0].Cat(ba, parts[1:]...), in[0]))
	}
	ops["Unique"] = func(c *call, in []*val) ([]*val, error) {
		return uniqueOp(c, in[0])
	}
}

// uniqueOp finds unique elements (or slices along axis) on the host: the output size
// depends on the data. The outputs are loaded back as framework tensors.
func uniqueOp(c *call, x *val) ([]*val, error) {
	h, err := x.hostTensor()
	if err != nil {
		return nil, err
	}
	f, err := h.Float64s()
	if err != nil {
		return nil, err
	}
	shape := h.Shape()
	var axis = -1
	if a := c.attr("axis"); a != nil {
		axis = normAxis(int(a.I), len(shape))
	}
	// Split into items: single elements, or slices along axis.
	outer, n, inner := 1, len(f), 1
	if axis >= 0 {
		outer, n, inner = prodInts(shape[:axis]), shape[axis], prodInts(shape[axis+1:])
	}
	item := func(i int) []float64 {
		if axis < 0 {
			return []float64{f[i]}
		}
		v := make([]float64, 0, outer*inner)
		for o := 0; o < outer; o++ {
			v = append(v, f[(o*n+i)*inner:(o*n+i+1)*inner]...)
		}
		return v
	}
	key := func(v []float64) string { return fmt.Sprint(v) }
	first := map[string]int{}
	var order []int
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		k := key(item(i))
		if _, ok := first[k]; !ok {
			first[k] = i
			order = append(order, i)
		}
		counts[k]++
	}
	if c.int("sorted", 1) == 1 {
		sort.SliceStable(order, func(a, b int) bool {
			va, vb := item(order[a]), item(order[b])
			for j := range va {
				if va[j] != vb[j] {
					return va[j] < vb[j]
				}
			}
			return false
		})
	}
	pos := map[string]int{}
	idx := make([]int64, len(order))
	cnt := make([]int64, len(order))
	for j, i := range order {
		k := key(item(i))
		pos[k] = j
		idx[j] = int64(i)
		cnt[j] = int64(counts[k])
	}
	inv := make([]int64, n)
	for i := 0; i < n; i++ {
		inv[i] = int64(pos[key(item(i))])
	}
	var y *T
	if axis < 0 {
		y = gather(c, x.t.Reshape(-1), c.slice(idx), 0)
	} else {
		y = gather(c, x.t, c.slice(idx), axis)
	}
	return []*val{same(y, x), c.konst(idx), c.konst(inv), c.konst(cnt)}, nil
}

var _ = strings.Contains

func init() {
	// CausalConvWithState (opset 27): depthwise 1-D convolution over [past_state, input],
	// returning the last k-1 positions as the new state.
	ops["CausalConvWithState"] = func(c *call, in []*val) ([]*val, error) {
		x, w := up(in[0].t), up(in[1].t)
		s := x.Shape()
		b, ch := s[0], s[1]
		k := w.Shape()[2]
		var past *T
		if len(in) > 3 && in[3] != nil {
			past = up(in[3].t)
		} else {
			past = x.Slice(2, 0, 1).ZerosLike().Expand(b, ch, 1).Pad([][2]int{{0, 0}, {0, 0}, {0, k - 2}})
		}
		full := x
		if k > 1 {
			full = past.Cat(2, x)
		}
		var bias *T
		if len(in) > 2 && in[2] != nil {
			bias = up(in[2].t)
		}
		plain := &call{e: c.e, n: &Node{}, opset: c.opset}
		y := conv(plain, full, w, bias, ch)
		switch c.str("activation", "none") {
		case "silu", "swish":
			y = swish(y, 1)
		case "none":
		default:
			return nil, unsupported("activation %q", c.str("activation", ""))
		}
		n := full.Shape()[2]
		state := full.Slice(2, n-(k-1), n)
		return []*val{same(y, in[0]), same(state, in[0])}, nil
	}
}
