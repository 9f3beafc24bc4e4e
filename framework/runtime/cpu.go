package runtime

// The CPU device: kernels are C, compiled by the system compiler into shared objects that are
// cached on disk and loaded with purego (no cgo). Buffers are anonymous mmaps, outside the Go
// heap, so handing their addresses to C breaks no garbage-collector rule. A kernel has the
// signature void k(void **bufs, const int *vals, int start, int end) and loops its outermost
// dim over [start, end), which is how one launch is split across cores.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"
)

func init() { Register("CPU", func() (Device, error) { return NewCPU("") }) }

// CPU is the C backend. Its zero value is not usable; call NewCPU.
type CPU struct {
	dir      string   // on-disk cache of compiled kernels
	cc       string   // compiler path
	flags    []string // compiler flags, part of the cache key
	libs     []string // libraries linked after the source
	mu       sync.Mutex
	progs    map[string]*cpuProgram // loaded in this process, by cache key
	compiles atomic.Int64
	pool     map[int][][]byte // freed mappings by size, reused before mapping new memory
	pooled   int
	mapped   atomic.Int64 // bytes currently mapped, in use or pooled
}

// Mapped is the memory the device holds from the system: buffers in use plus the reuse pool.
func (d *CPU) Mapped() int64 { return d.mapped.Load() }

// maxPooled bounds the bytes of freed buffers kept for reuse. Reusing a mapping skips the
// page faults (and zeroing) that fresh memory costs on its first write, which for a large
// elementwise kernel costs more than the arithmetic.
const maxPooled = 1 << 30

// NewCPU opens a CPU device whose compiled kernels are cached in dir (default
// $GRADFORGE_CACHE/cpu, else os.UserCacheDir()/gradforge/cpu). It fails with the fix spelled out
// when no C compiler is installed.
func NewCPU(dir string) (*CPU, error) {
	if dir == "" {
		dir = CacheDir("cpu")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cpu kernel cache: %w", err)
	}
	var cc string
	for _, c := range []string{os.Getenv("CC"), "cc", "gcc", "clang"} {
		if p, err := exec.LookPath(c); c != "" && err == nil {
			cc = p
			break
		}
	}
	if cc == "" {
		return nil, errors.New("no C compiler found (tried $CC, cc, gcc, clang): the CPU device compiles kernels with one; install it with `apt-get install gcc`")
	}
	d := &CPU{dir: dir, cc: cc, progs: map[string]*cpuProgram{}, pool: map[int][][]byte{}}
	// Floats may be reassociated (so reductions vectorize); NaN and infinity keep their meaning.
	// a*b+c is not fused behind the kernel's back: an expression recomputed in two kernels
	// must round alike (softmax's max and exponent; codegen writes the fmas it wants).
	d.flags = []string{"-O2", "-fPIC", "-shared", "-fno-math-errno", "-fassociative-math",
		"-fno-signed-zeros", "-fno-trapping-math", "-ffp-contract=off"}
	// Optional features, each kept when this compiler and C library accept it (probed once
	// per cache directory; the probe's shared object marks the answer): the host's vector
	// units; the `omp simd` pragmas the C dialect puts on elementwise loops (plain -O2 in
	// GCC 12 vectorizes only loops that need no epilogue, and a global cost-model flag
	// slowed upcast matmuls 7×); glibc's vector math library, so exp2/log2/sin vectorize.
	d.libs = []string{"-lm"}
	for _, o := range []struct{ flags, libs []string }{
		{[]string{"-march=native"}, nil},
		{[]string{"-fopenmp-simd"}, nil},
		{[]string{"-DGF_MVEC"}, []string{"-lmvec"}},
	} {
		h := sha256.Sum256([]byte(cc + "\x00" + strings.Join(o.flags, " ") + "\x00" + strings.Join(o.libs, " ")))
		probe := filepath.Join(dir, "probe-"+hex.EncodeToString(h[:8])+".so")
		_, err := os.Stat(probe)
		if err != nil {
			err = d.buildWith(append(slices.Clone(d.flags), o.flags...), append(slices.Clone(d.libs), o.libs...), mvecProbe, probe)
			if err == nil {
				_, err = purego.Dlopen(probe, purego.RTLD_NOW|purego.RTLD_LOCAL)
			}
			if err != nil {
				os.Remove(probe)
			}
		}
		if err == nil {
			d.flags, d.libs = append(d.flags, o.flags...), append(d.libs, o.libs...)
		}
	}
	return d, nil
}

// Name implements Device.
func (d *CPU) Name() string { return "CPU" }

// Language implements Device.
func (d *CPU) Language() string { return "c" }

// Compiles counts the kernels this device compiled (not found in the disk cache).
func (d *CPU) Compiles() int64 { return d.compiles.Load() }

type cpuBuffer struct {
	mem []byte
	dev *CPU
}

func (b *cpuBuffer) Size() int      { return len(b.mem) }
func (b *cpuBuffer) Device() Device { return b.dev }
func (b *cpuBuffer) Ptr() uintptr {
	if len(b.mem) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b.mem[0]))
}

// Alloc implements Device with an anonymous private mapping (transparent huge pages where
// the buffer is large), or a freed one of the same size.
func (d *CPU) Alloc(n int) (Buffer, error) {
	if n == 0 {
		return &cpuBuffer{dev: d}, nil
	}
	d.mu.Lock()
	if l := d.pool[n]; len(l) > 0 {
		m := l[len(l)-1]
		d.pool[n], d.pooled = l[:len(l)-1], d.pooled-n
		d.mu.Unlock()
		return &cpuBuffer{mem: m, dev: d}, nil
	}
	d.mu.Unlock()
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	d.mapped.Add(int64(n))
	if n >= 4<<20 {
		_ = unix.Madvise(m, unix.MADV_HUGEPAGE) // fewer page faults; a hint only
	}
	return &cpuBuffer{mem: m, dev: d}, nil
}

