// Package codegen lowers a kernel's expression tree to loops and renders it as source in a
// C-like dialect. The scheduler hands it an AST whose leaves are buffer loads through views;
// Lower orders the dims (reduced ones innermost), merges dims that every view walks
// contiguously, and writes the loops once for every dialect: global dims as loops on the
// CPU or as thread indices on GPUs (gpu.go plans blocks and grouped reductions), then the
// reduce loops, then the store. On loop dialects, reduce kernels whose inputs are shared
// along some output dims get upcast tiles: small loops over local accumulator arrays, the
// innermost vectorized where loads are contiguous (a matmul's 8×16 tile), else unrolled.
// Everything that differs between languages is in a Dialect value.
package codegen

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
	"github.com/gradforge/gradforge/framework/view"
)

// Expr is one node of a kernel's expression tree. Elementwise and reduce nodes use the lazy
// op set; leaves are Load (buffer Buf read through View) and Const (Arg float64, masked by
// View where a pad made part of it invalid).
type Expr struct {
	Op    lazy.Op
	DType dtype.DType
	Src   []*Expr
	Arg   any        // Const: float64; Sum/ReduceMax: []int axes
	Buf   int        // Load: index into the kernel's buffers
	View  view.Stack // Load, Const: kernel index → buffer position
}

// AST is one kernel before lowering: Value is stored to buffer 0 through Out. Leaves above
// the reduces are indexed by the output shape, leaves below them by the reduce's input shape
// (same rank, reduced dims of size 1 in the output). Several reduces may appear when they
// reduce inputs of one shape over the same axes, each reading the others as one value per
// row; the output is then either one value per row or the rows themselves (softmax), and the
// kernel makes one pass over each row per reduce, plus one that stores the row.
type AST struct {
	Value *Expr
	Out   view.Stack
	Bufs  []dtype.DType // element type of each buffer; 0 is the output
}

// Key identifies the AST's structure exactly (ops, dtypes, args, buffers, views and sharing),
// so a kernel rendered once can be reused for an identical AST. Numbers are varints and every
// list carries its length, so no two structures share a key; it runs for every kernel of
// every realize, so it writes no decimal.
func (a *AST) Key() string { return string(a.AppendKey(nil, map[*Expr]int{})) }

// AppendKey appends Key's bytes to b; ids is an empty map it may use, so that a caller
// looking kernels up can reuse both and allocate nothing.
func (a *AST) AppendKey(b []byte, ids map[*Expr]int) []byte {
	num := func(x int) { b = binary.AppendVarint(b, int64(x)) }
	stack := func(s view.Stack) {
		num(len(s.Views))
		for _, v := range s.Views {
			num(len(v.Shape))
			num(len(v.Mask))
			for i := range v.Shape {
				num(v.Shape[i])
				num(v.Strides[i])
			}
			for _, m := range v.Mask {
				num(m[0])
				num(m[1])
			}
			num(v.Offset)
		}
	}
	var walk func(e *Expr)
	walk = func(e *Expr) {
		if id, ok := ids[e]; ok {
			b = append(b, '#')
			num(id)
			return
		}
		ids[e] = len(ids)
		b = append(b, '(', byte(e.Op), byte(e.DType))
		switch arg := e.Arg.(type) {
		case float64:
			b = binary.LittleEndian.AppendUint64(append(b, 'f'), math.Float64bits(arg))
		case []int:
			b = append(b, 'i')
			num(len(arg))
			for _, x := range arg {
				num(x)
			}
		}
		b = append(b, ';')
		if e.Op == lazy.Load || e.Op == lazy.Const || e.Op == lazy.IndexLoad {
			num(e.Buf)
			stack(e.View)
		}
		num(len(e.Src))
		for _, s := range e.Src {
			walk(s)
		}
	}
	walk(a.Value)
	stack(a.Out)
	num(len(a.Bufs))
	for _, t := range a.Bufs {
		b = append(b, byte(t))
	}
	return b
}

