package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Convolutions and pooling. Windows are gathered with movement ops only (unfold): for every
// kernel offset a strided view of the padded input, stacked on a new axis; the products and
// reductions over the window then fuse into one kernel.

// window is the geometry of a convolution or pool over d spatial dims.
type window struct {
	kernel, strides, dilations []int
	pads                       []int // begin…, end…
	out                        []int
}

// geometry reads kernel_shape, strides, dilations, pads and auto_pad for input spatial
// sizes in. ceil selects ceil_mode output sizes (pools); the extra end padding ceil mode
// needs is added to pads and reported in extra.
func (c *call) geometry(in, kernel []int, ceil bool) (w window, extra []int) {
	d := len(in)
	w.kernel = kernel
	w.strides, _ = c.ints("strides")
	w.dilations, _ = c.ints("dilations")
	w.pads, _ = c.ints("pads")
	if w.strides == nil {
		w.strides = ones(d)
	}
	if w.dilations == nil {
		w.dilations = ones(d)
	}
	if w.pads == nil {
		w.pads = make([]int, 2*d)
	}
	w.pads = slices.Clone(w.pads)
	extra = make([]int, d)
	auto := c.str("auto_pad", "NOTSET")
	w.out = make([]int, d)
	for i := 0; i < d; i++ {
		dk := (kernel[i]-1)*w.dilations[i] + 1
		switch auto {
		case "SAME_UPPER", "SAME_LOWER":
			o := (in[i] + w.strides[i] - 1) / w.strides[i]
			total := max((o-1)*w.strides[i]+dk-in[i], 0)
			small, big := total/2, total-total/2
			if auto == "SAME_UPPER" {
				w.pads[i], w.pads[i+d] = small, big
			} else {
				w.pads[i], w.pads[i+d] = big, small
			}
			w.out[i] = o
			continue
		case "VALID":
			w.pads[i], w.pads[i+d] = 0, 0
		}
		span := in[i] + w.pads[i] + w.pads[i+d] - dk
		if ceil {
			o := (span+w.strides[i]-1)/w.strides[i] + 1
			if (o-1)*w.strides[i] >= in[i]+w.pads[i] {
				o--
			}
			w.out[i] = o
			extra[i] = max((o-1)*w.strides[i]+dk-(in[i]+w.pads[i]+w.pads[i+d]), 0)
		} else {
			w.out[i] = span/w.strides[i] + 1
		}
	}
	return w, extra
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// unfold turns x [N, C, S…] (already padded) into [N, C, O…, K…]: element (o, k) of a
// spatial dim is x[o·stride + k·dilation].
func unfold(x *T, w window) *T {
	d := len(w.kernel)
	for i := d - 1; i >= 0; i-- {
		a := 2 + i
		o, k, s, dl := w.out[i], w.kernel[i], w.strides[i], w.dilations[i]
		parts := make([]*T, k)
		for j := 0; j < k; j++ {
			start := j * dl
			v := x.Slice(a, start, start+(o-1)*s+1)
			if s > 1 {
				v = takeEvery(v, a, s, o)
			}
			parts[j] = v
		}
		x = parts[0].Stack(a+1, parts[1:]...)
	}
	order := []int{0, 1}
	for i := 0; i < d; i++ {
		order = append(order, 2+2*i)
	}
	for i := 0; i < d; i++ {
		order = append(order, 3+2*i)
	}
	return x.Permute(order...)
}

func padSpatial(x *T, pads, extra []int, value float64) *T {
	d := len(pads) / 2
	p := make([][2]int, 2+d)
	for i := 0; i < d; i++ {
		e := 0
		if extra != nil {
			e = extra[i]
		}
		p[2+i] = [2]int{pads[i], pads[i+d] + e}
	}
	return x.Pad(p, value)
}

func seq(from, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = from + i
	}
	return s
}

// conv is an N-d grouped convolution of x [N, C, S…] with w [M, C/g, K…].
func conv(c *call, x, w *T, b *T, group int) *T {
	xs, ws := x.Shape(), w.Shape()
	d := len(xs) - 2
	kernel, ok := c.ints("kernel_shape")
	if !ok {
		kernel = ws[2:]
	}
	win, _ := c.geometry(xs[2:], kernel, false)
	xp := padSpatial(x, win.pads, nil, 0)
	u := unfold(xp, win) // [N, C, O…, K…]
	n, ch, m := xs[0], xs[1], ws[0]
	us := append([]int{n, group, 1, ch / group}, win.out...)
	u = u.Reshape(append(us, kernel...)...)
	wsh := append([]int{1, group, m / group, ch / group}, ones(d)...)
	wr := w.Reshape(append(wsh, kernel...)...)
	red := append([]int{3}, seq(4+d, d)...)
	y := u.Mul(wr).Sum(red...) // [N, g, M/g, O…]
	y = y.Reshape(append([]int{n, m}, win.out...)...)
	if b != nil {
		y = y.Add(b.Reshape(append([]int{m}, ones(d)...)...))
	}
	return y
}

