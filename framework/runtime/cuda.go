package runtime

// The CUDA device: NVIDIA GPUs through the driver API (libcuda.so.1) and run-time compilation
// (NVRTC), both loaded with purego so the binary needs no cgo and runs where no CUDA is
// installed (Get("CUDA") then returns an error naming what was searched).
//
// All work goes to one stream per device, so copies, launches and the reuse of freed memory
// are ordered without extra synchronisation. Global sizes are the grid (blocks per
// dimension) and local sizes the block (threads per dimension), as the renderer emits them.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

func init() { Register("CUDA", OpenCUDA) }

// Driver attribute and flag numbers from cuda.h.
const (
	cuAttrMultiprocessors   = 16
	cuAttrComputeMajor      = 75
	cuAttrComputeMinor      = 76
	cuAttrMaxSharedOptin    = 97
	cuFuncMaxDynamicShared  = 8
	cuEventDefault          = 0
	cuStreamNonBlocking     = 1
	cuErrorOutOfMemory      = 2
	cuStreamCaptureRelaxed  = 2
	cuGraphInstantiateFlags = 0
)

// cudaAPI holds the driver and NVRTC entry points. Return codes are CUresult / nvrtcResult.
type cudaAPI struct {
	init                func(flags uint32) int32
	driverGetVersion    func(v *int32) int32
	deviceGet           func(dev *int32, ordinal int32) int32
	deviceGetAttribute  func(v *int32, attr int32, dev int32) int32
	deviceGetName       func(name []byte, n int32, dev int32) int32
	deviceTotalMem      func(bytes *uintptr, dev int32) int32
	primaryCtxRetain    func(ctx *uintptr, dev int32) int32
	ctxSetCurrent       func(ctx uintptr) int32
	streamCreate        func(s *uintptr, flags uint32) int32
	streamSynchronize   func(s uintptr) int32
	memAlloc            func(p *uintptr, n uintptr) int32
	memFree             func(p uintptr) int32
	memGetInfo          func(free, total *uintptr) int32
	memcpyHtoDAsync     func(dst uintptr, src unsafe.Pointer, n uintptr, s uintptr) int32
	memcpyDtoHAsync     func(dst unsafe.Pointer, src uintptr, n uintptr, s uintptr) int32
	memcpyDtoDAsync     func(dst, src uintptr, n uintptr, s uintptr) int32
	moduleLoadData      func(mod *uintptr, image []byte) int32
	moduleGetFunction   func(f *uintptr, mod uintptr, name string) int32
	funcSetAttribute    func(f uintptr, attr int32, v int32) int32
	launchKernel        func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, s uintptr, params []uintptr, extra unsafe.Pointer) int32
	eventCreate         func(e *uintptr, flags uint32) int32
	eventRecord         func(e, s uintptr) int32
	eventDestroy        func(e uintptr) int32
	eventSynchronize    func(e uintptr) int32
	eventElapsedTime    func(ms *float32, start, end uintptr) int32
	getErrorName        func(r int32, s **byte) int32
	getErrorString      func(r int32, s **byte) int32
	streamBeginCapture  func(s uintptr, mode int32) int32
	streamEndCapture    func(s uintptr, g *uintptr) int32
	graphInstantiate    func(exec *uintptr, g uintptr, flags uint64) int32
	graphLaunch         func(exec, s uintptr) int32
	graphDestroy        func(g uintptr) int32
	graphExecDestroy    func(exec uintptr) int32
	nvrtcVersion        func(major, minor *int32) int32
	nvrtcGetErrorString func(r int32) string
	nvrtcCreateProgram  func(p *uintptr, src, name string, nh int32, headers, names unsafe.Pointer) int32
	nvrtcCompileProgram func(p uintptr, nopt int32, opts []uintptr) int32
	nvrtcGetLogSize     func(p uintptr, n *uintptr) int32
	nvrtcGetLog         func(p uintptr, log []byte) int32
	nvrtcGetCUBINSize   func(p uintptr, n *uintptr) int32
	nvrtcGetCUBIN       func(p uintptr, out []byte) int32
	nvrtcDestroyProgram func(p *uintptr) int32
}

// CUDA is one NVIDIA GPU. It implements Device; Copy, Info and Capture go beyond it.
type CUDA struct {
	api     *cudaAPI
	ctx     uintptr
	stream  uintptr
	ordinal int32
	arch    string // "sm_90"
	name    string
	sms     int
	shmem   int      // opt-in shared memory per block, bytes
	include string   // CUDA include folder for cuda_fp16.h / cuda_bf16.h, "" if none found
	nvrtc   string   // path of the loaded NVRTC
	flags   []string // NVRTC options besides the architecture

	mu       sync.Mutex
	pool     map[int][]uintptr // freed device memory by rounded size
	pooled   int               // bytes held in pool
	live     int               // bytes handed out
	programs map[string]*cudaProgram
	start    uintptr // events for timed launches
	end      uintptr
	last     string        // kernel most recently launched, for errors found at sync
	capture  *Graph        // the graph being recorded, which holds every buffer launched with
	kernels  time.Duration // device time of all timed (wait=true) launches
}

