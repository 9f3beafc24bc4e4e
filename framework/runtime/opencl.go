package runtime

// The OpenCL device: any OpenCL 1.2+ implementation (AMD, Intel and NVIDIA GPUs, or PoCL on
// a CPU, which is how CI runs GPU-style kernels without a GPU) through the ICD loader
// libOpenCL.so.1, loaded with purego so the binary needs no cgo.
//
// One platform and device are chosen at open ($CL_PLATFORM and $CL_DEVICE, by index or by a
// piece of the name; a GPU is preferred otherwise). All work goes to one in-order command
// queue with profiling enabled, so copies, launches and the reuse of freed memory are
// ordered, and a launch that waits reads its run time from its event. Global sizes arrive in
// work-groups and local sizes in work-items per group, as the renderer emits them for every
// GPU dialect; the NDRange is their product. Built programs are cached on disk as the
// driver's binaries, keyed by a hash of source, options, device and driver version.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

func init() { Register("CL", OpenCL) }

// Parameter names and flags from cl.h.
const (
	clPlatformName        = 0x0902
	clPlatformVersion     = 0x0901
	clDeviceTypeAll       = 0xFFFFFFFF
	clDeviceTypeGPU       = 1 << 2
	clDeviceType          = 0x1000
	clDeviceMaxWorkGroup  = 0x1004
	clDeviceLocalMemSize  = 0x1023
	clDeviceGlobalMemSize = 0x101F
	clDeviceName          = 0x102B
	clDeviceVendor        = 0x102C
	clDriverVersion       = 0x102D
	clDeviceVersion       = 0x102F
	clDeviceExtensions    = 0x1030
	clQueueProfiling      = 1 << 1
	clMemReadWrite        = 1 << 0
	clProgramBinarySizes  = 0x1165
	clProgramBinaries     = 0x1166
	clProgramBuildLog     = 0x1183
	clProfilingStart      = 0x1282
	clProfilingEnd        = 0x1283
	clKernelNumArgs       = 0x1191
	clTrue                = 1
)

// clAPI holds the entry points; every one returns a cl_int error code (or takes a pointer
// to one).
type clAPI struct {
	getPlatformIDs        func(n uint32, ids *uintptr, num *uint32) int32
	getPlatformInfo       func(p uintptr, param uint32, size uintptr, val unsafe.Pointer, ret *uintptr) int32
	getDeviceIDs          func(p uintptr, typ uint64, n uint32, ids *uintptr, num *uint32) int32
	getDeviceInfo         func(d uintptr, param uint32, size uintptr, val unsafe.Pointer, ret *uintptr) int32
	createContext         func(props unsafe.Pointer, n uint32, devs *uintptr, notify, user uintptr, err *int32) uintptr
	createCommandQueue    func(ctx, dev uintptr, props uint64, err *int32) uintptr
	createBuffer          func(ctx uintptr, flags uint64, size uintptr, host unsafe.Pointer, err *int32) uintptr
	releaseMemObject      func(m uintptr) int32
	enqueueWriteBuffer    func(q, m uintptr, blocking uint32, off, size uintptr, p unsafe.Pointer, nev uint32, evs unsafe.Pointer, ev *uintptr) int32
	enqueueReadBuffer     func(q, m uintptr, blocking uint32, off, size uintptr, p unsafe.Pointer, nev uint32, evs unsafe.Pointer, ev *uintptr) int32
	enqueueCopyBuffer     func(q, src, dst uintptr, soff, doff, size uintptr, nev uint32, evs unsafe.Pointer, ev *uintptr) int32
	createProgramSource   func(ctx uintptr, n uint32, strs *uintptr, lens *uintptr, err *int32) uintptr
	createProgramBinary   func(ctx uintptr, n uint32, devs *uintptr, lens *uintptr, bins *uintptr, status *int32, err *int32) uintptr
	buildProgram          func(p uintptr, n uint32, devs *uintptr, opts string, notify, user uintptr) int32
	getProgramBuildInfo   func(p, dev uintptr, param uint32, size uintptr, val unsafe.Pointer, ret *uintptr) int32
	getProgramInfo        func(p uintptr, param uint32, size uintptr, val unsafe.Pointer, ret *uintptr) int32
	releaseProgram        func(p uintptr) int32
	createKernel          func(p uintptr, name string, err *int32) uintptr
	getKernelInfo         func(k uintptr, param uint32, size uintptr, val unsafe.Pointer, ret *uintptr) int32
	setKernelArg          func(k uintptr, i uint32, size uintptr, val unsafe.Pointer) int32
	enqueueNDRangeKernel  func(q, k uintptr, dim uint32, off, global, local *uintptr, nev uint32, evs unsafe.Pointer, ev *uintptr) int32
	finish                func(q uintptr) int32
	waitForEvents         func(n uint32, evs *uintptr) int32
	getEventProfilingInfo func(ev uintptr, param uint32, size uintptr, val unsafe.Pointer, ret *uintptr) int32
	releaseEvent          func(ev uintptr) int32
}

