package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/runtime"
)

// Hand-written CUDA kernels for the "runtime" rows: what the runtime reaches with code shaped
// the way the generator should shape it (16-byte loads, block-wide reductions, tensor cores).

const fillSrc = `extern "C" __global__ void fill(float* o, unsigned n, unsigned seed) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    unsigned h = i * 0x9E3779B9u ^ seed;
    h ^= h >> 16; h *= 0x7feb352du; h ^= h >> 15; h *= 0x846ca68bu; h ^= h >> 16;
    o[i] = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
}
extern "C" __global__ void tohalf(half* o, const float* x, unsigned n) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) o[i] = __float2half(x[i]);
}`

// fillValue is fillSrc's value for index i, so results can be checked on the host.
func fillValue(i, seed uint32) float32 {
	h := i*0x9E3779B9 ^ seed
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	h *= 0x846ca68b
	h ^= h >> 16
	return float32(h>>8)*(2.0/16777216.0) - 1
}

const product6Src = `extern "C" __global__ void product6(float4* o, const float4* __restrict__ a, const float4* __restrict__ b,
    const float4* __restrict__ c, const float4* __restrict__ d, const float4* __restrict__ e, const float4* __restrict__ f, int n4) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n4) return;
  float4 x = a[i], y = b[i], z = c[i], u = d[i], v = e[i], w = f[i];
  o[i] = make_float4(x.x*y.x*z.x*u.x*v.x*w.x, x.y*y.y*z.y*u.y*v.y*w.y, x.z*y.z*z.z*u.z*v.z*w.z, x.w*y.w*z.w*u.w*v.w*w.w);
}`

const sumSrc = `__device__ __forceinline__ float blocksum(float v) {
  __shared__ float part[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
  if (threadIdx.x < 32) for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
extern "C" __global__ void sum_partial(float* out, const float4* __restrict__ x, int n4) {
  float a = 0, b = 0, c = 0, d = 0;
  int stride = gridDim.x * blockDim.x, i = blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n4; i += 4 * stride) {
    float4 p = x[i], q = x[i + stride], r = x[i + 2 * stride], s = x[i + 3 * stride];
    a += (p.x + p.y) + (p.z + p.w); b += (q.x + q.y) + (q.z + q.w);
    c += (r.x + r.y) + (r.z + r.w); d += (s.x + s.y) + (s.z + s.w);
  }
  for (; i < n4; i += stride) { float4 p = x[i]; a += (p.x + p.y) + (p.z + p.w); }
  float v = blocksum((a + b) + (c + d));
  if (threadIdx.x == 0) out[blockIdx.x] = v;
}
extern "C" __global__ void sum_final(float* out, const float* __restrict__ part, int n) {
  float v = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) v += part[i];
  v = blocksum(v);
  if (threadIdx.x == 0) out[0] = v;
}`

// softmaxSrc: one block per row, VEC float4 per thread kept in registers, so each element is
// read once and written once.
const softmaxSrc = `#define VEC %d
#define INFINITY __int_as_float(0x7f800000)
__device__ __forceinline__ float blockreduce(float v, bool isMax) {
  __shared__ float part[32];
  __shared__ float total;
  for (int o = 16; o > 0; o >>= 1) { float w = __shfl_xor_sync(0xffffffffu, v, o); v = isMax ? fmaxf(v, w) : v + w; }
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : (isMax ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) { float w = __shfl_xor_sync(0xffffffffu, v, o); v = isMax ? fmaxf(v, w) : v + w; }
    if (threadIdx.x == 0) total = v;
  }
  __syncthreads();
  return total;
}
extern "C" __global__ void softmax(float4* out, const float4* __restrict__ x, int cols4) {
  const float4* row = x + (size_t)blockIdx.x * cols4;
  float4 v[VEC];
  float m = -INFINITY;
  #pragma unroll
  for (int j = 0; j < VEC; j++) { v[j] = row[j * blockDim.x + threadIdx.x]; m = fmaxf(m, fmaxf(fmaxf(v[j].x, v[j].y), fmaxf(v[j].z, v[j].w))); }
  m = blockreduce(m, true);
  float s = 0, k = 1.4426950408889634f;
  #pragma unroll
  for (int j = 0; j < VEC; j++) {
    v[j].x = exp2f((v[j].x - m) * k); v[j].y = exp2f((v[j].y - m) * k);
    v[j].z = exp2f((v[j].z - m) * k); v[j].w = exp2f((v[j].w - m) * k);
    s += (v[j].x + v[j].y) + (v[j].z + v[j].w);
  }
  s = 1.0f / blockreduce(s, false);
  float4* o = out + (size_t)blockIdx.x * cols4;
  #pragma unroll
  for (int j = 0; j < VEC; j++) o[j * blockDim.x + threadIdx.x] = make_float4(v[j].x * s, v[j].y * s, v[j].z * s, v[j].w * s);
}`

