package onnx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Losses, attention, rotary embeddings, dropout (inference), cumulative ops, TopK, Einsum,
// quantisation and bit casts.

// nll is the per-element negative log-likelihood of logp [N, C, D…] at labels [N, D…],
// weighted; it returns the losses and the weights used (zero where ignored).
func nll(c *call, logp, labels, weight *T) (*T, *T) {
	ch := logp.Shape()[1]
	shape := ones(logp.Ndim())
	shape[1] = ch
	lab := labels.Cast(dtype.Int64)
	oh := lab.Unsqueeze(1).Eq(c.arange(ch).Reshape(shape...))
	picked := oh.Where(logp, logp.ZerosLike()).Sum(1)
	var w *T
	if weight != nil {
		wb := weight.Cast(logp.DType()).Reshape(shape...)
		w = oh.Where(wb, wb.ZerosLike()).Sum(1)
	} else {
		w = oh.Cast(logp.DType()).Sum(1)
	}
	if a := c.attr("ignore_index"); a != nil {
		w = lab.Eq(a.I).Where(w.ZerosLike(), w)
	}
	return picked.Neg().Mul(w), w
}

func lossReduce(c *call, loss, w *T) *T {
	switch c.str("reduction", "mean") {
	case "none":
		return loss
	case "sum":
		return loss.Sum()
	}
	return loss.Sum().Div(w.Sum())
}

