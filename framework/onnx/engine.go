package onnx

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// RunOptions configures Run.
type RunOptions struct {
	Device string // framework device name; "" = the default ($DEVICE or CPU)
}

// val is what flows along a graph edge while a graph runs: a lazy framework tensor with the
// ONNX element type it stands for, a host string tensor, a sequence, or an optional.
type val struct {
	t    *tensor.Tensor
	dt   DataType
	host *Tensor // the value on the host when it is known without running anything
	str  *Tensor // string tensors live on the host only
	seq  []*val
	kind TypeKind // KindTensor (default), KindSequence or KindOptional
	none bool     // an optional without a value
}

// env is one graph's scope: values by name, with the enclosing graph's scope behind it.
type env struct {
	ctx    context.Context
	model  *Model
	device string
	vals   map[string]*val
	outer  *env
	opsets map[string]int64
	funcs  map[string]*Function
}

func (e *env) get(name string) (*val, bool) {
	for s := e; s != nil; s = s.outer {
		if v, ok := s.vals[name]; ok {
			return v, true
		}
	}
	return nil, false
}

// Run evaluates m's graph on inputs (one per graph input that is not an initializer, in
// order) and returns the graph outputs as host values. The graph is built lazily from
// framework tensor ops and realized once at the end, so it fuses and runs on any device.
func Run(ctx context.Context, m *Model, inputs []Value, opt RunOptions) ([]Value, error) {
	e := &env{ctx: ctx, model: m, device: opt.Device, vals: map[string]*val{}, opsets: map[string]int64{}, funcs: map[string]*Function{}}
	for _, o := range m.Opsets {
		e.opsets[normDomain(o.Domain)] = o.Version
	}
	for _, f := range m.Functions {
		e.funcs[f.Domain+":"+f.Name] = f
	}
	g := m.Graph
	for _, t := range g.Initializers {
		v, err := e.fromHost(t)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.Name, err)
		}
		e.vals[t.Name] = v
	}
	for _, s := range g.SparseInitializers {
		d, err := densify(s)
		if err != nil {
			return nil, err
		}
		v, err := e.fromHost(d)
		if err != nil {
			return nil, fmt.Errorf("sparse initializer %q: %w", d.Name, err)
		}
		e.vals[d.Name] = v
	}
	i := 0
	for _, vi := range g.Inputs {
		if _, isInit := e.vals[vi.Name]; isInit {
			continue
		}
		if i >= len(inputs) {
			return nil, fmt.Errorf("graph input %q (%v) not given: %d inputs for the graph", vi.Name, vi.Type, len(inputs))
		}
		v, err := e.fromValue(inputs[i])
		if err != nil {
			return nil, fmt.Errorf("graph input %q: %w", vi.Name, err)
		}
		e.vals[vi.Name] = v
		i++
	}
	outs, err := e.runGraph(g, nil)
	if err != nil {
		return nil, err
	}
	return e.toHostAll(outs, g.Outputs)
}

// runGraph runs g's nodes in e (the caller has bound g's inputs) and returns its outputs.
func (e *env) runGraph(g *Graph, _ []*val) ([]*val, error) {
	for _, n := range g.Nodes {
		if err := e.ctx.Err(); err != nil {
			return nil, err
		}
		if err := e.runNode(n); err != nil {
			return nil, err
		}
	}
	outs := make([]*val, len(g.Outputs))
	for i, o := range g.Outputs {
		v, ok := e.get(o.Name)
		if !ok {
			return nil, fmt.Errorf("graph output %q is never produced", o.Name)
		}
		outs[i] = v
	}
	return outs, nil
}

// opError names the node, op and opset of a failure.
func (e *env) opError(n *Node, err error) error {
	dom := n.Domain
	if dom == "" {
		dom = "ai.onnx"
	}
	return fmt.Errorf("node %q: op %s (%s opset %d): %w", n.Name, n.OpType, dom, e.opsets[normDomain(n.Domain)], err)
}

// ErrUnsupported marks ops, attributes and dtypes the importer does not handle.
var ErrUnsupported = fmt.Errorf("not supported")

