package dtype

import (
	"math"
	"testing"
)

func TestPromote(t *testing.T) {
	cases := []struct {
		a, b, want DType
		why        string
	}{
		{Bool, Int32, Int32, "bool is below every integer"},
		{Uint8, Int8, Int32, "uint8 with int8 widens (no int16)"},
		{Int32, Int64, Int64, "integers widen"},
		{Int64, Float16, Float16, "a float beats any integer"},
		{Float16, BFloat16, Float32, "the two halves meet in float32"},
		{Float16, Float32, Float32, "floats widen"},
		{Bool, Bool, Bool, "same type stays"},
		{Uint8, Bool, Uint8, "bool with uint8"},
	}
	for _, c := range cases {
		if got := Promote(c.a, c.b); got != c.want {
			t.Errorf("%s: Promote(%s, %s) = %s, want %s", c.why, c.a, c.b, got, c.want)
		}
		if got := Promote(c.b, c.a); got != c.want {
			t.Errorf("%s: Promote is not symmetric for %s, %s", c.why, c.b, c.a)
		}
	}
}

func TestSizesAndNames(t *testing.T) {
	want := map[DType]int{Bool: 1, Uint8: 1, Int8: 1, Int32: 4, Int64: 8, Float16: 2, BFloat16: 2, Float32: 4}
	for d, n := range want {
		if d.Size() != n {
			t.Errorf("%s.Size() = %d, want %d", d, d.Size(), n)
		}
		p, err := Parse(d.String())
		if err != nil || p != d {
			t.Errorf("Parse(%q) = %v, %v", d.String(), p, err)
		}
	}
	if _, err := Parse("complex64"); err == nil {
		t.Error("Parse accepted an unknown dtype")
	}
}

// TestHalfRoundTrip decodes every binary16 value and encodes it back: exact for all
// non-NaN values, and NaN stays NaN.
func TestHalfRoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := HalfToFloat32(uint16(h))
		back := Float32ToHalf(f)
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(HalfToFloat32(back))) {
				t.Fatalf("NaN %#x came back as %#x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("half %#x → %g → %#x", h, f, back)
		}
	}
}

func TestHalfKnownValues(t *testing.T) {
	cases := []struct {
		f    float32
		bits uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00}, {5.960464477539063e-08, 0x0001},
		{1 + 1.0/2048, 0x3c00}, // exactly halfway: ties to even
		{1 + 3.0/2048, 0x3c02}, // halfway above an odd mantissa rounds up
	}
	for _, c := range cases {
		if got := Float32ToHalf(c.f); got != c.bits {
			t.Errorf("Float32ToHalf(%g) = %#x, want %#x", c.f, got, c.bits)
		}
	}
}

func TestBFloat16(t *testing.T) {
	for h := range 1 << 16 {
		f := BFloat16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := Float32ToBFloat16(f); back != uint16(h) {
			t.Fatalf("bfloat16 %#x → %g → %#x", h, f, back)
		}
	}
	if got := Float32ToBFloat16(1 + 1.0/256); got != 0x3f80 { // halfway, ties to even
		t.Errorf("Float32ToBFloat16(1+2^-8) = %#x, want 0x3f80", got)
	}
}