// OpenCUDA loads the driver and NVRTC and opens GPU 0 ($CUDA_DEVICE picks another).
func OpenCUDA() (Device, error) {
	api := &cudaAPI{}
	drv, err := dlopenFirst(cudaDriverCandidates())
	if err != nil {
		return nil, fmt.Errorf("CUDA driver: %w", err)
	}
	nv, nvPath, err := openNVRTC()
	if err != nil {
		return nil, err
	}
	if err := api.bind(drv, nv); err != nil {
		return nil, err
	}
	d := &CUDA{api: api, nvrtc: nvPath, pool: map[int][]uintptr{}, programs: map[string]*cudaProgram{}}
	if s := os.Getenv("CUDA_DEVICE"); s != "" {
		fmt.Sscanf(s, "%d", &d.ordinal)
	}
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	var dev int32
	var major, minor, sms, shm int32
	name := make([]byte, 256)
	steps := []struct {
		what string
		call func() int32
	}{
		{"cuInit", func() int32 { return api.init(0) }},
		{"cuDeviceGet", func() int32 { return api.deviceGet(&dev, d.ordinal) }},
		{"cuDeviceGetAttribute(major)", func() int32 { return api.deviceGetAttribute(&major, cuAttrComputeMajor, dev) }},
		{"cuDeviceGetAttribute(minor)", func() int32 { return api.deviceGetAttribute(&minor, cuAttrComputeMinor, dev) }},
		{"cuDeviceGetAttribute(SMs)", func() int32 { return api.deviceGetAttribute(&sms, cuAttrMultiprocessors, dev) }},
		{"cuDeviceGetAttribute(shared)", func() int32 { return api.deviceGetAttribute(&shm, cuAttrMaxSharedOptin, dev) }},
		{"cuDeviceGetName", func() int32 { return api.deviceGetName(name, int32(len(name)), dev) }},
		{"cuDevicePrimaryCtxRetain", func() int32 { return api.primaryCtxRetain(&d.ctx, dev) }},
		{"cuCtxSetCurrent", func() int32 { return api.ctxSetCurrent(d.ctx) }},
		{"cuStreamCreate", func() int32 { return api.streamCreate(&d.stream, cuStreamNonBlocking) }},
		{"cuEventCreate", func() int32 { return api.eventCreate(&d.start, cuEventDefault) }},
		{"cuEventCreate", func() int32 { return api.eventCreate(&d.end, cuEventDefault) }},
	}
	for _, s := range steps {
		if err := d.check(s.what, s.call()); err != nil {
			return nil, err
		}
	}
	d.arch = fmt.Sprintf("sm_%d%d", major, minor)
	d.name = cstring(name)
	d.sms, d.shmem = int(sms), int(shm)
	d.include = cudaIncludeDir(nvPath)
	// --fmad=false: no implicit a*b+c fusion, so an expression rounds alike in every kernel
	// that recomputes it (codegen writes the fmaf calls it wants).
	d.flags = []string{"-std=c++17", "--extra-device-vectorization", "--fmad=false"}
	if d.include != "" {
		d.flags = append(d.flags, "-I"+d.include)
	}
	d.flags = append(d.flags, strings.Fields(os.Getenv("CUDA_NVRTC_FLAGS"))...)
	return d, nil
}

