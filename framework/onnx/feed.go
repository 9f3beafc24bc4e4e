package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Feed orders given inputs by the graph's input list (initializers excluded). Inputs not
// given are made when fill is "arange" (float32 arange(n)/n) or "zeros", with unknown
// dimensions taken as 1; otherwise they are an error that lists what the model wants.
func Feed(m *Model, given map[string]Value, fill string) ([]Value, error) {
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	var out []Value
	var missing []string
	used := 0
	for _, vi := range m.Graph.Inputs {
		if inits[vi.Name] {
			continue
		}
		if v, ok := given[vi.Name]; ok {
			out = append(out, v)
			used++
			continue
		}
		if fill == "" || vi.Type == nil || vi.Type.Kind != KindTensor {
			missing = append(missing, vi.Name+" "+vi.Type.String())
			continue
		}
		t, err := filled(vi, fill)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing inputs (give --input name=file or --fill): %s", strings.Join(missing, ", "))
	}
	if used != len(given) {
		return nil, fmt.Errorf("%d of the given inputs are not graph inputs", len(given)-used)
	}
	return out, nil
}

func filled(vi *ValueInfo, fill string) (*Tensor, error) {
	t := &Tensor{Name: vi.Name, Type: vi.Type.Elem, Dims: []int64{}}
	for _, d := range vi.Type.Shape {
		v := d.Value
		if !d.Known || v <= 0 {
			v = 1
		}
		t.Dims = append(t.Dims, v)
	}
	n, err := elementCount(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", vi.Name, err)
	}
	switch fill {
	case "zeros":
		if t.Type == String || t.Type.bits() == 0 {
			return nil, fmt.Errorf("input %s: cannot fill %v with zeros", vi.Name, t.Type)
		}
		t.Raw = make([]byte, n*t.Type.Size())
	case "arange":
		if t.Type != Float {
			return nil, fmt.Errorf("input %s: arange fill needs float32, not %v", vi.Name, t.Type)
		}
		t.Raw = make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(t.Raw[4*i:], math.Float32bits(float32(i)/float32(n)))
		}
	default:
		return nil, fmt.Errorf("unknown fill %q (want arange or zeros)", fill)
	}
	return t, nil
}

// String formats a type like "float32[N,3,224,224]".
func (t *Type) String() string {
	if t == nil {
		return "?"
	}
	switch t.Kind {
	case KindSequence:
		return "seq(" + t.Inner.String() + ")"
	case KindOptional:
		return "optional(" + t.Inner.String() + ")"
	case KindMap:
		return "map(" + t.Elem.String() + "," + t.Inner.String() + ")"
	}
	if !t.HasShape {
		return t.Elem.String() + "[?]"
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		switch {
		case d.Known:
			dims[i] = fmt.Sprint(d.Value)
		case d.Param != "":
			dims[i] = d.Param
		default:
			dims[i] = "?"
		}
	}
	return t.Elem.String() + "[" + strings.Join(dims, ",") + "]"
}

// Format prints a value's type, shape and up to limit elements.
func Format(v Value, limit int) string {
	switch x := v.(type) {
	case *Tensor:
		var vals []string
		if x.Type == String {
			for i, s := range x.Strings {
				if i == limit {
					vals = append(vals, "…")
					break
				}
				vals = append(vals, fmt.Sprintf("%q", s))
			}
		} else if f, err := x.Float64s(); err == nil {
			for i, e := range f {
				if i == limit {
					vals = append(vals, "…")
					break
				}
				vals = append(vals, fmt.Sprintf("%.6g", e))
			}
		}
		return fmt.Sprintf("%v%v [%s]", x.Type, x.Dims, strings.Join(vals, " "))
	case *Sequence:
		parts := make([]string, len(x.Tensors))
		for i, t := range x.Tensors {
			parts[i] = Format(t, limit)
		}
		return "sequence(" + strings.Join(parts, "; ") + ")"
	case *Optional:
		if x.Tensor != nil {
			return "optional(" + Format(x.Tensor, limit) + ")"
		}
		if x.Sequence != nil {
			return "optional(" + Format(x.Sequence, limit) + ")"
		}
		return "optional(none)"
	}
	return fmt.Sprintf("%T", v)
}
