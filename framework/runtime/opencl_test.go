package runtime_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/framework/codegen"
	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
	rt "github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/schedule"
	"github.com/gradforge/gradforge/framework/tensor"
	"github.com/gradforge/gradforge/framework/view"
)

// openCL opens a fresh OpenCL device, or skips saying why (CL_REQUIRE=1 makes a missing
// device a failure).
func openCL(t *testing.T) *rt.CL {
	t.Helper()
	d, err := rt.OpenCL()
	if err != nil {
		if os.Getenv("CL_REQUIRE") == "1" {
			t.Fatalf("CL_REQUIRE=1 but OpenCL does not open: %v", err)
		}
		t.Skipf("skipping: no OpenCL device (%v); install ocl-icd-libopencl1 and pocl-opencl-icd, CL_REQUIRE=1 makes this a failure", err)
	}
	return d.(*rt.CL)
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// upload allocates a buffer on d holding v.
func upload(t *testing.T, d rt.Device, v []float32) rt.Buffer {
	t.Helper()
	b, err := d.Alloc(4 * len(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Free(b) })
	if err := d.CopyIn(b, f32bytes(v)); err != nil {
		t.Fatal(err)
	}
	return b
}

func download(t *testing.T, d rt.Device, b rt.Buffer) []float32 {
	t.Helper()
	out := make([]byte, b.Size())
	if err := d.CopyOut(out, b); err != nil {
		t.Fatal(err)
	}
	return bytesF32(out)
}

const saxpy = `__kernel void saxpy(__global float *restrict y, __global const float *restrict x, int n) {
  int i = get_global_id(0);
  if (i < n) y[i] = 2.0f * x[i] + y[i];
}
`

func TestCLLaunchComputesAndTimes(t *testing.T) {
	d := openCL(t)
	t.Log(d.Info())
	const n = 1000
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], y[i] = float32(i), float32(-i)/4
	}
	bx, by := upload(t, d, x), upload(t, d, y)
	p, err := d.Compile("saxpy", saxpy)
	if err != nil {
		t.Fatal(err)
	}
	// 16 groups of 64 work-items cover 1024 ≥ n; the kernel guards the rest.
	el, err := p.Launch([]rt.Buffer{by, bx}, []int32{n}, [3]int{16, 1, 1}, [3]int{64, 1, 1}, true)
	if err != nil {
		t.Fatal(err)
	}
	if el <= 0 || el > time.Minute {
		t.Errorf("profiled kernel time %v, want a positive duration from the event", el)
	}
	got := download(t, d, by)
	for i := range got {
		if want := 2*x[i] + y[i]; got[i] != want {
			t.Fatalf("y[%d] = %v, want %v", i, got[i], want)
		}
	}
	if _, err := p.Launch([]rt.Buffer{by, bx}, []int32{n}, [3]int{16, 1, 1}, [3]int{64, 1, 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if got := download(t, d, by); got[10] != 4*x[10]+y[10] {
		t.Errorf("second (unwaited) launch: y[10] = %v, want %v", got[10], 4*x[10]+y[10])
	}
}

func TestCLBuildFailureCarriesLog(t *testing.T) {
	d := openCL(t)
	_, err := d.Compile("broken", "__kernel void broken(__global float *a) { a[0] = undeclared_thing; }\n")
	var ce *rt.CLError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want a *CLError", err, err)
	}
	if ce.Call != "clBuildProgram" || ce.Kernel != "broken" || ce.Name != "CL_BUILD_PROGRAM_FAILURE" || ce.Code != -11 {
		t.Errorf("error %+v, want clBuildProgram / broken / CL_BUILD_PROGRAM_FAILURE (-11)", ce)
	}
	if !strings.Contains(ce.Log, "undeclared_thing") || !strings.Contains(err.Error(), "undeclared_thing") {
		t.Errorf("build log does not name the undeclared identifier:\n%s", err)
	}
}