// bind resolves every entry point, so a missing symbol is one clear error at open time.
func (a *cudaAPI) bind(drv, nv uintptr) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("CUDA: resolve symbol: %v", r)
		}
	}()
	for _, f := range []struct {
		lib  uintptr
		fn   any
		name string
	}{
		{drv, &a.init, "cuInit"}, {drv, &a.driverGetVersion, "cuDriverGetVersion"},
		{drv, &a.deviceGet, "cuDeviceGet"}, {drv, &a.deviceGetAttribute, "cuDeviceGetAttribute"},
		{drv, &a.deviceGetName, "cuDeviceGetName"}, {drv, &a.deviceTotalMem, "cuDeviceTotalMem_v2"},
		{drv, &a.primaryCtxRetain, "cuDevicePrimaryCtxRetain"}, {drv, &a.ctxSetCurrent, "cuCtxSetCurrent"},
		{drv, &a.streamCreate, "cuStreamCreate"}, {drv, &a.streamSynchronize, "cuStreamSynchronize"},
		{drv, &a.memAlloc, "cuMemAlloc_v2"}, {drv, &a.memFree, "cuMemFree_v2"},
		{drv, &a.memGetInfo, "cuMemGetInfo_v2"},
		{drv, &a.memcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"}, {drv, &a.memcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
		{drv, &a.memcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"},
		{drv, &a.moduleLoadData, "cuModuleLoadData"}, {drv, &a.moduleGetFunction, "cuModuleGetFunction"},
		{drv, &a.funcSetAttribute, "cuFuncSetAttribute"}, {drv, &a.launchKernel, "cuLaunchKernel"},
		{drv, &a.eventCreate, "cuEventCreate"}, {drv, &a.eventRecord, "cuEventRecord"}, {drv, &a.eventDestroy, "cuEventDestroy_v2"},
		{drv, &a.eventSynchronize, "cuEventSynchronize"}, {drv, &a.eventElapsedTime, "cuEventElapsedTime"},
		{drv, &a.getErrorName, "cuGetErrorName"}, {drv, &a.getErrorString, "cuGetErrorString"},
		{drv, &a.streamBeginCapture, "cuStreamBeginCapture_v2"}, {drv, &a.streamEndCapture, "cuStreamEndCapture"},
		{drv, &a.graphInstantiate, "cuGraphInstantiateWithFlags"}, {drv, &a.graphLaunch, "cuGraphLaunch"},
		{drv, &a.graphDestroy, "cuGraphDestroy"}, {drv, &a.graphExecDestroy, "cuGraphExecDestroy"},
		{nv, &a.nvrtcVersion, "nvrtcVersion"}, {nv, &a.nvrtcGetErrorString, "nvrtcGetErrorString"},
		{nv, &a.nvrtcCreateProgram, "nvrtcCreateProgram"}, {nv, &a.nvrtcCompileProgram, "nvrtcCompileProgram"},
		{nv, &a.nvrtcGetLogSize, "nvrtcGetProgramLogSize"}, {nv, &a.nvrtcGetLog, "nvrtcGetProgramLog"},
		{nv, &a.nvrtcGetCUBINSize, "nvrtcGetCUBINSize"}, {nv, &a.nvrtcGetCUBIN, "nvrtcGetCUBIN"},
		{nv, &a.nvrtcDestroyProgram, "nvrtcDestroyProgram"},
	} {
		purego.RegisterLibFunc(f.fn, f.lib, f.name)
	}
	return nil
}

// cudaDriverCandidates lists where libcuda.so.1 is looked for: the loader's own search first.
func cudaDriverCandidates() []string {
	out := []string{"libcuda.so.1", "libcuda.so"}
	for _, dir := range []string{"/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu",
		"/usr/lib64", "/usr/lib/wsl/lib", "/usr/local/cuda/compat", "/usr/lib/aarch64-linux-gnu"} {
		out = append(out, filepath.Join(dir, "libcuda.so.1"))
	}
	return out
}

// nvrtcCandidates lists NVRTC libraries in the usual places: $CUDA_PATH / $CUDA_HOME, the
// toolkit's versioned folders, $LD_LIBRARY_PATH, the distribution's lib folders and the
// nvidia-cuda-nvrtc Python wheel. Newest version first within a folder.
func nvrtcCandidates() (libs, searched []string) {
	var dirs []string
	for _, env := range []string{"CUDA_PATH", "CUDA_HOME", "CUDA_ROOT"} {
		if p := os.Getenv(env); p != "" {
			dirs = append(dirs, filepath.Join(p, "lib64"), filepath.Join(p, "lib"), filepath.Join(p, "targets/x86_64-linux/lib"))
		}
	}
	roots, _ := filepath.Glob("/usr/local/cuda-*")
	sort.Sort(sort.Reverse(sort.StringSlice(roots)))
	for _, r := range append([]string{"/usr/local/cuda"}, roots...) {
		dirs = append(dirs, filepath.Join(r, "targets/x86_64-linux/lib"), filepath.Join(r, "lib64"))
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("LD_LIBRARY_PATH"))...)
	dirs = append(dirs, "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/opt/cuda/lib64")
	wheels, _ := filepath.Glob("/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib")
	more, _ := filepath.Glob("/usr/local/lib/python3*/dist-packages/nvidia/*/lib")
	dirs = append(dirs, append(wheels, more...)...)
	seen := map[string]bool{}
	for _, d := range dirs {
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		searched = append(searched, d)
		found, _ := filepath.Glob(filepath.Join(d, "libnvrtc.so*"))
		sort.Sort(sort.Reverse(sort.StringSlice(found)))
		for _, f := range found {
			if !strings.Contains(filepath.Base(f), "builtins") {
				libs = append(libs, f)
			}
		}
	}
	return append(libs, "libnvrtc.so"), searched
}

