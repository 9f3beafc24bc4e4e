package framework

import (
	"go/scanner"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// coreBudget is the limit on the framework core's non-blank, non-comment Go lines.
const coreBudget = 9000

// notCore lists the folders outside the budget.
var notCore = map[string]bool{"nn": true, "optim": true, "onnx": true, "models": true, "examples": true}

// codeLines counts the lines of src that hold at least one token other than a comment.
func codeLines(src []byte) int {
	fset := token.NewFileSet()
	f := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(f, src, nil, 0) // comments are skipped
	lines := map[int]bool{}
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON && lit == "\n" {
			continue // an inserted semicolon is not code
		}
		lines[f.Line(pos)] = true
	}
	return len(lines)
}

// TestCoreLineBudget prints the framework core's line count (go test -v -run LineBudget
// ./framework) and fails over budget.
func TestCoreLineBudget(t *testing.T) {
	total := 0
	per := map[string]int{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && notCore[d.Name()] {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n := codeLines(src)
		per[filepath.Dir(path)] += n
		total += n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range slices.Sorted(maps.Keys(per)) {
		t.Logf("%-12s %5d", dir, per[dir])
	}
	t.Logf("framework core: %d lines (budget %d)", total, coreBudget)
	if total > coreBudget {
		t.Fatalf("framework core has %d lines, over the budget of %d", total, coreBudget)
	}
}

func TestCodeLines(t *testing.T) {
	src := "package x\n\n// comment\nfunc f() {\n\t/* block\n\tcomment */\n\treturn // trailing\n}\n"
	if n := codeLines([]byte(src)); n != 4 {
		t.Fatalf("codeLines = %d, want 4 (package, func, return, brace)", n)
	}
}
