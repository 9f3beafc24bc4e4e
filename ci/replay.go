package ci

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// KernelChange is one generated kernel that differs between base and head (tinygrad's process
// replay): the same benchmark programs, run with DEBUG=4, print the source of every kernel
// they compile; comparing the two sets shows what a change did to code generation even when
// the timings cannot tell.
type KernelChange struct {
	Name   string `json:"name"`
	Change string `json:"change"` // "added", "removed" or "changed"
	Diff   string `json:"diff,omitempty"`
}

// kernelHead matches the line that opens a C-family kernel definition: C (`void E_4(float*
// restrict data0) {`), CUDA (`extern "C" __global__ void __launch_bounds__(64) E_4(...) {`)
// and OpenCL (`__kernel void E_4(...) {`). The name is the identifier right before the
// parameter list.
var kernelHead = regexp.MustCompile(`\b(?:void|__global__|__kernel|kernel)\b.*?\b([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)\s*\{\s*$`)

// ParseKernels extracts kernel sources from DEBUG=4 output: from each line that opens a kernel
// definition to the brace that closes it. Other output (DEBUG=2 launch lines, benchmark
// results) is ignored. A name seen twice with different source gets a #2 suffix.
func ParseKernels(out string) map[string]string {
	kernels := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var name string
	var body []string
	depth := 0
	for sc.Scan() {
		line := sc.Text()
		if name == "" {
			m := kernelHead.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name, body, depth = m[1], nil, 0
		}
		body = append(body, line)
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		if depth > 0 {
			continue
		}
		src := strings.Join(body, "\n")
		key := name
		for i := 2; kernels[key] != "" && kernels[key] != src; i++ {
			key = fmt.Sprintf("%s#%d", name, i)
		}
		kernels[key] = src
		name = ""
	}
	return kernels
}

// DiffKernels compares two sets of kernel sources by name.
func DiffKernels(base, head map[string]string) []KernelChange {
	var out []KernelChange
	for n, h := range head {
		b, ok := base[n]
		switch {
		case !ok:
			out = append(out, KernelChange{Name: n, Change: "added", Diff: lineDiff("", h)})
		case b != h:
			out = append(out, KernelChange{Name: n, Change: "changed", Diff: lineDiff(b, h)})
		}
	}
	for n, b := range base {
		if _, ok := head[n]; !ok {
			out = append(out, KernelChange{Name: n, Change: "removed", Diff: lineDiff(b, "")})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// lineDiff is a minimal line diff (longest common subsequence) in unified style without
// hunks: kernels are short, so the whole kernel is shown with - and + marks.
func lineDiff(a, b string) string {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	x, y := split(a), split(b)
	if len(x)*len(y) > 4_000_000 {
		return fmt.Sprintf("(kernel too long to diff: %d → %d lines)", len(x), len(y))
	}
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var d strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			d.WriteString(" " + x[i] + "\n")
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			d.WriteString("-" + x[i] + "\n")
			i++
		default:
			d.WriteString("+" + y[j] + "\n")
			j++
		}
	}
	return d.String()
}

// replay runs each side's benchmarks once with DEBUG=4 and one iteration, collects the kernel
// sources and records the differences.
func (r *SpeedReport) replay(ctx context.Context, bins [2]map[string]benchBinary, bench string) error {
	var srcs [2]map[string]string
	for i := range bins {
		var all strings.Builder
		pkgs := make([]string, 0, len(bins[i]))
		for p := range bins[i] {
			pkgs = append(pkgs, p)
		}
		sort.Strings(pkgs)
		for _, p := range pkgs {
			out, err := runBench(ctx, bins[i][p], bench, "1x", []string{"DEBUG=4"})
			if err != nil {
				return fmt.Errorf("DEBUG=4 run: %w", err)
			}
			all.Write(out)
			all.WriteByte('\n')
		}
		srcs[i] = ParseKernels(all.String())
	}
	if len(srcs[0]) == 0 && len(srcs[1]) == 0 {
		r.ReplayNote = errNoKernels.Error()
		return nil
	}
	r.Replay = DiffKernels(srcs[0], srcs[1])
	r.ReplayNote = fmt.Sprintf("%d of %d kernels differ", len(r.Replay), max(len(srcs[0]), len(srcs[1])))
	return nil
}

// replayMarkdown is the collapsible process-replay section of the speed summary.
func (r *SpeedReport) replayMarkdown() string {
	if r.ReplayNote == "" && len(r.Replay) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary>Process replay: %s</summary>\n\n", r.ReplayNote)
	for _, k := range r.Replay {
		fmt.Fprintf(&b, "**`%s`** %s\n\n```diff\n%s```\n\n", k.Name, k.Change, k.Diff)
	}
	b.WriteString("</details>\n")
	return b.String()
}
