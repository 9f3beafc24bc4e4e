package onnx

import (
	"math"
	"sort"

	"github.com/gradforge/gradforge/framework/dtype"
)

// Det, AffineGrid, Col2Im and NonMaxSuppression.

// permutations lists the permutations of 0..n-1 with their signs.
func permutations(n int) ([][]int, []float64) {
	var perms [][]int
	var signs []float64
	p := seq(0, n)
	var rec func(k int, sign float64)
	rec = func(k int, sign float64) {
		if k == n {
			perms = append(perms, append([]int(nil), p...))
			signs = append(signs, sign)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			s := sign
			if i != k {
				s = -s
			}
			rec(k+1, s)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0, 1)
	return perms, signs
}

func init() {
	ops["Det"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		r := x.Ndim()
		n := x.Shape()[r-1]
		if n > 6 {
			return nil, unsupported("Det of %d×%d matrices (Leibniz expansion up to 6×6)", n, n)
		}
		perms, signs := permutations(n)
		var det *T
		for k, p := range perms {
			var term *T
			for i, j := range p {
				e := x.Slice(r-2, i, i+1).Slice(r-1, j, j+1)
				if term == nil {
					term = e
				} else {
					term = term.Mul(e)
				}
			}
			term = term.Mul(signs[k])
			if det == nil {
				det = term
			} else {
				det = det.Add(term)
			}
		}
		return one(same(det.Squeeze(r-1).Squeeze(r-2), in[0]))
	}
	ops["AffineGrid"] = func(c *call, in []*val) ([]*val, error) {
		theta := in[0].t.Cast(dtype.Float32) // [N, d, d+1]
		size := in[1].hostInts()             // [N, C, (D,) H, W]
		align := c.int("align_corners", 0) == 1
		spatial := size[2:]
		d := len(spatial)
		lin := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				if align {
					if n > 1 {
						v[i] = float32(-1 + 2*float64(i)/float64(n-1))
					}
				} else {
					v[i] = float32((2*float64(i)+1)/float64(n) - 1)
				}
			}
			return v
		}
		// Base grid [P, d+1] of (x, y, (z), 1) with x varying fastest.
		p := prodInts(spatial)
		base := make([]float32, 0, p*(d+1))
		axes := make([][]float32, d)
		for i, s := range spatial {
			axes[i] = lin(s)
		}
		for k := 0; k < p; k++ {
			rest := k
			co := make([]float32, d)
			for i := d - 1; i >= 0; i-- {
				co[i] = axes[i][rest%spatial[i]]
				rest /= spatial[i]
			}
			for i := d - 1; i >= 0; i-- { // x (last spatial dim) first
				base = append(base, co[i])
			}
			base = append(base, 1)
		}
		g := c.slice(base, p, d+1).Matmul(theta.Transpose(-1, -2)) // [N, P, d]
		out := append(append([]int{size[0]}, spatial...), d)
		return one(same(g.Reshape(out...), in[0]))
	}
	ops["Col2Im"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t // [N, C·∏K, L]
		image, block := in[1].hostInts(), in[2].hostInts()
		d := len(image)
		dil, ok := c.ints("dilations")
		if !ok {
			dil = ones(d)
		}
		strides, ok := c.ints("strides")
		if !ok {
			strides = ones(d)
		}
		pads, ok := c.ints("pads")
		if !ok {
			pads = make([]int, 2*d)
		}
		s := x.Shape()
		n, kprod := s[0], prodInts(block)
		ch := s[1] / kprod
		out := make([]int, d)
		padded := make([]int, d)
		for i := range image {
			padded[i] = image[i] + pads[i] + pads[i+d]
			out[i] = (padded[i]-((block[i]-1)*dil[i]+1))/strides[i] + 1
		}
		cols := x.Reshape(append(append([]int{n, ch}, block...), out...)...) // [N, C, K…, O…]
		var img *T
		for k := 0; k < kprod; k++ {
			ko := unravel(k, block)
			v := cols
			for i := 0; i < d; i++ {
				v = v.Slice(2+i, int(ko[i]), int(ko[i])+1)
			}
			for i := 0; i < d; i++ {
				v = v.Squeeze(2)
			}
			// Place v (shape [N, C, O…]) at offsets ko·dil with stride: spread then pad.
			for i := 0; i < d; i++ {
				a := 2 + i
				st := strides[i]
				if st > 1 {
					sh := v.Shape()
					o := sh[a]
					v = v.Unsqueeze(a + 1)
					pp := make([][2]int, v.Ndim())
					pp[a+1] = [2]int{0, st - 1}
					v = v.Pad(pp)
					sh[a] = o * st
					v = v.Reshape(sh...).Slice(a, 0, (o-1)*st+1)
				}
				start := int(ko[i]) * dil[i]
				pp := make([][2]int, v.Ndim())
				pp[a] = [2]int{start, padded[i] - start - v.Shape()[a]}
				v = v.Pad(pp)
			}
			if img == nil {
				img = v
			} else {
				img = img.Add(v)
			}
		}
		cut := make([][2]int, 2+d)
		cut[0], cut[1] = [2]int{0, n}, [2]int{0, ch}
		for i := 0; i < d; i++ {
			cut[2+i] = [2]int{pads[i], pads[i] + image[i]}
		}
		return one(same(img.Shrink(cut), in[0]))
	}
	ops["NonMaxSuppression"] = func(c *call, in []*val) ([]*val, error) {
		boxes, scores := in[0].hostFloats(), in[1].hostFloats()
		ss := in[1].t.Shape() // [B, C, S]
		nb, nc, ns := ss[0], ss[1], ss[2]
		maxOut := math.MaxInt
		if len(in) > 2 && in[2] != nil && in[2].t.Numel() > 0 {
			maxOut = in[2].hostInts()[0]
		}
		iouTh, scoreTh := 0.0, math.Inf(-1)
		if len(in) > 3 && in[3] != nil && in[3].t.Numel() > 0 {
			iouTh = in[3].hostFloats()[0]
		}
		if len(in) > 4 && in[4] != nil && in[4].t.Numel() > 0 {
			scoreTh = in[4].hostFloats()[0]
		}
		center := c.int("center_point_box", 0) == 1
		corners := func(b, i int) (y1, x1, y2, x2 float64) {
			v := boxes[(b*ns+i)*4 : (b*ns+i)*4+4]
			if center {
				return v[1] - v[3]/2, v[0] - v[2]/2, v[1] + v[3]/2, v[0] + v[2]/2
			}
			return math.Min(v[0], v[2]), math.Min(v[1], v[3]), math.Max(v[0], v[2]), math.Max(v[1], v[3])
		}
		iou := func(b, i, j int) float64 {
			ay1, ax1, ay2, ax2 := corners(b, i)
			by1, bx1, by2, bx2 := corners(b, j)
			ih := math.Max(0, math.Min(ay2, by2)-math.Max(ay1, by1))
			iw := math.Max(0, math.Min(ax2, bx2)-math.Max(ax1, bx1))
			inter := ih * iw
			union := (ay2-ay1)*(ax2-ax1) + (by2-by1)*(bx2-bx1) - inter
			if union <= 0 {
				return 0
			}
			return inter / union
		}
		var sel []int64
		for b := 0; b < nb; b++ {
			for cl := 0; cl < nc; cl++ {
				sc := scores[(b*nc+cl)*ns : (b*nc+cl+1)*ns]
				order := seq(0, ns)
				sort.SliceStable(order, func(i, j int) bool { return sc[order[i]] > sc[order[j]] })
				var kept []int
				for _, i := range order {
					if len(kept) >= maxOut || sc[i] <= scoreTh && !math.IsInf(scoreTh, -1) {
						break
					}
					ok := true
					for _, k := range kept {
						if iou(b, i, k) > iouTh {
							ok = false
							break
						}
					}
					if ok {
						kept = append(kept, i)
						sel = append(sel, int64(b), int64(cl), int64(i))
					}
				}
			}
		}
		return one(c.konst(sel, len(sel)/3, 3))
	}
}