func init() {
	ops["NegativeLogLikelihoodLoss"] = func(c *call, in []*val) ([]*val, error) {
		var w *T
		if len(in) > 2 && in[2] != nil {
			w = in[2].t
		}
		x := in[0].t.Cast(dtype.Float32)
		loss, ws := nll(c, x, in[1].t, w)
		return one(same(lossReduce(c, loss, ws), in[0]))
	}
	ops["SoftmaxCrossEntropyLoss"] = func(c *call, in []*val) ([]*val, error) {
		var w *T
		if len(in) > 2 && in[2] != nil {
			w = in[2].t
		}
		logp := in[0].t.Cast(dtype.Float32).LogSoftmax(1)
		loss, ws := nll(c, logp, in[1].t, w)
		return []*val{same(lossReduce(c, loss, ws), in[0]), same(logp, in[0])}, nil
	}
	ops["Dropout"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		training := len(in) > 2 && in[2] != nil && in[2].hostFloats()[0] != 0
		ratio := c.float("ratio", 0.5)
		if len(in) > 1 && in[1] != nil {
			ratio = in[1].hostFloats()[0]
		}
		if !training || ratio == 0 {
			return []*val{x, tv(x.t.OnesLike().Cast(dtype.Bool), Bool)}, nil
		}
		// The mask is drawn on the host from NumPy's legacy generator, so a seeded Dropout
		// keeps what the reference keeps.
		g := newMT19937(uint32(c.int("seed", int64(rand.Uint32()))))
		keep := make([]bool, x.t.Numel())
		for i := range keep {
			keep[i] = g.float64() >= ratio
		}
		m := c.slice(keep, x.t.Shape()...)
		return []*val{same(m.Where(up(x.t).Mul(1/(1-ratio)), 0.0), x), tv(m, Bool)}, nil
	}
	// Random ops draw on the host from NumPy's legacy generator (seeded by the seed attribute,
	// else at random); Bernoulli draws as NumPy's binomial(1, p) does.
	rng := func(c *call) *mt19937 {
		if a := c.attr("seed"); a != nil {
			return newMT19937(uint32(int64(a.F)))
		}
		return newMT19937(rand.Uint32())
	}
	ops["Bernoulli"] = func(c *call, in []*val) ([]*val, error) {
		g, p := rng(c), in[0].hostFloats()
		y := make([]float32, len(p))
		for i, pi := range p {
			if g.bernoulli(pi) {
				y[i] = 1
			}
		}
		return one(tv(c.slice(y, in[0].t.Shape()...), DataType(c.int("dtype", int64(in[0].dt)))))
	}
	ops["RandomUniformLike"] = func(c *call, in []*val) ([]*val, error) {
		g, lo, hi := rng(c), c.float("low", 0), c.float("high", 1)
		y := make([]float32, in[0].t.Numel())
		for i := range y {
			y[i] = float32(lo + (hi-lo)*g.float64())
		}
		return one(tv(c.slice(y, in[0].t.Shape()...), DataType(c.int("dtype", int64(in[0].dt)))))
	}
	cum := func(prod bool) opFunc {
		return func(c *call, in []*val) ([]*val, error) {
			x := in[0].t
			r := x.Ndim()
			ax := normAxis(in[1].hostInts()[0], r)
			n := x.Shape()[ax]
			i := c.arange(n).Reshape(n, 1)
			j := c.arange(n).Reshape(1, n)
			var m *T
			switch ex, rev := c.int("exclusive", 0) == 1, c.int("reverse", 0) == 1; {
			case !ex && !rev:
				m = j.Le(i)
			case ex && !rev:
				m = j.Lt(i)
			case !ex && rev:
				m = j.Ge(i)
			default:
				m = j.Gt(i)
			}
			xl := x.Transpose(ax, -1).Unsqueeze(-2) // [..., 1, n(j)]
			var y *T
			if prod {
				y = prodReduce(m.Where(xl, xl.OnesLike()), []int{r}, false)
			} else {
				y = m.Where(xl, xl.ZerosLike()).Sum(-1).Cast(x.DType())
			}
			return one(same(y.Transpose(ax, -1), in[0]))
		}
	}
	ops["CumSum"], ops["CumProd"] = cum(false), cum(true)
	ops["TopK"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t
		var k int
		if c.opset < 10 {
			k = int(c.int("k", 1))
		} else {
			k = in[1].hostInts()[0]
		}
		ax := normAxis(int(c.int("axis", -1)), x.Ndim())
		largest := c.int("largest", 1) == 1
		work := x
		if x.DType() == dtype.Bool {
			work = work.Cast(dtype.Int32)
		}
		if !largest {
			if work.DType().IsFloat() {
				work = work.Neg()
			} else {
				work = work.Cast(dtype.Int64).Neg()
			}
		}
		n := x.Shape()[ax]
		shape := ones(x.Ndim())
		shape[ax] = n
		pos := c.arange(n).Reshape(shape...)
		low := math.Inf(-1)
		if !work.DType().IsFloat() {
			low = work.DType().Min()
		}
		var vals, idxs []*T
		for i := 0; i < k; i++ {
			id := work.Argmax(ax, tensor.KeepDim)
			hit := pos.Eq(id)
			v := hit.Where(x, x.ZerosLike()).Sum(ax, tensor.KeepDim).Cast(x.DType())
			vals, idxs = append(vals, v), append(idxs, id)
			work = hit.Where(work.FullLike(low), work)
		}
		if k == 0 {
			return []*val{same(x.Slice(ax, 0, 0), in[0]), tv(x.Slice(ax, 0, 0).Cast(dtype.Int64), Int64)}, nil
		}
		return []*val{same(vals[0].Cat(ax, vals[1:]...), in[0]), tv(idxs[0].Cat(ax, idxs[1:]...), Int64)}, nil
	}
	ops["Einsum"] = func(c *call, in []*val) ([]*val, error) {
		ts := make([]*T, len(in))
		for i, v := range in {
			ts[i] = v.t
		}
		y, err := einsum(c.str("equation", ""), ts)
		if err != nil {
			return nil, err
		}
		return one(same(y, in[0]))
	}
	ops["Attention"] = attention
	ops["RotaryEmbedding"] = rotary
	ops["BitCast"] = func(c *call, in []*val) ([]*val, error) {
		to := DataType(c.int("to", 1))
		x := in[0]
		st, err := storageType(to)
		if err != nil {
			return nil, err
		}
		switch { // integers held in wider storage reinterpret by wrapping arithmetic
		case x.dt == Bool && to == Uint8 || x.dt == Uint8 && to == Bool:
			return one(tv(x.t.Cast(st), to))
		case x.dt == Uint32 && to == Int32 || x.dt == Uint16 && to == Int16:
			half := int64(1) << (8*to.Size() - 1)
			v := x.t.Cast(dtype.Int64)
			return one(tv(v.Ge(half).Where(v.Sub(2*half), v), to))
		case x.dt == Int32 && to == Uint32 || x.dt == Int16 && to == Uint16:
			v := x.t.Cast(dtype.Int64)
			return one(tv(v.Lt(0).Where(v.Add(int64(1)<<(8*to.Size())), v), to))
		}
		if h := x.host; h != nil && x.dt.Size() == 8 && to.Size() == 8 { // float64 has no device type: reinterpret known bytes
			v, err := c.e.fromHost(&Tensor{Type: to, Dims: h.Dims, Raw: h.Raw})
			return []*val{v}, err
		}
		if x.dt.Size() != to.Size() || x.t.DType().Size() != x.dt.Size() || st.Size() != to.Size() || to.Size() == 2 {
			return nil, unsupported("BitCast %v to %v", x.dt, to)
		}
		if x.dt == Bool || to == Bool {
			return nil, unsupported("BitCast of bool")
		}
		return one(tv(x.t.Bitcast(st), to))
	}
	ops["QuantizeLinear"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		to := Uint8
		if len(in) > 2 && in[2] != nil {
			to = in[2].dt
		}
		if a := c.attr("output_dtype"); a != nil && a.I != 0 {
			to = DataType(a.I)
		}
		scale := quantParam(c, in[1].t.Cast(dtype.Float32), x)
		y := fdiv(x, scale.BroadcastTo(x.Shape()...))
		if isSmallFloat(to) {
			if len(in) > 2 && in[2] != nil {
				y = y.Add(quantParam(c, in[2].t.Cast(dtype.Float32), x))
			}
			return one(tv(quantizeFloat(y, to, c.int("saturate", 1) == 1), to))
		}
		y = round(y)
		if len(in) > 2 && in[2] != nil {
			y = y.Add(quantParam(c, in[2].t.Cast(dtype.Float32), x))
		}
		lo, hi, err := intLimits(to)
		if err != nil {
			return nil, err
		}
		return one(tv(y.Clip(lo, hi), to))
	}
	ops["DequantizeLinear"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		if len(in) > 2 && in[2] != nil {
			x = x.Sub(quantParam(c, in[2].t.Cast(dtype.Float32), x))
		}
		to := in[1].dt
		if a := c.attr("output_dtype"); a != nil && a.I != 0 {
			to = DataType(a.I)
		}
		return one(tv(x.Mul(quantParam(c, in[1].t.Cast(dtype.Float32), x)), to))
	}
	ops["DynamicQuantizeLinear"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0].t.Cast(dtype.Float32)
		mx, mn := x.Max().Maximum(0.0), x.Min().Minimum(0.0)
		scale := fdiv(mx.Sub(mn), mx.FullLike(255))
		zp := round(fdiv(mn.Neg(), scale)).Clip(0, 255)
		y := round(fdiv(x, scale)).Add(zp).Clip(0, 255)
		return []*val{tv(y, Uint8), tv(scale, Float), tv(zp, Uint8)}, nil
	}
	ops["QLinearConv"] = func(c *call, in []*val) ([]*val, error) {
		f := func(v *val) *T { return v.t.Cast(dtype.Float32) }
		x := f(in[0]).Sub(f(in[2])).Mul(f(in[1]))
		ws, wz := f(in[4]), f(in[5])
		if ws.Numel() > 1 {
			ws = ws.Reshape(append([]int{ws.Numel()}, ones(in[3].t.Ndim()-1)...)...)
		}
		if wz.Numel() > 1 {
			wz = wz.Reshape(append([]int{wz.Numel()}, ones(in[3].t.Ndim()-1)...)...)
		}
		w := f(in[3]).Sub(wz).Mul(ws)
		var b *T
		if len(in) > 8 && in[8] != nil { // int32 bias in units of x_scale·w_scale
			b = f(in[8]).Mul(f(in[1]).Mul(f(in[4])).Reshape(-1))
		}
		y := conv(c, x, w, b, int(c.int("group", 1)))
		y = round(y.Div(f(in[6]))).Add(f(in[7]))
		lo, hi, err := intLimits(in[7].dt)
		if err != nil {
			return nil, err
		}
		return one(tv(y.Clip(lo, hi), in[7].dt))
	}
	ops["QLinearMatMul"] = func(c *call, in []*val) ([]*val, error) {
		deq := func(x, s, z *val) *T {
			return x.t.Cast(dtype.Float32).Sub(z.t.Cast(dtype.Float32).Reshape(rowParam(z.t, x.t)...)).Mul(s.t.Cast(dtype.Float32).Reshape(rowParam(s.t, x.t)...))
		}
		a := deq(in[0], in[1], in[2])
		bz, bs := in[5].t.Cast(dtype.Float32), in[4].t.Cast(dtype.Float32)
		b := in[3].t.Cast(dtype.Float32).Sub(bz).Mul(bs)
		y := a.Matmul(b).Div(in[6].t.Cast(dtype.Float32))
		y = round(y).Add(in[7].t.Cast(dtype.Float32))
		lo, hi, err := intLimits(in[7].dt)
		if err != nil {
			return nil, err
		}
		return one(tv(y.Clip(lo, hi), in[7].dt))
	}
}

