package onnx

import (
	"fmt"

	"github.com/gradforge/gradforge/framework/dtype"
)

// Control flow (If, Loop, Scan), sequences and optionals. Loops run on the host: each
// iteration reads its condition back, and the body's ops stay lazy.

// runSub runs graph g in a child scope of c's with its inputs bound to args.
func (c *call) runSub(g *Graph, args []*val) ([]*val, error) {
	sub := &env{ctx: c.e.ctx, model: c.e.model, device: c.e.device, vals: map[string]*val{}, outer: c.e, opsets: c.e.opsets, funcs: c.e.funcs}
	for _, t := range g.Initializers {
		v, err := sub.fromHost(t)
		if err != nil {
			return nil, err
		}
		sub.vals[t.Name] = v
	}
	for i, vi := range g.Inputs {
		if i < len(args) && args[i] != nil {
			sub.vals[vi.Name] = args[i]
		}
	}
	return sub.runGraph(g, nil)
}

func (c *call) graph(name string) (*Graph, error) {
	a := c.attr(name)
	if a == nil || a.G == nil {
		return nil, fmt.Errorf("missing graph attribute %q", name)
	}
	return a.G, nil
}

func truthy(v *val) bool {
	f := v.hostFloats()
	return len(f) > 0 && f[0] != 0
}

// stackVals stacks per-iteration tensors along a new axis 0 (or axis).
func stackVals(vs []*val, axis int) *val {
	ts := make([]*T, len(vs))
	for i, v := range vs {
		ts[i] = v.t.Unsqueeze(axis)
	}
	if len(ts) == 1 {
		return same(ts[0], vs[0])
	}
	return same(ts[0].Cat(axis, ts[1:]...), vs[0])
}