// sgemmSrc: float32 C = A·B, all row-major, M, N multiples of 128 and K of 8. 128×128 tiles,
// 256 threads each computing 8×8 outputs from shared memory.
const sgemmSrc = `extern "C" __global__ void __launch_bounds__(256) sgemm(float* C, const float* __restrict__ A, const float* __restrict__ B, int M, int N, int K) {
  __shared__ __align__(16) float As[2][8][128];
  __shared__ __align__(16) float Bs[2][8][128];
  int t = threadIdx.x, tx = t % 16, ty = t / 16;
  int bm = blockIdx.y * 128, bn = blockIdx.x * 128;
  const float* a = A + (size_t)(bm + t / 2) * K + (t % 2) * 4;
  const float* b = B + (size_t)(t / 32) * N + bn + (t % 32) * 4;
  float acc[8][8] = {};
  float4 ra = *(const float4*)a, rb = *(const float4*)b;
  int buf = 0;
  As[0][(t % 2) * 4 + 0][t / 2] = ra.x; As[0][(t % 2) * 4 + 1][t / 2] = ra.y;
  As[0][(t % 2) * 4 + 2][t / 2] = ra.z; As[0][(t % 2) * 4 + 3][t / 2] = ra.w;
  *(float4*)&Bs[0][t / 32][(t % 32) * 4] = rb;
  __syncthreads();
  for (int k0 = 0; k0 < K; k0 += 8) {
    bool more = k0 + 8 < K;
    if (more) { ra = *(const float4*)(a + k0 + 8); rb = *(const float4*)(b + (size_t)(k0 + 8) * N); }
    #pragma unroll
    for (int k = 0; k < 8; k++) {
      float4 a0 = *(float4*)&As[buf][k][ty * 4], a1 = *(float4*)&As[buf][k][64 + ty * 4];
      float4 b0 = *(float4*)&Bs[buf][k][tx * 4], b1 = *(float4*)&Bs[buf][k][64 + tx * 4];
      float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      #pragma unroll
      for (int i = 0; i < 8; i++)
        #pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) {
      buf ^= 1;
      As[buf][(t % 2) * 4 + 0][t / 2] = ra.x; As[buf][(t % 2) * 4 + 1][t / 2] = ra.y;
      As[buf][(t % 2) * 4 + 2][t / 2] = ra.z; As[buf][(t % 2) * 4 + 3][t / 2] = ra.w;
      *(float4*)&Bs[buf][t / 32][(t % 32) * 4] = rb;
      __syncthreads();
    }
  }
  #pragma unroll
  for (int i = 0; i < 8; i++) {
    int r = bm + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    *(float4*)&C[(size_t)r * N + bn + tx * 4] = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
    *(float4*)&C[(size_t)r * N + bn + 64 + tx * 4] = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
  }
}`