// rowParam shapes a per-row quantisation parameter of a matrix (a 1-D vector as long as the
// rows) to broadcast; scalars stay scalars.
func rowParam(p, x *T) []int {
	if p.Numel() > 1 && p.Ndim() == 1 {
		s := ones(x.Ndim())
		s[x.Ndim()-2] = p.Numel()
		return s
	}
	return p.Shape()
}

func intLimits(dt DataType) (float64, float64, error) {
	switch dt {
	case Uint8:
		return 0, 255, nil
	case Int8:
		return -128, 127, nil
	case Uint16:
		return 0, 65535, nil
	case Int16:
		return -32768, 32767, nil
	case Int32:
		return math.MinInt32, math.MaxInt32, nil
	case Int4, Uint4, Int2, Uint2:
		lo, hi := intRange(dt)
		return lo, hi, nil
	}
	return 0, 0, unsupported("quantised type %v", dt)
}

// quantParam broadcasts a scale or zero point against x: a scalar, a vector along axis, or
// blocks of block_size along axis.
func quantParam(c *call, p, x *T) *T {
	if p.Numel() == 1 {
		return p.Reshape()
	}
	r := x.Ndim()
	ax := normAxis(int(c.int("axis", 1)), r)
	if bs := int(c.int("block_size", 0)); bs > 0 {
		s := p.Shape()
		e := p.Unsqueeze(ax + 1)
		big := slices.Clone(e.Shape())
		big[ax+1] = bs
		e = e.Expand(big...)
		s[ax] *= bs
		e = e.Reshape(s...)
		return e.Slice(ax, 0, x.Shape()[ax])
	}
	shape := ones(r)
	shape[ax] = p.Numel()
	return p.Reshape(shape...)
}