func (e *env) runNode(n *Node) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = e.opError(n, fmt.Errorf("%v", p))
		}
	}()
	in := make([]*val, len(n.Inputs))
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		v, ok := e.get(name)
		if !ok {
			return e.opError(n, fmt.Errorf("input %q is not defined", name))
		}
		in[i] = v
	}
	var outs []*val
	if f, ok := e.funcs[n.Domain+":"+n.OpType]; ok {
		outs, err = e.callFunction(f, n, in)
	} else {
		op, ok := ops[n.OpType]
		if d := normDomain(n.Domain); d != "" {
			op, ok = domainOps[d+":"+n.OpType]
		}
		if !ok {
			return e.opError(n, ErrUnsupported)
		}
		outs, err = op(&call{e: e, n: n, opset: e.opsets[normDomain(n.Domain)]}, in)
	}
	if err != nil {
		return e.opError(n, err)
	}
	for i, name := range n.Outputs {
		if name == "" || i >= len(outs) {
			continue
		}
		if outs[i] == nil {
			return e.opError(n, fmt.Errorf("output %d (%q) was not produced", i, name))
		}
		e.vals[name] = outs[i]
	}
	return nil
}

// callFunction expands a model-local function: its body runs in a fresh scope with the
// node's attributes standing in for the function's attribute references.
func (e *env) callFunction(f *Function, n *Node, in []*val) ([]*val, error) {
	sub := &env{ctx: e.ctx, model: e.model, device: e.device, vals: map[string]*val{}, opsets: e.opsets, funcs: e.funcs}
	for i, name := range f.Inputs {
		if i < len(in) && in[i] != nil {
			sub.vals[name] = in[i]
		}
	}
	attrs := map[string]*Attribute{}
	for _, a := range f.AttrDefaults {
		attrs[a.Name] = a
	}
	for _, a := range n.Attrs {
		attrs[a.Name] = a
	}
	for _, fn := range f.Nodes {
		c := *fn
		c.Attrs = nil
		for _, a := range fn.Attrs {
			if a.RefAttrName != "" {
				ref, ok := attrs[a.RefAttrName]
				if !ok {
					continue
				}
				r := *ref
				r.Name = a.Name
				a = &r
			}
			c.Attrs = append(c.Attrs, a)
		}
		if err := sub.runNode(&c); err != nil {
			return nil, fmt.Errorf("function %s: %w", f.Name, err)
		}
	}
	outs := make([]*val, len(f.Outputs))
	for i, name := range f.Outputs {
		outs[i] = sub.vals[name]
	}
	return outs, nil
}

// storageType is the framework dtype that holds an ONNX type. Types the framework lacks are
// held in a wider one (float64 in float32, int16/uint16 in int32, uint32/uint64 in int64)
// and converted back when read out.
func storageType(dt DataType) (dtype.DType, error) {
	switch dt {
	case Float, Double:
		return dtype.Float32, nil
	case Float16:
		return dtype.Float16, nil
	case BFloat16:
		return dtype.BFloat16, nil
	case Int8, Int4, Int2:
		return dtype.Int8, nil
	case Uint8, Uint4, Uint2:
		return dtype.Uint8, nil
	case Int16, Uint16, Int32:
		return dtype.Int32, nil
	case Int64, Uint32, Uint64:
		return dtype.Int64, nil
	case Bool:
		return dtype.Bool, nil
	case Float8E4M3FN, Float8E4M3FNZ, Float8E5M2, Float8E5M2FNZ, Float8E8M0, Float4E2M1:
		return dtype.Float32, nil
	}
	return 0, fmt.Errorf("element type %v: %w", dt, ErrUnsupported)
}

// fromHost loads a host tensor as a lazy framework tensor in its storage type.
func (e *env) fromHost(h *Tensor) (*val, error) {
	if h.Type == String {
		return &val{dt: String, str: h, host: h}, nil
	}
	st, err := storageType(h.Type)
	if err != nil {
		return nil, err
	}
	var raw []byte
	n := h.Len()
	switch {
	case h.Type.Size() == st.Size() && h.Type != Uint32 && h.Type != Int16 && h.Type != Uint16 && !isSmallFloat(h.Type):
		raw = h.Raw
	default:
		raw = make([]byte, n*st.Size())
		if st == dtype.Float32 {
			f, err := h.Float64s()
			if err != nil {
				return nil, err
			}
			for i, x := range f {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(x)))
			}
		} else {
			iv, err := h.Int64s()
			if err != nil {
				return nil, err
			}
			for i, x := range iv {
				switch st.Size() {
				case 1:
					raw[i] = byte(x)
				case 4:
					binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
				case 8:
					binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
				}
			}
		}
	}
	t := tensor.FromBytes(st, raw, h.Shape()...)
	if e.device != "" {
		if t, err = t.To(e.device); err != nil {
			return nil, err
		}
	}
	return &val{t: t, dt: h.Type, host: h}, nil
}