func init() {
	ops["Conv"] = func(c *call, in []*val) ([]*val, error) {
		var b *T
		if len(in) > 2 && in[2] != nil {
			b = in[2].t
		}
		return one(same(conv(c, in[0].t, in[1].t, b, int(c.int("group", 1))), in[0]))
	}
	ops["ConvInteger"] = func(c *call, in []*val) ([]*val, error) {
		x, w := in[0].t.Cast(dtype.Int32), in[1].t.Cast(dtype.Int32)
		if len(in) > 2 && in[2] != nil {
			x = x.Sub(in[2].t.Cast(dtype.Int32))
		}
		if len(in) > 3 && in[3] != nil { // per output channel when it is a vector
			z := in[3].t.Cast(dtype.Int32)
			if z.Numel() > 1 {
				z = z.Reshape(append([]int{z.Numel()}, ones(w.Ndim()-1)...)...)
			}
			w = w.Sub(z)
		}
		return one(tv(conv(c, x, w, nil, int(c.int("group", 1))), Int32))
	}
	ops["ConvTranspose"] = func(c *call, in []*val) ([]*val, error) {
		x, w := in[0].t, in[1].t
		xs, ws := x.Shape(), w.Shape()
		d := len(xs) - 2
		g := int(c.int("group", 1))
		kernel, ok := c.ints("kernel_shape")
		if !ok {
			kernel = ws[2:]
		}
		strides, ok := c.ints("strides")
		if !ok {
			strides = ones(d)
		}
		dil, ok := c.ints("dilations")
		if !ok {
			dil = ones(d)
		}
		outPad, ok := c.ints("output_padding")
		if !ok {
			outPad = make([]int, d)
		}
		pads, ok := c.ints("pads")
		if !ok {
			pads = make([]int, 2*d)
		}
		pads = slices.Clone(pads)
		outShape, hasOut := c.ints("output_shape")
		auto := c.str("auto_pad", "NOTSET")
		for i := 0; i < d; i++ {
			dk := (kernel[i]-1)*dil[i] + 1
			full := strides[i]*(xs[2+i]-1) + outPad[i] + dk
			if hasOut || auto == "SAME_UPPER" || auto == "SAME_LOWER" {
				target := xs[2+i] * strides[i]
				if hasOut {
					target = outShape[len(outShape)-d+i]
				}
				total := full - target
				if auto == "SAME_UPPER" {
					pads[i], pads[i+d] = total/2, total-total/2
				} else {
					pads[i], pads[i+d] = total-total/2, total/2
				}
			}
		}
		// Spread the input by the stride (zeros between elements), pad by the kernel's reach
		// less the padding, and run a stride-1 convolution with the flipped, transposed kernel.
		for i := 0; i < d; i++ {
			a := 2 + i
			s := strides[i]
			if s > 1 {
				sh := x.Shape()
				n := sh[a]
				x = x.Unsqueeze(a + 1)
				p := make([][2]int, x.Ndim())
				p[a+1] = [2]int{0, s - 1}
				x = x.Pad(p)
				sh[a] = n * s
				x = x.Reshape(sh...).Slice(a, 0, (n-1)*s+1)
			}
		}
		p := make([][2]int, 2+d)
		for i := 0; i < d; i++ {
			reach := (kernel[i] - 1) * dil[i]
			p[2+i] = [2]int{reach - pads[i], reach - pads[i+d] + outPad[i]}
		}
		x = x.Pad(p)
		cin, mg := ws[0], ws[1]
		wt := w.Reshape(append([]int{g, cin / g, mg}, kernel...)...)
		perm := append([]int{0, 2, 1}, seq(3, d)...)
		wt = wt.Permute(perm...).Reshape(append([]int{g * mg, cin / g}, kernel...)...).Flip(seq(2, d)...)
		sub := &call{e: c.e, n: &Node{Attrs: []*Attribute{
			{Name: "dilations", Ints: toInt64s(dil)},
			{Name: "kernel_shape", Ints: toInt64s(kernel)},
		}}, opset: c.opset}
		var b *T
		if len(in) > 2 && in[2] != nil {
			b = in[2].t
		}
		return one(same(conv(sub, x, wt, b, g), in[0]))
	}
	pool := func(kind string) opFunc {
		return func(c *call, in []*val) ([]*val, error) {
			x := in[0].t
			xs := x.Shape()
			d := len(xs) - 2
			kernel, _ := c.ints("kernel_shape")
			wantIdx := len(c.n.Outputs) > 1 && c.n.Outputs[1] != ""
			if wantIdx && kind != "MaxPool" {
				return nil, unsupported("%s with an Indices output", kind)
			}
			ceil := c.int("ceil_mode", 0) == 1
			win, extra := c.geometry(xs[2:], kernel, ceil)
			red := seq(2+d, d)
			switch kind {
			case "MaxPool":
				low := math.Inf(-1)
				if !x.DType().IsFloat() {
					low = x.DType().Min()
				}
				u := unfold(padSpatial(x, win.pads, extra, low), win)
				y := same(u.Max(red...), in[0])
				if !wantIdx {
					return one(y)
				}
				// Indices: the flat input position of each window's first maximum (row-major,
				// or column-major over the spatial dims when storage_order is 1).
				pos := make([]int64, prodInts(xs))
				sp := xs[2:]
				for i := range pos {
					co := unravel(i, xs)
					var off int64
					if c.int("storage_order", 0) == 1 {
						for j := d - 1; j >= 0; j-- {
							off = off*int64(sp[j]) + co[2+j]
						}
					} else {
						for j := 0; j < d; j++ {
							off = off*int64(sp[j]) + co[2+j]
						}
					}
					pos[i] = (co[0]*int64(xs[1])+co[1])*int64(prodInts(sp)) + off
				}
				ui := unfold(padSpatial(c.slice(pos, xs...), win.pads, extra, 0), win)
				k := prodInts(kernel)
				flat := append(append([]int{}, u.Shape()[:2+d]...), k)
				uf, uif := u.Reshape(flat...), ui.Reshape(flat...)
				am := uf.Argmax(-1, tensor.KeepDim)
				hit := am.Eq(c.arange(k).Reshape(append(ones(len(flat)-1), k)...))
				idx := hit.Where(uif, uif.ZerosLike()).Sum(-1)
				return []*val{y, tv(idx, Int64)}, nil
			case "LpPool":
				pw := c.float("p", 2)
				if a := c.attr("p"); a != nil && a.Type == AttrInt {
					pw = float64(a.I)
				}
				u := unfold(padSpatial(x, win.pads, extra, 0), win)
				return one(same(u.Abs().Pow(pw).Sum(red...).Pow(1/pw), in[0]))
			}
			u := unfold(padSpatial(x, win.pads, extra, 0), win)
			s := u.Sum(red...)
			// The divisor counts the window's cells inside the input (and inside the explicit
			// padding when count_include_pad is set), never the ceil-mode overhang.
			one1 := x.Slice(1, 0, 1).Slice(0, 0, 1).OnesLike().Cast(dtype.Float32)
			var mask *T
			if c.int("count_include_pad", 0) == 1 {
				mask = padSpatial(padSpatial(one1, win.pads, nil, 1), make([]int, 2*d), extra, 0)
			} else {
				mask = padSpatial(one1, win.pads, extra, 0)
			}
			cnt := unfold(mask, win).Sum(red...)
			return one(same(s.Div(cnt), in[0]))
		}
	}
	for _, k := range []string{"MaxPool", "AveragePool", "LpPool"} {
		ops[k] = pool(k)
	}
	global := func(kind string) opFunc {
		return func(c *call, in []*val) ([]*val, error) {
			x := in[0].t
			axes := append(seq(2, x.Ndim()-2), tensor.KeepDim)
			switch kind {
			case "GlobalMaxPool":
				return one(same(x.Max(axes...), in[0]))
			case "GlobalLpPool":
				p := float64(c.int("p", 2))
				return one(same(x.Abs().Pow(p).Sum(axes...).Pow(1/p), in[0]))
			}
			return one(same(x.Mean(axes...), in[0]))
		}
	}
	for _, k := range []string{"GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"} {
		ops[k] = global(k)
	}
}

