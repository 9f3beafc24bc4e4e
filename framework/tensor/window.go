package tensor

import (
	"math"
	"slices"
)

// Window describes a sliding window over the trailing (spatial) dims, for Conv and pooling.
// The zero value is stride 1 (the kernel size for pooling), no padding, no dilation.
type Window struct {
	Stride   []int // one value for every dim or one per dim
	Padding  []int // one value, one per dim, or begin/end pairs per dim ([h0, h1, w0, w1])
	Dilation []int // one value for every dim or one per dim
	Groups   int   // Conv only: input and output channels split into this many groups
}

// perDim expands an option of 0, 1 or n values to n values.
func perDim(op, name string, v []int, n, def int) []int {
	out := make([]int, n)
	switch len(v) {
	case 0, 1:
		for i := range out {
			out[i] = def
			if len(v) == 1 {
				out[i] = v[0]
			}
		}
	case n:
		copy(out, v)
	default:
		fail(op, "%s %v for %d spatial dims", name, v, n)
	}
	for _, x := range out {
		if x < 1 {
			fail(op, "%s %v must be positive", name, v)
		}
	}
	return out
}

// pads turns Window.Padding into begin/end pairs for every dim of t (zero for the leading ones).
func (t *Tensor) pads(op string, p []int, n int) [][2]int {
	out := make([][2]int, t.Ndim())
	lead := t.Ndim() - n
	switch len(p) {
	case 0:
	case 1, n:
		for i := range n {
			v := p[min(i, len(p)-1)]
			out[lead+i] = [2]int{v, v}
		}
	case 2 * n:
		for i := range n {
			out[lead+i] = [2]int{p[2*i], p[2*i+1]}
		}
	default:
		fail(op, "padding %v for %d spatial dims", p, n)
	}
	return out
}

// pool returns the sliding windows of size k over the last len(k) dims: shape
// leading + outputs + k, where output i is (size-dilation*(k-1)-1)/stride+1. It is movement
// ops only (repeat, shrink, reshape, permute), so convolutions and pooling fuse into the
// reduce that consumes the windows.
func (t *Tensor) pool(op string, k, stride, dilation []int) *Tensor {
	n, lead := len(k), t.Ndim()-len(k)
	if lead < 0 {
		fail(op, "kernel %v has more dims than input %v", k, t.node.Shape)
	}
	in := t.node.Shape[lead:]
	o := make([]int, n)
	x := t
	tiles := true // windows side by side (stride = kernel, no dilation): a reshape suffices
	for i := range n {
		span := dilation[i]*(k[i]-1) + 1
		if in[i] < span {
			fail(op, "input %v is smaller than the kernel %v (dilation %v)", t.node.Shape, k, dilation)
		}
		o[i] = (in[i]-span)/stride[i] + 1
		tiles = tiles && stride[i] == k[i] && dilation[i] == 1
	}
	if tiles { // cut to whole tiles, split every dim into (windows, kernel), kernel dims last
		cut := fullRanges(t)
		shape := slices.Clone(t.node.Shape[:lead])
		order := seq(0, lead)
		for i := range n {
			cut[lead+i] = [2]int{0, o[i] * k[i]}
			shape = append(shape, o[i], k[i])
			order = append(order, lead+2*i)
		}
		for i := range n {
			order = append(order, lead+2*i+1)
		}
		return t.Shrink(cut).Reshape(shape...).Permute(order...)
	}
	// Read row length i+d from a k-fold repeat of each dim: row r then starts at r*d, so
	// column c of row r is element r*d+c. A stride longer than a row needs a longer input.
	pad := make([][2]int, x.Ndim())
	size := slices.Clone(in)
	for i := range n {
		if extra := o[i]*stride[i] - (in[i] + dilation[i]); extra > 0 {
			pad[lead+i][1], size[i] = extra, in[i]+extra
		}
	}
	x = x.Pad(pad)
	reps := make([]int, x.Ndim())
	for i := range reps {
		reps[i] = 1
		if i >= lead {
			j := i - lead
			reps[i] = (k[j]*(size[j]+dilation[j]) + size[j] - 1) / size[j]
		}
	}
	x = x.Repeat(reps...)
	shape := slices.Clone(t.node.Shape[:lead])
	cut := fullRanges(x)
	for i := range n {
		cut[lead+i] = [2]int{0, k[i] * (size[i] + dilation[i])}
		shape = append(shape, k[i], size[i]+dilation[i])
	}
	x = x.Shrink(cut).Reshape(shape...)
	// Keep the first o*s columns of every row, then every s-th one.
	cut, shape = fullRanges(x), slices.Clone(t.node.Shape[:lead])
	for i := range n {
		cut[lead+2*i+1] = [2]int{0, o[i] * stride[i]}
		shape = append(shape, k[i], o[i], stride[i])
	}
	x = x.Shrink(cut).Reshape(shape...)
	cut, shape = fullRanges(x), slices.Clone(t.node.Shape[:lead])
	for i := range n {
		cut[lead+3*i+2] = [2]int{0, 1}
		shape = append(shape, k[i], o[i])
	}
	x = x.Shrink(cut).Reshape(shape...)
	order := make([]int, 0, x.Ndim())
	for i := range lead {
		order = append(order, i)
	}
	for i := range n {
		order = append(order, lead+2*i+1)
	}
	for i := range n {
		order = append(order, lead+2*i)
	}
	return x.Permute(order...)
}

