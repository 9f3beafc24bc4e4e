package ci

import (
	"context"
	"fmt"
	"go/scanner"
	"go/token"
	"io"
	"sort"
	"strings"
)

// DefaultBudget is the framework core's line budget (DESIGN.md, issue 3).
const DefaultBudget = 9000

// Core says which files count against the line budget: Go files under Root, minus tests and
// the folders directly under Root that are outside the core (DESIGN.md: nn, optim, onnx,
// models, examples). The zero value is the framework's own policy.
type Core struct {
	Root    string   // default "framework"
	Exclude []string // default nn, optim, onnx, models, examples
}

func (c Core) root() string {
	if c.Root == "" {
		return "framework"
	}
	return strings.Trim(c.Root, "/")
}

func (c Core) exclude() []string {
	if c.Exclude == nil {
		return []string{"nn", "optim", "onnx", "models", "examples"}
	}
	return c.Exclude
}

// Contains reports whether a slash-separated repository path counts against the budget.
// Files in testdata folders count nowhere, as the go tool ignores them too.
func (c Core) Contains(p string) bool {
	rest, ok := strings.CutPrefix(p, c.root()+"/")
	if !ok || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
		return false
	}
	parts := strings.Split(rest, "/")
	for _, d := range parts[:len(parts)-1] {
		if d == "testdata" || d == "vendor" || strings.HasPrefix(d, ".") || strings.HasPrefix(d, "_") {
			return false
		}
	}
	if len(parts) > 1 {
		for _, x := range c.exclude() {
			if parts[0] == x {
				return false
			}
		}
	}
	return true
}

// CountLines counts the lines of Go source that hold code: a line counts when any token other
// than a comment starts on it, or when a multi-line raw string has non-blank text on it (so
// code kept in a string, such as a C template, counts like any other code). Blank lines and
// lines holding only comments do not count. Semicolons the scanner inserts at line ends are
// not tokens the author wrote and do not count either. A file that does not scan as Go is an
// error naming the first bad position.
func CountLines(name string, src []byte) (int, error) {
	fset := token.NewFileSet()
	file := fset.AddFile(name, -1, len(src))
	var first error
	var s scanner.Scanner
	s.Init(file, src, func(pos token.Position, msg string) {
		if first == nil {
			first = fmt.Errorf("%s: %s", pos, msg)
		}
	}, 0) // mode 0: comments are skipped
	lines := map[int]bool{}
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON && lit != ";" {
			continue // automatic semicolon
		}
		start := file.Line(pos)
		lines[start] = true
		if tok == token.STRING && strings.Contains(lit, "\n") {
			for i, part := range strings.Split(lit, "\n")[1:] {
				if strings.TrimSpace(part) != "" {
					lines[start+1+i] = true
				}
			}
		}
	}
	if first != nil {
		return 0, fmt.Errorf("count lines: %w", first)
	}
	return len(lines), nil
}

// FileLines is one row of the lines table. A file missing on one side has 0 lines there.
type FileLines struct {
	Path string `json:"path"`
	Base int    `json:"base"`
	Head int    `json:"head"`
}

// Diff is head minus base.
func (f FileLines) Diff() int { return f.Head - f.Base }

// LinesReport is the lines gate's result for one pair of commits.
type LinesReport struct {
	Root    string      `json:"root"`
	BaseSHA string      `json:"base_sha"`
	HeadSHA string      `json:"head_sha"`
	Budget  int         `json:"budget"`
	Base    int         `json:"base_total"`
	Head    int         `json:"head_total"`
	Files   []FileLines `json:"files"` // every core file at base or head, sorted by path
}

// Over reports whether the head is over budget: the gate's only failure.
func (r *LinesReport) Over() bool { return r.Head > r.Budget }

// Conclusion is failure over budget, success otherwise.
func (r *LinesReport) Conclusion() string {
	if r.Over() {
		return Failure
	}
	return Success
}

// Changed returns the rows whose count differs between base and head.
func (r *LinesReport) Changed() []FileLines {
	var out []FileLines
	for _, f := range r.Files {
		if f.Diff() != 0 {
			out = append(out, f)
		}
	}
	return out
}

// CountCore counts the core's lines of every file at one commit (or Worktree).
func CountCore(ctx context.Context, repo Repo, core Core, sha string) (map[string]int, error) {
	files, err := repo.Files(ctx, sha, core.root(), core.Contains)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(files))
	for p, src := range files {
		n, err := CountLines(p, src)
		if err != nil {
			return nil, fmt.Errorf("at %s: %w", short(sha), err)
		}
		counts[p] = n
	}
	return counts, nil
}

