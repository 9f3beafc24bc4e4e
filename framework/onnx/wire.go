package onnx

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The decoder walks protobuf wire format by hand with the field numbers of onnx.proto, so
// the package needs no generated code and can refuse hostile input (absurd sizes, deep
// nesting) before it allocates.

// maxDepth bounds nesting of graphs inside attributes and of types inside types, so a
// crafted file cannot exhaust the stack.
const maxDepth = 64

// errTruncated is returned for fields that run past the end of their message.
var errTruncated = errors.New("truncated field")

// fields iterates the fields of one message, calling fn with each field number, wire type
// and the field's encoded value (for BytesType the payload; for varint and fixed types the
// raw value in v). It stops at the first error.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var data []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			data, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			n = protowire.ConsumeFieldValue(num, typ, b)
		default:
			return fmt.Errorf("field %d: unknown wire type %d", num, typ)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue // groups are not part of onnx.proto; skip them
		}
		if err := fn(num, typ, v, data); err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
	}
	return nil
}

// wantType checks a field's wire type.
func wantType(got, want protowire.Type) error {
	if got != want {
		return fmt.Errorf("wire type %d, want %d", got, want)
	}
	return nil
}

// str reads a string field.
func str(typ protowire.Type, data []byte) (string, error) {
	if err := wantType(typ, protowire.BytesType); err != nil {
		return "", err
	}
	return string(data), nil
}

// appendInts reads a repeated integer field that may be packed or not. signed64 keeps the
// varint as int64 (int64/int32 fields); zigzag is never used by onnx.proto.
func appendInts(dst []int64, typ protowire.Type, v uint64, data []byte, limit int) ([]int64, error) {
	if typ == protowire.VarintType {
		if len(dst) >= limit {
			return nil, fmt.Errorf("more than %d values", limit)
		}
		return append(dst, int64(v)), nil
	}
	if err := wantType(typ, protowire.BytesType); err != nil {
		return nil, err
	}
	for len(data) > 0 {
		x, n := protowire.ConsumeVarint(data)
		if n < 0 {
			return nil, fmt.Errorf("packed varint: %w", protowire.ParseError(n))
		}
		if len(dst) >= limit {
			return nil, fmt.Errorf("more than %d values", limit)
		}
		dst = append(dst, int64(x))
		data = data[n:]
	}
	return dst, nil
}

// appendFloats reads a repeated float field, packed or not.
func appendFloats(dst []float32, typ protowire.Type, v uint64, data []byte) ([]float32, error) {
	if typ == protowire.Fixed32Type {
		return append(dst, math.Float32frombits(uint32(v))), nil
	}
	if err := wantType(typ, protowire.BytesType); err != nil {
		return nil, err
	}
	if len(data)%4 != 0 {
		return nil, fmt.Errorf("packed floats: %d bytes is not a multiple of 4", len(data))
	}
	for i := 0; i < len(data); i += 4 {
		x, _ := protowire.ConsumeFixed32(data[i:])
		dst = append(dst, math.Float32frombits(x))
	}
	return dst, nil
}

// appendFixed64 reads a repeated double or fixed64 field, packed or not, as raw bits.
func appendFixed64(dst []uint64, typ protowire.Type, v uint64, data []byte) ([]uint64, error) {
	if typ == protowire.Fixed64Type {
		return append(dst, v), nil
	}
	if typ == protowire.VarintType { // uint64_data is a varint field
		return append(dst, v), nil
	}
	if err := wantType(typ, protowire.BytesType); err != nil {
		return nil, err
	}
	if len(data)%8 != 0 {
		return nil, fmt.Errorf("packed doubles: %d bytes is not a multiple of 8", len(data))
	}
	for i := 0; i < len(data); i += 8 {
		x, _ := protowire.ConsumeFixed64(data[i:])
		dst = append(dst, x)
	}
	return dst, nil
}

// appendUvarints reads a repeated uint64 varint field, packed or not.
func appendUvarints(dst []uint64, typ protowire.Type, v uint64, data []byte, limit int) ([]uint64, error) {
	xs, err := appendInts(nil, typ, v, data, limit-len(dst))
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		dst = append(dst, uint64(x))
	}
	return dst, nil
}
