// Package schedule cuts a lazy graph into kernels and runs them. Elementwise ops fuse with
// everything around them; a reduce fuses with the elementwise ops feeding it and the
// elementwise ops after it, as long as nothing between the reduce and the kernel's output
// moves data other than by reshaping. A node gets its own buffer only when it must: it was
// asked for, it is a reduce with several consumers, it is marked Contiguous, or it is a reduce
// behind a movement op or the second reduce of a kernel that does not reduce the same rows.
// Reduces of the same rows share one kernel, one after the other (softmax's max, its sum of
// exponentials, then the normalised row), so a row is read from memory once per kernel, not
// once per reduce.
package schedule

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gradforge/gradforge/framework/codegen"
	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
	"github.com/gradforge/gradforge/framework/view"
)

// Item is one kernel: it computes Out from the buffers of Ins.
type Item struct {
	AST  *codegen.AST
	Out  *lazy.Node
	Ins  []*lazy.Node // buffer i+1 of the kernel
	name string       // kernel name, once run
}

// Schedule is the work of one realize: kernels in dependency order, and the requested nodes
// that are reshapes of a kernel's output (they share its buffer once it exists).
type Schedule struct {
	Uploads []*lazy.Node // host data (Load nodes) to copy to their devices first
	Items   []*Item
	Aliases map[*lazy.Node]*lazy.Node // requested node → node whose buffer it shares
}

type scheduler struct {
	parents map[*lazy.Node]int
	parent  map[*lazy.Node]*lazy.Node // one consumer of each node
	own     map[*lazy.Node]bool       // nodes that get their own buffer
	fused   map[*lazy.Node]bool       // reduces computed inside another node's kernel
	done    map[*lazy.Node]bool
	s       *Schedule
}

// Create schedules everything needed to realize targets. Already-realized nodes cost nothing.
// Whether a reduce gets its own buffer is only known once a kernel that reads it decides so,
// perhaps after another kernel fused it: then the schedule is made again with that reduce
// given its buffer from the start, so it is computed once and loaded everywhere else.
func Create(targets ...*lazy.Node) *Schedule {
	own := map[*lazy.Node]bool{}
	for {
		n := int(graphSize.Load())
		sc := &scheduler{parents: make(map[*lazy.Node]int, n), parent: make(map[*lazy.Node]*lazy.Node, n), own: maps.Clone(own), done: map[*lazy.Node]bool{},
			fused: map[*lazy.Node]bool{}, s: &Schedule{Aliases: map[*lazy.Node]*lazy.Node{}}}
		sc.create(targets)
		again := false
		for n := range sc.fused {
			if sc.own[n] && !own[n] {
				own[n], again = true, true
			}
		}
		if !again {
			return sc.s
		}
	}
}

// graphSize is the number of nodes the last schedule counted: a training loop schedules
// graphs of one size, and maps made that big never grow.
var graphSize atomic.Int64

func (sc *scheduler) create(targets []*lazy.Node) {
	seen := make(map[*lazy.Node]bool, graphSize.Load())
	defer func() { graphSize.Store(int64(len(seen))) }()
	var count func(n *lazy.Node)
	count = func(n *lazy.Node) {
		if seen[n] || n.Realized() {
			return
		}
		seen[n] = true
		for i, s := range n.Src {
			if slices.Contains(n.Src[:i], s) {
				continue
			}
			sc.parents[s]++
			sc.parent[s] = n
			count(s)
		}
	}
	var roots []*lazy.Node
	for _, t := range targets {
		count(t)
		root := t
		for root.Op == lazy.Reshape && !root.Realized() {
			root = root.Src[0]
		}
		if root != t {
			sc.s.Aliases[t] = root
		}
		roots = append(roots, root)
	}
	for n := range sc.parents {
		if (n.Op.IsReduce() && sc.shared(n)) || n.Op == lazy.Contiguous {
			sc.own[n] = true
		}
	}
	for _, r := range roots {
		sc.kernel(r)
	}
}