func TestCLLaunchErrorsNameKernel(t *testing.T) {
	d := openCL(t)
	p, err := d.Compile("saxpy", saxpy)
	if err != nil {
		t.Fatal(err)
	}
	b := upload(t, d, make([]float32, 4))
	// A work-group larger than any device allows.
	_, err = p.Launch([]rt.Buffer{b, b}, []int32{4}, [3]int{1, 1, 1}, [3]int{1 << 20, 1, 1}, true)
	if err == nil || !strings.Contains(err.Error(), "saxpy") {
		t.Errorf("oversized work-group: error %v, want one naming kernel saxpy", err)
	}
	// Three arguments declared, one given: refused before the stale arguments of the last
	// launch could be used.
	_, err = p.Launch([]rt.Buffer{b}, nil, [3]int{1, 1, 1}, [3]int{4, 1, 1}, true)
	if err == nil || !strings.Contains(err.Error(), "saxpy") || !strings.Contains(err.Error(), "3 arguments") {
		t.Errorf("missing arguments: error %v, want one naming saxpy and its 3 arguments", err)
	}
	d.Free(b)
	if _, err := p.Launch([]rt.Buffer{b, b}, []int32{4}, [3]int{1, 1, 1}, [3]int{4, 1, 1}, true); err == nil || !strings.Contains(err.Error(), "freed") {
		t.Errorf("launch on a freed buffer: error %v, want one saying it was freed", err)
	}
}

