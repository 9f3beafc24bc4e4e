package onnx

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLightModels runs the nine weight-free classic CNNs of the conformance data on the
// input the README prescribes (float32 arange(n)/n, unknown dims 1) and compares the first
// output with the stored expectation at the node-suite tolerance.
//
// The nine together take minutes on a small CPU (densenet121 alone is 121 layers of
// generated kernels to compile), so they run when GRADFORGE_ONNX_LIGHT=1 and otherwise skip
// with that message; GRADFORGE_ONNX_LIGHT=alexnet,squeezenet picks some.
func TestLightModels(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "onnx-light")
	pick := os.Getenv("GRADFORGE_ONNX_LIGHT")
	if pick == "" {
		t.Skip("the light CNN models take minutes on CPU; set GRADFORGE_ONNX_LIGHT=1 (or a comma list of names) to run them")
	}
	models, err := filepath.Glob(filepath.Join(dir, "light_*.onnx"))
	if err != nil || len(models) == 0 {
		t.Fatalf("no light models in %s: %v", dir, err)
	}
	for _, path := range models {
		name := strings.TrimSuffix(filepath.Base(path), ".onnx")
		if pick != "1" && !slices.ContainsFunc(strings.Split(pick, ","), func(p string) bool { return p != "" && strings.Contains(name, p) }) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			m, err := LoadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			feed, err := Feed(m, nil, "arange")
			if err != nil {
				t.Fatal(err)
			}
			want, err := LoadValue(filepath.Join(dir, name+"_output_0.pb"), nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got, err := Run(context.Background(), m, feed, RunOptions{Device: os.Getenv("DEVICE")})
			if err != nil {
				t.Fatal(err)
			}
			if err := Compare(got[0], want, NodeTolerance); err != nil {
				t.Errorf("output %s: %v", m.Graph.Outputs[0].Name, err)
			}
			t.Logf("%s ran in %v", name, time.Since(start).Round(time.Millisecond))
		})
	}
}
