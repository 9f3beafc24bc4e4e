package ci

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// A tiny module standing in for the framework: one benchmark package whose Work prints its
// "kernel" under DEBUG=4, as the framework prints generated source.
const (
	benchGoMod = "module example.com/fw\n\ngo 1.22\n"
	workBase   = `package bench

import (
	"fmt"
	"os"
)

// Work does n multiply-adds.
func Work(n int) float64 {
	if os.Getenv("DEBUG") == "4" {
		fmt.Println("void E_work(float* restrict data0) {\n  for (int i = 0; i < n; i++) {\n    data0[0] += i*1.0000001f;\n  }\n}")
		fmt.Println("void r_same(float* data0) {\n  data0[0] = 0;\n}")
	}
	s := 0.0
	for i := range n {
		s += float64(i) * 1.0000001
	}
	return s
}
`
	benchTest = `package bench

import "testing"

var sink float64

func BenchmarkWork(b *testing.B) {
	for range b.N {
		sink = Work(20000)
	}
}

func BenchmarkSteady(b *testing.B) {
	for range b.N {
		s := 0.0
		for i := range 20000 {
			s += float64(i) * 0.5
		}
		sink = s
	}
}
`
)

// workHead adds a deliberate extra loop, run three times over: four times the work (so the
// verdict holds even on a machine loaded far past its cores), and a different kernel.
var workHead = strings.Replace(strings.Replace(workBase,
	`	return s
}`, `	for range 3 {
		for i := range n {
			s -= float64(i) * 0.9999999
		}
	}
	return s
}`, 1),
	`    data0[0] += i*1.0000001f;\n`, `    data0[0] += i*1.0000001f;\n    data0[0] -= i*0.9999999f;\n`, 1)