// CL is one OpenCL device. It implements Device; Info, Copy and HasFP16 go beyond it.
type CL struct {
	api      *clAPI
	platform uintptr
	device   uintptr
	ctx      uintptr
	queue    uintptr
	name     string // device name
	platName string
	version  string // device's OpenCL version, e.g. "OpenCL 3.0 PoCL …"
	driver   string
	exts     string
	maxGroup int
	localMem int
	options  string // build options ($CL_BUILD_OPTIONS), part of the cache key

	mu       sync.Mutex
	programs map[string]*clProgram
	pool     map[int][]uintptr // freed buffers by size, reused before creating new ones
	pooled   int
	last     string // kernel most recently launched, for errors found at a later sync
	compiles atomic.Int64
}

// maxCLPooled bounds the bytes of freed buffers kept for reuse.
const maxCLPooled = 1 << 30

// OpenCL loads libOpenCL.so.1 and opens the device that $CL_PLATFORM and $CL_DEVICE pick.
func OpenCL() (Device, error) {
	var lib uintptr
	var errs []string
	for _, n := range []string{"libOpenCL.so.1", "libOpenCL.so"} {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			lib = h
			break
		}
		errs = append(errs, err.Error())
	}
	if lib == 0 {
		return nil, fmt.Errorf("OpenCL ICD loader libOpenCL.so.1 not found (install ocl-icd-libopencl1 and a driver such as pocl-opencl-icd): %s", strings.Join(errs, "; "))
	}
	api := &clAPI{}
	if err := api.bind(lib); err != nil {
		return nil, err
	}
	d := &CL{api: api, programs: map[string]*clProgram{}, pool: map[int][]uintptr{}, options: os.Getenv("CL_BUILD_OPTIONS")}
	if err := d.pick(os.Getenv("CL_PLATFORM"), os.Getenv("CL_DEVICE")); err != nil {
		return nil, err
	}
	var code int32
	dev := d.device
	d.ctx = api.createContext(nil, 1, &dev, 0, 0, &code)
	if err := clCheck("clCreateContext", "", code); err != nil {
		return nil, err
	}
	d.queue = api.createCommandQueue(d.ctx, d.device, clQueueProfiling, &code)
	if err := clCheck("clCreateCommandQueue", "", code); err != nil {
		return nil, err
	}
	return d, nil
}

