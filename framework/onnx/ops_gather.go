package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Gather and scatter families. The framework has no gather primitive, so an index selects
// through a one-hot comparison with an arange and a masked sum (exact: every sum has at
// most one non-zero term), which fuses into one reduce kernel.

// fixIndex maps negative indices into [0, n).
func fixIndex(idx *T, n int) *T {
	idx = idx.Cast(dtype.Int64)
	return idx.Lt(0).Where(idx.Add(n), idx)
}

// gather is numpy.take(x, idx, axis).
func gather(c *call, x, idx *T, axis int) *T {
	return x.IndexSelect(axis, fixIndex(idx, x.Shape()[axis]))
}

// gatherElements is numpy.take_along_axis: each index picks one element of x, read at its
// flat position (idx on the axis, the index's own coordinates on the others).
func gatherElements(c *call, x, idx *T, axis int) *T {
	s, is := x.Shape(), idx.Shape()
	strides := make([]int, len(s))
	for j, st := len(s)-1, 1; j >= 0; j-- {
		strides[j], st = st, st*s[j]
	}
	pos := fixIndex(idx, s[axis]).Mul(strides[axis])
	for j := range s {
		if j != axis && is[j] > 1 {
			shape := ones(len(s))
			shape[j] = is[j]
			pos = pos.Add(c.arange(is[j]).Mul(strides[j]).Reshape(shape...))
		}
	}
	return x.Reshape(-1).IndexSelect(0, pos)
}

// linearIndex turns the last dim (k coordinates) of idx into linear offsets over dims.
func linearIndex(idx *T, dims []int) *T {
	k := len(dims)
	idx = idx.Cast(dtype.Int64)
	var lin *T
	stride := 1
	for j := k - 1; j >= 0; j-- {
		col := idx.Slice(-1, j, j+1).Squeeze(-1)
		col = col.Lt(0).Where(col.Add(dims[j]), col)
		term := col.Mul(stride)
		if lin == nil {
			lin = term
		} else {
			lin = lin.Add(term)
		}
		stride *= dims[j]
	}
	return lin
}

