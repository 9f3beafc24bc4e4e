package ci

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCountLines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"package clause only", "package a\n", 1},
		{"blank lines do not count", "package a\n\n\n\nvar x = 1\n\n", 2},
		{"line comments do not count", "// Package a is.\npackage a\n// x is.\nvar x = 1 // trailing\n", 2},
		{"block comment lines do not count", "package a\n/*\n one\n two\n*/\nvar x = 1\n", 2},
		{"code after a block comment counts", "package a\n/* c */ var x = 1\n", 2},
		{"a raw string counts its non-blank lines", "package a\nvar s = `one\n\ntwo\n  `\n", 4},
		{"code kept in a raw string counts", "package a\nconst c = `\nvoid f() {\n  x = 1;\n}\n`\n", 6},
		{"multi-line expression", "package a\nvar x = f(\n\t1,\n\t2,\n)\n", 5},
		{"no trailing newline", "package a\nvar x = 1", 2},
		{"explicit semicolons on one line", "package a; var x = 1; var y = 2\n", 1},
		{"closing brace alone counts", "package a\nfunc f() {\n}\n", 3},
		{"empty file", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CountLines("a.go", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("CountLines = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCountLinesRejectsNonGo(t *testing.T) {
	_, err := CountLines("bad.go", []byte("package a\nvar s = \"unterminated\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.go:2") {
		t.Fatalf("want an error naming bad.go:2, got %v", err)
	}
}

func TestCoreContains(t *testing.T) {
	tests := map[string]bool{
		"framework/tensor.go":                true,
		"framework/runtime/cpu.go":           true,
		"framework/codegen/c/render.go":      true,
		"framework/tensor_test.go":           false,
		"framework/nn/linear.go":             false,
		"framework/optim/adam.go":            false,
		"framework/onnx/load.go":             false,
		"framework/models/resnet.go":         false,
		"framework/examples/quickstart/m.go": false,
		"framework/runtime/testdata/x.go":    false,
		"framework/README.md":                false,
		"frameworks/x.go":                    false,
		"testops/cases.go":                   false,
		"framework/nnx/x.go":                 true, // only the exact folder names are outside the core
	}
	for p, want := range tests {
		if got := (Core{}).Contains(p); got != want {
			t.Errorf("Contains(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestLinesGate(t *testing.T) {
	r := newTestRepo(t)
	base := r.commit("base", map[string]string{
		"framework/tensor.go":       "package framework\n\n// T is.\ntype T struct{}\n",
		"framework/runtime/cpu.go":  "package runtime\n\nfunc f() {}\n",
		"framework/nn/linear.go":    "package nn\n\nvar a, b, c = 1, 2, 3\n",
		"framework/tensor_test.go":  "package framework\n\nfunc TestX() {}\n",
		"framework/removed/gone.go": "package removed\n",
		"README.md":                 "# hi\n",
	})
	head := r.commit("head adds lines", map[string]string{
		"framework/tensor.go":       "package framework\n\n// T is.\ntype T struct{}\n\nfunc (T) A() {}\nfunc (T) B() {}\n",
		"framework/ops.go":          "package framework\n\nconst (\n\tADD = iota\n\tMUL\n)\n",
		"framework/nn/linear.go":    "package nn\n\nvar a, b, c = 1, 2, 3\nvar d = 4\n",
		"framework/removed/gone.go": "",
	})
	rep, err := Lines(ctx(t), r.repo(), Core{}, base, head, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []FileLines{
		{"framework/ops.go", 0, 5},
		{"framework/removed/gone.go", 1, 0},
		{"framework/runtime/cpu.go", 2, 2},
		{"framework/tensor.go", 2, 4},
	}
	if len(rep.Files) != len(want) {
		t.Fatalf("files = %+v, want %+v", rep.Files, want)
	}
	for i := range want {
		if rep.Files[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rep.Files[i], want[i])
		}
	}
	if rep.Base != 5 || rep.Head != 11 {
		t.Errorf("totals = %d → %d, want 5 → 11", rep.Base, rep.Head)
	}
	if !rep.Over() {
		t.Error("11 lines against a budget of 10 must be over")
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if last := lines[len(lines)-1]; last != "total 11" {
		t.Errorf("last line = %q, want %q", last, "total 11")
	}
	for _, s := range []string{"framework/ops.go", "+5", "+2", "-1", "+6", "OVER BUDGET by 1"} {
		if !strings.Contains(text, s) {
			t.Errorf("table lacks %q:\n%s", s, text)
		}
	}
	md := rep.Markdown(false)
	if strings.Contains(md, "cpu.go") {
		t.Errorf("the comment lists only changed files, got:\n%s", md)
	}
	if !strings.Contains(md, "| `framework/tensor.go` | 2 | 4 | +2 |") || !strings.Contains(md, "**+6**") {
		t.Errorf("markdown table wrong:\n%s", md)
	}

	ok, err := Lines(ctx(t), r.repo(), Core{}, base, head, 11)
	if err != nil {
		t.Fatal(err)
	}
	if ok.Over() {
		t.Error("exactly at the budget is within it")
	}
}

func TestLinesFromEmptyTreeAndWorktree(t *testing.T) {
	r := newTestRepo(t)
	head := r.commit("root", map[string]string{"framework/a.go": "package a\nvar x = 1\n"})
	rep, err := Lines(ctx(t), r.repo(), Core{}, "", head, DefaultBudget)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Base != 0 || rep.Head != 2 {
		t.Fatalf("totals %d → %d, want 0 → 2", rep.Base, rep.Head)
	}
	r.commitless("framework/b.go", "package a\nvar y = 2\nvar z = 3\n")
	wt, err := Lines(ctx(t), r.repo(), Core{}, head, Worktree, DefaultBudget)
	if err != nil {
		t.Fatal(err)
	}
	if wt.Head != 5 {
		t.Errorf("working tree total = %d, want 5 (uncommitted b.go counts)", wt.Head)
	}

	// Ignored files are build outputs: they neither count nor get copied for a build.
	r.commitless(".gitignore", "/framework/gen_ignored.go\n/big.bin\n")
	r.commitless("framework/gen_ignored.go", "package a\nvar g = 1\n")
	r.commitless("big.bin", "not source")
	wt, err = Lines(ctx(t), r.repo(), Core{}, head, Worktree, DefaultBudget)
	if err != nil {
		t.Fatal(err)
	}
	if wt.Head != 5 {
		t.Errorf("working tree total = %d, want 5 (the ignored file does not count)", wt.Head)
	}
	dst := t.TempDir()
	if err := r.repo().Export(ctx(t), Worktree, dst); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"framework/a.go": true, "framework/b.go": true, "big.bin": false, "framework/gen_ignored.go": false, ".git": false} {
		if _, err := os.Stat(filepath.Join(dst, p)); (err == nil) != want {
			t.Errorf("export of the working tree: %s present = %v, want %v", p, err == nil, want)
		}
	}
}

func TestLinesBadInput(t *testing.T) {
	r := newTestRepo(t)
	head := r.commit("bad", map[string]string{"framework/a.go": "package a\nvar s = 'xx\n"})
	if _, err := Lines(ctx(t), r.repo(), Core{}, "", head, 100); err == nil || !strings.Contains(err.Error(), "framework/a.go") {
		t.Errorf("a file that is not Go must be an error naming it, got %v", err)
	}
	if _, err := Lines(ctx(t), r.repo(), Core{}, "", head, 0); err == nil {
		t.Error("a zero budget must be refused")
	}
	if _, err := r.repo().Resolve(ctx(t), "no-such-branch"); err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Errorf("unknown ref: %v", err)
	}
	if _, err := r.repo().Resolve(ctx(t), "--output=/tmp/x"); err == nil {
		t.Error("a ref that looks like an option must be refused")
	}
}
