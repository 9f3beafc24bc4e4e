package bench

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/gradforge/gradforge/framework/schedule"
	"github.com/gradforge/gradforge/framework/tensor"
)

// TestProbe (GRADFORGE_PROBE=dir) separates host time from kernel time for the framework's
// product and softmax at full size (the last rep prints DEBUG=2 lines with each kernel's device
// time) and writes a CPU profile of the host side to dir.
func TestProbe(t *testing.T) {
	dir := os.Getenv("GRADFORGE_PROBE")
	if dir == "" {
		t.Skip("set GRADFORGE_PROBE=dir")
	}
	dev := openCUDA(t)
	n := 256 << 20
	x := onCUDA(tensor.Rand(n))
	var ins []*tensor.Tensor
	for k := range 6 {
		a := x.Mul(float64(k+1) / 8).Add(1)
		if err := a.Realize(); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, a)
	}
	m := onCUDA(tensor.Rand(16384, 16384))
	f, err := os.Create(dir + "/host.prof")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		name string
		f    func() *tensor.Tensor
	}{
		{"product6", func() *tensor.Tensor { return ins[0].Mul(ins[1]).Mul(ins[2]).Mul(ins[3]).Mul(ins[4]).Mul(ins[5]) }},
		{"softmax", func() *tensor.Tensor { return m.Softmax(-1) }},
	} {
		var res *tensor.Tensor
		for i := range 12 {
			if res != nil && res.Node().Buf != nil {
				dev.Free(res.Node().Buf.Mem)
			}
			schedule.Debug = 0
			if i == 11 {
				schedule.Debug = 2
			}
			if i == 2 && c.name == "product6" {
				pprof.StartCPUProfile(f)
			}
			var host time.Duration
			el, err := dev.Time(func() error {
				s := time.Now()
				res = c.f()
				err := res.Realize()
				host = time.Since(s)
				return err
			})
			if i < 3 || i >= 10 {
				t.Logf("%s rep %d: device window %v, host build+realize %v, err %v", c.name, i, el, host, err)
			}
		}
		schedule.Debug = 0
	}
	pprof.StopCPUProfile()
}

// TestProbeTrain (GRADFORGE_PROBE=dir) splits the CNN training step into host and device
// time; its last rep prints DEBUG=2 lines, one per kernel with its device time, and dir gets
// a CPU profile of the host side (train.prof).
func TestProbeTrain(t *testing.T) {
	dir := os.Getenv("GRADFORGE_PROBE")
	if dir == "" {
		t.Skip("set GRADFORGE_PROBE=dir")
	}
	dev := openCUDA(t)
	t.Setenv("DEVICE", "CUDA")
	step, _ := newTrainStep(512)
	f, err := os.Create(dir + "/train.prof")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 30 {
		if i == 5 {
			pprof.StartCPUProfile(f)
		}
		if i == 29 {
			pprof.StopCPUProfile()
			schedule.Debug = 2
		}
		var host time.Duration
		el, err := dev.Time(func() error {
			s := time.Now()
			err := step()
			host = time.Since(s)
			return err
		})
		if i < 3 || i >= 27 {
			t.Logf("train step rep %d: device window %v, host build+realize %v, err %v", i, el, host, err)
		}
	}
	schedule.Debug = 0
}
