package onnx

import (
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
)

// GridSample (2-D): every interpolation tap is a gather of the flattened image by a linear
// index built from the grid, weighted, with out-of-range taps zeroed, clamped or reflected
// as padding_mode says.

// reflectCoord folds x into [lo, hi] by reflection.
func reflectCoord(x *T, lo, hi float64) *T {
	span := hi - lo
	if span <= 0 {
		return x.ZerosLike()
	}
	d := x.Add(-lo).Abs() // Add of the negation: Sub of a negative constant renders as "--c" in C
	k := floor(d.Div(span))
	r := d.Sub(k.Mul(span))
	odd := trunc(k.Mul(0.5)).Mul(2).Ne(k)
	return odd.Where(r.Neg().Add(span), r).Add(lo)
}

func init() {
	ops["GridSample"] = func(c *call, in []*val) ([]*val, error) {
		x, grid := in[0].t.Cast(dtype.Float32), in[1].t.Cast(dtype.Float32)
		if x.Ndim() == 5 {
			return gridSample3D(c, in, x, grid)
		}
		if x.Ndim() != 4 {
			return nil, unsupported("GridSample on %d-D input", x.Ndim()-2)
		}
		s, gs := x.Shape(), grid.Shape()
		n, ch, h, w := s[0], s[1], s[2], s[3]
		ho, wo := gs[1], gs[2]
		align := c.int("align_corners", 0) == 1
		mode := c.str("mode", "linear")
		if mode == "bilinear" {
			mode = "linear"
		}
		if mode == "bicubic" {
			mode = "cubic"
		}
		pad := c.str("padding_mode", "zeros")
		unnorm := func(g *T, size int) *T {
			if align {
				return g.Add(1).Mul(0.5 * float64(size-1))
			}
			return g.Add(1).Mul(float64(size)).Sub(1).Mul(0.5)
		}
		gx := unnorm(grid.Slice(3, 0, 1).Reshape(n, ho*wo), w)
		gy := unnorm(grid.Slice(3, 1, 2).Reshape(n, ho*wo), h)
		fix := func(v *T, size int) *T {
			switch pad {
			case "border":
				return v.Clip(0, float64(size-1))
			case "reflection":
				if align {
					return reflectCoord(v, 0, float64(size-1)).Clip(0, float64(size-1))
				}
				return reflectCoord(v, -0.5, float64(size)-0.5).Clip(0, float64(size-1))
			}
			return v
		}
		if mode != "cubic" {
			gx, gy = fix(gx, w), fix(gy, h)
		}
		xf := x.Reshape(n, ch, 1, h*w)
		hw := c.arange(h*w).Reshape(1, 1, h*w)
		tap := func(ix, iy, wt *T) *T { // ix, iy integer-valued float [N, P]
			valid := ix.Ge(0).And(ix.Le(float64(w - 1))).And(iy.Ge(0)).And(iy.Le(float64(h - 1)))
			if pad != "zeros" && mode == "cubic" {
				ix, iy = fix(ix, w), fix(iy, h)
				valid = valid.Or(valid.Not())
			}
			lin := iy.Clip(0, float64(h-1)).Mul(float64(w)).Add(ix.Clip(0, float64(w-1))).Cast(dtype.Int64)
			oh := lin.Unsqueeze(-1).Eq(hw).Unsqueeze(1) // [N, 1, P, HW]
			v := oh.Where(xf, xf.ZerosLike()).Sum(-1)   // [N, C, P]
			return valid.Unsqueeze(1).Where(v.Mul(wt.Unsqueeze(1)), 0.0)
		}
		var out *T
		add := func(t *T) {
			if out == nil {
				out = t
			} else {
				out = out.Add(t)
			}
		}
		switch mode {
		case "nearest":
			add(tap(round(gx), round(gy), gx.OnesLike()))
		case "linear":
			x0, y0 := floor(gx), floor(gy)
			fx, fy := gx.Sub(x0), gy.Sub(y0)
			for dy := 0; dy < 2; dy++ {
				for dx := 0; dx < 2; dx++ {
					wx, wy := fx, fy
					if dx == 0 {
						wx = fx.Neg().Add(1)
					}
					if dy == 0 {
						wy = fy.Neg().Add(1)
					}
					add(tap(x0.Add(float64(dx)), y0.Add(float64(dy)), wx.Mul(wy)))
				}
			}
		default: // cubic, A = -0.75
			x0, y0 := floor(gx), floor(gy)
			fx, fy := gx.Sub(x0), gy.Sub(y0)
			cw := func(t *T, k int) *T { // weight of tap k-1 for fraction t
				d := t.Add(float64(1 - k)).Abs()
				a := -0.75
				near := d.Mul(a + 2).Add(-(a + 3)).Mul(d).Mul(d).Add(1)
				far := d.Mul(a).Add(-5 * a).Mul(d).Add(8 * a).Mul(d).Add(-4 * a)
				return d.Le(1).Where(near, d.Lt(2).Where(far, 0.0))
			}
			for ky := 0; ky < 4; ky++ {
				for kx := 0; kx < 4; kx++ {
					add(tap(x0.Add(float64(kx-1)), y0.Add(float64(ky-1)), cw(fx, kx).Mul(cw(fy, ky))))
				}
			}
		}
		return one(same(out.Reshape(n, ch, ho, wo), in[0]))
	}
}