func openNVRTC() (uintptr, string, error) {
	libs, searched := nvrtcCandidates()
	var errs []string
	for _, l := range libs {
		h, err := purego.Dlopen(l, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, l, nil
		}
		if l != "libnvrtc.so" { // a library found but unloadable says why; "not found" says nothing
			errs = append(errs, err.Error())
		}
	}
	return 0, "", fmt.Errorf("NVRTC (libnvrtc.so*) not found; searched %s and the loader path (set CUDA_PATH to the toolkit)%s",
		strings.Join(searched, ", "), strings.Join(append([]string{""}, errs...), "; "))
}

func dlopenFirst(names []string) (uintptr, error) {
	var first error
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, nil
		}
		if first == nil {
			first = err
		}
	}
	return 0, fmt.Errorf("libcuda.so.1 not found (is the NVIDIA driver installed?); tried %s: %w", strings.Join(names, ", "), first)
}

// cudaIncludeDir finds the folder that holds cuda_fp16.h, starting beside the loaded NVRTC.
func cudaIncludeDir(nvrtc string) string {
	dir := filepath.Dir(nvrtc)
	cands := []string{filepath.Join(dir, "../include"), filepath.Join(dir, "../../include")}
	for _, env := range []string{"CUDA_PATH", "CUDA_HOME"} {
		if p := os.Getenv(env); p != "" {
			cands = append(cands, filepath.Join(p, "include"), filepath.Join(p, "targets/x86_64-linux/include"))
		}
	}
	cands = append(cands, "/usr/local/cuda/include", "/usr/local/cuda/targets/x86_64-linux/include", "/usr/include")
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "cuda_fp16.h")); err == nil {
			return filepath.Clean(c)
		}
	}
	return ""
}

func cstring(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func ptrString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// CUDAError is a failed driver call: the call, the kernel it concerned (if any) and the
// driver's name for the result code.
type CUDAError struct {
	Call, Kernel, Name, Message string
	Code                        int32
}

func (e *CUDAError) Error() string {
	k := ""
	if e.Kernel != "" {
		k = " (kernel " + e.Kernel + ")"
	}
	return fmt.Sprintf("%s%s: %s (%d): %s", e.Call, k, e.Name, e.Code, e.Message)
}

func (d *CUDA) check(call string, r int32) error { return d.checkKernel(call, "", r) }

func (d *CUDA) checkKernel(call, kernel string, r int32) error {
	if r == 0 {
		return nil
	}
	var name, msg *byte
	d.api.getErrorName(r, &name)
	d.api.getErrorString(r, &msg)
	return &CUDAError{Call: call, Kernel: kernel, Name: ptrString(name), Message: ptrString(msg), Code: r}
}

// do runs f on a locked OS thread with the device's context current: CUDA contexts belong to
// threads, and goroutines move between them.
func (d *CUDA) do(f func() error) error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := d.check("cuCtxSetCurrent", d.api.ctxSetCurrent(d.ctx)); err != nil {
		return err
	}
	return f()
}

// Name implements Device.
func (d *CUDA) Name() string { return "CUDA" }

// Language implements Device.
func (d *CUDA) Language() string { return "cuda" }

// Info describes the GPU: "NVIDIA H200 (sm_90, 132 SMs, 140 GiB, driver 13.0)".
func (d *CUDA) Info() string {
	var v int32
	var total uintptr
	d.do(func() error {
		d.api.driverGetVersion(&v)
		var dev int32
		d.api.deviceGet(&dev, d.ordinal)
		d.api.deviceTotalMem(&total, dev)
		return nil
	})
	return fmt.Sprintf("%s (%s, %d SMs, %d GiB, driver %d.%d)", d.name, d.arch, d.sms, total>>30, v/1000, v%1000/10)
}

// MemoryInfo reports the card's free and total memory in bytes (the pool's blocks count as
// used): what a caller can check before collecting garbage to free device memory.
func (d *CUDA) MemoryInfo() (free, total int, err error) {
	var f, t uintptr
	err = d.do(func() error { return d.check("cuMemGetInfo", d.api.memGetInfo(&f, &t)) })
	return int(f), int(t), err
}

// Arch is the compute capability kernels are compiled for, e.g. "sm_90".
func (d *CUDA) Arch() string { return d.arch }

// SMs is the number of multiprocessors, for sizing grids.
func (d *CUDA) SMs() int { return d.sms }

// SharedMemory is the most shared memory one block may opt into, in bytes.
func (d *CUDA) SharedMemory() int { return d.shmem }

// cudaBuffer is device memory. A buffer nobody frees explicitly goes back to the pool when the
// garbage collector finds it unreachable.
type cudaBuffer struct {
	dev     *CUDA
	ptr     uintptr
	size    int
	cleanup goruntime.Cleanup
	freed   bool
	held    int // graphs that launch with this buffer; its memory is kept until they close
}

func (b *cudaBuffer) Size() int      { return b.size }
func (b *cudaBuffer) Ptr() uintptr   { return b.ptr }
func (b *cudaBuffer) Device() Device { return b.dev }

