package codegen

import (
	"fmt"
	"strconv"

	"github.com/gradforge/gradforge/framework/lazy"
	"github.com/gradforge/gradforge/framework/view"
)

// GPU lowering: how the global and reduce loops map onto blocks and threads. Lower calls
// gpuBegin for dialects with a GlobalID and the reduce and store steps ask the plan.
//
//   - thread: one thread per output, reduce loops inside the thread. Elementwise kernels and
//     reduces with many outputs (a matmul's 16M dot products) fill the GPU this way, and a
//     warp's neighbouring outputs read neighbouring memory.
//   - group: one block per output; its threads stride over the reduce range (neighbouring
//     threads read neighbouring elements) and combine through shared memory. Row-wise
//     reductions (softmax's max and sum) read each row once, coalesced.
//   - split: few outputs over a huge range (a full sum): several blocks per output each
//     reduce a slice, write a partial to module memory, and the last block to finish (an
//     atomic counter) combines the partials and stores. One launch, the whole GPU busy.
type gpuPlan struct {
	mode   int // gpuThread, gpuGroup, gpuSplit
	local  int // threads per block
	parts  int // blocks per output (split)
	out    int // outputs
	red    int // reduce elements per output
	kernel string
}

const (
	gpuThread = iota
	gpuGroup
	gpuSplit
)

// Thresholds: a reduce goes to a block when it is long and outputs are too few to fill the
// GPU one thread each; it splits across blocks when even one block per output leaves most
// multiprocessors idle.
const (
	gpuGroupMinReduce = 256
	gpuGroupMaxOut    = 1 << 17
	gpuSplitMaxOut    = 64
	gpuSplitMinReduce = 1 << 16
	gpuThreads        = 256
)

func planGPU(d *Dialect, global, reduce []int) *gpuPlan {
	p := &gpuPlan{out: view.Prod(global), red: view.Prod(reduce), local: gpuThreads}
	switch {
	case len(reduce) == 0 || p.red < gpuGroupMinReduce || p.out > gpuGroupMaxOut:
		p.mode = gpuThread
	case d.Atomics && p.out <= gpuSplitMaxOut && p.red >= gpuSplitMinReduce:
		p.mode = gpuSplit
		// About four blocks per multiprocessor of a large GPU in all, each thread summing at
		// least 64 elements.
		p.parts = max(1, min(1024/p.out, p.red/(gpuThreads*64)))
	default:
		p.mode = gpuGroup
		for p.local > 32 && p.local*8 > p.red {
			p.local /= 2
		}
	}
	return p
}

// launch returns the grid (in blocks) and the block (in threads).
func (p *gpuPlan) launch() (grid, block [3]int) {
	switch p.mode {
	case gpuGroup:
		return [3]int{p.out, 1, 1}, [3]int{p.local, 1, 1}
	case gpuSplit:
		return [3]int{p.out * p.parts, 1, 1}, [3]int{p.local, 1, 1}
	}
	l := min(p.out, p.local)
	return [3]int{(p.out + l - 1) / l, 1, 1}, [3]int{max(l, 1), 1, 1}
}

// gpuBegin writes the kernel's first lines: the output index from the block and thread
// indices, unpacked into the global loop variables.
func (r *renderer) gpuBegin(k *Kernel, ng int) {
	p := planGPU(r.d, k.Global, k.Reduce)
	p.kernel = k.Name
	r.gpu = p
	k.Grid, k.Block = p.launch()
	switch p.mode {
	case gpuThread:
		r.line(fmt.Sprintf("int gid = %s;", r.d.GlobalID))
		r.line(fmt.Sprintf("if (gid >= %d) return;", p.out))
	case gpuGroup:
		r.line(fmt.Sprintf("int gid = %s;", r.d.GroupID))
	case gpuSplit:
		r.line(fmt.Sprintf("int gid = %s / %d, part = %s %% %d;", r.d.GroupID, p.parts, r.d.GroupID, p.parts))
	}
	if p.mode != gpuThread {
		r.line(fmt.Sprintf("int lid = %s;", r.d.LocalID))
	}
	div := 1
	for i := len(k.Global) - 1; i >= 0 && ng > 0; i-- {
		r.line(fmt.Sprintf("int gidx%d = %s;", i, unflatten("gid", div, k.Global[i], i == 0)))
		div *= k.Global[i]
	}
}

// unflatten writes flat / div % n, leaving out what is a no-op: the outermost dim needs no
// modulo, since the flat index stays below the product of all dims.
func unflatten(flat string, div, n int, outermost bool) string {
	if div != 1 {
		flat = fmt.Sprintf("%s / %d", flat, div)
	}
	if !outermost {
		flat = fmt.Sprintf("%s %% %d", flat, n)
	}
	return flat
}

