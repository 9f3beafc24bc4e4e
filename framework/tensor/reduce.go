package tensor

import (
	"math"
	"slices"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
	rt "github.com/gradforge/gradforge/framework/runtime"
)

// KeepDim, passed among the axes of a reduction, keeps the reduced dims with size 1:
// x.Sum(1, tensor.KeepDim).
const KeepDim = math.MinInt

func promote(a, b dtype.DType) dtype.DType { return dtype.Promote(a, b) }

// axes parses reduction arguments: the axes (none means all) and the KeepDim flag.
func (t *Tensor) axes(op string, args []int) (red []bool, keep bool) {
	red = make([]bool, t.Ndim())
	any := false
	for _, a := range args {
		if a == KeepDim {
			keep = true
			continue
		}
		red[axis(op, a, t.Ndim(), t.node.Shape)] = true
		any = true
	}
	if !any {
		for i := range red {
			red[i] = true
		}
	}
	return red, keep
}

// reduce applies a reduce primitive over the flagged dims.
func (t *Tensor) reduce(op lazy.Op, red []bool, keep bool) *Tensor {
	shape, kept := t.Shape(), []int{}
	var axes []int
	for i, r := range red {
		if r {
			axes = append(axes, i)
			shape[i] = 1
		} else {
			kept = append(kept, t.node.Shape[i])
		}
	}
	out := t
	if k := t.splitReduce(shape); k > 1 {
		part := t.Reshape(k, t.Numel()/k).reduce(op, []bool{false, true}, false)
		out = part.reduce(op, []bool{true}, false).Reshape(shape...)
	} else if len(axes) > 0 {
		out = apply(op, t.DType(), shape, axes, t)
	}
	if keep {
		return out
	}
	return out.Reshape(kept...)
}

// splitReduce is how many parts a full reduction of t to shape is split into, or 1. A loop
// device parallelises kernels over their outputs, so one long reduce to a single value would
// use one core; in two stages (parts, then their total) every core gets a share.
func (t *Tensor) splitReduce(shape []int) int {
	if prod(shape) != 1 || t.Numel() < 1<<18 {
		return 1
	}
	if d, err := rt.Get(t.Device()); err != nil || d.Language() != "c" {
		return 1
	}
	for k := 256; k >= 16; k-- {
		if t.Numel()%k == 0 {
			return k
		}
	}
	return 1
}

// Sum adds over the axes (all when none are given; add KeepDim to keep them). Bools and
// integers sum as int64, 16-bit floats accumulate in float32, as in PyTorch.
func (t *Tensor) Sum(axes ...int) *Tensor {
	red, keep := t.axes("Sum", axes)
	switch dt := t.DType(); {
	case !dt.IsFloat():
		return t.Cast(dtype.Int64).reduce(lazy.Sum, red, keep)
	case dt != dtype.Float32:
		return t.Cast(dtype.Float32).reduce(lazy.Sum, red, keep).Cast(dt)
	}
	return t.reduce(lazy.Sum, red, keep)
}

// Max is the largest element over the axes (NaN wins).
func (t *Tensor) Max(axes ...int) *Tensor {
	red, keep := t.axes("Max", axes)
	return t.reduce(lazy.ReduceMax, red, keep)
}

// Min is the smallest element over the axes.
func (t *Tensor) Min(axes ...int) *Tensor {
	red, keep := t.axes("Min", axes)
	return t.flipSign().reduce(lazy.ReduceMax, red, keep).flipSign()
}

// count is the number of elements the axes cover.
func (t *Tensor) count(red []bool) int {
	n := 1
	for i, r := range red {
		if r {
			n *= t.node.Shape[i]
		}
	}
	return n
}

// Mean is the average over the axes.
func (t *Tensor) Mean(axes ...int) *Tensor {
	red, _ := t.axes("Mean", axes)
	x := t.float()
	return x.Sum(axes...).Mul(1 / float64(max(t.count(red), 0)))
}

