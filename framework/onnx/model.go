package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Model is a decoded ModelProto.
type Model struct {
	IRVersion       int64
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	Opsets          []OpsetID
	Metadata        map[string]string
	Graph           *Graph
	Functions       []*Function
}

// OpsetID is one opset import: an operator domain ("" or "ai.onnx" is the default domain)
// and its version.
type OpsetID struct {
	Domain  string
	Version int64
}

// Opset returns the imported version of domain (with "ai.onnx" and "" treated alike), or 0.
func (m *Model) Opset(domain string) int64 {
	for _, o := range m.Opsets {
		if normDomain(o.Domain) == normDomain(domain) {
			return o.Version
		}
	}
	return 0
}

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// Graph is a decoded GraphProto: nodes in topological order plus the named values they use.
type Graph struct {
	Name               string
	Doc                string
	Nodes              []*Node
	Initializers       []*Tensor
	SparseInitializers []*SparseTensor
	Inputs             []*ValueInfo
	Outputs            []*ValueInfo
	ValueInfo          []*ValueInfo
}

// Node is one operator application.
type Node struct {
	Name     string
	OpType   string
	Domain   string
	Overload string
	Inputs   []string // "" marks an omitted optional input
	Outputs  []string
	Attrs    []*Attribute
	Doc      string
}

// Attr returns the attribute called name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// Attribute kinds, numbered as in onnx.proto.
const (
	AttrUndefined     AttrType = 0
	AttrFloat         AttrType = 1
	AttrInt           AttrType = 2
	AttrString        AttrType = 3
	AttrTensor        AttrType = 4
	AttrGraph         AttrType = 5
	AttrFloats        AttrType = 6
	AttrInts          AttrType = 7
	AttrStrings       AttrType = 8
	AttrTensors       AttrType = 9
	AttrGraphs        AttrType = 10
	AttrSparseTensor  AttrType = 11
	AttrSparseTensors AttrType = 12
	AttrTypeProto     AttrType = 13
	AttrTypeProtos    AttrType = 14
)

// Attribute is a decoded AttributeProto. Only the field named by Type is meaningful.
type Attribute struct {
	Name          string
	RefAttrName   string // inside functions: take the value from the caller's attribute
	Doc           string
	Type          AttrType
	F             float32
	I             int64
	S             []byte
	T             *Tensor
	G             *Graph
	SparseTensor  *SparseTensor
	TP            *Type
	Floats        []float32
	Ints          []int64
	Strings       [][]byte
	Tensors       []*Tensor
	Graphs        []*Graph
	SparseTensors []*SparseTensor
	TPs           []*Type
}

// ValueInfo names a graph input, output or intermediate value and its type.
type ValueInfo struct {
	Name string
	Doc  string
	Type *Type
}

// TypeKind says which branch of TypeProto's oneof is set.
type TypeKind int

// Type kinds.
const (
	KindUnknown TypeKind = iota
	KindTensor
	KindSequence
	KindMap
	KindOptional
	KindSparseTensor
)

// Type is a decoded TypeProto.
type Type struct {
	Kind       TypeKind
	Elem       DataType // tensor and sparse tensor element type; map key type for maps
	HasShape   bool     // false: rank unknown
	Shape      []Dim
	Inner      *Type // sequence and optional element type, map value type
	Denotation string
}

// Dim is one dimension of a tensor type: a known size, a symbolic name, or neither.
type Dim struct {
	Value int64
	Param string
	Known bool // Value is set
}

// Function is a decoded FunctionProto: a model-local operator defined by a subgraph.
type Function struct {
	Name, Domain, Overload, Doc string
	Inputs, Outputs             []string
	AttrNames                   []string
	AttrDefaults                []*Attribute
	Nodes                       []*Node
	Opsets                      []OpsetID
	ValueInfo                   []*ValueInfo
}

// SparseTensor is a decoded SparseTensorProto (values at indices of a dense shape Dims).
type SparseTensor struct {
	Values  *Tensor
	Indices *Tensor
	Dims    []int64
}

// DecodeModel decodes a serialized ModelProto. External tensor data is not read; use
// LoadModel for files.
func DecodeModel(b []byte) (*Model, error) {
	m := &Model{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case 1:
			m.IRVersion = int64(v)
		case 2:
			m.ProducerName, err = str(typ, data)
		case 3:
			m.ProducerVersion, err = str(typ, data)
		case 4:
			m.Domain, err = str(typ, data)
		case 5:
			m.ModelVersion = int64(v)
		case 6:
			m.Doc, err = str(typ, data)
		case 7:
			if err = wantType(typ, protowire.BytesType); err == nil {
				m.Graph, err = decodeGraph(data, 0)
			}
		case 8:
			var o OpsetID
			if err = wantType(typ, protowire.BytesType); err == nil {
				o, err = decodeOpset(data)
				m.Opsets = append(m.Opsets, o)
			}
		case 14:
			var k, val string
			if err = wantType(typ, protowire.BytesType); err == nil {
				k, val, err = decodeStringPair(data)
				if m.Metadata == nil {
					m.Metadata = map[string]string{}
				}
				m.Metadata[k] = val
			}
		case 25:
			var f *Function
			if err = wantType(typ, protowire.BytesType); err == nil {
				f, err = decodeFunction(data)
				m.Functions = append(m.Functions, f)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decode ModelProto: %w", err)
	}
	if m.Graph == nil {
		return nil, fmt.Errorf("decode ModelProto: no graph")
	}
	return m, nil
}

func decodeOpset(b []byte) (OpsetID, error) {
	var o OpsetID
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case 1:
			o.Domain, err = str(typ, data)
		case 2:
			o.Version = int64(v)
		}
		return err
	})
	return o, err
}

