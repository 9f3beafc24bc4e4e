package tensor

import (
	"math"
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
)

// conv2dRef is a direct loop implementation of PyTorch's conv2d.
func conv2dRef(x []float32, xs [4]int, w []float32, ws [4]int, b []float32, stride, pad, dil, groups int) ([]float64, [4]int) {
	bs, cin, h, wd := xs[0], xs[1], xs[2], xs[3]
	cout, rcin, kh, kw := ws[0], ws[1], ws[2], ws[3]
	oh := (h+2*pad-dil*(kh-1)-1)/stride + 1
	ow := (wd+2*pad-dil*(kw-1)-1)/stride + 1
	out := make([]float64, bs*cout*oh*ow)
	for n := range bs {
		for co := range cout {
			g := co / (cout / groups)
			for y := range oh {
				for xo := range ow {
					s := float64(b[co])
					for ci := range rcin {
						for i := range kh {
							for j := range kw {
								iy, ix := y*stride-pad+i*dil, xo*stride-pad+j*dil
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								c := g*rcin + ci
								s += float64(x[((n*cin+c)*h+iy)*wd+ix]) * float64(w[((co*rcin+ci)*kh+i)*kw+j])
							}
						}
					}
					out[((n*cout+co)*oh+y)*ow+xo] = s
				}
			}
		}
	}
	_ = cin
	return out, [4]int{bs, cout, oh, ow}
}

func TestConv2d(t *testing.T) {
	cases := []struct {
		name                     string
		xs, ws                   [4]int
		stride, pad, dil, groups int
	}{
		{"plain 3x3", [4]int{2, 3, 7, 6}, [4]int{4, 3, 3, 3}, 1, 0, 1, 1},
		{"stride 2 padding 1", [4]int{1, 2, 8, 8}, [4]int{3, 2, 3, 3}, 2, 1, 1, 1},
		{"dilation 2", [4]int{1, 1, 9, 9}, [4]int{2, 1, 3, 3}, 1, 0, 2, 1},
		{"groups 2 with stride 3", [4]int{2, 4, 10, 7}, [4]int{6, 2, 2, 3}, 3, 2, 1, 2},
		{"1x1", [4]int{1, 5, 4, 4}, [4]int{2, 5, 1, 1}, 1, 0, 1, 1},
		{"stride longer than the input row", [4]int{1, 1, 5, 5}, [4]int{1, 1, 1, 1}, 7, 0, 1, 1},
	}
	ManualSeed(3)
	for _, c := range cases {
		x := Randn(c.xs[:]...)
		w := Randn(c.ws[:]...)
		b := Randn(c.ws[0])
		xv, _ := x.Float32s()
		wv, _ := w.Float32s()
		bv, _ := b.Float32s()
		want, shape := conv2dRef(xv, c.xs, wv, c.ws, bv, c.stride, c.pad, c.dil, c.groups)
		y := x.Conv2d(w, b, Window{Stride: []int{c.stride}, Padding: []int{c.pad}, Dilation: []int{c.dil}, Groups: c.groups})
		got, err := y.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		if s := y.Shape(); len(s) != 4 || s[0] != shape[0] || s[1] != shape[1] || s[2] != shape[2] || s[3] != shape[3] {
			t.Fatalf("%s: shape %v, want %v", c.name, s, shape)
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-4*(1+math.Abs(want[i])) {
				t.Fatalf("%s: out[%d] = %g, want %g", c.name, i, got[i], want[i])
			}
		}
	}
}

func TestPooling(t *testing.T) {
	x := Arange(0, 16, 1).Cast(dtype.Float32).Reshape(1, 1, 4, 4) // float32 0..15
	expect(t, "MaxPool 2x2", x.MaxPool([]int{2, 2}, Window{}), []int{1, 1, 2, 2}, 5, 7, 13, 15)
	expect(t, "AvgPool 2x2", x.AvgPool([]int{2, 2}, Window{}), []int{1, 1, 2, 2}, 2.5, 4.5, 10.5, 12.5)
	expect(t, "MaxPool 3x3 stride 1 padding 1 keeps the size", x.MaxPool([]int{3, 3}, Window{Stride: []int{1}, Padding: []int{1}}),
		[]int{1, 1, 4, 4}, 5, 6, 7, 7, 9, 10, 11, 11, 13, 14, 15, 15, 13, 14, 15, 15)
	expect(t, "AvgPool counts padding as zeros", x.AvgPool([]int{2, 2}, Window{Stride: []int{2}, Padding: []int{1}}),
		[]int{1, 1, 3, 3}, 0, 0.75, 0.75, 3, 7.5, 4.5, 3, 6.75, 3.75)
	if err := Try(func() { x.Conv2d(Ones(1, 2, 3, 3), nil, Window{}) }); err == nil {
		t.Error("Conv2d with mismatched channels should panic")
	}
}
