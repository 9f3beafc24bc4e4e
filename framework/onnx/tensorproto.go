package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// DataType is TensorProto.DataType.
type DataType int32

// Element types, numbered as in onnx.proto.
const (
	Undefined     DataType = 0
	Float         DataType = 1
	Uint8         DataType = 2
	Int8          DataType = 3
	Uint16        DataType = 4
	Int16         DataType = 5
	Int32         DataType = 6
	Int64         DataType = 7
	String        DataType = 8
	Bool          DataType = 9
	Float16       DataType = 10
	Double        DataType = 11
	Uint32        DataType = 12
	Uint64        DataType = 13
	Complex64     DataType = 14
	Complex128    DataType = 15
	BFloat16      DataType = 16
	Float8E4M3FN  DataType = 17
	Float8E4M3FNZ DataType = 18
	Float8E5M2    DataType = 19
	Float8E5M2FNZ DataType = 20
	Uint4         DataType = 21
	Int4          DataType = 22
	Float4E2M1    DataType = 23
	Float8E8M0    DataType = 24
	Uint2         DataType = 25
	Int2          DataType = 26
)

var typeNames = map[DataType]string{
	Undefined: "undefined", Float: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
	Int16: "int16", Int32: "int32", Int64: "int64", String: "string", Bool: "bool",
	Float16: "float16", Double: "float64", Uint32: "uint32", Uint64: "uint64",
	Complex64: "complex64", Complex128: "complex128", BFloat16: "bfloat16",
	Float8E4M3FN: "float8e4m3fn", Float8E4M3FNZ: "float8e4m3fnuz", Float8E5M2: "float8e5m2",
	Float8E5M2FNZ: "float8e5m2fnuz", Uint4: "uint4", Int4: "int4", Float4E2M1: "float4e2m1",
	Float8E8M0: "float8e8m0", Uint2: "uint2", Int2: "int2",
}

func (d DataType) String() string {
	if s, ok := typeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// bits is the width of one element in raw_data; 0 for strings and unknown types.
func (d DataType) bits() int {
	switch d {
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNZ, Float8E5M2, Float8E5M2FNZ, Float8E8M0:
		return 8
	case Uint16, Int16, Float16, BFloat16:
		return 16
	case Float, Int32, Uint32:
		return 32
	case Int64, Double, Uint64, Complex64:
		return 64
	case Complex128:
		return 128
	case Uint4, Int4, Float4E2M1:
		return 4
	case Uint2, Int2:
		return 2
	}
	return 0
}

// Size is the bytes one element takes in Tensor.Raw (sub-byte types are unpacked to one
// byte each).
func (d DataType) Size() int { return max(d.bits(), 8) / 8 }

// Limits on what a file may declare, checked before anything is allocated.
const (
	maxRank     = 64
	maxElements = 1 << 32
)

// Tensor is a decoded TensorProto. Whatever field the file used, numeric data ends up in
// Raw as little-endian elements of Type.Size() bytes each (sub-byte types unpacked, one
// element per byte, signed ones sign-extended); strings end up in Strings.
type Tensor struct {
	Name    string
	Type    DataType
	Dims    []int64
	Raw     []byte
	Strings [][]byte
	Doc     string

	// External data, resolved by LoadModel / ResolveExternal.
	External map[string]string
	hasExt   bool
}

// Len is the element count (1 for a scalar).
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Dims {
		n *= int(d)
	}
	return n
}

// Shape returns Dims as ints.
func (t *Tensor) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[i] = int(d)
	}
	return s
}

// elementCount checks dims (non-negative, bounded) and returns their product.
func elementCount(dims []int64) (int, error) {
	if len(dims) > maxRank {
		return 0, fmt.Errorf("rank %d exceeds %d", len(dims), maxRank)
	}
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in %v", dims)
		}
		if d > 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v has more than %d elements", dims, int64(maxElements))
		}
		n *= d
	}
	return int(n), nil
}