var _ = math.Pi

// gridSample3D samples volumes [N, C, D, H, W] at grid [N, Do, Ho, Wo, 3] (x, y, z) with
// nearest or trilinear interpolation.
func gridSample3D(c *call, in []*val, x, grid *T) ([]*val, error) {
	s, gs := x.Shape(), grid.Shape()
	n, ch := s[0], s[1]
	sizes := []int{s[4], s[3], s[2]} // x, y, z extents
	p := gs[1] * gs[2] * gs[3]
	align := c.int("align_corners", 0) == 1
	mode := c.str("mode", "linear")
	pad := c.str("padding_mode", "zeros")
	if mode == "cubic" || mode == "bicubic" {
		return nil, unsupported("bicubic GridSample on volumes")
	}
	coord := make([]*T, 3)
	for i := 0; i < 3; i++ {
		g := grid.Slice(4, i, i+1).Reshape(n, p)
		if align {
			g = g.Add(1).Mul(0.5 * float64(sizes[i]-1))
		} else {
			g = g.Add(1).Mul(float64(sizes[i])).Add(-1).Mul(0.5)
		}
		switch pad {
		case "border":
			g = g.Clip(0, float64(sizes[i]-1))
		case "reflection":
			if align {
				g = reflectCoord(g, 0, float64(sizes[i]-1)).Clip(0, float64(sizes[i]-1))
			} else {
				g = reflectCoord(g, -0.5, float64(sizes[i])-0.5).Clip(0, float64(sizes[i]-1))
			}
		}
		coord[i] = g
	}
	vol := s[2] * s[3] * s[4]
	xf := x.Reshape(n, ch, 1, vol)
	all := c.arange(vol).Reshape(1, 1, vol)
	tap := func(idx []*T, wt *T) *T {
		var valid, lin *T
		for i := 2; i >= 0; i-- {
			v := idx[i].Ge(0).And(idx[i].Le(float64(sizes[i] - 1)))
			if valid == nil {
				valid = v
			} else {
				valid = valid.And(v)
			}
			ci := idx[i].Clip(0, float64(sizes[i]-1))
			if lin == nil {
				lin = ci
			} else {
				lin = lin.Mul(float64(sizes[i])).Add(ci)
			}
		}
		oh := lin.Cast(dtype.Int64).Unsqueeze(-1).Eq(all).Unsqueeze(1)
		v := oh.Where(xf, xf.ZerosLike()).Sum(-1)
		return valid.Unsqueeze(1).Where(v.Mul(wt.Unsqueeze(1)), 0.0)
	}
	var out *T
	if mode == "nearest" {
		out = tap([]*T{round(coord[0]), round(coord[1]), round(coord[2])}, coord[0].OnesLike())
	} else {
		lo := []*T{floor(coord[0]), floor(coord[1]), floor(coord[2])}
		for corner := 0; corner < 8; corner++ {
			idx := make([]*T, 3)
			var wt *T
			for i := 0; i < 3; i++ {
				f := coord[i].Sub(lo[i])
				wi := f
				idx[i] = lo[i].Add(1)
				if corner>>i&1 == 0 {
					wi = f.Neg().Add(1)
					idx[i] = lo[i]
				}
				if wt == nil {
					wt = wi
				} else {
					wt = wt.Mul(wi)
				}
			}
			t := tap(idx, wt)
			if out == nil {
				out = t
			} else {
				out = out.Add(t)
			}
		}
	}
	return one(same(out.Reshape(n, ch, gs[1], gs[2], gs[3]), in[0]))
}
