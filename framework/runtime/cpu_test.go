package runtime

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

const addOne = `void add_one(void **bufs, const int *vals, int start, int end) {
  float *out = (float *)bufs[0];
  const float *in = (const float *)bufs[1];
  for (int i = start; i < end; i++) out[i] = in[i] + 1.0f;
}
`

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func TestCPUCompileLaunchAndDiskCache(t *testing.T) {
	dir := t.TempDir()
	d, err := NewCPU(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1 << 16 // big enough to be split across cores
	in, _ := d.Alloc(4 * n)
	out, _ := d.Alloc(4 * n)
	defer d.Free(in)
	defer d.Free(out)
	src := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(src[4*i:], math.Float32bits(float32(i)))
	}
	if err := d.CopyIn(in, src); err != nil {
		t.Fatal(err)
	}
	p, err := d.Compile("add_one", addOne)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Launch([]Buffer{out, in}, nil, [3]int{n, 1, 1}, [3]int{1, 1, 1}, true); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4*n)
	if err := d.CopyOut(got, out); err != nil {
		t.Fatal(err)
	}
	for i, v := range floats(got) {
		if v != float32(i)+1 {
			t.Fatalf("out[%d] = %g, want %d", i, v, i+1)
		}
	}
	if d.Compiles() != 1 {
		t.Fatalf("first device compiled %d kernels, want 1", d.Compiles())
	}
	// A fresh device on the same cache directory (a second run) compiles nothing.
	d2, err := NewCPU(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Compile("add_one", addOne); err != nil {
		t.Fatal(err)
	}
	if d2.Compiles() != 0 {
		t.Fatalf("second run compiled %d kernels, want 0 (disk cache)", d2.Compiles())
	}
}

func TestCPUCompileErrorShowsCompilerOutput(t *testing.T) {
	d, err := NewCPU(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Compile("broken", "void broken(void) { this is not C }\n")
	if err == nil || !strings.Contains(err.Error(), "broken") || !strings.Contains(err.Error(), "error") {
		t.Fatalf("want a compile error naming the kernel with the compiler's message, got %v", err)
	}
}

func TestMissingCompilerNamesTheFix(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CC", "")
	_, err := NewCPU(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "apt-get install gcc") {
		t.Fatalf("want an error naming apt-get install gcc, got %v", err)
	}
}

func TestRegistry(t *testing.T) {
	d, err := Get("cpu")
	if err != nil || d.Name() != "CPU" {
		t.Fatalf("Get(cpu) = %v, %v", d, err)
	}
	if _, err := Get("NOPE"); err == nil || !strings.Contains(err.Error(), "CPU") {
		t.Fatalf("unknown device should list the registered ones, got %v", err)
	}
}