// Kernel is a rendered kernel.
type Kernel struct {
	Name   string
	Src    string
	Params []Param
	Global []int // global loop sizes (at least one dim)
	Reduce []int // reduce loop sizes, innermost last
	Flops  int64 // arithmetic ops over the whole launch (estimate for DEBUG=2)
	// Grid and Block are a GPU dialect's launch sizes, in blocks and threads (see gpu.go).
	Grid, Block [3]int
}

// Launch returns the global and local sizes for a device speaking d. CPU (loop) dialects get
// global = {outermost dim, work per outermost index, 1}, which is what the CPU runtime splits
// across cores; GPU dialects get a flat grid in blocks of up to 256 threads.
func (k *Kernel) Launch(d *Dialect) (global, local [3]int) {
	if d.GlobalID == "" {
		return [3]int{k.Global[0], view.Prod(k.Global[1:]) * view.Prod(k.Reduce), 1}, [3]int{1, 1, 1}
	}
	return k.Grid, k.Block
}

// Lower renders ast in dialect d as a kernel named after its loop sizes.
func Lower(ast *AST, d *Dialect) *Kernel {
	var red *Expr
	nred := 0
	views := map[*Expr]view.Stack{}
	seen, pre := map[*Expr]bool{}, map[*Expr]bool{} // pre: below the reduce
	var walk func(e *Expr, below bool)
	walk = func(e *Expr, below bool) {
		if seen[e] {
			return
		}
		seen[e], pre[e] = true, below
		if e.Op.IsReduce() {
			red, below = e, true
			nred++
		}
		if e.Op == lazy.Load || e.Op == lazy.Const {
			views[e] = e.View
		}
		for _, s := range e.Src {
			walk(s, below)
		}
	}
	walk(ast.Value, false)
	out := ast.Out
	full := out.Shape()
	isRed := make([]bool, len(full))
	rowOut := false // the output is the rows, stored by a last pass over each
	if red != nil {
		full = red.Src[0].shape(views)
		for _, a := range red.Arg.([]int) {
			isRed[a] = full[a] != 1
			rowOut = rowOut || (isRed[a] && out.Shape()[a] != 1)
		}
	}
	// Reduced dims go innermost; every view is permuted alike.
	var order []int
	for _, want := range []bool{false, true} {
		for i := range full {
			if isRed[i] == want {
				order = append(order, i)
			}
		}
	}
	ng := len(full) - count(isRed)
	apply := func(f func(view.Stack) view.Stack) {
		for e, s := range views {
			views[e] = f(s)
		}
		out = f(out)
	}
	apply(func(s view.Stack) view.Stack { return s.Permute(order) })
	full = permute(full, order)
	// Merge neighbouring dims of one group when every view walks them as one.
	for i := len(full) - 2; i >= 0; i-- {
		if (i < ng) != (i+1 < ng) {
			continue
		}
		ok := true
		merged := map[*Expr]view.Stack{}
		for e, s := range views {
			m := s.Reshape(mergeDims(s.Shape(), i))
			ok = ok && len(m.Views) == len(s.Views)
			merged[e] = m
		}
		mo := out.Reshape(mergeDims(out.Shape(), i))
		if !ok || len(mo.Views) != len(out.Views) {
			continue
		}
		views, out, full = merged, mo, mergeDims(full, i)
		if i < ng {
			ng--
		}
	}
	k := &Kernel{Global: full[:ng], Reduce: full[ng:]}
	if ng == 0 {
		k.Global = []int{1}
	}
	for i, t := range ast.Bufs {
		k.Params = append(k.Params, Param{Name: "data" + strconv.Itoa(i), DType: t, Out: i == 0})
	}
	k.Name = "E"
	if red != nil {
		k.Name = "r"
	}
	for _, s := range full {
		k.Name += "_" + strconv.Itoa(s)
	}
	if d.GlobalID != "" && gpuMatmul(d, ast, k, views, out) { // tensor-core tiles (gpu.go)
		return k
	}
	r := &renderer{d: d, views: views, full: full, ups: 1, rows: nred > 1 || rowOut}
	if !r.rows {
		r.upDims, r.upBy, r.simdUp = upcast(d, red, views, pre, full[:ng])
	}
	k.Global = slices.Clone(k.Global)
	for i, dim := range r.upDims {
		k.Global[dim] /= r.upBy[i]
		r.ups *= r.upBy[i]
	}
	r.mult = int64(view.Prod(k.Global) * r.ups)
	r.memo = map[*Expr]string{}
	for i := range full {
		r.vars = append(r.vars, fmt.Sprintf("gidx%d", i))
		if i >= ng {
			r.vars[i] = fmt.Sprintf("ridx%d", i-ng)
		}
	}
	for i, dim := range r.upDims {
		r.vars[dim] = fmt.Sprintf("(gidx%d*%d+u%d)", dim, r.upBy[i], i)
	}
	r.indent = "  "
	if d.GlobalID == "" {
		for i, s := range k.Global {
			if i == len(k.Global)-1 && red == nil && d.SimdLoop != "" {
				r.line(d.SimdLoop)
			}
			if i == 0 {
				r.line("for (int gidx0 = start; gidx0 < end; gidx0++) {")
			} else {
				r.line(fmt.Sprintf("for (int gidx%d = 0; gidx%d < %d; gidx%d++) {", i, i, s, i))
			}
			r.indent += "  "
		}
	} else {
		r.gpuBegin(k, ng)
	}
	if len(r.upDims) > 0 {
		r.render(red) // its accumulators live outside the upcast loops of the store
	}
	store := func() string {
		v := r.render(ast.Value)
		idx, valid := out.Render(r.vars)
		st := fmt.Sprintf("data0[%s] = %s;", idx, r.store(ast.Bufs[0], v))
		if valid != "" {
			st = fmt.Sprintf("if (%s) %s", valid, st)
		}
		return st
	}
	if rowOut { // the reduces first, then a pass over the row that stores it
		r.hoist(ast.Value, map[*Expr]bool{})
		r.rowLoop(d.SimdLoop, false, func() { r.line(store()) })
	} else {
		open := r.openUp()
		r.line(r.gpuStore(store()))
		r.closeLoops(open)
	}
	if d.GlobalID == "" {
		for range k.Global {
			r.indent = r.indent[2:]
			r.line("}")
		}
	}
	k.Flops = r.flops
	prelude := d.Prelude
	if r.half {
		prelude += d.HalfPrelude
	}
	sig := d.Kernel(k.Name, k.Params)
	if d.Name == "cuda" && k.Block[0] > gpuThreads {
		sig = launchBounds(sig, k.Block[0])
	}
	k.Src = prelude + strings.Join(r.globals, "") + sig + r.b.String() + "}\n"
	return k
}