// shared reports whether n has several consumers, directly or through movement ops (a reduce
// reshaped once and used three times is computed once).
func (sc *scheduler) shared(n *lazy.Node) bool {
	for sc.parents[n] == 1 {
		p := sc.parent[n]
		if !p.Op.IsMovement() {
			return false
		}
		n = p
	}
	return sc.parents[n] > 1
}

// kernel schedules the kernel that computes root, after the kernels it reads from.
func (sc *scheduler) kernel(root *lazy.Node) {
	if root.Realized() || sc.done[root] {
		return
	}
	sc.done[root] = true
	sc.own[root] = true
	if root.Op == lazy.Load {
		sc.s.Uploads = append(sc.s.Uploads, root)
		return
	}
	t := pool.Get().(*tables)
	defer pool.Put(t)
	defer t.clear()
	k := &builder{sc: sc, root: root, tables: t}
	it := &Item{Out: root}
	k.it = it
	val := k.build(root, nil, 0)
	out := view.Contiguous(root.Shape...)
	if k.red != nil && !k.row && !slices.Equal(root.Shape, k.red.Shape) { // a reshape sat between reduce and output
		for _, e := range k.post {
			e.View = e.View.Reshape(k.red.Shape)
		}
		out = out.Reshape(k.red.Shape)
	}
	it.AST = &codegen.AST{Value: val, Out: out, Bufs: []dtype.DType{root.DType}}
	for _, in := range it.Ins {
		it.AST.Bufs = append(it.AST.Bufs, in.DType)
	}
	sc.s.Items = append(sc.s.Items, it)
}

type builder struct {
	*tables
	sc   *scheduler
	root *lazy.Node
	it   *Item
	red  *lazy.Node      // the first reduce; the others reduce the same rows
	row  bool            // the output is the rows themselves, not one value per row
	post []*codegen.Expr // leaves indexed by the output frame
}

// tables are a builder's lookups. Cleared maps keep their room, so they are pooled: growing
// fresh ones for every kernel of every step was most of what scheduling allocated.
type tables struct {
	reds  map[*lazy.Node]*codegen.Expr
	memo  map[memoKey]*codegen.Expr
	paths map[pathKey]int
	bufs  map[*lazy.Node]int
	safe  map[*lazy.Node]bool
}

var pool = sync.Pool{New: func() any {
	return &tables{map[*lazy.Node]*codegen.Expr{}, map[memoKey]*codegen.Expr{}, map[pathKey]int{}, map[*lazy.Node]int{}, map[*lazy.Node]bool{}}
}}

func (t *tables) clear() { clear(t.reds); clear(t.memo); clear(t.paths); clear(t.bufs); clear(t.safe) }

// build returns the expression for n as seen through moves (outermost first), in frame 0
// (the output's index space) or 1 (below the reduce).
func (k *builder) build(n *lazy.Node, moves []*lazy.Node, frame int) *codegen.Expr {
	key := memoKey{n: n, frame: frame}
	for _, m := range moves { // a path of moves gets a number the first time it is seen
		p, ok := k.paths[pathKey{key.path, m}]
		if !ok {
			p = len(k.paths) + 1
			k.paths[pathKey{key.path, m}] = p
		}
		key.path = p
	}
	if e, ok := k.memo[key]; ok {
		return e
	}
	e := k.build1(n, moves, frame)
	k.memo[key] = e
	return e
}

// memoKey is a node seen through a path of moves (numbered by builder.paths) in a frame.
type memoKey struct {
	n           *lazy.Node
	path, frame int
}

type pathKey struct {
	prev int
	m    *lazy.Node
}

