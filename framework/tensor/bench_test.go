package tensor

import (
	"bufio"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const benchN = 16 << 20

// BenchmarkFusedMulAdd16M times a*b+c over 16M float32: one fused kernel with a fresh
// output each time, as numpy makes.
func BenchmarkFusedMulAdd16M(b *testing.B) {
	a, x, c := Rand(benchN), Rand(benchN), Rand(benchN)
	if err := Realize(a, x, c); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * 4 * benchN)
	for b.Loop() {
		if err := a.Mul(x).Add(c).Realize(); err != nil {
			b.Fatal(err)
		}
	}
}

// numpyTimer is a python3 process that times numpy's a*b+c over n float32 once per request,
// so the two sides can be measured alternately under the same machine load.
const numpyTimer = `
import numpy as np, sys, time
kind, n = sys.argv[1], int(sys.argv[2])
r = np.random.default_rng(0)
if kind == "muladd":
    a, b, c = (r.random(n, dtype=np.float32) for _ in range(3))
    f = lambda: a * b + c
else:
    a, b = (r.random((n, n), dtype=np.float32) for _ in range(2))
    f = lambda: a @ b
f()
print("ready", flush=True)
for _ in sys.stdin:
    t = time.perf_counter(); f(); print(time.perf_counter() - t, flush=True)
`

// BenchmarkMulAddVsNumpy16M alternates one gradforge a*b+c and one numpy a*b+c per iteration
// and reports both medians (ms) and their ratio; b.N sets the number of pairs. Run with
// go test -run '^$' -bench VsNumpy -benchtime 30x ./framework/tensor
func BenchmarkMulAddVsNumpy16M(b *testing.B) {
	a, x, c := Rand(benchN), Rand(benchN), Rand(benchN)
	vsNumpy(b, "muladd", benchN, func() *Tensor { return a.Mul(x).Add(c) }, a, x, c)
}

// BenchmarkMatmulVsNumpy512 does the same for a 512×512 float32 matrix product (numpy calls
// its BLAS).
func BenchmarkMatmulVsNumpy512(b *testing.B) {
	a, x := Rand(512, 512), Rand(512, 512)
	vsNumpy(b, "matmul", 512, func() *Tensor { return a.Matmul(x) }, a, x)
}

func vsNumpy(b *testing.B, kind string, n int, op func() *Tensor, inputs ...*Tensor) {
	py := "/usr/bin/python3" // Debian's python, where python3-numpy lives
	if _, err := exec.LookPath(py); err != nil {
		py = "python3"
	}
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		b.Skip("numpy is not installed (apt-get install python3-numpy)")
	}
	cmd := exec.Command(py, "-c", numpyTimer, kind, strconv.Itoa(n))
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { in.Close(); cmd.Wait() }()
	out := bufio.NewScanner(outPipe)
	if !out.Scan() || out.Text() != "ready" {
		b.Fatalf("numpy timer did not start: %q", out.Text())
	}
	if err := Realize(inputs...); err != nil {
		b.Fatal(err)
	}
	if err := op().Realize(); err != nil { // compile (or load) the kernel once
		b.Fatal(err)
	}
	var ours, theirs []float64
	for b.Loop() {
		t := time.Now()
		if err := op().Realize(); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(t).Seconds()*1e3)
		fmt.Fprintln(in)
		if !out.Scan() {
			b.Fatal("numpy timer stopped")
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(out.Text()), 64)
		if err != nil {
			b.Fatal(err)
		}
		theirs = append(theirs, s*1e3)
	}
	mo, mt := median(ours), median(theirs)
	b.ReportMetric(mo, "ms/gradforge")
	b.ReportMetric(mt, "ms/numpy")
	b.ReportMetric(mt/mo, "speedup")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