func decodeStringPair(b []byte) (k, v string, err error) {
	err = fields(b, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
		var err error
		switch num {
		case 1:
			k, err = str(typ, data)
		case 2:
			v, err = str(typ, data)
		}
		return err
	})
	return k, v, err
}

// DecodeGraph decodes a serialized GraphProto.
func DecodeGraph(b []byte) (*Graph, error) { return decodeGraph(b, 0) }

func decodeGraph(b []byte, depth int) (*Graph, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("graphs nested deeper than %d", maxDepth)
	}
	g := &Graph{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		if num == 1 || num == 5 || num == 15 || (num >= 11 && num <= 13) {
			if err := wantType(typ, protowire.BytesType); err != nil {
				return err
			}
		}
		var err error
		switch num {
		case 1:
			var n *Node
			n, err = decodeNode(data, depth)
			g.Nodes = append(g.Nodes, n)
		case 2:
			g.Name, err = str(typ, data)
		case 5:
			var t *Tensor
			t, err = DecodeTensor(data)
			g.Initializers = append(g.Initializers, t)
		case 15:
			var s *SparseTensor
			s, err = decodeSparse(data)
			g.SparseInitializers = append(g.SparseInitializers, s)
		case 10:
			g.Doc, err = str(typ, data)
		case 11, 12, 13:
			var vi *ValueInfo
			vi, err = decodeValueInfo(data)
			switch num {
			case 11:
				g.Inputs = append(g.Inputs, vi)
			case 12:
				g.Outputs = append(g.Outputs, vi)
			default:
				g.ValueInfo = append(g.ValueInfo, vi)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("GraphProto %q: %w", g.Name, err)
	}
	return g, nil
}

func decodeNode(b []byte, depth int) (*Node, error) {
	n := &Node{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var s string
		var err error
		switch num {
		case 1, 2:
			if s, err = str(typ, data); err == nil {
				if num == 1 {
					n.Inputs = append(n.Inputs, s)
				} else {
					n.Outputs = append(n.Outputs, s)
				}
			}
		case 3:
			n.Name, err = str(typ, data)
		case 4:
			n.OpType, err = str(typ, data)
		case 7:
			n.Domain, err = str(typ, data)
		case 8:
			n.Overload, err = str(typ, data)
		case 6:
			n.Doc, err = str(typ, data)
		case 5:
			var a *Attribute
			if err = wantType(typ, protowire.BytesType); err == nil {
				a, err = decodeAttr(data, depth)
				n.Attrs = append(n.Attrs, a)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("NodeProto %q (%s): %w", n.Name, n.OpType, err)
	}
	return n, nil
}

func decodeAttr(b []byte, depth int) (*Attribute, error) {
	a := &Attribute{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		switch num {
		case 5, 6, 10, 11, 14, 15, 22, 23, 4, 9, 1, 21, 13:
			if err := wantType(typ, protowire.BytesType); err != nil {
				return err
			}
		}
		var err error
		switch num {
		case 1:
			a.Name = string(data)
		case 21:
			a.RefAttrName = string(data)
		case 13:
			a.Doc = string(data)
		case 20:
			a.Type = AttrType(v)
		case 2:
			if err = wantType(typ, protowire.Fixed32Type); err == nil {
				a.F = math.Float32frombits(uint32(v))
			}
		case 3:
			a.I = int64(v)
		case 4:
			a.S = append([]byte(nil), data...)
		case 5:
			a.T, err = DecodeTensor(data)
		case 6:
			a.G, err = decodeGraph(data, depth+1)
		case 22:
			a.SparseTensor, err = decodeSparse(data)
		case 14:
			a.TP, err = decodeType(data, 0)
		case 7:
			a.Floats, err = appendFloats(a.Floats, typ, v, data)
		case 8:
			a.Ints, err = appendInts(a.Ints, typ, v, data, len(b))
		case 9:
			a.Strings = append(a.Strings, append([]byte(nil), data...))
		case 10:
			var t *Tensor
			t, err = DecodeTensor(data)
			a.Tensors = append(a.Tensors, t)
		case 11:
			var g *Graph
			g, err = decodeGraph(data, depth+1)
			a.Graphs = append(a.Graphs, g)
		case 23:
			var s *SparseTensor
			s, err = decodeSparse(data)
			a.SparseTensors = append(a.SparseTensors, s)
		case 15:
			var t *Type
			t, err = decodeType(data, 0)
			a.TPs = append(a.TPs, t)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("AttributeProto %q: %w", a.Name, err)
	}
	if a.Type == AttrUndefined { // IR < 0.0.2 files leave type unset; infer it from the field present
		a.Type = a.inferType()
	}
	return a, nil
}

func (a *Attribute) inferType() AttrType {
	switch {
	case a.T != nil:
		return AttrTensor
	case a.G != nil:
		return AttrGraph
	case a.S != nil:
		return AttrString
	case a.Floats != nil:
		return AttrFloats
	case a.Ints != nil:
		return AttrInts
	case a.Strings != nil:
		return AttrStrings
	case a.Tensors != nil:
		return AttrTensors
	case a.Graphs != nil:
		return AttrGraphs
	case a.F != 0:
		return AttrFloat
	}
	return AttrInt
}

func decodeValueInfo(b []byte) (*ValueInfo, error) {
	vi := &ValueInfo{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case 1:
			vi.Name, err = str(typ, data)
		case 2:
			if err = wantType(typ, protowire.BytesType); err == nil {
				vi.Type, err = decodeType(data, 0)
			}
		case 3:
			vi.Doc, err = str(typ, data)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ValueInfoProto %q: %w", vi.Name, err)
	}
	return vi, nil
}

func decodeType(b []byte, depth int) (*Type, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("types nested deeper than %d", maxDepth)
	}
	t := &Type{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		if num == 6 {
			var err error
			t.Denotation, err = str(typ, data)
			return err
		}
		if err := wantType(typ, protowire.BytesType); err != nil {
			return err
		}
		switch num {
		case 1, 8: // Tensor and SparseTensor: elem_type=1, shape=2
			t.Kind = KindTensor
			if num == 8 {
				t.Kind = KindSparseTensor
			}
			return fields(data, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
				switch num {
				case 1:
					t.Elem = DataType(v)
				case 2:
					if err := wantType(typ, protowire.BytesType); err != nil {
						return err
					}
					t.HasShape = true
					return fields(data, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
						if num != 1 {
							return nil
						}
						if err := wantType(typ, protowire.BytesType); err != nil {
							return err
						}
						d, err := decodeDim(data)
						t.Shape = append(t.Shape, d)
						return err
					})
				}
				return nil
			})
		case 4, 9: // Sequence and Optional: elem_type=1
			t.Kind = KindSequence
			if num == 9 {
				t.Kind = KindOptional
			}
			return fields(data, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
				if num != 1 {
					return nil
				}
				if err := wantType(typ, protowire.BytesType); err != nil {
					return err
				}
				var err error
				t.Inner, err = decodeType(data, depth+1)
				return err
			})
		case 5: // Map: key_type=1, value_type=2
			t.Kind = KindMap
			return fields(data, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
				switch num {
				case 1:
					t.Elem = DataType(v)
				case 2:
					if err := wantType(typ, protowire.BytesType); err != nil {
						return err
					}
					var err error
					t.Inner, err = decodeType(data, depth+1)
					return err
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("TypeProto: %w", err)
	}
	return t, nil
}

func decodeDim(b []byte) (Dim, error) {
	var d Dim
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case 1:
			d.Value, d.Known = int64(v), true
		case 2:
			d.Param, err = str(typ, data)
		}
		return err
	})
	return d, err
}

