package bench

import (
	goruntime "runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/schedule"
)

// hostDev is a device that speaks the CUDA dialect but runs nothing: buffers hold no memory,
// compiling returns a program whose launch returns at once. A step realized on it costs
// exactly the host work an eager step does on a GPU up to the driver calls: graph build,
// autograd, scheduling, rendering or looking up kernels, buffer bookkeeping.
type hostDev struct{}

type hostBuf struct{ n int }
type hostProg struct{}

func (b hostBuf) Size() int                                     { return b.n }
func (hostBuf) Ptr() uintptr                                    { return 0 }
func (hostBuf) Device() runtime.Device                          { return hostDev{} }
func (hostDev) Name() string                                    { return "HOST" }
func (hostDev) Language() string                                { return "cuda" }
func (hostDev) Free(runtime.Buffer)                             {}
func (hostDev) Synchronize() error                              { return nil }
func (hostDev) CopyIn(runtime.Buffer, []byte) error             { return nil }
func (hostDev) CopyOut([]byte, runtime.Buffer) error            { return nil }
func (hostDev) Alloc(n int) (runtime.Buffer, error)             { return hostBuf{n}, nil }
func (hostDev) Compile(fn, src string) (runtime.Program, error) { return hostProg{}, nil }
func (hostProg) Launch([]runtime.Buffer, []int32, [3]int, [3]int, bool) (time.Duration, error) {
	return 0, nil
}

var registerHost sync.Once

// BenchmarkHostTrainStep times the host side of one eager CNN training step at batch 512 (the
// step TrainStep times on CUDA) on a device that runs no kernels, so all of it is what the
// GPU waits for between launches. Run with
// go test -run '^$' -bench HostTrainStep -benchtime 200x ./framework/examples/bench
func BenchmarkHostTrainStep(b *testing.B) {
	registerHost.Do(func() { runtime.Register("HOST", func() (runtime.Device, error) { return hostDev{}, nil }) })
	b.Setenv("DEVICE", "HOST")
	step, _ := newTrainStep(512)
	for range 2 { // the first step renders every kernel; the later ones find them cached
		if err := step(); err != nil {
			b.Fatal(err)
		}
	}
	goruntime.LockOSThread() // so the thread's CPU time is the step's
	defer goruntime.UnlockOSThread()
	l0 := schedule.Launches()
	var m0, m1 goruntime.MemStats
	goruntime.ReadMemStats(&m0)
	c0 := cpuTime()
	b.ReportAllocs()
	for b.Loop() {
		if err := step(); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - c0
	goruntime.ReadMemStats(&m1)
	// The step's own CPU time is steadier than wall time on a shared machine, and on a GPU
	// host with cores to spare it is what the launches wait for (the collector runs beside).
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "thread-cpu-ns/op")
	b.ReportMetric(float64(schedule.Launches()-l0)/float64(b.N), "kernels/op")
	b.ReportMetric(float64(m1.NumGC-m0.NumGC)/float64(b.N), "GCs/op")
}

// cpuTime is the user and system time the calling thread has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
