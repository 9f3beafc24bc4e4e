package ci

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// SpeedOptions configure the speed gate. The zero value is the CI default.
type SpeedOptions struct {
	Packages   []string  // packages whose benchmarks count (default ./framework/...)
	Bench      string    // -test.bench regexp (default ".")
	Pairs      int       // measured ABAB pairs per benchmark after warm-up (default 10, minimum 6)
	Warmup     int       // unmeasured pairs first (default 1)
	Benchtime  string    // -test.benchtime per run (default 100ms)
	Threshold  float64   // slowdown that fails, as a fraction (default 0.05)
	Confidence float64   // of the interval (default 0.95)
	NoReplay   bool      // skip process replay
	Log        io.Writer // progress lines; nil for none
	// Paths are the files that can change performance (default framework/, go.mod, go.sum):
	// when none changed between base and head the benchmarks are not run. Always runs them.
	Paths  []string
	Always bool
}

func (o SpeedOptions) withDefaults() SpeedOptions {
	if len(o.Packages) == 0 {
		o.Packages = []string{"./framework/..."}
	}
	if o.Bench == "" {
		o.Bench = "."
	}
	if o.Pairs == 0 {
		o.Pairs = 10
	}
	if o.Warmup == 0 {
		o.Warmup = 1
	}
	if o.Benchtime == "" {
		o.Benchtime = "100ms"
	}
	if o.Threshold == 0 {
		o.Threshold = 0.05
	}
	if o.Confidence == 0 {
		o.Confidence = 0.95
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if len(o.Paths) == 0 {
		o.Paths = []string{"framework", "go.mod", "go.sum"}
	}
	return o
}

// Missing is the sample recorded for a round whose run did not report a benchmark.
const Missing = -1

// BenchResult is one row of the speed table; times are medians in ns/op. Ratio, Low and High
// are 0 when there is no estimate or interval.
type BenchResult struct {
	Name    string    `json:"name"`
	Base    float64   `json:"base_ns"`
	Head    float64   `json:"head_ns"`
	Ratio   float64   `json:"ratio"`
	Low     float64   `json:"low"`
	High    float64   `json:"high"`
	Verdict string    `json:"verdict"`
	BaseNs  []float64 `json:"base_samples,omitempty"`
	HeadNs  []float64 `json:"head_samples,omitempty"`
}

// SpeedReport is the speed gate's result.
type SpeedReport struct {
	BaseSHA    string         `json:"base_sha"`
	HeadSHA    string         `json:"head_sha"`
	Threshold  float64        `json:"threshold"`
	Confidence float64        `json:"confidence"`
	Pairs      int            `json:"pairs"`
	Benchmarks []BenchResult  `json:"benchmarks"`
	Replay     []KernelChange `json:"replay,omitempty"`
	ReplayNote string         `json:"replay_note,omitempty"`
	// Skipped says why no benchmark ran (nothing that affects speed changed).
	Skipped string `json:"skipped,omitempty"`
}

// Analyze fills the table from paired samples keyed by benchmark name. Benchmarks seen on one
// side only are listed as unpaired.
func Analyze(base, head map[string][]float64, threshold, confidence float64) []BenchResult {
	names := map[string]bool{}
	for n := range base {
		names[n] = true
	}
	for n := range head {
		names[n] = true
	}
	var out []BenchResult
	for n := range names {
		b, h := base[n], head[n]
		r := BenchResult{Name: n, Base: median(b), Head: median(h), BaseNs: b, HeadNs: h}
		if r.Base == 0 || r.Head == 0 {
			r.Verdict = Unpaired
		} else {
			var ok bool
			r.Ratio, r.Low, r.High, ok = RatioCI(b, h, confidence)
			r.Verdict = Judge(r.Low, r.High, threshold, ok)
			r.Ratio, r.Low, r.High = zeroNaN(r.Ratio), zeroNaN(r.Low), zeroNaN(r.High)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Conclusion is the check run's conclusion: failure when any benchmark is slower, neutral when
// any is inconclusive, success otherwise.
func (r *SpeedReport) Conclusion() string {
	if r.Skipped != "" {
		return Success
	}
	if len(r.Benchmarks) == 0 {
		return Neutral // nothing measured: no verdict either way
	}
	c := Success
	for _, b := range r.Benchmarks {
		switch b.Verdict {
		case Slower:
			return Failure
		case Inconclusive:
			c = Neutral
		}
	}
	return c
}

// Title is the one-line outcome.
func (r *SpeedReport) Title() string {
	count := map[string]int{}
	for _, b := range r.Benchmarks {
		count[b.Verdict]++
	}
	if r.Skipped != "" {
		return "not run: " + r.Skipped
	}
	if len(r.Benchmarks) == 0 {
		return "no benchmarks found"
	}
	var parts []string
	for _, v := range []string{Slower, Inconclusive, Unchanged, Faster, Unpaired} {
		if count[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[v], v))
		}
	}
	return fmt.Sprintf("%d benchmarks: %s", len(r.Benchmarks), strings.Join(parts, ", "))
}

// zeroNaN keeps NaN out of results, which JSON cannot carry.
func zeroNaN(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func fmtNs(ns float64) string {
	switch {
	case math.IsNaN(ns) || ns <= 0:
		return "—"
	case ns >= 1e9:
		return fmt.Sprintf("%.3gs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.3gms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3gµs", ns/1e3)
	}
	return fmt.Sprintf("%.3gns", ns)
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) || x == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f", x)
}

func (b BenchResult) interval() string {
	if math.IsNaN(b.Low) || b.Low == 0 {
		return "—"
	}
	return fmt.Sprintf("[%.3f, %.3f]", b.Low, b.High)
}

// WriteText prints the speed table for a terminal.
func (r *SpeedReport) WriteText(w io.Writer) error {
	width := len("benchmark")
	for _, b := range r.Benchmarks {
		width = max(width, len(b.Name))
	}
	fmt.Fprintf(w, "%-*s  %9s  %9s  %6s  %16s  %s\n", width, "benchmark", "base", "head", "ratio", "interval", "verdict")
	for _, b := range r.Benchmarks {
		fmt.Fprintf(w, "%-*s  %9s  %9s  %6s  %16s  %s\n", width, b.Name, fmtNs(b.Base), fmtNs(b.Head), fmtRatio(b.Ratio), b.interval(), b.Verdict)
	}
	fmt.Fprintf(w, "%d ABAB pairs, %.0f %% interval of head/base (Wilcoxon signed-rank on log ratios); fails beyond +%.0f %%\n",
		r.Pairs, 100*r.Confidence, 100*r.Threshold)
	if r.ReplayNote != "" {
		fmt.Fprintf(w, "process replay: %s\n", r.ReplayNote)
	}
	for _, k := range r.Replay {
		fmt.Fprintf(w, "kernel %s %s\n", k.Name, k.Change)
	}
	_, err := fmt.Fprintf(w, "speed: %s\n", r.Title())
	return err
}

// Markdown renders the check-run summary: the table, then process replay in a collapsible
// section.
func (r *SpeedReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**\n\n", r.Title())
	if r.Skipped != "" {
		return b.String()
	}
	if len(r.Benchmarks) > 0 {
		b.WriteString("| benchmark | base | head | ratio | interval | verdict |\n| --- | ---: | ---: | ---: | :---: | --- |\n")
		for _, x := range r.Benchmarks {
			v := x.Verdict
			if v == Slower {
				v = "**slower**"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", x.Name, fmtNs(x.Base), fmtNs(x.Head), fmtRatio(x.Ratio), x.interval(), v)
		}
	}
	fmt.Fprintf(&b, "\n%d interleaved base/head pairs per benchmark after warm-up, built and run on the same runner; "+
		"ratio is head/base (Hodges–Lehmann), interval %.0f %% (Wilcoxon signed-rank on log ratios). "+
		"A benchmark fails only when the whole interval is above %.2f; neutral when the interval straddles it.\n\n",
		r.Pairs, 100*r.Confidence, 1+r.Threshold)
	b.WriteString(r.replayMarkdown())
	return b.String()
}

// benchLine matches a benchmark result: name, optional -GOMAXPROCS suffix, iterations, ns/op.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.e+]+) ns/op`)

// ParseBench reads `go test -bench` output into ns/op per benchmark name.
func ParseBench(out []byte) map[string]float64 {
	res := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if ns, err := strconv.ParseFloat(m[2], 64); err == nil {
			res[m[1]] = ns
		}
	}
	return res
}

// benchBinary is one package's compiled benchmarks at one side.
type benchBinary struct {
	Pkg, Bin, Dir string // import path relative to the module, binary, package folder
}

// BuildBenchmarks compiles the test binaries of the packages that hold benchmarks in a checkout
// at root, into binDir. Only the tree is read; nothing in the repository's checkout changes.
func BuildBenchmarks(ctx context.Context, root, binDir string, patterns []string) (map[string]benchBinary, error) {
	args := append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{.Module.Path}}\t{{join .TestGoFiles \",\"}},{{join .XTestGoFiles \",\"}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %v in %s: %v: %s", patterns, root, err, strings.TrimSpace(stderr.String()))
	}
	bins := map[string]benchBinary{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || !hasBenchmarks(f[1], strings.Split(f[3], ",")) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], f[2]), "/")
		bin := filepath.Join(binDir, strings.ReplaceAll(rel, "/", "_")+".test")
		build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, f[0])
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build benchmarks of %s: %v\n%s", rel, err, out)
		}
		bins[rel] = benchBinary{Pkg: rel, Bin: bin, Dir: f[1]}
	}
	return bins, nil
}