func TestCLBinaryCacheSurvivesReopen(t *testing.T) {
	t.Setenv("GRADFORGE_CACHE", t.TempDir())
	d := openCL(t)
	cache := filepath.Join(os.Getenv("GRADFORGE_CACHE"), "opencl")
	src := fmt.Sprintf("// cache test %d\n%s", time.Now().UnixNano(), saxpy)
	if _, err := d.Compile("saxpy", src); err != nil {
		t.Fatal(err)
	}
	if d.Compiles() != 1 {
		t.Fatalf("first compile: %d builds from source, want 1", d.Compiles())
	}
	bins, _ := filepath.Glob(filepath.Join(cache, "*.bin"))
	if len(bins) != 1 {
		t.Skipf("the driver gave no program binary (CL_PROGRAM_BINARIES); nothing cached in %s", cache)
	}
	// A second device in the same process has no programs in memory: it must load the binary.
	e, err := rt.OpenCL()
	if err != nil {
		t.Fatal(err)
	}
	e2 := e.(*rt.CL)
	p, err := e2.Compile("saxpy", src)
	if err != nil {
		t.Fatal(err)
	}
	if e2.Compiles() != 0 {
		t.Errorf("reopened device built from source %d times; the cached binary was not used", e2.Compiles())
	}
	y, x := upload(t, e2, []float32{1, 2}), upload(t, e2, []float32{10, 20})
	if _, err := p.Launch([]rt.Buffer{y, x}, []int32{2}, [3]int{1, 1, 1}, [3]int{2, 1, 1}, true); err != nil {
		t.Fatal(err)
	}
	if got := download(t, e2, y); got[0] != 21 || got[1] != 42 {
		t.Errorf("kernel from the cached binary computed %v, want [21 42]", got)
	}
	// A damaged cache file is rebuilt from source, not trusted.
	if err := os.WriteFile(bins[0], []byte("not a binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := rt.OpenCL()
	f3 := f.(*rt.CL)
	if _, err := f3.Compile("saxpy", src); err != nil {
		t.Fatalf("damaged cache entry: %v", err)
	}
	if f3.Compiles() != 1 {
		t.Errorf("damaged cache entry: %d builds from source, want 1", f3.Compiles())
	}
}

func TestCLDeviceSelection(t *testing.T) {
	openCL(t) // skips without OpenCL
	t.Setenv("CL_PLATFORM", "0")
	t.Setenv("CL_DEVICE", "0")
	if _, err := rt.OpenCL(); err != nil {
		t.Errorf("CL_PLATFORM=0 CL_DEVICE=0: %v", err)
	}
	t.Setenv("CL_DEVICE", "no-such-device-anywhere")
	_, err := rt.OpenCL()
	if err == nil || !strings.Contains(err.Error(), "no-such-device-anywhere") || !strings.Contains(err.Error(), "found:") {
		t.Errorf("unknown CL_DEVICE: error %v, want one naming the selector and listing the devices found", err)
	}
}

// TestCLHalfArithmetic runs a kernel that computes in half, which needs cl_khr_fp16; the
// framework's float16 tensors do not (see TestCLFramework).
func TestCLHalfArithmetic(t *testing.T) {
	d := openCL(t)
	if !d.HasFP16() {
		t.Skipf("skipping: %s lacks cl_khr_fp16 (float16 tensors still work, through vload_half/vstore_half)", d.Info())
	}
	src := `#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void hmul(__global half *y, __global const half *x) { int i = get_global_id(0); y[i] = x[i] * x[i]; }
`
	p, err := d.Compile("hmul", src)
	if err != nil {
		t.Fatal(err)
	}
	in := []uint16{dtype.Float32ToHalf(1.5), dtype.Float32ToHalf(-3)}
	raw := make([]byte, 4)
	binary.LittleEndian.PutUint16(raw, in[0])
	binary.LittleEndian.PutUint16(raw[2:], in[1])
	x, _ := d.Alloc(4)
	y, _ := d.Alloc(4)
	defer d.Free(x)
	defer d.Free(y)
	if err := d.CopyIn(x, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Launch([]rt.Buffer{y, x}, nil, [3]int{1, 1, 1}, [3]int{2, 1, 1}, true); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4)
	if err := d.CopyOut(out, y); err != nil {
		t.Fatal(err)
	}
	if a, b := dtype.HalfToFloat32(binary.LittleEndian.Uint16(out)), dtype.HalfToFloat32(binary.LittleEndian.Uint16(out[2:])); a != 2.25 || b != 9 {
		t.Errorf("half squares = %v, %v, want 2.25, 9", a, b)
	}
}

// TestCLFramework runs tensors on DEVICE=CL through the OpenCL dialect: a grouped reduction
// through local memory, float16 and bfloat16 storage, and int64 sums, checked against Go.
func TestCLFramework(t *testing.T) {
	openCL(t)
	t.Setenv("DEVICE", "CL")
	if _, err := rt.Get("CL"); err != nil {
		t.Fatal(err)
	}
	const rows, cols = 3, 1000
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(i%97)/50 - 1
	}
	x := tensor.FromSlice(v, rows, cols)
	sums, err := x.Sum(1).ToSlice()
	if err != nil {
		t.Fatal(err)
	}
	for r, got := range sums.([]float32) {
		var want float64
		for c := range cols {
			want += float64(v[r*cols+c])
		}
		if math.Abs(float64(got)-want) > 1e-3 {
			t.Errorf("row %d sum = %v, want %v", r, got, want)
		}
	}
	for _, dt := range []dtype.DType{dtype.Float16, dtype.BFloat16} {
		sq, err := x.Cast(dt).Mul(x.Cast(dt)).Cast(dtype.Float32).ToSlice()
		if err != nil {
			t.Fatal(err)
		}
		for i, got := range sq.([]float32) {
			if want := v[i] * v[i]; math.Abs(float64(got-want)) > 2e-2*math.Max(1, float64(want)) {
				t.Fatalf("%s square of %v = %v, want %v", dt, v[i], got, want)
			}
		}
	}
	n, err := x.Mul(tensor.Full(100, rows, cols)).Cast(dtype.Int64).Sum().ToSlice()
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, f := range v {
		want += int64(f * 100)
	}
	if got := n.([]int64)[0]; got != want {
		t.Errorf("int64 sum = %d, want %d", got, want)
	}
}

// TestCLDialectUsesLocalMemory pins that long reductions with few outputs are grouped: one
// work-group per output combining through __local memory with barriers.
func TestCLDialectUsesLocalMemory(t *testing.T) {
	d := openCL(t)
	const rows, cols = 2, 2048
	load := &codegen.Expr{Op: lazy.Load, DType: dtype.Float32, Buf: 1, View: view.Contiguous(rows, cols)}
	ast := &codegen.AST{
		Value: &codegen.Expr{Op: lazy.Sum, DType: dtype.Float32, Src: []*codegen.Expr{load}, Arg: []int{1}},
		Out:   view.Contiguous(rows, 1),
		Bufs:  []dtype.DType{dtype.Float32, dtype.Float32},
	}
	k := codegen.Lower(ast, codegen.OpenCL)
	for _, want := range []string{"__kernel void", "__local float", "barrier(CLK_LOCAL_MEM_FENCE);", "get_group_id(0)"} {
		if !strings.Contains(k.Src, want) {
			t.Errorf("grouped sum kernel lacks %q:\n%s", want, k.Src)
		}
	}
	p, err := d.Compile(k.Name, k.Src)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(i % 7)
	}
	in, out := upload(t, d, v), upload(t, d, make([]float32, rows))
	global, local := k.Launch(codegen.OpenCL)
	if global[0] != rows || local[0] < 32 {
		t.Errorf("launch %v groups of %v, want one group of many work-items per row", global, local)
	}
	if _, err := p.Launch([]rt.Buffer{out, in}, nil, global, local, true); err != nil {
		t.Fatal(err)
	}
	got := download(t, d, out)
	for r := range rows {
		var want float32
		for c := range cols {
			want += v[r*cols+c]
		}
		if got[r] != want {
			t.Errorf("row %d sum = %v, want %v", r, got[r], want)
		}
	}
}