func init() {
	ops["If"] = func(c *call, in []*val) ([]*val, error) {
		name := "else_branch"
		if truthy(in[0]) {
			name = "then_branch"
		}
		g, err := c.graph(name)
		if err != nil {
			return nil, err
		}
		return c.runSub(g, nil)
	}
	ops["Loop"] = func(c *call, in []*val) ([]*val, error) {
		body, err := c.graph("body")
		if err != nil {
			return nil, err
		}
		maxTrip := int64(-1)
		if in[0] != nil {
			maxTrip = int64(in[0].hostInts()[0])
		}
		cond := true
		if len(in) > 1 && in[1] != nil {
			cond = truthy(in[1])
		}
		carried := append([]*val(nil), in[2:]...)
		nScan := len(body.Outputs) - 1 - len(carried)
		scans := make([][]*val, nScan)
		for i := int64(0); (maxTrip < 0 || i < maxTrip) && cond; i++ {
			if i > 1<<20 {
				return nil, fmt.Errorf("loop ran more than 2^20 iterations")
			}
			args := append([]*val{c.konst([]int64{i}, []int{}...), tv(c.slice([]bool{cond}, []int{}...), Bool)}, carried...)
			outs, err := c.runSub(body, args)
			if err != nil {
				return nil, err
			}
			cond = truthy(outs[0])
			carried = outs[1 : 1+len(carried)]
			for j := 0; j < nScan; j++ {
				scans[j] = append(scans[j], outs[1+len(carried)+j])
			}
		}
		res := append([]*val(nil), carried...)
		for j := 0; j < nScan; j++ {
			if len(scans[j]) == 0 {
				return nil, unsupported("Loop scan output with zero iterations")
			}
			if scans[j][0].kind == KindSequence {
				res = append(res, scans[j][len(scans[j])-1])
				continue
			}
			res = append(res, stackVals(scans[j], 0))
		}
		return res, nil
	}
	ops["Scan"] = func(c *call, in []*val) ([]*val, error) {
		body, err := c.graph("body")
		if err != nil {
			return nil, err
		}
		m := int(c.int("num_scan_inputs", 0))
		if c.opset < 9 {
			return scan8(c, body, in, m)
		}
		n := len(in) - m
		states := append([]*val(nil), in[:n]...)
		scanIn := in[n:]
		axes, _ := c.ints("scan_input_axes")
		dirs, _ := c.ints("scan_input_directions")
		oaxes, _ := c.ints("scan_output_axes")
		odirs, _ := c.ints("scan_output_directions")
		at := func(s []int, i int) int {
			if i < len(s) {
				return s[i]
			}
			return 0
		}
		steps := 0
		for i, x := range scanIn {
			steps = x.t.Shape()[normAxis(at(axes, i), x.t.Ndim())]
		}
		nOut := len(body.Outputs) - n
		outs := make([][]*val, nOut)
		for s := 0; s < steps; s++ {
			args := append([]*val(nil), states...)
			for i, x := range scanIn {
				ax := normAxis(at(axes, i), x.t.Ndim())
				k := s
				if at(dirs, i) == 1 {
					k = steps - 1 - s
				}
				args = append(args, same(x.t.Slice(ax, k, k+1).Squeeze(ax), x))
			}
			res, err := c.runSub(body, args)
			if err != nil {
				return nil, err
			}
			states = res[:n]
			for j := 0; j < nOut; j++ {
				outs[j] = append(outs[j], res[n+j])
			}
		}
		result := append([]*val(nil), states...)
		for j := 0; j < nOut; j++ {
			if at(odirs, j) == 1 {
				for a, b := 0, len(outs[j])-1; a < b; a, b = a+1, b-1 {
					outs[j][a], outs[j][b] = outs[j][b], outs[j][a]
				}
			}
			ax := normAxis(at(oaxes, j), outs[j][0].t.Ndim()+1)
			result = append(result, stackVals(outs[j], ax))
		}
		return result, nil
	}

	seqv := func(items []*val) *val { return &val{kind: KindSequence, seq: items} }
	pos := func(v *val, n int, def int) int {
		if v == nil {
			return def
		}
		p := v.hostInts()[0]
		if p < 0 {
			p += n
		}
		return p
	}
	ops["SequenceConstruct"] = func(c *call, in []*val) ([]*val, error) { return one(seqv(append([]*val(nil), in...))) }
	ops["SequenceEmpty"] = func(c *call, in []*val) ([]*val, error) { return one(seqv([]*val{})) }
	ops["SequenceLength"] = func(c *call, in []*val) ([]*val, error) {
		return one(c.konst([]int64{int64(len(in[0].seq))}, []int{}...))
	}
	ops["SequenceAt"] = func(c *call, in []*val) ([]*val, error) {
		s := in[0].seq
		p := pos(in[1], len(s), 0)
		if p < 0 || p >= len(s) {
			return nil, fmt.Errorf("position %d outside a sequence of %d", p, len(s))
		}
		return one(s[p])
	}
	ops["SequenceErase"] = func(c *call, in []*val) ([]*val, error) {
		s := in[0].seq
		var pv *val
		if len(in) > 1 {
			pv = in[1]
		}
		p := pos(pv, len(s), len(s)-1)
		out := append(append([]*val(nil), s[:p]...), s[p+1:]...)
		return one(seqv(out))
	}
	ops["SequenceInsert"] = func(c *call, in []*val) ([]*val, error) {
		s := in[0].seq
		var pv *val
		if len(in) > 2 {
			pv = in[2]
		}
		p := pos(pv, len(s), len(s))
		out := append(append(append([]*val(nil), s[:p]...), in[1]), s[p:]...)
		return one(seqv(out))
	}
	ops["SplitToSequence"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		ax := normAxis(int(c.int("axis", 0)), x.t.Ndim())
		n := x.t.Shape()[ax]
		var sizes []int
		if len(in) > 1 && in[1] != nil {
			sp := in[1].hostInts()
			if in[1].t.Ndim() == 0 {
				for r := n; r > 0; r -= sp[0] {
					sizes = append(sizes, min(sp[0], r))
				}
			} else {
				sizes = sp
			}
		} else {
			for i := 0; i < n; i++ {
				sizes = append(sizes, 1)
			}
		}
		var out []*val
		off := 0
		for _, s := range sizes {
			t := x.t.Slice(ax, off, off+s)
			if len(in) < 2 || in[1] == nil {
				if c.int("keepdims", 1) == 0 {
					t = t.Squeeze(ax)
				}
			}
			out = append(out, same(t, x))
			off += s
		}
		return one(seqv(out))
	}
	ops["ConcatFromSequence"] = func(c *call, in []*val) ([]*val, error) {
		s := in[0].seq
		if len(s) == 0 {
			return nil, fmt.Errorf("empty sequence")
		}
		newAxis := c.int("new_axis", 0) == 1
		r := s[0].t.Ndim()
		if newAxis {
			r++
		}
		ax := normAxis(int(c.int("axis", 0)), r)
		ts := make([]*T, len(s))
		for i, v := range s {
			ts[i] = v.t
			if newAxis {
				ts[i] = ts[i].Unsqueeze(ax)
			}
		}
		if len(ts) == 1 {
			return one(same(ts[0], s[0]))
		}
		return one(same(ts[0].Cat(ax, ts[1:]...), s[0]))
	}
	ops["SequenceMap"] = func(c *call, in []*val) ([]*val, error) {
		body, err := c.graph("body")
		if err != nil {
			return nil, err
		}
		n := len(in[0].seq)
		results := make([][]*val, len(body.Outputs))
		for i := 0; i < n; i++ {
			var args []*val
			for _, x := range in {
				if x.kind == KindSequence {
					args = append(args, x.seq[i])
				} else {
					args = append(args, x)
				}
			}
			outs, err := c.runSub(body, args)
			if err != nil {
				return nil, err
			}
			for j, o := range outs {
				results[j] = append(results[j], o)
			}
		}
		res := make([]*val, len(results))
		for j := range results {
			res[j] = seqv(results[j])
		}
		return res, nil
	}
	ops["Optional"] = func(c *call, in []*val) ([]*val, error) {
		if len(in) == 0 || in[0] == nil {
			return one(&val{kind: KindOptional, none: true})
		}
		return one(&val{kind: KindOptional, seq: []*val{in[0]}})
	}
	ops["OptionalHasElement"] = func(c *call, in []*val) ([]*val, error) {
		has := len(in) > 0 && in[0] != nil && !(in[0].kind == KindOptional && in[0].none)
		return one(tv(c.slice([]bool{has}, []int{}...), Bool))
	}
	ops["OptionalGetElement"] = func(c *call, in []*val) ([]*val, error) {
		x := in[0]
		if x.kind != KindOptional {
			return one(x)
		}
		if x.none {
			return nil, fmt.Errorf("optional has no value")
		}
		return one(x.seq[0])
	}
}

