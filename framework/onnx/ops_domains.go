package onnx

import (
	"fmt"
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
)

// Ops outside the default domain: ai.onnx.preview.training optimisers and a few ai.onnx.ml
// ops. domainOps is keyed "domain:Op".
var domainOps = map[string]opFunc{}

func init() {
	const tr = "ai.onnx.preview.training:"
	// groups splits the variadic tail after R and T into k equal groups.
	groups := func(in []*val, k int) [][]*T {
		rest := in[2:]
		n := len(rest) / k
		out := make([][]*T, k)
		for g := 0; g < k; g++ {
			for i := 0; i < n; i++ {
				out[g] = append(out[g], rest[g*n+i].t.Cast(dtype.Float32))
			}
		}
		return out
	}
	scalar := func(v *val) float64 { return v.hostFloats()[0] }
	domainOps[tr+"Adagrad"] = func(c *call, in []*val) ([]*val, error) {
		r, t := scalar(in[0]), scalar(in[1])
		g := groups(in, 3)
		rr := r / (1 + t*c.float("decay_factor", 0))
		nc, eps := c.float("norm_coefficient", 0), c.float("epsilon", 1e-6)
		var xs, hs []*val
		for i := range g[0] {
			x, gr, h := g[0][i], g[1][i], g[2][i]
			greg := x.Mul(nc).Add(gr)
			hn := h.Add(greg.Mul(greg))
			xs = append(xs, same(x.Sub(greg.Mul(rr).Div(hn.Sqrt().Add(eps))), in[2+i]))
			hs = append(hs, same(hn, in[2+2*len(g[0])+i]))
		}
		return append(xs, hs...), nil
	}
	domainOps[tr+"Momentum"] = func(c *call, in []*val) ([]*val, error) {
		r, t := scalar(in[0]), scalar(in[1])
		g := groups(in, 3)
		alpha, beta, nc := c.float("alpha", 0), c.float("beta", 0), c.float("norm_coefficient", 0)
		if t <= 0 {
			beta = 1
		}
		var xs, vs []*val
		for i := range g[0] {
			x, gr, v := g[0][i], g[1][i], g[2][i]
			greg := x.Mul(nc).Add(gr)
			vn := v.Mul(alpha).Add(greg.Mul(beta))
			var xn *T
			if c.str("mode", "standard") == "nesterov" {
				xn = x.Sub(greg.Add(vn.Mul(alpha)).Mul(r))
			} else {
				xn = x.Sub(vn.Mul(r))
			}
			xs = append(xs, same(xn, in[2+i]))
			vs = append(vs, same(vn, in[2+2*len(g[0])+i]))
		}
		return append(xs, vs...), nil
	}
	domainOps[tr+"Adam"] = func(c *call, in []*val) ([]*val, error) {
		r, t := scalar(in[0]), scalar(in[1])
		g := groups(in, 4)
		alpha, beta := c.float("alpha", 0.9), c.float("beta", 0.999)
		eps, nc, ncp := c.float("epsilon", 1e-6), c.float("norm_coefficient", 0), c.float("norm_coefficient_post", 0)
		ra := r
		if t > 0 {
			ra = r * math.Sqrt(1-math.Pow(beta, t)) / (1 - math.Pow(alpha, t))
		}
		n := len(g[0])
		var xs, vs, hs []*val
		for i := range g[0] {
			x, gr, v, h := g[0][i], g[1][i], g[2][i], g[3][i]
			greg := x.Mul(nc).Add(gr)
			vn := v.Mul(alpha).Add(greg.Mul(1 - alpha))
			hn := h.Mul(beta).Add(greg.Mul(greg).Mul(1 - beta))
			xn := x.Sub(vn.Div(hn.Sqrt().Add(eps)).Mul(ra)).Mul(1 - ncp)
			xs = append(xs, same(xn, in[2+i]))
			vs = append(vs, same(vn, in[2+2*n+i]))
			hs = append(hs, same(hn, in[2+3*n+i]))
		}
		return append(append(xs, vs...), hs...), nil
	}

	const ml = "ai.onnx.ml:"
	domainOps[ml+"Binarizer"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t
		return one(same(x.Gt(c.float("threshold", 0)).Cast(x.DType()), in[0]))
	}
	domainOps[ml+"ArrayFeatureExtractor"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t
		return one(same(gather(c, x, in[1].t.Reshape(-1), x.Ndim()-1), in[0]))
	}
	domainOps[ml+"LabelEncoder"] = labelEncoder
	domainOps[ml+"TreeEnsemble"] = treeEnsemble
}

