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
	// Ternary: Where(cond, a, b).
	Where
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
	"ADD", "MUL", "MAX", "CMPLT", "CMPNE", "IDIV", "MOD", "AND", "OR", "XOR", "WHERE",
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
// So large buffers are also tracked through weak pointers, and once enough device memory
// was allocated since the last collection, allocating a large buffer first collects and
// frees the dead ones at once (devices pool freed memory for reuse).
var reclaim struct {
	sync.Mutex
	sinceGC int
	large   []tracked
}

type tracked struct {
	w weak.Pointer[Buffer]
	m *mem
}

// mem frees device memory once, whether the collector's cleanup or a reclaim gets there first.
type mem struct {
	b    rt.Buffer
	done atomic.Bool
}

func (m *mem) free() {
	if m.done.CompareAndSwap(false, true) {
		m.b.Device().Free(m.b)
	}
}

const (
	largeBuffer = 1 << 20  // bytes from which a buffer is tracked
	gcAfter     = 64 << 20 // device bytes allocated between collections
)

// NewBuffer allocates n bytes on dev and frees them when the returned Buffer is collected.
func NewBuffer(dev rt.Device, n int) (*Buffer, error) {
	if n >= largeBuffer {
		reclaimDead(n)
	}
	m, err := dev.Alloc(n)
	if err != nil {
		return nil, fmt.Errorf("alloc %d bytes on %s: %w", n, dev.Name(), err)
	}
	b := &Buffer{Dev: dev, Mem: m}
	mm := &mem{b: m}
	runtime.AddCleanup(b, func(mm *mem) { mm.free() }, mm)
	if n >= largeBuffer {
		reclaim.Lock()
		reclaim.large = append(reclaim.large, tracked{weak.Make(b), mm})
		reclaim.Unlock()
	}
	return b, nil
}

// reclaimDead collects garbage and frees dead large buffers when enough was allocated.
func reclaimDead(n int) {
	reclaim.Lock()
	defer reclaim.Unlock()
	reclaim.sinceGC += n
	if reclaim.sinceGC < max(gcAfter, 2*n) {
		return
	}
	reclaim.sinceGC = 0
	runtime.GC()
	live := reclaim.large[:0]
	for _, t := range reclaim.large {
		if t.w.Value() == nil {
			t.m.free()
		} else if !t.m.done.Load() {
			live = append(live, t)
		}
	}
	clear(reclaim.large[len(live):])
	reclaim.large = live
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