// attention is ONNX Attention (opset 23): scaled dot-product attention with grouped heads,
// past keys and values, boolean or additive masks, causal masking and soft capping.
func attention(c *call, in []*val) ([]*val, error) {
	q, k, v := in[0].t.Cast(dtype.Float32), in[1].t.Cast(dtype.Float32), in[2].t.Cast(dtype.Float32)
	threeD := q.Ndim() == 3
	if threeD {
		qh, kvh := int(c.int("q_num_heads", 0)), int(c.int("kv_num_heads", 0))
		if qh == 0 || kvh == 0 {
			return nil, fmt.Errorf("3-D inputs need q_num_heads and kv_num_heads")
		}
		split := func(x *T, h int) *T {
			s := x.Shape()
			return x.Reshape(s[0], s[1], h, s[2]/h).Permute(0, 2, 1, 3)
		}
		q, k, v = split(q, qh), split(k, kvh), split(v, kvh)
	}
	get := func(i int) *T {
		if len(in) > i && in[i] != nil {
			return in[i].t
		}
		return nil
	}
	past := 0
	if pk := get(4); pk != nil {
		past = pk.Shape()[2]
		k = pk.Cast(dtype.Float32).Cat(2, k)
	}
	if pv := get(5); pv != nil {
		v = pv.Cast(dtype.Float32).Cat(2, v)
	}
	presentK, presentV := k, v
	qs, ks := q.Shape(), k.Shape()
	hq, hkv := qs[1], ks[1]
	if hq != hkv {
		g := hq / hkv
		rep := func(x *T) *T {
			s := x.Shape()
			return x.Unsqueeze(2).Expand(s[0], s[1], g, s[2], s[3]).Reshape(s[0], s[1]*g, s[2], s[3])
		}
		k, v = rep(k), rep(v)
	}
	sq, skv := qs[2], ks[2]
	scale := c.float("scale", 1/math.Sqrt(float64(qs[3])))
	qk := q.Matmul(k.Transpose(-1, -2)).Mul(scale)
	mode := c.int("qk_matmul_output_mode", 0)
	out3 := qk
	bias := qk.ZerosLike()
	if m := get(3); m != nil {
		if m.DType() == dtype.Bool {
			m = m.Where(0.0, math.Inf(-1))
		} else {
			m = m.Cast(dtype.Float32)
		}
		if ms := m.Shape(); ms[len(ms)-1] < skv { // a mask shorter than the keys pads with -inf
			p := make([][2]int, len(ms))
			p[len(ms)-1] = [2]int{0, skv - ms[len(ms)-1]}
			m = m.Pad(p, math.Inf(-1))
		}
		bias = bias.Add(m)
	}
	// Query i sits after the past keys; with nonpad_kv_seqlen, at the end of each batch's
	// valid keys.
	qpos := c.arange(sq).Reshape(sq, 1).Add(past)
	nl := get(6)
	if nl != nil {
		qpos = c.arange(sq).Reshape(1, 1, sq, 1).Add(nl.Cast(dtype.Int64).Reshape(-1, 1, 1, 1).Sub(sq))
	}
	j := c.arange(skv).Reshape(1, skv)
	if c.int("is_causal", 0) == 1 {
		bias = j.Gt(qpos).Where(math.Inf(-1), bias)
	}
	if lw := c.int("left_window_size", -1); lw >= 0 { // sliding window: keys too far back
		bias = j.Lt(qpos.Sub(lw)).Where(math.Inf(-1), bias)
	}
	if rw := c.int("right_window_size", -1); rw >= 0 {
		bias = j.Gt(qpos.Add(rw)).Where(math.Inf(-1), bias)
	}
	if nl != nil { // keys past each batch's valid length
		bias = j.Reshape(1, 1, 1, skv).Ge(nl.Cast(dtype.Int64).Reshape(-1, 1, 1, 1)).Where(math.Inf(-1), bias)
	}
	sc := c.float("softcap", 0)
	if sc > 0 { // capped before masking, so -inf stays -inf
		qk = tanh(qk.Div(sc)).Mul(sc)
		out3 = qk // mode 1 under a softcap is the capped product, without the mask (as the reference)
	}
	qk = qk.Add(bias)
	if mode == 2 || (mode == 1 && sc <= 0) {
		out3 = qk
	}
	// A row with every key masked gives zeros rather than NaN.
	dead := qk.Max(-1, tensor.KeepDim).Eq(math.Inf(-1))
	p := dead.Where(0.0, qk.Softmax(-1))
	if mode == 3 {
		out3 = p
	}
	y := p.Matmul(v)
	if threeD {
		s := y.Shape()
		y = y.Permute(0, 2, 1, 3).Reshape(s[0], s[2], s[1]*s[3])
	}
	outs := []*val{same(y, in[0]), same(presentK, in[1]), same(presentV, in[2]), same(out3, in[0])}
	return outs, nil
}