func isSmallFloat(dt DataType) bool {
	switch dt {
	case Float8E4M3FN, Float8E4M3FNZ, Float8E5M2, Float8E5M2FNZ, Float8E8M0, Float4E2M1:
		return true
	}
	return false
}

// fromValue converts a test-data value (tensor, sequence, optional) into a val.
func (e *env) fromValue(v Value) (*val, error) {
	switch x := v.(type) {
	case *Tensor:
		return e.fromHost(x)
	case *Sequence:
		s := &val{kind: KindSequence, seq: []*val{}}
		for _, t := range x.Tensors {
			tv, err := e.fromHost(t)
			if err != nil {
				return nil, err
			}
			s.seq = append(s.seq, tv)
		}
		for _, q := range x.Sequences {
			qv, err := e.fromValue(q)
			if err != nil {
				return nil, err
			}
			s.seq = append(s.seq, qv)
		}
		return s, nil
	case *Optional:
		switch {
		case x.Tensor != nil:
			tv, err := e.fromHost(x.Tensor)
			if err != nil {
				return nil, err
			}
			return &val{kind: KindOptional, seq: []*val{tv}}, nil
		case x.Sequence != nil:
			sv, err := e.fromValue(x.Sequence)
			if err != nil {
				return nil, err
			}
			return &val{kind: KindOptional, seq: []*val{sv}}, nil
		}
		return &val{kind: KindOptional, none: true}, nil
	}
	return nil, fmt.Errorf("cannot feed %T", v)
}

// toHostAll realizes all outputs in one schedule, then converts them to host values.
func (e *env) toHostAll(outs []*val, infos []*ValueInfo) ([]Value, error) {
	var ts []*tensor.Tensor
	var collect func(v *val)
	collect = func(v *val) {
		if v.t != nil && v.host == nil {
			ts = append(ts, v.t)
		}
		for _, s := range v.seq {
			collect(s)
		}
	}
	for _, v := range outs {
		collect(v)
	}
	if len(ts) > 0 {
		if err := tensor.Realize(ts...); err != nil {
			return nil, fmt.Errorf("realize outputs: %w", err)
		}
	}
	res := make([]Value, len(outs))
	for i, v := range outs {
		h, err := v.value()
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", infos[i].Name, err)
		}
		res[i] = h
	}
	return res, nil
}

func (v *val) value() (Value, error) {
	switch v.kind {
	case KindSequence:
		s := &Sequence{ElemType: 1}
		for _, x := range v.seq {
			h, err := x.value()
			if err != nil {
				return nil, err
			}
			switch h := h.(type) {
			case *Tensor:
				s.Tensors = append(s.Tensors, h)
			case *Sequence:
				s.ElemType = 3
				s.Sequences = append(s.Sequences, h)
			}
		}
		return s, nil
	case KindOptional:
		o := &Optional{}
		if !v.none {
			h, err := v.seq[0].value()
			if err != nil {
				return nil, err
			}
			switch h := h.(type) {
			case *Tensor:
				o.Tensor, o.ElemType = h, 1
			case *Sequence:
				o.Sequence, o.ElemType = h, 3
			}
		}
		return o, nil
	}
	return v.hostTensor()
}

