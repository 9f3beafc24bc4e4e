package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/runtime"
)

// TestBenchWithoutGPUSaysWhy pins the error a machine without CUDA gets: it names the need
// and what was searched, instead of a crash or an empty table.
func TestBenchWithoutGPUSaysWhy(t *testing.T) {
	if _, err := runtime.Get("CUDA"); err == nil {
		t.Skip("CUDA is present; `gradforge bench` would run the whole benchmark here")
	}
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"bench", "--small", "--python", ""})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "bench needs a CUDA GPU") || !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Fatalf("error %v, want one that says bench needs CUDA and what was searched", err)
	}
}
