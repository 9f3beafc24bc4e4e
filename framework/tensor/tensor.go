// Package tensor is the framework's front end: a lazy Tensor with PyTorch-like methods.
//
// Every method builds graph nodes of primitive ops (package lazy) and computes nothing;
// Realize, ToSlice, Float32s, Item and friends schedule the graph into fused kernels and run
// them on the tensor's device. Binary ops broadcast as in NumPy and accept another *Tensor or
// a Go number.
//
// Shape errors (mismatched shapes, bad axes, bad dtypes) panic with an *Error naming the op and
// the shapes, like gonum does: they are programming mistakes. Callers who want an error
// instead wrap the code in Try. Running kernels (devices, compilers) returns errors.
package tensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
	rt "github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/schedule"
)

// Tensor is a lazy n-dimensional array. Each Tensor is the result of one primitive op applied
// to the tensors in Sources, which is the graph reverse-mode autograd walks; Grad and
// RequiresGrad are for autograd (filled by Backward).
type Tensor struct {
	node         *lazy.Node
	src          []*Tensor
	Grad         *Tensor
	RequiresGrad bool
	vjp          func(g *Tensor) []*Tensor // a composite op's own gradient rule, one per src (conv_grad.go)
}

// Error is the panic value of a shape, axis or dtype mistake.
type Error struct {
	Op  string
	Msg string
}

func (e *Error) Error() string { return "tensor: " + e.Op + ": " + e.Msg }

