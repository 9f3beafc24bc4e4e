package testops

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gradforge/gradforge/framework/dtype"
)

// decode widens a blob's elements to float64 for comparison.
func decode(b Blob) []float64 {
	n := len(b.Data) / dtypeSize(b.DType)
	out := make([]float64, n)
	le := binary.LittleEndian
	for i := range out {
		switch b.DType {
		case "float32":
			out[i] = float64(math.Float32frombits(le.Uint32(b.Data[4*i:])))
		case "float64":
			out[i] = math.Float64frombits(le.Uint64(b.Data[8*i:]))
		case "float16":
			out[i] = float64(dtype.HalfToFloat32(le.Uint16(b.Data[2*i:])))
		case "bfloat16":
			out[i] = float64(dtype.BFloat16ToFloat32(le.Uint16(b.Data[2*i:])))
		case "int32":
			out[i] = float64(int32(le.Uint32(b.Data[4*i:])))
		case "int64":
			out[i] = float64(int64(le.Uint64(b.Data[8*i:])))
		case "int8":
			out[i] = float64(int8(b.Data[i]))
		case "uint8", "bool":
			out[i] = float64(b.Data[i])
		}
	}
	return out
}

// Diff is how far the framework's values are from PyTorch's.
type Diff struct {
	MaxAbs, MaxRel float64
	// Used is the largest |got-want| / (atol + rtol·|want|): the share of the tolerance the
	// worst element spends (above 1 fails). Unlike MaxAbs it is comparable across cases whose
	// values differ by orders of magnitude.
	Used  float64
	Bad   int    // elements outside atol + rtol·|want|
	First string // the first bad element, for the message
}

// compare checks got against want elementwise with allclose's rule, treating NaNs as equal to
// NaNs and infinities as equal to infinities of the same sign.
func compare(got, want []float64, atol, rtol float64) Diff {
	var d Diff
	for i := range want {
		g, w := got[i], want[i]
		if (math.IsNaN(g) && math.IsNaN(w)) || g == w {
			continue
		}
		abs := math.Abs(g - w)
		if math.IsNaN(abs) {
			abs = math.Inf(1)
		}
		rel := abs / math.Max(math.Abs(w), 1e-12)
		d.MaxAbs, d.MaxRel = math.Max(d.MaxAbs, abs), math.Max(d.MaxRel, rel)
		d.Used = math.Max(d.Used, abs/(atol+rtol*math.Abs(w)))
		if !(abs <= atol+rtol*math.Abs(w)) {
			if d.Bad == 0 {
				d.First = fmt.Sprintf("element %d: got %g, want %g", i, g, w)
			}
			d.Bad++
		}
	}
	return d
}
