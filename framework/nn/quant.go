package nn

import (
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Quantized is a tensor stored as int8 with a float32 scale per tensor or per channel
// (symmetric: value ≈ q·scale, q in [-127, 127]).
type Quantized struct {
	Q     *T // int8, the original shape
	Scale *T // float32: a scalar, or [channels, 1, 1, …] for per-channel along dim 0
}

// Quantize rounds w to int8 with one scale (perChannel false) or one per slice along dim 0.
func Quantize(w *T, perChannel bool) *Quantized {
	var amax *T
	if perChannel && w.Ndim() > 1 {
		axes := make([]int, 0, w.Ndim())
		for i := 1; i < w.Ndim(); i++ {
			axes = append(axes, i)
		}
		amax = w.Abs().Max(append(axes, tensor.KeepDim)...)
	} else {
		amax = w.Abs().Max()
	}
	scale := amax.Maximum(1e-12).Div(127).Detach()
	x := w.Detach().Div(scale)
	// Round half away from zero: truncation of |x|+0.5, with x's sign put back.
	q := x.Abs().Add(0.5).Minimum(127).Cast(dtype.Int32).Mul(x.Sign().Cast(dtype.Int32)).Cast(dtype.Int8)
	return &Quantized{Q: q, Scale: scale}
}

// Dequantize is the float32 value q·scale as a lazy expression: used as a weight, the int8
// load and the multiply fuse into the consuming kernel, so no float copy is stored.
func (q *Quantized) Dequantize() *T { return q.Q.Cast(dtype.Float32).Mul(q.Scale) }

// QuantizeWeights stores every weight of model with two or more dims (Linear, Conv2d,
// Embedding) as int8 and makes the model's tensor the dequantizing expression, realizing
// only the int8 values and scales. It returns the quantized tensors by name.
func QuantizeWeights(model any, perChannel bool) (map[string]*Quantized, error) {
	out := map[string]*Quantized{}
	var keep []*T
	for _, n := range State(model) {
		if !strings.HasSuffix(n.Name, "weight") || n.Tensor.Ndim() < 2 {
			continue
		}
		q := Quantize(n.Tensor, perChannel)
		out[n.Name] = q
		keep = append(keep, q.Q, q.Scale)
	}
	if err := tensor.Realize(keep...); err != nil {
		return nil, err
	}
	for _, n := range State(model) {
		if q, ok := out[n.Name]; ok {
			n.Tensor.Assign(q.Dequantize())
			n.Tensor.RequiresGrad = false
		}
	}
	return out, nil
}
