package testops

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	rt "github.com/gradforge/gradforge/framework/runtime"
)

// TestParity runs every case (or those TESTOPS_FILTER selects) on $DEVICE against PyTorch.
func TestParity(t *testing.T) {
	o := startOracle(t)
	cases, err := Select(Cases())
	if err != nil {
		t.Fatal(err)
	}
	device := rt.DefaultName()
	seed := Seed()
	t.Logf("%d cases on %s against torch %s; replay with TESTOPS_SEED=%d", len(cases), device, o.Version, seed)
	fmt.Fprintf(os.Stderr, "testops: TESTOPS_SEED=%d\n", seed)
	var rep Report
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := Run(o, device, seed, c)
			rep.Cases = append(rep.Cases, r)
			switch r.Status {
			case "fail":
				t.Errorf("%s (TESTOPS_SEED=%d TESTOPS_FILTER='^%s$')", r.Error, seed, c.Name)
			case "skip":
				t.Skip(r.Error)
			}
		})
	}
	if dir := os.Getenv("TESTOPS_REPORT_DIR"); dir != "" {
		rep.Device, rep.Seed, rep.Torch = device, seed, o.Version
		rep.WriteJSON(filepath.Join(dir, "testops-"+device+".json"))
	}
}

// TestCasesAreWellFormed checks the suite's declarations without running them.
func TestCasesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	cases := Cases()
	for _, c := range cases {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		if c.Fw == nil || c.Torch == "" || c.Family == "" {
			t.Errorf("case %q lacks a framework expression, a PyTorch expression or a family", c.Name)
		}
	}
	if len(cases) < 450 {
		t.Errorf("the suite has %d cases; the parity bar is at least 450", len(cases))
	}
}