func (a *clAPI) bind(lib uintptr) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("OpenCL: resolve symbol: %v", r)
		}
	}()
	for _, f := range []struct {
		fn   any
		name string
	}{
		{&a.getPlatformIDs, "clGetPlatformIDs"}, {&a.getPlatformInfo, "clGetPlatformInfo"},
		{&a.getDeviceIDs, "clGetDeviceIDs"}, {&a.getDeviceInfo, "clGetDeviceInfo"},
		{&a.createContext, "clCreateContext"}, {&a.createCommandQueue, "clCreateCommandQueue"},
		{&a.createBuffer, "clCreateBuffer"}, {&a.releaseMemObject, "clReleaseMemObject"},
		{&a.enqueueWriteBuffer, "clEnqueueWriteBuffer"}, {&a.enqueueReadBuffer, "clEnqueueReadBuffer"},
		{&a.enqueueCopyBuffer, "clEnqueueCopyBuffer"},
		{&a.createProgramSource, "clCreateProgramWithSource"}, {&a.createProgramBinary, "clCreateProgramWithBinary"},
		{&a.buildProgram, "clBuildProgram"}, {&a.getProgramBuildInfo, "clGetProgramBuildInfo"},
		{&a.getProgramInfo, "clGetProgramInfo"}, {&a.releaseProgram, "clReleaseProgram"},
		{&a.createKernel, "clCreateKernel"}, {&a.setKernelArg, "clSetKernelArg"},
		{&a.getKernelInfo, "clGetKernelInfo"},
		{&a.enqueueNDRangeKernel, "clEnqueueNDRangeKernel"}, {&a.finish, "clFinish"},
		{&a.waitForEvents, "clWaitForEvents"}, {&a.getEventProfilingInfo, "clGetEventProfilingInfo"},
		{&a.releaseEvent, "clReleaseEvent"},
	} {
		purego.RegisterLibFunc(f.fn, lib, f.name)
	}
	return nil
}

// clCandidate is one device of one platform, as pick lists them.
type clCandidate struct {
	platform, device uintptr
	plat, name       string
	gpu              bool
}

// pick chooses the platform and device. Each selector is an index ("1") or a
// case-insensitive piece of the name ("pocl", "NVIDIA"); with no device selector the first
// GPU wins, else the first device.
func (d *CL) pick(platSel, devSel string) error {
	a := d.api
	var n uint32
	if r := a.getPlatformIDs(0, nil, &n); r != 0 || n == 0 {
		if r == 0 || r == -1001 { // CL_PLATFORM_NOT_FOUND_KHR: the loader found no ICD
			return fmt.Errorf("OpenCL: no platform found (no ICD in /etc/OpenCL/vendors? install pocl-opencl-icd or a GPU driver's ICD)")
		}
		return clCheck("clGetPlatformIDs", "", r)
	}
	plats := make([]uintptr, n)
	if err := clCheck("clGetPlatformIDs", "", a.getPlatformIDs(n, &plats[0], nil)); err != nil {
		return err
	}
	var all []clCandidate
	var names []string
	for pi, p := range plats {
		pname := d.platformString(p, clPlatformName)
		names = append(names, fmt.Sprintf("platform %d %q", pi, pname))
		if platSel != "" && !clMatches(platSel, pi, pname) {
			continue
		}
		var nd uint32
		if a.getDeviceIDs(p, clDeviceTypeAll, 0, nil, &nd) != 0 || nd == 0 {
			continue
		}
		devs := make([]uintptr, nd)
		if err := clCheck("clGetDeviceIDs", "", a.getDeviceIDs(p, clDeviceTypeAll, nd, &devs[0], nil)); err != nil {
			return err
		}
		for _, dv := range devs {
			var typ uint64
			a.getDeviceInfo(dv, clDeviceType, 8, unsafe.Pointer(&typ), nil)
			c := clCandidate{platform: p, device: dv, plat: pname, name: d.deviceString(dv, clDeviceName), gpu: typ&clDeviceTypeGPU != 0}
			all = append(all, c)
			names = append(names, fmt.Sprintf("device %d %q on %q", len(all)-1, c.name, pname))
		}
	}
	var chosen *clCandidate
	for i := range all {
		c := &all[i]
		switch {
		case devSel != "" && clMatches(devSel, i, c.name) && chosen == nil:
			chosen = c
		case devSel == "" && (chosen == nil || c.gpu && !chosen.gpu):
			chosen = c
		}
	}
	if chosen == nil {
		return fmt.Errorf("OpenCL: no device matches CL_PLATFORM=%q CL_DEVICE=%q (found: %s)", platSel, devSel, strings.Join(names, ", "))
	}
	d.platform, d.device, d.platName, d.name = chosen.platform, chosen.device, chosen.plat, chosen.name
	d.version = d.deviceString(d.device, clDeviceVersion)
	d.driver = d.deviceString(d.device, clDriverVersion)
	d.exts = d.deviceString(d.device, clDeviceExtensions)
	var wg uintptr
	var lm, gm uint64
	a.getDeviceInfo(d.device, clDeviceMaxWorkGroup, 8, unsafe.Pointer(&wg), nil)
	a.getDeviceInfo(d.device, clDeviceLocalMemSize, 8, unsafe.Pointer(&lm), nil)
	a.getDeviceInfo(d.device, clDeviceGlobalMemSize, 8, unsafe.Pointer(&gm), nil)
	d.maxGroup, d.localMem = int(wg), int(lm)
	return nil
}