// treeEnsemble evaluates ai.onnx.ml TreeEnsemble (opset 5) on the host, tree by tree and
// row by row: a node compares one feature with its split (or, in mode MEMBER, with the next
// NaN-terminated set of membership_values, taken in the order the reference builds the trees,
// depth first) and sends the row to its true or false child, a node or a leaf; the leaves'
// weights are aggregated per target.
func treeEnsemble(c *call, in []*val) ([]*val, error) {
	if c.int("post_transform", 0) != 0 {
		return nil, unsupported("TreeEnsemble post_transform %d", c.int("post_transform", 0))
	}
	floats := func(name string) []float64 {
		if a := c.attr(name); a != nil && a.T != nil {
			f, _ := a.T.Float64s()
			return f
		}
		return nil
	}
	ints := func(name string) []int {
		v, _ := c.ints(name)
		if a := c.attr(name); a != nil && a.T != nil { // nodes_modes is a tensor
			f, _ := a.T.Int64s()
			for _, x := range f {
				v = append(v, int(x))
			}
		}
		return v
	}
	splits, modes, feats := floats("nodes_splits"), ints("nodes_modes"), ints("nodes_featureids")
	trueIDs, falseIDs, trueLeaf, falseLeaf := ints("nodes_truenodeids"), ints("nodes_falsenodeids"), ints("nodes_trueleafs"), ints("nodes_falseleafs")
	leafTargets, leafWeights, missingTrue := ints("leaf_targetids"), floats("leaf_weights"), ints("nodes_missing_value_tracks_true")
	members := floats("membership_values")
	type node struct {
		mode, feat, target int
		split              float64 // the leaf's weight, at a leaf
		set                map[float64]bool
		leaf, missingTrue  bool
		yes, no            *node
	}
	var build func(i int, leaf bool) (*node, error)
	build = func(i int, leaf bool) (*node, error) {
		if leaf {
			if i >= len(leafWeights) || i >= len(leafTargets) {
				return nil, fmt.Errorf("TreeEnsemble: leaf %d out of range", i)
			}
			return &node{leaf: true, split: leafWeights[i], target: leafTargets[i]}, nil
		}
		if i < 0 || i >= len(modes) || i >= len(feats) || i >= len(trueIDs) || i >= len(falseIDs) {
			return nil, fmt.Errorf("TreeEnsemble: node %d out of range", i)
		}
		n := &node{mode: modes[i], feat: feats[i], missingTrue: i < len(missingTrue) && missingTrue[i] == 1}
		if n.mode == 6 {
			n.set = map[float64]bool{}
			for len(members) > 0 && !math.IsNaN(members[0]) {
				n.set[members[0]], members = true, members[1:]
			}
			if len(members) > 0 {
				members = members[1:]
			}
		} else if i < len(splits) {
			n.split = splits[i]
		}
		var err error
		if n.yes, err = build(trueIDs[i], i < len(trueLeaf) && trueLeaf[i] == 1); err != nil {
			return nil, err
		}
		n.no, err = build(falseIDs[i], i < len(falseLeaf) && falseLeaf[i] == 1)
		return n, err
	}
	roots, _ := c.ints("tree_roots")
	var trees []*node
	for _, r := range roots {
		leaf := r < len(trueLeaf) && r < len(falseLeaf) && trueLeaf[r] == 1 && falseLeaf[r] == 1 && trueIDs[r] == falseIDs[r]
		t, err := build(r, leaf)
		if err != nil {
			return nil, err
		}
		trees = append(trees, t)
	}
	cmp := []func(x, v float64) bool{
		func(x, v float64) bool { return x <= v }, func(x, v float64) bool { return x < v },
		func(x, v float64) bool { return x >= v }, func(x, v float64) bool { return x > v },
		func(x, v float64) bool { return x == v }, func(x, v float64) bool { return x != v },
	}
	x := in[0].hostFloats()
	rows, nt, agg := in[0].t.Shape()[0], int(c.int("n_targets", 1)), c.int("aggregate_function", 1)
	init := map[int64]float64{2: math.MaxFloat32, 3: -math.MaxFloat32}[agg]
	y := make([]float32, rows*nt)
	for r := 0; r < rows; r++ {
		row, out := x[r*len(x)/rows:(r+1)*len(x)/rows], make([]float64, nt)
		for i := range out {
			out[i] = init
		}
		for _, n := range trees {
			for !n.leaf {
				if n.feat >= len(row) || n.mode > 6 {
					return nil, fmt.Errorf("TreeEnsemble: feature %d of %d, mode %d", n.feat, len(row), n.mode)
				}
				v := row[n.feat]
				if (n.mode == 6 && n.set[v]) || (n.mode < 6 && cmp[n.mode](v, n.split)) || (n.missingTrue && math.IsNaN(v)) {
					n = n.yes
				} else {
					n = n.no
				}
			}
			if n.target < 0 || n.target >= nt {
				return nil, fmt.Errorf("TreeEnsemble: target %d of %d", n.target, nt)
			}
			switch o := &out[n.target]; agg {
			case 0:
				*o += n.split / float64(len(trees))
			case 2:
				*o = min(*o, n.split)
			case 3:
				*o = max(*o, n.split)
			default:
				*o += n.split
			}
		}
		for i, v := range out {
			y[r*nt+i] = float32(v)
		}
	}
	return one(same(c.slice(y, rows, nt), in[0]))
}

