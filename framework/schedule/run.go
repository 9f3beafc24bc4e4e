package schedule

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gradforge/gradforge/framework/codegen"
	"github.com/gradforge/gradforge/framework/lazy"
	rt "github.com/gradforge/gradforge/framework/runtime"
)

// Debug is $DEBUG, read once: 1 prints schedules, 2 adds one line per kernel launch, 4 adds
// the generated source. Graph is $GRAPH: when set, the kernel graph is kept as Graphviz DOT.
var (
	Debug, _ = strconv.Atoi(os.Getenv("DEBUG"))
	Graph    = os.Getenv("GRAPH") != "" && os.Getenv("GRAPH") != "0"
	// Log receives the DEBUG and GRAPH output.
	Log io.Writer = os.Stderr
)

var (
	mu       sync.Mutex // realizing mutates the graph; one realize at a time
	launches atomic.Int64
	dot      dotGraph
)

// Launches counts kernels launched by this process (for tests and profiling).
func Launches() int64 { return launches.Load() }

// Realize computes targets: it schedules them, runs every kernel, and leaves each target
// with a buffer.
func Realize(targets ...*lazy.Node) error {
	mu.Lock()
	defer mu.Unlock()
	s := Create(targets...)
	if Debug >= 1 && len(s.Items) > 0 {
		fmt.Fprint(Log, s)
	}
	for _, n := range s.Uploads {
		if err := upload(n); err != nil {
			return err
		}
	}
	for _, it := range s.Items {
		if err := run(it); err != nil {
			return err
		}
	}
	for t, base := range s.Aliases {
		t.Buf, t.Src = base.Buf, nil
	}
	if Graph && len(s.Items) > 0 {
		dot.add(s)
	}
	return nil
}

// upload copies a Load node's host bytes to its device and lets the host copy go.
func upload(n *lazy.Node) error {
	dev, err := rt.Get(n.Device)
	if err != nil {
		return err
	}
	raw := n.Arg.([]byte)
	b, err := lazy.NewBuffer(dev, len(raw))
	if err != nil {
		return err
	}
	if err := dev.CopyIn(b.Mem, raw); err != nil {
		return fmt.Errorf("upload %v %s to %s: %w", n.Shape, n.DType, dev.Name(), err)
	}
	n.Buf, n.Arg = b, nil
	return nil
}

func run(it *Item) error {
	dev, err := rt.Get(it.Out.Device)
	if err != nil {
		return err
	}
	d, ok := codegen.Dialects[dev.Language()]
	if !ok {
		return fmt.Errorf("no renderer for language %q of device %s", dev.Language(), dev.Name())
	}
	out, err := lazy.NewBuffer(dev, it.Out.Numel()*it.Out.DType.Size())
	if err != nil {
		return err
	}
	if it.Out.Numel() == 0 {
		it.Out.Buf, it.Out.Src = out, nil
		return nil
	}
	k := lower(it.AST, d)
	if Debug >= 4 {
		fmt.Fprintf(Log, "%s\n", k.Src)
	}
	prog, ok := programs[dev][k]
	if !ok {
		if prog, err = dev.Compile(k.Name, k.Src); err != nil {
			return fmt.Errorf("kernel %s: %w", k.Name, err)
		}
		if programs[dev] == nil {
			programs[dev] = map[*codegen.Kernel]rt.Program{}
		}
		programs[dev][k] = prog
	}
	bufs := []rt.Buffer{out.Mem}
	bytes := int64(out.Mem.Size())
	for _, in := range it.Ins {
		bufs = append(bufs, in.Buf.Mem)
		bytes += int64(in.Buf.Mem.Size())
	}
	global, local := k.Launch(d)
	el, err := prog.Launch(bufs, nil, global, local, Debug >= 2)
	if err != nil {
		return fmt.Errorf("launch %s on %s: %w", k.Name, dev.Name(), err)
	}
	n := launches.Add(1)
	if Debug >= 2 {
		s := el.Seconds()
		fmt.Fprintf(Log, "*** %-5s %5d %-28s global %-18s %9.3f ms %9.2f GFLOPS %8.2f GB/s\n",
			dev.Name(), n, k.Name, fmt.Sprint(k.Global, k.Reduce), s*1e3, float64(k.Flops)/s/1e9, float64(bytes)/s/1e9)
	}
	it.Out.Buf, it.Out.Src = out, nil
	it.name = k.Name
	return nil
}

// kernels caches rendered kernels by dialect and AST structure: a training loop realizes the
// same graphs every step, and rendering is most of the host's work per kernel.
var (
	kernels  = map[*codegen.Dialect]map[string]*codegen.Kernel{}
	programs = map[rt.Device]map[*codegen.Kernel]rt.Program{} // compiled, by cached kernel
)

// keyBuf and keyIDs are lower's scratch (realizes hold mu): a hit allocates nothing.
var (
	keyBuf []byte
	keyIDs = map[*codegen.Expr]int{}
)

// lower renders ast in d, or returns the kernel rendered for an identical AST before.
func lower(ast *codegen.AST, d *codegen.Dialect) *codegen.Kernel {
	keyBuf = ast.AppendKey(keyBuf[:0], keyIDs)
	clear(keyIDs)
	if k, ok := kernels[d][string(keyBuf)]; ok {
		return k
	}
	key := string(keyBuf)
	if len(kernels[d]) >= 4096 || kernels[d] == nil {
		kernels[d] = map[string]*codegen.Kernel{}
		clear(programs)
	}
	k := codegen.Lower(ast, d)
	kernels[d][key] = k
	return k
}

// dotGraph accumulates every kernel run while GRAPH is set and rewrites one DOT file.
type dotGraph struct {
	path   string
	ids    map[*lazy.Buffer]string
	b      strings.Builder
	kernel int
}

func (g *dotGraph) add(s *Schedule) {
	if g.ids == nil {
		g.ids = map[*lazy.Buffer]string{}
		g.path = filepath.Join(os.TempDir(), fmt.Sprintf("gradforge-graph-%d.dot", os.Getpid()))
		fmt.Fprintf(Log, "GRAPH: writing the kernel graph to %s (open with: dot -Tsvg %s -o graph.svg)\n", g.path, g.path)
	}
	for _, it := range s.Items {
		id := fmt.Sprintf("k%d", g.kernel)
		g.kernel++
		fmt.Fprintf(&g.b, "  %s [shape=box,label=\"%s\\n%s %v\"];\n", id, it.name, it.Out.DType, it.Out.Shape)
		for _, in := range it.Ins {
			src, ok := g.ids[in.Buf]
			if !ok {
				src = fmt.Sprintf("b%d", len(g.ids))
				fmt.Fprintf(&g.b, "  %s [shape=ellipse,label=\"buffer\\n%s %v\"];\n", src, in.DType, in.Shape)
				g.ids[in.Buf] = src
			}
			fmt.Fprintf(&g.b, "  %s -> %s;\n", src, id)
		}
		g.ids[it.Out.Buf] = id
	}
	body := "digraph kernels {\n  rankdir=LR;\n" + g.b.String() + "}\n"
	if err := os.WriteFile(g.path, []byte(body), 0o644); err != nil {
		fmt.Fprintf(Log, "GRAPH: %v\n", err)
	}
}