func decodeSparse(b []byte) (*SparseTensor, error) {
	s := &SparseTensor{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case 1, 2:
			if err = wantType(typ, protowire.BytesType); err != nil {
				return err
			}
			var t *Tensor
			t, err = DecodeTensor(data)
			if num == 1 {
				s.Values = t
			} else {
				s.Indices = t
			}
		case 3:
			s.Dims, err = appendInts(s.Dims, typ, v, data, maxRank)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("SparseTensorProto: %w", err)
	}
	if s.Values == nil || s.Indices == nil {
		return nil, fmt.Errorf("SparseTensorProto: values and indices are required")
	}
	return s, nil
}

func decodeFunction(b []byte) (*Function, error) {
	f := &Function{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		if err := wantType(typ, protowire.BytesType); err != nil {
			return err
		}
		var err error
		switch num {
		case 1:
			f.Name = string(data)
		case 10:
			f.Domain = string(data)
		case 13:
			f.Overload = string(data)
		case 8:
			f.Doc = string(data)
		case 4:
			f.Inputs = append(f.Inputs, string(data))
		case 5:
			f.Outputs = append(f.Outputs, string(data))
		case 6:
			f.AttrNames = append(f.AttrNames, string(data))
		case 11:
			var a *Attribute
			a, err = decodeAttr(data, 1)
			f.AttrDefaults = append(f.AttrDefaults, a)
		case 7:
			var n *Node
			n, err = decodeNode(data, 1)
			f.Nodes = append(f.Nodes, n)
		case 9:
			var o OpsetID
			o, err = decodeOpset(data)
			f.Opsets = append(f.Opsets, o)
		case 12:
			var vi *ValueInfo
			vi, err = decodeValueInfo(data)
			f.ValueInfo = append(f.ValueInfo, vi)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("FunctionProto %q: %w", f.Name, err)
	}
	return f, nil
}