func init() {
	ops["Gather"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		ax := normAxis(int(c.int("axis", 0)), x.t.Ndim())
		return one(same(gather(c, x.t, in[1].t, ax), x))
	}
	ops["GatherElements"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		ax := normAxis(int(c.int("axis", 0)), x.t.Ndim())
		return one(same(gatherElements(c, x.t, in[1].t, ax), x))
	}
	ops["GatherND"] = func(c *call, in []*val) ([]*val, error) {
		x, idx := in[0].t, in[1].t
		b := int(c.int("batch_dims", 0))
		s, is := x.Shape(), idx.Shape()
		k := is[len(is)-1]
		bsz := prodInts(s[:b])
		m := prodInts(s[b : b+k])
		rest := s[b+k:]
		lin := linearIndex(idx, s[b:b+k]).Reshape(bsz, -1)  // [B, P] rows within each batch
		lin = lin.Add(c.arange(bsz).Reshape(bsz, 1).Mul(m)) // rows of the batches laid end to end
		out := x.Reshape(append([]int{bsz * m}, rest...)...).IndexSelect(0, lin.Reshape(-1))
		return one(same(out.Reshape(append(slices.Clone(is[:len(is)-1]), rest...)...), in[0]))
	}
	scatterElements := func(c *call, in []*val) ([]*val, error) {
		data, idx, upd := in[0].t, in[1].t, in[2].t
		r := data.Ndim()
		ax := normAxis(int(c.int("axis", 0)), r)
		s := data.Shape()
		n := s[ax]
		// Move axis last everywhere: data [O…, n], idx/upd [O'…, k].
		perm := append(seq(0, ax), seq(ax+1, r-ax-1)...)
		perm = append(perm, ax)
		inv := make([]int, r)
		for i, p := range perm {
			inv[p] = i
		}
		dp, ip, up := data.Permute(perm...), idx.Permute(perm...), upd.Permute(perm...)
		oh := fixIndex(ip, n).Unsqueeze(-1).Eq(c.arange(n).Reshape(append(ones(r), n)...)) // [O'…, k, n]
		// Pad O' up to O.
		ds, is := dp.Shape(), ip.Shape()
		pad := make([][2]int, r+1)
		for i := 0; i < r-1; i++ {
			pad[i] = [2]int{0, ds[i] - is[i]}
		}
		oh = oh.Pad(pad)
		ue := up.Unsqueeze(-1).Pad(pad) // [O…, k, 1]
		hit := oh.Cast(dtype.Int32).Sum(-2).Gt(0)
		out, err := scatterReduce(c.str("reduction", "none"), dp, oh, ue, hit, -2)
		if err != nil {
			return nil, err
		}
		return one(same(out.Permute(inv...), in[0]))
	}
	ops["ScatterElements"] = scatterElements
	ops["Scatter"] = scatterElements
	ops["ScatterND"] = func(c *call, in []*val) ([]*val, error) {
		data, idx, upd := in[0].t, in[1].t, in[2].t
		s, is := data.Shape(), idx.Shape()
		k := is[len(is)-1]
		m := prodInts(s[:k])
		rest := s[k:]
		dp := data.Reshape(append([]int{m}, rest...)...)
		lin := linearIndex(idx, s[:k]).Reshape(-1) // [P]
		p := lin.Shape()[0]
		oh := lin.Unsqueeze(-1).Eq(c.arange(m).Reshape(1, m)).Reshape(append([]int{p, m}, ones(len(rest))...)...)
		ue := upd.Reshape(append([]int{p, 1}, rest...)...)
		hit := oh.Cast(dtype.Int32).Sum(0).Gt(0)
		out, err := scatterReduce(c.str("reduction", "none"), dp, oh, ue, hit, 0)
		if err != nil {
			return nil, err
		}
		return one(same(out.Reshape(s...), in[0]))
	}
	ops["OneHot"] = func(c *call, in []*val) ([]*val, error) {
		idx := in[0].t
		depth := int(in[1].hostFloats()[0])
		vals := in[2]
		r := idx.Ndim() + 1
		ax := normAxis(int(c.int("axis", -1)), r)
		shape := ones(r)
		shape[ax] = depth
		oh := fixIndex(trunc(idx.Cast(dtype.Float32)).Cast(dtype.Int64), depth).Unsqueeze(ax).Eq(c.arange(depth).Reshape(shape...))
		off, on := vals.t.Slice(0, 0, 1).Reshape(), vals.t.Slice(0, 1, 2).Reshape()
		return one(same(oh.Where(on, off), vals))
	}
	ops["NonZero"] = func(c *call, in []*val) ([]*val, error) {
		f := in[0].hostFloats()
		s := in[0].t.Shape()
		var coords [][]int64
		for i, v := range f {
			if v != 0 {
				coords = append(coords, unravel(i, s))
			}
		}
		out := make([]int64, len(s)*len(coords))
		for j, co := range coords {
			for d := range s {
				out[d*len(coords)+j] = co[d]
			}
		}
		return one(c.konst(out, len(s), len(coords)))
	}
	ops["Compress"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t
		cond := in[1].hostFloats()
		a := c.attr("axis")
		ax := 0
		if a == nil {
			x = x.Reshape(-1)
		} else {
			ax = normAxis(int(a.I), x.Ndim())
		}
		var keep []int64
		for i, v := range cond {
			if v != 0 && i < x.Shape()[ax] {
				keep = append(keep, int64(i))
			}
		}
		if len(keep) == 0 {
			return one(same(x.Slice(ax, 0, 0), in[0]))
		}
		return one(same(gather(c, x, c.slice(keep), ax), in[0]))
	}
}

// scatterReduce combines data with updates selected by one-hot oh (reduced over axis k).
func scatterReduce(mode string, data, oh, upd, hit *T, k int) (*T, error) {
	dt := data.DType()
	switch mode {
	case "none", "add":
		contrib := oh.Where(upd, upd.ZerosLike()).Sum(k).Cast(dt)
		if mode == "add" {
			return data.Add(contrib).Cast(dt), nil
		}
		return hit.Where(contrib, data), nil
	case "mul":
		terms := oh.Where(upd, upd.OnesLike())
		kk := k
		if kk < 0 {
			kk += terms.Ndim()
		}
		return data.Mul(prodReduce(terms, []int{kk}, false)).Cast(dt), nil
	case "max", "min":
		low := math.Inf(-1)
		if !dt.IsFloat() {
			low = dt.Min()
		}
		if mode == "min" {
			m := oh.Where(upd, upd.FullLike(-low)).Min(k)
			if !dt.IsFloat() {
				m = oh.Where(upd, upd.FullLike(math.MaxInt32)).Min(k)
			}
			return hit.Where(data.Minimum(m), data), nil
		}
		m := oh.Where(upd, upd.FullLike(low)).Max(k)
		return hit.Where(data.Maximum(m), data), nil
	}
	return nil, fmt.Errorf("reduction %q: %w", mode, ErrUnsupported)
}

func unravel(i int, s []int) []int64 {
	co := make([]int64, len(s))
	for d := len(s) - 1; d >= 0; d-- {
		co[d] = int64(i % s[d])
		i /= s[d]
	}
	return co
}

var _ = tensor.KeepDim
