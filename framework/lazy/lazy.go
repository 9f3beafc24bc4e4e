// Package lazy holds the graph the tensor front end builds: one Node per primitive op. A node
// computes nothing; the scheduler cuts a graph of nodes into kernels when a result is
// needed, and a realized node keeps its buffer and forgets its sources.
package lazy

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/gradforge/gradforge/framework/dtype"
	rt "github.com/gradforge/gradforge/framework/runtime"
)

// Op is a primitive op. Only these reach a backend.
type Op uint8

// The primitive ops, grouped by arity.
const (
	// Unary: one source of the node's shape.
	Exp2 Op = iota
	Log2
	Sin
	Sqrt
	Recip
	Neg
	Cast    // convert the value to the node's DType
	Bitcast // reinterpret the bits as the node's DType (same size)
	// Binary: two sources of the node's shape and the same dtype.
	Add
	Mul
	Max
	CmpLT // result is Bool
	CmpNE // result is Bool
	IDiv  // integer division truncating toward zero, as C does; x/0 is 0
	Mod   // C remainder (sign of the dividend); x%0 is 0
	And   // bitwise, for ints and bools
	Or
	Xor
	// Ternary: MulAdd(a, b, c) is a*b+c rounded once (floats; the backends' fma), Where(cond, a, b).
	MulAdd
	Where
	// IndexLoad reads Src[0]'s buffer (contiguous) at the flat positions Src[1] holds, an
	// integer tensor of the node's shape [outer, k, inner]; Arg [3]int{outer, n, inner} is
	// Src[0]'s shape seen as rows of n along the gathered axis (for the gradient).
	IndexLoad
	// Reduce over Arg ([]int axes); the reduced dims stay with size 1.
	Sum
	ReduceMax
	// Movement: index arithmetic only.
	Reshape // Arg []int new shape
	Permute // Arg []int order
	Expand  // Arg []int new shape
	Pad     // Arg [][2]int before/after per dim, zeros
	Shrink  // Arg [][2]int [lo,hi) per dim
	Flip    // Arg []bool per dim
	// Leaves and markers.
	Const      // Arg float64, broadcast to the node's shape; no buffer
	Load       // a buffer filled from the host (Node.Buf set at creation)
	Contiguous // identity that forces its source into its own buffer
	numOps
)

var names = [numOps]string{"EXP2", "LOG2", "SIN", "SQRT", "RECIP", "NEG", "CAST", "BITCAST",
	"ADD", "MUL", "MAX", "CMPLT", "CMPNE", "IDIV", "MOD", "AND", "OR", "XOR", "MULADD", "WHERE", "INDEX_LOAD",
	"SUM", "REDUCE_MAX", "RESHAPE", "PERMUTE", "EXPAND", "PAD", "SHRINK", "FLIP",
	"CONST", "LOAD", "CONTIGUOUS"}

