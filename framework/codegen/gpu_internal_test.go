package codegen

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/view"
)

// matmulAST is C[M,N] = A[M,K]·B[K,N] as the scheduler hands it over: a sum over k of the
// product of two loads broadcast to [M, N, K].
func matmulAST(m, n, k int, t dtype.DType) *AST {
	a := view.Contiguous(m, k).Reshape([]int{m, 1, k}).Expand([]int{m, n, k})
	b := view.Contiguous(k, n).Permute([]int{1, 0}).Reshape([]int{1, n, k}).Expand([]int{m, n, k})
	la := &Expr{Op: lazy.Load, DType: t, Buf: 1, View: a}
	lb := &Expr{Op: lazy.Load, DType: t, Buf: 2, View: b}
	mul := &Expr{Op: lazy.Mul, DType: t, Src: []*Expr{la, lb}}
	sum := &Expr{Op: lazy.Sum, DType: t, Src: []*Expr{mul}, Arg: []int{2}}
	return &AST{Value: sum, Out: view.Contiguous(m, n, 1), Bufs: []dtype.DType{t, t, t}}
}

func TestMatmulLoweringPicksTiles(t *testing.T) {
	for _, tc := range []struct {
		name     string
		m, n, k  int
		dt       dtype.DType
		want     string
		launched [3]int
	}{
		{"float32 tiles", 256, 384, 64, dtype.Float32, "fmaf(av[i], bv[j]", [3]int{3, 2, 1}},
		{"float16 tensor cores", 256, 384, 64, dtype.Float16, "wmma::mma_sync", [3]int{3, 2, 1}},
		{"ragged sizes fall back", 100, 384, 64, dtype.Float32, "for (int ridx0", [3]int{}},
		{"32 columns: 256-row narrow tiles", 86528, 32, 576, dtype.Float32, "#define BN 32", [3]int{1, 338, 1}},
		{"64 columns: 128-row narrow tiles", 61952, 64, 288, dtype.Float32, "#define BN 64", [3]int{1, 484, 1}},
		{"ragged rows: narrow tiles guard the last", 5500, 96, 64, dtype.Float32, "if (r < 5500)", [3]int{3, 22, 1}},
		{"linear layer's input gradient: 64-column tiles", 512, 1600, 128, dtype.Float32, "#define BN 64", [3]int{25, 4, 1}},
		{"few tiles stay one thread per output", 512, 64, 288, dtype.Float32, "for (int ridx0", [3]int{}},
		{"16-bit narrow products stay one thread per output", 4096, 64, 64, dtype.Float16, "for (int ridx0", [3]int{}},
		// The linear layer's x·Wᵀ (512×1600 by 1600×128) always took the 128×128 tiles, but as
		// 1×4 blocks (1 TFLOP/s on the H200): its k range is split 25 ways.
		{"few tiles split k: linear 1600→128", 512, 128, 1600, dtype.Float32, "gf_count_r_512_128_1600[blockIdx.y * gridDim.x + blockIdx.x], 1u) == 25 - 1", [3]int{1, 4, 25}},
		{"many tiles do not split k", 2048, 2048, 1600, dtype.Float32, "for (int k0 = 0; k0 < 1600; k0 += 8)", [3]int{16, 16, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := Lower(matmulAST(tc.m, tc.n, tc.k, tc.dt), CUDA)
			if !strings.Contains(k.Src, tc.want) {
				t.Fatalf("source lacks %q:\n%s", tc.want, k.Src)
			}
			if tc.launched != ([3]int{}) && k.Grid != tc.launched {
				t.Errorf("grid %v, want %v", k.Grid, tc.launched)
			}
		})
	}
}