// rotary is ONNX RotaryEmbedding (opset 23).
func rotary(c *call, in []*val) ([]*val, error) {
	x := in[0].t.Cast(dtype.Float32)
	cosC, sinC := in[1].t.Cast(dtype.Float32), in[2].t.Cast(dtype.Float32)
	orig := x.Shape()
	fourD := x.Ndim() == 4
	if fourD {
		x = x.Permute(0, 2, 1, 3) // [B, S, N, H]
	} else {
		nh := int(c.int("num_heads", 0))
		if nh == 0 {
			return nil, fmt.Errorf("3-D input needs num_heads")
		}
		x = x.Reshape(orig[0], orig[1], nh, orig[2]/nh)
	}
	s := x.Shape()
	h := s[3]
	rot := int(c.int("rotary_embedding_dim", 0))
	if rot == 0 {
		rot = h
	}
	if len(in) > 3 && in[3] != nil {
		pos := in[3].t
		cosC, sinC = gather(c, cosC, pos, 0), gather(c, sinC, pos, 0) // [B, S, rot/2]
	}
	cosC = cosC.Slice(-1, 0, rot/2).Unsqueeze(2) // [B, S, 1, rot/2]
	sinC = sinC.Slice(-1, 0, rot/2).Unsqueeze(2)
	xr, xp := x.Slice(3, 0, rot), x.Slice(3, rot, h)
	var x1, x2 *T
	inter := c.int("interleaved", 0) == 1
	if inter {
		pairs := xr.Reshape(s[0], s[1], s[2], rot/2, 2)
		x1, x2 = pairs.Slice(4, 0, 1).Squeeze(4), pairs.Slice(4, 1, 2).Squeeze(4)
	} else {
		x1, x2 = xr.Slice(3, 0, rot/2), xr.Slice(3, rot/2, rot)
	}
	re := cosC.Mul(x1).Sub(sinC.Mul(x2))
	im := sinC.Mul(x1).Add(cosC.Mul(x2))
	var y *T
	if inter {
		y = re.Unsqueeze(4).Cat(4, im.Unsqueeze(4)).Reshape(s[0], s[1], s[2], rot)
	} else {
		y = re.Cat(3, im)
	}
	if rot < h {
		y = y.Cat(3, xp)
	}
	if fourD {
		y = y.Permute(0, 2, 1, 3)
	} else {
		y = y.Reshape(orig...)
	}
	return one(same(y, in[0]))
}