// clMatches says whether sel (an index or a piece of a name) picks entry i named name.
func clMatches(sel string, i int, name string) bool {
	if n, err := strconv.Atoi(sel); err == nil {
		return n == i
	}
	return strings.Contains(strings.ToLower(name), strings.ToLower(sel))
}

func (d *CL) platformString(p uintptr, param uint32) string {
	var n uintptr
	if d.api.getPlatformInfo(p, param, 0, nil, &n) != 0 || n == 0 {
		return ""
	}
	b := make([]byte, n)
	d.api.getPlatformInfo(p, param, n, unsafe.Pointer(&b[0]), nil)
	return strings.TrimSpace(cstring(b))
}

func (d *CL) deviceString(dev uintptr, param uint32) string {
	var n uintptr
	if d.api.getDeviceInfo(dev, param, 0, nil, &n) != 0 || n == 0 {
		return ""
	}
	b := make([]byte, n)
	d.api.getDeviceInfo(dev, param, n, unsafe.Pointer(&b[0]), nil)
	return strings.TrimSpace(cstring(b))
}

// CLError is a failed OpenCL call: the call, the kernel it concerned (if any), the error
// code and its name from cl.h, and, for a failed build, the compiler's log.
type CLError struct {
	Call, Kernel, Name, Log string
	Code                    int32
}

func (e *CLError) Error() string {
	k := ""
	if e.Kernel != "" {
		k = " (kernel " + e.Kernel + ")"
	}
	s := fmt.Sprintf("%s%s: %s (%d)", e.Call, k, e.Name, e.Code)
	if e.Log != "" {
		s += "\n" + e.Log
	}
	return s
}

func clCheck(call, kernel string, code int32) error {
	if code == 0 {
		return nil
	}
	return &CLError{Call: call, Kernel: kernel, Name: clErrorName(code), Code: code}
}

// clErrorNames are cl.h's names for the error codes 0 to -72.
var clErrorNames = strings.Fields(`CL_SUCCESS CL_DEVICE_NOT_FOUND CL_DEVICE_NOT_AVAILABLE
CL_COMPILER_NOT_AVAILABLE CL_MEM_OBJECT_ALLOCATION_FAILURE CL_OUT_OF_RESOURCES
CL_OUT_OF_HOST_MEMORY CL_PROFILING_INFO_NOT_AVAILABLE CL_MEM_COPY_OVERLAP CL_IMAGE_FORMAT_MISMATCH
CL_IMAGE_FORMAT_NOT_SUPPORTED CL_BUILD_PROGRAM_FAILURE CL_MAP_FAILURE
CL_MISALIGNED_SUB_BUFFER_OFFSET CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST
CL_COMPILE_PROGRAM_FAILURE CL_LINKER_NOT_AVAILABLE CL_LINK_PROGRAM_FAILURE
CL_DEVICE_PARTITION_FAILED CL_KERNEL_ARG_INFO_NOT_AVAILABLE - - - - - - - - - -
CL_INVALID_VALUE CL_INVALID_DEVICE_TYPE CL_INVALID_PLATFORM CL_INVALID_DEVICE CL_INVALID_CONTEXT
CL_INVALID_QUEUE_PROPERTIES CL_INVALID_COMMAND_QUEUE CL_INVALID_HOST_PTR CL_INVALID_MEM_OBJECT
CL_INVALID_IMAGE_FORMAT_DESCRIPTOR CL_INVALID_IMAGE_SIZE CL_INVALID_SAMPLER CL_INVALID_BINARY
CL_INVALID_BUILD_OPTIONS CL_INVALID_PROGRAM CL_INVALID_PROGRAM_EXECUTABLE CL_INVALID_KERNEL_NAME
CL_INVALID_KERNEL_DEFINITION CL_INVALID_KERNEL CL_INVALID_ARG_INDEX CL_INVALID_ARG_VALUE
CL_INVALID_ARG_SIZE CL_INVALID_KERNEL_ARGS CL_INVALID_WORK_DIMENSION CL_INVALID_WORK_GROUP_SIZE
CL_INVALID_WORK_ITEM_SIZE CL_INVALID_GLOBAL_OFFSET CL_INVALID_EVENT_WAIT_LIST CL_INVALID_EVENT
CL_INVALID_OPERATION CL_INVALID_GL_OBJECT CL_INVALID_BUFFER_SIZE CL_INVALID_MIP_LEVEL
CL_INVALID_GLOBAL_WORK_SIZE CL_INVALID_PROPERTY CL_INVALID_IMAGE_DESCRIPTOR
CL_INVALID_COMPILER_OPTIONS CL_INVALID_LINKER_OPTIONS CL_INVALID_DEVICE_PARTITION_COUNT
CL_INVALID_PIPE_SIZE CL_INVALID_DEVICE_QUEUE CL_INVALID_SPEC_ID CL_MAX_SIZE_RESTRICTION_EXCEEDED`)