func (o Op) String() string {
	if o < numOps {
		return names[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// IsUnary, IsBinary, … classify ops for the scheduler and the renderers.
func (o Op) IsUnary() bool    { return o <= Bitcast }
func (o Op) IsBinary() bool   { return o >= Add && o <= Xor }
func (o Op) IsReduce() bool   { return o == Sum || o == ReduceMax }
func (o Op) IsMovement() bool { return o >= Reshape && o <= Flip }

// IsElementwise reports whether o computes each output element from the same element of its
// sources (unary, binary and ternary ops), so it fuses freely.
func (o Op) IsElementwise() bool { return o <= Where }

// Buffer is realized memory on a device. Nodes that alias the same memory (a realized node
// and a reshape of it) share one Buffer; its device memory is freed when no node holds it.
type Buffer struct {
	Dev rt.Device
	Mem rt.Buffer
}

// Device memory is invisible to the Go collector, whose heap here is only small node
// structs: without help it would rarely run, dead tensors would hold gigabytes, and every
// large result would land in fresh memory whose page faults cost more than the kernel.
// So large buffers are also tracked through weak pointers. Once as much large memory was
// allocated as the last collection left alive (at least gcAfter), a collection starts in
// the background and frees the dead buffers when it ends (devices pool freed memory for
// reuse); nothing on the hot path waits for it. An allocation waits for a collection only
// under real pressure: when live large memory would pass four times what the last one left
// (at least hardAfter), or when the device is out of memory.
var reclaim struct {
	sync.Mutex
	since   int // large bytes allocated since the last collection started
	after   int // live large bytes the last collection left
	running bool
	large   []tracked
}

// live is the memory of tracked buffers not yet freed.
var live atomic.Int64

// LiveBytes is the device memory held by large buffers (1 MiB and up) that were not freed yet,
// dead or alive: what the reclaiming keeps bounded.
func LiveBytes() int64 { return live.Load() }

type tracked struct {
	w weak.Pointer[Buffer]
	m *mem
}

// mem frees device memory once, whether the collector's cleanup or a reclaim gets there first.
type mem struct {
	b    rt.Buffer
	n    int // bytes counted in live (0: not tracked)
	done atomic.Bool
}

func (m *mem) free() {
	if m.done.CompareAndSwap(false, true) {
		m.b.Device().Free(m.b)
		live.Add(-int64(m.n))
	}
}

const (
	largeBuffer = 1 << 20   // bytes from which a buffer is tracked
	gcAfter     = 64 << 20  // least large bytes allocated between background collections
	hardAfter   = 256 << 20 // least live large bytes above which an allocation waits
)

// NewBuffer allocates n bytes on dev and frees them when the returned Buffer is collected.
func NewBuffer(dev rt.Device, n int) (*Buffer, error) {
	large := n >= largeBuffer
	if large {
		reclaimDead(n)
	}
	m, err := dev.Alloc(n)
	if err != nil { // out of memory may only mean that dead buffers still hold it
		collect()
		m, err = dev.Alloc(n)
	}
	if err != nil {
		return nil, fmt.Errorf("alloc %d bytes on %s: %w", n, dev.Name(), err)
	}
	b := &Buffer{Dev: dev, Mem: m}
	mm := &mem{b: m}
	runtime.AddCleanup(b, func(mm *mem) { mm.free() }, mm)
	if large {
		mm.n = n
		live.Add(int64(n))
		reclaim.Lock()
		reclaim.large = append(reclaim.large, tracked{weak.Make(b), mm})
		reclaim.Unlock()
	}
	return b, nil
}

// reclaimDead starts a background collection when enough was allocated since the last one,
// or collects at once when live memory is past the hard limit.
func reclaimDead(n int) {
	reclaim.Lock()
	reclaim.since += n
	hard := int(live.Load())+n > max(hardAfter, 4*reclaim.after)
	start := !hard && !reclaim.running && reclaim.since >= max(gcAfter, reclaim.after)
	if start {
		reclaim.running, reclaim.since = true, 0
	}
	reclaim.Unlock()
	switch {
	case hard:
		collect()
	case start:
		go func() {
			runtime.GC()
			reclaim.Lock()
			defer reclaim.Unlock()
			reclaim.running = false
			sweep()
		}()
	}
}

// collect runs a collection, waiting for it, and frees the dead buffers it found.
func collect() {
	runtime.GC()
	reclaim.Lock()
	defer reclaim.Unlock()
	reclaim.since = 0
	sweep()
}

// sweep frees the tracked buffers the collector found dead and drops the freed ones; the
// caller holds reclaim.
func sweep() {
	kept := reclaim.large[:0]
	for _, t := range reclaim.large {
		if t.w.Value() == nil {
			t.m.free()
		} else if !t.m.done.Load() {
			kept = append(kept, t)
		}
	}
	clear(reclaim.large[len(kept):])
	reclaim.large = kept
	reclaim.after = int(live.Load())
}

// Node is one primitive op in the lazy graph. Src, Op and Arg fully describe how it is
// computed from its sources, which is all reverse-mode autograd needs as well.
type Node struct {
	Op     Op
	DType  dtype.DType
	Src    []*Node
	Arg    any
	Shape  []int
	Device string  // registry name, e.g. "CPU"
	Buf    *Buffer // non-nil once realized (always for Load); Src is dropped then
}

// Realized reports whether the node's value sits in a buffer.
func (n *Node) Realized() bool { return n.Buf != nil }

// Numel is the number of elements of the node.
func (n *Node) Numel() int {
	p := 1
	for _, d := range n.Shape {
		p *= d
	}
	return p
}

func (n *Node) String() string {
	return fmt.Sprintf("%s %s %v", n.Op, n.DType, n.Shape)
}
