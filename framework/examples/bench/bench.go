// Package bench measures the GPU backend against PyTorch on the same card in the same run:
// device-to-device copy bandwidth, a fused product of six tensors, a sum, a row softmax and
// float32/float16 matrix products. `gradforge bench` prints the table that BENCHMARKS.md
// records.
//
// Every case is timed with device events around the launches only (inputs are uploaded
// first), after warm-up, as the median of Reps runs. Two implementations are measured where
// they exist: "gradforge" is the framework's own path (lazy tensors, scheduler, generated
// kernels) and "runtime" is a hand-written kernel launched through the same CUDA runtime,
// which shows what the runtime itself reaches and what the code generator should aim at.
package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

//go:embed torchref.py
var torchRef []byte

// Options size a run.
type Options struct {
	Small  bool   // small sizes, for a quick check of the harness
	Reps   int    // timed runs per case (median reported)
	Python string // interpreter with torch for the reference; "" skips it
	Only   string // run only cases whose name contains this
}

// Result is one timed case.
type Result struct {
	Case  string  `json:"case"`
	Impl  string  `json:"impl"` // "gradforge", "gradforge (JIT)", "gradforge kernels", "runtime" or "torch"
	Ms    float64 `json:"ms"`
	Bytes int64   `json:"bytes,omitempty"` // minimum device memory traffic
	Flops int64   `json:"flops,omitempty"`
	Note  string  `json:"note,omitempty"`
	Err   string  `json:"error,omitempty"`
}

// GBps is the achieved bandwidth counting bytes read plus written.
func (r Result) GBps() float64 { return float64(r.Bytes) / (r.Ms * 1e6) }

// TFLOPs is the achieved arithmetic rate.
func (r Result) TFLOPs() float64 { return float64(r.Flops) / (r.Ms * 1e9) }

// Sizes are the problem sizes of a run.
type Sizes struct{ N, Rows, MM int }

// SizesFor returns the sizes (256M elements, 16384² softmax, 4096³ matmul) or small
// ones.
func SizesFor(small bool) Sizes {
	if small {
		return Sizes{N: 1 << 20, Rows: 1024, MM: 512}
	}
	return Sizes{N: 256 << 20, Rows: 16384, MM: 4096}
}

// Torch runs the PyTorch reference with the same sizes and returns its results.
func Torch(ctx context.Context, o Options) (device, version string, out []Result, err error) {
	dir, err := os.MkdirTemp("", "gradforge-bench")
	if err != nil {
		return "", "", nil, fmt.Errorf("torch reference: %w", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "torchref.py")
	if err := os.WriteFile(script, torchRef, 0o644); err != nil {
		return "", "", nil, fmt.Errorf("torch reference: %w", err)
	}
	args := []string{script, "--reps", fmt.Sprint(o.Reps)}
	if o.Small {
		args = append(args, "--small")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.Python, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", "", nil, fmt.Errorf("torch reference (%s): %w: %s", o.Python, err, lastLines(stderr.String(), 5))
	}
	var rep struct {
		Device, Torch string
		Results       map[string]struct {
			Ms           float64
			Bytes, Flops int64
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return "", "", nil, fmt.Errorf("torch reference output: %w: %q", err, lastLines(stdout.String(), 3))
	}
	for name, r := range rep.Results {
		out = append(out, Result{Case: name, Impl: "torch", Ms: r.Ms, Bytes: r.Bytes, Flops: r.Flops})
	}
	return rep.Device, rep.Torch, out, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// median times f (which returns one run's device time) after warm-up runs.
func median(reps int, f func() (time.Duration, error)) (float64, error) {
	for range 3 {
		if _, err := f(); err != nil {
			return 0, err
		}
	}
	var ts []float64
	for range max(reps, 1) {
		d, err := f()
		if err != nil {
			return 0, err
		}
		ts = append(ts, float64(d)/float64(time.Millisecond))
	}
	slices.Sort(ts)
	return ts[len(ts)/2], nil
}

// Table writes results grouped by case: each implementation's time, rate and its ratio to
// PyTorch's time (above 1 is faster than PyTorch) and, for bandwidth cases, to the measured
// copy bandwidth.
func Table(w io.Writer, rs []Result) {
	var copyBW float64
	for _, r := range rs {
		if r.Case == "copy" && r.Impl == "torch" && r.Err == "" {
			copyBW = r.GBps()
		}
	}
	torch := map[string]float64{}
	var cases []string
	for _, r := range rs {
		if r.Impl == "torch" {
			torch[r.Case] = r.Ms
		}
		if !slices.Contains(cases, r.Case) {
			cases = append(cases, r.Case)
		}
	}
	fmt.Fprintf(w, "| case | impl | time (ms) | rate | vs torch | of copy BW |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, c := range cases {
		for _, r := range rs {
			if r.Case != c {
				continue
			}
			if r.Err != "" {
				fmt.Fprintf(w, "| %s | %s | failed: %s | | | |\n", c, r.Impl, strings.ReplaceAll(r.Err, "\n", " "))
				continue
			}
			rate, ofCopy, vs := "", "", ""
			if r.Flops > 0 {
				rate = fmt.Sprintf("%.1f TFLOP/s", r.TFLOPs())
			} else if r.Bytes > 0 {
				rate = fmt.Sprintf("%.0f GB/s", r.GBps())
				if copyBW > 0 {
					ofCopy = fmt.Sprintf("%.0f %%", 100*r.GBps()/copyBW)
				}
			}
			if t, ok := torch[c]; ok && r.Impl != "torch" {
				vs = fmt.Sprintf("%.2f×", t/r.Ms)
			}
			note := ""
			if r.Note != "" {
				note = " (" + r.Note + ")"
			}
			fmt.Fprintf(w, "| %s | %s%s | %.3f | %s | %s | %s |\n", c, r.Impl, note, r.Ms, rate, vs, ofCopy)
		}
	}
}

// relErr is ‖got−want‖/‖want‖.
func relErr(got, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := got[i] - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	if math.IsNaN(num) {
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}

// Order sorts results by case (in the order) and, within a case, torch first.
func Order(rs []Result) []Result {
	rank := map[string]int{"copy": 0, "product6": 1, "product6_compiled": 2, "sum": 3, "softmax": 4, "matmul_f32": 5, "matmul_f16": 6, "train_step": 7}
	impl := map[string]int{"torch": 0, "gradforge": 1, "gradforge (JIT)": 2, "gradforge kernels": 3, "runtime": 4}
	slices.SortStableFunc(rs, func(a, b Result) int {
		if d := rank[a.Case] - rank[b.Case]; d != 0 {
			return d
		}
		return impl[a.Impl] - impl[b.Impl]
	})
	return rs
}
