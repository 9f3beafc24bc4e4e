package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gradforge/gradforge/framework/runtime"
)

// Hand-written CUDA kernels for the "runtime" rows: what the runtime reaches with code shaped
// the way the generator should shape it (16-byte loads, block-wide reductions, one pass over
// a softmax row). The matrix products need none: the generator emits its tiled kernels
// (codegen/gpu.go) for them.

const fillSrc = `extern "C" __global__ void fill(float* o, unsigned n, unsigned seed) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    unsigned h = i * 0x9E3779B9u ^ seed;
    h ^= h >> 16; h *= 0x7feb352du; h ^= h >> 15; h *= 0x846ca68bu; h ^= h >> 16;
    o[i] = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
}
`

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

// copySrc moves 64 bytes per thread: four 16-byte loads in flight, each coalesced.
const copySrc = `extern "C" __global__ void copy4(float4* o, const float4* __restrict__ x, int q) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= q) return;
  float4 a = x[i], b = x[i + q], c = x[i + 2 * q], d = x[i + 3 * q];
  o[i] = a; o[i + q] = b; o[i + 2 * q] = c; o[i + 3 * q] = d;
}`

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

	r = Result{Case: "copy", Impl: "runtime", Bytes: int64(8 * n), Note: "float4 kernel"}
	func() {
		s := seed()
		x, y := k.rand(n, s), k.alloc(4*n)
		defer k.free(x, y)
		p, q := k.compile("copy4", copySrc), n/16
		if k.err == nil {
			r.Ms, k.err = median(o.Reps, func() (time.Duration, error) {
				return p.Launch([]runtime.Buffer{y, x}, []int32{int32(q)}, [3]int{(q + 255) / 256}, [3]int{256}, true)
			})
		}
		if k.err == nil {
			k.check("copy", k.read(y, n), func(i int) float64 { return float64(fillValue(uint32(i), s)) }, 0)
		}
		add(r, k.take())
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
