package onnx

import (
	"github.com/gradforge/gradforge/framework/dtype"
)

// RNN, GRU and LSTM: the time loop runs on the host, each step a handful of lazy matrix
// products, so a whole sequence becomes one graph.

type rnnArgs struct {
	x                 *T // [S, B, I]
	w, r, b           *T // per direction slices taken later
	h0, c0, p         *T
	hidden, dirs      int
	layout            int
	directions        []bool // reverse per direction
	acts              []string
	clip              float64
	linearBeforeReset bool
}

func (c *call) rnnArgs(in []*val, gates int) rnnArgs {
	a := rnnArgs{hidden: int(c.int("hidden_size", 0)), layout: int(c.int("layout", 0)), clip: c.float("clip", 0)}
	get := func(i int) *T {
		if len(in) > i && in[i] != nil {
			return in[i].t.Cast(dtype.Float32)
		}
		return nil
	}
	a.x, a.w, a.r, a.b = get(0), get(1), get(2), get(3)
	if a.layout == 1 {
		a.x = a.x.Permute(1, 0, 2)
	}
	a.h0 = get(5)
	if gates == 4 {
		a.c0, a.p = get(6), get(7)
	}
	if a.layout == 1 {
		if a.h0 != nil {
			a.h0 = a.h0.Permute(1, 0, 2)
		}
		if a.c0 != nil {
			a.c0 = a.c0.Permute(1, 0, 2)
		}
	}
	if a.hidden == 0 {
		a.hidden = a.r.Shape()[2]
	}
	switch c.str("direction", "forward") {
	case "reverse":
		a.directions = []bool{true}
	case "bidirectional":
		a.directions = []bool{false, true}
	default:
		a.directions = []bool{false}
	}
	if at := c.attr("activations"); at != nil {
		for _, s := range at.Strings {
			a.acts = append(a.acts, string(s))
		}
	}
	a.linearBeforeReset = c.int("linear_before_reset", 0) == 1
	return a
}

func activate(name string, x *T) *T {
	switch name {
	case "Tanh":
		return tanh(x)
	case "Relu":
		return x.Relu()
	}
	return x.Sigmoid()
}

func (a rnnArgs) act(d, i int, def string) string {
	per := len(a.acts) / max(len(a.directions), 1)
	if per > 0 && d*per+i < len(a.acts) {
		return a.acts[d*per+i]
	}
	return def
}

// run drives the time loop; step computes the next state from input xt and the state.
func (a rnnArgs) run(c *call, gates int, step func(d int, xt *T, st []*T) []*T) (y *T, finals [][]*T) {
	s, bsz := a.x.Shape()[0], a.x.Shape()[1]
	var ys []*T
	for d, rev := range a.directions {
		st := []*T{}
		h := c.slice([]float32{0}, []int{}...).BroadcastTo(bsz, a.hidden)
		if a.h0 != nil {
			h = a.h0.Slice(0, d, d+1).Squeeze(0)
		}
		st = append(st, h)
		if gates == 4 {
			cc := h.ZerosLike()
			if a.c0 != nil {
				cc = a.c0.Slice(0, d, d+1).Squeeze(0)
			}
			st = append(st, cc)
		}
		outs := make([]*T, s)
		for i := 0; i < s; i++ {
			t := i
			if rev {
				t = s - 1 - i
			}
			st = step(d, a.x.Slice(0, t, t+1).Squeeze(0), st)
			outs[t] = st[0].Unsqueeze(0)
		}
		yd := outs[0]
		if s > 1 {
			yd = outs[0].Cat(0, outs[1:]...)
		}
		ys = append(ys, yd.Unsqueeze(1)) // [S, 1, B, H]
		finals = append(finals, st)
	}
	y = ys[0]
	if len(ys) > 1 {
		y = ys[0].Cat(1, ys[1:]...)
	}
	return y, finals
}

func (a rnnArgs) outputs(c *call, y *T, finals [][]*T, like *val) []*val {
	stack := func(k int) *T {
		var ts []*T
		for _, f := range finals {
			ts = append(ts, f[k].Unsqueeze(0))
		}
		if len(ts) == 1 {
			return ts[0]
		}
		return ts[0].Cat(0, ts[1:]...)
	}
	yh := stack(0)
	if a.layout == 1 {
		y = y.Permute(2, 0, 1, 3)
		yh = yh.Permute(1, 0, 2)
	}
	outs := []*val{same(y, like), same(yh, like)}
	if len(finals[0]) > 1 {
		yc := stack(1)
		if a.layout == 1 {
			yc = yc.Permute(1, 0, 2)
		}
		outs = append(outs, same(yc, like))
	}
	return outs
}