// hostTensor reads a tensor val back to the host in its ONNX type.
func (v *val) hostTensor() (*Tensor, error) {
	if v.host != nil {
		return v.host, nil
	}
	if v.str != nil {
		return v.str, nil
	}
	if v.t == nil {
		return nil, fmt.Errorf("value is not a tensor")
	}
	raw, err := v.t.Data()
	if err != nil {
		return nil, err
	}
	h := &Tensor{Type: v.dt, Dims: make([]int64, v.t.Ndim())}
	for i, d := range v.t.Shape() {
		h.Dims[i] = int64(d)
	}
	st := v.t.DType()
	if st.Size() == v.dt.Size() && v.dt != Uint32 && v.dt != Int16 && v.dt != Uint16 && v.dt != Double && !isSmallFloat(v.dt) {
		h.Raw = raw
		v.host = h
		return h, nil
	}
	n := v.t.Numel()
	h.Raw = make([]byte, n*v.dt.Size())
	if st == dtype.Float32 {
		for i := 0; i < n; i++ {
			x := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			switch v.dt {
			case Double:
				binary.LittleEndian.PutUint64(h.Raw[8*i:], math.Float64bits(float64(x)))
			default:
				if !isSmallFloat(v.dt) {
					return nil, fmt.Errorf("cannot read %v back from %v", v.dt, st)
				}
				h.Raw[i] = encodeSmallFloat(v.dt, float64(x), false) // already rounded in the graph
			}
		}
		v.host = h
		return h, nil
	}
	for i := 0; i < n; i++ {
		var x uint64
		switch st.Size() {
		case 1:
			x = uint64(raw[i])
		case 4:
			x = uint64(binary.LittleEndian.Uint32(raw[4*i:]))
		case 8:
			x = binary.LittleEndian.Uint64(raw[8*i:])
		}
		p := h.Raw[i*v.dt.Size():]
		switch v.dt.Size() {
		case 1:
			p[0] = byte(x)
		case 2:
			binary.LittleEndian.PutUint16(p, uint16(x))
		case 4:
			binary.LittleEndian.PutUint32(p, uint32(x))
		case 8:
			binary.LittleEndian.PutUint64(p, x)
		}
	}
	v.host = h
	return h, nil
}

// encodeSmallFloat rounds x to the nearest value of an 8- or 4-bit float format (ties to
// even) and returns its bits; saturate clamps out-of-range values to the largest finite one.
func encodeSmallFloat(dt DataType, x float64, saturate bool) byte {
	best, bestD := byte(0), math.Inf(1)
	nbits := 8
	if dt == Float4E2M1 {
		nbits = 4
	}
	if math.IsNaN(x) {
		for b := 0; b < 1<<nbits; b++ {
			if math.IsNaN(smallFloat(dt, byte(b))) {
				return byte(b)
			}
		}
		return 0
	}
	if math.IsInf(x, 0) { // an infinity the format has is kept
		for b := 0; b < 1<<nbits; b++ {
			if smallFloat(dt, byte(b)) == x {
				return byte(b)
			}
		}
	}
	maxFinite := 0.0
	for b := 0; b < 1<<nbits; b++ {
		f := smallFloat(dt, byte(b))
		if !math.IsInf(f, 0) && !math.IsNaN(f) {
			maxFinite = math.Max(maxFinite, f)
		}
	}
	if math.Abs(x) > maxFinite && !math.IsInf(x, 0) || math.IsInf(x, 0) && saturate {
		if saturate || !hasInf(dt) {
			if !saturate && !hasInf(dt) {
				for b := 0; b < 1<<nbits; b++ {
					if math.IsNaN(smallFloat(dt, byte(b))) {
						return byte(b)
					}
				}
			}
			x = math.Copysign(maxFinite, x)
		}
	}
	for b := 0; b < 1<<nbits; b++ {
		f := smallFloat(dt, byte(b))
		if math.IsNaN(f) {
			continue
		}
		d := math.Abs(f - x)
		if d < bestD || d == bestD && b&1 == 0 && (math.Signbit(f) == math.Signbit(x)) {
			best, bestD = byte(b), d
		}
	}
	return best
}

func hasInf(dt DataType) bool { return dt == Float8E5M2 }

// densify turns a sparse initializer into a dense tensor on the host.
func densify(s *SparseTensor) (*Tensor, error) {
	n, err := elementCount(s.Dims)
	if err != nil {
		return nil, err
	}
	out := &Tensor{Name: s.Values.Name, Type: s.Values.Type, Dims: s.Dims, Raw: make([]byte, n*s.Values.Type.Size())}
	idx, err := s.Indices.Int64s()
	if err != nil {
		return nil, err
	}
	size := s.Values.Type.Size()
	nv := s.Values.Len()
	if len(idx) == nv*len(s.Dims) && len(s.Dims) > 1 { // [NNZ, rank] coordinates
		lin := make([]int64, nv)
		for i := range lin {
			for d := range s.Dims {
				lin[i] = lin[i]*s.Dims[d] + idx[i*len(s.Dims)+d]
			}
		}
		idx = lin
	}
	if len(idx) != nv {
		return nil, fmt.Errorf("sparse tensor %q: %d indices for %d values", out.Name, len(idx), nv)
	}
	for i, j := range idx {
		if j < 0 || j >= int64(n) {
			return nil, fmt.Errorf("sparse tensor %q: index %d outside %v", out.Name, j, s.Dims)
		}
		copy(out.Raw[int(j)*size:], s.Values.Raw[i*size:(i+1)*size])
	}
	return out, nil
}

