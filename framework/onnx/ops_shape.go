package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/gradforge/gradforge/framework/dtype"
)

// Shape ops: reshapes, transposes, joins, splits, pads and the constant makers. Integer
// arguments that decide shapes (Reshape's shape, Slice's starts, …) are read back to the host.

// optInts returns the ints of an optional input (nil when omitted) or of the attribute.
func (c *call) optInts(in []*val, i int, attr string) ([]int, bool) {
	if i < len(in) && in[i] != nil {
		return in[i].hostInts(), true
	}
	return c.ints(attr)
}

func shapeOf(x *val) []int { return x.t.Shape() }

func init() {
	ops["Reshape"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		var shape []int
		if c.opset < 5 {
			shape, _ = c.ints("shape")
		} else {
			shape = in[1].hostInts()
		}
		shape = slices.Clone(shape)
		if c.int("allowzero", 0) == 0 {
			for i, d := range shape {
				if d == 0 {
					shape[i] = x.t.Shape()[i]
				}
			}
		}
		return one(same(x.t.Reshape(shape...), x))
	}
	ops["Flatten"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		s := shapeOf(x)
		a := int(c.int("axis", 1))
		if a < 0 {
			a += len(s)
		}
		return one(same(x.t.Reshape(prodInts(s[:a]), prodInts(s[a:])), x))
	}
	ops["Transpose"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		perm, ok := c.ints("perm")
		if !ok {
			for i := x.t.Ndim() - 1; i >= 0; i-- {
				perm = append(perm, i)
			}
		}
		return one(same(x.t.Permute(perm...), x))
	}
	ops["Squeeze"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		axes, _ := c.optInts(in, 1, "axes")
		if len(axes) == 0 {
			return one(same(x.t.Squeeze(), x))
		}
		return one(same(x.t.Squeeze(axes...), x))
	}
	ops["Unsqueeze"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		axes, _ := c.optInts(in, 1, "axes")
		n := x.t.Ndim() + len(axes)
		ins := make([]bool, n)
		for _, a := range axes {
			ins[normAxis(a, n)] = true
		}
		var shape []int
		s := shapeOf(x)
		for i := 0; i < n; i++ {
			if ins[i] {
				shape = append(shape, 1)
			} else {
				shape = append(shape, s[0])
				s = s[1:]
			}
		}
		return one(same(x.t.Reshape(shape...), x))
	}
	ops["Shape"] = func(c *call, in []*val) ([]*val, error) {
		s := shapeOf(in[0])
		n := len(s)
		start, end := int(c.int("start", 0)), int(c.int("end", int64(n)))
		clamp := func(i int) int {
			if i < 0 {
				i += n
			}
			return min(max(i, 0), n)
		}
		start, end = clamp(start), clamp(end)
		var out []int64
		for _, d := range s[start:max(start, end)] {
			out = append(out, int64(d))
		}
		return one(c.konst(out))
	}
	ops["Size"] = func(c *call, in []*val) ([]*val, error) {
		return one(c.konst([]int64{int64(in[0].t.Numel())}, []int{}...))
	}
	ops["Concat"] = func(c *call, in []*val) ([]*val, error) {
		var ts []*T
		for _, x := range in {
			if x != nil && x.t.Numel() > 0 || x != nil && len(in) == 1 {
				ts = append(ts, x.t)
			}
		}
		ax := normAxis(int(c.int("axis", 0)), in[0].t.Ndim())
		if len(ts) == 0 { // every input is empty: the result is empty along axis
			s := shapeOf(in[0])
			s[ax] = 0
			for _, x := range in[1:] {
				s[ax] += x.t.Shape()[ax]
			}
			return one(same(in[0].t.Reshape(-1).Shrink([][2]int{{0, 0}}).Reshape(s...), in[0]))
		}
		if len(ts) == 1 {
			return one(same(ts[0], in[0]))
		}
		return one(same(ts[0].Cat(ax, ts[1:]...), in[0]))
	}
	ops["Split"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		ax := normAxis(int(c.int("axis", 0)), x.t.Ndim())
		n := x.t.Shape()[ax]
		split, ok := c.optInts(in, 1, "split")
		if !ok || len(split) == 0 {
			k := len(c.n.Outputs)
			if no := c.int("num_outputs", 0); no > 0 {
				k = int(no)
			}
			size := (n + k - 1) / k
			split = nil
			for rest := n; rest > 0; rest -= size {
				split = append(split, min(size, rest))
			}
			for len(split) < k {
				split = append(split, 0)
			}
		}
		var outs []*val
		off := 0
		for _, s := range split {
			outs = append(outs, same(x.t.Slice(ax, off, off+s), x))
			off += s
		}
		return outs, nil
	}
	ops["Expand"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		shape := in[1].hostInts()
		s := shapeOf(x)
		out := broadcastShapes(s, shape)
		return one(same(x.t.BroadcastTo(out...), x))
	}
	ops["Tile"] = func(c *call, in []*val) ([]*val, error) {
		return one(same(in[0].t.Repeat(in[1].hostInts()...), in[0]))
	}
	ops["Slice"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		var starts, ends, axes, steps []int
		if c.opset < 10 {
			starts, _ = c.ints("starts")
			ends, _ = c.ints("ends")
			axes, _ = c.ints("axes")
		} else {
			starts, ends = in[1].hostInts(), in[2].hostInts()
			axes, _ = c.optInts(in, 3, "")
			steps, _ = c.optInts(in, 4, "")
		}
		return one(same(sliceTensor(x.t, starts, ends, axes, steps), x))
	}
	ops["Pad"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		var pads []int
		value := 0.0
		if c.opset < 11 {
			pads, _ = c.ints("pads")
			value = c.float("value", 0)
		} else {
			pads = in[1].hostInts()
			if len(in) > 2 && in[2] != nil {
				value = in[2].hostFloats()[0]
			}
		}
		r := x.t.Ndim()
		axes, ok := c.optInts(in, 3, "")
		if !ok {
			for i := 0; i < r; i++ {
				axes = append(axes, i)
			}
		}
		p := make([][2]int, r)
		for i, a := range axes {
			a = normAxis(a, r)
			p[a] = [2]int{pads[i], pads[i+len(axes)]}
		}
		return one(same(padMode(x.t, p, c.str("mode", "constant"), value), x))
	}
	ops["Constant"] = func(c *call, in []*val) ([]*val, error) {
		for _, a := range c.n.Attrs {
			var h *Tensor
			switch a.Name {
			case "value":
				h = a.T
			case "sparse_value":
				var err error
				if h, err = densify(a.SparseTensor); err != nil {
					return nil, err
				}
			case "value_float":
				h = floatTensor([]float32{a.F}, nil)
			case "value_floats":
				h = floatTensor(a.Floats, []int64{int64(len(a.Floats))})
			case "value_int":
				return one(c.konst([]int64{a.I}, []int{}...))
			case "value_ints":
				return one(c.konst(a.Ints))
			case "value_string":
				return one(&val{dt: String, str: &Tensor{Type: String, Dims: []int64{}, Strings: [][]byte{a.S}}})
			case "value_strings":
				return one(&val{dt: String, str: &Tensor{Type: String, Dims: []int64{int64(len(a.Strings))}, Strings: a.Strings}})
			default:
				continue
			}
			v, err := c.e.fromHost(h)
			if err != nil {
				return nil, err
			}
			return one(v)
		}
		return nil, fmt.Errorf("Constant without a value attribute")
	}
	ops["ConstantOfShape"] = func(c *call, in []*val) ([]*val, error) {
		shape := in[0].hostInts()
		dt, v := Float, 0.0
		if a := c.attr("value"); a != nil && a.T != nil {
			dt = a.T.Type
			f, err := a.T.Float64s()
			if err != nil {
				return nil, err
			}
			v = f[0]
		}
		st, err := storageType(dt)
		if err != nil {
			return nil, err
		}
		z := c.slice([]float32{0}, []int{}...)
		return one(tv(z.Cast(st).FullLike(v).BroadcastTo(shape...), dt))
	}
	ops["Range"] = func(c *call, in []*val) ([]*val, error) {
		s, l, d := in[0].hostFloats()[0], in[1].hostFloats()[0], in[2].hostFloats()[0]
		n := max(0, int(math.Ceil((l-s)/d)))
		idx := c.arange(n)
		if in[0].t.DType().IsFloat() {
			return one(same(idx.Cast(dtype.Float32).Mul(d).Add(s), in[0]))
		}
		return one(same(idx.Mul(int64(d)).Add(int64(s)), in[0]))
	}
	ops["EyeLike"] = func(c *call, in []*val) ([]*val, error) {
		s := shapeOf(in[0])
		k := int(c.int("k", 0))
		dt := in[0].dt
		if a := c.attr("dtype"); a != nil {
			dt = DataType(a.I)
		}
		r := c.arange(s[0]).Reshape(s[0], 1).Add(k)
		col := c.arange(s[1]).Reshape(1, s[1])
		return one(tv(r.Eq(col), dt))
	}
	ops["Trilu"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		k := 0
		if len(in) > 1 && in[1] != nil {
			k = in[1].hostInts()[0]
		}
		s := shapeOf(x)
		n, m := s[len(s)-2], s[len(s)-1]
		row := c.arange(n).Reshape(n, 1)
		col := c.arange(m).Reshape(1, m)
		var keep *T
		if c.int("upper", 1) == 1 {
			keep = col.Sub(row).Ge(k)
		} else {
			keep = col.Sub(row).Le(k)
		}
		return one(same(keep.Where(x.t, x.t.ZerosLike()), x))
	}
	ops["DepthToSpace"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		s := shapeOf(x)
		b := int(c.int("blocksize", 1))
		n, ch, h, w := s[0], s[1], s[2], s[3]
		var y *T
		if c.str("mode", "DCR") == "DCR" {
			y = x.t.Reshape(n, b, b, ch/(b*b), h, w).Permute(0, 3, 4, 1, 5, 2)
		} else {
			y = x.t.Reshape(n, ch/(b*b), b, b, h, w).Permute(0, 1, 4, 2, 5, 3)
		}
		return one(same(y.Reshape(n, ch/(b*b), h*b, w*b), x))
	}
	ops["SpaceToDepth"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		s := shapeOf(x)
		b := int(c.int("blocksize", 1))
		n, ch, h, w := s[0], s[1], s[2], s[3]
		y := x.t.Reshape(n, ch, h/b, b, w/b, b).Permute(0, 3, 5, 1, 2, 4)
		if c.str("mode", "DCR") == "CRD" {
			y = x.t.Reshape(n, ch, h/b, b, w/b, b).Permute(0, 1, 3, 5, 2, 4)
		}
		return one(same(y.Reshape(n, ch*b*b, h/b, w/b), x))
	}
	ops["CenterCropPad"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		shape := in[1].hostInts()
		r := x.t.Ndim()
		axes, ok := c.ints("axes")
		if !ok {
			for i := 0; i < r; i++ {
				axes = append(axes, i)
			}
		}
		s := shapeOf(x)
		p := make([][2]int, r)
		for i, a := range axes {
			a = normAxis(a, r)
			d := shape[i] - s[a]
			if d >= 0 {
				p[a] = [2]int{d / 2, d - d/2}
			} else {
				cut := -d
				p[a] = [2]int{-(cut / 2), -(cut - cut/2)}
			}
		}
		return one(same(x.t.Pad(p), x))
	}
}