// seq is lo, lo+1, …, hi-1.
func seq(lo, hi int) []int {
	s := make([]int, 0, max(hi-lo, 0))
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

func fullRanges(t *Tensor) [][2]int {
	r := make([][2]int, t.Ndim())
	for i, d := range t.node.Shape {
		r[i] = [2]int{0, d}
	}
	return r
}

// Conv is the N-d convolution (cross-correlation, as in PyTorch) of t, shaped
// [batch, cin, spatial...], with weights w, shaped [cout, cin/groups, kernel...], plus bias
// ([cout], may be nil). Conv2d is the 2-d case.
func (t *Tensor) Conv(w, bias *Tensor, o Window) *Tensor {
	n := w.Ndim() - 2
	if n < 1 || t.Ndim() != n+2 {
		fail("Conv", "input %v and weight %v: want [batch, cin, spatial...] and [cout, cin/groups, kernel...]", t.node.Shape, w.node.Shape)
	}
	g := max(o.Groups, 1)
	bs, cin, cout, rcin := t.node.Shape[0], t.node.Shape[1], w.node.Shape[0], w.node.Shape[1]
	if cin != g*rcin || cout%g != 0 {
		fail("Conv", "input %v and weight %v do not fit %d groups", t.node.Shape, w.node.Shape, g)
	}
	k := w.node.Shape[2:]
	stride, dil := perDim("Conv", "stride", o.Stride, n, 1), perDim("Conv", "dilation", o.Dilation, n, 1)
	// Training lowers to matmuls with a transposed-conv gradient (conv_grad.go); inference
	// keeps the single fused kernel below.
	if g == 1 && t.DType().IsFloat() && noGrad.Load() == 0 && (needsGrad(t, nil) || needsGrad(w, nil)) {
		y := t.convMatmul(w, t.pads("Conv", o.Padding, n), stride, dil)
		if bias != nil {
			y = y.Add(bias.Reshape(append([]int{1, cout}, slices.Repeat([]int{1}, n)...)...))
		}
		return y
	}
	x := t.Pad(t.pads("Conv", o.Padding, n))
	x = x.pool("Conv", k, stride, dil)
	out := x.node.Shape[2 : 2+n] // x: [bs, cin, out..., k...]
	// [bs, g, 1, rcin, out..., k...] against weights [1, g, rcout, rcin, 1..., k...]; the
	// channel and kernel dims are summed.
	xs := append([]int{bs, g, 1, rcin}, x.node.Shape[2:]...)
	ws := append([]int{1, g, cout / g, rcin}, slices.Repeat([]int{1}, n)...)
	ws = append(ws, k...)
	axes := []int{3}
	for i := range n {
		axes = append(axes, 4+n+i)
	}
	y := x.Reshape(xs...).Mul(w.Reshape(ws...)).Sum(axes...)
	y = y.Reshape(append([]int{bs, cout}, out...)...)
	if bias != nil {
		y = y.Add(bias.Reshape(append([]int{1, cout}, slices.Repeat([]int{1}, n)...)...))
	}
	return y
}

// Conv2d is Conv for 4-d input [batch, cin, h, w].
func (t *Tensor) Conv2d(w, bias *Tensor, o Window) *Tensor {
	if t.Ndim() != 4 || w.Ndim() != 4 {
		fail("Conv2d", "input %v and weight %v must be 4-d", t.node.Shape, w.node.Shape)
	}
	return t.Conv(w, bias, o)
}

// windows pads (with value) and pools the last len(k) dims with pooling defaults.
func (t *Tensor) windows(op string, k []int, o Window, value float64) *Tensor {
	n := len(k)
	x := t.Pad(t.pads(op, o.Padding, n), value)
	return x.pool(op, k, perDim(op, "stride", o.Stride, n, 1), perDim(op, "dilation", o.Dilation, n, 1))
}

func (t *Tensor) poolAxes(n int) []int {
	axes := make([]int, n)
	for i := range axes {
		axes[i] = t.Ndim() + i
	}
	return axes
}

// MaxPool takes the max over windows of size kernel on the trailing dims (padding counts as
// -inf; stride defaults to the kernel size, as in PyTorch).
func (t *Tensor) MaxPool(kernel []int, o Window) *Tensor {
	if len(o.Stride) == 0 {
		o.Stride = kernel
	}
	return t.windows("MaxPool", kernel, o, math.Inf(-1)).Max(t.poolAxes(len(kernel))...)
}

// AvgPool averages over windows of size kernel on the trailing dims (padding counts as zeros,
// PyTorch's count_include_pad; stride defaults to the kernel size).
func (t *Tensor) AvgPool(kernel []int, o Window) *Tensor {
	if len(o.Stride) == 0 {
		o.Stride = kernel
	}
	return t.windows("AvgPool", kernel, o, 0).Mean(t.poolAxes(len(kernel))...)
}
