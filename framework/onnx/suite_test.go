package onnx

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The node suite is unpacked once per test binary into a temporary folder that TestMain
// removes at the end.
var (
	suiteOnce sync.Once
	suiteDir  string
	suiteErr  error
	suiteTmp  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if suiteTmp != "" {
		os.RemoveAll(suiteTmp)
	}
	os.Exit(code)
}

// conformanceDir is the shared conformance folder: $GRADFORGE_CONFORMANCE or the copy
// beside the repository.
func conformanceDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GRADFORGE_CONFORMANCE")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "conformance")
	}
	if _, err := os.Stat(filepath.Join(dir, "onnx-node-dev.tgz")); err != nil {
		if os.Getenv("GRADFORGE_CONFORMANCE_REQUIRE") != "" {
			t.Fatalf("conformance data required but missing: %v", err)
		}
		t.Skipf("conformance data not found (%v); set GRADFORGE_CONFORMANCE to the folder holding onnx-node-dev.tgz", err)
	}
	return dir
}

// nodeSuite returns the folder holding the unpacked node/test_* cases.
func nodeSuite(t testing.TB) string {
	t.Helper()
	src := conformanceDir(t)
	suiteOnce.Do(func() {
		suiteTmp, suiteErr = os.MkdirTemp("", "gradforge-onnx-suite-")
		if suiteErr != nil {
			return
		}
		suiteErr = UnpackSuite(filepath.Join(src, "onnx-node-dev.tgz"), suiteTmp)
		suiteDir = filepath.Join(suiteTmp, "node")
	})
	if suiteErr != nil {
		t.Fatalf("unpack node suite: %v", suiteErr)
	}
	return suiteDir
}

func TestParseWholeSuite(t *testing.T) {
	dir := nodeSuite(t)
	cases, err := ListCases(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 1500 {
		t.Fatalf("found %d cases, want the suite's 1508", len(cases))
	}
	values := 0
	for _, c := range cases {
		m, err := LoadModel(filepath.Join(c.Dir, "model.onnx"))
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if len(m.Graph.Nodes) == 0 || m.Opset("") == 0 && m.Opset(m.Graph.Nodes[0].Domain) == 0 {
			t.Errorf("%s: no nodes or no opset import", c.Name)
		}
		ins, outs, err := c.LoadData(m, 0)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		values += len(ins) + len(outs)
	}
	t.Logf("parsed %d models and %d test values", len(cases), values)
}