// clErrorName names an OpenCL error code, including the ICD loader's and common extensions'.
func clErrorName(code int32) string {
	if code <= 0 && int(-code) < len(clErrorNames) && clErrorNames[-code] != "-" {
		return clErrorNames[-code]
	}
	switch code {
	case -1000:
		return "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR"
	case -1001:
		return "CL_PLATFORM_NOT_FOUND_KHR"
	case -1002:
		return "CL_INVALID_D3D10_DEVICE_KHR"
	case -1057:
		return "CL_DEVICE_PARTITION_FAILED_EXT"
	case -1092:
		return "CL_INVALID_ACCELERATOR_INTEL"
	}
	return "unknown OpenCL error"
}

// Name implements Device.
func (d *CL) Name() string { return "CL" }

// Language implements Device.
func (d *CL) Language() string { return "opencl" }

// Info describes the device: `"cpu-haswell-…" on "Portable Computing Language" (OpenCL 3.0
// PoCL 3.1, driver 3.1, 4096 work-items per group, 256 KiB local memory, fp16: no)`.
func (d *CL) Info() string {
	fp16 := "no"
	if d.HasFP16() {
		fp16 = "yes"
	}
	return fmt.Sprintf("%q on %q (%s, driver %s, %d work-items per group, %d KiB local memory, fp16: %s)",
		d.name, d.platName, d.version, d.driver, d.maxGroup, d.localMem>>10, fp16)
}

// HasFP16 reports whether the device computes in half precision (cl_khr_fp16). The
// framework does not need it: float16 tensors are converted with vload_half/vstore_half,
// which every OpenCL device has; kernels written by hand in half arithmetic do.
func (d *CL) HasFP16() bool {
	return strings.Contains(" "+d.exts+" ", " cl_khr_fp16 ")
}

// Compiles counts the programs this device built from source (not found in the disk cache).
func (d *CL) Compiles() int64 { return d.compiles.Load() }

type clBuffer struct {
	mem   uintptr
	size  int
	dev   *CL
	freed atomic.Bool
}

func (b *clBuffer) Size() int      { return b.size }
func (b *clBuffer) Ptr() uintptr   { return b.mem }
func (b *clBuffer) Device() Device { return b.dev }

// Alloc implements Device with a read-write buffer, or a freed one of the same size. An
// empty buffer still gets one byte, since OpenCL has no empty buffers.
func (d *CL) Alloc(n int) (Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("OpenCL alloc: negative size %d", n)
	}
	size := max(n, 1)
	d.mu.Lock()
	if l := d.pool[size]; len(l) > 0 {
		m := l[len(l)-1]
		d.pool[size], d.pooled = l[:len(l)-1], d.pooled-size
		d.mu.Unlock()
		return &clBuffer{mem: m, size: n, dev: d}, nil
	}
	d.mu.Unlock()
	var code int32
	m := d.api.createBuffer(d.ctx, clMemReadWrite, uintptr(size), nil, &code)
	if code == -4 || code == -5 { // allocation failure or out of resources: give the pool back, retry once
		d.Trim()
		m = d.api.createBuffer(d.ctx, clMemReadWrite, uintptr(size), nil, &code)
	}
	if err := clCheck(fmt.Sprintf("clCreateBuffer(%d bytes)", size), "", code); err != nil {
		return nil, err
	}
	return &clBuffer{mem: m, size: n, dev: d}, nil
}