// poolSize rounds a request so that similar sizes share pool entries: 512 bytes below 1 MiB,
// 1/64 of the next power of two above (at most 1.6% slack).
func poolSize(n int) int {
	if n <= 0 {
		return 512
	}
	if n < 1<<20 {
		return (n + 511) &^ 511
	}
	step := 1
	for step < n {
		step <<= 1
	}
	step >>= 6
	return (n + step - 1) / step * step
}

// Alloc implements Device: a freed block of the same rounded size is reused; when the card is
// full the pool is released and the allocation tried once more.
func (d *CUDA) Alloc(nbytes int) (Buffer, error) {
	if nbytes < 0 {
		return nil, fmt.Errorf("CUDA alloc: negative size %d", nbytes)
	}
	size := poolSize(nbytes)
	d.mu.Lock()
	var ptr uintptr
	if l := d.pool[size]; len(l) > 0 {
		ptr, d.pool[size] = l[len(l)-1], l[:len(l)-1]
		d.pooled -= size
	}
	d.live += size
	d.mu.Unlock()
	if ptr == 0 {
		err := d.do(func() error {
			r := d.api.memAlloc(&ptr, uintptr(size))
			if r == cuErrorOutOfMemory {
				d.trim()
				r = d.api.memAlloc(&ptr, uintptr(size))
			}
			return d.check(fmt.Sprintf("cuMemAlloc(%d bytes)", size), r)
		})
		if err != nil {
			d.mu.Lock()
			d.live -= size
			d.mu.Unlock()
			return nil, err
		}
	}
	b := &cudaBuffer{dev: d, ptr: ptr, size: nbytes}
	b.cleanup = goruntime.AddCleanup(b, func(ptr uintptr) { d.release(ptr, size) }, ptr)
	return b, nil
}

func (d *CUDA) release(ptr uintptr, size int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pool[size] = append(d.pool[size], ptr)
	d.pooled += size
	d.live -= size
}

// Free implements Device: the memory returns to the pool (it stays allocated on the card for
// the next Alloc of its size). Freeing twice is a no-op.
func (d *CUDA) Free(buf Buffer) {
	b, ok := buf.(*cudaBuffer)
	d.mu.Lock()
	if !ok || b.freed {
		d.mu.Unlock()
		return
	}
	b.freed = true
	held := b.held > 0
	d.mu.Unlock()
	b.cleanup.Stop()
	if !held { // else the last graph holding it releases it on Close
		d.release(b.ptr, poolSize(b.size))
	}
}

// trim gives the pooled memory back to the driver. It synchronises first: pooled blocks may
// still be read by queued work.
func (d *CUDA) trim() {
	d.api.streamSynchronize(d.stream)
	d.mu.Lock()
	defer d.mu.Unlock()
	for size, l := range d.pool {
		for _, p := range l {
			d.api.memFree(p)
		}
		delete(d.pool, size)
	}
	d.pooled = 0
}

// Trim releases all pooled (freed but cached) device memory.
func (d *CUDA) Trim() error {
	return d.do(func() error { d.trim(); return nil })
}

// MemoryUse reports bytes handed out and bytes held in the pool.
func (d *CUDA) MemoryUse() (live, pooled int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live, d.pooled
}

func (d *CUDA) buffer(b Buffer, what string) (*cudaBuffer, error) {
	cb, ok := b.(*cudaBuffer)
	if !ok {
		return nil, fmt.Errorf("CUDA %s: buffer of type %T is not CUDA memory", what, b)
	}
	if cb.freed {
		return nil, fmt.Errorf("CUDA %s: buffer was freed", what)
	}
	return cb, nil
}

// CopyIn implements Device; it returns when the data is on the card.
func (d *CUDA) CopyIn(dst Buffer, src []byte) error {
	b, err := d.buffer(dst, "copy in")
	if err != nil {
		return err
	}
	if len(src) > b.size {
		return fmt.Errorf("CUDA copy in: %d bytes into a %d-byte buffer", len(src), b.size)
	}
	if len(src) == 0 {
		return nil
	}
	return d.do(func() error {
		if err := d.check("cuMemcpyHtoDAsync", d.api.memcpyHtoDAsync(b.ptr, unsafe.Pointer(&src[0]), uintptr(len(src)), d.stream)); err != nil {
			return err
		}
		return d.sync()
	})
}

// CopyOut implements Device; it waits for queued work on the buffer first.
func (d *CUDA) CopyOut(dst []byte, src Buffer) error {
	b, err := d.buffer(src, "copy out")
	if err != nil {
		return err
	}
	if len(dst) > b.size {
		return fmt.Errorf("CUDA copy out: %d bytes from a %d-byte buffer", len(dst), b.size)
	}
	if len(dst) == 0 {
		return nil
	}
	return d.do(func() error {
		if err := d.check("cuMemcpyDtoHAsync", d.api.memcpyDtoHAsync(unsafe.Pointer(&dst[0]), b.ptr, uintptr(len(dst)), d.stream)); err != nil {
			return err
		}
		return d.sync()
	})
}