// Free implements Device: the memory goes to the reuse pool, or back to the system when
// the pool is full.
func (d *CPU) Free(b Buffer) {
	cb, ok := b.(*cpuBuffer)
	if !ok || len(cb.mem) == 0 {
		return
	}
	m := cb.mem
	cb.mem = nil
	d.mu.Lock()
	if d.pooled+len(m) <= maxPooled {
		d.pool[len(m)] = append(d.pool[len(m)], m)
		d.pooled += len(m)
		m = nil
	}
	d.mu.Unlock()
	if m != nil {
		_ = unix.Munmap(m)
		d.mapped.Add(-int64(len(m)))
	}
}

// CopyIn implements Device.
func (d *CPU) CopyIn(dst Buffer, src []byte) error {
	b := dst.(*cpuBuffer)
	if len(src) > len(b.mem) {
		return fmt.Errorf("copy %d bytes into a %d-byte buffer", len(src), len(b.mem))
	}
	copy(b.mem, src)
	return nil
}

// CopyOut implements Device.
func (d *CPU) CopyOut(dst []byte, src Buffer) error {
	b := src.(*cpuBuffer)
	if len(dst) > len(b.mem) {
		return fmt.Errorf("copy %d bytes out of a %d-byte buffer", len(dst), len(b.mem))
	}
	copy(dst, b.mem)
	return nil
}

// Synchronize implements Device; CPU launches are synchronous.
func (d *CPU) Synchronize() error { return nil }

// Compile implements Device: the shared object lives in the cache under a hash of the
// compiler, its flags and the source, so an unchanged kernel is never compiled twice.
func (d *CPU) Compile(fn, src string) (Program, error) {
	h := sha256.Sum256([]byte(d.cc + "\x00" + strings.Join(d.flags, " ") + "\x00" + src))
	key := hex.EncodeToString(h[:16])
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.progs[key]; ok {
		return p, nil
	}
	so := filepath.Join(d.dir, key+".so")
	if _, err := os.Stat(so); err != nil {
		if err := d.build(src, so); err != nil {
			return nil, fmt.Errorf("compile kernel %s: %w", fn, err)
		}
		d.compiles.Add(1)
	}
	lib, err := purego.Dlopen(so, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("load kernel %s from %s: %w", fn, so, err)
	}
	sym, err := purego.Dlsym(lib, fn)
	if err != nil {
		return nil, fmt.Errorf("find kernel %s in %s: %w", fn, so, err)
	}
	p := &cpuProgram{fn: sym}
	d.progs[key] = p
	return p, nil
}

// build compiles src into the shared object out, atomically (write to a temp name, rename),
// so concurrent processes sharing the cache never load a half-written file.
func (d *CPU) build(src, out string) error { return d.buildWith(d.flags, d.libs, src, out) }

// mvecProbe compiles with every feature probed and, with GF_MVEC, calls a vector variant
// of exp2f from glibc's libmvec, which must then load.
const mvecProbe = `#include <math.h>
#ifdef GF_MVEC
#pragma omp declare simd notinbranch
float exp2f(float);
#endif
void gf_probe(float *o, const float *a, int n) {
  #pragma omp simd
  for (int i = 0; i < n; i++) o[i] = exp2f(a[i]);
}
`

func (d *CPU) buildWith(flags, libs []string, src, out string) error {
	tmp, err := os.CreateTemp(d.dir, "k-*.c")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(src); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	so := strings.TrimSuffix(tmp.Name(), ".c") + ".so"
	defer os.Remove(so)
	var stderr bytes.Buffer
	args := append(append(slices.Clone(flags), "-o", so, tmp.Name()), libs...)
	cmd := exec.Command(d.cc, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", d.cc, strings.Join(flags, " "), err, stderr.String())
	}
	return os.Rename(so, out)
}

type cpuProgram struct{ fn uintptr }

// minSplit is the work (elements times reduce length) below which a launch stays on one core:
// under it, waking goroutines costs more than the loop.
const minSplit = 1 << 15

// Launch implements Program. global[0] is the outermost loop's length and
// global[0]*global[1]*global[2] the work of the launch; big launches split the outermost loop
// into one contiguous chunk per core. CPU launches always wait.
func (p *cpuProgram) Launch(bufs []Buffer, vals []int32, global, local [3]int, wait bool) (time.Duration, error) {
	args := make([]uintptr, len(bufs)+1) // Go heap memory does not move; C only reads it
	for i, b := range bufs {
		args[i] = b.Ptr()
	}
	if len(vals) == 0 {
		vals = []int32{0}
	}
	argp, valp := uintptr(unsafe.Pointer(&args[0])), uintptr(unsafe.Pointer(&vals[0]))
	n := global[0]
	parts := min(goruntime.GOMAXPROCS(0), n)
	if n*global[1]*global[2] < minSplit {
		parts = 1
	}
	start := time.Now()
	if parts <= 1 {
		purego.SyscallN(p.fn, argp, valp, 0, uintptr(n))
	} else {
		var wg sync.WaitGroup
		for i := range parts {
			lo, hi := n*i/parts, n*(i+1)/parts
			wg.Go(func() { purego.SyscallN(p.fn, argp, valp, uintptr(lo), uintptr(hi)) })
		}
		wg.Wait()
	}
	el := time.Since(start)
	goruntime.KeepAlive(args)
	goruntime.KeepAlive(vals)
	return el, nil
}
