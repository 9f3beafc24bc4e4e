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

	"github.com/gradforge/gradforge/framework/lazy"
	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/schedule"
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
	direct bool  // recording failed or the device is not CUDA: always run fn
	err    error // why recording failed
	state  []*tensor.Tensor
}

// New wraps fn. fn must compute its result only from its inputs and from tensors that stay
// alive and unchanged (weights it closes over are read in place on every replay).
func New(fn func(in ...*tensor.Tensor) *tensor.Tensor) *Func { return &Func{fn: fn} }

// Replaying reports whether calls are served from the recorded graph.
func (f *Func) Replaying() bool { return f.graph != nil }

// Err says why the function could not be recorded (nil while it could, or has not tried).
func (f *Func) Err() error { return f.err }

// Updates names tensors fn reassigns (an optimizer's parameters): each call realizes them
// with the result. Assign gives a tensor a new buffer, but a recorded graph reads the buffers
// it saw; so the recording copies, inside the graph, each new value back into the buffer the
// tensor had before the call, and points the tensor at that buffer again. Every replay then
// starts from the last one's values.
func (f *Func) Updates(state ...*tensor.Tensor) *Func {
	f.state = state
	return f
}

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
		return f.run(in)
	case f.graph == nil:
		if f.err = f.record(in); f.err != nil {
			f.direct = true
			return f.run(in)
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

// run calls fn and realizes its result and the state.
func (f *Func) run(in []*tensor.Tensor) (*tensor.Tensor, error) {
	out := f.fn(in...)
	return out, tensor.Realize(append([]*tensor.Tensor{out}, f.state...)...)
}

// keep copies each state tensor's new value into the buffer it had before the call, olds,
// and points the tensor at that buffer again (see Updates).
func (f *Func) keep(olds []*tensor.Tensor) error {
	for i, s := range f.state {
		dst, err := memory(olds[i])
		if err != nil {
			return err
		}
		src, err := memory(s)
		if err != nil {
			return err
		}
		if src.Ptr() == dst.Ptr() { // fn left it alone
			continue
		}
		if err := f.dev.Copy(dst, src); err != nil {
			return fmt.Errorf("jit: copy state %d back: %w", i, err)
		}
		s.Assign(olds[i])
	}
	return nil
}

// upload copies to the device the host data that the graphs of ts read (nn.CrossEntropy's
// class indices, say, made anew by every call): a capture cannot copy from the host.
func upload(ts []*tensor.Tensor) error {
	seen := map[*lazy.Node]bool{}
	var loads []*lazy.Node
	var walk func(n *lazy.Node)
	walk = func(n *lazy.Node) {
		if seen[n] || n.Realized() {
			return
		}
		seen[n] = true
		if n.Op == lazy.Load {
			loads = append(loads, n)
		}
		for _, s := range n.Src {
			walk(s)
		}
	}
	for _, t := range ts {
		walk(t.Node())
	}
	return schedule.Realize(loads...)
}

func detached(ts []*tensor.Tensor) []*tensor.Tensor {
	d := make([]*tensor.Tensor, len(ts))
	for i, t := range ts {
		d[i] = t.Detach()
	}
	return d
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
	olds := detached(f.state)
	all := append([]*tensor.Tensor{nil}, f.state...)
	err := tensor.Try(func() { out = f.fn(f.ins...) })
	if err == nil {
		all[0] = out
		err = upload(all)
	}
	var g *runtime.Graph
	if err == nil {
		g, err = f.dev.Capture(func() error {
			var rerr error
			if terr := tensor.Try(func() {
				if rerr = tensor.Realize(all...); rerr == nil {
					rerr = f.keep(olds)
				}
			}); terr != nil {
				return terr
			}
			return rerr
		})
	}
	if err != nil {
		for i, s := range f.state { // nothing of the recorded call ran: its updates are void
			s.Assign(olds[i])
		}
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