func prodInts(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// broadcastShapes is NumPy's broadcast of two shapes (ONNX's "multidirectional").
func broadcastShapes(a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		x, y := 1, 1
		if j := len(a) - n + i; j >= 0 {
			x = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			y = b[j]
		}
		switch {
		case x == y || y == 1:
			out[i] = x
		case x == 1:
			out[i] = y
		default:
			panic(fmt.Sprintf("shapes %v and %v do not broadcast", a, b))
		}
	}
	return out
}

func floatTensor(v []float32, dims []int64) *Tensor {
	h := &Tensor{Type: Float, Dims: dims}
	if dims == nil {
		h.Dims = []int64{}
	}
	for _, x := range v {
		h.Raw = append(h.Raw, byte(math.Float32bits(x)), byte(math.Float32bits(x)>>8), byte(math.Float32bits(x)>>16), byte(math.Float32bits(x)>>24))
	}
	return h
}

// sliceTensor is ONNX Slice: per axis, start/end clamped like Python, any step. Steps other
// than ±1 are a reshape that keeps every step-th element.
func sliceTensor(x *T, starts, ends, axes, steps []int) *T {
	r := x.Ndim()
	if axes == nil {
		for i := range starts {
			axes = append(axes, i)
		}
	}
	for i, a := range axes {
		a = normAxis(a, r)
		n := x.Shape()[a]
		step := 1
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			panic("slice step 0")
		}
		s, e := starts[i], ends[i]
		if s < 0 {
			s += n
		}
		if e < 0 {
			e += n
		}
		if step > 0 {
			s, e = min(max(s, 0), n), min(max(e, 0), n)
		} else {
			s, e = min(max(s, -1), n-1), min(max(e, -1), n-1)
		}
		if step < 0 { // walk backwards: flip, then slice forwards
			x = x.Flip(a)
			s, e = n-1-s, n-1-e
			step = -step
		}
		cnt := 0
		if e > s {
			cnt = (e - s + step - 1) / step
		}
		x = x.Slice(a, s, s+min((cnt-1)*step+1, n-s))
		if cnt == 0 {
			x = x.Slice(a, 0, 0)
		} else if step > 1 {
			x = takeEvery(x, a, step, cnt)
		}
	}
	return x
}