// hgemmSrc: float16 C = A·B with float accumulation on the tensor cores (WMMA 16×16×16),
// row-major, M, N multiples of 128 and K of 32. 128×128×32 tiles, 8 warps of 64×32 each,
// two shared-memory stages filled by cp.async.
const hgemmSrc = `#include <mma.h>
using namespace nvcuda;
#define BM 128
#define BN 128
#define BK 32
#define AP (BK + 8)
#define BP (BN + 8)
__device__ __forceinline__ void cp16(void* s, const void* g) {
  unsigned sa = (unsigned)__cvta_generic_to_shared(s);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(sa), "l"(g));
}
extern "C" __global__ void __launch_bounds__(256) hgemm(half* C, const half* __restrict__ A, const half* __restrict__ B, int M, int N, int K) {
  __shared__ __align__(128) half As[2][BM * AP];
  __shared__ __align__(128) half Bs[2][BK * BP];
  int t = threadIdx.x, warp = t / 32, wm = warp / 4, wn = warp % 4;
  int bm = blockIdx.y * BM, bn = blockIdx.x * BN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
  auto load = [&](int st, int k0) {
    #pragma unroll
    for (int r = 0; r < 2; r++) {
      int id = t + r * 256;
      int ar = id / 4, ac = (id % 4) * 8;
      cp16(&As[st][ar * AP + ac], A + (size_t)(bm + ar) * K + k0 + ac);
      int br = id / 16, bc = (id % 16) * 8;
      cp16(&Bs[st][br * BP + bc], B + (size_t)(k0 + br) * N + bn + bc);
    }
    asm volatile("cp.async.commit_group;\n" ::);
  };
  load(0, 0);
  int st = 0;
  for (int k0 = 0; k0 < K; k0 += BK) {
    if (k0 + BK < K) { load(st ^ 1, k0 + BK); asm volatile("cp.async.wait_group 1;\n" ::); }
    else asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();
    #pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> fb[2];
      #pragma unroll
      for (int i = 0; i < 4; i++) wmma::load_matrix_sync(fa[i], &As[st][(wm * 64 + i * 16) * AP + kk], AP);
      #pragma unroll
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &Bs[st][kk * BP + wn * 32 + j * 16], BP);
      #pragma unroll
      for (int i = 0; i < 4; i++)
        #pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
    st ^= 1;
  }
  float* stage = (float*)&As[0][0] + warp * 256;
  int lane = t % 32;
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 2; j++) {
      wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      int r = lane / 2, c = (lane % 2) * 8;
      __align__(16) half h[8];
      #pragma unroll
      for (int e = 0; e < 8; e++) h[e] = __float2half(stage[r * 16 + c + e]);
      *(uint4*)&C[(size_t)(bm + wm * 64 + i * 16 + r) * N + bn + wn * 32 + j * 16 + c] = *(uint4*)h;
      __syncwarp();
    }
}`