func (k *builder) build1(n *lazy.Node, moves []*lazy.Node, frame int) *codegen.Expr {
	if n != k.root && n.Op.IsReduce() && !k.sc.own[n] && !n.Realized() {
		switch {
		case k.sameRows(n, moves, frame):
			return k.reduce(n)
		case k.red != nil || !onlyReshapes(moves):
			k.sc.own[n] = true
		}
	}
	switch {
	case n.Realized() || n.Op == lazy.Load || (n != k.root && k.sc.own[n]):
		return k.leaf(&codegen.Expr{Op: lazy.Load, DType: n.DType, Buf: k.in(n)}, n, moves, frame)
	case n.Op == lazy.IndexLoad: // the source gets a buffer (a reshape shares it); positions fuse
		src := n.Src[0]
		for src.Op == lazy.Reshape && !src.Realized() {
			src = src.Src[0]
		}
		return &codegen.Expr{Op: lazy.IndexLoad, DType: n.DType, Buf: k.in(src), Src: []*codegen.Expr{k.build(n.Src[1], moves, frame)}}
	case n.Op == lazy.Const:
		return k.leaf(&codegen.Expr{Op: lazy.Const, DType: n.DType, Arg: n.Arg}, n, moves, frame)
	case n.Op == lazy.Pad && !k.padSafe(n.Src[0]):
		// Leaves read zeros in the padded region, but exp2, log2 and recip turn zeros into
		// non-zeros: mask the whole padded expression, as a masked constant of the source's
		// shape seen through the same moves.
		m := append(moves[:len(moves):len(moves)], n)
		inner := k.build(n.Src[0], m, frame)
		valid := k.leaf(&codegen.Expr{Op: lazy.Const, DType: dtype.Bool, Arg: 1.0}, n.Src[0], m, frame)
		zero := k.leaf(&codegen.Expr{Op: lazy.Const, DType: n.DType, Arg: 0.0}, n, moves, frame)
		return &codegen.Expr{Op: lazy.Where, DType: n.DType, Src: []*codegen.Expr{valid, inner, zero}}
	case n.Op == lazy.Expand && k.costly(n.Src[0]):
		// An expand makes every element of its source feed many outputs; fused, the source's
		// expression would be recomputed for each of them. Compute it once instead.
		k.sc.own[n.Src[0]] = true
		return k.build(n.Src[0], append(moves[:len(moves):len(moves)], n), frame)
	case n.Op.IsMovement():
		return k.build(n.Src[0], append(moves[:len(moves):len(moves)], n), frame)
	case n.Op == lazy.Contiguous:
		return k.build(n.Src[0], moves, frame)
	case n.Op.IsReduce():
		return k.reduce(n)
	}
	e := &codegen.Expr{Op: n.Op, DType: n.DType, Arg: n.Arg}
	for _, s := range n.Src {
		e.Src = append(e.Src, k.build(s, moves, frame))
	}
	return e
}

// reduce returns n's expression, built once per kernel however many ways it is reached.
func (k *builder) reduce(n *lazy.Node) *codegen.Expr {
	if e, ok := k.reds[n]; ok {
		return e
	}
	if k.red == nil {
		k.red = n
	}
	if n != k.root {
		k.sc.fused[n] = true
	}
	e := &codegen.Expr{Op: n.Op, DType: n.DType, Arg: n.Arg}
	k.reds[n] = e
	e.Src = []*codegen.Expr{k.build(n.Src[0], nil, 1)}
	return e
}

// sameRows reports whether the reduce n can be computed in this kernel beside its other
// reduces: it reduces an input of the same shape over the same axes, and moves show it as one
// value per row, broadcast along the row (frame 1, or an output that is the rows) or as the
// output's own value per row. With no reduce yet, a reduce broadcast over an output of its
// input's shape makes the kernel one that writes whole rows.
func (k *builder) sameRows(n *lazy.Node, moves []*lazy.Node, frame int) bool {
	in := n.Src[0].Shape
	rows := view.Prod(n.Shape)
	if rows < 1024 && view.Prod(in)/max(rows, 1) > 4096 {
		// Few long rows: a GPU spreads each separate reduce over many blocks, and the
		// elementwise pass over all its threads, which one block per row cannot match.
		return false
	}
	st := view.Contiguous(n.Shape...)
	for i := len(moves) - 1; i >= 0; i-- {
		st = Move(st, moves[i])
	}
	broadcast := st.Equal(view.Contiguous(n.Shape...).Expand(in))
	if k.red == nil {
		k.row = frame == 0 && slices.Equal(in, k.root.Shape) && broadcast && len(reduced(n)) > 0
		return k.row
	}
	if !slices.Equal(in, k.red.Src[0].Shape) || !slices.Equal(reduced(n), reduced(k.red)) {
		return false
	}
	if frame == 1 || k.row {
		return broadcast
	}
	return slices.Equal(n.Shape, k.red.Shape) && onlyReshapes(moves)
}