// DecodeTensor decodes a serialized TensorProto. Tensors whose data is external keep it
// unresolved (Raw is nil) until ResolveExternal.
func DecodeTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	var (
		floats  []float32
		i32s    []int64
		i64s    []int64
		f64s    []uint64
		u64s    []uint64
		raw     []byte
		hasRaw  bool
		segment bool
	)
	limit := len(b) + 1 // a packed varint takes at least one byte, so this bounds any count
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case 1:
			t.Dims, err = appendInts(t.Dims, typ, v, data, maxRank)
		case 2:
			t.Type = DataType(v)
		case 3:
			segment = true
		case 4:
			floats, err = appendFloats(floats, typ, v, data)
		case 5:
			i32s, err = appendInts(i32s, typ, v, data, limit)
		case 6:
			if err = wantType(typ, protowire.BytesType); err == nil {
				t.Strings = append(t.Strings, append([]byte(nil), data...))
			}
		case 7:
			i64s, err = appendInts(i64s, typ, v, data, limit)
		case 8:
			t.Name, err = str(typ, data)
		case 12:
			t.Doc, err = str(typ, data)
		case 9:
			if err = wantType(typ, protowire.BytesType); err == nil {
				raw, hasRaw = data, true
			}
		case 13:
			var k, val string
			if err = wantType(typ, protowire.BytesType); err == nil {
				k, val, err = decodeStringPair(data)
				if t.External == nil {
					t.External = map[string]string{}
				}
				t.External[k] = val
			}
		case 14:
			t.hasExt = v == 1
		case 10:
			f64s, err = appendFixed64(f64s, typ, v, data)
		case 11:
			u64s, err = appendUvarints(u64s, typ, v, data, limit)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("TensorProto %q: %w", t.Name, err)
	}
	if segment {
		return nil, fmt.Errorf("TensorProto %q: segmented tensors are not supported", t.Name)
	}
	n, err := elementCount(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("TensorProto %q: %w", t.Name, err)
	}
	if t.Type == Undefined || (t.Type.bits() == 0 && t.Type != String) {
		return nil, fmt.Errorf("TensorProto %q: unsupported data type %v", t.Name, t.Type)
	}
	if t.hasExt {
		if hasRaw || len(floats)+len(i32s)+len(i64s)+len(f64s)+len(u64s) > 0 {
			return nil, fmt.Errorf("TensorProto %q: external data location with inline data", t.Name)
		}
		if t.External["location"] == "" {
			return nil, fmt.Errorf("TensorProto %q: external data without a location", t.Name)
		}
		return t, nil
	}
	if t.Type == String {
		if len(t.Strings) != n {
			return nil, fmt.Errorf("TensorProto %q: %d strings for shape %v", t.Name, len(t.Strings), t.Dims)
		}
		return t, nil
	}
	if hasRaw {
		t.Raw, err = unpackRaw(t.Type, raw, n)
	} else {
		t.Raw, err = fromTyped(t.Type, n, floats, i32s, i64s, f64s, u64s)
	}
	if err != nil {
		return nil, fmt.Errorf("TensorProto %q (%v %v): %w", t.Name, t.Type, t.Dims, err)
	}
	return t, nil
}

// unpackRaw copies raw_data, expanding sub-byte element types to one byte per element.
func unpackRaw(dt DataType, raw []byte, n int) ([]byte, error) {
	bits := dt.bits()
	want := (n*bits + 7) / 8
	if len(raw) != want {
		return nil, fmt.Errorf("raw_data has %d bytes, want %d", len(raw), want)
	}
	if bits >= 8 {
		return append([]byte(nil), raw...), nil
	}
	out := make([]byte, n)
	per := 8 / bits
	mask := byte(1<<bits - 1)
	for i := range out {
		x := raw[i/per] >> (uint(i%per) * uint(bits)) & mask
		if (dt == Int4 || dt == Int2) && x&(1<<(bits-1)) != 0 {
			x |= ^mask // sign-extend
		}
		out[i] = x
	}
	return out, nil
}

// fromTyped converts the typed repeated fields into the raw layout.
func fromTyped(dt DataType, n int, floats []float32, i32s, i64s []int64, f64s, u64s []uint64) ([]byte, error) {
	size := dt.Size()
	var got int
	switch dt {
	case Float, Complex64:
		got = len(floats)
	case Int64:
		got = len(i64s)
	case Double, Complex128:
		got = len(f64s)
	case Uint32, Uint64:
		got = len(u64s)
	default:
		got = len(i32s)
	}
	if dt == Complex64 || dt == Complex128 {
		got /= 2
	}
	if dt.bits() < 8 { // int32_data holds packed bytes for sub-byte types
		packed := make([]byte, len(i32s))
		for i, x := range i32s {
			packed[i] = byte(x)
		}
		return unpackRaw(dt, packed, n)
	}
	if got != n {
		return nil, fmt.Errorf("%d values for %d elements", got, n)
	}
	out := make([]byte, n*size)
	for i := 0; i < n; i++ {
		p := out[i*size:]
		switch dt {
		case Float:
			binary.LittleEndian.PutUint32(p, math.Float32bits(floats[i]))
		case Complex64:
			binary.LittleEndian.PutUint32(p, math.Float32bits(floats[2*i]))
			binary.LittleEndian.PutUint32(p[4:], math.Float32bits(floats[2*i+1]))
		case Int64:
			binary.LittleEndian.PutUint64(p, uint64(i64s[i]))
		case Double:
			binary.LittleEndian.PutUint64(p, f64s[i])
		case Complex128:
			binary.LittleEndian.PutUint64(p, f64s[2*i])
			binary.LittleEndian.PutUint64(p[8:], f64s[2*i+1])
		case Uint32:
			binary.LittleEndian.PutUint32(p, uint32(u64s[i]))
		case Uint64:
			binary.LittleEndian.PutUint64(p, u64s[i])
		default: // int32_data carriers: 8-, 16- and 32-bit types
			x := uint64(i32s[i])
			switch size {
			case 1:
				p[0] = byte(x)
			case 2:
				binary.LittleEndian.PutUint16(p, uint16(x))
			case 4:
				binary.LittleEndian.PutUint32(p, uint32(x))
			}
		}
	}
	return out, nil
}