// takeEvery keeps elements 0, step, 2·step, … (cnt of them) along axis a.
func takeEvery(x *T, a, step, cnt int) *T {
	s := x.Shape()
	p := make([][2]int, len(s))
	p[a] = [2]int{0, cnt*step - s[a]}
	x = x.Pad(p)
	ns := append(slices.Clone(s[:a]), cnt, step)
	ns = append(ns, s[a+1:]...)
	x = x.Reshape(ns...)
	x = x.Slice(a+1, 0, 1)
	return x.Reshape(append(append(slices.Clone(s[:a]), cnt), s[a+1:]...)...)
}

// padMode pads with a constant, or by reflecting, repeating the edge, or wrapping around.
func padMode(x *T, p [][2]int, mode string, value float64) *T {
	if mode == "constant" {
		return x.Pad(p, value)
	}
	for a, pp := range p {
		before, after := pp[0], pp[1]
		if before < 0 || after < 0 {
			cut := [2]int{max(-before, 0), max(-after, 0)}
			x = x.Slice(a, cut[0], x.Shape()[a]-cut[1])
			before, after = max(before, 0), max(after, 0)
		}
		n := x.Shape()[a]
		var parts []*T
		for i := before; i > 0; i-- {
			parts = append(parts, x.Slice(a, padIndex(mode, -i, n), padIndex(mode, -i, n)+1))
		}
		parts = append(parts, x)
		for i := 0; i < after; i++ {
			j := padIndex(mode, n+i, n)
			parts = append(parts, x.Slice(a, j, j+1))
		}
		if len(parts) > 1 {
			x = parts[0].Cat(a, parts[1:]...)
		}
	}
	return x
}

func padIndex(mode string, i, n int) int {
	switch mode {
	case "edge":
		return min(max(i, 0), n-1)
	case "wrap":
		return ((i % n) + n) % n
	}
	// reflect without repeating the edge
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i = ((i % period) + period) % period
	if i >= n {
		i = period - i
	}
	return i
}