func TestSpeedGate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two benchmark binaries")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	r := newTestRepo(t)
	base := r.commit("base", map[string]string{
		"go.mod":                        benchGoMod,
		"framework/bench/work.go":       workBase,
		"framework/bench/bench_test.go": benchTest,
		"framework/nobench/x.go":        "package nobench\n",
		"framework/nobench/x_test.go":   "package nobench\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) {}\n",
	})
	head := r.commit("head: an extra loop", map[string]string{"framework/bench/work.go": workHead})
	var log bytes.Buffer
	rep, err := Speed(ctx(t), r.repo(), base, head, SpeedOptions{Benchtime: "1000x", Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	got := map[string]BenchResult{}
	for _, b := range rep.Benchmarks {
		got[b.Name] = b
		if len(b.BaseNs) != 10 || len(b.HeadNs) != 10 {
			t.Errorf("%s: %d base and %d head samples, want 10 pairs", b.Name, len(b.BaseNs), len(b.HeadNs))
		}
	}
	work, ok := got["framework/bench.BenchmarkWork"]
	if !ok {
		t.Fatalf("BenchmarkWork missing from %+v", rep.Benchmarks)
	}
	if work.Verdict != Slower {
		t.Errorf("doubled work: ratio %.3f [%.3f, %.3f] judged %s, want slower", work.Ratio, work.Low, work.High, work.Verdict)
	}
	if steady := got["framework/bench.BenchmarkSteady"]; steady.Verdict == Slower || steady.Verdict == Unpaired {
		t.Errorf("unchanged benchmark judged %s (ratio %.3f [%.3f, %.3f])", steady.Verdict, steady.Ratio, steady.Low, steady.High)
	}
	if rep.Conclusion() != Failure {
		t.Errorf("conclusion %s, want failure", rep.Conclusion())
	}
	if len(rep.Replay) != 1 || rep.Replay[0].Name != "E_work" || rep.Replay[0].Change != "changed" ||
		!strings.Contains(rep.Replay[0].Diff, "+    data0[0] -= i*0.9999999f;") {
		t.Errorf("process replay = %+v (note %q), want E_work changed by one added line", rep.Replay, rep.ReplayNote)
	}
	md := rep.Markdown()
	for _, s := range []string{"| benchmark | base | head | ratio | interval | verdict |", "`framework/bench.BenchmarkWork`", "**slower**", "<details><summary>Process replay: 1 of 2 kernels differ</summary>"} {
		if !strings.Contains(md, s) {
			t.Errorf("summary lacks %q:\n%s", s, md)
		}
	}
	c := checkFor(t, GateSpeed, rep)
	if c.Conclusion != Failure || !strings.Contains(c.Title, "1 slower") || !strings.Contains(c.Summary, "`framework/bench.BenchmarkWork`") ||
		!strings.Contains(c.Summary, "+    data0[0] -= i*0.9999999f;") {
		t.Errorf("speed check run: %s %q\n%s", c.Conclusion, c.Title, c.Summary)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "kernel E_work changed") {
		t.Errorf("text table:\n%s", text.String())
	}
}

func TestSpeedGateSkipsWhenNothingChanged(t *testing.T) {
	r := newTestRepo(t)
	base := r.commit("base", map[string]string{"go.mod": benchGoMod, "framework/bench/work.go": workBase, "framework/bench/bench_test.go": benchTest})
	head := r.commit("docs only", map[string]string{"README.md": "# fw\n"})
	rep, err := Speed(ctx(t), r.repo(), base, head, SpeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped == "" || rep.Conclusion() != Success || len(rep.Benchmarks) != 0 || !strings.Contains(rep.Title(), "not run: nothing under framework") {
		t.Errorf("docs-only change: %+v", rep)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

func TestSpeedGateBadInput(t *testing.T) {
	r := newTestRepo(t)
	sha := r.commit("x", map[string]string{"go.mod": benchGoMod})
	if _, err := Speed(ctx(t), r.repo(), sha, sha, SpeedOptions{Pairs: 3}); err == nil || !strings.Contains(err.Error(), "at least 6 pairs") {
		t.Errorf("3 pairs: %v", err)
	}
	if _, err := Speed(ctx(t), r.repo(), sha, sha, SpeedOptions{Bench: "("}); err == nil || !strings.Contains(err.Error(), "--bench") {
		t.Errorf("bad regexp: %v", err)
	}
}

func TestParseBench(t *testing.T) {
	out := []byte("goos: linux\nBenchmarkAdd-2   \t 1000\t  1234.5 ns/op\t  12 B/op\nBenchmarkSub/size=8-16  5  7 ns/op\nBenchmarkNoProcs 3 2e+06 ns/op\nPASS\n")
	got := ParseBench(out)
	want := map[string]float64{"BenchmarkAdd": 1234.5, "BenchmarkSub/size=8": 7, "BenchmarkNoProcs": 2e6}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestParseKernels(t *testing.T) {
	out := `*** CPU 1 E_4 arg 2 mem 0.00 GB tm 1.2us
void E_4(float* restrict data0, const float* restrict data1) {
  for (int i = 0; i < 4; i++) {
    data0[i] = data1[i] * 2.0f;
  }
}
extern "C" __global__ void __launch_bounds__(64) r_16_4(float* data0) {
  if (1) { data0[0] = 0; }
}
__kernel void E_cl(__global float* data0) {
  data0[get_global_id(0)] = 1.0f;
}
void E_4(float* restrict data0, const float* restrict data1) {
  data0[0] = 1;
}
BenchmarkX-2 10 100 ns/op
`
	got := ParseKernels(out)
	for _, name := range []string{"E_4", "r_16_4", "E_cl", "E_4#2"} {
		if _, ok := got[name]; !ok {
			t.Errorf("kernel %s missing; got %v", name, keys(got))
		}
	}
	if len(got) != 4 {
		t.Errorf("got %d kernels %v, want 4", len(got), keys(got))
	}
	if !strings.HasSuffix(got["E_4"], "  }\n}") || strings.Contains(got["E_4"], "r_16_4") {
		t.Errorf("E_4 source wrong:\n%s", got["E_4"])
	}
	changes := DiffKernels(map[string]string{"a": "x\ny", "gone": "z"}, map[string]string{"a": "x\nY", "new": "w"})
	want := []string{"a changed", "gone removed", "new added"}
	if len(changes) != len(want) {
		t.Fatalf("changes %+v", changes)
	}
	for i, c := range changes {
		if c.Name+" "+c.Change != want[i] {
			t.Errorf("change %d = %s %s, want %s", i, c.Name, c.Change, want[i])
		}
	}
	if changes[0].Diff != " x\n-y\n+Y\n" {
		t.Errorf("diff = %q", changes[0].Diff)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