// einsum evaluates an Einstein summation: diagonals for repeated letters, then one
// broadcast product over all letters and a sum over those not in the output.
func einsum(eq string, ts []*T) (*T, error) {
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(ts) {
		return nil, fmt.Errorf("equation %q has %d operands, got %d", eq, len(terms), len(ts))
	}
	ell := 0
	for i, t := range terms {
		if strings.Contains(t, "...") {
			ell = max(ell, ts[i].Ndim()-(len(t)-3))
		}
	}
	ellL := ""
	for i := 0; i < ell; i++ {
		ellL += string(rune('A' + i))
	}
	sizes := map[rune]int{}
	for i, t := range terms {
		if strings.Contains(t, "...") {
			n := ts[i].Ndim() - (len(t) - 3)
			t = strings.Replace(t, "...", ellL[ell-n:], 1)
			terms[i] = t
		}
		if len([]rune(t)) != ts[i].Ndim() {
			return nil, fmt.Errorf("term %q for shape %v", t, ts[i].Shape())
		}
	}
	if explicit {
		rhs = strings.Replace(rhs, "...", ellL, 1)
	} else {
		count := map[rune]int{}
		for _, t := range terms {
			for _, r := range t {
				count[r]++
			}
		}
		var letters []rune
		for r, n := range count {
			if n == 1 && !strings.ContainsRune(ellL, r) {
				letters = append(letters, r)
			}
		}
		sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
		rhs = ellL + string(letters)
	}
	// Diagonals: a letter repeated inside one term.
	for i, t := range terms {
		x := ts[i]
		for {
			rs := []rune(t)
			a, b := -1, -1
			for p := range rs {
				for q := p + 1; q < len(rs); q++ {
					if rs[p] == rs[q] && a < 0 {
						a, b = p, q
					}
				}
			}
			if a < 0 {
				break
			}
			n := x.Shape()[a]
			order := []int{}
			for p := range rs {
				if p != a && p != b {
					order = append(order, p)
				}
			}
			x = x.Permute(append(order, a, b)...)
			s := x.Shape()
			lead := s[:len(s)-2]
			x = x.Reshape(append(slices.Clone(lead), n*n)...)
			x = takeEvery(x, len(lead), n+1, n)
			var nr []rune
			for _, p := range order {
				nr = append(nr, rs[p])
			}
			t = string(append(nr, rs[a]))
		}
		terms[i], ts[i] = t, x
		for j, r := range t {
			d := x.Shape()[j]
			if old, ok := sizes[r]; !ok || old == 1 {
				sizes[r] = d
			}
		}
	}
	all := []rune(rhs)
	for _, t := range terms {
		for _, r := range t {
			if !slices.Contains(all, r) {
				all = append(all, r)
			}
		}
	}
	var prod *T
	for i, t := range terms {
		rs := []rune(t)
		var order []int
		shape := make([]int, len(all))
		for j, r := range all {
			shape[j] = 1
			if p := slices.Index(rs, r); p >= 0 {
				order = append(order, p)
			}
		}
		x := ts[i].Permute(order...)
		xs := x.Shape()
		k := 0
		for j, r := range all {
			if slices.Contains(rs, r) {
				shape[j] = xs[k]
				k++
			}
		}
		x = x.Reshape(shape...)
		if prod == nil {
			prod = x
		} else {
			prod = prod.Mul(x)
		}
	}
	nout := len([]rune(rhs))
	if len(all) > nout {
		dt := prod.DType()
		prod = prod.Sum(seq(nout, len(all)-nout)...).Cast(dt)
	}
	return prod, nil
}