// Copy queues a device-to-device copy of src into dst (the smaller size); it does not wait.
func (d *CUDA) Copy(dst, src Buffer) error {
	db, err := d.buffer(dst, "copy")
	if err != nil {
		return err
	}
	sb, err := d.buffer(src, "copy")
	if err != nil {
		return err
	}
	n := min(db.size, sb.size)
	if n == 0 {
		return nil
	}
	d.mu.Lock()
	if g := d.capture; g != nil {
		g.hold(db)
		g.hold(sb)
	}
	d.mu.Unlock()
	return d.do(func() error {
		return d.check("cuMemcpyDtoDAsync", d.api.memcpyDtoDAsync(db.ptr, sb.ptr, uintptr(n), d.stream))
	})
}

// Synchronize implements Device: it waits for all queued work and reports a kernel's failure
// with the name of the last kernel launched.
func (d *CUDA) Synchronize() error { return d.do(d.sync) }

func (d *CUDA) sync() error {
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	return d.checkKernel("cuStreamSynchronize", last, d.api.streamSynchronize(d.stream))
}

// Time runs f, which queues work on the device (kernels launched without waiting, copies),
// and returns the device time from just before its first operation to just after its last,
// host-side gaps between them included: the time a user of the framework waits.
func (d *CUDA) Time(f func() error) (time.Duration, error) {
	var start, end uintptr
	err := d.do(func() error {
		if err := d.check("cuEventCreate", d.api.eventCreate(&start, cuEventDefault)); err != nil {
			return err
		}
		if err := d.check("cuEventCreate", d.api.eventCreate(&end, cuEventDefault)); err != nil {
			return err
		}
		return d.check("cuEventRecord", d.api.eventRecord(start, d.stream))
	})
	defer d.do(func() error { d.api.eventDestroy(start); d.api.eventDestroy(end); return nil })
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	var ms float32
	err = d.do(func() error {
		if err := d.check("cuEventRecord", d.api.eventRecord(end, d.stream)); err != nil {
			return err
		}
		if err := d.sync(); err != nil {
			return err
		}
		return d.check("cuEventElapsedTime", d.api.eventElapsedTime(&ms, start, end))
	})
	return time.Duration(float64(ms) * float64(time.Millisecond)), err
}

// cudaProgram is one loaded kernel.
type cudaProgram struct {
	dev    *CUDA
	name   string
	fn     uintptr
	module uintptr
	shared int // dynamic shared memory bytes passed at launch
}

// CompileOptions are the NVRTC options used besides the target architecture
// ($CUDA_NVRTC_FLAGS adds to them).
func (d *CUDA) CompileOptions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.flags...)
}

// SetCompileOptions replaces the NVRTC options for later compiles (for example to add
// "--use_fast_math"); programs compiled before keep theirs.
func (d *CUDA) SetCompileOptions(opts []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flags = append([]string(nil), opts...)
}

// Compile implements Device. The CUBIN is cached on disk (keyed by a hash of the source,
// architecture, options and NVRTC version) and the loaded module in memory.
func (d *CUDA) Compile(fn, src string) (Program, error) { return d.CompileShared(fn, src, 0) }