func init() {
	ops["MaxUnpool"] = func(c *call, in []*val) ([]*val, error) {
		x, idx := in[0].t, in[1].t
		xs := x.Shape()
		d := len(xs) - 2
		var out []int
		{
			kernel, _ := c.ints("kernel_shape")
			strides, ok := c.ints("strides")
			if !ok {
				strides = ones(d)
			}
			pads, ok := c.ints("pads")
			if !ok {
				pads = make([]int, 2*d)
			}
			out = []int{xs[0], xs[1]}
			for i := 0; i < d; i++ {
				out = append(out, (xs[2+i]-1)*strides[i]+kernel[i]-pads[i]-pads[i+d])
			}
		}
		// Indices address the default unpooled shape; an explicit output_shape keeps each
		// element's coordinates in the larger plane.
		if len(in) > 2 && in[2] != nil {
			target := in[2].hostInts()
			def, tsp := out[2:], target[2:]
			idx = idx.Cast(dtype.Int64)
			plane := int64(prodInts(def))
			nc := idx.IntDiv(plane)
			local := idx.Mod(plane)
			var pos *T
			rest := local
			for i := 0; i < d; i++ {
				stride := int64(prodInts(def[i+1:]))
				co := rest.IntDiv(stride)
				rest = rest.Mod(stride)
				term := co.Mul(int64(prodInts(tsp[i+1:])))
				if pos == nil {
					pos = term
				} else {
					pos = pos.Add(term)
				}
			}
			idx = nc.Mul(int64(prodInts(tsp))).Add(pos)
			out = target
		}
		total := prodInts(out)
		oh := idx.Reshape(-1, 1).Eq(c.arange(total).Reshape(1, total))
		xf := x.Reshape(-1, 1)
		y := oh.Where(xf, xf.ZerosLike()).Sum(0).Cast(x.DType())
		return one(same(y.Reshape(out...), in[0]))
	}
}

func toInt64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, x := range s {
		out[i] = int64(x)
	}
	return out
}

var _ = fmt.Sprint
