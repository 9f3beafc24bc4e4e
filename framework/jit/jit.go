// Package jit replays a function's kernels without re-running the framework around them, like
// tinygrad's TinyJit: the first call runs the function normally (compiling its kernels), the
// second records the launches it makes into a CUDA graph, and later calls with inputs of the
// same shapes and dtypes copy the inputs into the recorded input buffers and replay the graph
// with one driver call — no graph building, scheduling, code generation or per-kernel launch
// cost. Devices other than CUDA, or a function whose run cannot be recorded (one that copies
// from the host, say), simply run the function every time.
package jit

import (
	"fmt"

	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Func is a function under the JIT. The tensor a replayed call returns is the same one every
// time, overwritten by each call: copy it (Contiguous) to keep a result across calls.
type Func struct {
	fn     func(in ...*tensor.Tensor) *tensor.Tensor
	calls  int
	key    string
	ins    []*tensor.Tensor // the recorded inputs' own buffers
	out    *tensor.Tensor
	graph  *runtime.Graph
	dev    *runtime.CUDA
	direct bool // recording failed or the device is not CUDA: always run fn
}

// New wraps fn. fn must compute its result only from its inputs and from tensors that stay
// alive and unchanged (weights it closes over are read in place on every replay).
func New(fn func(in ...*tensor.Tensor) *tensor.Tensor) *Func { return &Func{fn: fn} }

// Replaying reports whether calls are served from the recorded graph.
func (f *Func) Replaying() bool { return f.graph != nil }

// Close releases the recorded graph and the memory it holds.
func (f *Func) Close() {
	if f.graph != nil {
		f.graph.Close()
		f.graph = nil
	}
}

func signature(in []*tensor.Tensor) string {
	s := ""
	for _, t := range in {
		s += fmt.Sprintf("%s%v%s;", t.DType(), t.Shape(), t.Device())
	}
	return s
}

// Call runs the function on in and returns its realized result.
func (f *Func) Call(in ...*tensor.Tensor) (*tensor.Tensor, error) {
	key := signature(in)
	if f.key != key { // new shapes: start over
		f.Close()
		f.key, f.calls, f.direct, f.ins, f.out = key, 0, false, nil, nil
	}
	f.calls++
	switch {
	case f.direct || f.calls == 1:
		if f.calls == 1 {
			f.direct = !f.pickDevice(in)
		}
		out := f.fn(in...)
		return out, out.Realize()
	case f.graph == nil:
		if err := f.record(in); err != nil {
			f.direct = true
			out := f.fn(in...)
			return out, out.Realize()
		}
		return f.out, nil
	}
	if err := f.load(in); err != nil {
		return nil, err
	}
	if _, err := f.graph.Launch(false); err != nil {
		return nil, fmt.Errorf("jit replay: %w", err)
	}
	return f.out, nil
}

// pickDevice reports whether every input is on one CUDA device, remembering it.
func (f *Func) pickDevice(in []*tensor.Tensor) bool {
	for _, t := range in {
		if t.Device() != "CUDA" {
			return false
		}
	}
	d, err := runtime.Get("CUDA")
	if err != nil {
		return false
	}
	f.dev = d.(*runtime.CUDA)
	return len(in) > 0
}

// memory returns the realized, contiguous buffer of t.
func memory(t *tensor.Tensor) (runtime.Buffer, error) {
	if err := t.Realize(); err != nil {
		return nil, err
	}
	b := t.Node().Buf
	if b == nil || b.Mem.Size() != t.Numel()*t.DType().Size() {
		return nil, fmt.Errorf("jit: input %v %s is a view of a larger buffer; pass t.Contiguous()", t.Shape(), t.DType())
	}
	return b.Mem, nil
}

// record gives each input a buffer of its own, then records fn's kernels on those buffers.
func (f *Func) record(in []*tensor.Tensor) error {
	f.ins = nil
	for _, t := range in {
		c := t.Mul(1).Contiguous() // a fresh buffer the replays own
		if err := c.Realize(); err != nil {
			return err
		}
		cm, err := memory(c)
		if err != nil {
			return err
		}
		if tm, err := memory(t); err != nil || tm.Ptr() == cm.Ptr() {
			return fmt.Errorf("jit: could not give input %v its own buffer (%v)", t.Shape(), err)
		}
		f.ins = append(f.ins, c)
	}
	var out *tensor.Tensor
	g, err := f.dev.Capture(func() error {
		var rerr error
		if terr := tensor.Try(func() { out = f.fn(f.ins...); rerr = out.Realize() }); terr != nil {
			return terr
		}
		return rerr
	})
	if err != nil {
		return fmt.Errorf("jit: record: %w", err)
	}
	f.graph, f.out = g, out
	if err := f.load(in); err != nil {
		return err
	}
	_, err = g.Launch(false)
	return err
}

// load copies the call's inputs into the recorded input buffers (device to device, queued
// before the replay on the same stream).
func (f *Func) load(in []*tensor.Tensor) error {
	for i, t := range in {
		src, err := memory(t)
		if err != nil {
			return err
		}
		dst, _ := memory(f.ins[i])
		if err := f.dev.Copy(dst, src); err != nil {
			return fmt.Errorf("jit: copy input %d: %w", i, err)
		}
	}
	return nil
}
