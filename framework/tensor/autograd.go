package tensor

import (
	"math"
	"sync/atomic"

	"github.com/gradforge/gradforge/framework/lazy"
)

// Backward fills Grad on every tensor with RequiresGrad that t depends on with dt/dx, adding
// to any Grad already there. t must hold one element (a loss). Gradients are lazy tensors
// like any other, so the backward graph fuses with the forward one when realized.
//
// Each primitive op has one derivative rule (vjp below); every API op, being made of
// primitives, gets its gradient from them.
func (t *Tensor) Backward() {
	if t.Numel() != 1 {
		fail("Backward", "needs a one-element tensor (a loss), got shape %v", t.node.Shape)
	}
	if !t.DType().IsFloat() {
		fail("Backward", "needs a float tensor, got %s", t.DType())
	}
	order, need := gradOrder(t)
	grads := map[*Tensor]*Tensor{t: t.OnesLike()}
	for i := len(order) - 1; i >= 0; i-- {
		x := order[i]
		g := grads[x]
		if g == nil {
			continue
		}
		delete(grads, x)
		if x.RequiresGrad {
			g := g.Detach()
			if x.Grad != nil {
				g = x.Grad.Add(g)
			}
			x.Grad = g
		}
		if len(x.src) == 0 { // a leaf, or a detached value whose node still names its op
			continue
		}
		if sharedGrad(x, g) {
			g = g.Contiguous()
		}
		for j, sg := range vjp(x, g) {
			s := x.src[j]
			if sg == nil || !needsGrad(s, need) {
				continue
			}
			sg = sg.Cast(s.DType())
			if prev := grads[s]; prev != nil {
				sg = prev.Add(sg)
			}
			grads[s] = sg
		}
	}
}

// gradOrder lists the tensors t depends on through float ops that lead to a tensor needing
// a gradient, sources before users, and returns needsGrad's answers for all it visited.
func gradOrder(t *Tensor) ([]*Tensor, map[*Tensor]bool) {
	need := map[*Tensor]bool{}
	var order []*Tensor
	seen := map[*Tensor]bool{}
	var visit func(x *Tensor)
	visit = func(x *Tensor) {
		if seen[x] {
			return
		}
		seen[x] = true
		for _, s := range x.src {
			visit(s)
		}
		if needsGrad(x, need) {
			order = append(order, x)
		}
	}
	visit(t)
	return order, need
}

// needsGrad reports whether a gradient must flow into x: it asks for one, or one of its
// sources does through a differentiable path. memo may be nil.
func needsGrad(x *Tensor, memo map[*Tensor]bool) bool {
	if v, ok := memo[x]; ok {
		return v
	}
	v := x.RequiresGrad
	if !v && x.DType().IsFloat() {
		for _, s := range x.src {
			if needsGrad(s, memo) {
				v = true
				break
			}
		}
	}
	if memo != nil {
		memo[x] = v
	}
	return v
}

// vjp returns the gradient for each source of x given the gradient g of x (nil where none
// flows). This is the whole of autograd's knowledge of the primitives.
func vjp(x *Tensor, g *Tensor) []*Tensor {
	src := x.src
	if x.vjp != nil {
		return x.vjp(g)
	}
	switch x.node.Op {
	case lazy.Neg:
		return []*Tensor{g.Neg()}
	case lazy.Exp2:
		return []*Tensor{g.Mul(x.Detach()).Mul(math.Ln2)}
	case lazy.Log2:
		return []*Tensor{g.Div(src[0].Detach().Mul(math.Ln2))}
	case lazy.Sin:
		return []*Tensor{g.Mul(src[0].Detach().Cos())}
	case lazy.Sqrt:
		return []*Tensor{g.Div(x.Detach().Mul(2))}
	case lazy.Recip:
		r := x.Detach()
		return []*Tensor{g.Mul(r).Mul(r).Neg()}
	case lazy.Cast:
		if src[0].DType().IsFloat() {
			return []*Tensor{g}
		}
	case lazy.Contiguous:
		return []*Tensor{g}
	case lazy.Add:
		return []*Tensor{g, g}
	case lazy.Mul:
		return []*Tensor{g.Mul(src[1].Detach()), g.Mul(src[0].Detach())}
	case lazy.Max: // ties share the gradient equally, as PyTorch's maximum does
		a, b := src[0].Detach(), src[1].Detach()
		wa := a.Gt(b).Cast(g.DType()).Add(a.Eq(b).Cast(g.DType()).Mul(0.5))
		return []*Tensor{g.Mul(wa), g.Mul(wa.Neg().Add(1))}
	case lazy.MulAdd:
		return []*Tensor{g.Mul(src[1].Detach()), g.Mul(src[0].Detach()), g}
	case lazy.Where:
		c := src[0].Detach()
		return []*Tensor{nil, c.Where(g, 0.0), c.Where(0.0, g)}
	case lazy.Sum:
		return []*Tensor{g.BroadcastTo(src[0].node.Shape...)}
	case lazy.ReduceMax: // split among the maxima, as PyTorch's amax does
		in := src[0].Detach()
		hit := in.Eq(x.Detach().BroadcastTo(in.node.Shape...)).Cast(g.DType())
		cnt := apply(lazy.Sum, hit.DType(), x.node.Shape, x.node.Arg, hit)
		return []*Tensor{hit.Mul(g.Div(cnt).BroadcastTo(in.node.Shape...))}
	case lazy.Reshape:
		return []*Tensor{g.Reshape(src[0].node.Shape...)}
	case lazy.Permute:
		order := x.node.Arg.([]int)
		inv := make([]int, len(order))
		for i, o := range order {
			inv[o] = i
		}
		return []*Tensor{g.Permute(inv...)}
	case lazy.Expand:
		var axes []int
		for i, d := range src[0].node.Shape {
			if d != x.node.Shape[i] {
				axes = append(axes, i)
			}
		}
		if len(axes) == 0 {
			return []*Tensor{g}
		}
		return []*Tensor{apply(lazy.Sum, g.DType(), src[0].node.Shape, axes, g)}
	case lazy.Pad:
		pads := x.node.Arg.([][2]int)
		r := make([][2]int, len(pads))
		for i, p := range pads {
			r[i] = [2]int{p[0], p[0] + src[0].node.Shape[i]}
		}
		return []*Tensor{g.Shrink(r)}
	case lazy.Shrink:
		r := x.node.Arg.([][2]int)
		pads := make([][2]int, len(r))
		for i, b := range r {
			pads[i] = [2]int{b[0], src[0].node.Shape[i] - b[1]}
		}
		return []*Tensor{g.Pad(pads)}
	case lazy.Flip:
		var axes []int
		for i, f := range x.node.Arg.([]bool) {
			if f {
				axes = append(axes, i)
			}
		}
		return []*Tensor{g.Flip(axes...)}
	}
	return nil // comparisons, integer ops, bit ops, bitcasts and leaves pass no gradient
}

// SetRequiresGrad marks t as a tensor whose gradient Backward should fill, and returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	t.RequiresGrad = on
	return t
}

// ZeroGrad drops t's accumulated gradient.
func (t *Tensor) ZeroGrad() { t.Grad = nil }

// noGrad counts the NoGrad scopes in progress.
var noGrad atomic.Int32

// NoGrad runs f without recording the graph autograd needs: tensors made inside have no
// sources, so inference keeps no history alive and Backward stops at them. Scopes nest and
// cover every goroutine while they run.
func NoGrad(f func()) {
	noGrad.Add(1)
	defer noGrad.Add(-1)
	f()
}
