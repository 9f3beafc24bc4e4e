package runtime

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openCUDA returns the GPU, or skips the test (fails with CUDA_REQUIRE=1) when this machine has
// no CUDA driver or NVRTC.
func openCUDA(t testing.TB) *CUDA {
	t.Helper()
	d, err := Get("CUDA")
	if err != nil {
		if os.Getenv("CUDA_REQUIRE") != "" {
			t.Fatalf("CUDA_REQUIRE is set but CUDA cannot be opened: %v", err)
		}
		t.Skipf("no CUDA here (set CUDA_REQUIRE=1 to fail instead): %v", err)
	}
	return d.(*CUDA)
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesf32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func randf32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func upload(t testing.TB, d *CUDA, v []float32) Buffer {
	t.Helper()
	b, err := d.Alloc(4 * len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CopyIn(b, f32bytes(v)); err != nil {
		t.Fatal(err)
	}
	return b
}

// poisoned allocates n floats filled with NaN, so unwritten outputs show.
func poisoned(t testing.TB, d *CUDA, n int) Buffer {
	nan := make([]float32, n)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	return upload(t, d, nan)
}

func download(t testing.TB, d *CUDA, b Buffer, n int) []float32 {
	t.Helper()
	out := make([]byte, 4*n)
	if err := d.CopyOut(out, b); err != nil {
		t.Fatal(err)
	}
	return bytesf32(out)
}

const axpbSrc = `extern "C" __global__ void axpb(float* out, const float* x, const float* y, int n, int k) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = x[i] * (float)k + y[i];
}`

func TestCUDAMissingDriverErrorNamesSearch(t *testing.T) {
	_, err := OpenCUDA()
	if err == nil {
		t.Skip("CUDA is present; the missing-driver message cannot be seen here")
	}
	msg := err.Error()
	if !strings.Contains(msg, "libcuda.so.1") && !strings.Contains(msg, "searched") {
		t.Fatalf("error does not say what was searched: %v", err)
	}
}

func TestNVRTCCandidatesHonourCUDAPath(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib64")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"libnvrtc.so.13", "libnvrtc-builtins.so.13"} {
		if err := os.WriteFile(filepath.Join(lib, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CUDA_PATH", dir)
	libs, searched := nvrtcCandidates()
	if libs[0] != filepath.Join(lib, "libnvrtc.so.13") {
		t.Errorf("first candidate %q, want the CUDA_PATH library", libs[0])
	}
	for _, l := range libs {
		if strings.Contains(l, "builtins") {
			t.Errorf("builtins library %q offered as NVRTC", l)
		}
	}
	if searched[0] != lib {
		t.Errorf("first folder searched %q, want %q", searched[0], lib)
	}
}

func TestPoolSizeRounding(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024},
		{1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 1<<15}, {3 << 28, 3 << 28},
	} {
		if got := poolSize(tc.n); got != tc.want {
			t.Errorf("poolSize(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestCUDAKernelRoundTrip(t *testing.T) {
	d := openCUDA(t)
	t.Logf("device %s, NVRTC %s, include %q", d.Info(), d.nvrtc, d.include)
	if free, total, err := d.MemoryInfo(); err != nil || free <= 0 || free > total {
		t.Errorf("MemoryInfo = %d free of %d, %v", free, total, err)
	}
	r := rand.New(rand.NewPCG(1, uint64(os.Getpid())))
	const n = 1<<20 + 7 // not a multiple of the block
	x, y := randf32(r, n), randf32(r, n)
	k := int32(r.IntN(9) + 2)
	bx, by, bo := upload(t, d, x), upload(t, d, y), poisoned(t, d, n)
	defer func() { d.Free(bx); d.Free(by); d.Free(bo) }()
	p, err := d.Compile("axpb", axpbSrc)
	if err != nil {
		t.Fatal(err)
	}
	el, err := p.Launch([]Buffer{bo, bx, by}, []int32{n, k}, [3]int{(n + 255) / 256}, [3]int{256}, true)
	if err != nil {
		t.Fatal(err)
	}
	if el <= 0 {
		t.Errorf("timed launch reported %v", el)
	}
	got := download(t, d, bo, n)
	for i := range got {
		// NVRTC contracts the multiply-add into one rounding; Go rounds twice.
		if want := x[i]*float32(k) + y[i]; math.Abs(float64(got[i]-want)) > 1e-6*(math.Abs(float64(x[i]*float32(k)))+math.Abs(float64(y[i]))) {
			t.Fatalf("out[%d] = %v, want %v", i, got[i], want)
		}
	}
}

func TestCUDADeviceToDeviceCopy(t *testing.T) {
	d := openCUDA(t)
	r := rand.New(rand.NewPCG(2, uint64(os.Getpid())))
	x := randf32(r, 4099)
	src, dst := upload(t, d, x), poisoned(t, d, len(x))
	defer func() { d.Free(src); d.Free(dst) }()
	if err := d.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	got := download(t, d, dst, len(x))
	for i := range x {
		if got[i] != x[i] {
			t.Fatalf("copy[%d] = %v, want %v", i, got[i], x[i])
		}
	}
}

func TestCUDAAllocatorReusesFreedMemory(t *testing.T) {
	d := openCUDA(t)
	a, err := d.Alloc(3 << 20)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Ptr()
	d.Free(a)
	d.Free(a) // a second free is a no-op, not a double entry in the pool
	b, err := d.Alloc(3<<20 - 100)
	if err != nil {
		t.Fatal(err)
	}
	if b.Ptr() != p {
		t.Errorf("freed block %#x not reused (got %#x)", p, b.Ptr())
	}
	c, err := d.Alloc(3 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ptr() == p {
		t.Error("a live block was handed out twice")
	}
	d.Free(b)
	d.Free(c)
	if err := d.CopyIn(b, []byte{1}); err == nil {
		t.Error("copy into a freed buffer succeeded")
	}
}

func TestCUDACompileErrorCarriesLog(t *testing.T) {
	d := openCUDA(t)
	_, err := d.Compile("broken", `extern "C" __global__ void broken(float* o) { o[0] = undefined_thing; }`)
	if err == nil {
		t.Fatal("bad source compiled")
	}
	if !strings.Contains(err.Error(), "undefined_thing") || !strings.Contains(err.Error(), "broken") {
		t.Errorf("error lacks the NVRTC log or kernel name: %v", err)
	}
}

func TestCUDABadLaunchNamesError(t *testing.T) {
	d := openCUDA(t)
	p, err := d.Compile("axpb", axpbSrc)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := d.Alloc(4)
	defer d.Free(o)
	// A block's z dimension is at most 64 on every CUDA GPU.
	_, err = p.Launch([]Buffer{o, o, o}, []int32{1, 1}, [3]int{1}, [3]int{1, 1, 128}, true)
	if err == nil {
		t.Fatal("launch with block z = 128 succeeded")
	}
	if !strings.Contains(err.Error(), "CUDA_ERROR_INVALID_VALUE") || !strings.Contains(err.Error(), "axpb") {
		t.Errorf("error lacks the driver's error name or the kernel name: %v", err)
	}
	if _, err := d.CompileShared("axpb", axpbSrc, 1<<30); err == nil {
		t.Error("1 GiB of shared memory was accepted")
	}
	if err := d.Synchronize(); err != nil {
		t.Errorf("device unusable after a rejected launch: %v", err)
	}
}

func TestCUDAHalfAndBFloat16(t *testing.T) {
	d := openCUDA(t)
	src := `#include <cuda_fp16.h>
#include <cuda_bf16.h>
extern "C" __global__ void cvt(float* out, const float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  half h = __float2half(x[i]);
  __nv_bfloat16 b = __float2bfloat16(x[i]);
  out[2*i] = __half2float(h * h);
  out[2*i+1] = __bfloat162float(b + b);
}`
	p, err := d.Compile("cvt", src)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{1.5, -2.25, 0.1, 3}
	bx, bo := upload(t, d, x), poisoned(t, d, 2*len(x))
	defer func() { d.Free(bx); d.Free(bo) }()
	if _, err := p.Launch([]Buffer{bo, bx}, []int32{int32(len(x))}, [3]int{1}, [3]int{32}, true); err != nil {
		t.Fatal(err)
	}
	got := download(t, d, bo, 2*len(x))
	for i, v := range x {
		if h := got[2*i]; math.Abs(float64(h-v*v)) > 2e-3*float64(v*v)+1e-3 {
			t.Errorf("half %v² = %v", v, h)
		}
		if b := got[2*i+1]; math.Abs(float64(b-2*v)) > 1e-2*math.Abs(float64(2*v)) {
			t.Errorf("bfloat16 %v+%v = %v", v, v, b)
		}
	}
}

func TestCUDADiskCache(t *testing.T) {
	d := openCUDA(t)
	dir := t.TempDir()
	t.Setenv("GRADFORGE_CACHE", dir)
	src := strings.Replace(axpbSrc, "(float)k", "(float)(k+0)", 1) // a source no other test compiles
	p, err := d.Compile("axpb", src)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "cuda", "*.cubin"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v, want one cubin", files)
	}
	q, err := d.Compile("axpb", src)
	if err != nil || q != p {
		t.Errorf("second compile: %v, same program %v", err, q == p)
	}
}

func TestCUDAGraphReplaysLaunches(t *testing.T) {
	d := openCUDA(t)
	p, err := d.Compile("axpb", axpbSrc)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, uint64(os.Getpid())))
	const n = 1000
	x, y := randf32(r, n), randf32(r, n)
	bx, by, bt, bo := upload(t, d, x), upload(t, d, y), poisoned(t, d, n), poisoned(t, d, n)
	g, err := d.Capture(func() error {
		if _, err := p.Launch([]Buffer{bt, bx, by}, []int32{n, 2}, [3]int{4}, [3]int{256}, false); err != nil {
			return err
		}
		_, err := p.Launch([]Buffer{bo, bt, by}, []int32{n, 3}, [3]int{4}, [3]int{256}, false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := download(t, d, bo, n); !math.IsNaN(float64(got[0])) {
		t.Fatal("capture ran the kernels instead of recording them")
	}
	for range 2 {
		if _, err := g.Launch(true); err != nil {
			t.Fatal(err)
		}
	}
	got := download(t, d, bo, n)
	for i := range got {
		if want := (x[i]*2+y[i])*3 + y[i]; math.Abs(float64(got[i]-want)) > 1e-5*math.Abs(float64(want))+1e-6 {
			t.Fatalf("out[%d] = %v, want %v", i, got[i], want)
		}
	}
}

func TestCUDAGraphHoldsFreedBuffers(t *testing.T) {
	d := openCUDA(t)
	p, err := d.Compile("axpb", axpbSrc)
	if err != nil {
		t.Fatal(err)
	}
	x := upload(t, d, []float32{1, 2, 3})
	y := upload(t, d, []float32{10, 20, 30})
	o := poisoned(t, d, 3)
	g, err := d.Capture(func() error {
		_, err := p.Launch([]Buffer{o, x, y}, []int32{3, 2}, [3]int{1}, [3]int{32}, false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Free(y) // the graph still reads y: its memory must not be handed out again
	z, err := d.Alloc(12)
	if err != nil {
		t.Fatal(err)
	}
	if z.Ptr() == y.Ptr() {
		t.Fatal("memory held by a graph was reused")
	}
	if _, err := g.Launch(true); err != nil {
		t.Fatal(err)
	}
	if got := download(t, d, o, 3); got[2] != 36 {
		t.Errorf("replay gave %v, want [12 24 36]", got)
	}
	g.Close()
	w, err := d.Alloc(12)
	if err != nil {
		t.Fatal(err)
	}
	if w.Ptr() != y.Ptr() {
		t.Errorf("memory released by Close not reused (got %#x, want %#x)", w.Ptr(), y.Ptr())
	}
}
