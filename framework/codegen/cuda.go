package codegen

import (
	"fmt"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
)

// CUDA is the dialect of the CUDA backend: CUDA C++ compiled by NVRTC. Buffers are kernel
// parameters in order (restrict-qualified, inputs const so loads may use the read-only
// cache), the flat global index comes from the block and thread indices, and 16-bit floats
// are the toolkit's half and __nv_bfloat16, computed in float.
var CUDA = &Dialect{
	Name:        "cuda",
	Prelude:     cudaHelpers,
	HalfPrelude: "#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n", // only where a 16-bit float appears
	Kernel: func(name string, params []Param) string {
		return gpuSignature(`extern "C" __global__ void `+name, "", "*__restrict__", cudaTypes, params)
	},
	GlobalID: "(int)(blockIdx.x * blockDim.x + threadIdx.x)",
	GroupID:  "(int)blockIdx.x",
	LocalID:  "(int)threadIdx.x",
	Atomics:  true,
	Types:    cudaTypes,
	Compute:  map[dtype.DType]string{dtype.Float16: "float", dtype.BFloat16: "float"},
	Convert:  map[dtype.DType][2]string{dtype.Float16: {"__half2float", "__float2half"}, dtype.BFloat16: {"__bfloat162float", "__float2bfloat16"}},
	Math:     map[lazy.Op]string{lazy.Exp2: "exp2f", lazy.Log2: "log2f", lazy.Sin: "sinf", lazy.Sqrt: "sqrtf"},
	Fma:      "fmaf",
	Inf:      "__int_as_float(0x7f800000)",
	NaN:      "__int_as_float(0x7fc00000)",
	Bitcast: func(to, from, x string) string {
		return fmt.Sprintf("gf_bitcast<%s, %s>(%s)", to, from, x)
	},
	Shared:  "__shared__",
	Barrier: "__syncthreads();",
}

func init() { Dialects["cuda"] = CUDA }

// cudaTypes stores every dtype as C does, except the 16-bit floats, which use the toolkit's types.
var cudaTypes = func() map[dtype.DType]string {
	m := map[dtype.DType]string{}
	for _, t := range dtype.All {
		m[t] = t.CName()
	}
	m[dtype.Float16], m[dtype.BFloat16] = "half", "__nv_bfloat16"
	return m
}()

// cudaHelpers holds what NVRTC lacks without the standard library: a bit cast between
// same-sized types.
const cudaHelpers = `template <class T, class F> __device__ __forceinline__ T gf_bitcast(F x) {
  static_assert(sizeof(T) == sizeof(F), "bitcast between different sizes");
  union { F f; T t; } u; u.f = x; return u.t;
}
`

// gpuSignature writes a GPU kernel's opening line: head, then each buffer parameter as
// space (an address-space qualifier, may be empty), const for inputs, its type, ptr (the
// pointer with its restrict spelling) and its name.
func gpuSignature(head, space, ptr string, types map[dtype.DType]string, params []Param) string {
	var b strings.Builder
	b.WriteString(head + "(")
	for i, p := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		c := "const "
		if p.Out {
			c = ""
		}
		fmt.Fprintf(&b, "%s%s%s %s %s", space, c, types[p.DType], ptr, p.Name)
	}
	b.WriteString(") {\n")
	return b.String()
}
