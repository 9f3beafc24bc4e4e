// Package runtime holds the devices the framework runs kernels on. Each backend lives in one
// file that tells its whole story (load the library, compile, allocate, launch): cpu.go,
// cuda.go, opencl.go. Backends register by name; DEVICE=CPU|CUDA|CL picks the default.
package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Buffer is memory on one device. Its contents are reached through the device's CopyIn and
// CopyOut; Ptr is what a kernel launch receives.
type Buffer interface {
	Size() int      // bytes
	Ptr() uintptr   // device address handed to kernels
	Device() Device // owner
}

// Program is one compiled kernel entry point.
type Program interface {
	// Launch runs the kernel over bufs (in the kernel's parameter order) and integer vals
	// (symbolic sizes, appended after the buffers). global and local are the grid and block
	// sizes for GPU-style devices; CPU devices use global as the range they may split across
	// cores. When wait is true Launch blocks until the kernel finishes and returns its run
	// time; otherwise the time is zero.
	Launch(bufs []Buffer, vals []int32, global, local [3]int, wait bool) (time.Duration, error)
}

// Device is one backend.
type Device interface {
	Name() string     // "CPU", "CUDA", "CL"
	Language() string // the renderer dialect it compiles: "c", "cuda" or "opencl"
	Alloc(nbytes int) (Buffer, error)
	Free(b Buffer)
	CopyIn(dst Buffer, src []byte) error
	CopyOut(dst []byte, src Buffer) error
	// Compile builds src (in the device's Language) and returns the entry point fn.
	// Implementations cache compiled code on disk keyed by a hash of source and flags.
	Compile(fn, src string) (Program, error)
	Synchronize() error
}

// Opener creates a device on first use; it returns an error (never panics) when the device's
// libraries or hardware are missing, naming what was searched.
type Opener func() (Device, error)

var (
	mu      sync.Mutex
	openers = map[string]Opener{}
	opened  = map[string]Device{}
)

// Register makes a backend available by name (upper case, e.g. "CUDA"). Backends call it
// from init.
func Register(name string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[strings.ToUpper(name)] = open
}

// Names lists the registered backends.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for n := range openers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get opens (once) and returns the named device; "" means Default().
func Get(name string) (Device, error) {
	if name == "" {
		name = DefaultName()
	}
	name = strings.ToUpper(name)
	if i := strings.IndexByte(name, ':'); i >= 0 { // "CUDA:0" → "CUDA"; one device per kind for now
		name = name[:i]
	}
	mu.Lock()
	defer mu.Unlock()
	if d, ok := opened[name]; ok {
		return d, nil
	}
	open, ok := openers[name]
	if !ok {
		var names []string
		for n := range openers {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown device %q (registered: %s)", name, strings.Join(names, ", "))
	}
	d, err := open()
	if err != nil {
		return nil, fmt.Errorf("open device %s: %w", name, err)
	}
	opened[name] = d
	return d, nil
}

// DefaultName is the device named by $DEVICE, or CPU.
func DefaultName() string {
	if d := os.Getenv("DEVICE"); d != "" {
		return strings.ToUpper(d)
	}
	return "CPU"
}

// CacheDir is where a backend keeps compiled code between runs: $GRADFORGE_CACHE/backend, else
// the user's cache folder (gradforge/backend), else a folder under the system's temp folder.
func CacheDir(backend string) string {
	if d := os.Getenv("GRADFORGE_CACHE"); d != "" {
		return filepath.Join(d, backend)
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "gradforge", backend)
	}
	return filepath.Join(os.TempDir(), "gradforge-cache", backend)
}