// Runtime runs the hand-written kernels on dev and returns their results (checked against
// host arithmetic on sampled outputs; a wrong result is reported as an error).
func Runtime(dev *runtime.CUDA, o Options, sz Sizes) []Result {
	var out []Result
	add := func(r Result, err error) {
		if err != nil {
			r.Err = err.Error()
		}
		out = append(out, r)
	}
	k := &kit{dev: dev}
	n := sz.N
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seed := func() uint32 { return rng.Uint32() }

	r := Result{Case: "copy", Impl: "runtime", Bytes: int64(8 * n), Note: "cuMemcpyDtoDAsync"}
	func() {
		x, y := k.rand(n, seed()), k.alloc(4*n)
		defer k.free(x, y)
		g, err := k.capture(func() error { return dev.Copy(y, x) })
		if err != nil {
			add(r, err)
			return
		}
		defer g.Close()
		r.Ms, err = median(o.Reps, func() (time.Duration, error) { return g.Launch(true) })
		add(r, err)
	}()

	r = Result{Case: "product6", Impl: "runtime", Bytes: int64(28 * n)}
	func() {
		seeds := []uint32{seed(), seed(), seed(), seed(), seed(), seed()}
		var in []runtime.Buffer
		for _, s := range seeds {
			in = append(in, k.rand(n, s))
		}
		res := k.alloc(4 * n)
		defer k.free(append(in, res)...)
		p := k.compile("product6", product6Src)
		n4 := n / 4
		launch := func() (time.Duration, error) {
			return p.Launch(append([]runtime.Buffer{res}, in...), []int32{int32(n4)}, [3]int{(n4 + 255) / 256}, [3]int{256}, true)
		}
		if k.err == nil {
			r.Ms, k.err = median(o.Reps, launch)
		}
		if k.err == nil {
			got := k.read(res, n)
			k.check("product6", got, func(i int) float64 {
				v := 1.0
				for _, s := range seeds {
					v *= float64(fillValue(uint32(i), s))
				}
				return v
			}, 1e-6)
		}
		add(r, k.take())
	}()

	r = Result{Case: "sum", Impl: "runtime", Bytes: int64(4 * n), Note: "2 launches in a CUDA graph"}
	func() {
		s := seed()
		x, part, res := k.rand(n, s), k.alloc(4*4096), k.alloc(4)
		defer k.free(x, part, res)
		pp, pf := k.compile("sum_partial", sumSrc), k.compile("sum_final", sumSrc)
		blocks := dev.SMs() * 4
		if k.err != nil {
			add(r, k.take())
			return
		}
		g, err := k.capture(func() error {
			if _, err := pp.Launch([]runtime.Buffer{part, x}, []int32{int32(n / 4)}, [3]int{blocks}, [3]int{1024}, false); err != nil {
				return err
			}
			_, err := pf.Launch([]runtime.Buffer{res, part}, []int32{int32(blocks)}, [3]int{1}, [3]int{1024}, false)
			return err
		})
		if err != nil {
			add(r, err)
			return
		}
		defer g.Close()
		r.Ms, k.err = median(o.Reps, func() (time.Duration, error) { return g.Launch(true) })
		if k.err == nil {
			var want float64
			for i := range n {
				want += float64(fillValue(uint32(i), s))
			}
			got := float64(k.read(res, 1)[0])
			if math.Abs(got-want) > 1e-4*math.Sqrt(float64(n)) {
				k.err = fmt.Errorf("sum = %v, want %v", got, want)
			}
		}
		add(r, k.take())
	}()

	rows := sz.Rows
	r = Result{Case: "softmax", Impl: "runtime", Bytes: int64(8 * rows * rows)}
	func() {
		s := seed()
		x, y := k.rand(rows*rows, s), k.alloc(4*rows*rows)
		defer k.free(x, y)
		threads := min(1024, rows/4)
		vec := rows / 4 / threads
		p := k.compile("softmax", fmt.Sprintf(softmaxSrc, vec))
		if k.err == nil {
			r.Ms, k.err = median(o.Reps, func() (time.Duration, error) {
				return p.Launch([]runtime.Buffer{y, x}, []int32{int32(rows / 4)}, [3]int{rows}, [3]int{threads}, true)
			})
		}
		if k.err == nil {
			got := k.read(y, rows*rows)
			for _, row := range []int{0, rows / 3, rows - 1} {
				var m, z float64 = math.Inf(-1), 0
				for c := range rows {
					m = math.Max(m, float64(fillValue(uint32(row*rows+c), s)))
				}
				for c := range rows {
					z += math.Exp(float64(fillValue(uint32(row*rows+c), s)) - m)
				}
				for c := 0; c < rows; c += 97 {
					want := math.Exp(float64(fillValue(uint32(row*rows+c), s))-m) / z
					if g := float64(got[row*rows+c]); math.Abs(g-want) > 1e-5*want+1e-9 {
						k.err = fmt.Errorf("softmax[%d,%d] = %v, want %v", row, c, g, want)
					}
				}
			}
		}
		add(r, k.take())
	}()

	mm := sz.MM
	for _, half := range []bool{false, true} {
		name, src, fn := "matmul_f32", sgemmSrc, "sgemm"
		if half {
			name, src, fn = "matmul_f16", hgemmSrc, "hgemm"
		}
		r = Result{Case: name, Impl: "runtime", Flops: 2 * int64(mm) * int64(mm) * int64(mm)}
		if half {
			r.Note = "WMMA"
		}
		func() {
			sa, sb := seed(), seed()
			a, b, c := k.rand(mm*mm, sa), k.rand(mm*mm, sb), k.alloc(4*mm*mm)
			defer k.free(a, b, c)
			elt := 4
			if half {
				a, b = k.half(a, mm*mm), k.half(b, mm*mm)
				elt = 2
			}
			p := k.compile(fn, src)
			if k.err == nil {
				r.Ms, k.err = median(o.Reps, func() (time.Duration, error) {
					return p.Launch([]runtime.Buffer{c, a, b}, []int32{int32(mm), int32(mm), int32(mm)}, [3]int{mm / 128, mm / 128}, [3]int{256}, true)
				})
			}
			if k.err == nil {
				got := k.readAs(c, mm*mm, elt)
				tol := 1e-4
				if half {
					tol = 2e-3
				}
				for _, ij := range [][2]int{{0, 0}, {mm - 1, mm - 1}, {mm / 3, mm/2 + 5}, {7, mm - 9}} {
					var want float64
					for l := range mm {
						av, bv := fillValue(uint32(ij[0]*mm+l), sa), fillValue(uint32(l*mm+ij[1]), sb)
						if half {
							av, bv = dtype.HalfToFloat32(dtype.Float32ToHalf(av)), dtype.HalfToFloat32(dtype.Float32ToHalf(bv))
						}
						want += float64(av) * float64(bv)
					}
					if g := got[ij[0]*mm+ij[1]]; math.Abs(g-want) > tol*math.Sqrt(float64(mm))+tol*math.Abs(want) {
						k.err = fmt.Errorf("%s[%d,%d] = %v, want %v", name, ij[0], ij[1], g, want)
					}
				}
			}
			add(r, k.take())
		}()
	}
	return out
}

