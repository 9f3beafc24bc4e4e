package codegen

import (
	"fmt"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
)

// OpenCL is the dialect of the OpenCL backend: OpenCL C 1.2, built by the device's driver
// (PoCL on CPUs in CI). Buffers are __global kernel parameters in order; the flat global
// index, the work-group index and the index within the group come from the work-item
// functions, and grouped reductions combine through __local memory with barriers.
//
// Every dtype is stored as an integer or float the language has without extensions: bool as
// uchar (a kernel may not take bool pointers), the 16-bit floats as their raw ushort bits.
// float16 converts with vload_half / vstore_half_rte, which are core OpenCL and need no
// cl_khr_fp16; bfloat16 by bit arithmetic. Both compute in float, as on CUDA.
// There are no program-scope atomics in OpenCL 1.2, so long reductions use one work-group
// per output (gpu.go's group mode) rather than the split mode.
var OpenCL = &Dialect{
	Name:        "opencl",
	HalfPrelude: openCLHalf,
	Kernel: func(name string, params []Param) string {
		var b strings.Builder
		fmt.Fprintf(&b, "__kernel void %s(", name)
		for i, p := range params {
			if i > 0 {
				b.WriteString(", ")
			}
			c := "const "
			if p.Out {
				c = ""
			}
			fmt.Fprintf(&b, "__global %s%s *restrict %s", c, openCLTypes[p.DType], p.Name)
		}
		b.WriteString(") {\n")
		return b.String()
	},
	GlobalID: "(int)get_global_id(0)",
	GroupID:  "(int)get_group_id(0)",
	LocalID:  "(int)get_local_id(0)",
	Types:    openCLTypes,
	Compute:  map[dtype.DType]string{dtype.Float16: "float", dtype.BFloat16: "float"},
	Convert:  map[dtype.DType][2]string{dtype.Float16: {"gf_h2f", "gf_f2h"}, dtype.BFloat16: {"gf_b2f", "gf_f2b"}},
	Math:     map[lazy.Op]string{lazy.Exp2: "exp2", lazy.Log2: "log2", lazy.Sin: "sin", lazy.Sqrt: "sqrt"},
	Inf:      "INFINITY",
	NaN:      "NAN",
	Bitcast:  func(to, _, x string) string { return "as_" + to + "(" + x + ")" },
	Shared:   "__local",
	Barrier:  "barrier(CLK_LOCAL_MEM_FENCE);",
}

func init() { Dialects["opencl"] = OpenCL }

// openCLTypes are OpenCL C's names for the storage types (its long is 64 bits, and it has
// no "long long" or "signed char" spelling).
var openCLTypes = map[dtype.DType]string{
	dtype.Bool: "uchar", dtype.Uint8: "uchar", dtype.Int8: "char", dtype.Int32: "int",
	dtype.Int64: "long", dtype.Float16: "ushort", dtype.BFloat16: "ushort", dtype.Float32: "float",
}

// openCLHalf converts the 16-bit floats. A float16 load reads the element in place through
// a half pointer (the renderer hands the converter the lvalue data1[i]); a store converts
// through a private ushort with round-to-nearest-even. bfloat16 is the top half of a float.
const openCLHalf = `#define gf_h2f(x) vload_half(0, (const __global half *)&(x))
inline ushort gf_f2h(float f) { ushort h; vstore_half_rte(f, 0, (__private half *)&h); return h; }
inline float gf_b2f(ushort h) { return as_float((uint)h << 16); }
inline ushort gf_f2b(float f) {
  uint b = as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (ushort)((b >> 16) | 0x40u);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (ushort)(b >> 16);
}
`
