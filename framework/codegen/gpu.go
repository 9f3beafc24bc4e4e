package codegen

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
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
//   - rows: a kernel that passes over each row several times (softmax: max, sum, store) is
//     grouped with up to 1024 threads per row, whatever the number of rows, and where the
//     row is at most 32 elements per thread the first pass keeps its loads in registers for
//     the later ones: the row is read from memory once.
//   - split: few outputs over a huge range (a full sum): several blocks per output each
//     reduce a slice, write a partial to module memory, and the last block to finish (an
//     atomic counter) combines the partials and stores. One launch, the whole GPU busy.
type gpuPlan struct {
	mode   int // gpuThread, gpuGroup, gpuSplit
	local  int // threads per block
	parts  int // blocks per output (split)
	out    int // outputs
	per    int // outputs per thread (thread mode), gpuPer apart so each load stays coalesced
	red    int // reduce elements per output
	cache  int // rows: elements per thread kept in registers across passes (0: none)
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
	gpuRowThreads     = 1024
	gpuRowCache       = 32 // most elements per thread kept in registers
	gpuFewOutputs     = 4096
	gpuPerMin         = 1 << 20 // outputs from which elementwise threads take several
)

// gpuPer is the number of outputs per thread of large elementwise kernels.
var gpuPer = 4

