package codegen

import (
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
	Name: "opencl",
	// No implicit a*b+c fusion: an expression must round alike in every kernel that
	// recomputes it (codegen writes the fmas it wants).
	Prelude:     "#pragma OPENCL FP_CONTRACT OFF\n",
	HalfPrelude: openCLHalf,
	Kernel: func(name string, params []Param) string {
		return gpuSignature("__kernel void "+name, "__global ", "*restrict", openCLTypes, params)
	},
	GlobalID: "(int)get_global_id(0)",
	GroupID:  "(int)get_group_id(0)",
	LocalID:  "(int)get_local_id(0)",
	Types:    openCLTypes,
	Compute:  map[dtype.DType]string{dtype.Float16: "float", dtype.BFloat16: "float"},
	Convert:  map[dtype.DType][2]string{dtype.Float16: {"gf_h2f", "gf_f2h"}, dtype.BFloat16: {"gf_b2f", "gf_f2b"}},
	Math:     map[lazy.Op]string{lazy.Exp2: "exp2", lazy.Log2: "log2", lazy.Sin: "sin", lazy.Sqrt: "sqrt"},
	Fma:      "fma",
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

// openCLHalf converts the 16-bit floats: float16 through a private ushort read or written
// as half (stores round to nearest even); bfloat16 is the top half of a float.
const openCLHalf = `inline float gf_h2f(ushort h) { return vload_half(0, (const __private half *)&h); }
inline ushort gf_f2h(float f) { ushort h; vstore_half_rte(f, 0, (__private half *)&h); return h; }
inline float gf_b2f(ushort h) { return as_float((uint)h << 16); }
inline ushort gf_f2b(float f) {
  uint b = as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (ushort)((b >> 16) | 0x40u);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (ushort)(b >> 16);
}
`

// openCLSgemm is gpu.go's float32 matmul tile in OpenCL C, its float4 loads and stores as
// vload4/vstore4: 256 work-items per group, each computing 8×8 outputs of a 128×128 tile
// from __local memory while the next 128×8 slices of A and B load into registers.
const openCLSgemm = `  const __global float* A = $A + $OA; const __global float* B = $B + $OB; __global float* C = data0 + $OC;
  __local float As[2][8][128];
  __local float Bs[2][8][128];
  int t = get_local_id(0), tx = t % 16, ty = t / 16;
  int bm = get_group_id(1) * 128, bn = get_group_id(0) * 128;
  const __global float* a = A + (size_t)(bm + t / 2) * $SAM + (t % 2) * 4;
#define ROWB 1
#define COLB 2
#if $LAYOUT == ROWB
  const __global float* b = B + (size_t)(t / 32) * $SBK + bn + (t % 32) * 4;
#define LOADB(k0) vload4(0, b + (size_t)(k0) * $SBK)
#define STOREB(buf, v) vstore4(v, 0, &Bs[buf][t / 32][(t % 32) * 4])
#else
  const __global float* b = B + (size_t)(bn + t / 2) * $SBN + (t % 2) * 4;
#define LOADB(k0) vload4(0, b + (k0))
#define STOREB(buf, v) Bs[buf][(t % 2) * 4 + 0][t / 2] = v.x; Bs[buf][(t % 2) * 4 + 1][t / 2] = v.y; Bs[buf][(t % 2) * 4 + 2][t / 2] = v.z; Bs[buf][(t % 2) * 4 + 3][t / 2] = v.w
#endif
  float acc[8][8];
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
  float4 ra = vload4(0, a), rb = LOADB(0);
  int buf = 0;
  As[0][(t % 2) * 4 + 0][t / 2] = ra.x; As[0][(t % 2) * 4 + 1][t / 2] = ra.y;
  As[0][(t % 2) * 4 + 2][t / 2] = ra.z; As[0][(t % 2) * 4 + 3][t / 2] = ra.w;
  STOREB(0, rb);
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int k0 = 0; k0 < $K; k0 += 8) {
    int more = k0 + 8 < $K;
    if (more) { ra = vload4(0, a + k0 + 8); rb = LOADB(k0 + 8); }
    #pragma unroll
    for (int k = 0; k < 8; k++) {
      float4 a0 = vload4(0, &As[buf][k][ty * 4]), a1 = vload4(0, &As[buf][k][64 + ty * 4]);
      float4 b0 = vload4(0, &Bs[buf][k][tx * 4]), b1 = vload4(0, &Bs[buf][k][64 + tx * 4]);
      float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      #pragma unroll
      for (int i = 0; i < 8; i++)
        #pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
    if (more) {
      buf ^= 1;
      As[buf][(t % 2) * 4 + 0][t / 2] = ra.x; As[buf][(t % 2) * 4 + 1][t / 2] = ra.y;
      As[buf][(t % 2) * 4 + 2][t / 2] = ra.z; As[buf][(t % 2) * 4 + 3][t / 2] = ra.w;
      STOREB(buf, rb);
      barrier(CLK_LOCAL_MEM_FENCE);
    }
  }
  #pragma unroll
  for (int i = 0; i < 8; i++) {
    int r = bm + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    vstore4((float4)(acc[i][0], acc[i][1], acc[i][2], acc[i][3]), 0, &C[(size_t)r * $SCM + bn + tx * 4]);
    vstore4((float4)(acc[i][4], acc[i][5], acc[i][6], acc[i][7]), 0, &C[(size_t)r * $SCM + bn + 64 + tx * 4]);
  }
`
