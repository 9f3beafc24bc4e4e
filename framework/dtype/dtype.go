// Package dtype lists the element types the framework computes with, their sizes, their C
// names, how two of them promote when combined, and the bit conversions for the two 16-bit
// float formats (Go has neither).
package dtype

import (
	"fmt"
	"math"
	"strings"
)

// DType is an element type. The zero value is Bool.
type DType uint8

// The supported element types, ordered roughly from narrowest to widest.
const (
	Bool DType = iota
	Uint8
	Int8
	Int32
	Int64
	Float16
	BFloat16
	Float32
)

// All lists every DType, in declaration order.
var All = []DType{Bool, Uint8, Int8, Int32, Int64, Float16, BFloat16, Float32}

var info = [...]struct {
	name  string
	size  int
	cname string
}{
	Bool:     {"bool", 1, "unsigned char"},
	Uint8:    {"uint8", 1, "unsigned char"},
	Int8:     {"int8", 1, "signed char"},
	Int32:    {"int32", 4, "int"},
	Int64:    {"int64", 8, "long long"},
	Float16:  {"float16", 2, "unsigned short"},
	BFloat16: {"bfloat16", 2, "unsigned short"},
	Float32:  {"float32", 4, "float"},
}

func (d DType) String() string {
	if int(d) < len(info) {
		return info[d].name
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Size is the number of bytes one element occupies in memory.
func (d DType) Size() int { return info[d].size }

// CName is the C storage type of one element. The 16-bit floats are stored as their raw bits.
func (d DType) CName() string { return info[d].cname }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == Float16 || d == BFloat16 || d == Float32 }

// IsInt reports whether d is an integer type (bool excluded).
func (d DType) IsInt() bool { return d == Uint8 || d == Int8 || d == Int32 || d == Int64 }

// IsUnsigned reports whether d has no sign bit (bool and uint8).
func (d DType) IsUnsigned() bool { return d == Bool || d == Uint8 }

// Parse reads a dtype name as String writes it (also "float", "half", "int", "long").
func Parse(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "float":
		return Float32, nil
	case "half":
		return Float16, nil
	case "int":
		return Int32, nil
	case "long":
		return Int64, nil
	}
	for _, d := range All {
		if d.String() == strings.ToLower(s) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q", s)
}

// Promote is the type that a binary op of a and b computes in, following PyTorch: bool is
// below every integer, integers widen (uint8 with int8 gives int32, as there is no int16),
// any float beats any integer, and float16 with bfloat16 gives float32.
func Promote(a, b DType) DType {
	switch {
	case a == b:
		return a
	case a.IsFloat() && b.IsFloat():
		if a == Float32 || b == Float32 || a != b {
			return Float32
		}
		return a
	case a.IsFloat():
		return a
	case b.IsFloat():
		return b
	case a == Bool:
		return b
	case b == Bool:
		return a
	case (a == Uint8 && b == Int8) || (a == Int8 && b == Uint8):
		return Int32
	}
	return max(a, b)
}

// Min is the smallest value of d (negative infinity for floats), the identity of MAX.
func (d DType) Min() float64 {
	switch d {
	case Bool, Uint8:
		return 0
	case Int8:
		return math.MinInt8
	case Int32:
		return math.MinInt32
	case Int64:
		return math.MinInt64
	}
	return math.Inf(-1)
}

// HalfToFloat32 decodes IEEE 754 binary16 bits.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or nan
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value is man * 2^-24
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// Float32ToHalf encodes f as binary16, rounding to nearest even; out-of-range values become
// infinity, as in hardware conversions.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff { // inf, nan (keep nan quiet)
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // subnormal or zero in half
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		h := man >> shift
		rem := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is the correct rounding
	}
	return sign | uint16(h)
}

// BFloat16ToFloat32 decodes bfloat16 bits (the top half of a float32).
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 encodes f as bfloat16, rounding to nearest even.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // nan stays nan
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