// labelEncoder maps keys to values on the host (keys and values may be strings, ints or
// floats, as attributes or tensors).
func labelEncoder(c *call, in []*val) ([]*val, error) {
	keyList := func(prefix string) ([]string, DataType) {
		if a := c.attr(prefix + "_strings"); a != nil {
			var s []string
			for _, b := range a.Strings {
				s = append(s, string(b))
			}
			return s, String
		}
		if a := c.attr(prefix + "_int64s"); a != nil {
			var s []string
			for _, v := range a.Ints {
				s = append(s, fmt.Sprint(v))
			}
			return s, Int64
		}
		if a := c.attr(prefix + "_floats"); a != nil {
			var s []string
			for _, v := range a.Floats {
				s = append(s, fmt.Sprint(float64(v)))
			}
			return s, Float
		}
		if a := c.attr(prefix + "_tensor"); a != nil && a.T != nil {
			if a.T.Type == String {
				var s []string
				for _, b := range a.T.Strings {
					s = append(s, string(b))
				}
				return s, String
			}
			f, _ := a.T.Float64s()
			var s []string
			for _, v := range f {
				s = append(s, fmt.Sprint(v))
			}
			return s, a.T.Type
		}
		return nil, Undefined
	}
	keys, _ := keyList("keys")
	vals, vt := keyList("values")
	if len(keys) != len(vals) || vt == Undefined {
		return nil, fmt.Errorf("keys and values do not pair up")
	}
	def := ""
	switch vt {
	case String:
		def = c.str("default_string", "_Unused")
	case Int64:
		def = fmt.Sprint(c.int("default_int64", -1))
	default:
		def = fmt.Sprint(c.float("default_float", 0))
	}
	if a := c.attr("default_tensor"); a != nil && a.T != nil {
		if a.T.Type == String {
			def = string(a.T.Strings[0])
		} else {
			f, _ := a.T.Float64s()
			def = fmt.Sprint(f[0])
		}
	}
	m := map[string]string{}
	for i, k := range keys {
		m[k] = vals[i]
	}
	var xs []string
	var dims []int64
	if in[0].str != nil {
		xs, _ = strs(in[0])
		dims = in[0].str.Dims
	} else {
		for _, v := range in[0].hostFloats() {
			xs = append(xs, fmt.Sprint(v))
		}
		dims = toInt64s(in[0].t.Shape())
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		if v, ok := m[x]; ok {
			out[i] = v
		} else {
			out[i] = def
		}
	}
	if vt == String {
		return one(strVal(out, dims))
	}
	f := make([]float64, len(out))
	for i, s := range out {
		fmt.Sscan(s, &f[i])
	}
	h := &Tensor{Type: Float, Dims: dims}
	if vt == Int64 {
		iv := make([]int64, len(f))
		for i, v := range f {
			iv[i] = int64(v)
		}
		return one(c.konst(iv, toInts(dims)...))
	}
	fl := make([]float32, len(f))
	for i, v := range f {
		fl[i] = float32(v)
	}
	_ = h
	return one(tv(c.slice(fl, toInts(dims)...), vt))
}
