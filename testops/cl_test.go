package testops

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rt "github.com/gradforge/gradforge/framework/runtime"
)

// TestParityCL runs the parity cases on the OpenCL device (PoCL on CI's CPUs) in the same
// run as the $DEVICE suite, so GPU-style code generation (work-groups, local memory,
// barriers) is checked on every machine that has an OpenCL platform.
//
// Building a kernel costs PoCL about a second the first time (later runs load the binary
// cache), so by default a sample runs: the first case of every family and every 32nd case.
// TESTOPS_DEVICES listing CL (e.g. "CL" or "CPU,CL") runs every case TESTOPS_FILTER selects.
// Without OpenCL it skips; CL_REQUIRE=1 makes that a failure.
func TestParityCL(t *testing.T) {
	if rt.DefaultName() == "CL" {
		t.Skip("DEVICE=CL: TestParity already runs the suite on CL")
	}
	if _, err := rt.Get("CL"); err != nil {
		if os.Getenv("CL_REQUIRE") == "1" {
			t.Fatalf("CL_REQUIRE=1 but the OpenCL device does not open: %v", err)
		}
		t.Skipf("skipping the OpenCL parity run: %v (CL_REQUIRE=1 makes this a failure)", err)
	}
	o := startOracle(t)
	cases, err := Select(Cases())
	if err != nil {
		t.Fatal(err)
	}
	full := slices.ContainsFunc(strings.Split(os.Getenv("TESTOPS_DEVICES"), ","), func(s string) bool {
		return strings.EqualFold(strings.TrimSpace(s), "CL")
	})
	if !full && os.Getenv("TESTOPS_FILTER") == "" {
		cases = sample(cases, 32)
	}
	t.Setenv("DEVICE", "CL") // inputs are made on the default device
	seed := Seed()
	t.Logf("%d cases on CL against torch %s (all: %v); replay with TESTOPS_SEED=%d", len(cases), o.Version, full, seed)
	rep := Report{Device: "CL", Seed: seed, Torch: o.Version}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := Run(o, "CL", seed, c)
			rep.Cases = append(rep.Cases, r)
			switch r.Status {
			case "fail":
				rep.Failed++
				t.Errorf("%s (DEVICE=CL TESTOPS_SEED=%d TESTOPS_FILTER='^%s$')", r.Error, seed, c.Name)
			case "skip":
				rep.Skip++
				t.Skip(r.Error)
			default:
				rep.Passed++
			}
		})
	}
	if dir := os.Getenv("TESTOPS_REPORT_DIR"); dir != "" {
		if err := rep.WriteJSON(filepath.Join(dir, "testops-CL.json")); err != nil {
			t.Error(err)
		}
	}
}

// sample keeps the first case of every family and every n-th case.
func sample(cases []Case, n int) []Case {
	seen := map[string]bool{}
	var out []Case
	for i, c := range cases {
		if !seen[c.Family] || i%n == 0 {
			out = append(out, c)
		}
		seen[c.Family] = true
	}
	return out
}
