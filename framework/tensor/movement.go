package tensor

import (
	"slices"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
)

// axis normalizes a possibly negative axis of an n-dim tensor.
func axis(op string, a, n int, shape []int) int {
	if a < -n || a >= n || (n == 0 && a != 0 && a != -1) {
		fail(op, "axis %d out of range for shape %v", a, shape)
	}
	if a < 0 {
		a += n
	}
	return a
}

func (t *Tensor) move(op lazy.Op, shape []int, arg any) *Tensor {
	return apply(op, t.DType(), shape, arg, t)
}

// Reshape gives the elements a new shape with the same count; one dim may be -1 (inferred).
func (t *Tensor) Reshape(shape ...int) *Tensor {
	shape = slices.Clone(shape)
	infer, known := -1, 1
	for i, d := range shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			fail("Reshape", "bad dim %d in %v (from %v)", d, shape, t.node.Shape)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 || t.Numel()%known != 0 {
			fail("Reshape", "cannot infer -1 in %v from %v", shape, t.node.Shape)
		}
		shape[infer] = t.Numel() / known
	}
	if prod(shape) != t.Numel() {
		fail("Reshape", "cannot reshape %v to %v", t.node.Shape, shape)
	}
	if slices.Equal(shape, t.node.Shape) {
		return t
	}
	return t.move(lazy.Reshape, shape, slices.Clone(shape))
}

// Permute reorders the dims: dim i of the result is dim order[i] of t.
func (t *Tensor) Permute(order ...int) *Tensor {
	n := t.Ndim()
	if len(order) != n {
		fail("Permute", "order %v for shape %v", order, t.node.Shape)
	}
	o := make([]int, n)
	seen := make([]bool, n)
	identity := true
	for i, a := range order {
		o[i] = axis("Permute", a, n, t.node.Shape)
		if seen[o[i]] {
			fail("Permute", "order %v repeats a dim (shape %v)", order, t.node.Shape)
		}
		seen[o[i]] = true
		identity = identity && o[i] == i
	}
	if identity {
		return t
	}
	shape := make([]int, n)
	for i, a := range o {
		shape[i] = t.node.Shape[a]
	}
	return t.move(lazy.Permute, shape, o)
}

// Transpose swaps dims a and b.
func (t *Tensor) Transpose(a, b int) *Tensor {
	n := t.Ndim()
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	a, b = axis("Transpose", a, n, t.node.Shape), axis("Transpose", b, n, t.node.Shape)
	order[a], order[b] = order[b], order[a]
	return t.Permute(order...)
}

// T is the transpose of the last two dims.
func (t *Tensor) T() *Tensor { return t.Transpose(-2, -1) }

// Expand broadcasts dims of size 1 (and adds leading dims); -1 keeps a dim.
func (t *Tensor) Expand(shape ...int) *Tensor {
	shape = slices.Clone(shape)
	off := len(shape) - t.Ndim()
	for i := range shape {
		if shape[i] == -1 {
			if i < off {
				fail("Expand", "-1 for a new dim in %v (from %v)", shape, t.node.Shape)
			}
			shape[i] = t.node.Shape[i-off]
		}
	}
	return t.BroadcastTo(shape...)
}

// Pad adds pads[i][0] elements before and pads[i][1] after dim i, filled with value (0 by
// default). Negative pads cut instead. len(pads) must equal the number of dims.
func (t *Tensor) Pad(pads [][2]int, value ...float64) *Tensor {
	if len(pads) != t.Ndim() {
		fail("Pad", "%d pads for shape %v", len(pads), t.node.Shape)
	}
	cut := make([][2]int, len(pads))
	grow := make([][2]int, len(pads))
	anyCut, anyGrow := false, false
	for i, p := range pads {
		cut[i] = [2]int{max(0, -p[0]), t.node.Shape[i] - max(0, -p[1])}
		grow[i] = [2]int{max(0, p[0]), max(0, p[1])}
		anyCut = anyCut || p[0] < 0 || p[1] < 0
		anyGrow = anyGrow || p[0] > 0 || p[1] > 0
	}
	if anyCut {
		t = t.Shrink(cut)
	}
	if !anyGrow {
		return t
	}
	shape := make([]int, len(pads))
	for i, g := range grow {
		shape[i] = t.node.Shape[i] + g[0] + g[1]
	}
	out := t.move(lazy.Pad, shape, grow)
	if len(value) > 0 && value[0] != 0 {
		inside := t.OnesLike().Cast(dtype.Bool).move(lazy.Pad, shape, grow)
		out = inside.Where(out, value[0])
	}
	return out
}

// Shrink keeps the range [r[i][0], r[i][1]) of every dim i.
func (t *Tensor) Shrink(r [][2]int) *Tensor {
	if len(r) != t.Ndim() {
		fail("Shrink", "%d ranges for shape %v", len(r), t.node.Shape)
	}
	shape := make([]int, len(r))
	full := true
	for i, b := range r {
		if b[0] < 0 || b[1] < b[0] || b[1] > t.node.Shape[i] {
			fail("Shrink", "range %v of dim %d outside shape %v", b, i, t.node.Shape)
		}
		shape[i] = b[1] - b[0]
		full = full && shape[i] == t.node.Shape[i]
	}
	if full {
		return t
	}
	return t.move(lazy.Shrink, shape, slices.Clone(r))
}

