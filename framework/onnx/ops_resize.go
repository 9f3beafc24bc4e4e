package onnx

import (
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
)

// Resize is separable: for each resized axis the host builds the interpolation matrix
// (nearest, linear, cubic, with or without antialiasing) from the coordinate transform, and
// the framework applies it as a matrix product along that axis.

type resizeSpec struct {
	mode, coord, nearest   string
	cubicA                 float64
	excludeOutside, antial bool
	extrap                 float64
}

// srcCoord maps output index x of an axis to the input coordinate.
func (r resizeSpec) srcCoord(x, in, out int, scale, roiStart, roiEnd float64) float64 {
	xf := float64(x)
	switch r.coord {
	case "asymmetric":
		return xf / scale
	case "align_corners":
		if out == 1 {
			return 0
		}
		return xf * float64(in-1) / (float64(in)*scale - 1) // the scaled length, not out
	case "pytorch_half_pixel":
		if out == 1 {
			return 0
		}
		return (xf+0.5)/scale - 0.5
	case "tf_crop_and_resize":
		if out == 1 {
			return (roiEnd - roiStart) * float64(in-1) / 2
		}
		return roiStart*float64(in-1) + xf*(roiEnd-roiStart)*float64(in-1)/float64(out-1)
	case "half_pixel_symmetric":
		adj := float64(out) / (scale * float64(in))
		center := float64(in) / 2
		return center*(1-adj) + (xf+0.5)/scale - 0.5
	}
	return (xf+0.5)/scale - 0.5 // half_pixel
}

func cubicWeight(a, t float64) float64 {
	t = math.Abs(t)
	switch {
	case t <= 1:
		return ((a+2)*t-(a+3))*t*t + 1
	case t < 2:
		return ((a*t-5*a)*t+8*a)*t - 4*a
	}
	return 0
}

// matrix returns the [out, in] interpolation weights and which outputs fall outside the
// input (tf_crop_and_resize extrapolation).
func (r resizeSpec) matrix(in, out int, scale, roiStart, roiEnd float64) ([]float32, []bool) {
	w := make([]float32, out*in)
	outside := make([]bool, out)
	for o := 0; o < out; o++ {
		x := r.srcCoord(o, in, out, scale, roiStart, roiEnd)
		if r.coord == "tf_crop_and_resize" && (x < 0 || x > float64(in-1)) {
			outside[o] = true
			continue
		}
		row := w[o*in : (o+1)*in]
		clampI := func(i int) int { return min(max(i, 0), in-1) }
		switch r.mode {
		case "nearest":
			var i int
			switch r.nearest {
			case "floor":
				i = int(math.Floor(x))
			case "ceil":
				i = int(math.Ceil(x))
			case "round_prefer_ceil":
				i = int(math.Floor(x + 0.5))
			default: // round_prefer_floor
				i = int(math.Ceil(x - 0.5))
			}
			row[clampI(i)] = 1
		case "linear", "cubic":
			support, kernel := 1.0, func(t float64) float64 { return math.Max(0, 1-math.Abs(t)) }
			if r.mode == "cubic" {
				support, kernel = 2, func(t float64) float64 { return cubicWeight(r.cubicA, t) }
			}
			s := 1.0
			if r.antial && scale < 1 {
				s = scale
			}
			lo := int(math.Floor(x - support/s))
			hi := int(math.Ceil(x + support/s))
			var taps []int
			var ws []float64
			sum := 0.0
			for i := lo; i <= hi; i++ {
				k := kernel((float64(i) - x) * s)
				if k == 0 {
					continue
				}
				if r.excludeOutside && (i < 0 || i >= in) {
					continue
				}
				taps, ws = append(taps, clampI(i)), append(ws, k)
				sum += k
			}
			for j, i := range taps {
				v := ws[j]
				if r.excludeOutside || r.antial {
					v /= sum
				}
				row[i] += float32(v)
			}
		}
	}
	return w, outside
}

