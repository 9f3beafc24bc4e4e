package ci

import (
	"bytes"
	"strings"
	"testing"
)

// The gates read files and reports that pull requests control: none of the parsers may panic.

func FuzzCountLines(f *testing.F) {
	f.Add([]byte("package a\n\n// c\nvar x = `raw\n\nstring`\n"))
	f.Add([]byte("package a; /* unterminated"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, src []byte) {
		n, err := CountLines("f.go", src)
		if err == nil && n > bytes.Count(src, []byte{'\n'})+1 {
			t.Fatalf("%d code lines in a %d-line file", n, bytes.Count(src, []byte{'\n'})+1)
		}
	})
}

func FuzzParseKernels(f *testing.F) {
	f.Add("void E_4(float* a) {\n  a[0] = 1;\n}\n")
	f.Add("__kernel void k() {{{\n")
	f.Add("}}} void x() { }")
	f.Fuzz(func(t *testing.T, out string) {
		for name, src := range ParseKernels(out) {
			if name == "" || !strings.Contains(src, "(") {
				t.Fatalf("kernel %q: %q", name, src)
			}
		}
	})
}

func FuzzReadParity(f *testing.F) {
	f.Add(`{"device":"CPU","seed":1,"cases":[{"name":"a","status":"fail","fwd_max_abs":1e309}]}`)
	f.Add(`{"cases":[{"name":"a|b\n","status":"fail","error":"x"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		rep, err := ReadParity(strings.NewReader(s))
		if err != nil {
			return
		}
		_ = rep.Markdown()
		_ = rep.Annotations()
		var b bytes.Buffer
		_ = rep.WriteText(&b)
	})
}

func FuzzParseBench(f *testing.F) {
	f.Add("BenchmarkA-2 10 1.5e+03 ns/op\n")
	f.Fuzz(func(t *testing.T, s string) {
		for name, ns := range ParseBench([]byte(s)) {
			if !strings.HasPrefix(name, "Benchmark") || ns < 0 {
				t.Fatalf("%q = %v", name, ns)
			}
		}
	})
}