func init() {
	ops["LinearAttention"] = linearAttention
}

// linearAttention is ONNX LinearAttention (opset 27): a recurrent matrix state per KV head,
// updated token by token (linear, gated, delta or gated-delta rule) and read by the queries.
func linearAttention(c *call, in []*val) ([]*val, error) {
	get := func(i int) *T {
		if len(in) > i && in[i] != nil {
			return up(in[i].t)
		}
		return nil
	}
	q, k, v := get(0), get(1), get(2)
	hq, hkv := int(c.int("q_num_heads", 0)), int(c.int("kv_num_heads", 0))
	if hq == 0 || hkv == 0 || hq%hkv != 0 {
		return nil, fmt.Errorf("q_num_heads %d and kv_num_heads %d", hq, hkv)
	}
	qs, vs := q.Shape(), v.Shape()
	b, steps := qs[0], qs[1]
	dk, dv := qs[2]/hq, vs[2]/hkv
	if k.Shape()[2] != hkv*dk {
		return nil, unsupported("key heads other than kv_num_heads")
	}
	q = q.Reshape(b, steps, hq, dk)
	k = k.Reshape(b, steps, hkv, dk)
	v = v.Reshape(b, steps, hkv, dv)
	rule := c.str("update_rule", "gated_delta")
	scale := c.float("scale", 1/math.Sqrt(float64(dk)))
	st := get(3)
	if st == nil {
		st = q.Slice(1, 0, 1).Reshape(-1).Slice(0, 0, 1).ZerosLike().Reshape(1, 1, 1, 1).Expand(b, hkv, dk, dv)
	}
	decay, beta := get(4), get(5)
	g := hq / hkv
	outs := make([]*T, steps)
	for t := 0; t < steps; t++ {
		kt := k.Slice(1, t, t+1).Reshape(b, hkv, dk, 1)
		vt := v.Slice(1, t, t+1).Reshape(b, hkv, 1, dv)
		if (rule == "gated" || rule == "gated_delta") && decay != nil {
			dt := decay.Slice(1, t, t+1)
			if dt.Shape()[2] == hkv*dk {
				dt = dt.Reshape(b, hkv, dk, 1)
			} else {
				dt = dt.Reshape(b, hkv, 1, 1)
			}
			st = st.Mul(dt.Exp())
		}
		switch rule {
		case "linear", "gated":
			st = st.Add(kt.Mul(vt))
		case "delta", "gated_delta":
			bt := beta.Slice(1, t, t+1)
			if bt.Shape()[2] == hkv {
				bt = bt.Reshape(b, hkv, 1, 1)
			} else {
				bt = bt.Reshape(b, 1, 1, 1)
			}
			mem := st.Mul(kt).Sum(2, tensor.KeepDim) // Sᵀk as [B, H, 1, dv]
			st = st.Add(kt.Mul(vt.Sub(mem)).Mul(bt))
		default:
			return nil, unsupported("update_rule %q", rule)
		}
		sq := st.Unsqueeze(2).Expand(b, hkv, g, dk, dv).Reshape(b, hq, dk, dv)
		qt := q.Slice(1, t, t+1).Reshape(b, hq, dk, 1)
		outs[t] = qt.Mul(sq).Sum(2).Mul(scale).Reshape(b, 1, hq*dv)
	}
	y := outs[0]
	if steps > 1 {
		y = outs[0].Cat(1, outs[1:]...)
	}
	return []*val{same(y, in[0]), same(st, in[0])}, nil
}