// Slice keeps [start, end) of one dim; negative values count from the end and out-of-range
// values clamp, as Python slices do.
func (t *Tensor) Slice(dim, start, end int) *Tensor {
	dim = axis("Slice", dim, t.Ndim(), t.node.Shape)
	n := t.node.Shape[dim]
	clamp := func(i int) int {
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n)
	}
	start, end = clamp(start), clamp(end)
	r := make([][2]int, t.Ndim())
	for i, d := range t.node.Shape {
		r[i] = [2]int{0, d}
	}
	r[dim] = [2]int{start, max(start, end)}
	return t.Shrink(r)
}

// Flip reverses the given dims.
func (t *Tensor) Flip(axes ...int) *Tensor {
	f := make([]bool, t.Ndim())
	for _, a := range axes {
		f[axis("Flip", a, t.Ndim(), t.node.Shape)] = true
	}
	if !slices.Contains(f, true) {
		return t
	}
	return t.move(lazy.Flip, t.node.Shape, f)
}

// Squeeze drops the given dims of size 1, or every dim of size 1 when none are given.
func (t *Tensor) Squeeze(axes ...int) *Tensor {
	drop := make([]bool, t.Ndim())
	for _, a := range axes {
		a = axis("Squeeze", a, t.Ndim(), t.node.Shape)
		drop[a] = t.node.Shape[a] == 1
	}
	var shape []int
	for i, d := range t.node.Shape {
		if !(drop[i] || (len(axes) == 0 && d == 1)) {
			shape = append(shape, d)
		}
	}
	return t.Reshape(shape...)
}

// Unsqueeze inserts a dim of size 1 at position a (negative counts from the end of the
// result).
func (t *Tensor) Unsqueeze(a int) *Tensor {
	a = axis("Unsqueeze", a, t.Ndim()+1, t.node.Shape)
	shape := slices.Insert(t.Shape(), a, 1)
	return t.Reshape(shape...)
}

// Flatten merges dims start..end (inclusive; default all) into one.
func (t *Tensor) Flatten(dims ...int) *Tensor {
	if t.Ndim() == 0 {
		return t.Reshape(1)
	}
	start, end := 0, t.Ndim()-1
	if len(dims) > 0 {
		start = axis("Flatten", dims[0], t.Ndim(), t.node.Shape)
	}
	if len(dims) > 1 {
		end = axis("Flatten", dims[1], t.Ndim(), t.node.Shape)
	}
	if start > end {
		fail("Flatten", "start dim %d after end dim %d (shape %v)", start, end, t.node.Shape)
	}
	shape := append(slices.Clone(t.node.Shape[:start]), prod(t.node.Shape[start:end+1]))
	return t.Reshape(append(shape, t.node.Shape[end+1:]...)...)
}

// Cat joins t and others along dim; every other dim must match. It is one fused kernel of
// padded views added together.
func (t *Tensor) Cat(dim int, others ...*Tensor) *Tensor {
	all := append([]*Tensor{t}, others...)
	dim = axis("Cat", dim, t.Ndim(), t.node.Shape)
	total := 0
	dt := t.DType()
	for _, o := range all {
		if o.Ndim() != t.Ndim() {
			fail("Cat", "shapes %v and %v differ in rank", t.node.Shape, o.node.Shape)
		}
		for i := range o.node.Shape {
			if i != dim && o.node.Shape[i] != t.node.Shape[i] {
				fail("Cat", "shapes %v and %v differ outside dim %d", t.node.Shape, o.node.Shape, dim)
			}
		}
		total += o.node.Shape[dim]
		dt = promote(dt, o.DType())
	}
	var out *Tensor
	off := 0
	for _, o := range all {
		p := make([][2]int, t.Ndim())
		p[dim] = [2]int{off, total - off - o.node.Shape[dim]}
		off += o.node.Shape[dim]
		x := o.Cast(dt).Pad(p)
		if out == nil {
			out = x
		} else {
			out = out.binary(lazy.Add, x)
		}
	}
	return out
}

// Stack joins t and others (all of one shape) along a new dim.
func (t *Tensor) Stack(dim int, others ...*Tensor) *Tensor {
	dim = axis("Stack", dim, t.Ndim()+1, t.node.Shape)
	us := make([]*Tensor, len(others))
	for i, o := range others {
		if !slices.Equal(o.node.Shape, t.node.Shape) {
			fail("Stack", "shapes %v and %v differ", t.node.Shape, o.node.Shape)
		}
		us[i] = o.Unsqueeze(dim)
	}
	return t.Unsqueeze(dim).Cat(dim, us...)
}

