package nn

import (
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Linear is y = x·Wᵀ + b with W shaped [out, in].
type Linear struct{ Weight, Bias *T }

// NewLinear makes a Linear layer with PyTorch's default initialisation.
func NewLinear(in, out int, bias bool) *Linear {
	l := &Linear{Weight: kaiming(out, in)}
	if bias {
		l.Bias = uniform(1/math.Sqrt(float64(in)), out)
	}
	return l
}

// Forward applies the layer to x shaped [..., in].
func (l *Linear) Forward(x *T) *T {
	y := x.Matmul(l.Weight.T())
	if l.Bias != nil {
		y = y.Add(l.Bias)
	}
	return y
}

// Conv2d is a 2-d convolution layer; Weight is [out, in/groups, kh, kw].
type Conv2d struct {
	Weight, Bias *T
	Opt          tensor.Window `nn:"-"`
}

// NewConv2d makes a Conv2d with square kernels and PyTorch's default initialisation.
func NewConv2d(in, out, kernel int, opt tensor.Window, bias bool) *Conv2d {
	g := max(opt.Groups, 1)
	c := &Conv2d{Weight: kaiming(out, in/g, kernel, kernel), Opt: opt}
	if bias {
		c.Bias = uniform(1/math.Sqrt(float64(in/g*kernel*kernel)), out)
	}
	return c
}

// Forward convolves x shaped [batch, in, h, w].
func (c *Conv2d) Forward(x *T) *T { return x.Conv2d(c.Weight, c.Bias, c.Opt) }

// MaxPool2d and AvgPool2d pool over square windows (stride defaults to the kernel).
func MaxPool2d(x *T, kernel int, opt tensor.Window) *T { return x.MaxPool([]int{kernel, kernel}, opt) }
func AvgPool2d(x *T, kernel int, opt tensor.Window) *T { return x.AvgPool([]int{kernel, kernel}, opt) }

// BatchNorm normalises over every dim but the channel dim (1) with batch statistics in
// training and running statistics in evaluation, as PyTorch's BatchNorm1d/2d/3d do.
type BatchNorm struct {
	Weight, Bias  *T
	RunningMean   *T      `nn:"running_mean"` // PyTorch's names, so state dicts carry over
	RunningVar    *T      `nn:"running_var"`
	Eps, Momentum float64 `nn:"-"`
	Training      bool    `nn:"-"`
}

// NewBatchNorm makes a BatchNorm over c channels in training mode.
func NewBatchNorm(c int) *BatchNorm {
	return &BatchNorm{
		Weight: tensor.Ones(c).Contiguous().SetRequiresGrad(true), Bias: tensor.Zeros(c).Contiguous().SetRequiresGrad(true),
		RunningMean: tensor.Zeros(c).Contiguous(), RunningVar: tensor.Ones(c).Contiguous(),
		Eps: 1e-5, Momentum: 0.1, Training: true,
	}
}

// SetTraining switches between batch and running statistics.
func (b *BatchNorm) SetTraining(on bool) { b.Training = on }

// Forward normalises x shaped [batch, c, ...].
func (b *BatchNorm) Forward(x *T) *T {
	shape := make([]int, x.Ndim())
	axes := []int{0}
	for i := range shape {
		shape[i] = 1
		if i >= 2 {
			axes = append(axes, i)
		}
	}
	shape[1] = -1
	var mean, variance *T
	if b.Training {
		mean = x.Mean(axes...)
		d := x.Sub(mean.Reshape(shape...))
		variance = d.Mul(d).Mean(axes...)
		n := float64(x.Numel() / x.Shape()[1])
		// The running variance is unbiased, as in PyTorch; the update is a detached side effect.
		m := b.Momentum
		b.RunningMean.Assign(b.RunningMean.Mul(1 - m).Add(mean.Detach().Mul(m)).Detach())
		b.RunningVar.Assign(b.RunningVar.Mul(1 - m).Add(variance.Detach().Mul(m * n / math.Max(n-1, 1))).Detach())
	} else {
		mean, variance = b.RunningMean, b.RunningVar
	}
	y := x.Sub(mean.Reshape(shape...)).Mul(variance.Add(b.Eps).Rsqrt().Reshape(shape...))
	if b.Weight != nil {
		y = y.Mul(b.Weight.Reshape(shape...)).Add(b.Bias.Reshape(shape...))
	}
	return y
}

// LayerNorm normalises over the trailing len(Shape) dims.
type LayerNorm struct {
	Weight, Bias *T
	Eps          float64 `nn:"-"`
	Dims         int     `nn:"-"`
}

// NewLayerNorm normalises over the trailing dims given by shape, with an affine transform.
func NewLayerNorm(shape ...int) *LayerNorm {
	return &LayerNorm{Weight: tensor.Ones(shape...).Contiguous().SetRequiresGrad(true), Bias: tensor.Zeros(shape...).Contiguous().SetRequiresGrad(true), Eps: 1e-5, Dims: len(shape)}
}

func lastAxes(n int) []int {
	axes := make([]int, n+1)
	for i := range n {
		axes[i] = -1 - i
	}
	axes[n] = tensor.KeepDim
	return axes
}

// Forward normalises x.
func (l *LayerNorm) Forward(x *T) *T {
	axes := lastAxes(l.Dims)
	d := x.Sub(x.Mean(axes...))
	y := d.Mul(d.Mul(d).Mean(axes...).Add(l.Eps).Rsqrt())
	if l.Weight != nil {
		y = y.Mul(l.Weight).Add(l.Bias)
	}
	return y
}

// RMSNorm scales by the root mean square over the last dim.
type RMSNorm struct {
	Weight *T
	Eps    float64 `nn:"-"`
}

// NewRMSNorm makes an RMSNorm over a last dim of size n.
func NewRMSNorm(n int, eps float64) *RMSNorm {
	return &RMSNorm{Weight: tensor.Ones(n).Contiguous().SetRequiresGrad(true), Eps: eps}
}

// Forward normalises x.
func (r *RMSNorm) Forward(x *T) *T {
	return x.Mul(x.Mul(x).Mean(-1, tensor.KeepDim).Add(r.Eps).Rsqrt()).Mul(r.Weight)
}

// Embedding maps integer ids to rows of Weight [vocab, dim].
type Embedding struct{ Weight *T }

// NewEmbedding makes an Embedding with N(0, 1) rows, as PyTorch does.
func NewEmbedding(vocab, dim int) *Embedding {
	return &Embedding{Weight: tensor.Randn(vocab, dim).Contiguous().SetRequiresGrad(true)}
}

// Forward looks up ids (any integer dtype, any shape) and returns [..., dim]: one indexed
// load per output element; the gradient reaches exactly the rows used.
func (e *Embedding) Forward(ids *T) *T { return e.Weight.IndexSelect(0, ids) }

// Dropout zeroes elements with probability P in training and scales the rest by 1/(1-P).
type Dropout struct {
	P        float64
	Training bool
}

// SetTraining turns dropout on or off.
func (d *Dropout) SetTraining(on bool) { d.Training = on }

// Forward applies dropout.
func (d *Dropout) Forward(x *T) *T {
	if !d.Training || d.P == 0 {
		return x
	}
	keep := onDevice(tensor.Rand(x.Shape()...), x).Ge(d.P)
	return keep.Where(x.Mul(1/(1-d.P)), 0.0)
}

// ScaledDotProductAttention is softmax(q·kᵀ/√d + mask)·v over the last two dims; mask (may be
// nil) is added to the scores (a bool mask keeps where true); causal hides later keys.
func ScaledDotProductAttention(q, k, v, mask *T, causal bool) *T {
	d := q.Shape()[q.Ndim()-1]
	s := q.Matmul(k.T()).Mul(1 / math.Sqrt(float64(d)))
	if causal {
		L, S := s.Shape()[s.Ndim()-2], s.Shape()[s.Ndim()-1]
		i := arange(L, s).Reshape(L, 1)
		j := arange(S, s).Reshape(1, S)
		s = j.Gt(i).Where(math.Inf(-1), s)
	}
	if mask != nil {
		if mask.DType() == dtype.Bool {
			s = mask.Where(s, math.Inf(-1))
		} else {
			s = s.Add(mask)
		}
	}
	return s.Softmax(-1).Matmul(v)
}

// arange is 0…n-1 on like's device.
func arange(n int, like *T) *T { return onDevice(tensor.Arange(0, float64(n), 1), like) }

// onDevice moves a freshly made host tensor to like's device.
func onDevice(t, like *T) *T {
	out, err := t.To(like.Device())
	if err != nil {
		panic(&tensor.Error{Op: "To", Msg: err.Error()})
	}
	return out
}