func hasBenchmarks(dir string, files []string) bool {
	for _, f := range files {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil && bytes.Contains(b, []byte("func Benchmark")) {
			return true
		}
	}
	return false
}

// runBench runs one benchmark binary once and returns its output.
func runBench(ctx context.Context, b benchBinary, bench, benchtime string, env []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, b.Bin, "-test.run=^$", "-test.bench="+bench, "-test.benchtime="+benchtime, "-test.count=1")
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %v\n%s", b.Pkg, err, tail(out, 2000))
	}
	return out, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Speed runs the speed gate on two commits: it exports both trees, builds their benchmark
// binaries on this machine, runs them interleaved (base, head, base, head, …) so drift in the
// machine's state hits both sides alike, and judges each benchmark's head/base ratio.
func Speed(ctx context.Context, repo Repo, baseSHA, headSHA string, o SpeedOptions) (*SpeedReport, error) {
	o = o.withDefaults()
	if o.Pairs < 6 {
		return nil, fmt.Errorf("speed gate needs at least 6 pairs for a 95 %% interval, got %d", o.Pairs)
	}
	if _, err := regexp.Compile(o.Bench); err != nil {
		return nil, fmt.Errorf("--bench: %w", err)
	}
	if !o.Always && baseSHA != "" && headSHA != Worktree {
		changed, err := repo.Changed(ctx, baseSHA, headSHA, o.Paths)
		if err != nil {
			return nil, err
		}
		if !changed {
			return &SpeedReport{BaseSHA: baseSHA, HeadSHA: headSHA, Threshold: o.Threshold, Confidence: o.Confidence, Pairs: o.Pairs,
				Skipped: fmt.Sprintf("nothing under %s changed", strings.Join(o.Paths, ", "))}, nil
		}
	}
	work, err := os.MkdirTemp("", "gradforge-speed-")
	if err != nil {
		return nil, fmt.Errorf("speed gate: %w", err)
	}
	defer os.RemoveAll(work)
	bins := [2]map[string]benchBinary{}
	for i, sha := range []string{baseSHA, headSHA} {
		side := [2]string{"base", "head"}[i]
		if sha == "" {
			return nil, fmt.Errorf("speed gate: the %s needs a commit", side)
		}
		src := filepath.Join(work, side)
		if err := repo.Export(ctx, sha, src); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "building %s (%s) benchmarks\n", side, short(sha))
		bins[i], err = BuildBenchmarks(ctx, src, filepath.Join(work, "bin-"+side), o.Packages)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", side, err)
		}
	}
	samples := [2]map[string][]float64{{}, {}}
	pkgs := map[string]bool{}
	for i := range bins {
		for p := range bins[i] {
			pkgs[p] = true
		}
	}
	for p := range pkgs {
		for round := range o.Warmup + o.Pairs {
			var got [2]map[string]float64
			for i := range 2 {
				b, ok := bins[i][p]
				if !ok {
					continue
				}
				out, err := runBench(ctx, b, o.Bench, o.Benchtime, nil)
				if err != nil {
					return nil, fmt.Errorf("run %s benchmarks: %w", [2]string{"base", "head"}[i], err)
				}
				got[i] = ParseBench(out)
			}
			fmt.Fprintf(o.Log, "%s: round %d/%d\n", p, round+1, o.Warmup+o.Pairs)
			if round < o.Warmup {
				continue
			}
			// Keep pairs aligned by round: a run that did not report a benchmark leaves a
			// Missing sample, which the statistic skips with its partner.
			n := round - o.Warmup
			for i := range 2 {
				if got[i] == nil {
					continue
				}
				for _, m := range got {
					for name := range m {
						key := p + "." + name
						for len(samples[i][key]) < n {
							samples[i][key] = append(samples[i][key], Missing)
						}
						if len(samples[i][key]) == n {
							ns, ok := got[i][name]
							if !ok {
								ns = Missing
							}
							samples[i][key] = append(samples[i][key], ns)
						}
					}
				}
			}
		}
	}
	rep := &SpeedReport{BaseSHA: baseSHA, HeadSHA: headSHA, Threshold: o.Threshold, Confidence: o.Confidence, Pairs: o.Pairs,
		Benchmarks: Analyze(samples[0], samples[1], o.Threshold, o.Confidence)}
	if !o.NoReplay {
		if err := rep.replay(ctx, bins, o.Bench); err != nil {
			rep.ReplayNote = "failed: " + err.Error()
		}
	}
	return rep, nil
}

// errNoKernels is the replay note when the benchmarks printed no generated source.
var errNoKernels = errors.New("no generated kernel source in DEBUG=4 output")
