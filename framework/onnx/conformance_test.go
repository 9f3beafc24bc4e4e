package onnx

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var updateFailures = flag.Bool("update-failures", false, "rewrite testdata/expected_failures.txt from this run's failures")

const failuresFile = "testdata/expected_failures.txt"

// TestNodeConformance runs the whole ONNX node suite. A case on the expected-failures list
// must fail and every other case must pass, so the list can only shrink; a listed case whose
// reason starts "random:" (unseeded draws) may pass by chance.
func TestNodeConformance(t *testing.T) {
	dir := nodeSuite(t)
	results, err := RunSuite(context.Background(), dir, SuiteOptions{Device: os.Getenv("DEVICE")})
	if err != nil {
		t.Fatal(err)
	}
	if *updateFailures {
		writeFailures(t, results)
	}
	expected, err := ReadExpectedFailures(failuresFile)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Case] = true
		reason, listed := expected[r.Case]
		switch {
		case r.Status == Pass && listed && !strings.HasPrefix(reason, "random:"):
			t.Errorf("%s passes but is listed as an expected failure (%s): remove it from %s", r.Case, reason, failuresFile)
		case r.Status != Pass && !listed:
			t.Errorf("%s: %s: %v", r.Case, r.Status, r.Err)
		}
	}
	for name := range expected {
		if !seen[name] {
			t.Errorf("%s is listed in %s but is not in the suite", name, failuresFile)
		}
	}
	t.Log("\n" + Summary(results))
}

// writeFailures rewrites the list from this run, keeping reasons already written by hand.
func writeFailures(t *testing.T, results []Result) {
	old, _ := ReadExpectedFailures(failuresFile)
	var lines []string
	for _, r := range results {
		if r.Status == Pass {
			continue
		}
		reason := old[r.Case]
		if reason == "" || strings.HasPrefix(reason, "run:") {
			msg := strings.ReplaceAll(fmt.Sprint(r.Err), "\n", " ")
			if len(msg) > 160 {
				msg = msg[:160] + "…"
			}
			reason = "run: " + msg
		}
		lines = append(lines, r.Case+" "+reason)
	}
	sort.Strings(lines)
	head := "# ONNX node cases expected to fail, one per line: case name, then the reason.\n" +
		"# Regenerate with: go test ./framework/onnx -run TestNodeConformance -update-failures\n" +
		"# (hand-written reasons are kept; \"run:\" reasons are the error of the last run).\n"
	if err := os.WriteFile(failuresFile, []byte(head+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadExpectedFailures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.txt")
	os.WriteFile(p, []byte("# comment\n\ntest_a  needs a reason\ntest_b\n"), 0o644)
	if _, err := ReadExpectedFailures(p); err == nil || !strings.Contains(err.Error(), "test_b has no reason") {
		t.Errorf("missing reason accepted: %v", err)
	}
	os.WriteFile(p, []byte("test_a one\ntest_a two\n"), 0o644)
	if _, err := ReadExpectedFailures(p); err == nil {
		t.Error("duplicate case accepted")
	}
	os.WriteFile(p, []byte("test_a  the reason\n"), 0o644)
	got, err := ReadExpectedFailures(p)
	if err != nil || got["test_a"] != "the reason" {
		t.Errorf("got %v, %v", got, err)
	}
}

func TestCompare(t *testing.T) {
	f32 := func(v ...float32) *Tensor {
		tt := &Tensor{Type: Float, Dims: []int64{int64(len(v))}}
		for _, x := range v {
			b := make([]byte, 4)
			binary.LittleEndian.PutUint32(b, math.Float32bits(x))
			tt.Raw = append(tt.Raw, b...)
		}
		return tt
	}
	nan := float32(0)
	nan = nan / nan
	tests := []struct {
		name      string
		got, want *Tensor
		ok        bool
	}{
		{"equal", f32(1, 2), f32(1, 2), true},
		{"within rtol", f32(1000.5), f32(1000), true},
		{"outside rtol", f32(1002), f32(1000), false},
		{"nan matches nan", f32(nan), f32(nan), true},
		{"number is not nan", f32(1), f32(nan), false},
		{"shape differs", f32(1, 2), f32(1), false},
		{"dtype differs", &Tensor{Type: Double, Dims: []int64{1}, Raw: make([]byte, 8)}, f32(0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Compare(tc.got, tc.want, NodeTolerance); (err == nil) != tc.ok {
				t.Errorf("Compare = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
