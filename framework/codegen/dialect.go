package codegen

import (
	"fmt"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
)

// Param is one buffer argument of a kernel.
type Param struct {
	Name  string      // "data0"
	DType dtype.DType // element type
	Out   bool        // written by the kernel (the others are read-only)
}

// Dialect is everything that differs between the C-like languages a renderer writes. The
// loops, index arithmetic and expressions are shared; a new backend adds one Dialect value
// (see C below) and, for GPUs, sets GlobalID so global dims come from thread indices.
type Dialect struct {
	Name    string
	Prelude string // includes and helpers placed before every kernel
	// HalfPrelude is added only to kernels that touch a 16-bit float (less to compile).
	HalfPrelude string
	// Kernel writes the kernel's signature and its opening brace, unpacking params as needed.
	Kernel func(name string, params []Param) string
	// GlobalID is the flat global thread index expression. Empty means the global dims are
	// loops and the outermost one runs over [start, end) given by the launcher (CPU).
	GlobalID string
	Types    map[dtype.DType]string    // storage type per dtype
	Compute  map[dtype.DType]string    // value type where it differs from storage (16-bit floats)
	Convert  map[dtype.DType][2]string // {load, store} conversion functions for Compute types
	Math     map[lazy.Op]string        // float32 math functions: EXP2, LOG2, SIN, SQRT
	Fma      string                    // float32 fused multiply-add (see renderer.step)
	Inf, NaN string                    // float32 infinity and quiet NaN
	Bitcast  func(to, from, x string) string
	// GPU dialects: block index, thread index within the block, and whether module-level
	// atomics and fences (atomicAdd, __threadfence) exist for split reductions (gpu.go).
	GroupID, LocalID string
	Atomics          bool
	// SimdLoop, when set, precedes the innermost loop of elementwise kernels, and SimdSum
	// (%s is the accumulator) the innermost loop of a plain sum, in loop dialects: hints that
	// make the compiler vectorize them.
	SimdLoop, SimdSum string
	// SimdMax (%s: the accumulator, then an int flag OR-ed with "saw a NaN") precedes the
	// innermost loop of a float max.
	SimdMax string
	// UnrollLoop (%d is the trip count) precedes the outer loop of a 2-d upcast tile.
	UnrollLoop string
	Shared     string // qualifier for workgroup-local memory (GPU dialects; unused by C)
	Barrier    string // workgroup barrier statement (GPU dialects; unused by C)
}

func (d *Dialect) valueType(t dtype.DType) string {
	if c, ok := d.Compute[t]; ok {
		return c
	}
	return d.Types[t]
}

// C is the dialect of the CPU backend: plain C99 compiled by the system compiler. Kernels
// take (void **bufs, const int *vals, int start, int end) so that one calling convention
// serves every kernel and the launcher can split the outermost loop across threads.
var C = &Dialect{
	Name:        "c",
	Prelude:     "#include <math.h>\n" + cVectorMath,
	HalfPrelude: cHalf,
	Kernel: func(name string, params []Param) string {
		var b strings.Builder
		fmt.Fprintf(&b, "void %s(void **bufs, const int *vals, int start, int end) {\n", name)
		for i, p := range params {
			c := "const "
			if p.Out {
				c = ""
			}
			fmt.Fprintf(&b, "  %s%s *restrict %s = (%s%s *)bufs[%d];\n", c, p.DType.CName(), p.Name, c, p.DType.CName(), i)
		}
		return b.String()
	},
	Types:      map[dtype.DType]string{},
	Compute:    map[dtype.DType]string{dtype.Float16: "float", dtype.BFloat16: "float"},
	Convert:    map[dtype.DType][2]string{dtype.Float16: {"gf_h2f", "gf_f2h"}, dtype.BFloat16: {"gf_b2f", "gf_f2b"}},
	Math:       map[lazy.Op]string{lazy.Exp2: "exp2f", lazy.Log2: "log2f", lazy.Sin: "sinf", lazy.Sqrt: "sqrtf"},
	Fma:        "fmaf",
	SimdLoop:   "#pragma omp simd",
	SimdSum:    "#pragma omp simd reduction(+:%s)",
	SimdMax:    "#pragma omp simd reduction(max:%s) reduction(|:%s)",
	UnrollLoop: "#pragma GCC unroll %d",
	Inf:        "__builtin_inff()",
	NaN:        "__builtin_nanf(\"\")",
	Bitcast: func(to, from, x string) string {
		return fmt.Sprintf("((union{%s a; %s b;}){.a=%s}).b", from, to, x)
	},
}

func init() {
	for _, t := range dtype.All {
		C.Types[t] = t.CName()
	}
}

// cVectorMath declares the vector variants of the math functions that glibc's libmvec
// provides; the CPU runtime defines GF_MVEC (and links libmvec) where that library loads.
const cVectorMath = `#ifdef GF_MVEC
#pragma omp declare simd notinbranch
float exp2f(float);
#pragma omp declare simd notinbranch
float log2f(float);
#pragma omp declare simd notinbranch
float sinf(float);
#endif
`

// cHalf converts the 16-bit floats to and from float with round-to-nearest-even, in portable
// C (no _Float16 needed).
const cHalf = `static inline float gf_h2f(unsigned short h) {
  unsigned s = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  union { unsigned u; float f; } x;
  if (e == 0x1f) x.u = s | 0x7f800000u | (m << 13);
  else if (e == 0) { float f = (float)m * (1.0f / 16777216.0f); return s ? -f : f; }
  else x.u = s | ((e + 112) << 23) | (m << 13);
  return x.f;
}
static inline unsigned short gf_f2h(float f) {
  union { float f; unsigned u; } x; x.f = f;
  unsigned b = x.u, s = (b >> 16) & 0x8000u, m = b & 0x7fffffu; int e = (int)((b >> 23) & 0xff);
  if (e == 0xff) return (unsigned short)(s | (m ? 0x7e00u : 0x7c00u));
  e = e - 127 + 15;
  if (e >= 0x1f) return (unsigned short)(s | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (unsigned short)s;
    m |= 0x800000u;
    unsigned sh = (unsigned)(14 - e), h = m >> sh, r = m & ((1u << sh) - 1), hf = 1u << (sh - 1);
    if (r > hf || (r == hf && (h & 1u))) h++;
    return (unsigned short)(s | h);
  }
  unsigned h = ((unsigned)e << 10) | (m >> 13), r = m & 0x1fffu;
  if (r > 0x1000u || (r == 0x1000u && (h & 1u))) h++;
  return (unsigned short)(s | h);
}
static inline float gf_b2f(unsigned short h) { union { unsigned u; float f; } x; x.u = (unsigned)h << 16; return x.f; }
static inline unsigned short gf_f2b(float f) {
  union { float f; unsigned u; } x; x.f = f; unsigned b = x.u;
  if ((b & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((b >> 16) | 0x40u);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (unsigned short)(b >> 16);
}
`

// Dialects maps a device's Language to its dialect; backends add theirs from init.
var Dialects = map[string]*Dialect{"c": C}