// Var is the variance over the axes with Bessel's correction (PyTorch's default).
func (t *Tensor) Var(axes ...int) *Tensor {
	red, _ := t.axes("Var", axes)
	keepAxes := append(slices.Clone(axes), KeepDim)
	x := t.float()
	d := x.Sub(x.Mean(keepAxes...))
	return d.Mul(d).Sum(axes...).Mul(1 / float64(max(t.count(red)-1, 0)))
}

// Std is √Var.
func (t *Tensor) Std(axes ...int) *Tensor { return t.Var(axes...).Sqrt() }

// Argmax is the index (int64) of the first largest element along axis; with no axis, of the
// flattened tensor. Add KeepDim to keep the axis.
func (t *Tensor) Argmax(args ...int) *Tensor {
	x, ax, keep := t, -1, false
	for _, a := range args {
		if a == KeepDim {
			keep = true
		} else {
			ax = a
		}
	}
	if ax == -1 && !slices.ContainsFunc(args, func(a int) bool { return a != KeepDim }) {
		x = t.Flatten()
		ax = 0
	}
	ax = axis("Argmax", ax, x.Ndim(), x.node.Shape)
	n := x.node.Shape[ax]
	shape := make([]int, x.Ndim())
	for i := range shape {
		shape[i] = 1
	}
	shape[ax] = n
	rev := Arange(float64(n), 0, -1) // n, n-1, …, 1: first max wins
	rev.node.Device = x.Device()     // the host data uploads to x's device, not the default one
	rev = rev.Reshape(shape...)
	hit := x.Eq(x.Max(ax, KeepDim)).Where(rev, 0)
	idx := hit.Max(ax, KeepDim).Neg().Add(n).Cast(dtype.Int64)
	if !keep {
		idx = idx.Squeeze(ax)
	}
	return idx
}

// Argmin is the index of the first smallest element (see Argmax).
func (t *Tensor) Argmin(args ...int) *Tensor { return t.flipSign().Argmax(args...) }

// Softmax is exp(t)/sum(exp(t)) along axis, shifted by the max for stability.
func (t *Tensor) Softmax(ax int) *Tensor {
	x := t.float()
	e := x.Sub(x.Max(ax, KeepDim)).Exp()
	return e.Div(e.Sum(ax, KeepDim))
}

// LogSoftmax is t - log(sum(exp(t))) along axis, computed stably.
func (t *Tensor) LogSoftmax(ax int) *Tensor {
	x := t.float()
	s := x.Sub(x.Max(ax, KeepDim))
	return s.Sub(s.Exp().Sum(ax, KeepDim).Log())
}

// Matmul is the matrix product with NumPy semantics: 1-D operands become a row or column,
// leading (batch) dims broadcast. It is a broadcast multiply and a sum over the shared dim,
// which the scheduler fuses into one kernel.
func (t *Tensor) Matmul(x *Tensor) *Tensor {
	a, b := t, x
	if a.Ndim() == 0 || b.Ndim() == 0 {
		fail("Matmul", "shapes %v and %v: both need at least one dim", t.node.Shape, x.node.Shape)
	}
	if a.Ndim() == 1 {
		a = a.Unsqueeze(0)
	}
	if b.Ndim() == 1 {
		b = b.Unsqueeze(1)
	}
	k := a.node.Shape[a.Ndim()-1]
	if b.node.Shape[b.Ndim()-2] != k {
		fail("Matmul", "shapes %v and %v: inner dims %d and %d differ", t.node.Shape, x.node.Shape, k, b.node.Shape[b.Ndim()-2])
	}
	as := slices.Insert(a.Shape(), a.Ndim()-1, 1)   // [..., n, 1, k]
	bt := b.Transpose(-1, -2)                       // [..., m, k]
	bs := slices.Insert(bt.Shape(), bt.Ndim()-2, 1) // [..., 1, m, k]
	prod := a.Reshape(as...).Mul(bt.Reshape(bs...))
	out := prod.Sum(-1).Cast(prod.DType()) // integer products stay in their dtype, unlike Sum
	if t.Ndim() == 1 {
		out = out.Squeeze(-2)
	}
	if x.Ndim() == 1 {
		out = out.Squeeze(-1)
	}
	return out
}

// Dot is Matmul.
func (t *Tensor) Dot(x *Tensor) *Tensor { return t.Matmul(x) }