// planGPU picks the mode. contiguous says whether every load walks the innermost reduce dim
// with stride 0 or 1, so that a block's threads striding over it read neighbouring memory;
// when they would not (a matmul's column operand), one thread per output is kept unless the
// outputs are too few to fill the GPU. rows says the kernel passes over each row several
// times: it is never split (the passes need the whole row's result).
func planGPU(d *Dialect, global, reduce []int, contiguous, rows bool) *gpuPlan {
	p := &gpuPlan{out: view.Prod(global), red: view.Prod(reduce), local: gpuThreads}
	p.per = 1
	if len(reduce) == 0 && p.out >= gpuPerMin {
		// A thread with one 4-byte load in flight leaves HBM idle (a 1-read, 1-write kernel
		// ran at 2.4 TB/s this way); four independent ones, each coalesced across the warp,
		// keep enough bytes in flight.
		p.per = gpuPer
	}
	switch {
	case rows && contiguous && p.red >= 32:
		p.mode = gpuGroup
		if d.Name == "cuda" { // OpenCL devices may allow no more than 256 work-items per group
			p.local = gpuRowThreads
		}
		for p.local > 32 && p.local*16 > p.red {
			p.local /= 2
		}
		if k := (p.red + p.local - 1) / p.local; k <= gpuRowCache {
			p.cache = k
		}
	case rows:
		p.mode = gpuThread
	case len(reduce) == 0 || p.red < gpuGroupMinReduce || p.out > gpuGroupMaxOut || (!contiguous && p.out > gpuFewOutputs):
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
	threads := (p.out + p.per - 1) / p.per
	l := min(threads, p.local)
	return [3]int{(threads + l - 1) / l, 1, 1}, [3]int{max(l, 1), 1, 1}
}

// gpuBegin writes the kernel's first lines: the output index from the block and thread
// indices, unpacked into the global loop variables.
func (r *renderer) gpuBegin(k *Kernel, ng int) {
	contiguous := true
	for _, s := range r.views {
		if st := s.Views[len(s.Views)-1].Strides; len(st) > 0 {
			contiguous = contiguous && st[len(st)-1] <= 1
		}
	}
	p := planGPU(r.d, k.Global, k.Reduce, contiguous, r.rows)
	p.kernel = k.Name
	r.gpu = p
	k.Grid, k.Block = p.launch()
	if p.cache > 0 {
		r.cacheLoads()
	}
	switch p.mode {
	case gpuThread:
		if p.per == 1 {
			r.line(fmt.Sprintf("int gid = %s;", r.d.GlobalID))
			r.line(fmt.Sprintf("if (gid >= %d) return;", p.out))
			break
		}
		// When the outputs divide evenly one bound check covers all of a thread's outputs, and
		// the compiler is free to issue every load before the first store.
		stride := (p.out + p.per - 1) / p.per
		guard := fmt.Sprintf("gid < %d", p.out)
		r.line(fmt.Sprintf("int gbase = %s;", r.d.GlobalID))
		if p.out%p.per == 0 {
			r.line(fmt.Sprintf("if (gbase >= %d) return;", stride))
			guard = "true"
		}
		r.line("#pragma unroll")
		r.line(fmt.Sprintf("for (int gj = 0; gj < %d; gj++) {", p.per))
		r.line(fmt.Sprintf("  int gid = gbase + gj * %d;", stride))
		r.line(fmt.Sprintf("  if (%s) {", guard))
		r.indent += "    "
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
	if p := r.gpu; p != nil && p.mode == gpuThread && p.per > 1 {
		r.indent = r.indent[4:]
		return "    " + st + "\n" + r.indent + "  }\n" + r.indent + "}"
	}
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
	r.rowLoop("", true, func() {
		r.line(fmt.Sprintf("%s = %s;", acc, r.step(e, acc)))
		r.flops += r.mult
	})
	r.blockReduce(acc, vt, r.d.Literal(init, t), combine)
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
	r.blockReduce(acc, vt, r.d.Literal(init, t), combine)
	r.line(fmt.Sprintf("if (lid == 0) gf_count_%s[gid] = 0u;", name))
	r.globals = append(r.globals, fmt.Sprintf("__device__ %s gf_part_%s[%d];\n__device__ unsigned gf_count_%s[%d];\n",
		vt, name, p.out*p.parts, name, p.out))
	return acc
}

// gpuRowLoop opens the loop of a grouped plan over the reduce range, each thread striding by
// the block (and the split's blocks), renders body in it and closes it. With a register cache
// the loop runs a fixed count, fully unrolled, so that the cache arrays index by constants.
func (r *renderer) gpuRowLoop(reduce bool, body func()) {
	p := r.gpu
	close := "}"
	if p.cache > 0 {
		r.line("#pragma unroll")
		r.line(fmt.Sprintf("for (int rj = 0; rj < %d; rj++) {", p.cache))
		r.line(fmt.Sprintf("  int ridx = lid + rj * %d;", p.local))
		if p.red%p.local != 0 {
			r.line(fmt.Sprintf("  if (ridx < %d) {", p.red))
			r.indent += "  "
			close = "}}"
		}
	} else {
		start, step := "lid", strconv.Itoa(p.local)
		if p.mode == gpuSplit {
			start, step = fmt.Sprintf("part * %d + lid", p.local), strconv.Itoa(p.local*p.parts)
		}
		r.line("#pragma unroll 4")
		r.line(fmt.Sprintf("for (int ridx = %s; ridx < %d; ridx += %s) {", start, p.red, step))
	}
	r.indent += "  "
	r.mult *= int64(p.red)
	ng := len(r.vars) - len(r.reduceVars())
	div := 1
	for i := len(r.reduceVars()) - 1; i >= 0; i-- {
		n := r.full[ng+i]
		r.line(fmt.Sprintf("int %s = %s;", r.reduceVars()[i], unflatten("ridx", div, n, i == 0)))
		div *= n
	}
	stored := map[string]bool{}
	r.storing = stored
	if !reduce {
		r.storing = nil
	}
	body()
	r.storing = nil
	maps.Copy(r.filled, stored)
	r.indent = r.indent[len(close)*2:]
	r.line(close)
}

// cacheLoads declares one register array per load that moves along the row: the first pass
// that reads it stores what it loaded (the compiler drops the array where no later pass
// reads it), and later passes read the registers instead of memory.
func (r *renderer) cacheLoads() {
	r.cached, r.filled = map[string]string{}, map[string]bool{}
	types := map[string]dtype.DType{}
	ng := len(r.vars) - len(r.reduceVars())
	for e, s := range r.views {
		v := s.Views[len(s.Views)-1]
		for d := ng; d < len(v.Shape) && e.Op == lazy.Load; d++ {
			if v.Shape[d] > 1 && v.Strides[d] != 0 {
				types[r.cacheKey(e)] = e.DType
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(types)) { // sorted: the same AST, the same source
		name := "rc" + strconv.Itoa(r.n)
		r.n++
		r.cached[key] = name
		r.line(fmt.Sprintf("%s %s[%d];", r.d.valueType(types[key]), name, r.gpu.cache))
	}
}

// cacheKey names what a load reads: loads of the same buffer through the same view in
// different passes (the output's frame and the reduce's) read the same values.
func (r *renderer) cacheKey(e *Expr) string { return strconv.Itoa(e.Buf) + r.views[e].Key() }

// blockReduce combines acc across the block and leaves the result in acc in every thread:
// on CUDA, for the types its warp shuffles move, within each warp by shuffles, then the
// warps' partials through shared memory (one barrier); elsewhere as a tree over the threads
// in shared memory (a barrier per level, ten for 1024 threads).
func (r *renderer) blockReduce(acc, vt, init string, combine func(a, b string) string) {
	l := r.gpu.local
	buf := "gf_red" + strconv.Itoa(r.n)
	r.n++
	if r.d.Name == "cuda" && (vt == "float" || vt == "int" || vt == "long long") {
		// Every lane shuffles (the value goes through a temporary: the combine reads it twice).
		warp := func() {
			r.line(fmt.Sprintf("for (int o = 16; o > 0; o >>= 1) { %s w = __shfl_xor_sync(0xffffffffu, %s, o); %s = %s; }", vt, acc, acc, combine(acc, "w")))
		}
		warp()
		r.line(fmt.Sprintf("__shared__ %s %s[%d];", vt, buf, l/32))
		r.line(fmt.Sprintf("if ((lid & 31) == 0) %s[lid >> 5] = %s;", buf, acc))
		r.line(r.d.Barrier)
		r.line(fmt.Sprintf("%s = (lid & 31) < %d ? %s[lid & 31] : %s;", acc, l/32, buf, init))
		warp()
		return
	}
	r.line(fmt.Sprintf("%s %s %s[%d];", r.d.Shared, vt, buf, l))
	r.line(fmt.Sprintf("%s[lid] = %s;", buf, acc))
	r.line(r.d.Barrier)
	r.line(fmt.Sprintf("for (int s = %d; s > 0; s >>= 1) {", l/2))
	r.line(fmt.Sprintf("  if (lid < s) %s[lid] = %s;", buf, combine(buf+"[lid]", buf+"[lid + s]")))
	r.line("  " + r.d.Barrier)
	r.line("}")
	r.line(fmt.Sprintf("%s = %s[0];", acc, buf))
}

// gpuMatmul renders a plain matrix product — a kernel whose value is Sum(Mul(Load A, Load B))
// over one reduce dim, with two global dims — as a tiled kernel: float32 on the CUDA cores in
// 128×128 tiles, float16 and bfloat16 on the tensor cores (WMMA) with cp.async double
// buffering. It reports false (and the shared lowering runs) for anything else: other
// dialects, batches, masks, sizes that are not multiples of the tiles, or layouts the tiles
// cannot load with 16-byte accesses.
func gpuMatmul(d *Dialect, ast *AST, k *Kernel, views map[*Expr]view.Stack, out view.Stack) bool {
	// 16-bit products arrive as Cast(Sum(Cast(Mul(a, b)))): summed in float32, stored narrow.
	e := ast.Value
	if e.Op == lazy.Cast {
		e = e.Src[0]
	}
	if (d.Name != "cuda" && d != OpenCL) || e.Op != lazy.Sum || len(k.Global) != 2 || len(k.Reduce) != 1 {
		return false
	}
	mul := e.Src[0]
	if mul.Op == lazy.Cast {
		mul = mul.Src[0]
	}
	if mul.Op != lazy.Mul {
		return false
	}
	a, b := mul.Src[0], mul.Src[1]
	if a.Op != lazy.Load || b.Op != lazy.Load || a.DType != ast.Bufs[0] || b.DType != ast.Bufs[0] {
		return false
	}
	e = a // the element type of A, B and C
	strides := func(s view.Stack) ([]int, int, bool) {
		if len(s.Views) != 1 || s.Views[0].Mask != nil {
			return nil, 0, false
		}
		return s.Views[0].Strides, s.Views[0].Offset, true
	}
	sa, oa, ok1 := strides(views[a])
	sb, ob, ok2 := strides(views[b])
	sc, oc, ok3 := strides(out)
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	if sa[0] == 0 && sb[1] == 0 { // the product is B·A: swap so A is the row operand
		a, b, sa, sb, oa, ob = b, a, sb, sa, ob, oa
	}
	m, n, kk := k.Global[0], k.Global[1], k.Reduce[0]
	vec := 4 // elements per 16 bytes
	tileK := 8
	if e.DType == dtype.Float16 || e.DType == dtype.BFloat16 {
		vec, tileK = 8, 32
	} else if e.DType != dtype.Float32 {
		return false
	}
	aligned := func(v ...int) bool {
		for _, x := range v {
			if x%vec != 0 {
				return false
			}
		}
		return true
	}
	// Dims are (m, n, k). A must walk k contiguously, B either n (row-major [K, N]) or k
	// (n-major [N, K], as in x·Wᵀ), and C n.
	bT := sb[2] == 1 && sb[1] != 1
	sbk, sbn := sb[2], sb[1]
	switch {
	case sa[1] != 0 || sa[2] != 1 || sb[0] != 0 || sc[1] != 1:
		return false
	case !bT && sb[1] != 1:
		return false
	case kk%tileK != 0 || !aligned(sa[0], oa, ob, sc[0], oc, sbk*sbn):
		return false
	}
	src, threads, bm, bn := sgemmTemplate, 256, 128, 128
	nw := 32 // sgemmNarrow's width
	if n%64 == 0 {
		nw = 64
	}
	switch {
	case m%128 == 0 && n%128 == 0:
	case d.Name == "cuda" && vec == 4 && n%32 == 0 && n/nw*((m+8192/nw-1)/(8192/nw)) >= gpuNarrowMinBlocks:
		// A convolution's 32 or 64 output channels: tiles as wide as 64 or 32 columns,
		// taller to keep each thread's 8×4 outputs; any number of rows.
		src, bn, bm = sgemmNarrow, nw, 8192/nw
	default:
		return false
	}
	if d == OpenCL { // float32 only, in OpenCL C (opencl.go)
		if vec != 4 {
			return false
		}
		src = openCLSgemm
	}
	if vec == 8 {
		src = hgemmTemplate
		if hgemmWarps == 4 {
			src, threads = hgemmWide, 128
		}
	}
	layout := "ROWB"
	if bT {
		layout = "COLB"
	}
	parts := 1
	if d.Name == "cuda" && src == sgemmTemplate {
		parts = splitK(m/128*(n/128), kk)
	}
	// Split over k, each block starts its slice of A and B and stores its partial tile densely.
	oas, obs, kz, scm, cout := strconv.Itoa(oa), strconv.Itoa(ob), kk/parts, sc[0], "data0 + "+strconv.Itoa(oc)
	if parts > 1 {
		oas += fmt.Sprintf(" + blockIdx.z * %d", kz)
		obs += fmt.Sprintf(" + (size_t)blockIdx.z * %d", kz*sb[2])
		scm, cout = n, fmt.Sprintf("gf_part_%s + (size_t)blockIdx.z * %d", k.Name, m*n)
	}
	rep := strings.NewReplacer("$BN", strconv.Itoa(bn), "$A", fmt.Sprintf("data%d", a.Buf), "$B", fmt.Sprintf("data%d", b.Buf),
		"$T", d.Types[e.DType], "$CVT", d.Convert[e.DType][1], "$M", strconv.Itoa(m), "$N", strconv.Itoa(n),
		"$K", strconv.Itoa(kz), "$SAM", strconv.Itoa(sa[0]), "$SBK", strconv.Itoa(sbk), "$SBN", strconv.Itoa(sbn),
		"$SCM", strconv.Itoa(scm), "$OA", oas, "$OB", obs, "data0 + $OC", cout, "$LAYOUT", layout)
	sig := launchBounds(d.Kernel(k.Name, k.Params), threads)
	prelude := d.Prelude
	if vec == 8 {
		prelude += d.HalfPrelude + "#include <mma.h>\n"
	}
	body := rep.Replace(src)
	if parts > 1 {
		prelude += fmt.Sprintf("__device__ float gf_part_%s[%d];\n__device__ unsigned gf_count_%s[%d];\n", k.Name, parts*m*n, k.Name, m/128*(n/128))
		body += strings.NewReplacer("$NAME", k.Name, "$PARTS", strconv.Itoa(parts), "$MN", strconv.Itoa(m*n), "$N", strconv.Itoa(n),
			"$SCM", strconv.Itoa(sc[0]), "$OC", strconv.Itoa(oc)).Replace(sgemmSplitSum)
	}
	k.Src = prelude + sig + body + "}\n"
	k.Grid, k.Block = [3]int{n / bn, (m + bm - 1) / bm, parts}, [3]int{threads, 1, 1}
	k.Flops = 2 * int64(m) * int64(n) * int64(kk)
	return true
}

// splitK is the number of slices of the k range a float32 128×128-tile product of few tiles
// is split into, so that the GPU gets about 128 blocks (the linear layer's 512×1600·1600×128
// is 4 tiles): a divisor of the range's 8-wide steps, each slice at least 64 long.
func splitK(tiles, k int) int {
	best := 1
	for s := 2; s*tiles <= 128 && k/s >= 64; s++ {
		if k%(8*s) == 0 {
			best = s
		}
	}
	return best
}

// sgemmSplitSum ends a split sgemmTemplate: the last of an output tile's blocks to finish (an
// atomic count per tile) sums the tile's partials, in slice order, into C.
const sgemmSplitSum = `  __threadfence();
  __shared__ bool gf_last;
  __syncthreads();
  if (t == 0) gf_last = atomicAdd(&gf_count_$NAME[blockIdx.y * gridDim.x + blockIdx.x], 1u) == $PARTS - 1;
  __syncthreads();
  if (!gf_last) return;
  for (int i = t; i < 4096; i += 256) {
    size_t at = (size_t)(bm + i / 32) * $N + bn + (i % 32) * 4;
    volatile float* p = gf_part_$NAME + at; // other blocks' stores: past the L1
    float4 s = make_float4(p[0], p[1], p[2], p[3]);
    for (int z = 1; z < $PARTS; z++) {
      p += $MN;
      s.x += p[0]; s.y += p[1]; s.z += p[2]; s.w += p[3];
    }
    *(float4*)&data0[$OC + (size_t)(bm + i / 32) * $SCM + bn + (i % 32) * 4] = s;
  }
  if (t == 0) gf_count_$NAME[blockIdx.y * gridDim.x + blockIdx.x] = 0u;
`

// launchBounds declares a CUDA kernel's block size, so that the compiler keeps each thread's
// registers within what that many threads may share (without it a 1024-thread block of a
// kernel compiled for up to 255 registers per thread fails to launch).
func launchBounds(sig string, threads int) string {
	return strings.Replace(sig, "__global__ void", fmt.Sprintf("__global__ void __launch_bounds__(%d)", threads), 1)
}

// hgemmWarps picks the 16-bit tile kernel: 8 warps of 64×32 (hgemmTemplate) or 4 of 64×64
// (hgemmWide, 318 against 283 TFLOP/s at 4096³ on the H200).
var hgemmWarps = 4

// sgemmTemplate: float32, 256 threads each computing 8×8 outputs of a 128×128 tile from
// shared memory, the next 128×8 slices of A and B loaded into registers during the math.
const sgemmTemplate = `  const float* A = $A + $OA; const float* B = $B + $OB; float* C = data0 + $OC;
  __shared__ __align__(16) float As[2][8][128];
  __shared__ __align__(16) float Bs[2][8][128];
  int t = threadIdx.x, tx = t % 16, ty = t / 16;
  int bm = blockIdx.y * 128, bn = blockIdx.x * 128;
  const float* a = A + (size_t)(bm + t / 2) * $SAM + (t % 2) * 4;
#define ROWB 1
#define COLB 2
#if $LAYOUT == ROWB
  const float* b = B + (size_t)(t / 32) * $SBK + bn + (t % 32) * 4;
#define LOADB(k0) (*(const float4*)(b + (size_t)(k0) * $SBK))
#define STOREB(buf, v) *(float4*)&Bs[buf][t / 32][(t % 32) * 4] = v
#else
  const float* b = B + (size_t)(bn + t / 2) * $SBN + (t % 2) * 4;
#define LOADB(k0) (*(const float4*)(b + (k0)))
#define STOREB(buf, v) Bs[buf][(t % 2) * 4 + 0][t / 2] = v.x; Bs[buf][(t % 2) * 4 + 1][t / 2] = v.y; Bs[buf][(t % 2) * 4 + 2][t / 2] = v.z; Bs[buf][(t % 2) * 4 + 3][t / 2] = v.w
#endif
  float acc[8][8] = {};
  float4 ra = *(const float4*)a, rb = LOADB(0);
  int buf = 0;
  As[0][(t % 2) * 4 + 0][t / 2] = ra.x; As[0][(t % 2) * 4 + 1][t / 2] = ra.y;
  As[0][(t % 2) * 4 + 2][t / 2] = ra.z; As[0][(t % 2) * 4 + 3][t / 2] = ra.w;
  STOREB(0, rb);
  __syncthreads();
  for (int k0 = 0; k0 < $K; k0 += 8) {
    bool more = k0 + 8 < $K;
    if (more) { ra = *(const float4*)(a + k0 + 8); rb = LOADB(k0 + 8); }
    #pragma unroll
    for (int k = 0; k < 8; k++) {
      float4 a0 = *(float4*)&As[buf][k][ty * 4], a1 = *(float4*)&As[buf][k][64 + ty * 4];
      float4 b0 = *(float4*)&Bs[buf][k][tx * 4], b1 = *(float4*)&Bs[buf][k][64 + tx * 4];
      float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      #pragma unroll
      for (int i = 0; i < 8; i++)
        #pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) {
      buf ^= 1;
      As[buf][(t % 2) * 4 + 0][t / 2] = ra.x; As[buf][(t % 2) * 4 + 1][t / 2] = ra.y;
      As[buf][(t % 2) * 4 + 2][t / 2] = ra.z; As[buf][(t % 2) * 4 + 3][t / 2] = ra.w;
      STOREB(buf, rb);
      __syncthreads();
    }
  }
  #pragma unroll
  for (int i = 0; i < 8; i++) {
    int r = bm + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    *(float4*)&C[(size_t)r * $SCM + bn + tx * 4] = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
    *(float4*)&C[(size_t)r * $SCM + bn + 64 + tx * 4] = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
  }
`

// gpuNarrowMinBlocks is the fewest tiles for which a matmul of 32 or 64 columns takes
// sgemmNarrow: below it, half the H200's multiprocessors idle, and one thread per output
// fills the GPU as well.
const gpuNarrowMinBlocks = 64

// sgemmNarrow is sgemmTemplate for N a multiple of 32 or 64 (BN) but not of 128: BN×(8192/BN)
// tiles, 256 threads each computing 8×4 outputs. Rows past M load row M-1 and are not stored.
const sgemmNarrow = `  const float* A = $A + $OA; const float* B = $B + $OB; float* C = data0 + $OC;
#define BN $BN
#define BM (8192 / BN)
#define TX (BN / 4)
#define AL (BM / 128)
  __shared__ __align__(16) float As[2][8][BM];
  __shared__ __align__(16) float Bs[2][8][BN];
  int t = threadIdx.x, tx = t % TX, ty = t / TX;
  int bm = blockIdx.y * BM, bn = blockIdx.x * BN;
  bool ldb = t < 2 * BN;
  const float* a[AL];
  #pragma unroll
  for (int l = 0; l < AL; l++) {
    int r = bm + t / 2 + l * 128;
    a[l] = A + (size_t)(r < $M ? r : $M - 1) * $SAM + (t % 2) * 4;
  }
#define ROWB 1
#define COLB 2
#if $LAYOUT == ROWB
  const float* b = B + (size_t)(t / TX) * $SBK + bn + (t % TX) * 4;
#define LOADB(k0) (ldb ? *(const float4*)(b + (size_t)(k0) * $SBK) : make_float4(0.f, 0.f, 0.f, 0.f))
#define STOREB(buf, v) if (ldb) { *(float4*)&Bs[buf][t / TX][(t % TX) * 4] = v; }
#else
  const float* b = B + (size_t)(bn + t / 2) * $SBN + (t % 2) * 4;
#define LOADB(k0) (ldb ? *(const float4*)(b + (k0)) : make_float4(0.f, 0.f, 0.f, 0.f))
#define STOREB(buf, v) if (ldb) { Bs[buf][(t % 2) * 4 + 0][t / 2] = v.x; Bs[buf][(t % 2) * 4 + 1][t / 2] = v.y; Bs[buf][(t % 2) * 4 + 2][t / 2] = v.z; Bs[buf][(t % 2) * 4 + 3][t / 2] = v.w; }
#endif
#define STOREA(buf) for (int l = 0; l < AL; l++) { int r = t / 2 + l * 128, c = (t % 2) * 4; As[buf][c][r] = ra[l].x; As[buf][c + 1][r] = ra[l].y; As[buf][c + 2][r] = ra[l].z; As[buf][c + 3][r] = ra[l].w; }
  float acc[8][4] = {};
  float4 ra[AL], rb = LOADB(0);
  #pragma unroll
  for (int l = 0; l < AL; l++) ra[l] = *(const float4*)a[l];
  int buf = 0;
  STOREA(0)
  STOREB(0, rb)
  __syncthreads();
  for (int k0 = 0; k0 < $K; k0 += 8) {
    bool more = k0 + 8 < $K;
    if (more) {
      #pragma unroll
      for (int l = 0; l < AL; l++) ra[l] = *(const float4*)(a[l] + k0 + 8);
      rb = LOADB(k0 + 8);
    }
    #pragma unroll
    for (int k = 0; k < 8; k++) {
      float4 a0 = *(float4*)&As[buf][k][ty * 4], a1 = *(float4*)&As[buf][k][BM / 2 + ty * 4];
      float4 b0 = *(float4*)&Bs[buf][k][tx * 4];
      float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      float bv[4] = {b0.x, b0.y, b0.z, b0.w};
      #pragma unroll
      for (int i = 0; i < 8; i++)
        #pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) {
      buf ^= 1;
      STOREA(buf)
      STOREB(buf, rb)
      __syncthreads();
    }
  }
  #pragma unroll
  for (int i = 0; i < 8; i++) {
    int r = bm + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + i - 4);
    if (r < $M) *(float4*)&C[(size_t)r * $SCM + bn + tx * 4] = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
  }
`

// hgemmTemplate: 16-bit floats on the tensor cores through WMMA 16×16×16 with float
// accumulators; 128×128×32 tiles, 8 warps of 64×32 outputs, two shared-memory stages filled
// with cp.async so the next slice loads during the math.
const hgemmTemplate = `  using namespace nvcuda;
  typedef $T T;
  const T* A = $A + $OA; const T* B = $B + $OB; T* C = data0 + $OC;
#define ROWB 1
#define COLB 2
  const int AP = 40, BP = ($LAYOUT == ROWB) ? 136 : 40;
  __shared__ __align__(128) T As[2][128 * 40];
  __shared__ __align__(128) T Bs[2][($LAYOUT == ROWB) ? 32 * 136 : 128 * 40];
  int t = threadIdx.x, warp = t / 32, wm = warp / 4, wn = warp % 4;
  int bm = blockIdx.y * 128, bn = blockIdx.x * 128;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
  auto cp16 = [](void* s, const void* g) {
    unsigned sa = (unsigned)__cvta_generic_to_shared(s);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(sa), "l"(g));
  };
  auto load = [&](int st, int k0) {
    #pragma unroll
    for (int r = 0; r < 2; r++) {
      int id = t + r * 256;
      int ar = id / 4, ac = (id % 4) * 8;
      cp16(&As[st][ar * AP + ac], A + (size_t)(bm + ar) * $SAM + k0 + ac);
#if $LAYOUT == ROWB
      int br = id / 16, bc = (id % 16) * 8;
      cp16(&Bs[st][br * BP + bc], B + (size_t)(k0 + br) * $SBK + bn + bc);
#else
      cp16(&Bs[st][ar * BP + ac], B + (size_t)(bn + ar) * $SBN + k0 + ac);
#endif
    }
    asm volatile("cp.async.commit_group;\n" ::);
  };
  load(0, 0);
  int st = 0;
  for (int k0 = 0; k0 < $K; k0 += 32) {
    if (k0 + 32 < $K) { load(st ^ 1, k0 + 32); asm volatile("cp.async.wait_group 1;\n" ::); }
    else asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();
    #pragma unroll
    for (int kk = 0; kk < 32; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[4];
#if $LAYOUT == ROWB
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb[2];
#else
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb[2];
#endif
      #pragma unroll
      for (int i = 0; i < 4; i++) wmma::load_matrix_sync(fa[i], &As[st][(wm * 64 + i * 16) * AP + kk], AP);
      #pragma unroll
      for (int j = 0; j < 2; j++)
#if $LAYOUT == ROWB
        wmma::load_matrix_sync(fb[j], &Bs[st][kk * BP + wn * 32 + j * 16], BP);
#else
        wmma::load_matrix_sync(fb[j], &Bs[st][(wn * 32 + j * 16) * BP + kk], BP);
#endif
      #pragma unroll
      for (int i = 0; i < 4; i++)
        #pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
    st ^= 1;
  }
  float* stage = (float*)&As[0][0] + warp * 256;
  int lane = t % 32;
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 2; j++) {
      wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      int r = lane / 2, c = (lane % 2) * 8;
      __align__(16) T h[8];
      #pragma unroll
      for (int e = 0; e < 8; e++) h[e] = $CVT(stage[r * 16 + c + e]);
      *(uint4*)&C[(size_t)(bm + wm * 64 + i * 16 + r) * $SCM + bn + wn * 32 + j * 16 + c] = *(uint4*)h;
      __syncwarp();
    }
`

// hgemmWide is hgemmTemplate with 4 warps of 64×64 outputs: twice the matrix operations per
// fragment loaded from shared memory.
const hgemmWide = `  using namespace nvcuda;
  typedef $T T;
  const T* A = $A + $OA; const T* B = $B + $OB; T* C = data0 + $OC;
#define ROWB 1
#define COLB 2
  const int AP = 40, BP = ($LAYOUT == ROWB) ? 136 : 40;
  __shared__ __align__(128) T As[2][128 * 40];
  __shared__ __align__(128) T Bs[2][($LAYOUT == ROWB) ? 32 * 136 : 128 * 40];
  int t = threadIdx.x, warp = t / 32, wm = warp / 2, wn = warp % 2;
  int bm = blockIdx.y * 128, bn = blockIdx.x * 128;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][4];
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
  auto cp16 = [](void* s, const void* g) {
    unsigned sa = (unsigned)__cvta_generic_to_shared(s);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(sa), "l"(g));
  };
  auto load = [&](int st, int k0) {
    #pragma unroll
    for (int r = 0; r < 4; r++) {
      int id = t + r * 128;
      int ar = id / 4, ac = (id % 4) * 8;
      cp16(&As[st][ar * AP + ac], A + (size_t)(bm + ar) * $SAM + k0 + ac);
#if $LAYOUT == ROWB
      int br = id / 16, bc = (id % 16) * 8;
      cp16(&Bs[st][br * BP + bc], B + (size_t)(k0 + br) * $SBK + bn + bc);
#else
      cp16(&Bs[st][ar * BP + ac], B + (size_t)(bn + ar) * $SBN + k0 + ac);
#endif
    }
    asm volatile("cp.async.commit_group;\n" ::);
  };
  load(0, 0);
  int st = 0;
  for (int k0 = 0; k0 < $K; k0 += 32) {
    if (k0 + 32 < $K) { load(st ^ 1, k0 + 32); asm volatile("cp.async.wait_group 1;\n" ::); }
    else asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();
    #pragma unroll
    for (int kk = 0; kk < 32; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[4];
#if $LAYOUT == ROWB
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb[4];
#else
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb[4];
#endif
      #pragma unroll
      for (int i = 0; i < 4; i++) wmma::load_matrix_sync(fa[i], &As[st][(wm * 64 + i * 16) * AP + kk], AP);
      #pragma unroll
      for (int j = 0; j < 4; j++)
#if $LAYOUT == ROWB
        wmma::load_matrix_sync(fb[j], &Bs[st][kk * BP + wn * 64 + j * 16], BP);
#else
        wmma::load_matrix_sync(fb[j], &Bs[st][(wn * 64 + j * 16) * BP + kk], BP);
#endif
      #pragma unroll
      for (int i = 0; i < 4; i++)
        #pragma unroll
        for (int j = 0; j < 4; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
    st ^= 1;
  }
  float* stage = (float*)&As[0][0] + warp * 256;
  int lane = t % 32;
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 4; j++) {
      wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      int r = lane / 2, c = (lane % 2) * 8;
      __align__(16) T h[8];
      #pragma unroll
      for (int e = 0; e < 8; e++) h[e] = $CVT(stage[r * 16 + c + e]);
      *(uint4*)&C[(size_t)(bm + wm * 64 + i * 16 + r) * $SCM + bn + wn * 64 + j * 16 + c] = *(uint4*)h;
      __syncwarp();
    }
`