// Free implements Device: the buffer goes to the reuse pool, or back to the driver when the
// pool is full. The in-order queue makes reuse safe while work that reads it is queued.
// Freeing twice is a no-op.
func (d *CL) Free(buf Buffer) {
	b, ok := buf.(*clBuffer)
	if !ok || !b.freed.CompareAndSwap(false, true) {
		return
	}
	size := max(b.size, 1)
	d.mu.Lock()
	if d.pooled+size <= maxCLPooled {
		d.pool[size] = append(d.pool[size], b.mem)
		d.pooled += size
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.api.releaseMemObject(b.mem)
}

// Trim releases every pooled buffer to the driver.
func (d *CL) Trim() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for size, l := range d.pool {
		for _, m := range l {
			d.api.releaseMemObject(m)
		}
		delete(d.pool, size)
	}
	d.pooled = 0
}

func (d *CL) buffer(b Buffer, what string) (*clBuffer, error) {
	cb, ok := b.(*clBuffer)
	if !ok {
		return nil, fmt.Errorf("OpenCL %s: buffer of type %T is not OpenCL memory", what, b)
	}
	if cb.freed.Load() {
		return nil, fmt.Errorf("OpenCL %s: buffer was freed", what)
	}
	return cb, nil
}

// lastKernel names the kernel launched last: a failure of a queued launch surfaces at the
// next blocking call, and the error names the likely culprit.
func (d *CL) lastKernel() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// CopyIn implements Device; it returns when the data is on the device.
func (d *CL) CopyIn(dst Buffer, src []byte) error {
	b, err := d.buffer(dst, "copy in")
	if err != nil {
		return err
	}
	if len(src) > b.size {
		return fmt.Errorf("OpenCL copy in: %d bytes into a %d-byte buffer", len(src), b.size)
	}
	if len(src) == 0 {
		return nil
	}
	r := d.api.enqueueWriteBuffer(d.queue, b.mem, clTrue, 0, uintptr(len(src)), unsafe.Pointer(&src[0]), 0, nil, nil)
	return clCheck("clEnqueueWriteBuffer", d.lastKernel(), r)
}

// CopyOut implements Device; it waits for queued work on the buffer first.
func (d *CL) CopyOut(dst []byte, src Buffer) error {
	b, err := d.buffer(src, "copy out")
	if err != nil {
		return err
	}
	if len(dst) > b.size {
		return fmt.Errorf("OpenCL copy out: %d bytes from a %d-byte buffer", len(dst), b.size)
	}
	if len(dst) == 0 {
		return nil
	}
	r := d.api.enqueueReadBuffer(d.queue, b.mem, clTrue, 0, uintptr(len(dst)), unsafe.Pointer(&dst[0]), 0, nil, nil)
	return clCheck("clEnqueueReadBuffer", d.lastKernel(), r)
}

// Copy queues a device-to-device copy of src into dst (the smaller size); it does not wait.
func (d *CL) Copy(dst, src Buffer) error {
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
	return clCheck("clEnqueueCopyBuffer", "", d.api.enqueueCopyBuffer(d.queue, sb.mem, db.mem, 0, 0, uintptr(n), 0, nil, nil))
}

// Synchronize implements Device: it waits for all queued work.
func (d *CL) Synchronize() error {
	return clCheck("clFinish", d.lastKernel(), d.api.finish(d.queue))
}

// clProgram is one built kernel. Arguments are set on the shared kernel object right before
// each enqueue, under mu.
type clProgram struct {
	dev     *CL
	name    string
	program uintptr
	kernel  uintptr
	args    int // parameters the kernel declares
	mu      sync.Mutex
}