// call is one node being evaluated.
type call struct {
	e     *env
	n     *Node
	opset int64
}

func (c *call) attr(name string) *Attribute { return c.n.Attr(name) }

func (c *call) int(name string, def int64) int64 {
	if a := c.attr(name); a != nil {
		return a.I
	}
	return def
}

func (c *call) float(name string, def float64) float64 {
	if a := c.attr(name); a != nil {
		return float64(a.F)
	}
	return def
}

func (c *call) str(name, def string) string {
	if a := c.attr(name); a != nil {
		return string(a.S)
	}
	return def
}

func (c *call) ints(name string) ([]int, bool) {
	a := c.attr(name)
	if a == nil {
		return nil, false
	}
	out := make([]int, len(a.Ints))
	for i, x := range a.Ints {
		out[i] = int(x)
	}
	return out, true
}

func (c *call) floats(name string) []float64 {
	a := c.attr(name)
	if a == nil {
		return nil
	}
	out := make([]float64, len(a.Floats))
	for i, x := range a.Floats {
		out[i] = float64(x)
	}
	return out
}

// unsupported reports an attribute value or input kind the importer lacks.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsupported)
}

// hostInts reads a (small) integer tensor's values, running the graph behind it if needed.
func (v *val) hostInts() []int {
	h, err := v.hostTensor()
	if err != nil {
		panic(err)
	}
	iv, err := h.Int64s()
	if err != nil {
		panic(err)
	}
	out := make([]int, len(iv))
	for i, x := range iv {
		out[i] = int(x)
	}
	return out
}

// hostFloats reads a tensor's values as float64.
func (v *val) hostFloats() []float64 {
	h, err := v.hostTensor()
	if err != nil {
		panic(err)
	}
	f, err := h.Float64s()
	if err != nil {
		panic(err)
	}
	return f
}

// tv wraps a framework tensor as a val of ONNX type dt, casting to dt's storage type.
func tv(t *tensor.Tensor, dt DataType) *val {
	st, err := storageType(dt)
	if err != nil {
		panic(err)
	}
	return &val{t: t.Cast(st), dt: dt}
}

// same wraps t with x's ONNX type.
func same(t *tensor.Tensor, x *val) *val { return tv(t, x.dt) }

// konst makes a host-known int64 tensor of the given shape.
func (c *call) konst(vals []int64, shape ...int) *val {
	h := &Tensor{Type: Int64, Dims: make([]int64, len(shape))}
	for i, d := range shape {
		h.Dims[i] = int64(d)
	}
	if shape == nil {
		h.Dims = []int64{int64(len(vals))}
	}
	h.Raw = make([]byte, 8*len(vals))
	for i, x := range vals {
		binary.LittleEndian.PutUint64(h.Raw[8*i:], uint64(x))
	}
	v, err := c.e.fromHost(h)
	if err != nil {
		panic(err)
	}
	return v
}

// slice is a tensor from Go data on the run's device.
func (c *call) slice(data any, shape ...int) *tensor.Tensor {
	t := tensor.FromSlice(data, shape...)
	if c.e.device != "" {
		var err error
		if t, err = t.To(c.e.device); err != nil {
			panic(err)
		}
	}
	return t
}

// arange is int64 0..n-1 on the run's device.
func (c *call) arange(n int) *tensor.Tensor {
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(i)
	}
	return c.slice(v, n)
}

// opFunc implements one ONNX op on already evaluated inputs (nil for omitted ones).
type opFunc func(c *call, in []*val) ([]*val, error)

var ops = map[string]opFunc{}

func one(v *val) ([]*val, error) { return []*val{v}, nil }

func normAxis(a, n int) int {
	if a < 0 {
		a += n
	}
	if a < 0 || a >= max(n, 1) {
		panic(fmt.Sprintf("axis %d out of range for rank %d", a, n))
	}
	return a
}

func dtypeName(d DataType) string { return strings.ToLower(d.String()) }