func init() {
	resize := func(c *call, in []*val, scales []float64, sizes []int, roi []float64) ([]*val, error) {
		x := in[0]
		t := x.t.Cast(dtype.Float32)
		rank := t.Ndim()
		shape := t.Shape()
		axes, ok := c.ints("axes")
		if !ok {
			axes = seq(0, rank)
		}
		for i := range axes {
			axes[i] = normAxis(axes[i], rank)
		}
		spec := resizeSpec{
			mode:           c.str("mode", "nearest"),
			coord:          c.str("coordinate_transformation_mode", "half_pixel"),
			nearest:        c.str("nearest_mode", "round_prefer_floor"),
			cubicA:         c.float("cubic_coeff_a", -0.75),
			excludeOutside: c.int("exclude_outside", 0) == 1,
			antial:         c.int("antialias", 0) == 1,
			extrap:         c.float("extrapolation_value", 0),
		}
		sc := make([]float64, len(axes))
		outN := make([]int, len(axes))
		if len(sizes) > 0 {
			policy := c.str("keep_aspect_ratio_policy", "stretch")
			for i, a := range axes {
				sc[i] = float64(sizes[i]) / float64(shape[a])
			}
			if policy != "stretch" {
				s := sc[0]
				for _, v := range sc {
					if policy == "not_larger" {
						s = math.Min(s, v)
					} else {
						s = math.Max(s, v)
					}
				}
				for i, a := range axes {
					sc[i] = s
					outN[i] = int(math.Round(s * float64(shape[a])))
				}
			} else {
				copy(outN, sizes)
			}
		} else {
			for i, a := range axes {
				sc[i] = scales[i]
				outN[i] = int(math.Floor(float64(shape[a]) * scales[i]))
			}
		}
		var mask *T
		for i, a := range axes {
			if outN[i] == shape[a] && sc[i] == 1 && spec.coord != "tf_crop_and_resize" {
				continue
			}
			rs, re := 0.0, 1.0
			if len(roi) == 2*len(axes) {
				rs, re = roi[i], roi[i+len(axes)]
			} else if len(roi) == 2*rank {
				rs, re = roi[a], roi[a+rank]
			}
			w, outside := spec.matrix(shape[a], outN[i], sc[i], rs, re)
			wm := c.slice(w, outN[i], shape[a])
			t = t.Transpose(a, -1).Matmul(wm.T()).Transpose(a, -1)
			anyOut := false
			for _, o := range outside {
				anyOut = anyOut || o
			}
			if anyOut {
				ms := ones(rank)
				ms[a] = outN[i]
				m := c.slice(outside, ms...)
				if mask == nil {
					mask = m
				} else {
					mask = mask.Or(m)
				}
			}
		}
		if mask != nil {
			t = mask.Where(spec.extrap, t)
		}
		if !x.t.DType().IsFloat() {
			t = round(t)
		}
		return one(same(t, x))
	}
	ops["Resize"] = func(c *call, in []*val) ([]*val, error) {
		var scales []float64
		var sizes []int
		var roi []float64
		if c.opset < 11 {
			scales = in[1].hostFloats()
		} else {
			if len(in) > 1 && in[1] != nil && in[1].t.Numel() > 0 {
				roi = in[1].hostFloats()
			}
			if len(in) > 2 && in[2] != nil && in[2].t.Numel() > 0 {
				scales = in[2].hostFloats()
			}
			if len(in) > 3 && in[3] != nil && in[3].t.Numel() > 0 {
				sizes = in[3].hostInts()
			}
		}
		if c.opset < 11 {
			c = c.withLegacyResize()
		}
		return resize(c, in, scales, sizes, roi)
	}
	ops["Upsample"] = func(c *call, in []*val) ([]*val, error) {
		scales := c.floats("scales")
		if len(in) > 1 && in[1] != nil {
			scales = in[1].hostFloats()
		}
		return resize(c.withLegacyResize(), in, scales, nil, nil)
	}
}

// withLegacyResize is c with the opset-10 (and Upsample) coordinate rules: asymmetric
// coordinates and floor for nearest. The model's node is not modified.
func (c *call) withLegacyResize() *call {
	n := *c.n
	n.Attrs = append([]*Attribute{
		{Name: "coordinate_transformation_mode", S: []byte("asymmetric")},
		{Name: "nearest_mode", S: []byte("floor")},
	}, n.Attrs...)
	cc := *c
	cc.n = &n
	return &cc
}
