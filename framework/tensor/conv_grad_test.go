package tensor

import (
	"math"
	"testing"
)

// TestConvMatmulGradients checks the transposed-convolution gradients of convMatmul. The loss
// sum(conv(x, w)·r) is linear in x for a fixed w (and in w for a fixed x), so for any
// direction v, loss(x+v) - loss(x) must equal <v, dloss/dx> up to float32 rounding; the loss itself
// is evaluated without gradients, through the fused window kernel.
func TestConvMatmulGradients(t *testing.T) {
	cases := []struct {
		name string
		x, w []int
		opt  Window
	}{
		{"padding", []int{2, 3, 7, 6}, []int{4, 3, 3, 3}, Window{Padding: []int{1}}},
		{"stride2_remainder", []int{1, 2, 8, 9}, []int{3, 2, 3, 2}, Window{Stride: []int{2}}},
		{"stride_dilation_asym", []int{2, 2, 9, 8}, []int{3, 2, 3, 2}, Window{Stride: []int{2, 3}, Dilation: []int{2, 1}, Padding: []int{1, 0, 2, 1}}},
		{"1d_big_pad", []int{2, 3, 5}, []int{2, 3, 2}, Window{Padding: []int{3}, Dilation: []int{2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ManualSeed(7)
			x := Randn(c.x...).Contiguous().SetRequiresGrad(true)
			w := Randn(c.w...).Contiguous().SetRequiresGrad(true)
			if err := Realize(x, w); err != nil {
				t.Fatal(err)
			}
			y := x.Conv(w, nil, c.opt)
			r := Randn(y.Shape()...)
			if err := Realize(r); err != nil {
				t.Fatal(err)
			}
			y.Mul(r).Sum().Backward()
			loss := func(x, w *Tensor) float64 {
				var v float64
				NoGrad(func() {
					var err error
					if v, err = x.Conv(w, nil, c.opt).Mul(r).Sum().Item(); err != nil {
						t.Fatal(err)
					}
				})
				return v
			}
			base := loss(x.Detach(), w.Detach())
			for _, p := range []struct {
				name    string
				v, grad *Tensor
				moved   func(v *Tensor) float64
			}{
				{"x", Randn(c.x...), x.Grad, func(v *Tensor) float64 { return loss(x.Detach().Add(v), w.Detach()) }},
				{"w", Randn(c.w...), w.Grad, func(v *Tensor) float64 { return loss(x.Detach(), w.Detach().Add(v)) }},
			} {
				want := p.moved(p.v) - base
				got, err := p.v.Mul(p.grad).Sum().Item()
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(got-want) > 1e-3*math.Max(1, math.Abs(want)) {
					t.Errorf("d loss along a random direction of %s: gradient says %.12g, loss moved %.12g", p.name, got, want)
				}
			}
		})
	}
}