// grouped reports whether the reduce is spread over a block's threads.
func (p *gpuPlan) grouped() bool { return p != nil && p.mode != gpuThread }

// gpuStore guards the final store so that one thread of a block writes.
func (r *renderer) gpuStore(st string) string {
	if !r.gpu.grouped() {
		return st
	}
	return "if (lid == 0) " + st
}

// gpuReduce renders a reduce spread over the block's threads (and, when split, over several
// blocks), returning the variable that holds the result in every thread of the block.
func (r *renderer) gpuReduce(e *Expr) string {
	p := r.gpu
	t := e.DType
	vt := r.d.valueType(t)
	init := 0.0
	if e.Op == lazy.ReduceMax {
		init = t.Min()
	}
	combine := func(a, b string) string {
		if e.Op == lazy.Sum {
			return "(" + a + "+" + b + ")"
		}
		return r.maxOf(t, a, b)
	}
	acc := r.tmp("acc", t, r.d.Literal(init, t))
	start, step := "lid", strconv.Itoa(p.local)
	if p.mode == gpuSplit {
		start, step = fmt.Sprintf("part * %d + lid", p.local), strconv.Itoa(p.local*p.parts)
	}
	r.line(fmt.Sprintf("for (int ridx = %s; ridx < %d; ridx += %s) {", start, p.red, step))
	r.indent += "  "
	outer := r.mult
	r.mult *= int64(p.red)
	ng := len(r.vars) - len(r.reduceVars())
	div := 1
	for i := len(r.reduceVars()) - 1; i >= 0; i-- {
		n := r.full[ng+i]
		r.line(fmt.Sprintf("int %s = %s;", r.reduceVars()[i], unflatten("ridx", div, n, i == 0)))
		div *= n
	}
	// The loop body's values depend on the reduce index; keep them out of the memo table so
	// that nothing after the loop reuses them.
	saved := r.memo
	r.memo = map[*Expr]string{}
	for k, v := range saved {
		r.memo[k] = v
	}
	x := r.render(e.Src[0])
	r.memo = saved
	r.line(fmt.Sprintf("%s = %s;", acc, combine(acc, x)))
	r.flops += r.mult
	r.indent = r.indent[2:]
	r.line("}")
	r.mult = outer
	r.blockReduce(acc, vt, combine)
	if p.mode != gpuSplit {
		return acc
	}
	// Split: publish this block's partial; the last block of the output combines them.
	name := p.kernel
	r.line(fmt.Sprintf("{ %s bool gf_last;", r.d.Shared))
	r.indent += "  "
	r.line("if (lid == 0) {")
	r.line(fmt.Sprintf("  gf_part_%s[gid * %d + part] = %s;", name, p.parts, acc))
	r.line("  __threadfence();")
	r.line(fmt.Sprintf("  gf_last = atomicAdd(&gf_count_%s[gid], 1u) == %du;", name, p.parts-1))
	r.line("}")
	r.line(r.d.Barrier)
	r.line("if (!gf_last) return;")
	r.indent = r.indent[2:]
	r.line("}")
	r.line(fmt.Sprintf("%s = %s;", acc, r.d.Literal(init, t)))
	r.line(fmt.Sprintf("for (int i = lid; i < %d; i += %d) %s = %s;", p.parts, p.local, acc,
		combine(acc, fmt.Sprintf("((volatile %s *)gf_part_%s)[gid * %d + i]", vt, name, p.parts))))
	r.blockReduce(acc, vt, combine)
	r.line(fmt.Sprintf("if (lid == 0) gf_count_%s[gid] = 0u;", name))
	r.globals = append(r.globals, fmt.Sprintf("__device__ %s gf_part_%s[%d];\n__device__ unsigned gf_count_%s[%d];\n",
		vt, name, p.out*p.parts, name, p.out))
	return acc
}

// blockReduce combines acc across the block through shared memory (a tree over the threads)
// and leaves the result in acc in every thread.
func (r *renderer) blockReduce(acc, vt string, combine func(a, b string) string) {
	l := r.gpu.local
	buf := "gf_red" + strconv.Itoa(r.n)
	r.n++
	r.line(fmt.Sprintf("%s %s %s[%d];", r.d.Shared, vt, buf, l))
	r.line(fmt.Sprintf("%s[lid] = %s;", buf, acc))
	r.line(r.d.Barrier)
	r.line(fmt.Sprintf("for (int s = %d; s > 0; s >>= 1) {", l/2))
	r.line(fmt.Sprintf("  if (lid < s) %s[lid] = %s;", buf, combine(buf+"[lid]", buf+"[lid + s]")))
	r.line("  " + r.d.Barrier)
	r.line("}")
	r.line(fmt.Sprintf("%s = %s[0];", acc, buf))
}