func (e *Expr) shape(views map[*Expr]view.Stack) []int {
	if v, ok := views[e]; ok {
		return v.Shape()
	}
	return e.Src[0].shape(views)
}

func count(b []bool) (n int) {
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

func permute(s, order []int) []int {
	out := make([]int, len(order))
	for i, o := range order {
		out[i] = s[o]
	}
	return out
}

func mergeDims(s []int, i int) []int {
	out := slices.Clone(s[:i])
	out = append(out, s[i]*s[i+1])
	return append(out, s[i+2:]...)
}

type renderer struct {
	d      *Dialect
	b      strings.Builder
	indent string
	views  map[*Expr]view.Stack
	memo   map[*Expr]string
	vars   []string
	full   []int // loop sizes, global then reduce
	n      int
	mult   int64 // iterations the current block runs over the launch
	flops  int64
	gpu    *gpuPlan // how a GPU dialect maps loops to blocks and threads (gpu.go)
	// Upcast: the global dims upDims step by upBy; inside, small loops u0, u1 walk the
	// outputs of one step (the innermost vectorized, the other unrolled), accumulating into
	// local arrays, so loads shared by those outputs are read once and the rest vectorize.
	half    bool // a 16-bit float appears (the dialect's HalfPrelude is needed)
	ups     int  // outputs per step, the product of upBy
	upDims  []int
	upBy    []int
	simdUp  bool              // the innermost upcast loop vectorizes (else it is unrolled into registers)
	rows    bool              // several passes over each row (several reduces, or the rows are stored)
	cached  map[string]string // GPU row kernels: loads kept in registers across passes (gpu.go)
	filled  map[string]bool   // cached loads already stored by an earlier pass
	storing map[string]bool   // cached loads the current pass stores (nil: it stores none)
	globals []string          // module-level declarations the kernel needs (GPU split reductions)
}

// openUp opens the upcast loops and returns how many it opened.
func (r *renderer) openUp() int {
	for i, n := range r.upBy {
		if i == len(r.upBy)-1 && r.simdUp {
			r.line(r.d.SimdLoop)
		} else if r.d.UnrollLoop != "" {
			r.line(fmt.Sprintf(r.d.UnrollLoop, n))
		}
		r.line(fmt.Sprintf("for (int u%d = 0; u%d < %d; u%d++) {", i, i, n, i))
		r.indent += "  "
	}
	return len(r.upBy)
}

func (r *renderer) closeLoops(n int) {
	for range n {
		r.indent = r.indent[2:]
		r.line("}")
	}
}

// upcast picks the global dims whose outputs one loop iteration computes several of, and
// how many: only on loop dialects and in reduce kernels. The innermost global dim is
// upcast (up to 16) when some input is broadcast along it (stride 0: the copies share its
// loads, as a matmul's left rows are) or walks it contiguously (the copies' loads
// vectorize). A second dim (up to 4) is upcast where a different input is broadcast, which
// gives a matmul a 4×16 tile of accumulators and a convolution a tile of output channels ×
// columns.
func upcast(d *Dialect, red *Expr, views map[*Expr]view.Stack, pre map[*Expr]bool, global []int) (dims, by []int, simd bool) {
	if d.GlobalID != "" || red == nil || len(global) == 0 {
		return nil, nil, false
	}
	along := func(dim, stride int) map[*Expr]bool {
		m := map[*Expr]bool{}
		for e, s := range views {
			v := s.Views[len(s.Views)-1]
			if pre[e] && e.Op == lazy.Load && v.Shape[dim] > 1 && v.Strides[dim] == stride {
				m[e] = true
			}
		}
		return m
	}
	factor := func(n, most int) int {
		for u := min(most, n); u > 1; u-- {
			if n%u == 0 {
				return u
			}
		}
		return 1
	}
	// The vector dim: the innermost one where an input is contiguous (whole vectors load)
	// and another is broadcast (each of its loads serves a vector), split by 16 or 8.
	first := -1
	for dim := len(global) - 1; dim >= 0 && first < 0; dim-- {
		if global[dim]%8 == 0 && len(along(dim, 1)) > 0 && len(along(dim, 0)) > 0 {
			first, simd = dim, true
		}
	}
	u := 0
	if simd {
		u = factor(global[first], 16)
		if u%8 != 0 {
			u = 8
		}
	} else { // else unroll the innermost dim into registers if its loads are shared or adjacent
		first = len(global) - 1
		if len(along(first, 0)) == 0 && len(along(first, 1)) == 0 {
			return nil, nil, false
		}
		// It pays only for loads that move inside the reduce loop: a per-channel vector the
		// reduce never moves along (batch norm's mean and scale) is loaded once per output
		// anyway, and unrolling for it would make the big loads strided and leave too few
		// outputs to share among threads; the reduce then vectorizes instead.
		if full := red.Src[0].shape(views); len(full) > len(global) {
			inner, pays := len(full)-1, false
			for e, s := range views {
				v := s.Views[len(s.Views)-1]
				pays = pays || (pre[e] && e.Op == lazy.Load && v.Shape[first] > 1 && v.Strides[first] <= 1 && v.Strides[first] >= 0 && v.Strides[inner] != 0)
			}
			if !pays {
				return nil, nil, false
			}
		}
		if u = factor(global[first], 16); u == 1 {
			return nil, nil, false
		}
	}
	// A second dim where a different input is broadcast makes a 2-d tile: each load of one
	// input serves a row of the tile, each of the other a column.
	shared := along(first, 0)
	most := 4
	if simd {
		most = 8
	}
	for dim := len(global) - 1; dim >= 0; dim-- {
		other := false
		for e := range along(dim, 0) {
			other = other || !shared[e]
		}
		if f := factor(global[dim], most); dim != first && other && f > 1 {
			return []int{dim, first}, []int{f, u}, simd // the vector (u) loop is innermost
		}
	}
	return []int{first}, []int{u}, simd
}

func (r *renderer) line(s string) { r.b.WriteString(r.indent + s + "\n") }

func (r *renderer) tmp(prefix string, t dtype.DType, expr string) string {
	name := prefix + strconv.Itoa(r.n)
	r.n++
	r.line(fmt.Sprintf("%s %s = %s;", r.d.valueType(t), name, expr))
	return name
}

func (r *renderer) store(t dtype.DType, v string) string {
	if c, ok := r.d.Convert[t]; ok {
		return c[1] + "(" + v + ")"
	}
	return v
}

// Literal writes v as a constant of type t in dialect d.
func (d *Dialect) Literal(v float64, t dtype.DType) string {
	switch {
	case t == dtype.Bool:
		if v != 0 {
			return "1"
		}
		return "0"
	case t.IsInt():
		n := int64(v)
		if t == dtype.Int64 {
			if n == math.MinInt64 {
				return "(-9223372036854775807LL-1)"
			}
			return strconv.FormatInt(n, 10) + "LL"
		}
		if n == math.MinInt32 {
			return "(-2147483647-1)"
		}
		return strconv.FormatInt(n, 10)
	case math.IsNaN(v):
		return d.NaN
	case math.IsInf(v, 1):
		return d.Inf
	case math.IsInf(v, -1):
		return "(-" + d.Inf + ")"
	}
	s := strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	if !strings.ContainsAny(s, ".en") {
		s += ".0"
	}
	return s + "f"
}

func (r *renderer) render(e *Expr) string {
	if s, ok := r.memo[e]; ok {
		return s
	}
	var s string
	vt := r.d.valueType(e.DType)
	r.half = r.half || e.DType == dtype.Float16 || e.DType == dtype.BFloat16
	switch {
	case e.Op == lazy.Const:
		s = r.d.Literal(e.Arg.(float64), e.DType)
		if _, valid := r.views[e].Render(r.vars); valid != "" {
			s = fmt.Sprintf("((%s)?%s:%s)", valid, s, r.d.Literal(0, e.DType))
		}
	case e.Op == lazy.Load && r.cached != nil && r.filled[r.cacheKey(e)]:
		s = r.cached[r.cacheKey(e)] + "[rj]"
	case e.Op == lazy.Load:
		idx, valid := r.views[e].Render(r.vars)
		x := fmt.Sprintf("data%d[%s]", e.Buf, idx)
		if c, ok := r.d.Convert[e.DType]; ok {
			x = c[0] + "(" + x + ")"
		}
		if valid != "" {
			x = fmt.Sprintf("(%s)?%s:%s", valid, x, r.d.Literal(0, e.DType))
		}
		s = r.tmp("val", e.DType, x)
		if key := r.cacheKey(e); r.storing != nil && r.cached[key] != "" && !r.storing[key] {
			r.line(fmt.Sprintf("%s[rj] = %s;", r.cached[key], s))
			r.storing[key] = true
		}
	case e.Op == lazy.IndexLoad:
		x := fmt.Sprintf("data%d[%s]", e.Buf, r.render(e.Src[0]))
		if c, ok := r.d.Convert[e.DType]; ok {
			x = c[0] + "(" + x + ")"
		}
		s = r.tmp("val", e.DType, x)
	case e.Op.IsReduce() && r.gpu.grouped():
		r.hoist(e.Src[0], map[*Expr]bool{})
		s = r.gpuReduce(e)
	case e.Op.IsReduce():
		r.hoist(e.Src[0], map[*Expr]bool{})
		init := 0.0
		if e.Op == lazy.ReduceMax {
			init = e.DType.Min()
		}
		// With upcasts the accumulator is a local array, one element per output of a step.
		acc, lit := "acc"+strconv.Itoa(r.n), r.d.Literal(init, e.DType)
		r.n++
		if len(r.upBy) == 0 {
			r.line(fmt.Sprintf("%s %s = %s;", vt, acc, lit))
		} else {
			dims := ""
			for i, n := range r.upBy {
				dims += "[" + strconv.Itoa(n) + "]"
				acc += "[u" + strconv.Itoa(i) + "]"
			}
			r.line(fmt.Sprintf("%s %s%s;", vt, acc[:strings.IndexByte(acc, '[')], dims))
			open := r.openUp()
			r.line(fmt.Sprintf("%s = %s;", acc, lit))
			r.closeLoops(open)
		}
		// A float max vectorizes as a plain max plus a NaN flag (OpenMP's max would drop NaN).
		simd := r.ups == 1 && r.d.GlobalID == "" && len(r.reduceVars()) > 0
		nan, inner := "", ""
		if simd && e.Op == lazy.ReduceMax && e.DType.IsFloat() && r.d.SimdMax != "" {
			nan = "nan" + strconv.Itoa(r.n)
			r.n++
			r.line(fmt.Sprintf("int %s = 0;", nan))
			inner = fmt.Sprintf(r.d.SimdMax, acc, nan)
		}
		if simd && e.Op == lazy.Sum && r.d.SimdSum != "" {
			inner = fmt.Sprintf(r.d.SimdSum, acc)
		}
		r.rowLoop(inner, true, func() {
			if nan != "" {
				x := r.render(e.Src[0])
				r.line(fmt.Sprintf("%s = %s>%s?%s:%s; %s |= %s!=%s;", acc, acc, x, acc, x, nan, x, x))
			} else {
				r.line(fmt.Sprintf("%s = %s;", acc, r.step(e, acc)))
			}
			r.flops += r.mult
		})
		if nan != "" {
			r.line(fmt.Sprintf("if (%s) %s = %s;", nan, acc, r.d.NaN))
		}
		s = acc
	default:
		src := make([]string, len(e.Src))
		for i, x := range e.Src {
			src[i] = r.render(x)
		}
		s = r.tmp("alu", e.DType, r.alu(e, src, vt))
		if e.Op != lazy.Cast && e.Op != lazy.Bitcast {
			r.flops += r.mult
		}
	}
	if c, ok := r.d.Convert[e.DType]; ok && e.Op.IsReduce() {
		// A 16-bit reduce accumulates in float; what uses it sees the value rounded to its
		// type, as if it had been stored (softmax's sum in float16, read by the last pass).
		s = c[0] + "(" + c[1] + "(" + s + "))"
	}
	r.memo[e] = s
	return s
}

// hoist renders the reduces inside e, so that a loop using their per-row values comes after
// the loops that compute them.
func (r *renderer) hoist(e *Expr, seen map[*Expr]bool) {
	if _, ok := r.memo[e]; ok || seen[e] {
		return
	}
	seen[e] = true
	if e.Op.IsReduce() {
		r.render(e)
		return
	}
	for _, s := range e.Src {
		r.hoist(s, seen)
	}
}

// rowLoop renders body inside the loops over the reduce dims: nested loops (inner precedes
// the innermost, then the upcast loops), or on a grouped GPU plan one loop strided over the
// block's threads (gpu.go). Values computed in the loop depend on the reduce index, so body
// gets its own memo table and nothing after the loop reuses them. reduce says whether body
// accumulates (so its loads are worth keeping for a later pass).
func (r *renderer) rowLoop(inner string, reduce bool, body func()) {
	outer, saved := r.mult, r.memo
	r.memo = maps.Clone(saved)
	if r.gpu.grouped() {
		r.gpuRowLoop(reduce, body)
	} else {
		ng := len(r.vars) - len(r.reduceVars())
		for i, v := range r.reduceVars() {
			n := r.full[ng+i]
			if i == len(r.reduceVars())-1 && inner != "" {
				r.line(inner)
			}
			r.line(fmt.Sprintf("for (int %s = 0; %s < %d; %s++) {", v, v, n, v))
			r.indent += "  "
			r.mult *= int64(n)
		}
		open := r.openUp()
		body()
		r.closeLoops(open + len(r.reduceVars()))
	}
	r.memo, r.mult = saved, outer
}

func (r *renderer) reduceVars() []string {
	var out []string
	for _, v := range r.vars {
		if strings.HasPrefix(v, "ridx") {
			out = append(out, v)
		}
	}
	return out
}

// step renders acc combined with one more value of the reduce e. A sum of float products
// spells out the fused multiply-add: the compilers are told not to fuse a*b+c on their own
// (an expression must round alike in every kernel that recomputes it), and matmuls and
// convolutions keep one instruction per step.
func (r *renderer) step(e *Expr, acc string) string {
	x := e.Src[0]
	switch {
	case e.Op == lazy.ReduceMax:
		return r.maxOf(e.DType, acc, r.render(x))
	case x.Op == lazy.Mul && x.DType.IsFloat(): // 16-bit floats compute in float
		return fmt.Sprintf("%s(%s, %s, %s)", r.d.Fma, r.render(x.Src[0]), r.render(x.Src[1]), acc)
	}
	return "(" + acc + "+" + r.render(x) + ")"
}

func (r *renderer) maxOf(t dtype.DType, a, b string) string {
	if t.IsFloat() { // NaN wins, as in PyTorch
		return fmt.Sprintf("((%s>%s||%s!=%s)?%s:%s)", a, b, a, a, a, b)
	}
	return fmt.Sprintf("(%s>%s?%s:%s)", a, b, a, b)
}

func (r *renderer) alu(e *Expr, s []string, vt string) string {
	bin := map[lazy.Op]string{lazy.Add: "+", lazy.Mul: "*", lazy.CmpLT: "<", lazy.CmpNE: "!=",
		lazy.IDiv: "/", lazy.Mod: "%", lazy.And: "&", lazy.Or: "|", lazy.Xor: "^"}
	if e.DType == dtype.Bool && (e.Op == lazy.Add || e.Op == lazy.Mul) { // logical, as PyTorch
		return "(" + s[0] + map[lazy.Op]string{lazy.Add: "|", lazy.Mul: "&"}[e.Op] + s[1] + ")"
	}
	if e.Op == lazy.IDiv || e.Op == lazy.Mod { // x/0 would kill the process (SIGFPE); it gives 0
		return "(" + s[1] + "==0?0:" + s[0] + bin[e.Op] + s[1] + ")"
	}
	if op, ok := bin[e.Op]; ok {
		return "(" + s[0] + op + s[1] + ")"
	}
	switch e.Op {
	case lazy.Exp2, lazy.Log2, lazy.Sin, lazy.Sqrt:
		return r.d.Math[e.Op] + "(" + s[0] + ")"
	case lazy.Recip:
		return "(" + r.d.Literal(1, e.DType) + "/" + s[0] + ")"
	case lazy.Neg:
		if e.DType == dtype.Bool {
			return "(!" + s[0] + ")"
		}
		return "(-(" + s[0] + "))" // "(--1.0f)" would not parse
	case lazy.Max:
		return r.maxOf(e.DType, s[0], s[1])
	case lazy.Where:
		return "(" + s[0] + "?" + s[1] + ":" + s[2] + ")"
	case lazy.MulAdd:
		if e.DType.IsFloat() {
			return r.d.Fma + "(" + s[0] + ", " + s[1] + ", " + s[2] + ")"
		}
		return "(" + s[0] + "*" + s[1] + "+" + s[2] + ")"
	case lazy.Cast:
		if e.DType == dtype.Bool {
			return "(" + s[0] + "!=0)"
		}
		if c, ok := r.d.Convert[e.DType]; ok { // 16-bit floats compute in float; a cast rounds
			return c[0] + "(" + c[1] + "((float)" + s[0] + "))"
		}
		return "((" + vt + ")" + s[0] + ")"
	case lazy.Bitcast:
		return r.d.Bitcast(vt, r.d.valueType(e.Src[0].DType), s[0])
	}
	panic(fmt.Sprintf("codegen: no rendering for %s", e.Op))
}