// Compile implements Device. The built program is cached on disk as the driver's binary
// (keyed by a hash of the source, the kernel name, the build options, the device and the
// driver version) and in memory; a binary the driver rejects is rebuilt from source.
func (d *CL) Compile(fn, src string) (Program, error) {
	h := sha256.Sum256([]byte(strings.Join([]string{src, fn, d.options, d.platName, d.name, d.version, d.driver}, "\x00")))
	key := hex.EncodeToString(h[:])
	d.mu.Lock()
	p, ok := d.programs[key]
	d.mu.Unlock()
	if ok {
		return p, nil
	}
	path := filepath.Join(CacheDir("opencl"), key+".bin")
	prog := uintptr(0)
	if os.Getenv("DISABLE_COMPILER_CACHE") == "" {
		if bin, err := os.ReadFile(path); err == nil && len(bin) > 0 {
			prog, _ = d.fromBinary(fn, bin) // a stale or foreign binary just means a rebuild
		}
	}
	if prog == 0 {
		var err error
		if prog, err = d.fromSource(fn, src); err != nil {
			return nil, err
		}
		d.compiles.Add(1)
		if bin, err := d.binary(prog); err == nil && len(bin) > 0 {
			if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
				tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
				if os.WriteFile(tmp, bin, 0o644) == nil {
					os.Rename(tmp, path)
				}
			}
		}
	}
	var code int32
	k := d.api.createKernel(prog, fn, &code)
	if err := clCheck("clCreateKernel", fn, code); err != nil {
		d.api.releaseProgram(prog)
		return nil, err
	}
	var nargs uint32
	if err := clCheck("clGetKernelInfo(CL_KERNEL_NUM_ARGS)", fn, d.api.getKernelInfo(k, clKernelNumArgs, 4, unsafe.Pointer(&nargs), nil)); err != nil {
		d.api.releaseProgram(prog)
		return nil, err
	}
	p = &clProgram{dev: d, name: fn, program: prog, kernel: k, args: int(nargs)}
	d.mu.Lock()
	d.programs[key] = p
	d.mu.Unlock()
	return p, nil
}

// fromSource creates and builds a program from OpenCL C; a failed build carries the log.
func (d *CL) fromSource(fn, src string) (uintptr, error) {
	b := append([]byte(src), 0)
	var pin goruntime.Pinner
	pin.Pin(&b[0])
	defer pin.Unpin()
	strs, lens := []uintptr{uintptr(unsafe.Pointer(&b[0]))}, []uintptr{uintptr(len(src))}
	var code int32
	prog := d.api.createProgramSource(d.ctx, 1, &strs[0], &lens[0], &code)
	if err := clCheck("clCreateProgramWithSource", fn, code); err != nil {
		return 0, err
	}
	return prog, d.build(fn, prog)
}

// fromBinary creates and builds a program from a binary the driver wrote earlier.
func (d *CL) fromBinary(fn string, bin []byte) (uintptr, error) {
	var pin goruntime.Pinner
	pin.Pin(&bin[0])
	defer pin.Unpin()
	dev := d.device
	lens, bins := []uintptr{uintptr(len(bin))}, []uintptr{uintptr(unsafe.Pointer(&bin[0]))}
	var status, code int32
	prog := d.api.createProgramBinary(d.ctx, 1, &dev, &lens[0], &bins[0], &status, &code)
	if code == 0 {
		code = status
	}
	if err := clCheck("clCreateProgramWithBinary", fn, code); err != nil {
		if prog != 0 {
			d.api.releaseProgram(prog)
		}
		return 0, err
	}
	return prog, d.build(fn, prog)
}

// build runs clBuildProgram; on failure it releases prog and returns the build log.
func (d *CL) build(fn string, prog uintptr) error {
	dev := d.device
	r := d.api.buildProgram(prog, 1, &dev, d.options, 0, 0)
	if r == 0 {
		return nil
	}
	e := &CLError{Call: "clBuildProgram", Kernel: fn, Name: clErrorName(r), Code: r}
	var n uintptr
	if d.api.getProgramBuildInfo(prog, dev, clProgramBuildLog, 0, nil, &n) == 0 && n > 1 {
		log := make([]byte, n)
		d.api.getProgramBuildInfo(prog, dev, clProgramBuildLog, n, unsafe.Pointer(&log[0]), nil)
		e.Log = strings.TrimSpace(cstring(log))
	}
	d.api.releaseProgram(prog)
	return e
}