// CompileShared is Compile for kernels that take dynamic shared memory (extern __shared__);
// above 48 KiB the function's limit is raised to allow it.
func (d *CUDA) CompileShared(fn, src string, shared int) (Program, error) {
	var maj, mnr int32
	d.api.nvrtcVersion(&maj, &mnr)
	opts := append([]string{"--gpu-architecture=" + d.arch}, d.CompileOptions()...)
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d.%d\x00%s", src, strings.Join(opts, " "), maj, mnr, fn)))
	key := hex.EncodeToString(h[:])
	d.mu.Lock()
	p, ok := d.programs[key]
	d.mu.Unlock()
	if ok && p.shared == shared {
		return p, nil
	}
	cubin, err := d.cubin(fn, src, key, opts)
	if err != nil {
		return nil, err
	}
	p = &cudaProgram{dev: d, name: fn, shared: shared}
	err = d.do(func() error {
		if err := d.checkKernel("cuModuleLoadData", fn, d.api.moduleLoadData(&p.module, cubin)); err != nil {
			return err
		}
		if err := d.checkKernel("cuModuleGetFunction", fn, d.api.moduleGetFunction(&p.fn, p.module, fn)); err != nil {
			return err
		}
		if shared > 48<<10 {
			return d.checkKernel("cuFuncSetAttribute", fn, d.api.funcSetAttribute(p.fn, cuFuncMaxDynamicShared, int32(shared)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.programs[key] = p
	d.mu.Unlock()
	return p, nil
}

// cubin returns the compiled code for src from the disk cache, or compiles it with NVRTC and
// stores it there. A cache that cannot be written only costs a recompile next time.
func (d *CUDA) cubin(fn, src, key string, opts []string) ([]byte, error) {
	path := filepath.Join(CacheDir("cuda"), key+".cubin")
	if os.Getenv("DISABLE_COMPILER_CACHE") == "" {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	b, err := d.nvrtcCompile(fn, src, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
		if os.WriteFile(tmp, b, 0o644) == nil {
			os.Rename(tmp, path)
		}
	}
	return b, nil
}

// nvrtcCompile compiles src for the device; a failure carries NVRTC's log.
func (d *CUDA) nvrtcCompile(fn, src string, opts []string) ([]byte, error) {
	a := d.api
	var prog uintptr
	if r := a.nvrtcCreateProgram(&prog, src, fn+".cu", 0, nil, nil); r != 0 {
		return nil, fmt.Errorf("nvrtcCreateProgram %s: %s", fn, a.nvrtcGetErrorString(r))
	}
	defer a.nvrtcDestroyProgram(&prog)
	// Options go to NVRTC as char**: NUL-terminated copies pinned while it reads them.
	var pin goruntime.Pinner
	defer pin.Unpin()
	ptrs := make([]uintptr, len(opts))
	for i, o := range opts {
		b := append([]byte(o), 0)
		pin.Pin(&b[0])
		ptrs[i] = uintptr(unsafe.Pointer(&b[0]))
	}
	r := a.nvrtcCompileProgram(prog, int32(len(ptrs)), ptrs)
	var n uintptr
	a.nvrtcGetLogSize(prog, &n)
	log := ""
	if n > 1 {
		buf := make([]byte, n)
		a.nvrtcGetLog(prog, buf)
		log = strings.TrimSpace(cstring(buf))
	}
	if r != 0 {
		return nil, fmt.Errorf("NVRTC compile %s (%s): %s\n%s", fn, strings.Join(opts, " "), a.nvrtcGetErrorString(r), log)
	}
	if r := a.nvrtcGetCUBINSize(prog, &n); r != 0 || n == 0 {
		return nil, fmt.Errorf("nvrtcGetCUBINSize %s: %s", fn, a.nvrtcGetErrorString(r))
	}
	out := make([]byte, n)
	if r := a.nvrtcGetCUBIN(prog, out); r != 0 {
		return nil, fmt.Errorf("nvrtcGetCUBIN %s: %s", fn, a.nvrtcGetErrorString(r))
	}
	return out, nil
}

// Launch implements Program: global is the grid and local the block, in blocks and threads.
func (p *cudaProgram) Launch(bufs []Buffer, vals []int32, global, local [3]int, wait bool) (time.Duration, error) {
	d := p.dev
	// Kernel parameters: one 8-byte slot per argument, and an array of the slots' addresses,
	// both pinned while the driver copies them during cuLaunchKernel.
	slots := make([]uint64, len(bufs)+len(vals))
	for i, b := range bufs {
		cb, err := d.buffer(b, "launch "+p.name)
		if err != nil {
			return 0, err
		}
		slots[i] = uint64(cb.ptr)
	}
	for i, v := range vals {
		slots[len(bufs)+i] = uint64(uint32(v))
	}
	var pin goruntime.Pinner
	defer pin.Unpin()
	params := make([]uintptr, len(slots))
	if len(slots) > 0 {
		pin.Pin(&slots[0])
		for i := range slots {
			params[i] = uintptr(unsafe.Pointer(&slots[i]))
		}
	}
	for i := range 3 {
		global[i], local[i] = max(global[i], 1), max(local[i], 1)
	}
	if global[0] > 1<<31-1 || global[1] > 65535 || global[2] > 65535 || local[0]*local[1]*local[2] > 1024 {
		return 0, fmt.Errorf("CUDA launch %s: grid %v or block %v out of range (grid ≤ 2³¹-1×65535×65535, block ≤ 1024 threads)", p.name, global, local)
	}
	var elapsed time.Duration
	err := d.do(func() error {
		if wait {
			d.mu.Lock() // the two timing events are shared
			defer d.mu.Unlock()
			if err := d.check("cuEventRecord", d.api.eventRecord(d.start, d.stream)); err != nil {
				return err
			}
		} else {
			d.mu.Lock()
			d.last = p.name
			if g := d.capture; g != nil {
				for _, b := range bufs {
					g.hold(b.(*cudaBuffer))
				}
			}
			d.mu.Unlock()
		}
		r := d.api.launchKernel(p.fn, uint32(global[0]), uint32(global[1]), uint32(global[2]),
			uint32(local[0]), uint32(local[1]), uint32(local[2]), uint32(p.shared), d.stream, params, nil)
		if err := d.checkKernel("cuLaunchKernel", p.name, r); err != nil {
			return err
		}
		if !wait {
			return nil
		}
		d.last = p.name
		if err := d.check("cuEventRecord", d.api.eventRecord(d.end, d.stream)); err != nil {
			return err
		}
		if err := d.checkKernel("cuEventSynchronize", p.name, d.api.eventSynchronize(d.end)); err != nil {
			return err
		}
		var ms float32
		if err := d.check("cuEventElapsedTime", d.api.eventElapsedTime(&ms, d.start, d.end)); err != nil {
			return err
		}
		elapsed = time.Duration(float64(ms) * float64(time.Millisecond))
		d.kernels += elapsed
		return nil
	})
	return elapsed, err
}

// KernelTime is the summed device time of every launch made with wait=true (DEBUG=2 makes the
// scheduler wait), so a caller can split a realize's time into kernels and the rest.
func (d *CUDA) KernelTime() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kernels
}

// Graph is a recorded sequence of launches and copies on the device's stream that replays
// with one driver call (a CUDA graph). The buffers it used must stay alive while it exists.
type Graph struct {
	dev        *CUDA
	graph, exe uintptr
	bufs       map[*cudaBuffer]bool // memory the recorded launches use, kept until Close
}

// hold keeps b's memory out of the pool while the graph exists (d.mu held).
func (g *Graph) hold(b *cudaBuffer) {
	if !g.bufs[b] {
		g.bufs[b] = true
		b.held++
	}
}

// Capture records what f queues on the device (launches with wait=false, Copy) into a Graph
// instead of running it. f must not synchronise or copy to or from the host.
func (d *CUDA) Capture(f func() error) (*Graph, error) {
	g := &Graph{dev: d, bufs: map[*cudaBuffer]bool{}}
	d.mu.Lock()
	if d.capture != nil {
		d.mu.Unlock()
		return nil, errors.New("CUDA capture: already capturing")
	}
	d.capture = g
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.capture = nil
		d.mu.Unlock()
	}()
	if err := d.do(func() error {
		return d.check("cuStreamBeginCapture", d.api.streamBeginCapture(d.stream, cuStreamCaptureRelaxed))
	}); err != nil {
		return nil, err
	}
	ferr := f()
	err := d.do(func() error {
		if err := d.check("cuStreamEndCapture", d.api.streamEndCapture(d.stream, &g.graph)); err != nil {
			return err
		}
		if ferr != nil {
			return nil
		}
		return d.check("cuGraphInstantiate", d.api.graphInstantiate(&g.exe, g.graph, cuGraphInstantiateFlags))
	})
	if ferr != nil || err != nil {
		g.Close()
		return nil, errors.Join(ferr, err)
	}
	return g, nil
}

// Launch replays the graph; with wait it blocks and returns the replay's device time.
func (g *Graph) Launch(wait bool) (time.Duration, error) {
	d := g.dev
	var elapsed time.Duration
	err := d.do(func() error {
		if !wait {
			return d.check("cuGraphLaunch", d.api.graphLaunch(g.exe, d.stream))
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, s := range []struct {
			what string
			r    func() int32
		}{
			{"cuEventRecord", func() int32 { return d.api.eventRecord(d.start, d.stream) }},
			{"cuGraphLaunch", func() int32 { return d.api.graphLaunch(g.exe, d.stream) }},
			{"cuEventRecord", func() int32 { return d.api.eventRecord(d.end, d.stream) }},
			{"cuEventSynchronize", func() int32 { return d.api.eventSynchronize(d.end) }},
		} {
			if err := d.check(s.what, s.r()); err != nil {
				return err
			}
		}
		var ms float32
		if err := d.check("cuEventElapsedTime", d.api.eventElapsedTime(&ms, d.start, d.end)); err != nil {
			return err
		}
		elapsed = time.Duration(float64(ms) * float64(time.Millisecond))
		return nil
	})
	return elapsed, err
}

// Close frees the graph's driver objects and lets go of the memory it held.
func (g *Graph) Close() {
	d := g.dev
	d.mu.Lock()
	var release []*cudaBuffer
	for b := range g.bufs {
		if b.held--; b.held == 0 && b.freed {
			release = append(release, b)
		}
	}
	g.bufs = nil
	d.mu.Unlock()
	for _, b := range release {
		d.release(b.ptr, poolSize(b.size))
	}
	g.dev.do(func() error {
		if g.exe != 0 {
			g.dev.api.graphExecDestroy(g.exe)
		}
		if g.graph != 0 {
			g.dev.api.graphDestroy(g.graph)
		}
		g.exe, g.graph = 0, 0
		return nil
	})
}