var _ = dtype.Bool

// scan8 is Scan before opset 9: a leading batch dim on every state and scan input, scan
// axis 1, an optional sequence_lens first input (full lengths only). Each batch row runs
// the opset-9 form, and the rows are stacked again.
func scan8(c *call, body *Graph, in []*val, m int) ([]*val, error) {
	if in[0] != nil {
		for _, l := range in[0].hostInts() {
			if l != in[len(in)-1].t.Shape()[1] {
				return nil, unsupported("Scan-8 with sequence_lens shorter than the input")
			}
		}
	}
	rest := in[1:]
	b := rest[0].t.Shape()[0]
	dirs, _ := c.ints("directions")

	attrs := []*Attribute{{Name: "body", G: body}, {Name: "num_scan_inputs", I: int64(m)}}
	if dirs != nil {
		attrs = append(attrs, &Attribute{Name: "scan_input_directions", Ints: toInt64s(dirs)})
	}
	sub := &call{e: c.e, n: &Node{OpType: "Scan", Attrs: attrs}, opset: 9}
	var rows [][]*val
	for i := 0; i < b; i++ {
		args := make([]*val, len(rest))
		for j, v := range rest {
			args[j] = same(v.t.Slice(0, i, i+1).Squeeze(0), v)
		}
		outs, err := ops["Scan"](sub, args)
		if err != nil {
			return nil, err
		}
		rows = append(rows, outs)
	}
	res := make([]*val, len(rows[0]))
	for k := range res {
		col := make([]*val, b)
		for i := range rows {
			col[i] = rows[i][k]
		}
		res[k] = stackVals(col, 0)
	}
	return res, nil
}