// reduced lists the axes a reduce shrinks (reducing a dim of size 1 changes nothing).
func reduced(n *lazy.Node) []int {
	var axes []int
	for i, d := range n.Src[0].Shape {
		if d != n.Shape[i] {
			axes = append(axes, i)
		}
	}
	return axes
}

// in makes n one of the kernel's input buffers, scheduling the kernel that computes it first,
// and returns its buffer number.
func (k *builder) in(n *lazy.Node) int {
	k.sc.kernel(n)
	i, ok := k.bufs[n]
	if !ok {
		k.it.Ins = append(k.it.Ins, n)
		i = len(k.it.Ins)
		k.bufs[n] = i
	}
	return i
}

// costly reports whether recomputing n per use costs more than a load: it has at least
// four ops of its own above its buffers and constants.
func (k *builder) costly(n *lazy.Node) bool {
	seen := map[*lazy.Node]bool{}
	ops := 0
	var count func(n *lazy.Node)
	count = func(n *lazy.Node) {
		// A reduce is read as a buffer or a per-row value, never recomputed per use.
		if seen[n] || ops >= 4 || n.Realized() || n.Op == lazy.Load || n.Op == lazy.Const || n.Op.IsReduce() || (n != k.root && k.sc.own[n]) {
			return
		}
		seen[n] = true
		if !n.Op.IsMovement() {
			ops++
		}
		for _, s := range n.Src {
			count(s)
		}
	}
	count(n)
	return ops >= 4
}

// padSafe reports whether n computes zero wherever all its leaves read zero, so a pad of it
// needs no mask of its own.
func (k *builder) padSafe(n *lazy.Node) bool {
	if v, ok := k.safe[n]; ok {
		return v
	}
	v := k.padSafe1(n)
	k.safe[n] = v
	return v
}

func (k *builder) padSafe1(n *lazy.Node) bool {
	switch {
	case n.Realized() || n.Op == lazy.Load || n.Op == lazy.Const || (n != k.root && k.sc.own[n]) || n.Op.IsReduce():
		return true
	case n.Op == lazy.Exp2 || n.Op == lazy.Log2 || n.Op == lazy.Recip || n.Op == lazy.IndexLoad:
		return false
	}
	for _, s := range n.Src {
		if !k.padSafe(s) {
			return false
		}
	}
	return true
}

func onlyReshapes(moves []*lazy.Node) bool {
	for _, m := range moves {
		if m.Op != lazy.Reshape {
			return false
		}
	}
	return true
}

// leaf sets e's view: n's own contiguous layout with the movement ops applied in order.
func (k *builder) leaf(e *codegen.Expr, n *lazy.Node, moves []*lazy.Node, frame int) *codegen.Expr {
	st := view.Contiguous(n.Shape...)
	for i := len(moves) - 1; i >= 0; i-- {
		st = Move(st, moves[i])
	}
	e.View = st
	if frame == 0 {
		k.post = append(k.post, e)
	}
	return e
}

// Move applies one movement node to a view stack.
func Move(st view.Stack, m *lazy.Node) view.Stack {
	switch m.Op {
	case lazy.Reshape:
		return st.Reshape(m.Arg.([]int))
	case lazy.Permute:
		return st.Permute(m.Arg.([]int))
	case lazy.Expand:
		return st.Expand(m.Arg.([]int))
	case lazy.Pad:
		return st.Pad(m.Arg.([][2]int))
	case lazy.Shrink:
		return st.Shrink(m.Arg.([][2]int))
	case lazy.Flip:
		return st.Flip(m.Arg.([]bool))
	}
	panic("schedule: not a movement op: " + m.Op.String())
}

// String lists the kernels, one per line (what DEBUG=1 prints).
func (s *Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule: %d kernels\n", len(s.Items))
	for i, it := range s.Items {
		fmt.Fprintf(&b, "  %d: %s %v ← %d inputs\n", i, it.Out.DType, it.Out.Shape, len(it.Ins))
	}
	return b.String()
}