// Float64s returns the elements converted to float64 (complex types: real parts; strings:
// an error). Integer types beyond 2^53 lose precision; use Int64s for those.
func (t *Tensor) Float64s() ([]float64, error) {
	if t.Type == String || t.Raw == nil && t.Len() > 0 {
		return nil, fmt.Errorf("tensor %q: no numeric data (%v)", t.Name, t.Type)
	}
	n, size := t.Len(), t.Type.Size()
	out := make([]float64, n)
	for i := range out {
		out[i] = decodeElem(t.Type, t.Raw[i*size:])
	}
	return out, nil
}

// Int64s returns the elements converted to int64 (floats truncate).
func (t *Tensor) Int64s() ([]int64, error) {
	if t.Type == String || t.Raw == nil && t.Len() > 0 {
		return nil, fmt.Errorf("tensor %q: no numeric data (%v)", t.Name, t.Type)
	}
	n, size := t.Len(), t.Type.Size()
	out := make([]int64, n)
	for i := range out {
		p := t.Raw[i*size:]
		switch t.Type {
		case Int64:
			out[i] = int64(binary.LittleEndian.Uint64(p))
		case Uint64:
			out[i] = int64(binary.LittleEndian.Uint64(p))
		default:
			out[i] = int64(decodeElem(t.Type, p))
		}
	}
	return out, nil
}

// decodeElem reads one element at p as float64.
func decodeElem(dt DataType, p []byte) float64 {
	switch dt {
	case Float, Complex64:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))
	case Double, Complex128:
		return math.Float64frombits(binary.LittleEndian.Uint64(p))
	case Int8, Int4, Int2:
		return float64(int8(p[0]))
	case Uint8, Bool, Uint4, Uint2:
		return float64(p[0])
	case Int16:
		return float64(int16(binary.LittleEndian.Uint16(p)))
	case Uint16:
		return float64(binary.LittleEndian.Uint16(p))
	case Int32:
		return float64(int32(binary.LittleEndian.Uint32(p)))
	case Uint32:
		return float64(binary.LittleEndian.Uint32(p))
	case Int64:
		return float64(int64(binary.LittleEndian.Uint64(p)))
	case Uint64:
		return float64(binary.LittleEndian.Uint64(p))
	case Float16:
		return Half(binary.LittleEndian.Uint16(p))
	case BFloat16:
		return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(p)) << 16))
	case Float8E4M3FN, Float8E4M3FNZ, Float8E5M2, Float8E5M2FNZ, Float8E8M0, Float4E2M1:
		return smallFloat(dt, p[0])
	}
	return math.NaN()
}

// Half converts IEEE binary16 bits to float64.
func Half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10&0x1f), float64(h&0x3ff)
	switch e {
	case 0:
		return sign * m * math.Ldexp(1, -24)
	case 31:
		if m == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * (1 + m/1024) * math.Ldexp(1, e-15)
}

// smallFloat decodes the 8- and 4-bit float formats.
func smallFloat(dt DataType, b byte) float64 {
	var ebits, mbits, bias int
	switch dt {
	case Float8E4M3FN:
		ebits, mbits, bias = 4, 3, 7
		if b&0x7f == 0x7f {
			return math.NaN()
		}
	case Float8E4M3FNZ:
		ebits, mbits, bias = 4, 3, 8
		if b == 0x80 {
			return math.NaN()
		}
	case Float8E5M2:
		ebits, mbits, bias = 5, 2, 15
		if b&0x7f > 0x7c {
			return math.NaN()
		}
		if b&0x7f == 0x7c {
			return math.Inf(1 - 2*int(b>>7))
		}
	case Float8E5M2FNZ:
		ebits, mbits, bias = 5, 2, 16
		if b == 0x80 {
			return math.NaN()
		}
	case Float8E8M0:
		if b == 0xff {
			return math.NaN()
		}
		return math.Ldexp(1, int(b)-127)
	case Float4E2M1:
		ebits, mbits, bias = 2, 1, 1
	}
	total := 1 + ebits + mbits
	sign := 1.0
	if b>>(total-1)&1 != 0 {
		sign = -1
	}
	e := int(b>>mbits) & (1<<ebits - 1)
	m := float64(int(b) & (1<<mbits - 1))
	if e == 0 {
		return sign * m / float64(int(1)<<mbits) * math.Ldexp(1, 1-bias)
	}
	return sign * (1 + m/float64(int(1)<<mbits)) * math.Ldexp(1, e-bias)
}
