package schedule

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/lazy"
)

func load(vals ...float32) *lazy.Node {
	var raw []byte
	for _, v := range vals {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return &lazy.Node{Op: lazy.Load, DType: dtype.Float32, Arg: raw, Shape: []int{len(vals)}, Device: "CPU"}
}

func binary2(op lazy.Op, a, b *lazy.Node) *lazy.Node {
	return &lazy.Node{Op: op, DType: a.DType, Src: []*lazy.Node{a, b}, Shape: a.Shape, Device: a.Device}
}

func read(t *testing.T, n *lazy.Node) []float32 {
	t.Helper()
	raw := make([]byte, 4*n.Numel())
	if err := n.Buf.Dev.CopyOut(raw, n.Buf.Mem); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, n.Numel())
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// TestDebugAndGraph runs a*b+c with DEBUG=2 and GRAPH on: one launch line with the
// profiler's fields, and a DOT file that names the kernel.
func TestDebugAndGraph(t *testing.T) {
	var log bytes.Buffer
	oldLog, oldDebug, oldGraph := Log, Debug, Graph
	Log, Debug, Graph = &log, 2, true
	t.Cleanup(func() { Log, Debug, Graph = oldLog, oldDebug, oldGraph })

	a, b, c := load(1, 2, 3), load(4, 5, 6), load(1, 1, 1)
	out := binary2(lazy.Add, binary2(lazy.Mul, a, b), c)
	if err := Realize(out); err != nil {
		t.Fatal(err)
	}
	if got := read(t, out); got[0] != 5 || got[1] != 11 || got[2] != 19 {
		t.Fatalf("a*b+c = %v, want [5 11 19]", got)
	}
	lines := regexp.MustCompile(`(?m)^\*\*\* CPU .*E_3 .*ms .*GFLOPS .*GB/s$`).FindAllString(log.String(), -1)
	if len(lines) != 1 {
		t.Fatalf("want one DEBUG=2 launch line for the fused kernel, got:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "schedule: 1 kernels") {
		t.Errorf("DEBUG=1 schedule missing:\n%s", log.String())
	}
	m := regexp.MustCompile(`GRAPH: writing the kernel graph to (\S+)`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("GRAPH did not name its file:\n%s", log.String())
	}
	dot, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(m[1]) })
	if !strings.HasPrefix(string(dot), "digraph kernels {") || !strings.Contains(string(dot), "E_3") ||
		strings.Count(string(dot), "->") != 3 || filepath.Ext(m[1]) != ".dot" {
		t.Fatalf("DOT file does not show the kernel and its three inputs:\n%s", dot)
	}
}

// TestScheduleOrder checks that a kernel comes after the kernels whose buffers it reads.
func TestScheduleOrder(t *testing.T) {
	a := load(1, 2, 3, 4)
	sum := &lazy.Node{Op: lazy.Sum, DType: dtype.Float32, Src: []*lazy.Node{a}, Arg: []int{0}, Shape: []int{1}, Device: "CPU"}
	bcast := &lazy.Node{Op: lazy.Expand, DType: dtype.Float32, Src: []*lazy.Node{sum}, Arg: []int{4}, Shape: []int{4}, Device: "CPU"}
	out := binary2(lazy.Add, binary2(lazy.Mul, a, bcast), bcast) // the sum is used twice: its own kernel
	s := Create(out)
	if len(s.Items) != 2 || s.Items[0].Out != sum || s.Items[1].Out != out || len(s.Uploads) != 1 {
		t.Fatalf("want upload, sum kernel, then the product; got %v", s)
	}
	if err := Realize(out); err != nil {
		t.Fatal(err)
	}
	if got := read(t, out); got[3] != 50 {
		t.Fatalf("a*sum(a)+sum(a) = %v", got)
	}
}
