package testops

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"
)

// startOracle starts PyTorch or skips (fails under TESTOPS_REQUIRE_TORCH=1) saying why.
func startOracle(t testing.TB) *Oracle {
	t.Helper()
	o, err := StartOracle("cpu")
	if errors.Is(err, ErrNoTorch) && os.Getenv("TESTOPS_REQUIRE_TORCH") != "1" {
		t.Skipf("skipping parity tests: %v (TESTOPS_REQUIRE_TORCH=1 makes this a failure)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func f32s(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestOracleRoundTrip(t *testing.T) {
	o := startOracle(t)
	x := Blob{Shape: []int{2, 2}, DType: "float32", Data: f32s(1, 2, 3, 4)}
	a, err := o.Ask("(x0 * x0).sum(dim=1)", []Blob{x}, []bool{true}, 7)
	if err != nil || a.Err != "" {
		t.Fatalf("ask: %v %s", err, a.Err)
	}
	if got := decode(a.Out); got[0] != 5 || got[1] != 25 {
		t.Fatalf("out = %v, want [5 25]", got)
	}
	g := decode(*a.Cotangent)
	grad := decode(*a.Grads[0])
	for i, xi := range []float64{1, 2, 3, 4} {
		if want := 2 * xi * g[i/2]; math.Abs(grad[i]-want) > 1e-5 {
			t.Fatalf("grad[%d] = %v, want %v", i, grad[i], want)
		}
	}
	if a, err := o.Ask("x0 @ x0.T @ torch.ones(3)", []Blob{x}, nil, 0); err != nil || a.Err == "" {
		t.Fatalf("shape error not reported: %v %+v", err, a)
	}
}
