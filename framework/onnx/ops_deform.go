package onnx

import (
	"github.com/gradforge/gradforge/framework/dtype"
)

// DeformConv: every kernel tap samples the input bilinearly at its regular position plus a
// learned offset (zeros outside), optionally scaled by a mask; the samples then meet the
// weights as in a grouped convolution.

func init() {
	ops["DeformConv"] = func(c *call, in []*val) ([]*val, error) {
		x, w, off := up(in[0].t), up(in[1].t), up(in[2].t)
		xs, ws, os := x.Shape(), w.Shape(), off.Shape()
		if len(xs) != 4 {
			return nil, unsupported("DeformConv on %d-D input", len(xs)-2)
		}
		n, ch, h, wd := xs[0], xs[1], xs[2], xs[3]
		m, kh, kw := ws[0], ws[2], ws[3]
		oh, ow := os[2], os[3]
		g := int(c.int("group", 1))
		og := int(c.int("offset_group", 1))
		strides, ok := c.ints("strides")
		if !ok {
			strides = []int{1, 1}
		}
		dil, ok := c.ints("dilations")
		if !ok {
			dil = []int{1, 1}
		}
		pads, ok := c.ints("pads")
		if !ok {
			pads = []int{0, 0, 0, 0}
		}
		var mask, bias *T
		if len(in) > 3 && in[3] != nil {
			bias = up(in[3].t)
		}
		if len(in) > 4 && in[4] != nil {
			mask = up(in[4].t).Reshape(n, og, kh*kw, oh, ow)
		}
		off = off.Reshape(n, og, kh*kw, 2, oh, ow)
		cpg := ch / og // channels per offset group
		xf := x.Reshape(n, og, cpg, 1, h*wd)
		all := c.arange(h*wd).Reshape(1, 1, 1, h*wd)
		baseY := c.arange(oh).Cast(dtype.Float32).Mul(float64(strides[0])).Add(float64(-pads[0])).Reshape(1, 1, oh, 1)
		baseX := c.arange(ow).Cast(dtype.Float32).Mul(float64(strides[1])).Add(float64(-pads[1])).Reshape(1, 1, 1, ow)
		var cols []*T // per tap: [N, C, oH·oW]
		for t := 0; t < kh*kw; t++ {
			i, j := t/kw, t%kw
			oy := off.Slice(2, t, t+1).Slice(3, 0, 1).Reshape(n, og, oh, ow)
			ox := off.Slice(2, t, t+1).Slice(3, 1, 2).Reshape(n, og, oh, ow)
			py := oy.Add(baseY.Add(float64(i * dil[0])))
			px := ox.Add(baseX.Add(float64(j * dil[1])))
			y0, x0 := floor(py), floor(px)
			fy, fx := py.Sub(y0), px.Sub(x0)
			var sample *T
			for corner := 0; corner < 4; corner++ {
				yy, xx := y0, x0
				wy, wx := fy.Neg().Add(1), fx.Neg().Add(1)
				if corner&1 == 1 {
					yy, wy = y0.Add(1), fy
				}
				if corner&2 == 2 {
					xx, wx = x0.Add(1), fx
				}
				valid := yy.Ge(0).And(yy.Le(float64(h - 1))).And(xx.Ge(0)).And(xx.Le(float64(wd - 1)))
				lin := yy.Clip(0, float64(h-1)).Mul(float64(wd)).Add(xx.Clip(0, float64(wd-1))).Cast(dtype.Int64)
				oh1 := lin.Reshape(n, og, 1, oh*ow, 1).Eq(all.Reshape(1, 1, 1, 1, h*wd))
				v := oh1.Where(xf, xf.ZerosLike()).Sum(-1) // [N, og, cpg, oH·oW]
				wt := valid.Where(wy.Mul(wx), 0.0).Reshape(n, og, 1, oh*ow)
				term := v.Mul(wt)
				if sample == nil {
					sample = term
				} else {
					sample = sample.Add(term)
				}
			}
			if mask != nil {
				sample = sample.Mul(mask.Slice(2, t, t+1).Reshape(n, og, 1, oh*ow))
			}
			cols = append(cols, sample.Reshape(n, ch, oh*ow).Unsqueeze(2)) // [N, C, 1, P]
		}
		col := cols[0]
		if len(cols) > 1 {
			col = cols[0].Cat(2, cols[1:]...) // [N, C, K, P]
		}
		col = col.Reshape(n, g, 1, ch/g, kh*kw, oh*ow)
		wr := w.Reshape(1, g, m/g, ch/g, kh*kw, 1)
		y := col.Mul(wr).Sum(3, 4).Reshape(n, m, oh, ow)
		if bias != nil {
			y = y.Add(bias.Reshape(1, m, 1, 1))
		}
		return one(same(y, in[0]))
	}
}