func init() {
	// RoiAlign: the sampling points depend on the boxes, so the host turns them into
	// bilinear weight matrices over the flattened feature maps and the framework applies them
	// as matrix products (a sum for avg mode, a max over sample corners for max mode).
	ops["RoiAlign"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		rois, bidx := in[1].hostFloats(), in[2].hostInts()
		xs := x.Shape()
		n, ch, h, w := xs[0], xs[1], xs[2], xs[3]
		oh, ow := int(c.int("output_height", 1)), int(c.int("output_width", 1))
		ratio := int(c.int("sampling_ratio", 0))
		scale := c.float("spatial_scale", 1)
		offset := 0.5
		aligned := c.str("coordinate_transformation_mode", "half_pixel") == "half_pixel"
		if !aligned {
			offset = 0
		}
		maxMode := c.str("mode", "avg") == "max"
		nr := len(bidx)
		rows := nr * oh * ow
		cols := n * h * w
		type entry struct {
			row, col int
			w        float64
		}
		var avg []entry
		var corners [][]entry // max mode: one matrix per (sample, corner) slot
		slot := func(k int) *[]entry {
			for len(corners) <= k {
				corners = append(corners, nil)
			}
			return &corners[k]
		}
		for r := 0; r < nr; r++ {
			b := bidx[r]
			x1, y1 := rois[4*r]*scale-offset, rois[4*r+1]*scale-offset
			x2, y2 := rois[4*r+2]*scale-offset, rois[4*r+3]*scale-offset
			rw, rh := x2-x1, y2-y1
			if !aligned {
				rw, rh = math.Max(rw, 1), math.Max(rh, 1)
			}
			bh, bw := rh/float64(oh), rw/float64(ow)
			gh, gw := ratio, ratio
			if ratio <= 0 {
				gh, gw = int(math.Ceil(rh/float64(oh))), int(math.Ceil(rw/float64(ow)))
			}
			count := float64(max(gh*gw, 1))
			for ph := 0; ph < oh; ph++ {
				for pw := 0; pw < ow; pw++ {
					row := (r*oh+ph)*ow + pw
					k := 0
					for iy := 0; iy < gh; iy++ {
						yy := y1 + float64(ph)*bh + (float64(iy)+0.5)*bh/float64(gh)
						for ix := 0; ix < gw; ix++ {
							xx := x1 + float64(pw)*bw + (float64(ix)+0.5)*bw/float64(gw)
							if yy < -1 || yy > float64(h) || xx < -1 || xx > float64(w) {
								k += 4
								continue
							}
							y, xq := math.Max(yy, 0), math.Max(xx, 0)
							yl, xl := int(y), int(xq)
							yh, xh := yl+1, xl+1
							if yl >= h-1 {
								yl, yh, y = h-1, h-1, float64(h-1)
							}
							if xl >= w-1 {
								xl, xh, xq = w-1, w-1, float64(w-1)
							}
							ly, lx := y-float64(yl), xq-float64(xl)
							hy, hx := 1-ly, 1-lx
							pts := []struct {
								yy, xx int
								wt     float64
							}{{yl, xl, hy * hx}, {yl, xh, hy * lx}, {yh, xl, ly * hx}, {yh, xh, ly * lx}}
							for _, p := range pts {
								col := (int(b)*h+p.yy)*w + p.xx
								if maxMode {
									s := slot(k)
									*s = append(*s, entry{row, col, p.wt})
								} else {
									avg = append(avg, entry{row, col, p.wt / count})
								}
								k++
							}
						}
					}
				}
			}
		}
		xf := x.Permute(1, 0, 2, 3).Reshape(ch, cols).T() // [N·H·W, C]
		apply := func(es []entry) *T {
			m := make([]float32, rows*cols)
			for _, e := range es {
				m[e.row*cols+e.col] += float32(e.w)
			}
			return c.slice(m, rows, cols).Matmul(xf) // [rows, C]
		}
		var y *T
		if maxMode {
			for _, es := range corners {
				v := apply(es)
				if y == nil {
					y = v
				} else {
					y = y.Maximum(v)
				}
			}
		} else {
			y = apply(avg)
		}
		y = y.Reshape(nr, oh, ow, ch).Permute(0, 3, 1, 2)
		return one(same(y, in[0]))
	}
}
