// Package optim holds optimizers (SGD, Adam, AdamW) and learning-rate schedules. An
// optimizer's Step reads each parameter's Grad, updates the parameter in place (Assign) and
// realizes the new values, their optimizer state and any extra tensors in one schedule, so
// the whole update runs as a handful of fused kernels.
package optim

import (
	"math"

	"github.com/gradforge/gradforge/framework/tensor"
)

type T = tensor.Tensor

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step applies one update and realizes the parameters, the optimizer's state and extra
	// (for example BatchNorm running statistics or the loss, so they share the schedule).
	Step(extra ...*T) error
	// ZeroGrad clears every parameter's gradient.
	ZeroGrad()
	// SetLR changes the learning rate (schedules call it).
	SetLR(lr float64)
}

type base struct {
	Params []*T
	LR     float64
}

func (b *base) ZeroGrad() {
	for _, p := range b.Params {
		p.Grad = nil
	}
}

func (b *base) SetLR(lr float64) { b.LR = lr }

// update replaces p's value with v (detached, so p stays a leaf) keeping RequiresGrad.
func update(p, v *T) { p.Assign(v.Detach()) }

// SGD is stochastic gradient descent with optional momentum (Nesterov or heavy ball) and L2
// weight decay, following PyTorch's formulation.
type SGD struct {
	base
	Momentum, WeightDecay float64
	Nesterov              bool
	buf                   []*T
}

// NewSGD makes an SGD optimizer over params.
func NewSGD(params []*T, lr, momentum, weightDecay float64, nesterov bool) *SGD {
	return &SGD{base: base{params, lr}, Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov, buf: make([]*T, len(params))}
}

// Step applies one SGD update.
func (o *SGD) Step(extra ...*T) error {
	out := extra
	for i, p := range o.Params {
		if p.Grad == nil {
			continue
		}
		g := p.Grad
		if o.WeightDecay != 0 {
			g = g.Add(p.Detach().Mul(o.WeightDecay))
		}
		if o.Momentum != 0 {
			if o.buf[i] == nil {
				o.buf[i] = g.Detach()
			} else {
				o.buf[i] = o.buf[i].Mul(o.Momentum).Add(g).Detach()
			}
			if o.Nesterov {
				g = g.Add(o.buf[i].Mul(o.Momentum))
			} else {
				g = o.buf[i]
			}
			out = append(out, o.buf[i])
		}
		update(p, p.Detach().Sub(g.Mul(o.LR)))
		out = append(out, p)
	}
	return tensor.Realize(out...)
}

// Adam is Adam (Kingma & Ba) with bias correction; with Decoupled set it is AdamW, whose
// weight decay shrinks the weights directly instead of adding to the gradient.
type Adam struct {
	base
	Beta1, Beta2, Eps, WeightDecay float64
	Decoupled                      bool
	step                           int
	m, v                           []*T
}

// NewAdam makes an Adam optimizer with PyTorch's defaults for betas and eps.
func NewAdam(params []*T, lr float64) *Adam {
	return &Adam{base: base{params, lr}, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, m: make([]*T, len(params)), v: make([]*T, len(params))}
}

// NewAdamW makes an AdamW optimizer (decoupled weight decay, PyTorch's default 0.01).
func NewAdamW(params []*T, lr, weightDecay float64) *Adam {
	a := NewAdam(params, lr)
	a.WeightDecay, a.Decoupled = weightDecay, true
	return a
}

// Step applies one Adam update.
func (o *Adam) Step(extra ...*T) error {
	o.step++
	// The bias corrections change every step: as buffers, not literals, so the update kernels
	// keep one source and are compiled once instead of once per step.
	c1 := tensor.FromSlice([]float32{float32(1 - math.Pow(o.Beta1, float64(o.step)))}, 1)
	c2 := tensor.FromSlice([]float32{float32(1 - math.Pow(o.Beta2, float64(o.step)))}, 1)
	out := extra
	for i, p := range o.Params {
		if p.Grad == nil {
			continue
		}
		g, w := p.Grad, p.Detach()
		if o.WeightDecay != 0 && !o.Decoupled {
			g = g.Add(w.Mul(o.WeightDecay))
		}
		if o.m[i] == nil {
			o.m[i], o.v[i] = g.ZerosLike(), g.ZerosLike()
		}
		o.m[i] = o.m[i].Mul(o.Beta1).Add(g.Mul(1 - o.Beta1)).Detach()
		o.v[i] = o.v[i].Mul(o.Beta2).Add(g.Mul(g).Mul(1 - o.Beta2)).Detach()
		if o.WeightDecay != 0 && o.Decoupled {
			w = w.Mul(1 - o.LR*o.WeightDecay)
		}
		upd := o.m[i].Div(c1.Cast(g.DType())).Div(o.v[i].Div(c2.Cast(g.DType())).Sqrt().Add(o.Eps)).Mul(o.LR)
		update(p, w.Sub(upd))
		out = append(out, p, o.m[i], o.v[i])
	}
	return tensor.Realize(out...)
}

// Schedule gives the learning rate for a step (counting from 0).
type Schedule func(step int) float64

// StepLR multiplies the base rate by gamma every size steps.
func StepLR(lr float64, size int, gamma float64) Schedule {
	return func(step int) float64 { return lr * math.Pow(gamma, float64(step/size)) }
}

// Cosine anneals from lr to min over total steps along a half cosine, then stays at min.
func Cosine(lr, min float64, total int) Schedule {
	return func(step int) float64 {
		if step >= total {
			return min
		}
		return min + (lr-min)*(1+math.Cos(math.Pi*float64(step)/float64(total)))/2
	}
}

// Warmup ramps linearly from 0 to s's rate over the first n steps, then follows s (shifted).
func Warmup(n int, s Schedule) Schedule {
	return func(step int) float64 {
		if step < n {
			return s(0) * float64(step+1) / float64(n)
		}
		return s(step - n)
	}
}