// gate returns x·Wᵀ + h·Rᵀ + biases for gate g of direction d.
func (a rnnArgs) gate(d, g, gates int, xt, h *T) (*T, *T) {
	hs := a.hidden
	w := a.w.Slice(0, d, d+1).Squeeze(0).Slice(0, g*hs, (g+1)*hs)
	r := a.r.Slice(0, d, d+1).Squeeze(0).Slice(0, g*hs, (g+1)*hs)
	xw := xt.Matmul(w.T())
	hr := h.Matmul(r.T())
	if a.b != nil {
		b := a.b.Slice(0, d, d+1).Squeeze(0)
		xw = xw.Add(b.Slice(0, g*hs, (g+1)*hs))
		hr = hr.Add(b.Slice(0, (gates+g)*hs, (gates+g+1)*hs))
	}
	return xw, hr
}

func (a rnnArgs) clipped(x *T) *T {
	if a.clip > 0 {
		return x.Clip(-a.clip, a.clip)
	}
	return x
}

func init() {
	ops["RNN"] = func(c *call, in []*val) ([]*val, error) {
		a := c.rnnArgs(in, 1)
		y, f := a.run(c, 1, func(d int, xt *T, st []*T) []*T {
			xw, hr := a.gate(d, 0, 1, xt, st[0])
			return []*T{activate(a.act(d, 0, "Tanh"), a.clipped(xw.Add(hr)))}
		})
		return a.outputs(c, y, f, in[0]), nil
	}
	ops["GRU"] = func(c *call, in []*val) ([]*val, error) {
		a := c.rnnArgs(in, 3)
		y, f := a.run(c, 3, func(d int, xt *T, st []*T) []*T {
			h := st[0]
			f, g := a.act(d, 0, "Sigmoid"), a.act(d, 1, "Tanh")
			zx, zh := a.gate(d, 0, 3, xt, h)
			rx, rh := a.gate(d, 1, 3, xt, h)
			z := activate(f, a.clipped(zx.Add(zh)))
			r := activate(f, a.clipped(rx.Add(rh)))
			var hh *T
			if a.linearBeforeReset {
				hx, hr := a.gate(d, 2, 3, xt, h)
				hh = activate(g, a.clipped(hx.Add(r.Mul(hr))))
			} else {
				hx, _ := a.gate(d, 2, 3, xt, h)
				_, hr := a.gate(d, 2, 3, xt, r.Mul(h))
				hh = activate(g, a.clipped(hx.Add(hr)))
			}
			return []*T{z.Neg().Add(1).Mul(hh).Add(z.Mul(h))}
		})
		return a.outputs(c, y, f, in[0]), nil
	}
	ops["LSTM"] = func(c *call, in []*val) ([]*val, error) {
		a := c.rnnArgs(in, 4)
		y, f := a.run(c, 4, func(d int, xt *T, st []*T) []*T {
			h, cprev := st[0], st[1]
			f, g, hact := a.act(d, 0, "Sigmoid"), a.act(d, 1, "Tanh"), a.act(d, 2, "Tanh")
			pre := func(k int) *T { x, r := a.gate(d, k, 4, xt, h); return x.Add(r) }
			peep := func(k int, cs *T) *T {
				if a.p == nil {
					return nil
				}
				hs := a.hidden
				return a.p.Slice(0, d, d+1).Squeeze(0).Slice(0, k*hs, (k+1)*hs).Mul(cs)
			}
			pi, po, pf, pc := pre(0), pre(1), pre(2), pre(3)
			if p := peep(0, cprev); p != nil {
				pi = pi.Add(p)
				pf = pf.Add(peep(2, cprev))
			}
			i := activate(f, a.clipped(pi))
			ff := activate(f, a.clipped(pf))
			ct := ff.Mul(cprev).Add(i.Mul(activate(g, a.clipped(pc))))
			if p := peep(1, ct); p != nil {
				po = po.Add(p)
			}
			o := activate(f, a.clipped(po))
			return []*T{o.Mul(activate(hact, ct)), ct}
		})
		return a.outputs(c, y, f, in[0]), nil
	}
}