// Lines runs the lines gate: it counts the core at base and head (both read from git objects;
// base may be "" for the empty tree) and compares head with the budget.
func Lines(ctx context.Context, repo Repo, core Core, baseSHA, headSHA string, budget int) (*LinesReport, error) {
	if budget <= 0 {
		return nil, fmt.Errorf("line budget must be positive, got %d", budget)
	}
	base, err := CountCore(ctx, repo, core, baseSHA)
	if err != nil {
		return nil, fmt.Errorf("lines at base: %w", err)
	}
	head, err := CountCore(ctx, repo, core, headSHA)
	if err != nil {
		return nil, fmt.Errorf("lines at head: %w", err)
	}
	r := &LinesReport{Root: core.root(), BaseSHA: baseSHA, HeadSHA: headSHA, Budget: budget}
	seen := map[string]bool{}
	for _, m := range []map[string]int{base, head} {
		for p := range m {
			if !seen[p] {
				seen[p] = true
				r.Files = append(r.Files, FileLines{Path: p, Base: base[p], Head: head[p]})
				r.Base += base[p]
				r.Head += head[p]
			}
		}
	}
	sort.Slice(r.Files, func(i, j int) bool { return r.Files[i].Path < r.Files[j].Path })
	return r, nil
}

// signed writes a diff with its sign; zero is blank so the eye finds the changes.
func signed(n int) string {
	switch {
	case n > 0:
		return fmt.Sprintf("+%d", n)
	case n < 0:
		return fmt.Sprint(n)
	}
	return ""
}

// WriteText prints the table for a terminal: every core file with base, head and diff, the
// total change, the budget, and last a line `total N` with the head's count, which scripts
// read.
func (r *LinesReport) WriteText(w io.Writer) error {
	width := len("all core files")
	for _, f := range r.Files {
		width = max(width, len(f.Path))
	}
	row := func(name, base, head, diff string) {
		fmt.Fprintf(w, "%-*s  %6s  %6s  %6s\n", width, name, base, head, diff)
	}
	row("file", "base", "head", "diff")
	for _, f := range r.Files {
		row(f.Path, fmt.Sprint(f.Base), fmt.Sprint(f.Head), signed(f.Diff()))
	}
	row("all core files", fmt.Sprint(r.Base), fmt.Sprint(r.Head), signed(r.Head-r.Base))
	verdict := "within budget"
	if r.Over() {
		verdict = fmt.Sprintf("OVER BUDGET by %d", r.Head-r.Budget)
	}
	fmt.Fprintf(w, "base %s → head %s: %s lines (%d files changed); budget %d, %s\n",
		short(r.BaseSHA), short(r.HeadSHA), signedOrZero(r.Head-r.Base), len(r.Changed()), r.Budget, verdict)
	_, err := fmt.Fprintf(w, "total %d\n", r.Head)
	return err
}

func signedOrZero(n int) string {
	if n == 0 {
		return "±0"
	}
	return signed(n)
}

// Title is the one-line outcome used as the check run's title.
func (r *LinesReport) Title() string {
	if r.Over() {
		return fmt.Sprintf("%d core lines, %d over the %d budget (%s)", r.Head, r.Head-r.Budget, r.Budget, signedOrZero(r.Head-r.Base))
	}
	return fmt.Sprintf("%d core lines of %d (%s)", r.Head, r.Budget, signedOrZero(r.Head-r.Base))
}

// Markdown renders the per-file table for the check run and the pull-request comment: the
// files that changed (all files when full is set), then the totals.
func (r *LinesReport) Markdown(full bool) string {
	var b strings.Builder
	rows := r.Changed()
	if full {
		rows = r.Files
	}
	fmt.Fprintf(&b, "**%s**\n\n", r.Title())
	if len(rows) == 0 {
		b.WriteString("No core file changed its line count.\n\n")
	} else {
		b.WriteString("| file | base | head | diff |\n| --- | ---: | ---: | ---: |\n")
		for _, f := range rows {
			fmt.Fprintf(&b, "| `%s` | %d | %d | %s |\n", f.Path, f.Base, f.Head, signedOrZero(f.Diff()))
		}
		fmt.Fprintf(&b, "| **total** | %d | %d | **%s** |\n\n", r.Base, r.Head, signedOrZero(r.Head-r.Base))
	}
	fmt.Fprintf(&b, "Budget %d, counted over `%s` (core files, %s, non-blank non-comment lines) at base `%s` and head `%s`.\n",
		r.Budget, r.Root+"/", "no tests, nn, optim, onnx, models or examples", short(r.BaseSHA), short(r.HeadSHA))
	return b.String()
}