// Repeat tiles t reps[i] times along dim i (reps may add leading dims), like torch.repeat.
func (t *Tensor) Repeat(reps ...int) *Tensor {
	if len(reps) < t.Ndim() {
		fail("Repeat", "%d repeats for shape %v", len(reps), t.node.Shape)
	}
	s := append(make([]int, len(reps)-t.Ndim()), t.node.Shape...)
	var pre, big, out []int
	for i, d := range s {
		if i < len(reps)-t.Ndim() {
			d = 1
		}
		pre = append(pre, 1, d)
		big = append(big, reps[i], d)
		out = append(out, reps[i]*d)
	}
	return t.Reshape(pre...).Expand(big...).Reshape(out...)
}

// scanAbove is the size of IndexSelect's k×k gradient matmul (multiply-adds) above which a
// sort and segmented scan sum the picks instead: on a CPU the scan's extra kernels cost more
// up to about 512 picks of 256 floats, four times less at 4096.
var scanAbove = 1 << 28

// IndexSelect picks entries of t along axis ax by the integers in idx (any shape): the result
// has t's shape with that axis replaced by idx's dims (PyTorch's index_select for a 1-D idx,
// NumPy's take). It is one indexed load per output element; indices are clamped into range,
// so no read leaves t. The gradient, a scatter-add, sums the gradient rows of equal indices
// (as a one-hot matmul when there are at least as many picks as rows).
func (t *Tensor) IndexSelect(ax int, idx *Tensor) *Tensor {
	s := t.node.Shape
	ax = axis("IndexSelect", ax, len(s), s)
	if !idx.DType().IsInt() {
		fail("IndexSelect", "indices must be integers, not %s", idx.DType())
	}
	outer, n, inner, k := prod(s[:ax]), s[ax], prod(s[ax+1:]), idx.Numel()
	shape := slices.Concat(s[:ax], idx.node.Shape, s[ax+1:])
	if n == 0 || k == 0 || inner == 0 || outer == 0 {
		return &Tensor{node: &lazy.Node{Op: lazy.Const, DType: t.DType(), Arg: 0.0, Shape: shape, Device: t.Device()}}
	}
	it := dtype.Int32
	if t.Numel() >= 1<<31 {
		it = dtype.Int64
	}
	ramp := func(m, stride int, shape ...int) *Tensor { // m positions apart by stride, on t's device
		r := Arange(0, float64(m), 1)
		r.node.Device = t.Device()
		return r.Cast(it).Mul(stride).Reshape(shape...)
	}
	ci := idx.Cast(it).Maximum(0).Minimum(n - 1).Reshape(k)
	pos := ci.Mul(inner).Reshape(1, k, 1)
	if outer > 1 {
		pos = pos.Add(ramp(outer, n*inner, outer, 1, 1))
	}
	if inner > 1 {
		pos = pos.Add(ramp(inner, 1, 1, 1, inner))
	}
	y := apply(lazy.IndexLoad, t.DType(), []int{outer, k, inner}, nil, t, pos.BroadcastTo(outer, k, inner))
	if y.src != nil {
		y.vjp = func(g *Tensor) []*Tensor {
			g, c := g.Reshape(outer, k, inner), ci.Detach()
			if k >= n { // onehot(idx)ᵀ · g, a matmul per outer block: n·k·inner per block
				return []*Tensor{c.Reshape(k, 1).Eq(ramp(n, 1, 1, n)).Cast(g.DType()).T().Matmul(g).Reshape(s...), nil}
			}
			// Fewer picks than rows. Few picks: sum the gradient rows of equal indices by a k×k
			// matmul; each row of t loads the sum at its last pick (its run's end), or 0.
			end, run := ramp(k, 1, 1, k), g
			if k*k*outer*inner <= scanAbove {
				run = c.Reshape(k, 1).Eq(c.Reshape(1, k)).Cast(g.DType()).Matmul(g)
			} else {
				// Many: sort the picks by (index, position), ranks from k·k comparisons with no
				// dim factor, and sum runs of equal indices by a segmented scan, log₂k passes.
				key := c.Cast(dtype.Int64).Mul(k).Add(ramp(k, 1, k).Cast(dtype.Int64))
				end = key.Reshape(1, k).Lt(key.Reshape(k, 1)).Cast(it).Sum(1).Reshape(1, k)
				perm := end.Eq(ramp(k, 1, k, 1)).Where(ramp(k, 1, 1, k), 0).Sum(1)
				sorted := c.IndexSelect(0, perm)
				run = g.IndexSelect(1, perm)
				for d := 1; d < k; d *= 2 {
					same := sorted.Shrink([][2]int{{d, k}}).Eq(sorted.Shrink([][2]int{{0, k - d}})).Pad([][2]int{{d, 0}})
					prev := run.Shrink([][2]int{{0, outer}, {0, k - d}, {0, inner}}).Pad([][2]int{{0, 0}, {d, 0}, {0, 0}})
					run = run.Add(same.Reshape(1, k, 1).Where(prev, 0)).Contiguous()
				}
			}
			end = c.Reshape(1, k).Eq(ramp(n, 1, n, 1)).Where(end, -1).Max(1)
			return []*Tensor{end.Ge(0).Reshape(1, n, 1).Where(run.IndexSelect(1, end), 0).Reshape(s...), nil}
		}
	}
	return y.Reshape(shape...)
}