func fail(op, format string, args ...any) {
	panic(&Error{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// Try runs f and returns the *Error it panicked with, if any; other panics pass through.
func Try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	f()
	return nil
}

// Node is the lazy graph node holding this tensor's op, arg, dtype, shape and device.
func (t *Tensor) Node() *lazy.Node { return t.node }

// Sources are the tensors this one was computed from (nil for leaves and detached tensors).
func (t *Tensor) Sources() []*Tensor { return t.src }

// Op is the primitive op that produced the tensor.
func (t *Tensor) Op() lazy.Op { return t.node.Op }

// Shape is the tensor's shape (a copy).
func (t *Tensor) Shape() []int { return slices.Clone(t.node.Shape) }

// DType is the element type.
func (t *Tensor) DType() dtype.DType { return t.node.DType }

// Device is the name of the device the tensor lives on.
func (t *Tensor) Device() string { return t.node.Device }

// Ndim is the number of dims.
func (t *Tensor) Ndim() int { return len(t.node.Shape) }

// Numel is the number of elements.
func (t *Tensor) Numel() int { return t.node.Numel() }

// apply makes the tensor of one primitive op over srcs.
func apply(op lazy.Op, dt dtype.DType, shape []int, arg any, srcs ...*Tensor) *Tensor {
	n := &lazy.Node{Op: op, DType: dt, Arg: arg, Shape: slices.Clone(shape), Device: srcs[0].node.Device, Src: make([]*lazy.Node, len(srcs))}
	for i, s := range srcs {
		if s.node.Device != n.Device {
			fail(op.String(), "tensors on different devices %s and %s", n.Device, s.node.Device)
		}
		n.Src[i] = s.node
	}
	if noGrad.Load() > 0 { // inside NoGrad nothing remembers how it was made
		return &Tensor{node: n}
	}
	return &Tensor{node: n, src: srcs}
}

// Detach returns the same value cut off from the graph, so no gradient flows through it.
func (t *Tensor) Detach() *Tensor { return &Tensor{node: t.node} }

// Contiguous forces the value into its own buffer when realized instead of being fused
// into (and possibly recomputed by) every consumer.
func (t *Tensor) Contiguous() *Tensor {
	return apply(lazy.Contiguous, t.DType(), t.node.Shape, nil, t)
}

// Assign replaces t's value with v (cast to t's dtype), keeping t's identity, which is how
// optimizers update parameters. The shapes must match.
func (t *Tensor) Assign(v *Tensor) *Tensor {
	if !slices.Equal(t.node.Shape, v.node.Shape) {
		fail("Assign", "shape %v cannot take a value of shape %v", t.node.Shape, v.node.Shape)
	}
	v = v.Cast(t.DType())
	t.node, t.src = v.node, v.src
	return t
}

// Realize computes the tensor (and everything it needs) into a device buffer.
func (t *Tensor) Realize() error { return Realize(t) }

// Realize computes several tensors in one schedule, sharing work between them.
func Realize(ts ...*Tensor) error {
	nodes := make([]*lazy.Node, len(ts))
	for i, t := range ts {
		nodes[i] = t.node
	}
	return schedule.Realize(nodes...)
}

// --- creation ---

func defaultDevice() string { return rt.DefaultName() }

// Full is a tensor of shape filled with v (float32). It costs no memory until realized.
func Full(v float64, shape ...int) *Tensor {
	for _, d := range shape {
		if d < 0 {
			fail("Full", "negative dim in shape %v", shape)
		}
	}
	return &Tensor{node: &lazy.Node{Op: lazy.Const, DType: dtype.Float32, Arg: v, Shape: slices.Clone(shape), Device: defaultDevice()}}
}

// Zeros is Full(0, shape...).
func Zeros(shape ...int) *Tensor { return Full(0, shape...) }

// Ones is Full(1, shape...).
func Ones(shape ...int) *Tensor { return Full(1, shape...) }

// Scalar is a 0-dim float32 tensor.
func Scalar(v float64) *Tensor { return Full(v) }

// FullLike is a tensor shaped, typed and placed like t, filled with v.
func (t *Tensor) FullLike(v float64) *Tensor {
	return &Tensor{node: &lazy.Node{Op: lazy.Const, DType: t.DType(), Arg: castValue(v, t.DType()), Shape: t.Shape(), Device: t.Device()}}
}

// ZerosLike and OnesLike are FullLike(0) and FullLike(1).
func (t *Tensor) ZerosLike() *Tensor { return t.FullLike(0) }
func (t *Tensor) OnesLike() *Tensor  { return t.FullLike(1) }

// FromSlice makes a tensor from Go data: []float32, []float64 (stored as float32), []int32,
// []int64, []int (int64), []int8, []uint8 or []bool. With no shape it is 1-D; otherwise the
// shape must hold exactly len(data) elements.
func FromSlice(data any, shape ...int) *Tensor {
	var raw []byte
	var dt dtype.DType
	var n int
	switch d := data.(type) {
	case []float32:
		dt, n = dtype.Float32, len(d)
		for _, v := range d {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
	case []float64:
		dt, n = dtype.Float32, len(d)
		for _, v := range d {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v)))
		}
	case []int32:
		dt, n = dtype.Int32, len(d)
		for _, v := range d {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
		}
	case []int64:
		dt, n = dtype.Int64, len(d)
		for _, v := range d {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	case []int:
		dt, n = dtype.Int64, len(d)
		for _, v := range d {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	case []int8:
		dt, n = dtype.Int8, len(d)
		for _, v := range d {
			raw = append(raw, byte(v))
		}
	case []uint8:
		dt, n = dtype.Uint8, len(d)
		raw = slices.Clone(d)
	case []bool:
		dt, n = dtype.Bool, len(d)
		for _, v := range d {
			raw = append(raw, b2u(v))
		}
	default:
		fail("FromSlice", "unsupported data type %T", data)
	}
	if shape == nil {
		shape = []int{n}
	}
	return FromBytes(dt, raw, shape...)
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// FromBytes makes a tensor from raw little-endian element bytes of type dt (the layout of
// safetensors and .npy files). The bytes are copied to the device when first realized.
func FromBytes(dt dtype.DType, raw []byte, shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		if d < 0 {
			fail("FromBytes", "negative dim in shape %v", shape)
		}
		n *= d
	}
	if n*dt.Size() != len(raw) {
		fail("FromBytes", "%d bytes of %s do not fill shape %v (%d elements)", len(raw), dt, shape, n)
	}
	return &Tensor{node: &lazy.Node{Op: lazy.Load, DType: dt, Arg: slices.Clone(raw), Shape: slices.Clone(shape), Device: defaultDevice()}}
}

// Arange is start, start+step, … up to (not including) stop: int32 when all three are whole
// numbers, float32 otherwise.
func Arange(start, stop, step float64) *Tensor {
	if step == 0 {
		fail("Arange", "step is zero")
	}
	n := max(0, int(math.Ceil((stop-start)/step)))
	whole := start == math.Trunc(start) && step == math.Trunc(step)
	if whole {
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(start + float64(i)*step)
		}
		return FromSlice(v)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(start + float64(i)*step)
	}
	return FromSlice(v)
}

// Eye is the n×n float32 identity, built from two aranges and a comparison.
func Eye(n int) *Tensor {
	a := Arange(0, float64(n), 1)
	return a.Unsqueeze(1).Eq(a.Unsqueeze(0)).Cast(dtype.Float32)
}

var rng = struct {
	sync.Mutex
	r *rand.Rand
}{r: rand.New(rand.NewPCG(0, 0))}

// ManualSeed reseeds the generator behind Rand and Randn (deterministic from the start, as in
// PyTorch, until reseeded).
func ManualSeed(seed uint64) {
	rng.Lock()
	rng.r = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rng.Unlock()
}

// Rand is uniform in [0, 1), float32.
func Rand(shape ...int) *Tensor {
	v := make([]float32, prod(shape))
	rng.Lock()
	for i := range v {
		v[i] = rng.r.Float32()
	}
	rng.Unlock()
	return FromSlice(v, shape...)
}

// Randn is standard normal, float32.
func Randn(shape ...int) *Tensor {
	v := make([]float32, prod(shape))
	rng.Lock()
	for i := range v {
		v[i] = float32(rng.r.NormFloat64())
	}
	rng.Unlock()
	return FromSlice(v, shape...)
}

func prod(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// To returns the tensor on another device (realizing it and copying through the host).
func (t *Tensor) To(device string) (*Tensor, error) {
	if strings.EqualFold(device, t.Device()) {
		return t, nil
	}
	if _, err := rt.Get(device); err != nil {
		return nil, err
	}
	raw, err := t.Data()
	if err != nil {
		return nil, err
	}
	out := FromBytes(t.DType(), raw, t.node.Shape...)
	out.node.Device = strings.ToUpper(device)
	return out, nil
}

// --- data out ---

// Data realizes the tensor and returns its elements as little-endian bytes in row-major order.
func (t *Tensor) Data() ([]byte, error) {
	if t.node.Op == lazy.Load && !t.node.Realized() {
		return slices.Clone(t.node.Arg.([]byte)), nil
	}
	if err := t.Realize(); err != nil {
		return nil, err
	}
	out := make([]byte, t.Numel()*t.DType().Size())
	if len(out) == 0 {
		return out, nil
	}
	b := t.node.Buf
	if err := b.Dev.CopyOut(out, b.Mem); err != nil {
		return nil, fmt.Errorf("copy %v %s out of %s: %w", t.node.Shape, t.DType(), b.Dev.Name(), err)
	}
	return out, nil
}

// ToSlice returns the elements as a Go slice of the natural type: []float32 (also for the
// 16-bit floats), []int32, []int64, []int8, []uint8 or []bool.
func (t *Tensor) ToSlice() (any, error) {
	raw, err := t.Data()
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	n := t.Numel()
	switch t.DType() {
	case dtype.Float32, dtype.Float16, dtype.BFloat16:
		out := make([]float32, n)
		for i := range out {
			switch t.DType() {
			case dtype.Float32:
				out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
			case dtype.Float16:
				out[i] = dtype.HalfToFloat32(le.Uint16(raw[2*i:]))
			default:
				out[i] = dtype.BFloat16ToFloat32(le.Uint16(raw[2*i:]))
			}
		}
		return out, nil
	case dtype.Int32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case dtype.Int64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case dtype.Int8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case dtype.Bool:
		out := make([]bool, n)
		for i := range out {
			out[i] = raw[i] != 0
		}
		return out, nil
	}
	return raw, nil
}

// Float64s returns the elements converted to float64, whatever the dtype.
func (t *Tensor) Float64s() ([]float64, error) {
	s, err := t.ToSlice()
	if err != nil {
		return nil, err
	}
	switch s := s.(type) {
	case []float32:
		return conv[float32](s), nil
	case []int32:
		return conv[int32](s), nil
	case []int64:
		return conv[int64](s), nil
	case []int8:
		return conv[int8](s), nil
	case []uint8:
		return conv[uint8](s), nil
	case []bool:
		out := make([]float64, len(s))
		for i, b := range s {
			out[i] = float64(b2u(b))
		}
		return out, nil
	}
	return nil, errors.New("unreachable")
}

func conv[T int32 | int64 | int8 | uint8 | float32](s []T) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// Float32s returns the elements converted to float32.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.DType().IsFloat() {
		s, err := t.ToSlice()
		if err != nil {
			return nil, err
		}
		return s.([]float32), nil
	}
	f, err := t.Float64s()
	out := make([]float32, len(f))
	for i, v := range f {
		out[i] = float32(v)
	}
	return out, err
}