func init() {
	// FlexAttention (ai.onnx.preview): scaled dot-product attention whose scores pass
	// through an optional score_mod subgraph before the softmax.
	domainOps["ai.onnx.preview:FlexAttention"] = func(c *call, in []*val) ([]*val, error) {
		q, k, v := up(in[0].t), up(in[1].t), up(in[2].t)
		qs, ks := q.Shape(), k.Shape()
		if hq, hkv := qs[1], ks[1]; hq != hkv {
			g := hq / hkv
			rep := func(x *T) *T {
				s := x.Shape()
				return x.Unsqueeze(2).Expand(s[0], s[1], g, s[2], s[3]).Reshape(s[0], s[1]*g, s[2], s[3])
			}
			k, v = rep(k), rep(v)
		}
		scale := c.float("scale", 1/math.Sqrt(float64(qs[3])))
		scores := &val{t: q.Matmul(k.Transpose(-1, -2)).Mul(scale), dt: Float}
		if a := c.attr("score_mod"); a != nil && a.G != nil {
			outs, err := c.runSub(a.G, []*val{scores})
			if err != nil {
				return nil, fmt.Errorf("score_mod: %w", err)
			}
			scores = outs[0]
		}
		s := scores.t.Cast(dtype.Float32)
		dead := s.Max(-1, tensor.KeepDim).Eq(math.Inf(-1))
		p := dead.Where(0.0, s.Softmax(-1))
		return one(same(p.Matmul(v), in[0]))
	}
}

// mt19937 is NumPy's legacy RandomState generator (np.random.seed(s); np.random.uniform).
type mt19937 struct {
	mt  [624]uint32
	pos int
}

func newMT19937(seed uint32) *mt19937 {
	g := &mt19937{pos: 624}
	g.mt[0] = seed
	for i := 1; i < 624; i++ {
		g.mt[i] = 1812433253*(g.mt[i-1]^(g.mt[i-1]>>30)) + uint32(i)
	}
	return g
}

func (g *mt19937) uint32() uint32 {
	if g.pos == 624 {
		for i := range 624 {
			y := g.mt[i]&0x80000000 | g.mt[(i+1)%624]&0x7fffffff
			g.mt[i] = g.mt[(i+397)%624] ^ y>>1 ^ (y&1)*0x9908b0df
		}
		g.pos = 0
	}
	y := g.mt[g.pos]
	g.pos++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	return y ^ y>>18
}

// float64 is uniform in [0, 1) with 53 random bits, as NumPy's random_sample.
func (g *mt19937) float64() float64 {
	a, b := g.uint32()>>5, g.uint32()>>6
	return (float64(a)*67108864 + float64(b)) / 9007199254740992
}

// bernoulli draws 1 with probability p as NumPy's binomial(1, p) does (by inversion, and no
// draw at all for p = 0).
func (g *mt19937) bernoulli(p float64) bool {
	if p == 0 || p != p {
		return false
	}
	u := g.float64()
	if p <= 0.5 {
		return u > 1-p
	}
	return u <= p
}
