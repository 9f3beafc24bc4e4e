package tensor

import (
	"slices"

	"github.com/gradforge/gradforge/framework/lazy"
	rt "github.com/gradforge/gradforge/framework/runtime"
)

// convMatmul is Conv for one group, lowered as im2col plus a matmul, with its own gradient
// rule. Differentiating the sliding windows op by op turns the input gradient into a sum over
// the repeated, reshaped views that pool builds (a scatter: every input element gathers its
// copies through div/mod index arithmetic); here it is instead the transposed convolution
// of the output gradient (zero-interleaved by the stride, padded, kernel flipped, channels
// swapped), which is again im2col plus a matmul. The weight gradient reuses the forward's
// column buffer. The matmuls are what the CPU code generator tiles and vectorizes best.
func (t *Tensor) convMatmul(w *Tensor, pads [][2]int, stride, dil []int) *Tensor {
	n := w.Ndim() - 2
	x, wd := buffered(t.Detach()), w.Detach()
	cols, out := im2col(x.Pad(pads), w.node.Shape[2:], stride, dil)
	y := colsTimes(cols, wd.Reshape(w.node.Shape[0], -1).T(), t.node.Shape[0], out)
	if noGrad.Load() > 0 {
		return y
	}
	y = &Tensor{node: y.node, src: []*Tensor{t, w}}
	y.vjp = func(g *Tensor) []*Tensor {
		g = buffered(g) // read by both gradients, the input's nine times over
		k := w.node.Shape[2:]
		bs, cout, cin := t.node.Shape[0], w.node.Shape[0], w.node.Shape[1]
		// dw[co, (ci,k)] = Σ_b Σ_o dy[b, co, o] · cols[b, o, (ci,k)], with batch and positions
		// kept as two reduce loops (one merged row index would need a div and a mod per step).
		// A GPU gives one thread per output, and a weight has too few of them (18k threads
		// walking 62k products took 4.6 ms of an 8 ms step on an H200): there it sums each
		// image's products first, then the images.
		p := prod(g.node.Shape[2:])
		dw := g.Reshape(bs, cout, p, 1).Mul(cols.Reshape(bs, 1, p, -1))
		if d, err := rt.Get(t.Device()); err == nil && d.Language() != "c" && bs > 1 {
			dw = dw.Sum(2).Contiguous().Sum(0)
		} else {
			dw = dw.Sum(0, 2)
		}
		dw = dw.Reshape(w.node.Shape...)
		// dx: the output gradient with stride-1 zeros between its elements, padded so that a
		// stride-1 correlation with the flipped kernel lands exactly on x's positions.
		d := g
		for i := range n {
			if s := stride[i]; s > 1 {
				sh := slices.Clone(d.node.Shape)
				o := sh[2+i]
				ins := slices.Insert(slices.Clone(sh), 3+i, 1) // [..., o, 1, ...] padded to [..., o, s, ...]
				p := make([][2]int, len(ins))
				p[3+i][1] = s - 1
				sh[2+i] = o * s
				d = d.Reshape(ins...).Pad(p).Reshape(sh...)
				cut := fullRanges(d)
				cut[2+i][1] = (o-1)*s + 1
				d = d.Shrink(cut)
			}
		}
		gp := make([][2]int, d.Ndim())
		for i := range n {
			span := dil[i] * (k[i] - 1)
			padded := t.node.Shape[2+i] + pads[2+i][0] + pads[2+i][1]
			r := (padded - span - 1) % stride[i] // rows the forward's last window never reached
			gp[2+i] = [2]int{span - pads[2+i][0], span - pads[2+i][1] + r}
		}
		flip := make([]int, n)
		for i := range flip {
			flip[i] = 2 + i
		}
		// wt[(co,k'), ci] = w[co, ci, flipped k']
		wt := w.Flip(flip...).Permute(append(append([]int{0}, seq(2, 2+n)...), 1)...).Reshape(cout*prod(k), cin)
		dcols, _ := im2col(d.Pad(gp), k, slices.Repeat([]int{1}, n), dil)
		dx := colsTimes(dcols, wt, bs, t.node.Shape[2:])
		return []*Tensor{dx, dw}
	}
	return y
}

// im2col lays out the windows of x ([batch, c, spatial...]) as rows: [batch·outputs, c·kernel],
// in a buffer of their own, and returns the output spatial shape.
func im2col(x *Tensor, k, stride, dil []int) (*Tensor, []int) {
	n := len(k)
	win := x.pool("Conv", k, stride, dil) // [batch, c, out..., k...]
	out := slices.Clone(win.node.Shape[2 : 2+n])
	order := append(append(append([]int{0}, seq(2, 2+n)...), 1), seq(2+n, 2+2*n)...)
	rows := x.node.Shape[0] * prod(out)
	// Copied in the window's own shape: its view is a single strided one there, so the copy
	// loops index it directly; the row-major reshape of the copy is free.
	return win.Permute(order...).Contiguous().Reshape(rows, -1), out
}

// colsTimes multiplies im2col rows by a [c·kernel, cout] matrix (made contiguous so the
// matmul vectorizes along cout) and returns [batch, cout, out...].
func colsTimes(cols, m *Tensor, bs int, out []int) *Tensor {
	cout := m.node.Shape[1]
	y := cols.Matmul(m.Contiguous()).Reshape(append(append([]int{bs}, out...), cout)...)
	// Stored channel-major like any activation, so the batch norm after it reads contiguous rows.
	return y.Permute(append([]int{0, len(out) + 1}, seq(1, len(out)+1)...)...).Contiguous()
}

// sharedGrad reports whether x's gradient rule hands g to two or more sources that need
// gradients while g is an expression worth computing once: then every consumer (a batch
// norm's four backward reductions, say) would otherwise recompute it in its own kernel.
func sharedGrad(x, g *Tensor) bool {
	users := 0
	for _, s := range x.src {
		if needsGrad(s, nil) {
			users++
		}
	}
	if users < 2 || x.vjp != nil || g.node.Realized() {
		return false
	}
	ops, seen := 0, map[*lazy.Node]bool{}
	var count func(n *lazy.Node)
	count = func(n *lazy.Node) {
		if seen[n] || ops >= 4 || n.Realized() || n.Op == lazy.Load || n.Op == lazy.Const || n.Op == lazy.Contiguous {
			return
		}
		seen[n] = true
		if !n.Op.IsMovement() {
			ops++
		}
		if n.Op.IsReduce() {
			return
		}
		for _, s := range n.Src {
			count(s)
		}
	}
	count(g.node)
	return ops >= 4
}

// buffered gives a computed value a buffer of its own, so that im2col, which reads every
// element once per kernel position, does not recompute it (a batch norm, ReLU and pooling
// before a convolution would otherwise run nine times).
func buffered(t *Tensor) *Tensor {
	if t.node.Realized() || t.node.Op == lazy.Load {
		return t
	}
	return t.Contiguous()
}
