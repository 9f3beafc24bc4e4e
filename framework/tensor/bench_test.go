package tensor

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

const benchN = 16 << 20

// BenchmarkFusedMulAdd16M times a*b+c over 16M float32 (one fused kernel, a fresh output
// each time, as numpy makes). Compare with BenchmarkNumpyMulAdd16M in the same run.
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

// BenchmarkNumpyMulAdd16M runs the same computation in numpy (python3) and reports its
// median time per op as the benchmark's time.
func BenchmarkNumpyMulAdd16M(b *testing.B) {
	const script = `
import numpy as np, time, sys
n = int(sys.argv[1]); reps = int(sys.argv[2])
r = np.random.default_rng(0)
a, b, c = (r.random(n, dtype=np.float32) for _ in range(3))
a * b + c
ts = []
for _ in range(reps):
    t = time.perf_counter(); a * b + c; ts.append(time.perf_counter() - t)
ts.sort(); print(ts[len(ts) // 2])
`
	py := "/usr/bin/python3" // Debian's python, where python3-numpy lives
	if _, err := exec.LookPath(py); err != nil {
		py = "python3"
	}
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		b.Skip("numpy is not installed (apt-get install python3-numpy)")
	}
	reps := max(b.N, 5)
	out, err := exec.Command(py, "-c", script, strconv.Itoa(benchN), strconv.Itoa(reps)).Output()
	if err != nil {
		b.Fatal(err)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(sec*1e3, "ms/op(numpy)")
	b.ReportMetric(0, "ns/op")
}