// TestCLMatmulTiles checks float32 products whose sizes fit the 128×128 tiles: they run as
// the float4 (vload4/vstore4) tile kernel, for B row-major and B transposed (x·Wᵀ), and
// match a float64 product computed in Go.
func TestCLMatmulTiles(t *testing.T) {
	openCL(t)
	t.Setenv("DEVICE", "CL")
	const m, k, n = 128, 64, 256
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(i%13)/13 - 0.5
	}
	for i := range b {
		b[i] = float32(i%7)/7 - 0.3
	}
	var src bytes.Buffer
	saved, savedLog := schedule.Debug, schedule.Log
	schedule.Debug, schedule.Log = 4, &src
	defer func() { schedule.Debug, schedule.Log = saved, savedLog }()
	ta := tensor.FromSlice(a, m, k)
	bt := make([]float32, n*k) // bᵀ, stored [n, k]
	for i := range k {
		for j := range n {
			bt[j*k+i] = b[i*n+j]
		}
	}
	for name, tb := range map[string]*tensor.Tensor{
		"row-major B":  tensor.FromSlice(b, k, n),
		"transposed B": tensor.FromSlice(bt, n, k).Permute(1, 0),
	} {
		src.Reset()
		out, err := ta.Matmul(tb).ToSlice()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(src.String(), "vload4") {
			t.Errorf("%s: the product did not use the float4 tile kernel:\n%s", name, src.String())
		}
		got := out.([]float32)
		for i := range m {
			for j := range n {
				var want float64
				for x := range k {
					want += float64(a[i*k+x]) * float64(b[x*n+j])
				}
				if math.Abs(float64(got[i*n+j])-want) > 1e-4 {
					t.Fatalf("%s: C[%d,%d] = %v, want %v", name, i, j, got[i*n+j], want)
				}
			}
		}
	}
}

// TestCLRowKernels runs reduces that share their rows with the kernel (softmax's max, sum
// and store in one kernel) through the OpenCL dialect and compares with the CPU: rows kept
// in registers (ragged and exact), rows too long for registers, rows that are columns (one
// work-item per row), several reduces with one value per row out, padding and float16.
func TestCLRowKernels(t *testing.T) {
	openCL(t)
	if _, err := rt.Get("CPU"); err != nil {
		t.Skipf("no CPU backend to compare with: %v", err)
	}
	for _, c := range []struct {
		name  string
		shape []int
		f     func(x *tensor.Tensor) *tensor.Tensor
	}{
		{"softmax, ragged rows in registers", []int{33, 1000}, func(x *tensor.Tensor) *tensor.Tensor { return x.Softmax(1) }},
		{"log softmax, rows in registers", []int{1024, 512}, func(x *tensor.Tensor) *tensor.Tensor { return x.LogSoftmax(1) }},
		{"softmax, rows too long for registers", []int{1024, 33000}, func(x *tensor.Tensor) *tensor.Tensor { return x.Softmax(1) }},
		{"softmax over columns", []int{300, 70}, func(x *tensor.Tensor) *tensor.Tensor { return x.Softmax(0) }},
		{"variance, one value per row", []int{50, 1000}, func(x *tensor.Tensor) *tensor.Tensor { return x.Var(1) }},
		{"normalised rows of a padded input", []int{20, 300}, func(x *tensor.Tensor) *tensor.Tensor {
			p := x.Pad([][2]int{{0, 0}, {3, 5}}).Exp()
			return p.Sub(p.Mean(1).Unsqueeze(1)).Div(p.Std(1).Add(1).Unsqueeze(1))
		}},
		{"float16 softmax", []int{64, 700}, func(x *tensor.Tensor) *tensor.Tensor {
			return x.Cast(dtype.Float16).Softmax(1).Cast(dtype.Float32)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := make([]float32, c.shape[0]*c.shape[1])
			for i := range v {
				v[i] = float32((i*7919)%1013)/100 - 5
			}
			run := func(dev string) []float64 {
				t.Helper()
				var out []float64
				err := tensor.Try(func() {
					x, err := tensor.FromSlice(v, c.shape...).To(dev)
					if err != nil {
						panic(err)
					}
					y := c.f(x)
					if n := len(schedule.Create(y.Node()).Items); dev == "CL" && n != 1 {
						t.Errorf("%d kernels, want 1", n)
					}
					if out, err = y.Float64s(); err != nil {
						panic(err)
					}
				})
				if err != nil {
					t.Fatalf("%s: %v", dev, err)
				}
				return out
			}
			got, want := run("CL"), run("CPU")
			for i := range want {
				if g, w := got[i], want[i]; !(math.Abs(g-w) <= 2e-3*(1+math.Abs(w))) {
					t.Fatalf("element %d: CL %v, CPU %v", i, g, w)
				}
			}
		})
	}
}