// Int64s returns the elements converted to int64 (floats truncate).
func (t *Tensor) Int64s() ([]int64, error) {
	if t.DType() == dtype.Int64 {
		s, err := t.ToSlice()
		if err != nil {
			return nil, err
		}
		return s.([]int64), nil
	}
	f, err := t.Float64s()
	out := make([]int64, len(f))
	for i, v := range f {
		out[i] = int64(v)
	}
	return out, err
}

// Item returns the single element of a one-element tensor as float64.
func (t *Tensor) Item() (float64, error) {
	if t.Numel() != 1 {
		return 0, fmt.Errorf("tensor: Item of a tensor with %d elements (shape %v)", t.Numel(), t.node.Shape)
	}
	f, err := t.Float64s()
	if err != nil {
		return 0, err
	}
	return f[0], nil
}

// String realizes the tensor and formats it like PyTorch does, with nested brackets.
func (t *Tensor) String() string {
	f, err := t.Float64s()
	if err != nil {
		return fmt.Sprintf("tensor(<error: %v>)", err)
	}
	var b strings.Builder
	b.WriteString("tensor(")
	var rec func(dim, off int)
	rec = func(dim, off int) {
		if dim == t.Ndim() {
			b.WriteString(strconv.FormatFloat(f[off], 'g', -1, 32))
			return
		}
		b.WriteByte('[')
		n, stride := t.node.Shape[dim], prod(t.node.Shape[dim+1:])
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			if len(f) > 1000 && n > 6 && i == 3 { // summarise big tensors as NumPy does
				b.WriteString("...")
				i = n - 4
				continue
			}
			rec(dim+1, off+i*stride)
		}
		b.WriteByte(']')
	}
	if len(f) > 0 || t.Ndim() > 0 {
		rec(0, 0)
	}
	fmt.Fprintf(&b, ", dtype=%s)", t.DType())
	return b.String()
}
