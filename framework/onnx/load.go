package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Sequence is a decoded SequenceProto: a list of tensors, sequences, maps or optionals.
type Sequence struct {
	Name      string
	ElemType  int32 // SequenceProto.DataType: 1 tensor, 2 sparse, 3 sequence, 4 map, 5 optional
	Tensors   []*Tensor
	Sequences []*Sequence
	Optionals []*Optional
}

// Optional is a decoded OptionalProto; all members nil means "no value".
type Optional struct {
	Name     string
	ElemType int32
	Tensor   *Tensor
	Sequence *Sequence
	Optional *Optional
}

// DecodeSequence decodes a serialized SequenceProto.
func DecodeSequence(b []byte) (*Sequence, error) { return decodeSequence(b, 0) }

// DecodeOptional decodes a serialized OptionalProto.
func DecodeOptional(b []byte) (*Optional, error) { return decodeOptional(b, 0) }

func decodeSequence(b []byte, depth int) (*Sequence, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("sequences nested deeper than %d", maxDepth)
	}
	s := &Sequence{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		if num != 2 {
			if err := wantType(typ, protowire.BytesType); err != nil {
				return err
			}
		}
		var err error
		switch num {
		case 1:
			s.Name = string(data)
		case 2:
			s.ElemType = int32(v)
		case 3:
			var t *Tensor
			t, err = DecodeTensor(data)
			s.Tensors = append(s.Tensors, t)
		case 5:
			var q *Sequence
			q, err = decodeSequence(data, depth+1)
			s.Sequences = append(s.Sequences, q)
		case 7:
			var o *Optional
			o, err = decodeOptional(data, depth+1)
			s.Optionals = append(s.Optionals, o)
		case 4, 6:
			err = fmt.Errorf("sparse tensor and map elements are not supported")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("SequenceProto %q: %w", s.Name, err)
	}
	return s, nil
}

func decodeOptional(b []byte, depth int) (*Optional, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("optionals nested deeper than %d", maxDepth)
	}
	o := &Optional{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		if num != 2 {
			if err := wantType(typ, protowire.BytesType); err != nil {
				return err
			}
		}
		var err error
		switch num {
		case 1:
			o.Name = string(data)
		case 2:
			o.ElemType = int32(v)
		case 3:
			o.Tensor, err = DecodeTensor(data)
		case 5:
			o.Sequence, err = decodeSequence(data, depth+1)
		case 7:
			o.Optional, err = decodeOptional(data, depth+1)
		case 4, 6:
			err = fmt.Errorf("sparse tensor and map values are not supported")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("OptionalProto %q: %w", o.Name, err)
	}
	return o, nil
}

// maxFileSize bounds model and data files read whole into memory.
const maxFileSize = 8 << 30

// readFile reads a whole file, refusing files over maxFileSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes exceeds the %d byte limit", path, st.Size(), int64(maxFileSize))
	}
	return io.ReadAll(f)
}

// LoadModel reads and decodes a .onnx file, then reads any external tensor data from files
// next to it.
func LoadModel(path string) (*Model, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := DecodeModel(b)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	if err := ResolveExternal(m, filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// ResolveExternal reads the data of every tensor stored outside the model (initializers,
// attribute tensors, in subgraphs too) from files under dir. Locations that are absolute or
// climb out of dir are refused.
func ResolveExternal(m *Model, dir string) error {
	var walk func(g *Graph) error
	resolveAttrs := func(attrs []*Attribute) error {
		for _, a := range attrs {
			ts := append([]*Tensor{a.T}, a.Tensors...)
			for _, t := range ts {
				if t != nil {
					if err := resolveTensor(t, dir); err != nil {
						return err
					}
				}
			}
			gs := append([]*Graph{a.G}, a.Graphs...)
			for _, g := range gs {
				if g != nil {
					if err := walk(g); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	walk = func(g *Graph) error {
		for _, t := range g.Initializers {
			if err := resolveTensor(t, dir); err != nil {
				return err
			}
		}
		for _, n := range g.Nodes {
			if err := resolveAttrs(n.Attrs); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(m.Graph); err != nil {
		return err
	}
	for _, f := range m.Functions {
		for _, n := range f.Nodes {
			if err := resolveAttrs(n.Attrs); err != nil {
				return err
			}
		}
	}
	return nil
}

func resolveTensor(t *Tensor, dir string) error {
	if !t.hasExt || t.Raw != nil {
		return nil
	}
	loc := t.External["location"]
	if filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") || strings.Contains(loc, "\\") {
		return fmt.Errorf("tensor %q: external data location %q must be relative", t.Name, loc)
	}
	clean := filepath.Clean(loc)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("tensor %q: external data location %q leaves the model's folder", t.Name, loc)
	}
	full := filepath.Join(dir, clean)
	// Symlinks could still point outside; compare resolved paths.
	if real, err := filepath.EvalSymlinks(full); err == nil {
		rdir, _ := filepath.EvalSymlinks(dir)
		if rel, err := filepath.Rel(rdir, real); err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("tensor %q: external data %q resolves outside the model's folder", t.Name, loc)
		}
	}
	var off, length int64 = 0, -1
	for k, dst := range map[string]*int64{"offset": &off, "length": &length} {
		if s, ok := t.External[k]; ok {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < 0 {
				return fmt.Errorf("tensor %q: external data %s %q is not a non-negative integer", t.Name, k, s)
			}
			*dst = v
		}
	}
	n, err := elementCount(t.Dims)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	want := int64((n*t.Type.bits() + 7) / 8)
	if t.Type == String {
		return fmt.Errorf("tensor %q: string tensors cannot be external", t.Name)
	}
	if length >= 0 && length != want {
		return fmt.Errorf("tensor %q: external length %d, want %d bytes for %v %v", t.Name, length, want, t.Type, t.Dims)
	}
	f, err := os.Open(full)
	if err != nil {
		return fmt.Errorf("tensor %q: external data: %w", t.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("tensor %q: external data: %w", t.Name, err)
	}
	if off+want > st.Size() {
		return fmt.Errorf("tensor %q: external data %s has %d bytes, need %d at offset %d", t.Name, loc, st.Size(), want, off)
	}
	buf := make([]byte, want)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Errorf("tensor %q: read external data %s: %w", t.Name, loc, err)
	}
	t.Raw, err = unpackRaw(t.Type, buf, n)
	if err != nil {
		return fmt.Errorf("tensor %q: external data: %w", t.Name, err)
	}
	t.hasExt = false
	return nil
}

// Value is what flows along graph edges in test data: *Tensor, *Sequence or *Optional.
type Value any

// LoadValue reads one test-data .pb file, decoding it as the kind that typ says (a tensor
// when typ is nil or a tensor type).
func LoadValue(path string, typ *Type) (Value, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load value: %w", err)
	}
	var v Value
	switch {
	case typ != nil && typ.Kind == KindSequence:
		v, err = DecodeSequence(b)
	case typ != nil && typ.Kind == KindOptional:
		v, err = DecodeOptional(b)
	default:
		v, err = DecodeTensor(b)
	}
	if err != nil {
		return nil, fmt.Errorf("load value %s: %w", path, err)
	}
	return v, nil
}