// TestTileKernelsOnHost compiles the float32 tile kernels (128×128, narrow, split k; B
// row-major and transposed; ragged rows) with g++ against testdata/cuda_on_host.cpp, which
// emulates a block's threads, and checks every output: the CUDA source is right before a
// device run. It skips without a C++20 g++.
func TestTileKernelsOnHost(t *testing.T) {
	gxx, err := exec.LookPath("g++")
	if err != nil || testing.Short() {
		t.Skip("no g++, or -short (this compiles seven programs)")
	}
	colb := func(m, n, k int) *AST { // C = A·Bᵀ with B stored [N, K]
		ast := matmulAST(m, n, k, dtype.Float32)
		b := view.Contiguous(n, k).Reshape([]int{1, n, k}).Expand([]int{m, n, k})
		ast.Value.Src[0].Src[1] = &Expr{Op: lazy.Load, DType: dtype.Float32, Buf: 2, View: b}
		return ast
	}
	harness, err := filepath.Abs("testdata/cuda_on_host.cpp")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		m, n, k int
		colb    bool
		want    string
	}{
		{"128×128 tiles", 256, 256, 32, false, "As[2][8][128]"},
		{"narrow 32 columns, ragged rows", 16284, 32, 40, false, "#define BN 32"},
		{"narrow 64 columns, 3 tiles wide, ragged rows", 2700, 192, 24, false, "#define BN 64"},
		{"narrow 32 columns, Bᵀ, ragged rows", 5400, 96, 16, true, "#define BN 32"},
		{"narrow 64 columns, Bᵀ, ragged rows", 8150, 64, 48, true, "#define BN 64"},
		{"split k", 256, 128, 640, false, "gf_last"},
		{"split k, Bᵀ, 2 tiles", 128, 256, 1024, true, "gf_last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ast := matmulAST(tc.m, tc.n, tc.k, dtype.Float32)
			if tc.colb {
				ast = colb(tc.m, tc.n, tc.k)
			}
			k := Lower(ast, CUDA)
			if !strings.Contains(k.Src, tc.want) {
				t.Fatalf("source lacks %q:\n%s", tc.want, k.Src)
			}
			dir := t.TempDir()
			src, bin := filepath.Join(dir, "kernel.cu"), filepath.Join(dir, "kernel")
			if err := os.WriteFile(src, []byte(k.Src), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(gxx, "-std=c++20", "-O1", "-w", "-pthread", `-DKERNEL="`+src+`"`, "-DFN="+k.Name, harness, "-o", bin).CombinedOutput()
			if err != nil {
				if strings.Contains(string(out), "barrier") {
					t.Skipf("g++ without C++20 <barrier>: %s", out)
				}
				t.Fatalf("g++: %v\n%s", err, out)
			}
			args := []int{tc.m, tc.n, tc.k, k.Grid[0], k.Grid[1], 0, k.Grid[2]}
			if tc.colb {
				args[5] = 1
			}
			var strs []string
			for _, a := range args {
				strs = append(strs, strconv.Itoa(a))
			}
			out, err = exec.Command(bin, strs...).CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "ok") {
				t.Fatalf("%v: %s", err, out)
			}
		})
	}
}

// TestHalfMatmulKernelsOnCUDA runs both 16-bit tile kernels on the GPU at 4096³, checks sampled
// outputs and logs their rates (GRADFORGE_GEMM_SIZE overrides the size).
func TestHalfMatmulKernelsOnCUDA(t *testing.T) {
	d, err := runtime.Get("CUDA")
	if err != nil {
		t.Skipf("no CUDA here: %v", err)
	}
	n := 4096
	if os.Getenv("GRADFORGE_GEMM_SIZE") == "small" {
		n = 512
	}
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 3))
	a, b := make([]float32, n*n), make([]float32, n*n)
	raw := func(v []float32) runtime.Buffer {
		bs := make([]byte, 2*len(v))
		for i := range v {
			v[i] = dtype.HalfToFloat32(dtype.Float32ToHalf(float32(r.NormFloat64())))
			binary.LittleEndian.PutUint16(bs[2*i:], dtype.Float32ToHalf(v[i]))
		}
		buf, err := d.Alloc(len(bs))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.CopyIn(buf, bs); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	ba, bb := raw(a), raw(b)
	c, err := d.Alloc(2 * n * n)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Free(ba); d.Free(bb); d.Free(c) }()
	defer func(w int) { hgemmWarps = w }(hgemmWarps)
	for _, warps := range []int{8, 4} {
		hgemmWarps = warps
		k := Lower(matmulAST(n, n, n, dtype.Float16), CUDA)
		p, err := d.Compile(k.Name, k.Src)
		if err != nil {
			t.Fatalf("%d warps: %v", warps, err)
		}
		var ts []float64
		for i := range 13 {
			el, err := p.Launch([]runtime.Buffer{c, ba, bb}, nil, k.Grid, k.Block, true)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 3 {
				ts = append(ts, float64(el)/float64(time.Millisecond))
			}
		}
		slices.Sort(ts)
		ms := ts[len(ts)/2]
		out := make([]byte, 2*n*n)
		if err := d.CopyOut(out, c); err != nil {
			t.Fatal(err)
		}
		for _, ij := range [][2]int{{0, 0}, {n - 1, n - 1}, {n / 3, n/2 + 5}, {17, n - 3}} {
			var want float64
			for l := range n {
				want += float64(a[ij[0]*n+l]) * float64(b[l*n+ij[1]])
			}
			got := float64(dtype.HalfToFloat32(binary.LittleEndian.Uint16(out[2*(ij[0]*n+ij[1]):])))
			if math.Abs(got-want) > 2e-3*math.Abs(want)+1e-2*math.Sqrt(float64(n)) {
				t.Errorf("%d warps: C[%d,%d] = %v, want %v", warps, ij[0], ij[1], got, want)
			}
		}
		t.Logf("float16 %d³, %d warps per block: %.3f ms, %.1f TFLOP/s", n, warps, ms, 2*math.Pow(float64(n), 3)/ms/1e9)
	}
}

