package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/runtime"
)

func openCUDA(t *testing.T) *runtime.CUDA {
	d, err := runtime.Get("CUDA")
	if err != nil {
		if os.Getenv("CUDA_REQUIRE") != "" {
			t.Fatalf("CUDA_REQUIRE is set but CUDA cannot be opened: %v", err)
		}
		t.Skipf("no CUDA here (set CUDA_REQUIRE=1 to fail instead): %v", err)
	}
	return d.(*runtime.CUDA)
}

// TestHandWrittenKernelsAreCorrect runs every hand-written case at small sizes; each checks
// its output against host arithmetic, and a wrong answer comes back as the result's error.
func TestHandWrittenKernelsAreCorrect(t *testing.T) {
	dev := openCUDA(t)
	rs := Runtime(dev, Options{Small: true, Reps: 2}, SizesFor(true))
	if len(rs) != 5 {
		t.Fatalf("%d results, want 5", len(rs))
	}
	for _, r := range rs {
		if r.Err != "" {
			t.Errorf("%s: %s", r.Case, r.Err)
		} else if r.Ms <= 0 {
			t.Errorf("%s: time %v", r.Case, r.Ms)
		}
	}
	var b bytes.Buffer
	Table(&b, Order(rs))
	t.Log("\n" + b.String())
}

// TestTable pins the table's arithmetic: GB/s from bytes and time, the ratio to PyTorch and
// the share of the copy bandwidth.
func TestTable(t *testing.T) {
	var b bytes.Buffer
	Table(&b, Order([]Result{
		{Case: "sum", Impl: "runtime", Ms: 0.5, Bytes: 1e9},
		{Case: "copy", Impl: "torch", Ms: 1, Bytes: 4e9},
		{Case: "sum", Impl: "torch", Ms: 0.25, Bytes: 1e9},
		{Case: "matmul_f16", Impl: "runtime", Ms: 2, Flops: 1e12, Err: "boom"},
	}))
	for _, want := range []string{"| copy | torch | 1.000 | 4000 GB/s |", "| sum | runtime | 0.500 | 2000 GB/s | 0.50× | 50 % |", "failed: boom"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Index(b.String(), "| sum | torch") > strings.Index(b.String(), "| sum | runtime") {
		t.Errorf("torch row not first within its case:\n%s", b.String())
	}
}

// TestBenchFull prints the full-size table (GRADFORGE_BENCH=full|small, with PyTorch from
// $GRADFORGE_PYTHON if set): the same run as `gradforge bench`, for machines with only a
// test binary.
func TestBenchFull(t *testing.T) {
	size := os.Getenv("GRADFORGE_BENCH")
	if size == "" {
		t.Skip("set GRADFORGE_BENCH=full or small to run the benchmark table")
	}
	dev := openCUDA(t)
	o := Options{Small: size == "small", Reps: 20, Python: os.Getenv("GRADFORGE_PYTHON")}
	sz := SizesFor(o.Small)
	var rs []Result
	if o.Python != "" {
		name, ver, trs, err := Torch(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("PyTorch %s on %s", ver, name)
		rs = append(rs, trs...)
	}
	rs = append(rs, Framework(dev, o, sz)...)
	rs = append(rs, Runtime(dev, o, sz)...)
	var b bytes.Buffer
	Table(&b, Order(rs))
	t.Logf("card %s, N=%d, softmax %d², matmul %d³\n%s", dev.Info(), sz.N, sz.Rows, sz.MM, b.String())
}