// kit carries the first error of a case through its steps, so each case reads top to bottom.
type kit struct {
	dev *runtime.CUDA
	err error
}

func (k *kit) take() error { e := k.err; k.err = nil; return e }

func (k *kit) alloc(n int) runtime.Buffer {
	if k.err != nil {
		return nil
	}
	b, err := k.dev.Alloc(n)
	k.err = err
	return b
}

func (k *kit) free(bs ...runtime.Buffer) {
	for _, b := range bs {
		if b != nil {
			k.dev.Free(b)
		}
	}
}

func (k *kit) compile(fn, src string) runtime.Program {
	if k.err != nil {
		return nil
	}
	p, err := k.dev.Compile(fn, "#include <cuda_fp16.h>\n"+src)
	k.err = err
	return p
}

// rand returns n floats of fillValue(i, seed), made on the device.
func (k *kit) rand(n int, seed uint32) runtime.Buffer {
	b, p := k.alloc(4*n), k.compile("fill", fillSrc)
	if k.err == nil {
		_, k.err = p.Launch([]runtime.Buffer{b}, []int32{int32(n), int32(seed)}, [3]int{k.dev.SMs() * 16}, [3]int{256}, true)
	}
	return b
}

// half converts n floats to float16 in a new buffer and frees the old one.
func (k *kit) half(x runtime.Buffer, n int) runtime.Buffer {
	b, p := k.alloc(2*n), k.compile("tohalf", fillSrc)
	if k.err == nil {
		_, k.err = p.Launch([]runtime.Buffer{b, x}, []int32{int32(n)}, [3]int{k.dev.SMs() * 16}, [3]int{256}, true)
	}
	k.free(x)
	return b
}

func (k *kit) capture(f func() error) (*runtime.Graph, error) {
	if k.err != nil {
		return nil, k.take()
	}
	return k.dev.Capture(f)
}

func (k *kit) read(b runtime.Buffer, n int) []float32 {
	raw := make([]byte, 4*n)
	if k.err == nil {
		k.err = k.dev.CopyOut(raw, b)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func (k *kit) readAs(b runtime.Buffer, n, elt int) []float64 {
	out := make([]float64, n)
	if elt == 4 {
		for i, v := range k.read(b, n) {
			out[i] = float64(v)
		}
		return out
	}
	raw := make([]byte, 2*n)
	if k.err == nil {
		k.err = k.dev.CopyOut(raw, b)
	}
	for i := range out {
		out[i] = float64(dtype.HalfToFloat32(binary.LittleEndian.Uint16(raw[2*i:])))
	}
	return out
}

// check compares got with want(i) at a spread of indices.
func (k *kit) check(name string, got []float32, want func(int) float64, tol float64) {
	if k.err != nil {
		return
	}
	step := max(1, len(got)/4099)
	for i := 0; i < len(got); i += step {
		w := want(i)
		if g := float64(got[i]); math.IsNaN(g) || math.Abs(g-w) > tol*math.Abs(w)+1e-30 {
			k.err = fmt.Errorf("%s[%d] = %v, want %v", name, i, g, w)
			return
		}
	}
}