// TestElementwisePerThreadOnCUDA times a 1-read, 1-write elementwise kernel over 256M floats
// with 1, 4 and 8 outputs per thread (the copy ceiling is about 0.52 ms on the H200).
func TestElementwisePerThreadOnCUDA(t *testing.T) {
	d, err := runtime.Get("CUDA")
	if err != nil {
		t.Skipf("no CUDA here: %v", err)
	}
	n := 256 << 20
	if os.Getenv("GRADFORGE_GEMM_SIZE") == "small" {
		n = 1<<20 + 8
	}
	x := &Expr{Op: lazy.Load, DType: dtype.Float32, Buf: 1, View: view.Contiguous(n)}
	two := &Expr{Op: lazy.Const, DType: dtype.Float32, Arg: 2.0, View: view.Contiguous(n)}
	ast := &AST{Value: &Expr{Op: lazy.Mul, DType: dtype.Float32, Src: []*Expr{x, two}}, Out: view.Contiguous(n), Bufs: []dtype.DType{dtype.Float32, dtype.Float32}}
	in := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(in[4*i:], math.Float32bits(float32(i%1000)))
	}
	bi, _ := d.Alloc(4 * n)
	bo, _ := d.Alloc(4 * n)
	defer func() { d.Free(bi); d.Free(bo) }()
	if err := d.CopyIn(bi, in); err != nil {
		t.Fatal(err)
	}
	defer func(p int) { gpuPer = p }(gpuPer)
	for _, per := range []int{1, 4, 8} {
		gpuPer = per
		k := Lower(ast, CUDA)
		p, err := d.Compile(k.Name, k.Src)
		if err != nil {
			t.Fatal(err)
		}
		var ts []float64
		for i := range 13 {
			el, err := p.Launch([]runtime.Buffer{bo, bi}, nil, k.Grid, k.Block, true)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 3 {
				ts = append(ts, float64(el)/float64(time.Millisecond))
			}
		}
		slices.Sort(ts)
		out := make([]byte, 4*n)
		if err := d.CopyOut(out, bo); err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 1, n / 3, n - 1} {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:])); got != float32(2*(i%1000)) {
				t.Fatalf("%d per thread: out[%d] = %v", per, i, got)
			}
		}
		t.Logf("elementwise 1 read + 1 write of %d floats, %d per thread: %.3f ms (%.0f GB/s)", n, per, ts[len(ts)/2], 8*float64(n)/ts[len(ts)/2]/1e6)
	}
}

// rowsAST divides each row of an R×C matrix by its sum: one reduce whose value is used along
// the row it reduced, so the kernel passes over each row twice (sum, then store).
func rowsAST(rows, cols int) *AST {
	x := &Expr{Op: lazy.Load, DType: dtype.Float32, Buf: 1, View: view.Contiguous(rows, cols)}
	sum := &Expr{Op: lazy.Sum, DType: dtype.Float32, Src: []*Expr{x}, Arg: []int{1}}
	inv := &Expr{Op: lazy.Recip, DType: dtype.Float32, Src: []*Expr{sum}}
	val := &Expr{Op: lazy.Mul, DType: dtype.Float32, Src: []*Expr{x, inv}}
	return &AST{Value: val, Out: view.Contiguous(rows, cols), Bufs: []dtype.DType{dtype.Float32, dtype.Float32}}
}

func TestRowKernelsKeepRowsInRegisters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      *Dialect
		cols   int
		block  int
		want   []string
		absent []string
	}{
		{"CUDA: 1024 threads, 16 per thread cached, warp shuffles", CUDA, 16384, 1024,
			[]string{"__launch_bounds__(1024)", "float rc0[16];", "rc0[rj] = val", "(rc0[rj]*", "__shfl_xor_sync"}, nil},
		{"OpenCL: at most 256 work-items", OpenCL, 4096, 256, []string{"float rc0[16];", "barrier(CLK_LOCAL_MEM_FENCE);"}, []string{"__shfl"}},
		{"rows too long for registers read memory twice", CUDA, 1 << 16, 1024, []string{"ridx += 1024"}, []string{"rc0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := Lower(rowsAST(64, tc.cols), tc.d)
			if k.Grid != [3]int{64, 1, 1} || k.Block != [3]int{tc.block, 1, 1} {
				t.Errorf("launch %v × %v, want one block of %d per row", k.Grid, k.Block, tc.block)
			}
			for _, w := range tc.want {
				if !strings.Contains(k.Src, w) {
					t.Errorf("source lacks %q:\n%s", w, k.Src)
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(k.Src, w) {
					t.Errorf("source has %q:\n%s", w, k.Src)
				}
			}
		})
	}
}
