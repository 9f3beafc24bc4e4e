package onnx

import (
	"fmt"
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
)

// DFT as two matrix products with host-built cosine and sine matrices: O(N²) per signal,
// which is what the node suite's short signals need.

func init() {
	ops["DFT"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		r := x.Ndim()
		var ax int
		if c.opset >= 20 {
			ax = -2
			if len(in) > 2 && in[2] != nil {
				ax = in[2].hostInts()[0]
			}
		} else {
			ax = int(c.int("axis", 1))
		}
		ax = normAxis(ax, r)
		if ax == r-1 {
			return nil, unsupported("DFT along the complex dim")
		}
		complexIn := x.Shape()[r-1] == 2
		re := x.Slice(r-1, 0, 1).Squeeze(r-1).Transpose(ax, -1)
		var im *T
		if complexIn {
			im = x.Slice(r-1, 1, 2).Squeeze(r-1).Transpose(ax, -1)
		}
		n := re.Shape()[re.Ndim()-1]
		if c.int("inverse", 0) == 1 && c.int("onesided", 0) == 1 {
			return inverseRealDFT(c, re, im, n, ax, in)
		}
		length := n
		if len(in) > 1 && in[1] != nil && in[1].t.Numel() > 0 {
			length = in[1].hostInts()[0]
		}
		fit := func(t *T) *T {
			if t == nil {
				return nil
			}
			if length < n {
				return t.Slice(-1, 0, length)
			}
			p := make([][2]int, t.Ndim())
			p[t.Ndim()-1] = [2]int{0, length - n}
			return t.Pad(p)
		}
		re, im = fit(re), fit(im)
		inverse := c.int("inverse", 0) == 1
		k := length
		if c.int("onesided", 0) == 1 {
			k = length/2 + 1
		}
		cs, sn := make([]float32, k*length), make([]float32, k*length)
		for i := 0; i < k; i++ {
			for j := 0; j < length; j++ {
				th := 2 * math.Pi * float64((i*j)%length) / float64(length)
				cs[i*length+j], sn[i*length+j] = float32(math.Cos(th)), float32(math.Sin(th))
			}
		}
		C, S := c.slice(cs, k, length).T(), c.slice(sn, k, length).T()
		sign := -1.0 // e^{-iθ} forward, e^{+iθ} inverse
		if inverse {
			sign = 1
		}
		outRe := re.Matmul(C)
		outIm := re.Matmul(S).Mul(sign)
		if im != nil {
			outRe = outRe.Sub(im.Matmul(S).Mul(sign))
			outIm = outIm.Add(im.Matmul(C))
		}
		if inverse {
			outRe, outIm = outRe.Div(float64(length)), outIm.Div(float64(length))
		}
		y := outRe.Unsqueeze(-1).Cat(-1, outIm.Unsqueeze(-1)) // [..., k, 2] with k at the end-1
		y = y.Transpose(ax, -2)
		return one(same(y, in[0]))
	}
}

func init() {
	// STFT: frames are strided slices of the signal, windowed, then the DFT above along
	// the frame axis.
	ops["STFT"] = func(c *call, in []*val) ([]*val, error) {
		x := up(in[0].t)
		step := in[1].hostInts()[0]
		var win *T
		if len(in) > 2 && in[2] != nil {
			win = up(in[2].t)
		}
		length := 0
		switch {
		case len(in) > 3 && in[3] != nil:
			length = in[3].hostInts()[0]
		case win != nil:
			length = win.Shape()[0]
		default:
			return nil, fmt.Errorf("STFT needs a window or a frame_length")
		}
		l := x.Shape()[1]
		nf := (l-length)/step + 1
		frames := make([]*T, nf)
		for f := 0; f < nf; f++ {
			frames[f] = x.Slice(1, f*step, f*step+length)
		}
		fr := frames[0].Stack(1, frames[1:]...) // [B, F, len, c]
		if win != nil {
			fr = fr.Mul(win.Reshape(1, 1, length, 1))
		}
		sub := &call{e: c.e, n: &Node{OpType: "DFT", Attrs: []*Attribute{{Name: "onesided", I: c.int("onesided", 1)}}}, opset: 20}
		return ops["DFT"](sub, []*val{same(fr, in[0]), nil, c.konst([]int64{2}, []int{}...)})
	}
}

// inverseRealDFT is the inverse of a one-sided spectrum (irfft): the n bins stand for a
// Hermitian spectrum of length 2(n-1), so interior bins count twice and the output is real.
func inverseRealDFT(c *call, re, im *T, n, ax int, in []*val) ([]*val, error) {
	length := 2 * (n - 1)
	if len(in) > 1 && in[1] != nil && in[1].t.Numel() > 0 {
		length = in[1].hostInts()[0]
	}
	cs, sn := make([]float32, n*length), make([]float32, n*length)
	for k := 0; k < n; k++ {
		w := 2.0
		if k == 0 || 2*k == length {
			w = 1
		}
		for m := 0; m < length; m++ {
			th := 2 * math.Pi * float64((k*m)%length) / float64(length)
			cs[k*length+m] = float32(w * math.Cos(th) / float64(length))
			sn[k*length+m] = float32(w * math.Sin(th) / float64(length))
		}
	}
	y := re.Matmul(c.slice(cs, n, length))
	if im != nil {
		y = y.Sub(im.Matmul(c.slice(sn, n, length)))
	}
	y = y.Unsqueeze(-1).Transpose(ax, -2)
	return one(same(y, in[0]))
}

func init() {
	// MelWeightMatrix builds the triangular mel filter bank on the host, as the reference
	// does (integer FFT bin edges from mel-spaced frequencies).
	ops["MelWeightMatrix"] = func(c *call, in []*val) ([]*val, error) {
		bins := in[0].hostInts()[0]
		dft := in[1].hostInts()[0]
		rate := in[2].hostInts()[0]
		lo, hi := in[3].hostFloats()[0], in[4].hostFloats()[0]
		spec := dft/2 + 1
		mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
		lm, hm := mel(lo), mel(hi)
		step := (hm - lm) / float64(bins+2)
		edges := make([]int, bins+2)
		for i := range edges {
			f := 700 * (math.Pow(10, (float64(i)*step+lm)/2595) - 1)
			edges[i] = int(math.Floor(float64(dft+1) * f / float64(rate)))
		}
		out := make([]float32, spec*bins)
		set := func(j, i int, v float64) {
			if j >= 0 && j < spec {
				out[j*bins+i] = float32(v)
			}
		}
		for i := 0; i < bins; i++ {
			l, ce, h := edges[i], edges[i+1], edges[i+2]
			if ce == l {
				set(ce, i, 1)
			} else {
				for j := l; j <= ce; j++ {
					set(j, i, float64(j-l)/float64(ce-l))
				}
			}
			if h > ce {
				for j := ce; j < h; j++ {
					set(j, i, float64(h-j)/float64(h-ce))
				}
			}
		}
		return one(tv(c.slice(out, spec, bins), DataType(c.int("output_datatype", 1))))
	}
}