// binary returns the built program's device binary (CL_PROGRAM_BINARIES), for the cache.
func (d *CL) binary(prog uintptr) ([]byte, error) {
	var size uintptr
	if err := clCheck("clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)", "",
		d.api.getProgramInfo(prog, clProgramBinarySizes, unsafe.Sizeof(size), unsafe.Pointer(&size), nil)); err != nil || size == 0 {
		return nil, err
	}
	bin := make([]byte, size)
	var pin goruntime.Pinner
	pin.Pin(&bin[0])
	defer pin.Unpin()
	ptrs := []uintptr{uintptr(unsafe.Pointer(&bin[0]))}
	err := clCheck("clGetProgramInfo(CL_PROGRAM_BINARIES)", "",
		d.api.getProgramInfo(prog, clProgramBinaries, unsafe.Sizeof(ptrs[0]), unsafe.Pointer(&ptrs[0]), nil))
	return bin, err
}

// Launch implements Program: global is in work-groups and local in work-items per group, so
// the NDRange is their product. With wait it blocks and returns the kernel's device time
// from its profiling event (what DEBUG=2 prints).
func (p *clProgram) Launch(bufs []Buffer, vals []int32, global, local [3]int, wait bool) (time.Duration, error) {
	d := p.dev
	if n := len(bufs) + len(vals); n != p.args {
		return 0, fmt.Errorf("OpenCL launch %s: %d buffers and %d values given for its %d arguments", p.name, len(bufs), len(vals), p.args)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range bufs {
		cb, err := d.buffer(b, "launch "+p.name)
		if err != nil {
			return 0, err
		}
		m := cb.mem
		if err := clCheck(fmt.Sprintf("clSetKernelArg(%d)", i), p.name, d.api.setKernelArg(p.kernel, uint32(i), unsafe.Sizeof(m), unsafe.Pointer(&m))); err != nil {
			return 0, err
		}
	}
	for i, v := range vals {
		if err := clCheck(fmt.Sprintf("clSetKernelArg(%d)", len(bufs)+i), p.name, d.api.setKernelArg(p.kernel, uint32(len(bufs)+i), 4, unsafe.Pointer(&v))); err != nil {
			return 0, err
		}
	}
	var gs, ls [3]uintptr
	for i := range 3 {
		l := max(local[i], 1)
		gs[i], ls[i] = uintptr(max(global[i], 1)*l), uintptr(l)
	}
	if n := int(ls[0] * ls[1] * ls[2]); n > d.maxGroup && d.maxGroup > 0 {
		return 0, fmt.Errorf("OpenCL launch %s: %d work-items per group, the device allows %d", p.name, n, d.maxGroup)
	}
	d.mu.Lock()
	d.last = p.name
	d.mu.Unlock()
	var ev uintptr
	evp := &ev
	if !wait {
		evp = nil
	}
	r := d.api.enqueueNDRangeKernel(d.queue, p.kernel, 3, nil, &gs[0], &ls[0], 0, nil, evp)
	if err := clCheck("clEnqueueNDRangeKernel", p.name, r); err != nil {
		return 0, fmt.Errorf("%w (global %v, local %v)", err, gs, ls)
	}
	if !wait {
		return 0, nil
	}
	defer d.api.releaseEvent(ev)
	if err := clCheck("clWaitForEvents", p.name, d.api.waitForEvents(1, &ev)); err != nil {
		return 0, err
	}
	var start, end uint64
	if err := errors.Join(
		clCheck("clGetEventProfilingInfo(START)", p.name, d.api.getEventProfilingInfo(ev, clProfilingStart, 8, unsafe.Pointer(&start), nil)),
		clCheck("clGetEventProfilingInfo(END)", p.name, d.api.getEventProfilingInfo(ev, clProfilingEnd, 8, unsafe.Pointer(&end), nil)),
	); err != nil {
		return 0, err
	}
	return time.Duration(end - start), nil
}
